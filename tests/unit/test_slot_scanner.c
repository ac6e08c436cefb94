/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * The streaming slot scanner: a table of bodies with their expected
 * rewrite, each fed whole, split at every point, byte by byte and in random
 * pieces, and compared with the one-shot reference; the holding bound; the
 * pointer lifetimes; allocation; a 5 MB body.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cef_slot_scanner.h"


#define N64  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
#define N65  N64 "x"

#define OPEN_PREFIX  "<!--cef:slot "


/* ---- growable byte strings ---------------------------------------------- */

typedef struct {
    uint8_t  *p;
    size_t    len;
    size_t    cap;
} tbuf_t;


static void
tbuf_add(tbuf_t *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }

    if (n) {
        memcpy(b->p + b->len, p, n);
    }

    b->len += n;
}


static void
tbuf_str(tbuf_t *b, const char *s)
{
    tbuf_add(b, s, strlen(s));
}


static void
tbuf_len(tbuf_t *b, size_t n)
{
    uint64_t  v = n;

    tbuf_add(b, &v, sizeof(v));
}


static void
tbuf_free(tbuf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof(tbuf_t));
}


/* ---- allocators --------------------------------------------------------- */

typedef struct {
    size_t   nalloc;        /* successful allocations */
    size_t   first;         /* size of the first one (the scanner) */
    size_t   total;         /* bytes ever allocated */
    size_t   live;
    size_t   peak;
    size_t   fail_after;    /* allocations allowed; 0: no limit */
    void   **pool;          /* no-free mode: everything, freed at the end */
    size_t   npool;
    size_t   poolcap;
} talloc_t;


static void *
talloc_alloc(void *ctx, size_t n)
{
    talloc_t  *t = ctx;
    size_t    *p;

    if (t->fail_after && t->nalloc >= t->fail_after) {
        return NULL;
    }

    p = malloc(n + 16);
    assert_non_null(p);
    p[0] = n;

    if (t->nalloc++ == 0) {
        t->first = n;
    }

    t->total += n;
    t->live += n;
    if (t->live > t->peak) {
        t->peak = t->live;
    }

    if (t->pool != NULL || t->poolcap == (size_t) -1) {
        if (t->npool == t->poolcap || t->pool == NULL) {
            t->poolcap = t->pool ? t->poolcap * 2 : 16;
            t->pool = realloc(t->pool, t->poolcap * sizeof(void *));
            assert_non_null(t->pool);
        }
        t->pool[t->npool++] = p;
    }

    return (uint8_t *) p + 16;
}


static void
talloc_free(void *ctx, void *q)
{
    talloc_t  *t = ctx;
    size_t    *p = (size_t *) ((uint8_t *) q - 16);

    t->live -= p[0];
    free(p);
}


/* kind 0: malloc/free; 1: a pool without free */
static cef_allocator_t
talloc_init(talloc_t *t, int kind)
{
    cef_allocator_t  a;

    memset(t, 0, sizeof(talloc_t));
    if (kind == 1) {
        t->poolcap = (size_t) -1;
    }

    a.alloc = talloc_alloc;
    a.free = kind == 1 ? NULL : talloc_free;
    a.ctx = t;

    return a;
}


static void
talloc_done(talloc_t *t)
{
    size_t  k;

    for (k = 0; k < t->npool; k++) {
        free(t->pool[k]);
    }

    free(t->pool);
    t->pool = NULL;
    t->npool = 0;
}


/* ---- the event sink ----------------------------------------------------- */

typedef struct {
    const uint8_t  *p;
    size_t          len;
    uint8_t        *copy;
} trec_t;


typedef struct {
    tbuf_t          trace;      /* merged PASS runs and SLOTs, unambiguous */
    tbuf_t          pass;       /* the current PASS run */
    tbuf_t          out_sub;    /* slots replaced by a string per name */
    tbuf_t          out_keep;   /* slots replaced by their default */
    tbuf_t          out_fmt;    /* slots as {name|default} */
    const uint8_t  *in;         /* the buffer being fed (streaming) */
    size_t          in_len;
    int             streaming;
    trec_t         *recs;       /* this feed's events */
    size_t          nrecs;
    size_t          reccap;
    int             abort_on;   /* abort with this at the first SLOT */
} tsink_t;


static void
tsink_flush(tsink_t *s)
{
    if (s->pass.len) {
        tbuf_add(&s->trace, "P", 1);
        tbuf_len(&s->trace, s->pass.len);
        tbuf_add(&s->trace, s->pass.p, s->pass.len);
        s->pass.len = 0;
    }
}


static void
tsink_record(tsink_t *s, const uint8_t *p, size_t len)
{
    if (!s->streaming || len == 0) {
        return;
    }

    if (s->nrecs == s->reccap) {
        s->reccap = s->reccap ? s->reccap * 2 : 16;
        s->recs = realloc(s->recs, s->reccap * sizeof(trec_t));
        assert_non_null(s->recs);
    }

    s->recs[s->nrecs].p = p;
    s->recs[s->nrecs].len = len;
    s->recs[s->nrecs].copy = malloc(len);
    assert_non_null(s->recs[s->nrecs].copy);
    memcpy(s->recs[s->nrecs].copy, p, len);
    s->nrecs++;
}


/* After a feed: every pointer it emitted still reads the same bytes. */
static void
tsink_check_records(tsink_t *s)
{
    size_t  k;

    for (k = 0; k < s->nrecs; k++) {
        assert_memory_equal(s->recs[k].p, s->recs[k].copy, s->recs[k].len);
        free(s->recs[k].copy);
    }

    s->nrecs = 0;
}


static void
tsink_check_ptr(tsink_t *s, const uint8_t *p, size_t len, int held)
{
    int  inside;

    if (!s->streaming) {
        assert_int_equal(held, 0);
        return;
    }

    if (len == 0) {
        return;
    }

    inside = s->in_len && p >= s->in && p + len <= s->in + s->in_len;

    if (held) {
        /* scanner memory, not the caller's buffer */
        assert_false(s->in_len && p < s->in + s->in_len && p + len > s->in);

    } else {
        assert_true(inside);
    }
}


static void
tsink_subst(tbuf_t *b, cef_span_t name)
{
    if (name.len == 4 && memcmp(name.data, "hero", 4) == 0) {
        tbuf_str(b, "<div class=\"offer\">WINBACK10</div>");
        return;
    }

    tbuf_str(b, "[offer:");
    tbuf_add(b, name.data, name.len);
    tbuf_str(b, "]");
}


static int
tsink_emit(void *ctx, const cef_slot_event_t *ev)
{
    size_t    k;
    tsink_t  *s = ctx;

    if (ev->type == CEF_SLOT_PASS) {
        assert_non_null(ev->data);
        assert_true(ev->len >= 1);
        tsink_check_ptr(s, ev->data, ev->len, ev->held);
        tsink_record(s, ev->data, ev->len);

        tbuf_add(&s->pass, ev->data, ev->len);
        tbuf_add(&s->out_sub, ev->data, ev->len);
        tbuf_add(&s->out_keep, ev->data, ev->len);
        tbuf_add(&s->out_fmt, ev->data, ev->len);
        return 0;
    }

    assert_int_equal(ev->type, CEF_SLOT_SLOT);
    assert_true(ev->name.len >= 1 && ev->name.len <= CEF_SLOT_NAME_MAX);
    assert_non_null(ev->def);

    for (k = 0; k < ev->name.len; k++) {
        assert_non_null(strchr(N64, ev->name.data[k]));
    }

    tsink_check_ptr(s, (const uint8_t *) ev->name.data, ev->name.len,
                    ev->held);
    tsink_check_ptr(s, ev->def, ev->def_len, ev->held);
    tsink_record(s, (const uint8_t *) ev->name.data, ev->name.len);
    tsink_record(s, ev->def, ev->def_len);

    tsink_flush(s);
    tbuf_add(&s->trace, "S", 1);
    tbuf_len(&s->trace, ev->name.len);
    tbuf_add(&s->trace, ev->name.data, ev->name.len);
    tbuf_len(&s->trace, ev->def_len);
    tbuf_add(&s->trace, ev->def, ev->def_len);

    tsink_subst(&s->out_sub, ev->name);
    tbuf_add(&s->out_keep, ev->def, ev->def_len);
    tbuf_str(&s->out_fmt, "{");
    tbuf_add(&s->out_fmt, ev->name.data, ev->name.len);
    tbuf_str(&s->out_fmt, "|");
    tbuf_add(&s->out_fmt, ev->def, ev->def_len);
    tbuf_str(&s->out_fmt, "}");

    return s->abort_on;
}


static void
tsink_free(tsink_t *s)
{
    tbuf_free(&s->trace);
    tbuf_free(&s->pass);
    tbuf_free(&s->out_sub);
    tbuf_free(&s->out_keep);
    tbuf_free(&s->out_fmt);
    free(s->recs);
    memset(s, 0, sizeof(tsink_t));
}


static void
tsink_reference(tsink_t *s, const uint8_t *body, size_t len, size_t max)
{
    memset(s, 0, sizeof(tsink_t));
    assert_int_equal(cef_slot_scan_all(body, len, max, tsink_emit, s), 0);
    tsink_flush(s);
}


/* ---- the grammar once more, for checking what is held ------------------- */

static size_t
t_open_len(const uint8_t *s, size_t n)
{
    size_t  e, nl, k;

    if (n < 13 || memcmp(s, OPEN_PREFIX, 13) != 0) {
        return 0;
    }

    for (e = 13; e + 3 <= n; e++) {
        if (memcmp(s + e, "-->", 3) == 0) {
            break;
        }
    }

    if (e + 3 > n) {
        return 0;
    }

    nl = e - 13;
    if (nl && s[e - 1] == ' ') {
        nl--;
    }

    if (nl < 1 || nl > 64) {
        return 0;
    }

    for (k = 13; k < 13 + nl; k++) {
        if (s[k] == 0 || strchr(N64, s[k]) == NULL) {
            return 0;
        }
    }

    return e + 3;
}


/* s (held outside a slot) can still become an open marker */
static int
t_viable(const uint8_t *s, size_t n)
{
    static const char  *ends[] = { ">", "->", "-->", "a-->" };
    size_t              k, m;
    uint8_t             buf[CEF_SLOT_OPEN_MAX + 8];

    if (n < 13) {
        return memcmp(s, OPEN_PREFIX, n) == 0;
    }

    if (n > CEF_SLOT_OPEN_MAX - 1 || t_open_len(s, n)) {
        return 0;
    }

    for (k = 0; k < 4; k++) {
        m = strlen(ends[k]);
        memcpy(buf, s, n);
        memcpy(buf + n, ends[k], m);
        if (t_open_len(buf, n + m) == n + m) {
            return 1;
        }
    }

    return 0;
}


/* after feeding body[0, fed) */
static void
check_held(const cef_slot_scanner_t *sc, const uint8_t *body, size_t fed,
    size_t max, int last)
{
    size_t          held, ol;
    const uint8_t  *s;

    held = cef_slot_scanner_held(sc);

    if (last) {
        assert_int_equal(held, 0);
        return;
    }

    assert_true(held <= fed);
    assert_true(held <= CEF_SLOT_HELD_MAX(max));

    if (memchr(body, '<', fed) == NULL) {
        assert_int_equal(held, 0);
    }

    if (held == 0) {
        return;
    }

    /* the held bytes are the last ones fed, from a '<' */
    s = body + fed - held;
    assert_int_equal(s[0], '<');

    ol = t_open_len(s, held);

    if (ol) {
        /* inside a slot: marker, default, partial close */
        assert_true(held - ol <= max + CEF_SLOT_CLOSE_MAX - 1);

    } else {
        /* outside: only a viable start of an open marker */
        assert_true(held <= CEF_SLOT_OPEN_MAX - 1);
        assert_true(t_viable(s, held));
    }
}


/* ---- feeding ------------------------------------------------------------ */

/*
 * Feed body in the pieces cut at cuts[0..ncuts) (ascending, may repeat),
 * with last on the final piece or (last_apart) in an extra empty call.
 */
static void
feed_pieces(const uint8_t *body, size_t len, size_t max, const size_t *cuts,
    size_t ncuts, int alloc_kind, int last_apart, tsink_t *s,
    talloc_t *t_out)
{
    size_t               k, from, to;
    talloc_t             t;
    cef_allocator_t      a;
    cef_slot_scanner_t  *sc;

    a = talloc_init(&t, alloc_kind);
    sc = cef_slot_scanner_create(&a, max);
    assert_non_null(sc);

    memset(s, 0, sizeof(tsink_t));
    s->streaming = 1;
    from = 0;

    for (k = 0; k <= ncuts; k++) {
        to = k < ncuts ? cuts[k] : len;
        assert_true(to >= from && to <= len);

        s->in = body + from;
        s->in_len = to - from;

        assert_int_equal(cef_slot_scanner_feed(sc, to > from ? body + from
                                                             : NULL,
                                               to - from,
                                               k == ncuts && !last_apart,
                                               tsink_emit, s), 0);
        s->in = NULL;
        s->in_len = 0;
        tsink_check_records(s);
        check_held(sc, body, to, max, k == ncuts && !last_apart);
        from = to;
    }

    if (last_apart) {
        assert_int_equal(cef_slot_scanner_feed(sc, NULL, 0, 1, tsink_emit,
                                               s), 0);
        tsink_check_records(s);
        check_held(sc, body, len, max, 1);
    }

    tsink_flush(s);
    cef_slot_scanner_destroy(sc);

    if (alloc_kind == 0) {
        assert_int_equal(t.live, 0);
    }

    if (t_out != NULL) {
        *t_out = t;
        t_out->pool = NULL;
    }

    talloc_done(&t);
}


static void
describe(const char *what, const uint8_t *body, size_t len, size_t max,
    const size_t *cuts, size_t ncuts)
{
    size_t  k;

    print_error("%s: max %zu, body (%zu bytes) \"%.*s\", cuts:", what, max,
                len, (int) (len > 300 ? 300 : len), (const char *) body);
    for (k = 0; k < ncuts && k < 64; k++) {
        print_error(" %zu", cuts[k]);
    }
    print_error("\n");
}


static int
tbuf_eq(const tbuf_t *a, const tbuf_t *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}


/* feed as cut and compare everything with the reference */
static void
check_split(const uint8_t *body, size_t len, size_t max, const tsink_t *ref,
    const size_t *cuts, size_t ncuts, unsigned variant)
{
    tsink_t  s;

    feed_pieces(body, len, max, cuts, ncuts, variant & 1, (variant >> 1) & 1,
                &s, NULL);

    if (!tbuf_eq(&s.trace, &ref->trace) || !tbuf_eq(&s.out_sub, &ref->out_sub)
        || !tbuf_eq(&s.out_keep, &ref->out_keep)
        || !tbuf_eq(&s.out_fmt, &ref->out_fmt))
    {
        describe("streaming differs from the reference", body, len, max, cuts,
                 ncuts);
        print_error("stream: \"%.*s\"\nref:    \"%.*s\"\n",
                    (int) s.out_fmt.len, (const char *) s.out_fmt.p,
                    (int) ref->out_fmt.len, (const char *) ref->out_fmt.p);
        tsink_free(&s);
        fail();
    }

    tsink_free(&s);
}


static uint64_t
rnd(uint64_t *st)
{
    uint64_t  x = *st;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *st = x;

    return x;
}


static int
cmp_size(const void *a, const void *b)
{
    size_t  x = *(const size_t *) a, y = *(const size_t *) b;

    return x < y ? -1 : x > y;
}


/* whole, every single cut, byte by byte, random partitions */
static void
check_all_splits(const uint8_t *body, size_t len, size_t max, uint64_t seed,
    unsigned nrandom)
{
    size_t    k, n, cut, *cuts;
    unsigned  r, variant = 0;
    tsink_t   ref;
    uint64_t  st = seed | 1;

    tsink_reference(&ref, body, len, max);

    check_split(body, len, max, &ref, NULL, 0, variant++);

    for (cut = 0; cut <= len; cut++) {
        check_split(body, len, max, &ref, &cut, 1, variant++);
    }

    cuts = malloc((len + 1) * 2 * sizeof(size_t) + sizeof(size_t));
    assert_non_null(cuts);

    for (k = 0; k < len; k++) {
        cuts[k] = k + 1;
    }
    check_split(body, len, max, &ref, cuts, len ? len - 1 : 0, 0);
    check_split(body, len, max, &ref, cuts, len ? len - 1 : 0, 3);

    for (r = 0; r < nrandom; r++) {
        n = 1 + rnd(&st) % (len < 16 ? len + 2 : 16);
        if (r % 8 == 0) {
            n = len * 2 + 1;     /* many, some empty pieces */
        }
        for (k = 0; k < n; k++) {
            cuts[k] = rnd(&st) % (len + 1);
        }
        qsort(cuts, n, sizeof(size_t), cmp_size);
        check_split(body, len, max, &ref, cuts, n, variant++);
    }

    free(cuts);
    tsink_free(&ref);
}


/* ---- the table ---------------------------------------------------------- */

typedef struct {
    size_t       max;
    const char  *body;
    const char  *want;      /* slots as {name|default} */
} tcase_t;


#define SLOT(n, d)  "<!--cef:slot " n "-->" d "<!--/cef:slot-->"
#define SAME        NULL

static const tcase_t  cases[] = {
    /* basics */
    { 64, "", "" },
    { 64, "plain text, <b>no</b> markers", SAME },
    { 64, SLOT("hero", "Welcome"), "{hero|Welcome}" },
    { 64, SLOT("hero", "W") "<p>after</p>", "{hero|W}<p>after</p>" },
    { 64, "<p>a</p>" SLOT("hero", "W") "<p>b</p>", "<p>a</p>{hero|W}<p>b</p>" },
    { 64, "<p>before</p>" SLOT("hero", "W"), "<p>before</p>{hero|W}" },
    { 64, SLOT("a", "1") SLOT("b", "2"), "{a|1}{b|2}" },
    { 64, "x" SLOT("a", "1") "y" SLOT("b", "2") "z", "x{a|1}y{b|2}z" },
    { 64, "x" SLOT("e", "") "y", "x{e|}y" },
    { 64, SLOT("e", ""), "{e|}" },
    { 64, "<!-- an ordinary comment -->" SLOT("a", "<b>x</b>"),
      "<!-- an ordinary comment -->{a|<b>x</b>}" },
    { 64, "<!--cef:slot hero -->W<!--/cef:slot -->", "{hero|W}" },
    { 64, "<!--cef:slot hero-->W<!--/cef:slot -->", "{hero|W}" },
    { 64, "<!--cef:slot hero -->W<!--/cef:slot-->", "{hero|W}" },

    /* near misses are content */
    { 64, "<!--cef:slo", SAME },
    { 64, "<!--cef:slot", SAME },
    { 64, "<!--cef:slot ", SAME },
    { 64, "<!--cef:slot -->x<!--/cef:slot-->", SAME },
    { 64, "<!--cef:slot-->x<!--/cef:slot-->", SAME },
    { 64, "<!--cef:slot  a-->x<!--/cef:slot-->", SAME },
    { 64, "<!--cef:slot a  -->x<!--/cef:slot-->", SAME },
    { 64, "<!--CEF:slot a-->x<!--/cef:slot-->", SAME },
    { 64, "<!-- cef:slot a-->x<!--/cef:slot-->", SAME },
    { 64, "<!--cef:slot a->x<!--/cef:slot-->", SAME },
    { 64, "<!--cef:slot a--x<!--/cef:slot-->", SAME },
    { 64, "<!--cef:slot a -- >x<!--/cef:slot-->", SAME },
    { 64, "<!--cef:slot a --->x<!--/cef:slot-->", SAME },
    { 64, "<!--cef:slo" SLOT("a", "x"), "<!--cef:slo{a|x}" },
    { 64, "<!--cef:slot -->" SLOT("a", "x"), "<!--cef:slot -->{a|x}" },

    /* names */
    { 64, SLOT("a.b", "x"), SAME },
    { 64, SLOT("a b", "x"), SAME },
    { 64, SLOT("a>b", "x"), SAME },
    { 64, SLOT("\xc3\xa4", "x"), SAME },
    { 64, SLOT("A_z-09", "x"), "{A_z-09|x}" },
    { 64, SLOT(N64, "x"), "{" N64 "|x}" },
    { 64, "<!--cef:slot " N64 " -->x<!--/cef:slot-->", "{" N64 "|x}" },
    { 64, SLOT(N65, "x"), SAME },
    { 64, "<!--cef:slot " N65 " -->x<!--/cef:slot-->", SAME },
    { 64, SLOT(N65, "x") SLOT("b", "y"), SLOT(N65, "x") "{b|y}" },
    { 64, SLOT("a--b", "x"), "{a--b|x}" },
    { 64, SLOT("-", "x"), "{-|x}" },
    { 64, SLOT("a-", "x"), "{a-|x}" },
    { 64, "<!--cef:slot a-- -->x<!--/cef:slot-->", "{a--|x}" },
    { 64, "<!--cef:slot " N64 "-" "-->x<!--/cef:slot-->", SAME },

    /* unclosed and oversized */
    { 64, "a<!--cef:slot hero-->default", SAME },
    { 64, "a<!--cef:slot hero-->default<!--/cef:slo", SAME },
    { 64, "a<!--cef:slot hero-->", SAME },
    { 64, "a<!--cef:slot hero-->x<!--/cef:slot--->", SAME },
    { 8, SLOT("a", "12345678") "z", "{a|12345678}z" },
    { 8, SLOT("a", "123456789") "z", SAME },
    { 8, SLOT("a", "123456789") SLOT("b", "1"),
      SLOT("a", "123456789") "{b|1}" },
    { 0, SLOT("a", ""), "{a|}" },
    { 0, SLOT("a", "x"), SAME },
    { 5, SLOT("a", "1234"), "{a|1234}" },
    { 5, SLOT("a", "12345"), "{a|12345}" },
    { 5, SLOT("a", "123456"), SAME },
    /* default byte max + 1 is the '<' of a marker: it passes with the rest */
    { 5, "<!--cef:slot a-->12345" SLOT("b", "x"), SAME },
    { 5, "<!--cef:slot a-->123456" SLOT("b", "x"),
      "<!--cef:slot a-->123456{b|x}" },
    { 5, "<!--cef:slot a-->1234<!--/cef:slo" SLOT("b", "x"),
      "<!--cef:slot a-->1234<!--/cef:slo{b|x}" },
    { 16, "<!--cef:slot a-->0123456789<!--/cef:slot-->", "{a|0123456789}" },
    /* a failed partial close that makes the default too long */
    { 5, SLOT("a", "123<x"), "{a|123<x}" },
    { 5, SLOT("a", "1234<x"), SAME },
    { 5, SLOT("a", "12345<x"), SAME },
    { 5, SLOT("a", "12<!-x"), SAME },
    { 6, SLOT("a", "12<!-x"), "{a|12<!-x}" },

    /* close without open, nesting */
    { 64, "a<!--/cef:slot-->b", SAME },
    { 64, SLOT("a", "b") "<!--/cef:slot-->", "{a|b}<!--/cef:slot-->" },
    { 64, SLOT("a", "x" SLOT("b", "y") "z"),
      "{a|x<!--cef:slot b-->y}z<!--/cef:slot-->" },
    { 64, SLOT("a", "<!--cef:slot a-->"), "{a|<!--cef:slot a-->}" },
    { 64, SLOT("a", "b<!--/cef:slot  -->c"), "{a|b<!--/cef:slot  -->c}" },
    { 64, SLOT("a", "b<!--/cef:slot- ->c"), "{a|b<!--/cef:slot- ->c}" },
    { 64, SLOT("a", "b<!--/cef:slot-- >c"), "{a|b<!--/cef:slot-- >c}" },
    { 64, SLOT("a", "b<!--/CEF:slot-->c"), "{a|b<!--/CEF:slot-->c}" },

    /* rescans after a failed partial match */
    { 64, "<!" SLOT("x", "d"), "<!{x|d}" },
    { 64, "<" SLOT("x", "d"), "<{x|d}" },
    { 64, "<<<<" SLOT("x", "d") "<<", "<<<<{x|d}<<" },
    { 64, "<!-" SLOT("x", "d"), "<!-{x|d}" },
    { 64, "<!--" SLOT("x", "d"), "<!--{x|d}" },
    { 64, "<!--cef:slot " SLOT("x", "d"), "<!--cef:slot {x|d}" },
    { 64, "<!--cef:slot x" SLOT("y", "d"), "<!--cef:slot x{y|d}" },
    { 64, "<!--cef:slot x-" SLOT("y", "d"), "<!--cef:slot x-{y|d}" },
    { 64, "<!--cef:slot x --" SLOT("y", "d"), "<!--cef:slot x --{y|d}" },
    { 64, SLOT("x", "a<!--/cef:slo"), "{x|a<!--/cef:slo}" },
    { 64, SLOT("x", "a<<!--/"), "{x|a<<!--/}" },
    { 64, SLOT("x", "<") "<", "{x|<}<" },
};


static void
test_table(void **state)
{
    size_t          i, len, maxes[] = { 0, 1, 7, 64, 65536 };
    unsigned        m;
    tsink_t         ref;
    const char     *want;
    const uint8_t  *body;

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        body = (const uint8_t *) cases[i].body;
        len = strlen(cases[i].body);
        want = cases[i].want ? cases[i].want : cases[i].body;

        /* the reference against the expectation */
        tsink_reference(&ref, body, len, cases[i].max);
        if (ref.out_fmt.len != strlen(want)
            || (ref.out_fmt.len
                && memcmp(ref.out_fmt.p, want, ref.out_fmt.len) != 0))
        {
            print_error("case %zu: want \"%s\", got \"%.*s\"\n", i, want,
                        (int) ref.out_fmt.len, (const char *) ref.out_fmt.p);
            fail();
        }
        tsink_free(&ref);

        /* streaming against the reference, with this and other limits */
        check_all_splits(body, len, cases[i].max, i + 1, 200);

        for (m = 0; m < sizeof(maxes) / sizeof(maxes[0]); m++) {
            check_all_splits(body, len, maxes[m], i * 31 + m, 20);
        }
    }
}


/* one slot per name, so the substituted output is known */
static void
test_outputs(void **state)
{
    static const char  body[] =
        "<html>" SLOT("hero", "<p>Welcome</p>") "<main>"
        SLOT("footer", "F") "</main></html>";
    tsink_t            s;
    size_t             cut = 17;

    (void) state;

    feed_pieces((const uint8_t *) body, sizeof(body) - 1, 64, &cut, 1, 0, 0,
                &s, NULL);

    assert_int_equal(s.out_sub.len,
                     strlen("<html><div class=\"offer\">WINBACK10</div><main>"
                            "[offer:footer]</main></html>"));
    assert_memory_equal(s.out_sub.p,
                        "<html><div class=\"offer\">WINBACK10</div><main>"
                        "[offer:footer]</main></html>", s.out_sub.len);
    assert_int_equal(s.out_keep.len,
                     strlen("<html><p>Welcome</p><main>F</main></html>"));
    assert_memory_equal(s.out_keep.p,
                        "<html><p>Welcome</p><main>F</main></html>",
                        s.out_keep.len);
    tsink_free(&s);
}


/* random bodies made of marker pieces and noise */
static void
test_random_bodies(void **state)
{
    static const char  *parts[] = {
        "<", "<!", "<!--", "<!--cef:slot ", "<!--cef:slot a-->",
        "<!--cef:slot hero -->", "<!--/cef:slot-->", "<!--/cef:slot -->",
        "<!--/cef:slo", "-->", "--", "-", " ", "x", "yz", ">", "a", "<p>",
        "<!--cef:slot " N64 "-->", "<!--cef:slot " N65 "-->", "\n",
    };
    size_t              i, k, n, len, max;
    uint64_t            st = 0x5eed;
    const char         *part;
    uint8_t             body[512];

    (void) state;

    for (i = 0; i < 300; i++) {
        len = 0;
        n = rnd(&st) % 14;

        for (k = 0; k < n; k++) {
            part = parts[rnd(&st) % (sizeof(parts) / sizeof(parts[0]))];

            if (len + strlen(part) > sizeof(body)) {
                break;
            }
            memcpy(body + len, part, strlen(part));
            len += strlen(part);
        }

        max = rnd(&st) % 4 == 0 ? 65536 : rnd(&st) % 24;
        check_all_splits(body, len, max, i, 10);
    }
}


/* ---- holding, lifetimes, allocation ------------------------------------- */

typedef struct {
    size_t  passed;
    size_t  slots;
} tcount_t;


static int
tcount_emit(void *ctx, const cef_slot_event_t *ev)
{
    tcount_t  *c = ctx;

    if (ev->type == CEF_SLOT_PASS) {
        c->passed += ev->len;
    } else {
        c->slots++;
    }

    return 0;
}


/* text without '<' is never held, whatever the pieces */
static void
test_no_lt_not_held(void **state)
{
    static const char    body[] = "plain -- text --> with ! and -- dashes";
    size_t               k;
    talloc_t             t;
    tcount_t             c = { 0, 0 };
    cef_allocator_t      a = talloc_init(&t, 0);
    cef_slot_scanner_t  *sc = cef_slot_scanner_create(&a, 64);

    (void) state;
    assert_non_null(sc);

    for (k = 0; k < sizeof(body) - 1; k++) {
        assert_int_equal(cef_slot_scanner_feed(sc, (const uint8_t *) body + k,
                                               1, 0, tcount_emit, &c), 0);
        assert_int_equal(cef_slot_scanner_held(sc), 0);
        assert_int_equal(c.passed, k + 1);
    }

    /* '<' is held only while it can start a marker */
    assert_int_equal(cef_slot_scanner_feed(sc, (const uint8_t *) "a<", 2, 0,
                                           tcount_emit, &c), 0);
    assert_int_equal(cef_slot_scanner_held(sc), 1);
    assert_int_equal(cef_slot_scanner_feed(sc, (const uint8_t *) "!-", 2, 0,
                                           tcount_emit, &c), 0);
    assert_int_equal(cef_slot_scanner_held(sc), 3);
    assert_int_equal(cef_slot_scanner_feed(sc, (const uint8_t *) "x", 1, 0,
                                           tcount_emit, &c), 0);
    assert_int_equal(cef_slot_scanner_held(sc), 0);
    assert_int_equal(c.passed, sizeof(body) - 1 + 5);

    /* only the '<' that may start a marker: "<a<" holds 1 */
    assert_int_equal(cef_slot_scanner_feed(sc, (const uint8_t *) "<a<", 3, 0,
                                           tcount_emit, &c), 0);
    assert_int_equal(cef_slot_scanner_held(sc), 1);
    assert_int_equal(cef_slot_scanner_feed(sc, NULL, 0, 1, tcount_emit, &c),
                     0);
    assert_int_equal(cef_slot_scanner_held(sc), 0);
    assert_int_equal(c.passed, sizeof(body) - 1 + 8);

    /* bodies without a slot allocate nothing beyond the scanner */
    assert_int_equal(t.nalloc, 1);

    cef_slot_scanner_destroy(sc);
    assert_int_equal(t.live, 0);
}


/* the longest viable prefix of an open marker is held, one more is not */
static void
test_held_bound(void **state)
{
    static const char    body[] = "<!--cef:slot " N64 " --";
    size_t               k, max_held = 0;
    talloc_t             t;
    tcount_t             c = { 0, 0 };
    cef_allocator_t      a = talloc_init(&t, 0);
    cef_slot_scanner_t  *sc = cef_slot_scanner_create(&a, 64);

    (void) state;
    assert_non_null(sc);
    assert_int_equal(sizeof(body) - 1, CEF_SLOT_OPEN_MAX - 1);

    for (k = 0; k < sizeof(body) - 1; k++) {
        assert_int_equal(cef_slot_scanner_feed(sc, (const uint8_t *) body + k,
                                               1, 0, tcount_emit, &c), 0);
        if (cef_slot_scanner_held(sc) > max_held) {
            max_held = cef_slot_scanner_held(sc);
        }
    }

    assert_int_equal(max_held, CEF_SLOT_OPEN_MAX - 1);
    assert_int_equal(c.passed, 0);

    assert_int_equal(cef_slot_scanner_feed(sc, (const uint8_t *) "-", 1, 0,
                                           tcount_emit, &c), 0);
    assert_int_equal(cef_slot_scanner_held(sc), 0);
    assert_int_equal(c.passed, CEF_SLOT_OPEN_MAX);

    /* a 65th name byte ends the match at once */
    assert_int_equal(cef_slot_scanner_feed(sc, (const uint8_t *)
                                           "<!--cef:slot " N65, 13 + 65, 0,
                                           tcount_emit, &c), 0);
    assert_int_equal(cef_slot_scanner_held(sc), 0);
    assert_int_equal(cef_slot_scanner_feed(sc, (const uint8_t *) "-", 1, 0,
                                           tcount_emit, &c), 0);
    assert_int_equal(cef_slot_scanner_held(sc), 0);

    cef_slot_scanner_destroy(sc);
}


/* small slots held across buffers fit in the scanner; larger ones allocate */
static void
test_allocation(void **state)
{
    static const char    small[] = SLOT("hero", "<p>Welcome back</p>");
    size_t               k;
    uint8_t              big[400];
    talloc_t             t;
    tcount_t             c = { 0, 0 };
    cef_allocator_t      a = talloc_init(&t, 1);
    cef_slot_scanner_t  *sc = cef_slot_scanner_create(&a, 65536);

    (void) state;
    assert_non_null(sc);

    for (k = 0; k < sizeof(small) - 1; k++) {
        assert_int_equal(cef_slot_scanner_feed(sc, (const uint8_t *) small + k,
                                               1, 0, tcount_emit, &c), 0);
    }
    assert_int_equal(c.slots, 1);
    assert_int_equal(t.nalloc, 1);

    memcpy(big, "<!--cef:slot b-->", 17);
    memset(big + 17, 'x', sizeof(big) - 17 - 16);
    memcpy(big + sizeof(big) - 16, "<!--/cef:slot-->", 16);

    for (k = 0; k < sizeof(big); k++) {
        assert_int_equal(cef_slot_scanner_feed(sc, big + k, 1, 0,
                                               tcount_emit, &c), 0);
    }
    assert_int_equal(c.slots, 2);
    assert_int_equal(t.nalloc, 2);
    assert_true(t.total - t.first < 2048);

    cef_slot_scanner_destroy(sc);
    talloc_done(&t);
}


/* when memory runs out the slot passes unchanged and scanning goes on */
static void
test_nomem(void **state)
{
    size_t               k, len;
    uint8_t              body[600];
    talloc_t             t;
    tsink_t              s;
    cef_allocator_t      a = talloc_init(&t, 0);
    cef_slot_stats_t     st;
    cef_slot_scanner_t  *sc;

    (void) state;

    len = 0;
    memcpy(body, "<!--cef:slot big-->", 19);
    len = 19;
    memset(body + len, 'x', 300);
    len += 300;
    memcpy(body + len, "<!--/cef:slot-->", 16);
    len += 16;
    memcpy(body + len, SLOT("b", "small"), strlen(SLOT("b", "small")));
    len += strlen(SLOT("b", "small"));

    t.fail_after = 1;
    sc = cef_slot_scanner_create(&a, 65536);
    assert_non_null(sc);

    memset(&s, 0, sizeof(tsink_t));
    s.streaming = 1;

    for (k = 0; k < len; k += 10) {
        s.in = body + k;
        s.in_len = len - k < 10 ? len - k : 10;
        assert_int_equal(cef_slot_scanner_feed(sc, s.in, s.in_len,
                                               k + 10 >= len, tsink_emit, &s),
                         0);
        tsink_check_records(&s);
    }

    cef_slot_scanner_stats(sc, &st);
    assert_int_equal(st.nomem, 1);
    assert_int_equal(st.slots, 1);

    assert_int_equal(s.out_fmt.len, 19 + 300 + 16 + strlen("{b|small}"));
    assert_memory_equal(s.out_fmt.p, body, 19 + 300 + 16);
    assert_memory_equal(s.out_fmt.p + 335, "{b|small}", 9);

    tsink_free(&s);
    cef_slot_scanner_destroy(sc);
    assert_int_equal(t.live, 0);
}


/* a nonzero return from the callback aborts, and the scanner stays aborted */
static void
test_abort_and_reuse(void **state)
{
    static const char    body[] = "a" SLOT("x", "y") "b";
    talloc_t             t;
    tsink_t              s;
    tcount_t             c = { 0, 0 };
    cef_allocator_t      a = talloc_init(&t, 0);
    cef_slot_stats_t     st;
    cef_slot_scanner_t  *sc = cef_slot_scanner_create(&a, 64);

    (void) state;
    assert_non_null(sc);

    /* reuse after last */
    assert_int_equal(cef_slot_scanner_feed(sc, (const uint8_t *) body, 20, 1,
                                           tcount_emit, &c), 0);
    assert_int_equal(cef_slot_scanner_held(sc), 0);
    assert_int_equal(cef_slot_scanner_feed(sc, (const uint8_t *) body,
                                           sizeof(body) - 1, 1, tcount_emit,
                                           &c), 0);
    assert_int_equal(c.slots, 1);
    assert_int_equal(c.passed, 20 + 2);
    cef_slot_scanner_stats(sc, &st);
    assert_int_equal(st.unclosed, 1);
    assert_int_equal(st.slots, 1);

    memset(&s, 0, sizeof(tsink_t));
    s.abort_on = 7;
    assert_int_equal(cef_slot_scanner_feed(sc, (const uint8_t *) body,
                                           sizeof(body) - 1, 0, tsink_emit,
                                           &s), 7);
    assert_int_equal(cef_slot_scanner_feed(sc, (const uint8_t *) "z", 1, 1,
                                           tsink_emit, &s), 7);
    assert_int_equal(s.out_fmt.len, 6);
    tsink_free(&s);

    cef_slot_scanner_destroy(sc);
    assert_int_equal(t.live, 0);

    /* bad arguments */
    assert_null(cef_slot_scanner_create(&a, CEF_SLOT_MAX_DEFAULT_LIMIT + 1));
    cef_slot_scanner_destroy(NULL);

    /* the reference aborts too */
    memset(&s, 0, sizeof(tsink_t));
    s.abort_on = 3;
    assert_int_equal(cef_slot_scan_all((const uint8_t *) body,
                                       sizeof(body) - 1, 64, tsink_emit, &s),
                     3);
    tsink_free(&s);
}


/* 5 MB with slots scattered, in 4 KB pieces */
static void
test_large_body(void **state)
{
    size_t               len, k, n, d, max = CEF_SLOT_DEFAULT_MAX, cuts[2048];
    size_t               ncuts, peak;
    uint8_t             *body;
    uint64_t             st = 42;
    talloc_t             t;
    tsink_t              ref, s;
    cef_slot_stats_t     stats;

    (void) state;

    body = malloc(5 * 1024 * 1024 + 200000);
    assert_non_null(body);
    len = 0;

    while (len < 5 * 1024 * 1024) {
        n = rnd(&st) % 20000;
        for (k = 0; k < n; k++) {
            body[len + k] = "abcdefghij <p>-!\n"[rnd(&st) % 17];
        }
        len += n;

        switch (rnd(&st) % 8) {
        case 0:
            /* a slot too large to hold */
            d = max + 1 + rnd(&st) % 10000;
            break;
        case 1:
            /* a near miss and a stray close */
            memcpy(body + len, "<!--cef:slo<!--/cef:slot-->", 27);
            len += 27;
            continue;
        case 2:
            /* just under or at the limit */
            d = max - rnd(&st) % 3;
            break;
        default:
            d = rnd(&st) % 6000;
        }

        n = (size_t) sprintf((char *) body + len, "<!--cef:slot s%u-->",
                             (unsigned) (rnd(&st) % 100));
        len += n;
        for (k = 0; k < d; k++) {
            body[len + k] = "xyz<>/!-"[rnd(&st) % 8];
        }
        len += d;
        memcpy(body + len, "<!--/cef:slot-->", 16);
        len += 16;
    }

    /* unclosed at the end */
    memcpy(body + len, "<!--cef:slot last-->tail", 24);
    len += 24;

    tsink_reference(&ref, body, len, max);

    for (k = 0; k < 2; k++) {
        ncuts = 0;
        for (n = 4096; n < len; n += 4096) {
            cuts[ncuts++] = n;
        }
        assert_true(ncuts < 2048);

        feed_pieces(body, len, max, cuts, ncuts, (int) k, 0, &s, &t);
        assert_true(tbuf_eq(&s.trace, &ref.trace));
        assert_true(tbuf_eq(&s.out_sub, &ref.out_sub));

        /* about 2 x the most a slot holds, also without free */
        peak = k == 0 ? t.peak : t.total;
        assert_true((peak - t.first) * 7 <= 16 * CEF_SLOT_HELD_MAX(max));
        tsink_free(&s);
    }

    /* the counters */
    {
        talloc_t             t2;
        tcount_t             c = { 0, 0 };
        cef_allocator_t      a = talloc_init(&t2, 0);
        cef_slot_scanner_t  *sc = cef_slot_scanner_create(&a, max);

        for (k = 0; k < len; k += 4096) {
            assert_int_equal(cef_slot_scanner_feed(sc, body + k,
                                                   len - k < 4096 ? len - k
                                                                  : 4096,
                                                   k + 4096 >= len,
                                                   tcount_emit, &c), 0);
            assert_true(cef_slot_scanner_held(sc) <= CEF_SLOT_HELD_MAX(max));
        }

        cef_slot_scanner_stats(sc, &stats);
        assert_true(stats.slots > 100);
        assert_true(stats.oversized > 10);
        assert_int_equal(stats.unclosed, 1);
        assert_int_equal(stats.nomem, 0);
        assert_int_equal(c.slots, stats.slots);
        cef_slot_scanner_destroy(sc);
        assert_int_equal(t2.live, 0);
    }

    tsink_free(&ref);
    free(body);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_outputs),
        cmocka_unit_test(test_random_bodies),
        cmocka_unit_test(test_no_lt_not_held),
        cmocka_unit_test(test_held_bound),
        cmocka_unit_test(test_allocation),
        cmocka_unit_test(test_nomem),
        cmocka_unit_test(test_abort_and_reuse),
        cmocka_unit_test(test_large_body),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
