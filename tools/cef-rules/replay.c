/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-rules replay: decide again from a decision record ($cef_decision,
 * lib/decision/cef_record.h) with today's rule file and store, and say
 * whether the result is the same and, where it is not, why.
 *
 *   cef-rules replay --rules FILE [--store DIR --secret FILE]
 *                    (--decision 'RECORD' | --log FILE | --log -)
 *
 * The recorded inputs stand in for the request (request.*, var.*,
 * visitor.*, the time, the plugins' state, the visitor id experiments
 * bucket by); profile.* is read from the store by the recorded profile id.
 *
 * Exit codes: 0 every record replays to the same decision, 1 some differ,
 * 2 usage or input errors (a malformed record, an unreadable store).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cef_outcome.h"
#include "cef_record.h"
#include "cef_rules_visitor.h"
#include "cef_rules_tool.h"
#include "cef_store.h"


typedef struct {
    cef_rules_t          *rs;
    cef_expr_eval_t      *ev;
    cef_decision_t       *d;
    cef_record_slot_t    *now;          /* today's slots */
    cef_store_t          *store;
    cef_identity_t       *ident;
    const char           *store_dir;
    cef_store_info_t      info;
    unsigned              has_info:1;
} cef_replay_t;


typedef struct {
    cef_persona_t        *p;
    cef_rules_visitor_t   vis;
} cef_replay_in_t;


static int
cef_replay_lookup(void *data, const cef_ref_t *ref, cef_value_t *out)
{
    cef_replay_in_t  *in = data;

    if (ref->kind != CEF_REF_PROFILE && cef_persona_lookup(in->p, ref, out))
    {
        return 1;
    }

    return cef_rules_visitor_lookup(&in->vis, ref, out);
}


static int
cef_streq(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        return a == b;
    }

    return strcmp(a, b) == 0;
}


static const char *
cef_or_none(const char *s)
{
    return s ? s : "none";
}


static int64_t
cef_replay_rule(const cef_rules_t *rs, const char *name)
{
    uint32_t  i;

    for (i = 0; name && i < cef_rules_nrules(rs); i++) {
        if (strcmp(cef_rules_rule(rs, i)->name, name) == 0) {
            return i;
        }
    }

    return -1;
}


static const cef_record_slot_t *
cef_replay_slot(const cef_record_slot_t *v, size_t n, const char *name)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (strcmp(v[i].slot, name) == 0) {
            return &v[i];
        }
    }

    return NULL;
}


static void
cef_replay_print_slot(const cef_record_slot_t *s)
{
    if (s->offer) {
        printf("%s (rule '%s'", s->offer, cef_or_none(s->rule));
    } else {
        printf("none (");
    }

    printf("%s%s, variant %s", s->offer ? ", " : "", s->plugin, s->variant);

    if (s->bucket != CEF_RECORD_NONE) {
        printf(", bucket %u", s->bucket);
    }

    if (s->would) {
        printf(", would have shown %s", s->would);
    }

    if (s->failed) {
        printf(", strategy failed");
    }

    printf(")");
}


/* why slot s went from was to now */
static void
cef_replay_why(cef_replay_t *rp, const cef_record_slot_t *was,
    const cef_record_slot_t *now)
{
    int                m;
    int64_t            ri;
    uint32_t           j;
    const cef_rule_t  *rule;
    const char        *rname;
    char               why[2048];

    rname = was->rule ? was->rule : was->would_rule;

    if (rname) {
        ri = cef_replay_rule(rp->rs, rname);

        if (ri < 0) {
            printf("      rule '%s' no longer exists\n", rname);

        } else {
            rule = cef_rules_rule(rp->rs, (uint32_t) ri);
            m = rule->when ? cef_expr_explain(rule->when, rp->ev, why,
                                              sizeof(why))
                           : 1;

            for (j = 0; j < rule->noffers; j++) {
                if (strcmp(cef_rules_offer(rp->rs, rule->offers[j])->slot,
                           was->slot) == 0)
                {
                    break;
                }
            }

            if (!m) {
                printf("      rule '%s' no longer matches: %s\n", rname,
                       why);

            } else if (j == rule->noffers) {
                printf("      rule '%s' still matches but no longer "
                       "shows an offer in this slot\n", rname);

            } else {
                /* what became of its offer, in explain's words */
                (void) cef_outcome_format(rp->d, rule->offers[j],
                                          cef_outcome_offer(rp->d,
                                              (uint32_t) ri,
                                              rule->offers[j], 1),
                                          why, sizeof(why));
                printf("      rule '%s' still matches; its offer %s: %s\n",
                       rname, cef_rules_offer(rp->rs, rule->offers[j])->name,
                       why);
            }
        }
    }

    if (now->rule && !cef_streq(now->rule, rname)) {
        ri = cef_replay_rule(rp->rs, now->rule);
        rule = cef_rules_rule(rp->rs, (uint32_t) ri);

        if (rule->when) {
            (void) cef_expr_explain(rule->when, rp->ev, why, sizeof(why));
            printf("      rule '%s' now matches: %s\n", now->rule, why);
        } else {
            printf("      rule '%s' (no when:) now reaches this slot\n",
                   now->rule);
        }
    }

    if (!cef_streq(was->plugin, now->plugin)) {
        printf("      the slot's strategy changed (%s -> %s)\n",
               cef_or_none(was->plugin), cef_or_none(now->plugin));

    } else if (was->bucket != now->bucket) {
        printf("      the experiment bucket changed\n");

    } else if (!cef_streq(was->variant, now->variant)
               && (was->offer == NULL) == (now->offer == NULL))
    {
        printf("      the experiment variant changed (%s -> %s)\n",
               was->variant, now->variant);
    }
}


static int
cef_replay_same(const cef_record_slot_t *a, const cef_record_slot_t *b)
{
    return cef_streq(a->offer, b->offer) && cef_streq(a->rule, b->rule)
           && cef_streq(a->plugin, b->plugin)
           && cef_streq(a->variant, b->variant)
           && cef_streq(a->would, b->would) && a->bucket == b->bucket
           && a->failed == b->failed;
}


/*
 * Replay one record.
 *
 * @return CEF_EXIT_OK (same), CEF_EXIT_PROBLEM (different) or
 *         CEF_EXIT_USAGE (the record cannot be replayed).
 */
static int
cef_replay_one(cef_replay_t *rp, const cef_record_t *rec, const char *where)
{
    int                        rc, stored = 0, profile_changed = 0, differ;
    size_t                     i, nmissing = 0;
    uint32_t                   s, n;
    uint64_t                   digest;
    cef_span_t                 key_type;
    cef_profile_t              prof;
    cef_expr_ctx_t             ctx;
    cef_replay_in_t            in;
    const cef_ref_t           *ref;
    const cef_record_slot_t   *was, *now;
    cef_decision_input_t       din;
    const cef_expr_symtab_t   *st;
    const char                *hash;

    memset(&in, 0, sizeof(in));

    in.p = cef_persona_create();
    if (in.p == NULL) {
        fprintf(stderr, "cef-rules: out of memory\n");
        return CEF_EXIT_USAGE;
    }

    for (i = 0; i < rec->ninputs; i++) {
        if (rec->inputs[i].v.type == CEF_VAL_NIL
            || strncmp(rec->inputs[i].path, "time.", 5) == 0)
        {
            continue;       /* null, or computed from the recorded time */
        }

        if (cef_persona_set(in.p, rec->inputs[i].path, &rec->inputs[i].v)
            != 0)
        {
            fprintf(stderr, "cef-rules: out of memory\n");
            cef_persona_free(in.p);
            return CEF_EXIT_USAGE;
        }
    }

    /* today's profile, by the recorded profile id */

    if (rec->profile.len) {
        if (rp->store == NULL) {
            fprintf(stderr, "cef-rules: %sthe record names profile \"%.*s\": "
                    "replay needs --store DIR --secret FILE\n", where,
                    (int) rec->profile.len, rec->profile.data);
            cef_persona_free(in.p);
            return CEF_EXIT_USAGE;
        }

        rc = cef_store_lookup_id(rp->store, rp->ident, rec->profile.data,
                                 rec->profile.len, &prof);

        if (rc == CEF_STORE_ERROR) {
            fprintf(stderr, "cef-rules: %s%s\n", where,
                    cef_store_strerror(rp->store));
            cef_persona_free(in.p);
            return CEF_EXIT_USAGE;
        }

        stored = (rc == CEF_STORE_OK);

        if (stored && rec->has_digest
            && (cef_record_profile_digest(&prof, &digest) != 0
                || digest != rec->digest))
        {
            profile_changed = 1;
        }
    }

    key_type = rec->key_type;
    cef_rules_visitor_init(&in.vis, stored ? &prof : NULL, -1, key_type);

    memset(&ctx, 0, sizeof(ctx));
    ctx.lookup = cef_replay_lookup;
    ctx.data = &in;
    ctx.now = rec->now;
    ctx.utc_offset = rec->utc_offset;

    for (i = 0; i < rec->nstates; i++) {
        cef_decision_set_state(rp->d, rec->states[i].plugin,
                               rec->states[i].state);
    }

    /* experiments bucket by the visitor id, else the profile's */

    din.visitor = rec->visitor.len ? rec->visitor : rec->profile;

    (void) cef_decision_make(rp->rs, rp->ev, &ctx, &din, rp->d);

    n = cef_rules_nslots(rp->rs);
    cef_record_slots(rp->now, rp->rs, rp->d->slots);

    differ = 0;

    for (i = 0; i < rec->nslots; i++) {
        now = cef_replay_slot(rp->now, n, rec->slots[i].slot);
        differ |= now == NULL || !cef_replay_same(&rec->slots[i], now);
    }

    for (s = 0; s < n; s++) {
        was = cef_replay_slot(rec->slots, rec->nslots, rp->now[s].slot);
        differ |= was == NULL;
    }

    hash = cef_rules_hash(rp->rs);

    printf("%s%s:", where, differ ? "different" : "same");

    for (i = 0; i < rec->nslots; i++) {
        printf(" %s=%s", rec->slots[i].slot, rec->slots[i].offer
                                             ? rec->slots[i].offer : "-");
    }

    printf("\n");

    if (!differ) {
        cef_persona_free(in.p);
        return CEF_EXIT_OK;
    }

    /* what changed in general, then slot by slot */

    if (strcmp(rec->rules, hash) != 0) {
        printf("  the rule set changed: %.12s then, %.12s now\n", rec->rules,
               hash);
    }

    if (rec->profile.len && !stored) {
        printf("  profile \"%.*s\" is no longer in the store\n",
               (int) rec->profile.len, rec->profile.data);

    } else if (profile_changed) {
        printf("  profile \"%.*s\" changed since the decision (store %s "
               "seq %llu then",
               (int) rec->profile.len, rec->profile.data,
               cef_or_none(rec->snapshot), (unsigned long long) rec->seq);

        if (rp->has_info) {
            printf(", %s seq %llu now)\n", rp->info.snapshot_id,
                   (unsigned long long) rp->info.last_seq);
        } else {
            printf(")\n");
        }
    }

    st = cef_rules_symtab(rp->rs);

    for (s = 0; s < cef_expr_symtab_count(st); s++) {
        ref = cef_expr_symtab_ref(st, s);

        if (ref->kind == CEF_REF_PROFILE || ref->kind == CEF_REF_TIME_HOUR
            || ref->kind == CEF_REF_TIME_WEEKDAY
            || ref->kind == CEF_REF_TIME_NOW)
        {
            continue;
        }

        for (i = 0; i < rec->ninputs; i++) {
            if (strcmp(rec->inputs[i].path, ref->path.data) == 0) {
                break;
            }
        }

        if (i == rec->ninputs) {
            printf("  %s %s", nmissing++ ? "," : "  not recorded (read as "
                   "null):", ref->path.data);
        }
    }

    if (nmissing) {
        printf("\n");
    }

    for (i = 0; i < rec->nslots; i++) {
        was = &rec->slots[i];
        now = cef_replay_slot(rp->now, n, was->slot);

        if (now == NULL) {
            printf("  %s: recorded ", was->slot);
            cef_replay_print_slot(was);
            printf(", now the rule set has no such slot\n");
            continue;
        }

        if (cef_replay_same(was, now)) {
            continue;
        }

        printf("  %s: recorded ", was->slot);
        cef_replay_print_slot(was);
        printf("\n%*s now ", (int) strlen(was->slot) + 3, "");
        cef_replay_print_slot(now);
        printf("\n");

        cef_replay_why(rp, was, now);
    }

    for (s = 0; s < n; s++) {
        if (cef_replay_slot(rec->slots, rec->nslots, rp->now[s].slot)
            == NULL)
        {
            printf("  %s: a new slot, now ", rp->now[s].slot);
            cef_replay_print_slot(&rp->now[s]);
            printf("\n");
        }
    }

    cef_persona_free(in.p);

    return CEF_EXIT_PROBLEM;
}


static int
cef_replay_open_store(cef_replay_t *rp, const char *dir, const char *secret)
{
    char  err[512];

    rp->ident = cef_identity_create_from_file(secret, err, sizeof(err));
    if (rp->ident == NULL) {
        fprintf(stderr, "cef-rules: %s\n", err);
        return -1;
    }

    if (cef_store_open(&rp->store, dir, err, sizeof(err)) != CEF_STORE_OK) {
        rp->store = NULL;
        fprintf(stderr, "cef-rules: %s\n", err);
        return -1;
    }

    if (cef_store_begin(rp->store) != CEF_STORE_OK) {
        fprintf(stderr, "cef-rules: %s\n", cef_store_strerror(rp->store));
        cef_store_close(rp->store);
        rp->store = NULL;
        return -1;
    }

    if (cef_store_check_secret(rp->store, rp->ident) != CEF_STORE_OK) {
        fprintf(stderr, "cef-rules: the secret is not the one the store was "
                "loaded with\n");
        cef_store_end(rp->store);
        cef_store_close(rp->store);
        rp->store = NULL;
        return -1;
    }

    rp->has_info = cef_store_info(rp->store, &rp->info) == CEF_STORE_OK;

    return 0;
}


static int
cef_replay_log(cef_replay_t *rp, const char *path)
{
    FILE          *fp;
    char          *line = NULL, err[512], where[64];
    size_t         cap = 0;
    ssize_t        len;
    unsigned long  lineno = 0, records = 0;
    int            rc, worst = CEF_EXIT_OK, r;
    cef_record_t   rec;

    fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (fp == NULL) {
        fprintf(stderr, "cef-rules: %s: cannot open\n", path);
        return CEF_EXIT_USAGE;
    }

    while ((len = getline(&line, &cap, fp)) >= 0) {
        lineno++;

        rc = cef_record_from_log_line(line, (size_t) len, &rec, err,
                                      sizeof(err));
        if (rc == 1) {
            continue;
        }

        snprintf(where, sizeof(where), "line %lu: ", lineno);

        if (rc != 0) {
            fprintf(stderr, "cef-rules: %s:%lu: %s\n", path, lineno, err);
            cef_record_release(&rec);
            worst = CEF_EXIT_USAGE;
            continue;
        }

        records++;
        r = cef_replay_one(rp, &rec, where);
        cef_record_release(&rec);

        if (r == CEF_EXIT_USAGE || (r == CEF_EXIT_PROBLEM
                                    && worst == CEF_EXIT_OK))
        {
            worst = r;
        }
    }

    free(line);

    if (fp != stdin) {
        fclose(fp);
    }

    if (records == 0 && worst == CEF_EXIT_OK) {
        fprintf(stderr, "cef-rules: %s: no decision records\n", path);
        return CEF_EXIT_USAGE;
    }

    return worst;
}


int
cef_tool_replay(int argc, char **argv)
{
    int            i, rc = CEF_EXIT_USAGE;
    char           err[512];
    const char    *rules = NULL, *store = NULL, *secret = NULL;
    const char    *decision = NULL, *log = NULL;
    cef_record_t   rec;
    cef_replay_t   rp;

    memset(&rp, 0, sizeof(rp));

    for (i = 0; i < argc; i++) {
        if (i + 1 >= argc) {
            fprintf(stderr, "cef-rules: %s needs a value\n", argv[i]);
            goto usage;
        }

        if (strcmp(argv[i], "--rules") == 0) {
            rules = argv[++i];
        } else if (strcmp(argv[i], "--store") == 0) {
            store = argv[++i];
        } else if (strcmp(argv[i], "--secret") == 0) {
            secret = argv[++i];
        } else if (strcmp(argv[i], "--decision") == 0) {
            decision = argv[++i];
        } else if (strcmp(argv[i], "--log") == 0) {
            log = argv[++i];
        } else {
            fprintf(stderr, "cef-rules: unknown option '%s'\n", argv[i]);
            goto usage;
        }
    }

    if (rules == NULL || (decision == NULL) == (log == NULL)
        || (store == NULL) != (secret == NULL))
    {
        fprintf(stderr, "cef-rules: replay needs --rules FILE, one of "
                "--decision RECORD and --log FILE, and --store DIR with "
                "--secret FILE\n");
        goto usage;
    }

    rp.rs = cef_tool_load(rules);
    if (rp.rs == NULL) {
        return CEF_EXIT_USAGE;
    }

    rp.ev = cef_rules_eval_create(rp.rs);
    rp.d = cef_decision_create(rp.rs);
    rp.now = calloc(cef_rules_nslots(rp.rs) + 1, sizeof(cef_record_slot_t));

    if (rp.ev == NULL || rp.d == NULL || rp.now == NULL) {
        fprintf(stderr, "cef-rules: out of memory\n");
        goto done;
    }

    if (store && cef_replay_open_store(&rp, store, secret) != 0) {
        goto done;
    }

    rp.store_dir = store;

    if (log) {
        rc = cef_replay_log(&rp, log);
        goto done;
    }

    if (cef_record_parse(decision, strlen(decision), &rec, err, sizeof(err))
        != 0)
    {
        fprintf(stderr, "cef-rules: --decision: %s\n", err);
        cef_record_release(&rec);
        goto done;
    }

    rc = cef_replay_one(&rp, &rec, "");
    cef_record_release(&rec);

done:

    if (rp.store) {
        cef_store_end(rp.store);
        cef_store_close(rp.store);
    }

    cef_identity_free(rp.ident);
    cef_decision_free(rp.d);
    cef_expr_eval_free(rp.ev);
    cef_rules_free(rp.rs);
    free(rp.now);

    return rc;

usage:

    cef_tool_usage();
    return CEF_EXIT_USAGE;
}
