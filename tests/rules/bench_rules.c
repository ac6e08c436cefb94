/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Rule engine benchmark (make bench-rules): 100 rules against a reference
 * profile, and compiling 10 000 rules.  Prints figures; asserts nothing.
 *
 *   bench_rules time          median ns per decision, compile time
 *   bench_rules compile       compile time of large and hostile files:
 *                             400 000 placeholders, 100 000 nesting levels,
 *                             100 000 offers with plugin keys
 *   bench_rules callgrind N [stored]
 *                             N decisions with callgrind collection on
 *                             (run under valgrind --collect-atstart=no);
 *                             "stored": read a stored profile in place
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <msgpack.h>
#include <valgrind/callgrind.h>

#include "cef_rules.h"
#include "cef_persona.h"
#include "cef_rules_visitor.h"


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


/*
 * The same profile as the store keeps it: a msgpack map of attribute ids
 * in a stored profile, names in a dictionary, read in place through
 * cef_rules_visitor_lookup(); request fields and variables from the table.
 */
typedef struct {
    profile_t            *table;
    cef_dict_t            dict;
    cef_span_t            names[7];
    msgpack_sbuffer       blob;
    cef_profile_t         profile;
    cef_rules_visitor_t   vis;
} stored_t;


static int
stored_lookup(void *data, const cef_ref_t *ref, cef_value_t *out)
{
    stored_t  *sp = data;

    if (ref->kind == CEF_REF_PROFILE || ref->kind == CEF_REF_VISITOR_NEW
        || ref->kind == CEF_REF_VISITOR_KEY_TYPE)
    {
        return cef_rules_visitor_lookup(&sp->vis, ref, out);
    }

    return profile_lookup(sp->table, ref, out);
}


static void
make_stored(stored_t *sp, profile_t *table)
{
    static const char  *names[] = { "clv", "churn_risk", "orders",
                                    "first_name", "segments", "interests",
                                    "last_purchase_at" };
    msgpack_packer      pk;
    size_t              i;

    memset(sp, 0, sizeof(*sp));
    sp->table = table;

    for (i = 0; i < 7; i++) {
        sp->names[i].data = names[i];
        sp->names[i].len = strlen(names[i]);
    }

    sp->dict.names.s = sp->names;
    sp->dict.names.n = 7;
    if (cef_dict_index(&sp->dict) != 0) {
        exit(1);
    }

    msgpack_sbuffer_init(&sp->blob);
    msgpack_packer_init(&pk, &sp->blob, msgpack_sbuffer_write);
    msgpack_sbuffer_write(&sp->blob, "\x01\x00\x08" "cust-001", 11);
    msgpack_pack_map(&pk, 7);
    msgpack_pack_uint32(&pk, 0);
    msgpack_pack_int(&pk, 320);
    msgpack_pack_uint32(&pk, 1);
    msgpack_pack_double(&pk, 0.2);
    msgpack_pack_uint32(&pk, 2);
    msgpack_pack_int(&pk, 4);
    msgpack_pack_uint32(&pk, 3);
    msgpack_pack_str(&pk, 3);
    msgpack_pack_str_body(&pk, "Ann", 3);
    msgpack_pack_uint32(&pk, 4);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_str(&pk, 10);
    msgpack_pack_str_body(&pk, "newsletter", 10);
    msgpack_pack_str(&pk, 4);
    msgpack_pack_str_body(&pk, "gold", 4);
    msgpack_pack_str(&pk, 6);
    msgpack_pack_str_body(&pk, "mobile", 6);
    msgpack_pack_uint32(&pk, 5);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str(&pk, 5);
    msgpack_pack_str_body(&pk, "shoes", 5);
    msgpack_pack_double(&pk, 0.3);
    msgpack_pack_str(&pk, 7);
    msgpack_pack_str_body(&pk, "jackets", 7);
    msgpack_pack_double(&pk, 0.7);
    msgpack_pack_str(&pk, 4);
    msgpack_pack_str_body(&pk, "hats", 4);
    msgpack_pack_double(&pk, 0.1);
    msgpack_pack_uint32(&pk, 6);
    msgpack_pack_int64(&pk, NOW - 20 * 86400);

    if (cef_profile_parse((const uint8_t *) sp->blob.data, sp->blob.size,
                          &sp->dict, &sp->profile) != 0)
    {
        fprintf(stderr, "bench: bad stored profile\n");
        exit(1);
    }

    cef_rules_visitor_init(&sp->vis, &sp->profile, 0,
                           (cef_span_t) { NULL, 0 });
}


/* one decision; a stored profile is indexed afresh, as per request */
static uint32_t
decide(const cef_rules_t *rs, cef_expr_eval_t *ev, cef_expr_ctx_t *ctx,
    cef_rules_choice_t *choices)
{
    stored_t  *sp;

    if (ctx->lookup == stored_lookup) {
        sp = ctx->data;
        cef_rules_visitor_init(&sp->vis, &sp->profile, 0,
                               (cef_span_t) { NULL, 0 });
    }

    return cef_rules_decide(rs, ev, ctx, choices);
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


/* --- compile time of large and hostile files (issue 16) ------------------- */

static char *
gen_alloc(size_t cap, size_t *len)
{
    char  *buf = malloc(cap);

    if (buf == NULL) {
        fprintf(stderr, "bench: out of memory\n");
        exit(1);
    }

    *len = 0;
    return buf;
}


#define gen_put(buf, cap, len, ...)                                          \
    *(len) += (size_t) snprintf((buf) + *(len), (cap) - *(len), __VA_ARGS__)


/* one offer whose html holds n placeholders */
static char *
gen_placeholders(size_t n, size_t *len)
{
    size_t  cap = 256 + n * 16, i;
    char   *buf = gen_alloc(cap, len);

    gen_put(buf, cap, len, "version: 1\noffers:\n  a:\n    slot: hero\n"
            "    html: '");
    for (i = 0; i < n; i++) {
        gen_put(buf, cap, len, "{{ profile.a }}");
    }
    gen_put(buf, cap, len, "'\nrules:\n  - {name: r, show: a}\n");

    return buf;
}


/* n levels of [ ]: refused at the 65th */
static char *
gen_nesting(size_t n, size_t *len)
{
    size_t  cap = 256 + n * 2, i;
    char   *buf = gen_alloc(cap, len);

    gen_put(buf, cap, len, "version: 1\noffers:\n  a:\n    slot: hero\n"
            "    html: x\n    description: ");
    for (i = 0; i < n; i++) {
        buf[(*len)++] = '[';
    }
    for (i = 0; i < n; i++) {
        buf[(*len)++] = ']';
    }
    gen_put(buf, cap, len, "\nrules:\n  - {name: r, show: a}\n");

    return buf;
}


/* n offers with a plugin key, all shown by one rule per 1000 */
static char *
gen_offers(size_t n, size_t *len)
{
    size_t  cap = 256 + n * 64, i, k;
    char   *buf = gen_alloc(cap, len);

    gen_put(buf, cap, len, "version: 1\noffers:\n");
    for (i = 0; i < n; i++) {
        gen_put(buf, cap, len, "  o%zu: {slot: s%zu, html: x, hours: 11-14}"
                "\n", i, i % 1000);
    }
    gen_put(buf, cap, len, "rules:\n");
    for (i = 0; i < n; i += 1000) {
        gen_put(buf, cap, len, "  - name: r%zu\n    show: [o%zu", i, i);
        for (k = i + 1; k < i + 1000 && k < n; k++) {
            gen_put(buf, cap, len, ", o%zu", k);
        }
        gen_put(buf, cap, len, "]\n");
    }

    return buf;
}


static double
compile_ms(char *(*gen)(size_t, size_t *), size_t n, int *ok)
{
    size_t               len;
    char                *yaml = gen(n, &len);
    double               t0, ms;
    cef_rules_t         *rs;
    cef_rules_errors_t   errs;

    t0 = now_ns();
    *ok = cef_rules_load_buffer("bench.yaml", yaml, len, &rs, &errs) == 0;
    ms = (now_ns() - t0) / 1e6;

    cef_rules_free(rs);
    cef_rules_errors_free(&errs);
    free(yaml);

    return ms;
}


/* each case at n/2 and n: linear compiling doubles, no more */
static void
compile_cases(void)
{
    static const struct {
        const char  *what;
        char      *(*gen)(size_t, size_t *);
        size_t       n;
    } cases[] = {
        { "placeholders in one offer", gen_placeholders, 400000 },
        { "nesting levels (refused at 65)", gen_nesting, 100000 },
        { "offers with a plugin key, 1000 per rule", gen_offers, 100000 },
    };
    size_t  i;
    double  half, full;
    int     ok1, ok2;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        half = compile_ms(cases[i].gen, cases[i].n / 2, &ok1);
        full = compile_ms(cases[i].gen, cases[i].n, &ok2);
        printf("compile: %zu %s: %.0f ms (%zu: %.0f ms)%s\n", cases[i].n,
               cases[i].what, full, cases[i].n / 2, half,
               ok2 ? "" : ", refused");
    }
}


int
main(int argc, char **argv)
{
    cef_rules_t         *rs;
    cef_expr_eval_t     *ev;
    cef_expr_ctx_t       ctx;
    cef_rules_choice_t   choices[16];
    profile_t            pr;
    stored_t             sp;
    double               batch[201], t0, compile[3], sink = 0, med[2];
    long                 i, j, n;
    int                  rounds;

    if (argc < 2) {
        fprintf(stderr, "usage: bench_rules time | compile | callgrind N "
                "[stored]\n");
        return 2;
    }

    if (strcmp(argv[1], "compile") == 0) {
        compile_cases();
        return 0;
    }

    rs = load(100, NULL);
    make_profile(&pr, rs);
    ev = cef_rules_eval_create(rs);

    memset(&ctx, 0, sizeof(ctx));
    ctx.lookup = profile_lookup;
    ctx.data = &pr;
    ctx.now = NOW;

    make_stored(&sp, &pr);

    if (argc > 3 && strcmp(argv[3], "stored") == 0) {
        ctx.lookup = stored_lookup;
        ctx.data = &sp;
    }

    if (strcmp(argv[1], "callgrind") == 0) {
        n = argc > 2 ? atol(argv[2]) : 10000;

        decide(rs, ev, &ctx, choices);    /* warm up */

        CALLGRIND_TOGGLE_COLLECT;
        for (i = 0; i < n; i++) {
            sink += decide(rs, ev, &ctx, choices);
        }
        CALLGRIND_TOGGLE_COLLECT;

        printf("%ld decisions (%g slots decided)\n", n, sink / n);
        return 0;
    }

    /*
     * evaluation: 201 batches of 2000 decisions, the median batch; first
     * with values pre-resolved by reference id, then reading a stored
     * profile in place
     */

    printf("rules: %u, slots: %u, slots decided per decision: %u\n",
           cef_rules_nrules(rs), cef_rules_nslots(rs),
           decide(rs, ev, &ctx, choices));

    for (rounds = 0; rounds < 2; rounds++) {
        ctx.lookup = rounds ? stored_lookup : profile_lookup;
        ctx.data = rounds ? (void *) &sp : (void *) &pr;

        for (i = 0; i < 20000; i++) {
            sink += decide(rs, ev, &ctx, choices);
        }

        for (j = 0; j < 201; j++) {
            t0 = now_ns();
            for (i = 0; i < 2000; i++) {
                sink += decide(rs, ev, &ctx, choices);
            }
            batch[j] = (now_ns() - t0) / 2000;
        }

        qsort(batch, 201, sizeof(double), cmp_double);
        med[rounds] = batch[100];

        printf("evaluation (%s): median %.0f ns per decision (p5 %.0f, "
               "p95 %.0f; goal <= 1000 ns)\n",
               rounds ? "stored profile read in place"
                      : "values by reference id",
               batch[100], batch[10], batch[190]);
    }

    (void) med;

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
    free(sp.dict.names_hash);
    msgpack_sbuffer_destroy(&sp.blob);

    return sink < 0;
}
