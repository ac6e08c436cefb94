/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * What a bandit decision costs over a weighted one (make bench-bandit-cost,
 * issue 19: at most 0.3 us more).  The same rule set (10 rules, a slot of
 * three offers, every rule matching) decided with strategy weighted and
 * with strategy bandit, weights published (one version, as between two
 * publications), visitors rotating over 1000 ids: a new visitor (the
 * draw, the assignment written into the plugin state) and a returning one
 * (the state read and kept).  Signing the state cookie is nginx's part and
 * is the same HMAC freqcap pays; it is not in these figures.  Prints
 * figures; asserts nothing.
 *
 *   bench_bandit_cost time           median ns per decision, thread CPU
 *   bench_bandit_cost callgrind S N  N decisions of scenario S (weighted,
 *                                    new, kept) with callgrind collection
 *                                    on (run under valgrind
 *                                    --collect-atstart=no)
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <valgrind/callgrind.h>

#include "cef_decision.h"


#define NOW       1795438800
#define VISITORS  1000


static const char  *rules_fmt =
    "version: 1\n"
    "offers:\n"
    "  ha: {slot: hero, html: A}\n"
    "  hb: {slot: hero, html: B}\n"
    "  hc: {slot: hero, html: C}\n"
    "rules:\n"
    "  - {name: r1, when: 'time.hour >= 0', show: ha}\n"
    "  - {name: r2, when: 'time.hour >= 0', show: hb}\n"
    "  - {name: r3, when: 'time.hour >= 0', show: hc}\n"
    "  - {name: r4, when: 'time.hour > 30', show: ha}\n"
    "  - {name: r5, when: 'time.hour > 30', show: hb}\n"
    "  - {name: r6, when: 'time.hour > 30', show: hc}\n"
    "  - {name: r7, when: 'time.hour > 30', show: ha}\n"
    "  - {name: r8, when: 'time.hour > 30', show: hb}\n"
    "  - {name: r9, when: 'time.hour > 30', show: hc}\n"
    "  - {name: r10, when: 'time.hour > 30', show: ha}\n"
    "goals: {purchase: {}}\n"
    "slots:\n"
    "  hero: %s\n";


static const cef_span_t  arms[] = {
    { "ha", 2 }, { "hb", 2 }, { "hc", 2 }
};
static const uint32_t    bp[] = { 2000, 3000, 5000 };


static int
published(void *data, const char *experiment, const char *salt,
    cef_plugin_weights_t *out)
{
    (void) data;
    (void) experiment;
    (void) salt;

    out->version = 1795400000;
    out->created_at = 1795400000;
    out->narms = 3;
    out->arms = arms;
    out->bp = bp;

    return 1;
}


typedef struct {
    cef_rules_t      *rs;
    cef_expr_eval_t  *ev;
    cef_decision_t   *d;
    int               kept;          /* send the visitor's state */
    char              ids[VISITORS][16];
    char              state[VISITORS][CEF_DECISION_STATE_MAX + 1];
    size_t            len[VISITORS];
} bench_t;


static void
bench_init(bench_t *b, const char *strategy, int kept)
{
    char                 y[2048], line[400];
    cef_rules_errors_t   errs;
    uint32_t             i, k;

    snprintf(y, sizeof(y), rules_fmt, strategy);

    if (cef_rules_load_buffer("bench.yaml", y, strlen(y), &b->rs, &errs)
        != 0)
    {
        cef_rules_error_format(&errs, 0, line, sizeof(line));
        fprintf(stderr, "%s\n", line);
        exit(1);
    }

    cef_rules_errors_free(&errs);

    b->ev = cef_rules_eval_create(b->rs);
    b->d = cef_decision_create(b->rs);
    cef_decision_set_weights(b->d, published, NULL);
    b->kept = kept;

    for (i = 0; i < VISITORS; i++) {
        snprintf(b->ids[i], sizeof(b->ids[i]), "vis-%06u", i * 7919);
        b->state[i][0] = '\0';
    }

    if (!kept) {
        return;
    }

    /* each visitor's assignment, as their cookie would carry it */

    for (i = 0; i < VISITORS; i++) {
        cef_expr_ctx_t        ctx;
        cef_decision_input_t  in;

        memset(&ctx, 0, sizeof(ctx));
        ctx.now = NOW;
        in.visitor.data = b->ids[i];
        in.visitor.len = strlen(b->ids[i]);
        cef_decision_make(b->rs, b->ev, &ctx, &in, b->d);

        for (k = 0; k < b->d->nstates; k++) {
            if (b->d->states[k].changed) {
                memcpy(b->state[i], b->d->states[k].out,
                       b->d->states[k].out_len);
                b->state[i][b->d->states[k].out_len] = '\0';
                b->len[i] = b->d->states[k].out_len;
            }
        }
    }
}


static void
bench_free(bench_t *b)
{
    cef_decision_free(b->d);
    cef_expr_eval_free(b->ev);
    cef_rules_free(b->rs);
}


static inline void
bench_one(bench_t *b, uint32_t i)
{
    cef_expr_ctx_t        ctx;
    cef_decision_input_t  in;
    const char           *s = b->state[i % VISITORS];

    memset(&ctx, 0, sizeof(ctx));
    ctx.now = NOW;
    in.visitor.data = b->ids[i % VISITORS];
    in.visitor.len = 10;

    if (b->kept) {
        cef_decision_set_state(b->d, "bandit",
                               (cef_span_t) { s, b->len[i % VISITORS] });
    }

    cef_decision_make(b->rs, b->ev, &ctx, &in, b->d);
}


static double
ns_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);

    return ts.tv_sec * 1e9 + ts.tv_nsec;
}


static int
cmp(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return x < y ? -1 : x > y;
}


static double
bench_time(bench_t *b)
{
    double    r[41], t;
    uint32_t  k, i;

    for (k = 0; k < 41; k++) {
        t = ns_now();
        for (i = 0; i < 20000; i++) {
            bench_one(b, i);
        }
        r[k] = (ns_now() - t) / 20000;
    }

    qsort(r, 41, sizeof(double), cmp);

    return r[20];
}


static const char *
strategy_of(const char *scenario)
{
    return strcmp(scenario, "weighted") == 0
           ? "{strategy: weighted, weights: {ha: 2, hb: 3, hc: 5}}"
           : "{strategy: bandit, goal: purchase}";
}


int
main(int argc, char **argv)
{
    bench_t  *b = calloc(1, sizeof(bench_t));
    double    w, n, k;
    uint32_t  i, count;

    if (argc >= 4 && strcmp(argv[1], "callgrind") == 0) {
        count = (uint32_t) strtoul(argv[3], NULL, 10);
        bench_init(b, strategy_of(argv[2]), strcmp(argv[2], "kept") == 0);

        for (i = 0; i < 1000; i++) {
            bench_one(b, i);                /* warm */
        }

        CALLGRIND_START_INSTRUMENTATION;
        CALLGRIND_TOGGLE_COLLECT;
        for (i = 0; i < count; i++) {
            bench_one(b, i);
        }
        CALLGRIND_TOGGLE_COLLECT;
        CALLGRIND_STOP_INSTRUMENTATION;

        bench_free(b);
        free(b);
        return 0;
    }

    if (argc != 2 || strcmp(argv[1], "time") != 0) {
        fprintf(stderr, "usage: bench_bandit_cost time | callgrind "
                "weighted|new|kept N\n");
        return 2;
    }

    bench_init(b, strategy_of("weighted"), 0);
    w = bench_time(b);
    bench_free(b);

    memset(b, 0, sizeof(*b));
    bench_init(b, strategy_of("new"), 0);
    n = bench_time(b);
    bench_free(b);

    memset(b, 0, sizeof(*b));
    bench_init(b, strategy_of("kept"), 1);
    k = bench_time(b);
    bench_free(b);

    printf("decision, median of 41 x 20000, thread CPU time:\n");
    printf("  weighted                    %7.1f ns\n", w);
    printf("  bandit, new visitor         %7.1f ns  (%+.1f ns)\n", n, n - w);
    printf("  bandit, returning (kept)    %7.1f ns  (%+.1f ns)\n", k, k - w);

    free(b);

    return 0;
}
