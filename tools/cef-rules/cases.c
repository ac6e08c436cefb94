/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-rules test FILE CASES.yaml: personas and the offers they expect.
 *
 *   now: 2026-11-23T13:00:00Z        # optional, for every case
 *   utc_offset: 3600                 # optional, seconds east of UTC
 *   cases:
 *     - name: churning big spender
 *       now: 2026-11-23T20:00:00Z    # optional, this case only
 *       profile: {clv: 800, churn_risk: 0.9, segments: [gold]}
 *       request: {path: /, arg: {utm_campaign: winter}}
 *       var: {geoip2_country_code: DE}
 *       visitor: {new: false}
 *       expect: {hero: winback10, banner: none}
 *
 * Only the slots listed under expect: are checked; `none` expects no offer.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cef_rules_tool.h"


typedef struct {
    const char       *file;
    yaml_document_t  *doc;
    int64_t           now;
    int32_t           utc_offset;
} cef_cases_t;


static yaml_node_t *
cef_map_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
    yaml_node_pair_t  *pair;
    yaml_node_t       *k;

    if (map == NULL || map->type != YAML_MAPPING_NODE) {
        return NULL;
    }

    for (pair = map->data.mapping.pairs.start;
         pair < map->data.mapping.pairs.top; pair++)
    {
        k = yaml_document_get_node(doc, pair->key);

        if (k->type == YAML_SCALAR_NODE
            && strcmp((const char *) k->data.scalar.value, key) == 0)
        {
            return yaml_document_get_node(doc, pair->value);
        }
    }

    return NULL;
}


static int
cef_case_error(cef_cases_t *cs, yaml_node_t *n, const char *msg,
    const char *arg)
{
    printf("%s:%zu:%zu: %s%s\n", cs->file, n->start_mark.line + 1,
           n->start_mark.column + 1, msg, arg);
    return -1;
}


static int
cef_case_keys(cef_cases_t *cs, yaml_node_t *node)
{
    static const char  *keys[] = { "name", "now", "profile", "request", "var",
                                   "visitor", "visitor_id", "expect",
                                   "expect_variant", NULL };
    yaml_node_pair_t   *pair;
    yaml_node_t        *k;
    const char         *near, *key;
    size_t              i;
    char                hint[64];

    for (pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++)
    {
        k = yaml_document_get_node(cs->doc, pair->key);
        if (k->type != YAML_SCALAR_NODE) {
            return cef_case_error(cs, k, "keys must be names", "");
        }

        key = (const char *) k->data.scalar.value;

        for (i = 0; keys[i] && strcmp(keys[i], key) != 0; i++) {
            /* void */
        }

        if (keys[i] == NULL) {
            near = cef_expr_nearest(key, strlen(key), keys);
            snprintf(hint, sizeof(hint), " (did you mean '%s'?)",
                     near ? near : "");
            printf("%s:%zu:%zu: unknown key '%s' in a case%s\n", cs->file,
                   k->start_mark.line + 1, k->start_mark.column + 1, key,
                   near ? hint : "");
            return -1;
        }
    }

    return 0;
}


/* 0 passed, 1 failed, -1 broken case */
static int
cef_run_case(cef_cases_t *cs, cef_rules_t *rs, cef_expr_eval_t *ev,
    yaml_node_t *node, size_t index)
{
    yaml_node_t         *name_n, *now_n, *expect, *k, *v, *vid_n;
    cef_decision_t      *d;
    cef_decision_input_t in;
    yaml_node_pair_t    *pair;
    cef_persona_t       *p;
    cef_expr_ctx_t       ctx;
    cef_rules_choice_t  *choices;
    const char          *name, *slot, *want, *got;
    char                 err[512], label[64];
    uint32_t             i, n = cef_rules_nslots(rs), sid;
    int                  failed = 0;

    if (node->type != YAML_MAPPING_NODE) {
        return cef_case_error(cs, node, "a case is a mapping with name:, "
                              "profile:, request: and expect:", "");
    }

    if (cef_case_keys(cs, node) != 0) {
        return -1;
    }

    name_n = cef_map_get(cs->doc, node, "name");
    snprintf(label, sizeof(label), "case #%zu", index + 1);
    name = name_n && name_n->type == YAML_SCALAR_NODE
           ? (const char *) name_n->data.scalar.value : label;

    memset(&ctx, 0, sizeof(ctx));
    ctx.now = cs->now;
    ctx.utc_offset = cs->utc_offset;

    now_n = cef_map_get(cs->doc, node, "now");
    if (now_n) {
        if (now_n->type != YAML_SCALAR_NODE
            || cef_tool_parse_now((const char *) now_n->data.scalar.value,
                                  &ctx.now) != 0)
        {
            return cef_case_error(cs, now_n, "bad time in now: (use "
                                  "YYYY-MM-DDTHH:MM:SSZ)", "");
        }
    }

    expect = cef_map_get(cs->doc, node, "expect");
    if (expect == NULL || expect->type != YAML_MAPPING_NODE) {
        return cef_case_error(cs, expect ? expect : node, "a case needs "
                              "expect: mapping slot names to offer names "
                              "(none for no offer)", "");
    }

    p = cef_persona_create();
    choices = calloc(n + 1, sizeof(cef_rules_choice_t));
    if (p == NULL || choices == NULL) {
        cef_persona_free(p);
        free(choices);
        return -1;
    }

    if (cef_tool_persona_yaml(p, cs->doc, node, cs->file, err, sizeof(err))
        != 0)
    {
        printf("%s\n", err);
        cef_persona_free(p);
        free(choices);
        return -1;
    }

    ctx.lookup = cef_persona_lookup;
    ctx.data = p;

    /* visitor_id: the id experiments bucket by */

    in.visitor.data = "";
    in.visitor.len = 0;
    vid_n = cef_map_get(cs->doc, node, "visitor_id");

    if (vid_n) {
        if (vid_n->type != YAML_SCALAR_NODE) {
            cef_persona_free(p);
            free(choices);
            return cef_case_error(cs, vid_n, "visitor_id: is a string", "");
        }

        in.visitor.data = (const char *) vid_n->data.scalar.value;
        in.visitor.len = vid_n->data.scalar.length;
    }

    d = cef_decision_create(rs);
    if (d == NULL) {
        cef_persona_free(p);
        free(choices);
        return -1;
    }

    (void) cef_decision_make(rs, ev, &ctx, &in, d);
    memcpy(choices, d->choices, n * sizeof(cef_rules_choice_t));

    for (pair = expect->data.mapping.pairs.start;
         pair < expect->data.mapping.pairs.top; pair++)
    {
        k = yaml_document_get_node(cs->doc, pair->key);
        v = yaml_document_get_node(cs->doc, pair->value);

        if (k->type != YAML_SCALAR_NODE || v->type != YAML_SCALAR_NODE) {
            cef_case_error(cs, k, "expect: maps slot names to offer names",
                           "");
            failed = -1;
            break;
        }

        slot = (const char *) k->data.scalar.value;
        want = (const char *) v->data.scalar.value;

        if (strcmp(want, "") == 0 || strcmp(want, "~") == 0
            || strcmp(want, "null") == 0)
        {
            want = "none";
        }

        for (sid = 0; sid < n; sid++) {
            if (strcmp(cef_rules_slot_name(rs, sid), slot) == 0) {
                break;
            }
        }

        if (sid == n) {
            cef_case_error(cs, k, "no offer in the rule file uses slot ",
                           slot);
            failed = -1;
            break;
        }

        if (strcmp(want, "none") != 0) {
            for (i = 0; i < cef_rules_noffers(rs); i++) {
                if (strcmp(cef_rules_offer(rs, i)->name, want) == 0) {
                    break;
                }
            }

            if (i == cef_rules_noffers(rs)) {
                cef_case_error(cs, v, "unknown offer ", want);
                failed = -1;
                break;
            }
        }

        got = choices[sid].offer == CEF_RULES_NONE
              ? "none" : cef_rules_offer(rs, choices[sid].offer)->name;

        if (strcmp(got, want) != 0) {
            if (!failed) {
                printf("FAIL %s (%s:%zu)\n", name, cs->file,
                       node->start_mark.line + 1);
            }

            printf("  slot %s:\n    - expected %s\n    + got      %s", slot,
                   want, got);

            if (choices[sid].offer != CEF_RULES_NONE) {
                printf(" (rule '%s'",
                       cef_rules_rule(rs, choices[sid].rule)->name);
                cef_tool_print_plugins(rs, &d->slots[sid], ", ");
                printf(")");

            } else if (cef_rules_plugged(rs)) {
                cef_tool_print_plugins(rs, &d->slots[sid], " (");
                printf(")");
            }

            printf("\n");
            failed = 1;
        }
    }

    /* expect_variant: {SLOT: VARIANT | none} */

    expect = failed < 0 ? NULL : cef_map_get(cs->doc, node, "expect_variant");

    if (expect && expect->type != YAML_MAPPING_NODE) {
        cef_case_error(cs, expect, "expect_variant: maps slot names to "
                       "variants (control, treatment, an arm, or none)", "");
        failed = -1;
        expect = NULL;
    }

    for (pair = expect ? expect->data.mapping.pairs.start : NULL;
         expect && pair < expect->data.mapping.pairs.top; pair++)
    {
        k = yaml_document_get_node(cs->doc, pair->key);
        v = yaml_document_get_node(cs->doc, pair->value);

        if (k->type != YAML_SCALAR_NODE || v->type != YAML_SCALAR_NODE) {
            cef_case_error(cs, k, "expect_variant: maps slot names to "
                           "variants", "");
            failed = -1;
            break;
        }

        slot = (const char *) k->data.scalar.value;
        want = (const char *) v->data.scalar.value;

        for (sid = 0; sid < n; sid++) {
            if (strcmp(cef_rules_slot_name(rs, sid), slot) == 0) {
                break;
            }
        }

        if (sid == n) {
            cef_case_error(cs, k, "no offer in the rule file uses slot ",
                           slot);
            failed = -1;
            break;
        }

        got = d->slots[sid].variant ? d->slots[sid].variant : "none";

        if (strcmp(got, want) != 0) {
            if (!failed) {
                printf("FAIL %s (%s:%zu)\n", name, cs->file,
                       node->start_mark.line + 1);
            }

            printf("  slot %s variant:\n    - expected %s\n    + got      "
                   "%s (", slot, want, got);
            cef_tool_print_plugins(rs, &d->slots[sid], "");
            printf(")\n");
            failed = 1;
        }
    }

    if (failed == 0) {
        printf("ok   %s\n", name);
    }

    cef_decision_free(d);
    cef_persona_free(p);
    free(choices);

    return failed;
}


int
cef_tool_test(int argc, char **argv)
{
    cef_rules_t       *rs;
    cef_expr_eval_t   *ev;
    yaml_parser_t      parser;
    yaml_document_t    doc;
    yaml_node_t       *root, *cases, *n;
    yaml_node_item_t  *it;
    cef_cases_t        cs;
    FILE              *fp;
    size_t             i = 0, passed = 0, failed = 0;
    int                rc, broken = 0;
    char               err[512];

    if (argc != 2) {
        cef_tool_usage();
        return CEF_EXIT_USAGE;
    }

    rs = cef_tool_load(argv[0]);
    if (rs == NULL) {
        return CEF_EXIT_PROBLEM;
    }

    fp = cef_tool_fopen(argv[1]);
    if (fp == NULL) {
        printf("%s: cannot open: %s\n", argv[1],
               errno == EINVAL ? "not a regular file" : strerror(errno));
        cef_rules_free(rs);
        return CEF_EXIT_PROBLEM;
    }

    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, fp);

    if (cef_tool_yaml_load(&parser, &doc, err, sizeof(err)) != 0) {
        printf("%s:%s\n", argv[1], err);
        yaml_parser_delete(&parser);
        fclose(fp);
        cef_rules_free(rs);
        return CEF_EXIT_PROBLEM;
    }

    memset(&cs, 0, sizeof(cs));
    cs.file = argv[1];
    cs.doc = &doc;
    cs.now = (int64_t) time(NULL);

    root = yaml_document_get_root_node(&doc);
    cases = cef_map_get(&doc, root, "cases");

    if (cases == NULL || cases->type != YAML_SEQUENCE_NODE) {
        printf("%s:1:1: expected a mapping with cases: (a list)\n", argv[1]);
        broken = 1;
        goto done;
    }

    n = cef_map_get(&doc, root, "now");
    if (n && (n->type != YAML_SCALAR_NODE
              || cef_tool_parse_now((const char *) n->data.scalar.value,
                                    &cs.now) != 0))
    {
        cef_case_error(&cs, n, "bad time in now:", "");
        broken = 1;
        goto done;
    }

    n = cef_map_get(&doc, root, "utc_offset");
    if (n && n->type == YAML_SCALAR_NODE) {
        cs.utc_offset = atoi((const char *) n->data.scalar.value);
    }

    ev = cef_rules_eval_create(rs);
    if (ev == NULL) {
        broken = 1;
        goto done;
    }

    for (it = cases->data.sequence.items.start;
         it < cases->data.sequence.items.top; it++, i++)
    {
        rc = cef_run_case(&cs, rs, ev, yaml_document_get_node(&doc, *it), i);

        if (rc == 0) {
            passed++;
        } else if (rc == 1) {
            failed++;
        } else {
            broken = 1;
        }
    }

    cef_expr_eval_free(ev);

    printf("%zu passed, %zu failed%s\n", passed, failed,
           broken ? ", and the cases file has problems" : "");

done:

    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(fp);
    cef_rules_free(rs);

    return (failed || broken) ? CEF_EXIT_PROBLEM : CEF_EXIT_OK;
}
