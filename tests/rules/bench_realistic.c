/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Rule engine benchmark on the rules marketers write (issue 22; make
 * bench-rules runs it): a generated rule file of 10, 100 or 1 000 rules
 * whose conditions are segment membership, map lookups, numeric
 * thresholds and string equality on a lifecycle field, two or three per
 * rule, with offers that greet by {{ profile.first_name }}; decided with
 * cef_decision_make() (what nginx calls) against 4 096 reference profiles
 * stored as cef-sync stores them (lib/writer's encoder: interned names and
 * strings, decimals) and read in place.  Identity and the store lookup are
 * not part of it (`cef-bench decide` measures those).  Prints figures;
 * asserts nothing.
 *
 *   bench_realistic time N          median ns per decision at N rules
 *   bench_realistic callgrind N C   C decisions at N rules, callgrind
 *                                   collection on around them only
 *   bench_realistic cold N C        the same, each decision after 8 MB of
 *                                   other data went through the caches:
 *                                   with --cache-sim=yes, the cache lines a
 *                                   decision misses in a cold worker
 *   bench_realistic compile N [R]   compile time of N such rules (wall
 *                                   clock and the thread's CPU time,
 *                                   median of R runs, 3 by default;
 *                                   callgrind collection on around the
 *                                   loads only)
 *   bench_realistic yaml N          the rule file, on stdout
 *   bench_realistic stats N         rules matching per profile, and
 *                                   candidates of the index
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <msgpack.h>
#include <valgrind/callgrind.h>

#include "cef_decision.h"
#include "cef_encode.h"
#include "cef_rules.h"
#include "cef_rules_visitor.h"


#define NOW        1795438800
#define COLD_BYTES (8u << 20)    /* more than the LL cache callgrind
                                    simulates */
#define NPROFILES  4096
#define NSEGS      120
#define NCATS      20
#define NSTAGES    6

static const char  *stages[NSTAGES] = { "new", "active", "loyal", "at_risk",
                                        "lapsed", "churned" };
static const char  *slots[3] = { "hero", "banner", "sidebar" };
static const char  *first[] = { "Alice", "Bob", "Carla", "David", "Emma",
                                "Felix", "Greta", "Hugo", "Ines", "Jonas",
                                "Klara", "Lukas", "Mia", "Noah", "Olivia",
                                "Paul" };


static uint64_t
splitmix(uint64_t *x)
{
    uint64_t  z = (*x += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}


static uint32_t
rnd(uint64_t *x, uint32_t n)
{
    return (uint32_t) (splitmix(x) % n);
}


/* --- the rule file -------------------------------------------------------- */

#define put(...)  (n += (size_t) snprintf(buf + n, cap - n, __VA_ARGS__))

/* one condition; kind 0: segment, 1: lifecycle, 2: threshold, 3: map */
static size_t
condition(char *buf, size_t cap, uint64_t *x, uint32_t kind)
{
    size_t  n = 0;

    switch (kind) {
    case 0:
        put("\"seg_%03u\" in profile.segments", rnd(x, NSEGS));
        break;
    case 1:
        put("profile.lifecycle == \"%s\"", stages[rnd(x, NSTAGES)]);
        break;
    case 2:
        switch (rnd(x, 4)) {
        case 0: put("profile.clv >= %u", 100 * (1 + rnd(x, 20))); break;
        case 1: put("profile.orders > %u", rnd(x, 10)); break;
        case 2: put("profile.churn_risk >= 0.%u", 3 + rnd(x, 6)); break;
        default: put("profile.nps <= %u", 3 + rnd(x, 6)); break;
        }
        break;
    default:
        put("profile.interests.cat_%02u >= 0.%u", rnd(x, NCATS),
            4 + rnd(x, 5));
    }

    return n;
}


/*
 * nrules rules over 3 slots: each targets a segment (70 %) or a lifecycle
 * stage and adds one or two conditions of any kind; random priorities.
 * Three fallback rules (lowest priority, one per slot) match everyone, so
 * every slot is filled and a decision without an index tries every rule
 * above them that is still open.
 */
static char *
make_rules(uint32_t nrules, size_t *len)
{
    size_t    cap = 4096 + (size_t) nrules * 600, n = 0;
    char     *buf = malloc(cap);
    uint32_t  i, k, nc;
    uint64_t  x = 22 + nrules;

    if (buf == NULL) {
        exit(1);
    }

    put("version: 1\noffers:\n");

    for (i = 0; i < nrules + 3; i++) {
        put("  o%u:\n    slot: %s\n", i, slots[i % 3]);

        if (i % 2 == 0) {
            put("    html: '<div class=\"offer\">Hi {{ profile.first_name | "
                "default(\"friend\") }}, offer %u is yours</div>'\n", i);
        } else {
            put("    html: '<div class=\"offer\">Offer %u: 10%% off "
                "today</div>'\n", i);
        }
    }

    put("rules:\n");

    for (i = 0; i < nrules; i++) {
        put("  - name: rule %u\n    when: '", i);
        n += condition(buf + n, cap - n, &x, rnd(&x, 10) < 7 ? 0 : 1);
        nc = 1 + rnd(&x, 2);

        for (k = 0; k < nc; k++) {
            put(" and ");
            n += condition(buf + n, cap - n, &x, rnd(&x, 4));
        }

        put("'\n    show: o%u\n    priority: %u\n", i, 10 + rnd(&x, 1000));
    }

    for (i = nrules; i < nrules + 3; i++) {
        put("  - name: fallback %u\n    when: profile.clv >= 0\n"
            "    show: o%u\n", i - nrules, i);
    }

    *len = n;
    return buf;
}

#undef put


static cef_rules_t *
load(uint32_t nrules, double *ms, double *cpu_ms)
{
    char                *yaml, line[512];
    size_t               len;
    cef_rules_t         *rs;
    cef_rules_errors_t   errs;
    struct timespec      a, b, ca, cb;

    yaml = make_rules(nrules, &len);
    clock_gettime(CLOCK_MONOTONIC, &a);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ca);

    if (ms) {                           /* compile: count the load only */
        CALLGRIND_TOGGLE_COLLECT;
    }

    if (cef_rules_load_buffer("realistic.yaml", yaml, len, &rs, &errs) != 0)
    {
        cef_rules_error_format(&errs, 0, line, sizeof(line));
        fprintf(stderr, "bench: %s\n", line);
        exit(1);
    }

    if (ms) {
        CALLGRIND_TOGGLE_COLLECT;
    }

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cb);
    clock_gettime(CLOCK_MONOTONIC, &b);

    if (ms) {
        *ms = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
        *cpu_ms = (cb.tv_sec - ca.tv_sec) * 1e3
                  + (cb.tv_nsec - ca.tv_nsec) / 1e6;
    }

    cef_rules_errors_free(&errs);
    free(yaml);

    return rs;
}


/* --- the reference profiles ----------------------------------------------- */

static void
pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}


/* profile i's attributes: 18 of them, 3 to 6 segments, 5 interests */
static void
pack_profile(msgpack_packer *pk, uint32_t i)
{
    uint64_t  x = i * 0x2545f4914f6cdd1dULL + 1;
    uint32_t  k, nseg = 3 + rnd(&x, 4), seg0 = rnd(&x, NSEGS),
              cat0 = rnd(&x, NCATS);
    char      s[32];

    msgpack_pack_map(pk, 18);
    pack_str(pk, "first_name");
    pack_str(pk, first[rnd(&x, 16)]);
    pack_str(pk, "last_name");
    snprintf(s, sizeof(s), "Name%u", i);
    pack_str(pk, s);
    pack_str(pk, "email_opt_in");
    rnd(&x, 2) ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    pack_str(pk, "lifecycle");
    pack_str(pk, stages[rnd(&x, NSTAGES)]);
    pack_str(pk, "clv");
    msgpack_pack_double(pk, rnd(&x, 300000) / 100.0);
    pack_str(pk, "orders");
    msgpack_pack_int(pk, (int) rnd(&x, 15));
    pack_str(pk, "churn_risk");
    msgpack_pack_double(pk, rnd(&x, 101) / 100.0);
    pack_str(pk, "nps");
    msgpack_pack_int(pk, (int) rnd(&x, 11));
    pack_str(pk, "country");
    pack_str(pk, rnd(&x, 2) ? "DE" : "FR");
    pack_str(pk, "city");
    pack_str(pk, rnd(&x, 2) ? "Berlin" : "Lyon");
    pack_str(pk, "last_purchase_at");
    msgpack_pack_int64(pk, NOW - rnd(&x, 400) * 86400);
    pack_str(pk, "created_at");
    msgpack_pack_int64(pk, NOW - rnd(&x, 2000) * 86400);
    pack_str(pk, "preferred_channel");
    pack_str(pk, rnd(&x, 2) ? "email" : "sms");
    pack_str(pk, "device");
    pack_str(pk, rnd(&x, 2) ? "mobile" : "desktop");
    pack_str(pk, "loyalty_points");
    msgpack_pack_int(pk, (int) rnd(&x, 5000));
    pack_str(pk, "avg_basket");
    msgpack_pack_double(pk, rnd(&x, 20000) / 100.0);

    pack_str(pk, "segments");
    msgpack_pack_array(pk, nseg);
    for (k = 0; k < nseg; k++) {
        snprintf(s, sizeof(s), "seg_%03u", (seg0 + k * 37) % NSEGS);
        pack_str(pk, s);
    }

    pack_str(pk, "interests");
    msgpack_pack_map(pk, 5);
    for (k = 0; k < 5; k++) {
        snprintf(s, sizeof(s), "cat_%02u", (cat0 + k * 7) % NCATS);
        pack_str(pk, s);
        msgpack_pack_double(pk, rnd(&x, 101) / 100.0);
    }
}


typedef struct {
    cef_encode_t    enc;
    cef_dict_t      dict;
    uint8_t        *blobs[NPROFILES];
    size_t          lens[NPROFILES];
    cef_profile_t   profiles[NPROFILES];
} store_t;


/* the profiles as cef-sync stores them: lib/writer's encoder */
static void
make_store(store_t *st)
{
    msgpack_sbuffer    sb;
    msgpack_packer     pk;
    msgpack_unpacked   u;
    msgpack_object    *m;
    uint32_t           i, k;
    uint16_t           hint = 0;
    char               id[16];

    memset(st, 0, sizeof(*st));

    if (cef_encode_init(&st->enc) != 0) {
        exit(1);
    }

    msgpack_sbuffer_init(&sb);
    msgpack_unpacked_init(&u);

    for (i = 0; i < NPROFILES; i++) {
        msgpack_sbuffer_clear(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        pack_profile(&pk, i);

        if (msgpack_unpack_next(&u, sb.data, sb.size, NULL)
            != MSGPACK_UNPACK_SUCCESS)
        {
            exit(1);
        }

        cef_encode_begin(&st->enc);
        m = &u.data;

        for (k = 0; k < m->via.map.size; k++) {
            if (cef_encode_attr(&st->enc, m->via.map.ptr[k].key.via.str.ptr,
                                m->via.map.ptr[k].key.via.str.size,
                                &m->via.map.ptr[k].val) != 0)
            {
                exit(1);
            }
        }

        snprintf(id, sizeof(id), "c%09u", i);

        if (cef_encode_profile(&st->enc, &hint, 1, id, strlen(id)) != 0) {
            exit(1);
        }

        st->lens[i] = st->enc.blob.size;
        st->blobs[i] = malloc(st->lens[i]);
        if (st->blobs[i] == NULL) {
            exit(1);
        }
        memcpy(st->blobs[i], st->enc.blob.data, st->lens[i]);
    }

    st->dict.names = st->enc.names.tab;
    st->dict.strs = st->enc.strs.tab;

    if (cef_dict_index(&st->dict) != 0) {
        exit(1);
    }

    for (i = 0; i < NPROFILES; i++) {
        if (cef_profile_parse(st->blobs[i], st->lens[i], &st->dict,
                              &st->profiles[i]) != 0)
        {
            fprintf(stderr, "bench: bad stored profile %u\n", i);
            exit(1);
        }
    }

    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}


/* --- decisions ------------------------------------------------------------ */

typedef struct {
    const cef_rules_t    *rs;
    cef_expr_eval_t      *ev;
    cef_decision_t       *d;
    cef_rules_visitor_t   vis;
    cef_expr_ctx_t        ctx;
    cef_decision_input_t  in;
} bench_t;


/* one decision as the module makes it, for profile i */
static uint32_t
decide(bench_t *b, store_t *st, uint32_t i)
{
    cef_rules_visitor_init(&b->vis, &st->profiles[i], 0,
                           cef_span_lit("customer"));

    return cef_decision_make(b->rs, b->ev, &b->ctx, &b->in, b->d);
}


static void
bench_init(bench_t *b, const cef_rules_t *rs)
{
    memset(b, 0, sizeof(*b));
    b->rs = rs;
    b->ev = cef_rules_eval_create(rs);
    b->d = cef_decision_create(rs);

    if (b->ev == NULL || b->d == NULL) {
        fprintf(stderr, "bench: out of memory\n");
        exit(1);
    }

    b->ctx.lookup = cef_rules_visitor_lookup;
    b->ctx.data = &b->vis;
    b->ctx.now = NOW;
    b->in.visitor = cef_span_lit("AAAAAAAAAAAAAAAAAAAAAA");
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


/* how many rules match a profile, and how many the index lets through,
   on average */
static void
stats(bench_t *b, store_t *st)
{
    const cef_rules_t  *rs = b->rs;
    const uint64_t     *cand;
    uint32_t            i, r, n = cef_rules_nrules(rs);
    uint64_t            matching = 0, candidates = 0;

    for (i = 0; i < NPROFILES; i++) {
        cef_rules_visitor_init(&b->vis, &st->profiles[i], 0,
                               cef_span_lit("customer"));
        cef_expr_eval_reset(b->ev, &b->ctx);

        for (r = 0; r < n; r++) {
            matching += cef_expr_match(cef_rules_rule(rs, r)->when, b->ev);
        }

        cand = cef_rules_candidates(rs, b->ev);

        for (r = 0; r < (n + 63) / 64; r++) {
            candidates += cand ? (uint64_t) __builtin_popcountll(cand[r])
                               : 64;
        }
    }

    printf("rules: %u; per profile: %.1f match, %.1f candidates of the "
           "index\n", n, (double) matching / NPROFILES,
           (double) candidates / NPROFILES);
}


int
main(int argc, char **argv)
{
    static store_t   st;
    bench_t          b;
    cef_rules_t     *rs;
    uint32_t         nrules, i, j, count;
    uint64_t         sink = 0;
    double           batch[101], cpu[101], t0, c0;
    uint8_t         *cold;
    char            *yaml;
    size_t           len;

    if (argc < 3) {
        fprintf(stderr, "usage: bench_realistic time N | callgrind N COUNT "
                "| cold N COUNT "
                "| compile N | yaml N | stats N\n");
        return 2;
    }

    nrules = (uint32_t) strtoul(argv[2], NULL, 10);

    if (strcmp(argv[1], "yaml") == 0) {
        yaml = make_rules(nrules, &len);
        fwrite(yaml, 1, len, stdout);
        free(yaml);
        return 0;
    }

    if (strcmp(argv[1], "compile") == 0) {
        count = argc > 3 ? (uint32_t) strtoul(argv[3], NULL, 10) : 3;
        if (count < 1 || count > 101) {
            count = 3;
        }

        for (i = 0; i < count; i++) {
            cef_rules_free(load(nrules, &batch[i], &cpu[i]));
        }

        qsort(batch, count, sizeof(double), cmp_double);
        qsort(cpu, count, sizeof(double), cmp_double);
        printf("compile: %u realistic rules in %.1f ms, %.1f ms CPU "
               "(median of %u; goal <= 100 ms at 10000)\n", nrules,
               batch[count / 2], cpu[count / 2], count);
        return 0;
    }

    rs = load(nrules, NULL, NULL);
    make_store(&st);
    bench_init(&b, rs);

    if (strcmp(argv[1], "stats") == 0) {
        stats(&b, &st);
        return 0;
    }

    for (i = 0; i < NPROFILES; i++) {        /* warm up */
        sink += decide(&b, &st, i);
    }

    if (strcmp(argv[1], "callgrind") == 0) {
        count = argc > 3 ? (uint32_t) strtoul(argv[3], NULL, 10) : 10000;

        CALLGRIND_TOGGLE_COLLECT;
        for (i = 0; i < count; i++) {
            sink += decide(&b, &st, (i * 7919u) % NPROFILES);
        }
        CALLGRIND_TOGGLE_COLLECT;

        printf("%u decisions (%.2f slots filled)\n", count,
               (double) sink / (count + NPROFILES));
        return 0;
    }

    if (strcmp(argv[1], "cold") == 0) {
        count = argc > 3 ? (uint32_t) strtoul(argv[3], NULL, 10) : 2000;
        cold = malloc(COLD_BYTES);
        if (cold == NULL) {
            return 1;
        }
        memset(cold, 1, COLD_BYTES);

        for (i = 0; i < count; i++) {
            /* what a worker's caches hold after the kernel's TCP work
               and nginx's own: other data (run with --cache-sim=yes) */
            for (j = 0; j < COLD_BYTES; j += 64) {
                sink += cold[j]++;
            }

            CALLGRIND_TOGGLE_COLLECT;
            sink += decide(&b, &st, (i * 7919u) % NPROFILES);
            CALLGRIND_TOGGLE_COLLECT;
        }

        printf("%u decisions after evicting the caches (%llu)\n", count,
               (unsigned long long) sink);
        free(cold);
        return 0;
    }

    /* 101 batches of NPROFILES decisions (every profile once, in a
       scattered order): the median batch's time per decision, wall-clock
       and the thread's CPU time (which other processes on a busy machine
       inflate less: they take turns, not cycles) */

    for (j = 0; j < 101; j++) {
        t0 = now_ns(CLOCK_MONOTONIC);
        c0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
        for (i = 0; i < NPROFILES; i++) {
            sink += decide(&b, &st, (i * 7919u) % NPROFILES);
        }
        cpu[j] = (now_ns(CLOCK_THREAD_CPUTIME_ID) - c0) / NPROFILES;
        batch[j] = (now_ns(CLOCK_MONOTONIC) - t0) / NPROFILES;
    }

    qsort(batch, 101, sizeof(double), cmp_double);
    qsort(cpu, 101, sizeof(double), cmp_double);

    printf("realistic %u rules: median %.0f ns per decision (p5 %.0f, p95 "
           "%.0f), CPU time %.0f ns; goal <= %s\n", nrules, batch[50],
           batch[5], batch[95], cpu[50],
           nrules <= 100 ? "1000 ns" : "2500 ns");

    cef_decision_free(b.d);
    cef_expr_eval_free(b.ev);
    cef_rules_free(rs);

    return sink == 0;
}
