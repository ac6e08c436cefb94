/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-rules explain: every rule, matched or not and why, and the offer
 * chosen per slot, for one set of inputs.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cef_outcome.h"
#include "cef_rules_visitor.h"
#include "cef_rules_tool.h"
#include "cef_store.h"


/*
 * The inputs: --attrs, --case and --set go to the persona and take
 * precedence; a profile read from the store (--store) is looked up in
 * place, as nginx does (cef_rules_visitor_lookup()).
 */
typedef struct {
    cef_persona_t        *p;
    int                   stored;
    cef_profile_t         prof;
    cef_rules_visitor_t   vis;
} cef_explain_in_t;


static int
cef_explain_lookup(void *data, const cef_ref_t *ref, cef_value_t *out)
{
    cef_explain_in_t  *in = data;

    if (cef_persona_lookup(in->p, ref, out)) {
        return 1;
    }

    return in->stored ? cef_rules_visitor_lookup(&in->vis, ref, out) : 0;
}


/* The case NAME from a cases file (see cases.c) as a persona. */
static int
cef_explain_case(cef_persona_t *p, const char *file, const char *name,
    int64_t *now)
{
    yaml_parser_t      parser;
    yaml_document_t    doc;
    yaml_node_t       *root, *k, *v, *c;
    yaml_node_pair_t  *pair, *q;
    yaml_node_item_t  *it;
    FILE              *fp;
    char               err[512];
    int                rc = -1, found = 0;

    fp = cef_tool_fopen(file);
    if (fp == NULL) {
        fprintf(stderr, "cef-rules: %s: cannot open: %s\n", file,
                errno == EINVAL ? "not a regular file" : strerror(errno));
        return -1;
    }

    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, fp);

    if (cef_tool_yaml_load(&parser, &doc, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s:%s\n", file, err);
        goto done;
    }

    root = yaml_document_get_root_node(&doc);

    for (pair = root && root->type == YAML_MAPPING_NODE
                ? root->data.mapping.pairs.start : NULL;
         pair && pair < root->data.mapping.pairs.top; pair++)
    {
        k = yaml_document_get_node(&doc, pair->key);
        v = yaml_document_get_node(&doc, pair->value);

        if (k->type == YAML_SCALAR_NODE && v->type == YAML_SCALAR_NODE
            && strcmp((char *) k->data.scalar.value, "now") == 0)
        {
            (void) cef_tool_parse_now((char *) v->data.scalar.value, now);
        }

        if (k->type != YAML_SCALAR_NODE || v->type != YAML_SEQUENCE_NODE
            || strcmp((char *) k->data.scalar.value, "cases") != 0)
        {
            continue;
        }

        for (it = v->data.sequence.items.start;
             it < v->data.sequence.items.top && !found; it++)
        {
            c = yaml_document_get_node(&doc, *it);
            if (c->type != YAML_MAPPING_NODE) {
                continue;
            }

            for (q = c->data.mapping.pairs.start;
                 q < c->data.mapping.pairs.top; q++)
            {
                k = yaml_document_get_node(&doc, q->key);
                v = yaml_document_get_node(&doc, q->value);

                if (k->type == YAML_SCALAR_NODE
                    && v->type == YAML_SCALAR_NODE
                    && strcmp((char *) k->data.scalar.value, "name") == 0
                    && strcmp((char *) v->data.scalar.value, name) == 0)
                {
                    found = 1;
                }
            }

            if (!found) {
                continue;
            }

            for (q = c->data.mapping.pairs.start;
                 q < c->data.mapping.pairs.top; q++)
            {
                k = yaml_document_get_node(&doc, q->key);
                v = yaml_document_get_node(&doc, q->value);

                if (k->type == YAML_SCALAR_NODE
                    && v->type == YAML_SCALAR_NODE
                    && strcmp((char *) k->data.scalar.value, "now") == 0)
                {
                    (void) cef_tool_parse_now((char *) v->data.scalar.value,
                                              now);
                }
            }

            if (cef_tool_persona_yaml(p, &doc, c, file, err, sizeof(err))
                != 0)
            {
                fprintf(stderr, "%s\n", err);
                goto loaded;
            }

            rc = 0;
        }

        break;
    }

    if (!found) {
        fprintf(stderr, "cef-rules: %s: no case named '%s'\n", file, name);
    }

loaded:
    yaml_document_delete(&doc);

done:
    yaml_parser_delete(&parser);
    fclose(fp);
    return rc;
}


/*
 * The visitor's profile from the store, as nginx would find it by the key
 * TYPE:VALUE.  The store stays open (*sp): the profile is read in place.
 *
 * @return 0, 1 (a problem: no such profile, a store error), 2 (usage).
 */
static int
cef_explain_store(cef_explain_in_t *in, const char *dir, const char *secret,
    const char *key, cef_store_t **sp, cef_identity_t **identp)
{
    const char      *colon;
    char             err[512];
    cef_span_t       key_type;
    cef_store_t     *store;
    cef_identity_t  *ident;
    int              rc;

    colon = key ? strchr(key, ':') : NULL;

    if (dir == NULL || secret == NULL || colon == NULL || colon == key) {
        fprintf(stderr, "cef-rules: --store needs --secret FILE and --key "
                "TYPE:VALUE\n");
        return 2;
    }

    ident = cef_identity_create_from_file(secret, err, sizeof(err));
    if (ident == NULL) {
        fprintf(stderr, "cef-rules: %s\n", err);
        return 1;
    }

    *identp = ident;

    if (cef_store_open(&store, dir, err, sizeof(err)) != CEF_STORE_OK) {
        fprintf(stderr, "cef-rules: %s\n", err);
        return 1;
    }

    *sp = store;

    if (cef_store_begin(store) != CEF_STORE_OK) {
        fprintf(stderr, "cef-rules: %s\n", cef_store_strerror(store));
        return 1;
    }

    if (cef_store_check_secret(store, ident) != CEF_STORE_OK) {
        fprintf(stderr, "cef-rules: the secret is not the one the store was "
                "loaded with\n");
        return 1;
    }

    rc = cef_store_lookup_key(store, ident, key, (size_t) (colon - key),
                              colon + 1, strlen(colon + 1), &in->prof);

    if (rc == CEF_STORE_NOTFOUND) {
        fprintf(stderr, "cef-rules: no profile for key \"%s\" in %s\n", key,
                dir);
        return 1;
    }

    if (rc != CEF_STORE_OK) {
        fprintf(stderr, "cef-rules: %s\n", cef_store_strerror(store));
        return 1;
    }

    if (cef_profile_validate(&in->prof) != 0) {
        fprintf(stderr, "cef-rules: the stored profile is malformed\n");
        return 1;
    }

    /* known to the store: not new, recognised by this key type */

    key_type.data = key;
    key_type.len = (size_t) (colon - key);

    cef_rules_visitor_init(&in->vis, &in->prof, 0, key_type);
    in->stored = 1;

    return 0;
}


static int
cef_explain_attrs(cef_persona_t *p, const char *arg)
{
    json_t        *j;
    FILE          *fp;
    json_error_t   jerr;
    char           err[512];
    int            rc;

    if (arg[0] == '@') {
        fp = cef_tool_fopen(arg + 1);
        if (fp == NULL) {
            fprintf(stderr, "cef-rules: --attrs: %s: cannot open: %s\n",
                    arg + 1, errno == EINVAL ? "not a regular file"
                                             : strerror(errno));
            return -1;
        }
        j = json_loadf(fp, 0, &jerr);
        fclose(fp);
    } else {
        j = json_loads(arg, 0, &jerr);
    }

    if (j == NULL) {
        fprintf(stderr, "cef-rules: --attrs: invalid JSON at line %d, column "
                "%d: %s\n", jerr.line, jerr.column, jerr.text);
        return -1;
    }

    rc = cef_tool_persona_json(p, "profile", j, err, sizeof(err));
    json_decref(j);

    if (rc != 0) {
        fprintf(stderr, "cef-rules: %s\n", err);
    }

    return rc;
}


static void
cef_print_time(int64_t t)
{
    time_t      tt = (time_t) t;
    struct tm   tm;
    char        buf[64];

    gmtime_r(&tt, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%s", buf);
}


static int
cef_explain_has(cef_persona_t *p, const char *path)
{
    size_t  i;

    for (i = 0; i < cef_persona_count(p); i++) {
        if (strcmp(cef_persona_path(p, i, NULL), path) == 0) {
            return 1;
        }
    }

    return 0;
}


/* --visitor and --state */
static const char  *cef_explain_visitor;
static char        *cef_explain_states[16];
static int          cef_explain_nstates;


static void
cef_explain_print(const cef_rules_t *rs, cef_explain_in_t *in,
    const cef_expr_ctx_t *ctx)
{
    cef_persona_t       *p = in->p;
    cef_span_t           name;
    size_t               pos = 0;
    char                 path[600];
    cef_expr_eval_t     *ev;
    cef_rules_choice_t  *choices;
    cef_decision_t      *d;
    cef_decision_input_t din;
    cef_span_t           st;
    char                *eq;
    int                  k;
    const uint32_t      *order = cef_rules_order(rs);
    const cef_rule_t    *r;
    const cef_offer_t   *o;
    uint32_t             i, j, nrules = cef_rules_nrules(rs);
    uint32_t             nslots = cef_rules_nslots(rs);
    size_t               n;
    cef_value_t          v;
    char                 why[2048], val[256], *html;
    int                  m;

    ev = cef_rules_eval_create(rs);
    d = cef_decision_create(rs);
    choices = calloc(nslots + 1, sizeof(cef_rules_choice_t));
    if (ev == NULL || d == NULL || choices == NULL) {
        fprintf(stderr, "cef-rules: out of memory\n");
        goto done;
    }

    printf("time: ");
    cef_print_time(ctx->now);
    printf(" (utc offset %d s)\n", ctx->utc_offset);

    printf("inputs:\n");
    for (n = 0; n < cef_persona_count(p); n++) {
        const char  *set = cef_persona_path(p, n, &v);

        cef_expr_format_value(&v, val, sizeof(val));
        printf("  %s = %s\n", set, val);
    }

    if (in->stored) {
        while (cef_profile_next(&in->prof, &pos, &name, &v) == 1) {
            snprintf(path, sizeof(path), "profile.%.*s", (int) name.len,
                     name.data);
            cef_expr_format_value(&v, val, sizeof(val));
            printf("  %s = %s  (stored%s)\n", path, val,
                   cef_explain_has(p, path) ? ", overridden by --set" : "");
        }

        printf("  visitor.new = false  (stored%s)\n",
               cef_explain_has(p, "visitor.new")
               ? ", overridden by --set" : "");
        printf("  visitor.key_type = \"%.*s\"  (stored%s)\n",
               (int) in->vis.key_type.len, in->vis.key_type.data,
               cef_explain_has(p, "visitor.key_type")
               ? ", overridden by --set" : "");

    } else if (cef_persona_count(p) == 0) {
        printf("  (none: every profile attribute is null)\n");
    }

    din.visitor.data = cef_explain_visitor ? cef_explain_visitor : "";
    din.visitor.len = cef_explain_visitor ? strlen(cef_explain_visitor) : 0;

    if (din.visitor.len) {
        printf("  (visitor id) = \"%s\"\n", cef_explain_visitor);
    }

    for (k = 0; k < cef_explain_nstates; k++) {
        eq = strchr(cef_explain_states[k], '=');
        st.data = eq + 1;
        st.len = strlen(eq + 1);
        *eq = '\0';
        cef_decision_set_state(d, cef_explain_states[k], st);
        printf("  (state of %s) = \"%s\"\n", cef_explain_states[k], eq + 1);
        *eq = '=';
    }

    /* the decision first, so every rule can say what became of it */

    (void) cef_decision_make(rs, ev, ctx, &din, d);
    memcpy(choices, d->choices, nslots * sizeof(cef_rules_choice_t));

    printf("\nrules, in decision order:\n");

    for (i = 0; i < nrules; i++) {
        r = cef_rules_rule(rs, order[i]);

        if (r->when) {
            m = cef_expr_explain(r->when, ev, why, sizeof(why));
        } else {
            m = 1;
            snprintf(why, sizeof(why), "no when: (always matches)");
        }

        printf("  %s '%s' (priority %lld, line %u): %s\n",
               m ? "MATCH" : "no   ", r->name, (long long) r->priority,
               r->line, why);

        if (!m) {
            continue;
        }

        for (j = 0; j < r->noffers; j++) {
            o = cef_rules_offer(rs, r->offers[j]);
            (void) cef_outcome_format(d, r->offers[j],
                                      cef_outcome_offer(d, order[i],
                                                        r->offers[j], m),
                                      val, sizeof(val));
            printf("        %s -> %s: %s\n", o->slot, o->name, val);
        }
    }

    printf("\nchosen offers:\n");

    for (i = 0; i < nslots; i++) {
        if (choices[i].offer == CEF_RULES_NONE) {
            printf("  %s: none", cef_rules_slot_name(rs, i));
            if (cef_rules_plugged(rs)) {
                cef_tool_print_plugins(rs, &d->slots[i], " (");
                printf(")");
            }
            printf("\n");
            continue;
        }

        o = cef_rules_offer(rs, choices[i].offer);
        printf("  %s: %s (rule '%s'", o->slot, o->name,
               cef_rules_rule(rs, choices[i].rule)->name);
        cef_tool_print_plugins(rs, &d->slots[i], ", ");
        printf(")\n");

        n = cef_template_render(o->html, ev, NULL, 0);
        html = malloc(n + 1);
        if (html) {
            cef_template_render(o->html, ev, html, n);
            html[n] = '\0';
            printf("    %s\n", html);
            free(html);
        }
    }

    for (k = 0; k < (int) d->nstates; k++) {
        if (d->states[k].changed) {
            printf("\nstate of %s after this decision: \"%.*s\"\n",
                   d->states[k].plugin, (int) d->states[k].out_len,
                   d->states[k].out);
        }
    }

done:
    cef_decision_free(d);
    cef_expr_eval_free(ev);
    free(choices);
}


int
cef_tool_explain(int argc, char **argv)
{
    cef_rules_t     *rs;
    cef_persona_t   *p;
    cef_expr_ctx_t   ctx;
    const char      *store = NULL, *secret = NULL, *key = NULL;
    char             err[512];
    cef_store_t     *st = NULL;
    cef_identity_t  *ident = NULL;
    cef_explain_in_t  in;
    int              i, inputs = 0, rc = CEF_EXIT_USAGE;

    if (argc < 1 || argv[0][0] == '-') {
        cef_tool_usage();
        return CEF_EXIT_USAGE;
    }

    p = cef_persona_create();
    if (p == NULL) {
        return CEF_EXIT_PROBLEM;
    }

    memset(&ctx, 0, sizeof(ctx));
    ctx.now = (int64_t) time(NULL);
    memset(&in, 0, sizeof(in));
    in.p = p;
    ctx.lookup = cef_explain_lookup;
    ctx.data = &in;

    for (i = 1; i < argc; i++) {
        if (i + 1 >= argc) {
            fprintf(stderr, "cef-rules: %s needs a value\n", argv[i]);
            goto usage;
        }

        if (strcmp(argv[i], "--attrs") == 0) {
            if (cef_explain_attrs(p, argv[++i]) != 0) {
                goto usage;
            }
            inputs++;

        } else if (strcmp(argv[i], "--case") == 0) {
            if (i + 2 >= argc) {
                fprintf(stderr, "cef-rules: --case needs CASES.yaml NAME\n");
                goto usage;
            }
            if (cef_explain_case(p, argv[i + 1], argv[i + 2], &ctx.now) != 0)
            {
                goto usage;
            }
            i += 2;
            inputs++;

        } else if (strcmp(argv[i], "--set") == 0) {
            if (cef_tool_persona_assign(p, argv[++i], err, sizeof(err)) != 0)
            {
                fprintf(stderr, "cef-rules: %s\n", err);
                goto usage;
            }

        } else if (strcmp(argv[i], "--now") == 0) {
            if (cef_tool_parse_now(argv[++i], &ctx.now) != 0) {
                fprintf(stderr, "cef-rules: --now: use YYYY-MM-DDTHH:MM:SSZ "
                        "or unix seconds\n");
                goto usage;
            }

        } else if (strcmp(argv[i], "--utc-offset") == 0) {
            ctx.utc_offset = atoi(argv[++i]);

        } else if (strcmp(argv[i], "--visitor") == 0) {
            cef_explain_visitor = argv[++i];

        } else if (strcmp(argv[i], "--state") == 0) {
            if (strchr(argv[i + 1], '=') == NULL
                || cef_explain_nstates == 16)
            {
                fprintf(stderr, "cef-rules: --state needs PLUGIN=STATE\n");
                goto usage;
            }
            cef_explain_states[cef_explain_nstates++] = argv[++i];

        } else if (strcmp(argv[i], "--store") == 0) {
            store = argv[++i];
        } else if (strcmp(argv[i], "--secret") == 0) {
            secret = argv[++i];
        } else if (strcmp(argv[i], "--key") == 0) {
            key = argv[++i];

        } else {
            fprintf(stderr, "cef-rules: unknown option '%s'\n", argv[i]);
            goto usage;
        }
    }

    (void) inputs;

    if (store || secret || key) {
        rc = cef_explain_store(&in, store, secret, key, &st, &ident);

        if (rc != 0) {
            rc = rc == 2 ? CEF_EXIT_USAGE : CEF_EXIT_PROBLEM;
            goto done;
        }
    }

    rs = cef_tool_load(argv[0]);
    if (rs == NULL) {
        rc = CEF_EXIT_PROBLEM;
        goto done;
    }

    cef_explain_print(rs, &in, &ctx);
    cef_rules_free(rs);
    rc = CEF_EXIT_OK;
    goto done;

usage:
    rc = CEF_EXIT_USAGE;

done:
    cef_persona_free(p);

    if (st) {
        cef_store_end(st);
        cef_store_close(st);
    }

    cef_identity_free(ident);
    return rc;
}
