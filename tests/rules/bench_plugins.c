/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Rule plugin benchmark (make bench-plugins): one decision with 100 rules,
 * 3 slots, an experiment (10 % holdout, two arms) on one slot and
 * frequency caps (state in, state out) active, visitors rotating over
 * 1000 ids.  Prints figures; asserts nothing.
 *
 *   bench_plugins time           median ns per decision (cef_decision_make),
 *                                and with the caps cookie verified and
 *                                re-signed as nginx does per request; CPU
 *                                time of the thread (robust on a busy
 *                                machine) and wall-clock time
 *   bench_plugins callgrind N    N decisions with callgrind collection on
 *                                (run under valgrind --collect-atstart=no)
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <valgrind/callgrind.h>

#include "cef_decision.h"
#include "cef_persona.h"


#define NOW       1795438800
#define VISITORS  1000


/*
 * 100 rules over 3 slots; the reference profile matches a few rules per
 * slot, so the experiment slot (which wants every candidate) evaluates all
 * of its rules and the other two stop at their first match.
 */
static char *
make_rules(size_t *len)
{
    size_t   cap = 64 * 1024, n = 0, i;
    char    *buf = malloc(cap);
    static const char  *slots[] = { "hero", "side", "footer" };
    static const char  *when[] = {
        "profile.churn_risk >= 0.7 and profile.clv >= 500",
        "'\"vip\" in profile.segments'",
        "profile.interests.shoes >= 0.8",
        "request.path starts_with \"/checkout\"",
        "var.country in [\"FR\", \"IT\", \"ES\"]",
        "days_since(profile.last_purchase_at) > 90",
        "request.arg.utm_campaign == \"spring\"",
        "profile.orders > 20 or profile.clv > 5000",
        "time.hour >= 22 or time.hour < 6",
        "'request.path matches \"^/(sale|outlet)/\"'",
    };

    n += (size_t) snprintf(buf + n, cap - n, "version: 1\noffers:\n");

    for (i = 0; i < 100; i++) {
        n += (size_t) snprintf(buf + n, cap - n,
                               "  o%zu:\n    slot: %s\n    html: '<p>Offer "
                               "%zu for {{ profile.first_name | "
                               "default(\"you\") }}</p>'\n"
                               "    campaign: c%zu\n", i, slots[i % 3], i,
                               i % 5);
    }

    n += (size_t) snprintf(buf + n, cap - n, "rules:\n");

    for (i = 0; i < 100; i++) {
        n += (size_t) snprintf(buf + n, cap - n,
                               "  - name: rule %zu\n    when: %s\n"
                               "    show: o%zu\n    priority: %zu\n", i,
                               i < 9 ? "profile.clv > 100" : when[i % 10], i,
                               (i * 37) % 100);
    }

    n += (size_t) snprintf(buf + n, cap - n,
                           "slots:\n"
                           "  hero:\n"
                           "    holdout: 10%%\n"
                           "    experiment:\n"
                           "      name: hero-q4\n"
                           "      variants: {a: 50, b: {weight: 50, "
                           "offers: [o3]}}\n"
                           "plugins:\n"
                           "  freqcap:\n"
                           "    caps:\n"
                           "      - {campaign: c0, max: 3, per: 7d}\n"
                           "      - {campaign: c1, max: 5, per: 1d}\n"
                           "      - {campaign: c2, max: 1, per: 1h}\n");

    *len = n;
    return buf;
}


typedef struct {
    cef_persona_t      *p;
    cef_value_t        *vals;
    int                *have;
} profile_t;


static int
profile_lookup(void *data, const cef_ref_t *ref, cef_value_t *out)
{
    profile_t  *pr = data;

    if (!pr->have[ref->id]) {
        return 0;
    }

    *out = pr->vals[ref->id];
    return 1;
}


static void
make_profile(profile_t *pr, const cef_rules_t *rs)
{
    const cef_expr_symtab_t  *st = cef_rules_symtab(rs);
    uint32_t                  i, n = cef_expr_symtab_count(st);
    cef_span_t                segs[] = { cef_span_lit("newsletter"),
                                         cef_span_lit("gold"),
                                         cef_span_lit("mobile") };
    cef_span_t                keys[] = { cef_span_lit("shoes"),
                                         cef_span_lit("jackets"),
                                         cef_span_lit("hats") };
    double                    nums[] = { 0.3, 0.7, 0.1 };

    pr->p = cef_persona_create();
    cef_persona_set_num(pr->p, "profile.clv", 320);
    cef_persona_set_num(pr->p, "profile.churn_risk", 0.2);
    cef_persona_set_num(pr->p, "profile.orders", 4);
    cef_persona_set_str(pr->p, "profile.first_name", "Ann", 3);
    cef_persona_set_array(pr->p, "profile.segments", segs, 3);
    cef_persona_set_map(pr->p, "profile.interests", keys, nums, 3);
    cef_persona_set_num(pr->p, "profile.last_purchase_at", NOW - 20 * 86400);
    cef_persona_set_str(pr->p, "request.path", "/products/boots", 15);
    cef_persona_set_str(pr->p, "var.country", "DE", 2);

    pr->vals = calloc(n + 1, sizeof(cef_value_t));
    pr->have = calloc(n + 1, sizeof(int));

    for (i = 0; i < n; i++) {
        pr->have[i] = cef_persona_lookup(pr->p, cef_expr_symtab_ref(st, i),
                                         &pr->vals[i]);
    }
}


typedef struct {
    const cef_rules_t    *rs;
    cef_expr_eval_t      *ev;
    cef_decision_t       *d;
    cef_expr_ctx_t        ctx;
    cef_signer_t         *signer;
    char                  ids[VISITORS][23];
    char                  cookie[VISITORS][600];
    size_t                cookie_len[VISITORS];
    long                  i;
    int                   keep;          /* store the new states */
} bench_t;


/* one decision; with_cookie: verify the state as nginx would, and sign
 * the new one */
static uint32_t
decide(bench_t *b, int with_cookie)
{
    long                   v = b->i++ % VISITORS;
    uint32_t               shown;
    cef_span_t             in, out;
    cef_decision_input_t   dip;
    cef_decision_state_t  *st = &b->d->states[0];
    size_t                 len;
    char                   buf[600];

    dip.visitor.data = b->ids[v];
    dip.visitor.len = 22;

    in.data = b->cookie[v];
    in.len = b->cookie_len[v];

    if (with_cookie) {
        if (in.len
            && cef_decision_state_verify(b->signer, "freqcap", in, &out)
               == 0)
        {
            cef_decision_set_state(b->d, "freqcap", out);
        }

    } else if (in.len) {
        /* the state as a verified cookie would give it */
        out.data = in.data;
        out.len = (const char *) memrchr(in.data, '.', in.len) - in.data;
        cef_decision_set_state(b->d, "freqcap", out);
    }

    shown = cef_decision_make(b->rs, b->ev, &b->ctx, &dip, b->d);

    if (with_cookie && st->changed) {
        len = cef_decision_state_sign(b->signer, "freqcap", st->out,
                                      st->out_len, buf);

        /* only the warm-up keeps it: every measured round starts from the
         * same states (otherwise the caps would soon block most offers,
         * which makes decisions cheaper) */

        if (b->keep) {
            memcpy(b->cookie[v], buf, len);
            b->cookie_len[v] = len;
        }
    }

    return shown;
}


static double
now_ns(clockid_t clock)
{
    struct timespec  ts;

    clock_gettime(clock, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}


static int
cmp_double(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return x < y ? -1 : x > y;
}


int
main(int argc, char **argv)
{
    static bench_t       b;
    cef_rules_t         *rs;
    cef_rules_errors_t   errs;
    profile_t            pr;
    char                *yaml, line[512];
    size_t               len;
    double               batch[201], cpu[201], t0, c0, sink = 0;
    long                 i, j, n;
    int                  round;
    cef_span_t           secret = cef_span_lit("bench-signing-secret");

    if (argc < 2) {
        fprintf(stderr, "usage: bench_plugins time | callgrind N\n");
        return 2;
    }

    yaml = make_rules(&len);

    if (cef_rules_load_buffer("bench.yaml", yaml, len, &rs, &errs) != 0) {
        cef_rules_error_format(&errs, 0, line, sizeof(line));
        fprintf(stderr, "bench: %s\n", line);
        return 1;
    }

    cef_rules_errors_free(&errs);
    free(yaml);

    make_profile(&pr, rs);

    b.rs = rs;
    b.ev = cef_rules_eval_create(rs);
    b.d = cef_decision_create(rs);
    b.signer = cef_signer_create(&secret, 1, NULL, 0);
    b.ctx.lookup = profile_lookup;
    b.ctx.data = &pr;
    b.ctx.now = NOW;

    for (i = 0; i < VISITORS; i++) {
        snprintf(b.ids[i], sizeof(b.ids[i]), "%022ld", i * 7919);
    }

    /* every visitor has seen a few impressions already: campaign c2
     * (max 1) is capped for most, c0 and c1 are not */

    b.keep = 1;

    for (i = 0; i < 2 * VISITORS; i++) {
        decide(&b, 1);
    }

    b.keep = 0;

    if (strcmp(argv[1], "callgrind") == 0) {
        n = argc > 2 ? atol(argv[2]) : 10000;

        CALLGRIND_TOGGLE_COLLECT;
        for (i = 0; i < n; i++) {
            sink += decide(&b, 0);
        }
        CALLGRIND_TOGGLE_COLLECT;

        printf("%ld decisions (%g offers shown)\n", n, sink / n);
        return 0;
    }

    printf("rules: %u, slots: %u, experiment on hero (10%% holdout, 2 "
           "arms), 3 frequency caps, %d visitors\n", cef_rules_nrules(rs),
           cef_rules_nslots(rs), VISITORS);

    for (round = 0; round < 2; round++) {
        for (i = 0; i < 20000; i++) {
            sink += decide(&b, round);
        }

        for (j = 0; j < 201; j++) {
            t0 = now_ns(CLOCK_MONOTONIC);
            c0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
            for (i = 0; i < 2000; i++) {
                sink += decide(&b, round);
            }
            cpu[j] = (now_ns(CLOCK_THREAD_CPUTIME_ID) - c0) / 2000;
            batch[j] = (now_ns(CLOCK_MONOTONIC) - t0) / 2000;
        }

        qsort(batch, 201, sizeof(double), cmp_double);
        qsort(cpu, 201, sizeof(double), cmp_double);

        /*
         * CPU time does not count the time other processes had the CPU, so
         * it is the figure to compare on a shared machine; wall time is
         * printed too
         */

        printf("%s: median %.0f ns CPU per decision (p5 %.0f, p95 %.0f; "
               "goal <= 2000 ns); wall clock median %.0f ns\n",
               round ? "decision + caps cookie verified and re-signed"
                     : "decision (cef_decision_make)",
               cpu[100], cpu[10], cpu[190], batch[100]);
    }

    cef_decision_format(b.d, line, sizeof(line));
    printf("last decision: %s\n", line);

    cef_signer_free(b.signer);
    cef_decision_free(b.d);
    cef_expr_eval_free(b.ev);
    cef_rules_free(rs);

    return sink < 0;
}
