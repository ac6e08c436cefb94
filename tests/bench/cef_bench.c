/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * make bench helper (tests/bench/bench.py drives it).  Prints figures;
 * asserts nothing.
 *
 *   cef-bench snapshot N                 a snapshot of N reference profiles
 *                                        (msgpack) on stdout, for
 *                                        `cef-sync load ... -`
 *   cef-bench deltas N SEQ COUNT         COUNT delta records (msgpack) from
 *                                        sequence SEQ on stdout: 70% patch,
 *                                        20% upsert of an existing profile,
 *                                        10% keys; no deletes, so every
 *                                        visitor keeps a profile
 *   cef-bench profiles IDS               the reference profiles of the ids
 *                                        in file IDS (one a line) as TSV,
 *                                        for the Lua server's shared dict
 *   cef-bench scan PAGE COUNT [callgrind]
 *                                        the slot scanner of the body filter
 *                                        over PAGE (one buffer, as nginx
 *                                        reads a small file): ns per page,
 *                                        events per page
 *   cef-bench decide STORE SECRET SIGNING RULES N COUNT [callgrind]
 *                                        COUNT decisions as nginx makes
 *                                        them for a page: verify a signed
 *                                        customer key, hash it, look the
 *                                        profile up, decide the rules,
 *                                        render the offers.  Prints the
 *                                        median and p99 in ns; with
 *                                        "callgrind" (under valgrind
 *                                        --collect-atstart=no) only the
 *                                        measured pass is collected.
 *
 * Profile i has the keys customer:i and email:user<i>@example.com, id
 * "c" + 9 digits, and attributes that are a function of i alone, so that
 * every tool that needs them (the Lua server, the checks) computes the
 * same ones.
 */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <msgpack.h>
#include <valgrind/callgrind.h>

#include "cef_identity.h"
#include "cef_rules.h"
#include "cef_rules_visitor.h"
#include "cef_sign.h"
#include "cef_slot_scanner.h"
#include "cef_store.h"
#include "cef_template.h"

/*
 * With the rule plugins (issue 6), a decision is cef_decision_make():
 * strategies, experiments and holdouts, caps.  Before them,
 * cef_rules_decide().
 */
#if defined(__has_include)
#if __has_include("cef_decision.h")
#include "cef_decision.h"
#define CEF_BENCH_DECISION  1
#endif
#endif


static const char  *segs[] = {
    "vip", "newsletter", "cart_abandoner", "high_value", "mobile_app",
    "sports_fan", "bargain_hunter", "new_customer", "loyalty_gold",
    "loyalty_silver", "outdoor", "tech_enthusiast", "parent", "student",
    "frequent_buyer", "weekend_shopper", "email_engaged", "sms_engaged",
    "premium_brand", "lapsed_buyer"
};

static const char  *cats[] = {
    "sports", "outdoor", "books", "electronics", "fashion", "home",
    "garden", "toys", "beauty", "music", "travel", "food"
};

static const char  *stages[] = { "new", "active", "at_risk", "lapsed",
                                 "vip" };

static const char  *names[] = {
    "Alice", "Bob", "Carla", "David", "Emma", "Felix", "Greta", "Hugo",
    "Ines", "Jonas", "Klara", "Lukas", "Mia", "Noah", "Olivia", "Paul",
    "Quinn", "Rosa", "Sam", "Tina", "Uwe", "Vera", "Wim", "Xenia", "Yusuf",
    "Zoe", "Anna", "Ben", "Chloe", "Daniel", "Elena", "Finn", "Hannah",
    "Jakob", "Lea", "Max", "Nina", "Oskar", "Lena", "Tim"
};

#define NELEM(a)  (sizeof(a) / sizeof((a)[0]))


/* The reference profile of visitor i: a pure function of i. */
typedef struct {
    uint32_t  seg[3];
    double    clv, clv_predicted, churn_risk;
    int       nps, orders;
    uint32_t  lifecycle, first_name;
    int64_t   last_purchase_at;
    uint32_t  cat[3];
    double    interest[3];
    int       consent_email, consent_sms;
} ref_profile_t;


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


static void
ref_profile(uint32_t i, ref_profile_t *p)
{
    uint64_t  x = i * 0x2545f4914f6cdd1dULL + 1;
    uint32_t  a, b, c;

    a = rnd(&x, NELEM(segs));
    b = (a + 1 + rnd(&x, NELEM(segs) - 2)) % NELEM(segs);
    c = (b + 1) % NELEM(segs) == a ? (b + 2) % NELEM(segs)
                                   : (b + 1) % NELEM(segs);
    p->seg[0] = a;
    p->seg[1] = b;
    p->seg[2] = c;
    p->clv = rnd(&x, 500000) / 100.0;
    p->clv_predicted = rnd(&x, 800000) / 100.0;
    p->churn_risk = rnd(&x, 101) / 100.0;
    p->nps = (int) rnd(&x, 11);
    p->orders = (int) rnd(&x, 60);
    p->lifecycle = rnd(&x, NELEM(stages));
    p->first_name = rnd(&x, NELEM(names));
    p->last_purchase_at = 1600000000 + rnd(&x, 100000000);
    a = rnd(&x, NELEM(cats));
    p->cat[0] = a;
    p->cat[1] = (a + 1) % NELEM(cats);
    p->cat[2] = (a + 5) % NELEM(cats);
    p->interest[0] = rnd(&x, 101) / 100.0;
    p->interest[1] = rnd(&x, 101) / 100.0;
    p->interest[2] = rnd(&x, 101) / 100.0;
    p->consent_email = (int) rnd(&x, 2);
    p->consent_sms = (int) rnd(&x, 2);
}


static void
pack_str(msgpack_packer *pk, const char *s)
{
    size_t  n = strlen(s);

    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}


static void
pack_attrs(msgpack_packer *pk, uint32_t i)
{
    int            k;
    ref_profile_t  p;

    ref_profile(i, &p);

    msgpack_pack_map(pk, 12);
    pack_str(pk, "segments");
    msgpack_pack_array(pk, 3);
    for (k = 0; k < 3; k++) {
        pack_str(pk, segs[p.seg[k]]);
    }
    pack_str(pk, "clv");
    msgpack_pack_double(pk, p.clv);
    pack_str(pk, "clv_predicted");
    msgpack_pack_double(pk, p.clv_predicted);
    pack_str(pk, "churn_risk");
    msgpack_pack_double(pk, p.churn_risk);
    pack_str(pk, "nps");
    msgpack_pack_int(pk, p.nps);
    pack_str(pk, "orders");
    msgpack_pack_int(pk, p.orders);
    pack_str(pk, "lifecycle");
    pack_str(pk, stages[p.lifecycle]);
    pack_str(pk, "first_name");
    pack_str(pk, names[p.first_name]);
    pack_str(pk, "last_purchase_at");
    msgpack_pack_int64(pk, p.last_purchase_at);
    pack_str(pk, "interests");
    msgpack_pack_map(pk, 3);
    for (k = 0; k < 3; k++) {
        pack_str(pk, cats[p.cat[k]]);
        msgpack_pack_double(pk, p.interest[k]);
    }
    pack_str(pk, "consent_email");
    p.consent_email ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    pack_str(pk, "consent_sms");
    p.consent_sms ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
}


static void
pack_keys(msgpack_packer *pk, uint32_t i)
{
    char  buf[64];

    msgpack_pack_array(pk, 2);
    msgpack_pack_array(pk, 2);
    pack_str(pk, "customer");
    snprintf(buf, sizeof(buf), "%u", i);
    pack_str(pk, buf);
    msgpack_pack_array(pk, 2);
    pack_str(pk, "email");
    snprintf(buf, sizeof(buf), "user%u@example.com", i);
    pack_str(pk, buf);
}


static int
flush(msgpack_sbuffer *sb)
{
    if (fwrite(sb->data, 1, sb->size, stdout) != sb->size) {
        return -1;
    }
    msgpack_sbuffer_clear(sb);
    return 0;
}


static int
gen_snapshot(uint32_t n)
{
    char             id[32];
    uint32_t         i;
    msgpack_sbuffer  sb;
    msgpack_packer   pk;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

    msgpack_pack_map(&pk, 4);
    pack_str(&pk, "cef"); pack_str(&pk, "snapshot");
    pack_str(&pk, "version"); msgpack_pack_int(&pk, 1);
    pack_str(&pk, "id"); pack_str(&pk, "bench");
    pack_str(&pk, "created_at"); msgpack_pack_int64(&pk, 1760000000);

    for (i = 0; i < n; i++) {
        msgpack_pack_map(&pk, 3);
        pack_str(&pk, "id");
        snprintf(id, sizeof(id), "c%09u", i);
        pack_str(&pk, id);
        pack_str(&pk, "keys");
        pack_keys(&pk, i);
        pack_str(&pk, "attrs");
        pack_attrs(&pk, i);

        if (sb.size > (1 << 20) && flush(&sb) != 0) {
            return -1;
        }
    }

    msgpack_pack_map(&pk, 2);
    pack_str(&pk, "end"); msgpack_pack_true(&pk);
    pack_str(&pk, "count"); msgpack_pack_uint32(&pk, n);

    if (flush(&sb) != 0 || fflush(stdout) != 0) {
        return -1;
    }

    msgpack_sbuffer_destroy(&sb);
    return 0;
}


/* SIGTERM/SIGINT end a delta stream at a record boundary */
static volatile sig_atomic_t  stop;

static void
on_stop(int signo)
{
    (void) signo;
    stop = 1;
}


static int
gen_deltas(uint32_t n, uint64_t seq, uint64_t count)
{
    char              id[32], buf[64];
    uint32_t          r, p;
    uint64_t          i, x = seq;
    msgpack_sbuffer   sb;
    msgpack_packer    pk;
    struct sigaction  sa;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

    msgpack_pack_map(&pk, 2);
    pack_str(&pk, "cef"); pack_str(&pk, "delta");
    pack_str(&pk, "version"); msgpack_pack_int(&pk, 1);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    for (i = 0; i < count && !stop; i++, seq++) {
        r = rnd(&x, 100);
        p = rnd(&x, n);
        snprintf(id, sizeof(id), "c%09u", p);

        if (r < 70) {
            msgpack_pack_map(&pk, 4);
            pack_str(&pk, "seq"); msgpack_pack_uint64(&pk, seq);
            pack_str(&pk, "op"); pack_str(&pk, "patch");
            pack_str(&pk, "id"); pack_str(&pk, id);
            pack_str(&pk, "set");
            msgpack_pack_map(&pk, 2);
            pack_str(&pk, "clv_predicted");
            msgpack_pack_double(&pk, rnd(&x, 800000) / 100.0);
            pack_str(&pk, "nps");
            msgpack_pack_int(&pk, (int) rnd(&x, 11));

        } else if (r < 90) {
            /* the same profile again: the rules see the same values */
            msgpack_pack_map(&pk, 5);
            pack_str(&pk, "seq"); msgpack_pack_uint64(&pk, seq);
            pack_str(&pk, "op"); pack_str(&pk, "upsert");
            pack_str(&pk, "id"); pack_str(&pk, id);
            pack_str(&pk, "keys");
            pack_keys(&pk, p);
            pack_str(&pk, "attrs");
            pack_attrs(&pk, p);

        } else {
            msgpack_pack_map(&pk, 4);
            pack_str(&pk, "seq"); msgpack_pack_uint64(&pk, seq);
            pack_str(&pk, "op"); pack_str(&pk, "keys");
            pack_str(&pk, "id"); pack_str(&pk, id);
            pack_str(&pk, "add");
            msgpack_pack_array(&pk, 1);
            msgpack_pack_array(&pk, 2);
            pack_str(&pk, "device");
            snprintf(buf, sizeof(buf), "dev-%llu", (unsigned long long) seq);
            pack_str(&pk, buf);
        }

        if (sb.size > (64 << 10) && flush(&sb) != 0) {
            return -1;
        }
    }

    if (flush(&sb) != 0 || fflush(stdout) != 0) {
        return -1;
    }

    msgpack_sbuffer_destroy(&sb);
    return 0;
}


/*
 * TSV for the Lua server: id, first_name, lifecycle, clv, churn_risk, nps,
 * orders, segments (comma-joined), interests (cat:score comma-joined).
 */
static int
gen_profiles(const char *path)
{
    char           line[64];
    FILE          *f;
    uint32_t       i;
    ref_profile_t  p;

    f = fopen(path, "r");
    if (f == NULL) {
        perror(path);
        return -1;
    }

    while (fgets(line, sizeof(line), f)) {
        i = (uint32_t) strtoul(line, NULL, 10);
        ref_profile(i, &p);
        printf("%u\t%s\t%s\t%.2f\t%.2f\t%d\t%d\t%s,%s,%s\t%s:%.2f,%s:%.2f,"
               "%s:%.2f\n", i, names[p.first_name], stages[p.lifecycle],
               p.clv, p.churn_risk, p.nps, p.orders, segs[p.seg[0]],
               segs[p.seg[1]], segs[p.seg[2]], cats[p.cat[0]], p.interest[0],
               cats[p.cat[1]], p.interest[1], cats[p.cat[2]], p.interest[2]);
    }

    fclose(f);
    return fflush(stdout) == 0 ? 0 : -1;
}


/* --- decisions ------------------------------------------------------------ */

typedef struct {
    cef_identity_t      *ident;
    cef_signer_t        *signer;
    cef_store_t         *store;
    cef_rules_t         *rs;
    cef_expr_eval_t     *ev;
    cef_rules_choice_t  *choices;
#ifdef CEF_BENCH_DECISION
    cef_decision_t      *decision;
#endif
    uint32_t             nslots;
    char                 html[16384];
    uint64_t             found, decided, rendered;
} bench_t;


static void
decide_one(bench_t *b, const char *cookie, size_t len, cef_span_t visitor)
{
    uint32_t             i;
    cef_span_t           value;
    cef_profile_t        profile;
    cef_expr_ctx_t       ctx;
    cef_rules_visitor_t  vis;
    const cef_offer_t   *o;
    int                  have;

    have = 0;

    if (cef_sign_verify(b->signer, cef_span_lit("customer"),
                        (cef_span_t) { cookie, len }, &value) != CEF_SIGN_OK)
    {
        return;
    }

    if (cef_store_begin(b->store) != CEF_STORE_OK) {
        return;
    }

    if (cef_store_lookup_key(b->store, b->ident, "customer", 8, value.data,
                             value.len, &profile) == CEF_STORE_OK)
    {
        have = 1;
        b->found++;
    }

    cef_rules_visitor_init(&vis, have ? &profile : NULL, 0,
                           have ? cef_span_lit("customer")
                                : (cef_span_t) { NULL, 0 });

    memset(&ctx, 0, sizeof(ctx));
    ctx.lookup = cef_rules_visitor_lookup;
    ctx.data = &vis;
    ctx.now = 1795438800;

#ifdef CEF_BENCH_DECISION
    {
        cef_decision_input_t  in;

        in.visitor = visitor;
        b->decided += cef_decision_make(b->rs, b->ev, &ctx, &in, b->decision);
        b->choices = b->decision->choices;
    }
#else
    (void) visitor;
    b->decided += cef_rules_decide(b->rs, b->ev, &ctx, b->choices);
#endif

    for (i = 0; i < b->nslots; i++) {
        if (b->choices[i].offer == CEF_RULES_NONE) {
            continue;
        }
        o = cef_rules_offer(b->rs, b->choices[i].offer);
        b->rendered += cef_template_render(o->html, b->ev, b->html,
                                           sizeof(b->html));
    }

    cef_store_end(b->store);
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


static int
decide(int argc, char **argv)
{
    char                 err[512], *cookies, sig[CEF_SIGN_SIG_LEN], v[16],
                        *vids;
    size_t               cl = 40, vl, k;
    static const char    b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
                                 "qrstuvwxyz0123456789-_";
    uint32_t             n, count, i;
    uint64_t             x = 7;
    double              *lat, t;
    int                  cg;
    bench_t              b;
    cef_rules_errors_t   errs;

    if (argc < 8) {
        fprintf(stderr, "usage: cef-bench decide STORE SECRET SIGNING "
                "RULES N COUNT [callgrind]\n");
        return 2;
    }

    memset(&b, 0, sizeof(b));
    n = (uint32_t) strtoul(argv[6], NULL, 10);
    count = (uint32_t) strtoul(argv[7], NULL, 10);
    cg = argc > 8 && strcmp(argv[8], "callgrind") == 0;

    b.ident = cef_identity_create_from_file(argv[3], err, sizeof(err));
    if (b.ident == NULL) {
        fprintf(stderr, "cef-bench: %s\n", err);
        return 1;
    }

    b.signer = cef_signer_create_from_file(argv[4], err, sizeof(err));
    if (b.signer == NULL) {
        fprintf(stderr, "cef-bench: %s\n", err);
        return 1;
    }

    if (cef_rules_load_file(argv[5], &b.rs, &errs) != 0) {
        cef_rules_error_format(&errs, 0, err, sizeof(err));
        fprintf(stderr, "cef-bench: %s\n", err);
        return 1;
    }
    cef_rules_errors_free(&errs);

    b.ev = cef_rules_eval_create(b.rs);
    b.nslots = cef_rules_nslots(b.rs);
    b.choices = calloc(b.nslots + 1, sizeof(cef_rules_choice_t));
#ifdef CEF_BENCH_DECISION
    b.decision = cef_decision_create(b.rs);
    if (b.decision == NULL) {
        fprintf(stderr, "cef-bench: out of memory\n");
        return 1;
    }
#endif

    if (cef_store_open(&b.store, argv[2], err, sizeof(err)) != 0) {
        fprintf(stderr, "cef-bench: %s\n", err);
        return 1;
    }
    cef_store_set_check_interval(b.store, 1000);

    /* the visitors: signed customer keys, as the cookies carry them */

    cookies = malloc((size_t) count * cl);
    lat = malloc(count * sizeof(double));
    vids = malloc((size_t) count * 22);
    if (cookies == NULL || lat == NULL || vids == NULL || b.choices == NULL
        || b.ev == NULL)
    {
        fprintf(stderr, "cef-bench: out of memory\n");
        return 1;
    }

    for (i = 0; i < count; i++) {
        vl = (size_t) snprintf(v, sizeof(v), "%u", rnd(&x, n));
        if (cef_sign(b.signer, cef_span_lit("customer"),
                     (cef_span_t) { v, vl }, sig) != CEF_SIGN_OK)
        {
            fprintf(stderr, "cef-bench: cannot sign\n");
            return 1;
        }
        snprintf(cookies + (size_t) i * cl, cl, "%s.%.*s", v,
                 CEF_SIGN_SIG_LEN, sig);
        /* the visitor id cookie: 22 base64url characters */
        for (k = 0; k < 22; k++) {
            vids[(size_t) i * 22 + k] = b64[rnd(&x, 64)];
        }
    }

    /* a warm-up pass over the same visitors: a warm worker's page cache */

    for (i = 0; i < count; i++) {
        decide_one(&b, cookies + (size_t) i * cl,
                   strlen(cookies + (size_t) i * cl),
                   (cef_span_t) { vids + (size_t) i * 22, 22 });
    }

    b.found = b.decided = b.rendered = 0;

    if (cg) {
        CALLGRIND_TOGGLE_COLLECT;
        for (i = 0; i < count; i++) {
            decide_one(&b, cookies + (size_t) i * cl,
                       strlen(cookies + (size_t) i * cl),
                       (cef_span_t) { vids + (size_t) i * 22, 22 });
        }
        CALLGRIND_TOGGLE_COLLECT;

    } else {
        for (i = 0; i < count; i++) {
            size_t       j = (size_t) ((i * 7919ULL) % count);
            const char  *c = cookies + j * cl;

            t = now_ns();
            decide_one(&b, c, strlen(c), (cef_span_t) { vids + j * 22, 22 });
            lat[i] = now_ns() - t;
        }

        qsort(lat, count, sizeof(double), cmp_double);
    }

    printf("api %s decisions %u found %llu slots %.3f bytes %.1f",
#ifdef CEF_BENCH_DECISION
           "cef_decision_make",
#else
           "cef_rules_decide",
#endif
           count, (unsigned long long) b.found, (double) b.decided / count,
           (double) b.rendered / count);
    if (!cg) {
        printf(" median_ns %.0f p99_ns %.0f", lat[count / 2],
               lat[(size_t) count * 99 / 100]);
    }
    printf("\n");

    cef_store_close(b.store);
    cef_rules_free(b.rs);
    cef_identity_free(b.ident);
    cef_signer_free(b.signer);
#ifdef CEF_BENCH_DECISION
    cef_decision_free(b.decision);
#else
    free(b.choices);
#endif
    free(cookies);
    free(lat);
    free(vids);

    return b.found == count ? 0 : 3;
}


/* --- the slot scanner ----------------------------------------------------- */

static void *
scan_alloc(void *ctx, size_t n)
{
    (void) ctx;
    return malloc(n);
}


static void
scan_free(void *ctx, void *p)
{
    (void) ctx;
    free(p);
}


static int
scan_event(void *ctx, const cef_slot_event_t *ev)
{
    uint64_t  *counts = ctx;

    counts[ev->type == CEF_SLOT_SLOT]++;
    return 0;
}


static int
scan(int argc, char **argv)
{
    long                 len;
    char                *page;
    FILE                *f;
    uint32_t             count, i;
    uint64_t             counts[2] = { 0, 0 };
    double              *lat, t;
    int                  cg;
    cef_allocator_t      a = { scan_alloc, scan_free, NULL };
    cef_slot_scanner_t  *sc;

    if (argc < 4) {
        fprintf(stderr, "usage: cef-bench scan PAGE COUNT [callgrind]\n");
        return 2;
    }

    count = (uint32_t) strtoul(argv[3], NULL, 10);
    cg = argc > 4 && strcmp(argv[4], "callgrind") == 0;

    f = fopen(argv[2], "rb");
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) <= 0) {
        perror(argv[2]);
        return 1;
    }
    rewind(f);
    page = malloc((size_t) len);
    lat = malloc(count * sizeof(double));
    if (page == NULL || lat == NULL
        || fread(page, 1, (size_t) len, f) != (size_t) len)
    {
        fprintf(stderr, "cef-bench: cannot read %s\n", argv[2]);
        return 1;
    }
    fclose(f);

    sc = cef_slot_scanner_create(&a, 65536);
    if (sc == NULL) {
        fprintf(stderr, "cef-bench: out of memory\n");
        return 1;
    }

    if (cg) {
        CALLGRIND_TOGGLE_COLLECT;
    }

    for (i = 0; i < count; i++) {
        t = cg ? 0 : now_ns();
        if (cef_slot_scanner_feed(sc, (const uint8_t *) page, (size_t) len, 1,
                                  scan_event, counts) != 0)
        {
            fprintf(stderr, "cef-bench: scanner failed\n");
            return 1;
        }
        lat[i] = cg ? 0 : now_ns() - t;
    }

    if (cg) {
        CALLGRIND_TOGGLE_COLLECT;
    }

    qsort(lat, count, sizeof(double), cmp_double);
    printf("pages %u bytes %ld pass_events %.1f slots %.1f median_ns %.0f "
           "p99_ns %.0f\n", count, len, (double) counts[0] / count,
           (double) counts[1] / count, lat[count / 2],
           lat[(size_t) count * 99 / 100]);

    cef_slot_scanner_destroy(sc);
    free(page);
    free(lat);
    return 0;
}


int
main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "snapshot") == 0) {
        return gen_snapshot((uint32_t) strtoul(argv[2], NULL, 10)) ? 1 : 0;
    }

    if (argc >= 5 && strcmp(argv[1], "deltas") == 0) {
        return gen_deltas((uint32_t) strtoul(argv[2], NULL, 10),
                          strtoull(argv[3], NULL, 10),
                          strtoull(argv[4], NULL, 10)) ? 1 : 0;
    }

    if (argc >= 3 && strcmp(argv[1], "profiles") == 0) {
        return gen_profiles(argv[2]) ? 1 : 0;
    }

    if (argc >= 2 && strcmp(argv[1], "scan") == 0) {
        return scan(argc, argv);
    }

    if (argc >= 2 && strcmp(argv[1], "decide") == 0) {
        return decide(argc, argv);
    }

    fprintf(stderr, "usage: cef-bench snapshot N | deltas N SEQ COUNT | "
            "profiles IDS | scan PAGE COUNT [callgrind] | decide STORE SECRET "
            "SIGNING RULES N COUNT [callgrind]\n");
    return 2;
}
