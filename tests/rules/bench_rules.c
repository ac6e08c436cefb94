/*
 * Copyright (C) ngx_cef_module developers
 *
 * Rule engine benchmark (make bench-rules): 100 rules against a reference
 * profile, and compiling 10 000 rules.  Prints figures; asserts nothing.
 *
 *   bench_rules time          median ns per decision, compile time
 *   bench_rules callgrind N   N decisions with callgrind collection on
 *                             (run under valgrind --collect-atstart=no)
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <valgrind/callgrind.h>

#include "cef_rules.h"
#include "cef_rules_persona.h"


#define NOW  1795438800


/*
 * 100 rules over 10 slots, priorities 0..99.  The reference profile
 * matches only a few low-priority rules, so a decision evaluates almost
 * every rule: the expensive case.
 */
static char *
make_rules(size_t nrules, size_t *len)
{
    size_t   cap = 512 + nrules * 400, n = 0, i;
    char    *buf = malloc(cap);
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

    for (i = 0; i < nrules; i++) {
        n += (size_t) snprintf(buf + n, cap - n,
                               "  o%zu:\n    slot: s%zu\n    html: '<p>Offer "
                               "%zu for {{ profile.first_name | "
                               "default(\"you\") }}</p>'\n", i, i % 10, i);
    }

    n += (size_t) snprintf(buf + n, cap - n, "rules:\n");

    for (i = 0; i < nrules; i++) {
        n += (size_t) snprintf(buf + n, cap - n,
                               "  - name: rule %zu\n    when: %s\n"
                               "    show: o%zu\n    priority: %zu\n", i,
                               i < 10 ? "profile.clv > 100"
                                      : when[i % 10], i,
                               (i * 37) % 100);
    }

    *len = n;
    return buf;
}


/* The reference profile: values looked up by reference id, as a profile
 * view with pre-resolved attribute ids would. */
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


static double
now_ns(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}


static int
cmp_double(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return x < y ? -1 : x > y;
}


static cef_rules_t *
load(size_t nrules, double *ns)
{
    char                *yaml;
    size_t               len;
    cef_rules_t         *rs;
    cef_rules_errors_t   errs;
    double               t0;

    yaml = make_rules(nrules, &len);
    t0 = now_ns();

    if (cef_rules_load_buffer("bench.yaml", yaml, len, &rs, &errs) != 0) {
        char  line[512];

        cef_rules_error_format(&errs, 0, line, sizeof(line));
        fprintf(stderr, "bench: %s\n", line);
        exit(1);
    }

    if (ns) {
        *ns = now_ns() - t0;
    }

    cef_rules_errors_free(&errs);
    free(yaml);

    return rs;
}


int
main(int argc, char **argv)
{
    cef_rules_t         *rs;
    cef_expr_eval_t     *ev;
    cef_expr_ctx_t       ctx;
    cef_rules_choice_t   choices[16];
    profile_t            pr;
    double               batch[201], t0, compile[3], sink = 0;
    long                 i, j, n;
    int                  rounds;

    if (argc < 2) {
        fprintf(stderr, "usage: bench_rules time | callgrind N\n");
        return 2;
    }

    rs = load(100, NULL);
    make_profile(&pr, rs);
    ev = cef_rules_eval_create(rs);

    memset(&ctx, 0, sizeof(ctx));
    ctx.lookup = profile_lookup;
    ctx.data = &pr;
    ctx.now = NOW;

    if (strcmp(argv[1], "callgrind") == 0) {
        n = argc > 2 ? atol(argv[2]) : 10000;

        cef_rules_decide(rs, ev, &ctx, choices);    /* warm up */

        CALLGRIND_TOGGLE_COLLECT;
        for (i = 0; i < n; i++) {
            sink += cef_rules_decide(rs, ev, &ctx, choices);
        }
        CALLGRIND_TOGGLE_COLLECT;

        printf("%ld decisions (%g slots decided)\n", n, sink / n);
        return 0;
    }

    /* evaluation: 201 batches of 2000 decisions, the median batch */

    for (i = 0; i < 20000; i++) {
        sink += cef_rules_decide(rs, ev, &ctx, choices);
    }

    for (j = 0; j < 201; j++) {
        t0 = now_ns();
        for (i = 0; i < 2000; i++) {
            sink += cef_rules_decide(rs, ev, &ctx, choices);
        }
        batch[j] = (now_ns() - t0) / 2000;
    }

    qsort(batch, 201, sizeof(double), cmp_double);

    printf("rules: %u, slots: %u, decided per decision: %u\n",
           cef_rules_nrules(rs), cef_rules_nslots(rs),
           cef_rules_decide(rs, ev, &ctx, choices));
    printf("evaluation: median %.0f ns per decision (p5 %.0f, p95 %.0f; "
           "goal <= 1000 ns)\n", batch[100], batch[10], batch[190]);

    /* compiling 10 000 rules */

    for (rounds = 0; rounds < 3; rounds++) {
        cef_rules_free(load(10000, &compile[rounds]));
    }

    qsort(compile, 3, sizeof(double), cmp_double);
    printf("compile: 10000 rules in %.0f ms (median of 3; goal <= 1000 ms)\n",
           compile[1] / 1e6);

    cef_expr_eval_free(ev);
    cef_rules_free(rs);
    cef_persona_free(pr.p);
    free(pr.vals);
    free(pr.have);

    return sink < 0;
}
