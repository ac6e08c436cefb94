/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * libFuzzer target: the streaming slot scanner against the one-shot
 * reference (cef_slot_scan_all()).  abort() on any difference.
 *
 * Input: byte 0 picks max_default, bytes 1..4 seed the split points,
 * the rest is the body.  The body is fed whole, byte by byte and in pieces
 * cut where the seed says; every way must give the same slots and the same
 * bytes between them.  After each feed: every pointer the feed emitted
 * still reads the same bytes, held bytes are within bounds, are the last
 * bytes fed, start with '<', and (outside a slot) can still become an open
 * marker.
 *
 *   make fuzz-slot-scanner FUZZ_SECONDS=300
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cef_slot_scanner.h"


#define CHECK(c)  do { if (!(c)) abort(); } while (0)


/*
 * The harness compares with eq(), not memcmp(): this file is built
 * without coverage instrumentation (mk/fuzz-slot.mk), and libFuzzer's
 * memcmp hook would otherwise record every comparison the checks make.
 */
static int
eq(const void *a, const void *b, size_t n)
{
    const uint8_t  *p = a, *q = b;
    size_t          i;

    for (i = 0; i < n; i++) {
        if (p[i] != q[i]) {
            return 0;
        }
    }

    return 1;
}


typedef struct {
    uint8_t  *p;
    size_t    len;
    size_t    cap;
} fbuf_t;


typedef struct {
    const uint8_t  *p;
    size_t          len;
    size_t          off;        /* copy at copies.p + off */
} frec_t;


typedef struct {
    fbuf_t          trace;
    fbuf_t          pass;
    fbuf_t          copies;
    frec_t         *recs;
    size_t          nrecs;
    size_t          reccap;
    const uint8_t  *in;
    size_t          in_len;
    int             streaming;
} fsink_t;


static void
fbuf_add(fbuf_t *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        CHECK(b->p != NULL);
    }

    if (n) {
        memcpy(b->p + b->len, p, n);
    }

    b->len += n;
}


static void
fbuf_len(fbuf_t *b, size_t n)
{
    uint64_t  v = n;

    fbuf_add(b, &v, sizeof(v));
}


static void
fsink_flush(fsink_t *s)
{
    if (s->pass.len) {
        fbuf_add(&s->trace, "P", 1);
        fbuf_len(&s->trace, s->pass.len);
        fbuf_add(&s->trace, s->pass.p, s->pass.len);
        s->pass.len = 0;
    }
}


static void
fsink_ptr(fsink_t *s, const uint8_t *p, size_t len, int held)
{
    if (!s->streaming) {
        CHECK(!held);
        CHECK(len == 0 || (p >= s->in && p + len <= s->in + s->in_len));
        return;
    }

    if (len == 0) {
        return;
    }

    if (held) {
        CHECK(s->in_len == 0 || p >= s->in + s->in_len || p + len <= s->in);

    } else {
        CHECK(s->in_len && p >= s->in && p + len <= s->in + s->in_len);
    }

    if (s->nrecs == s->reccap) {
        s->reccap = s->reccap ? s->reccap * 2 : 16;
        s->recs = realloc(s->recs, s->reccap * sizeof(frec_t));
        CHECK(s->recs != NULL);
    }

    s->recs[s->nrecs].p = p;
    s->recs[s->nrecs].len = len;
    s->recs[s->nrecs].off = s->copies.len;
    s->nrecs++;
    fbuf_add(&s->copies, p, len);
}


static void
fsink_check_records(fsink_t *s)
{
    size_t  k;

    for (k = 0; k < s->nrecs; k++) {
        CHECK(eq(s->recs[k].p, s->copies.p + s->recs[k].off,
                 s->recs[k].len));
    }

    s->nrecs = 0;
    s->copies.len = 0;
}


static int
fsink_emit(void *ctx, const cef_slot_event_t *ev)
{
    size_t    k;
    fsink_t  *s = ctx;

    if (ev->type == CEF_SLOT_PASS) {
        CHECK(ev->data != NULL && ev->len >= 1);
        fsink_ptr(s, ev->data, ev->len, ev->held);
        fbuf_add(&s->pass, ev->data, ev->len);
        return 0;
    }

    CHECK(ev->type == CEF_SLOT_SLOT);
    CHECK(ev->name.len >= 1 && ev->name.len <= CEF_SLOT_NAME_MAX);
    CHECK(ev->def != NULL);

    for (k = 0; k < ev->name.len; k++) {
        uint8_t  c = (uint8_t) ev->name.data[k];

        CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-');
    }

    fsink_ptr(s, (const uint8_t *) ev->name.data, ev->name.len, ev->held);
    fsink_ptr(s, ev->def, ev->def_len, ev->held);

    fsink_flush(s);
    fbuf_add(&s->trace, "S", 1);
    fbuf_len(&s->trace, ev->name.len);
    fbuf_add(&s->trace, ev->name.data, ev->name.len);
    fbuf_len(&s->trace, ev->def_len);
    fbuf_add(&s->trace, ev->def, ev->def_len);

    return 0;
}


static void
fsink_free(fsink_t *s)
{
    free(s->trace.p);
    free(s->pass.p);
    free(s->copies.p);
    free(s->recs);
    memset(s, 0, sizeof(fsink_t));
}


/* the grammar, for checking what is held */
static size_t
open_len(const uint8_t *s, size_t n)
{
    size_t  e, nl, k;
    uint8_t c;

    if (n < 13 || !eq(s, "<!--cef:slot ", 13)) {
        return 0;
    }

    for (e = 13; e + 3 <= n && !eq(s + e, "-->", 3); e++) {
        /* void */
    }

    if (e + 3 > n) {
        return 0;
    }

    nl = e - 13;
    if (nl && s[e - 1] == ' ') {
        nl--;
    }

    if (nl < 1 || nl > CEF_SLOT_NAME_MAX) {
        return 0;
    }

    for (k = 13; k < 13 + nl; k++) {
        c = s[k];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-'))
        {
            return 0;
        }
    }

    return e + 3;
}


static int
viable(const uint8_t *s, size_t n)
{
    static const char  *ends[] = { ">", "->", "-->", "a-->" };
    size_t              k, m;
    uint8_t             buf[CEF_SLOT_OPEN_MAX + 8];

    if (n < 13) {
        return eq(s, "<!--cef:slot ", n);
    }

    if (n > CEF_SLOT_OPEN_MAX - 1 || open_len(s, n)) {
        return 0;
    }

    for (k = 0; k < 4; k++) {
        m = strlen(ends[k]);
        memcpy(buf, s, n);
        memcpy(buf + n, ends[k], m);
        if (open_len(buf, n + m) == n + m) {
            return 1;
        }
    }

    return 0;
}


static void
check_held(const cef_slot_scanner_t *sc, const uint8_t *body, size_t fed,
    size_t max, int last)
{
    size_t          held, ol;
    const uint8_t  *s;

    held = cef_slot_scanner_held(sc);

    if (last) {
        CHECK(held == 0);
        return;
    }

    CHECK(held <= fed && held <= CEF_SLOT_HELD_MAX(max));

    if (held == 0) {
        return;
    }

    s = body + fed - held;
    CHECK(s[0] == '<');

    ol = open_len(s, held);
    if (ol) {
        CHECK(held - ol <= max + CEF_SLOT_CLOSE_MAX - 1);
    } else {
        CHECK(viable(s, held));
    }
}


static void *
f_alloc(void *ctx, size_t n)
{
    (void) ctx;
    return malloc(n);
}


static void
f_free(void *ctx, void *p)
{
    (void) ctx;
    free(p);
}


static uint32_t
rnd(uint32_t *st)
{
    uint32_t  x = *st;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *st = x;

    return x;
}


/*
 * mode 0: whole; 1: byte by byte; 2: random pieces.  Returns the trace.
 */
static void
stream(const uint8_t *body, size_t len, size_t max, int mode, uint32_t seed,
    fsink_t *s)
{
    size_t               from, to;
    uint32_t             st = seed | 1;
    cef_allocator_t      a = { f_alloc, f_free, NULL };
    cef_slot_scanner_t  *sc;
    int                  last;

    last = 0;
    sc = cef_slot_scanner_create(&a, max);
    CHECK(sc != NULL);

    memset(s, 0, sizeof(fsink_t));
    s->streaming = 1;
    from = 0;

    for ( ;; ) {
        if (mode == 0) {
            to = len;
        } else if (mode == 1) {
            to = from < len ? from + 1 : len;
        } else {
            /* mostly short pieces, some empty, some long */
            switch (rnd(&st) % 8) {
            case 0:
                to = from;
                break;
            case 1:
                to = from + rnd(&st) % 200;
                break;
            default:
                to = from + rnd(&st) % 8;
            }
            if (to > len) {
                to = len;
            }
        }

        last = to == len && (seed & 0x100) == 0;

        s->in = body + from;
        s->in_len = to - from;
        CHECK(cef_slot_scanner_feed(sc, to > from ? body + from : NULL,
                                    to - from, last, fsink_emit, s) == 0);
        s->in_len = 0;
        fsink_check_records(s);
        check_held(sc, body, to, max, last);
        from = to;

        if (to == len) {
            break;
        }
    }

    if (!last) {
        CHECK(cef_slot_scanner_feed(sc, NULL, 0, 1, fsink_emit, s) == 0);
        fsink_check_records(s);
        CHECK(cef_slot_scanner_held(sc) == 0);
    }

    fsink_flush(s);
    cef_slot_scanner_destroy(sc);
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t  bigs[] = { 64, 100, 1000, CEF_SLOT_DEFAULT_MAX };
    size_t               max, len;
    uint32_t             seed;
    const uint8_t       *body;
    fsink_t              ref, s;
    int                  mode;

    if (size < 5) {
        return 0;
    }

    max = data[0] < 0xc0 ? data[0] % 48u : bigs[data[0] & 3];
    seed = (uint32_t) data[1] | (uint32_t) data[2] << 8
           | (uint32_t) data[3] << 16 | (uint32_t) data[4] << 24;
    body = data + 5;
    len = size - 5;

    memset(&ref, 0, sizeof(fsink_t));
    ref.in = body;
    ref.in_len = len;
    CHECK(cef_slot_scan_all(len ? body : NULL, len, max, fsink_emit, &ref)
          == 0);
    fsink_flush(&ref);

    for (mode = 0; mode < 3; mode++) {
        stream(body, len, max, mode, seed, &s);

        if (s.trace.len != ref.trace.len
            || (s.trace.len
                && !eq(s.trace.p, ref.trace.p, s.trace.len)))
        {
            abort();
        }

        fsink_free(&s);
    }

    fsink_free(&ref);

    return 0;
}
