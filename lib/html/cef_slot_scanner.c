/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_slot_scanner: the streaming slot scanner and its one-shot reference.
 *
 * The scanner keeps one "candidate": the bytes from a '<' that may start an
 * open marker (ST_OPEN), or from a complete open marker through the slot's
 * default so far (ST_IN).  During a feed the candidate is the held bytes
 * (from earlier feeds, in scanner memory) followed by input[cstart, i);
 * at the end of a feed its input part is appended to the held bytes.
 *
 * Neither marker has a '<' after its first byte, so when a partial match
 * fails no marker can start inside the bytes matched so far: they are all
 * decided at once and only the failing byte is scanned again (this is what
 * the old sub filter got wrong with "aab" in "aaab").
 *
 * Held bytes that were emitted must stay valid until the next feed, so the
 * held bytes live in one of two buffers: once a buffer has been emitted
 * from, bytes held later in the same feed go to the other one.  Each buffer
 * starts as a small array inside the scanner and moves to the heap when a
 * slot outgrows it.
 */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cef_slot_scanner.h"


#define CEF_SLOT_INLINE    128
#define CEF_SLOT_HEAP_MIN  1024
#define CEF_SLOT_GROW      8

#define CEF_SLOT_PREFIX_LEN  13     /* "<!--cef:slot " and "<!--/cef:slot" */


typedef enum {
    ST_OUT = 0,
    ST_OPEN,
    ST_IN
} cef_slot_state_e;

typedef enum {
    M_MORE = 0,
    M_FAIL,
    M_DONE
} cef_slot_match_e;


typedef struct {
    uint8_t    *heap;       /* NULL: the inline array is used */
    size_t      cap;        /* bytes at heap */
    int         frozen;     /* emitted from during the current feed */
    uint8_t     in[CEF_SLOT_INLINE];
} cef_slot_hold_t;


struct cef_slot_scanner_s {
    cef_allocator_t   a;
    size_t            max;        /* max default */
    size_t            full;       /* CEF_SLOT_HELD_MAX(max) */
    int               abort_rc;
    cef_slot_state_e  state;

    /* ST_OPEN */
    size_t            mlen;       /* candidate bytes matched */
    size_t            x;          /* bytes after "<!--cef:slot " (no space) */
    unsigned          dashes;     /* trailing '-' in those, at most 2 */
    unsigned          sp;         /* 0, or 1 + bytes of "-->" after the
                                     space */

    /* ST_IN */
    size_t            name_len;
    size_t            open_len;
    size_t            def_len;    /* bytes known to be default */
    size_t            part;       /* bytes of a partial close marker */
    unsigned          csp;        /* the partial close has the space */

    size_t            held;
    unsigned          cur;        /* h[cur] holds the held bytes */
    cef_slot_hold_t   h[2];
    cef_slot_stats_t  stats;
};


static const char  cef_slot_open_prefix[] = "<!--cef:slot ";
static const char  cef_slot_close_prefix[] = "<!--/cef:slot";


static int
cef_slot_name_char(unsigned c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '_' || c == '-';
}


cef_slot_scanner_t *
cef_slot_scanner_create(const cef_allocator_t *a, size_t max_default)
{
    cef_slot_scanner_t  *sc;

    if (a == NULL || a->alloc == NULL
        || max_default > CEF_SLOT_MAX_DEFAULT_LIMIT)
    {
        return NULL;
    }

    sc = a->alloc(a->ctx, sizeof(cef_slot_scanner_t));
    if (sc == NULL) {
        return NULL;
    }

    memset(sc, 0, sizeof(cef_slot_scanner_t));
    sc->a = *a;
    sc->max = max_default;
    sc->full = CEF_SLOT_HELD_MAX(max_default);
    sc->state = ST_OUT;

    return sc;
}


void
cef_slot_scanner_destroy(cef_slot_scanner_t *sc)
{
    unsigned  k;

    if (sc == NULL) {
        return;
    }

    if (sc->a.free == NULL) {
        return;
    }

    for (k = 0; k < 2; k++) {
        if (sc->h[k].heap != NULL) {
            sc->a.free(sc->a.ctx, sc->h[k].heap);
        }
    }

    sc->a.free(sc->a.ctx, sc);
}


size_t
cef_slot_scanner_held(const cef_slot_scanner_t *sc)
{
    return sc->held;
}


void
cef_slot_scanner_stats(const cef_slot_scanner_t *sc, cef_slot_stats_t *st)
{
    *st = sc->stats;
}


static uint8_t *
cef_slot_hold_data(cef_slot_hold_t *h)
{
    return h->heap != NULL ? h->heap : h->in;
}


static size_t
cef_slot_hold_cap(const cef_slot_hold_t *h)
{
    return h->heap != NULL ? h->cap : CEF_SLOT_INLINE;
}


/*
 * Append n input bytes to the held bytes.  Growing never frees a buffer
 * that events of this feed point into: the current buffer is only grown
 * while it has not been emitted from (frozen buffers are left for the
 * other one, whose contents are from an earlier feed).
 */
static int
cef_slot_hold_append(cef_slot_scanner_t *sc, const uint8_t *src, size_t n)
{
    size_t            need, cap;
    uint8_t          *p;
    cef_slot_hold_t  *h;

    h = &sc->h[sc->cur];

    if (h->frozen) {
        /* only emitted buffers are frozen, and emitting empties the hold */
        sc->cur ^= 1;
        h = &sc->h[sc->cur];
    }

    need = sc->held + n;

    if (need > cef_slot_hold_cap(h)) {
        if (need > sc->full) {
            return -1;
        }

        cap = cef_slot_hold_cap(h) * CEF_SLOT_GROW;
        if (cap < CEF_SLOT_HEAP_MIN) {
            cap = CEF_SLOT_HEAP_MIN;
        }
        if (cap < need) {
            cap = need;
        }

        /* with an allocator without free every outgrown buffer is lost:
           jump to the full size early so that they add up to at most 1/7
           of it */
        if (cap > sc->full / CEF_SLOT_GROW) {
            cap = sc->full;
        }

        p = sc->a.alloc(sc->a.ctx, cap);
        if (p == NULL) {
            return -1;
        }

        if (sc->held) {
            memcpy(p, cef_slot_hold_data(h), sc->held);
        }

        if (h->heap != NULL && sc->a.free != NULL) {
            sc->a.free(sc->a.ctx, h->heap);
        }

        h->heap = p;
        h->cap = cap;
    }

    if (n) {
        memcpy(cef_slot_hold_data(h) + sc->held, src, n);
    }

    sc->held = need;

    return 0;
}


static int
cef_slot_emit_pass(cef_slot_scanner_t *sc, const uint8_t *data, size_t len,
    int held, cef_slot_emit_pt emit, void *ctx)
{
    int               rc;
    cef_slot_event_t  ev;

    if (len == 0) {
        return 0;
    }

    memset(&ev, 0, sizeof(cef_slot_event_t));
    ev.type = CEF_SLOT_PASS;
    ev.data = data;
    ev.len = len;
    ev.held = held;

    rc = emit(ctx, &ev);
    if (rc != 0) {
        sc->abort_rc = rc;
    }

    return rc;
}


/* Pass the held bytes (the start of a candidate that is not a slot). */
static int
cef_slot_release_held(cef_slot_scanner_t *sc, cef_slot_emit_pt emit,
    void *ctx)
{
    int  rc;

    if (sc->held == 0) {
        return 0;
    }

    sc->h[sc->cur].frozen = 1;

    rc = cef_slot_emit_pass(sc, cef_slot_hold_data(&sc->h[sc->cur]),
                            sc->held, 1, emit, ctx);
    sc->held = 0;

    return rc;
}


/*
 * The candidate is not a slot (a marker broke off, the default outgrew
 * max, or memory ran out): its held bytes pass and scanning goes on
 * outside a marker.  The input bytes of the candidate pass with the next
 * run, since run was not moved past them.
 */
static int
cef_slot_candidate_fails(cef_slot_scanner_t *sc, cef_slot_emit_pt emit,
    void *ctx)
{
    int  rc;

    rc = cef_slot_release_held(sc, emit, ctx);
    if (rc == 0) {
        sc->state = ST_OUT;
    }

    return rc;
}


/*
 * Where the next marker may start at or after p[i]: the first '<' that is
 * followed by '!' or is the last byte of the buffer (its next byte is not
 * known yet), or len.  Both markers start with "<!", and '!' is rare in
 * HTML while '<' is everywhere, so this looks for '!' and checks the byte
 * before it: a few memchr calls over a page instead of one per tag.
 */
static size_t
cef_slot_next_bang(const uint8_t *p, size_t i, size_t len)
{
    size_t          k;
    const uint8_t  *q;

    if (i >= len) {
        return len;
    }

    /* a '!' at p[i] does not count: the byte before it is decided */
    for (k = i + 1; k < len; k = (size_t) (q - p) + 1) {
        q = memchr(p + k, '!', len - k);
        if (q == NULL) {
            break;
        }

        if (q[-1] == '<') {
            return (size_t) (q - p) - 1;
        }
    }

    return p[len - 1] == '<' ? len - 1 : len;
}


static cef_slot_match_e
cef_slot_open_step(cef_slot_scanner_t *sc, unsigned c)
{
    if (sc->mlen < CEF_SLOT_PREFIX_LEN) {
        if (c != (unsigned char) cef_slot_open_prefix[sc->mlen]) {
            return M_FAIL;
        }

        if (++sc->mlen == CEF_SLOT_PREFIX_LEN) {
            sc->x = 0;
            sc->dashes = 0;
            sc->sp = 0;
        }

        return M_MORE;
    }

    if (sc->sp) {
        /* after "NAME ": only "-->" may follow */
        if (c != (unsigned char) "-->"[sc->sp - 1]) {
            return M_FAIL;
        }

        sc->mlen++;

        if (sc->sp++ == 3) {
            sc->name_len = sc->x;
            return M_DONE;
        }

        return M_MORE;
    }

    if (c == '>') {
        /* the first "-->" ends the comment; the name is what precedes it */
        if (sc->dashes < 2 || sc->x < 3) {
            return M_FAIL;
        }

        sc->mlen++;
        sc->name_len = sc->x - 2;
        return M_DONE;
    }

    if (c == ' ') {
        if (sc->x < 1 || sc->x > CEF_SLOT_NAME_MAX) {
            return M_FAIL;
        }

        sc->mlen++;
        sc->sp = 1;
        return M_MORE;
    }

    if (!cef_slot_name_char(c)) {
        return M_FAIL;
    }

    sc->x++;
    sc->dashes = (c == '-') ? (sc->dashes < 2 ? sc->dashes + 1 : 2) : 0;

    /* even the shortest ending ("-->" sharing the trailing dashes) would
       make the name too long: no marker, do not hold these bytes */
    if (sc->x - sc->dashes > CEF_SLOT_NAME_MAX) {
        return M_FAIL;
    }

    sc->mlen++;
    return M_MORE;
}


static cef_slot_match_e
cef_slot_close_step(cef_slot_scanner_t *sc, unsigned c)
{
    size_t  k;

    if (sc->part < CEF_SLOT_PREFIX_LEN) {
        if (c != (unsigned char) cef_slot_close_prefix[sc->part]) {
            return M_FAIL;
        }

        sc->part++;
        return M_MORE;
    }

    k = sc->part - CEF_SLOT_PREFIX_LEN - sc->csp;

    if (k == 0 && !sc->csp && c == ' ') {
        sc->csp = 1;
        sc->part++;
        return M_MORE;
    }

    if (c != (unsigned char) "-->"[k]) {
        return M_FAIL;
    }

    sc->part++;

    return k == 2 ? M_DONE : M_MORE;
}


int
cef_slot_scanner_feed(cef_slot_scanner_t *sc, const uint8_t *p, size_t len,
    int last, cef_slot_emit_pt emit, void *ctx)
{
    int                rc;
    size_t             i, run, cstart, end, room, need;
    const uint8_t     *base;
    cef_slot_event_t   ev;
    cef_slot_match_e   m;

    if (sc->abort_rc) {
        return sc->abort_rc;
    }

    sc->h[0].frozen = 0;
    sc->h[1].frozen = 0;

    if (len == 0) {
        /* no arithmetic on a NULL pointer below */
        p = (const uint8_t *) "";
    }

    /*
     * Input bytes [run, cstart) are decided: they pass (emitted lazily, as
     * one event).  The candidate, if any, is the held bytes followed by
     * input [cstart, i); if there are held bytes, run == cstart == 0.
     */
    i = 0;
    run = 0;
    cstart = 0;

    while (i < len) {

        switch (sc->state) {

        case ST_OUT:
            i = cef_slot_next_bang(p, i, len);

            if (i == len) {
                break;
            }

            cstart = i++;
            sc->state = ST_OPEN;
            sc->mlen = 1;
            break;

        case ST_OPEN:
            if (sc->mlen == 1 && i == cstart + 1
                && len - cstart >= CEF_SLOT_PREFIX_LEN
                && memcmp(p + cstart, cef_slot_open_prefix,
                          CEF_SLOT_PREFIX_LEN) == 0)
            {
                /* the steps of the whole prefix at once */
                i = cstart + CEF_SLOT_PREFIX_LEN;
                sc->mlen = CEF_SLOT_PREFIX_LEN;
                sc->x = 0;
                sc->dashes = 0;
                sc->sp = 0;
                break;
            }

            m = cef_slot_open_step(sc, p[i]);

            if (m == M_FAIL) {
                /* the candidate passes; rescan p[i] */
                rc = cef_slot_candidate_fails(sc, emit, ctx);
                if (rc != 0) {
                    return rc;
                }

                break;
            }

            i++;

            if (m == M_DONE) {
                sc->state = ST_IN;
                sc->open_len = sc->mlen;
                sc->def_len = 0;
                sc->part = 0;
            }

            break;

        case ST_IN:
            if (sc->part == 0) {
                room = sc->max - sc->def_len;
                end = cef_slot_next_bang(p, i, len);

                if (end - i > room) {
                    /* p[i + room] is default byte max + 1 (it cannot
                       start a marker): the open marker and the default up
                       to there pass */
                    i += room;
                    sc->stats.oversized++;

                    rc = cef_slot_candidate_fails(sc, emit, ctx);
                    if (rc != 0) {
                        return rc;
                    }

                    break;
                }

                sc->def_len += end - i;
                i = end;

                if (i < len) {
                    sc->csp = 0;

                    if (len - i >= CEF_SLOT_PREFIX_LEN
                        && memcmp(p + i, cef_slot_close_prefix,
                                  CEF_SLOT_PREFIX_LEN) == 0)
                    {
                        /* the steps of the whole prefix at once */
                        sc->part = CEF_SLOT_PREFIX_LEN;
                        i += CEF_SLOT_PREFIX_LEN;

                    } else {
                        sc->part = 1;
                        i++;
                    }
                }

                break;
            }

            m = cef_slot_close_step(sc, p[i]);

            if (m == M_FAIL) {
                /* the partial close is default; rescan p[i] */
                sc->def_len += sc->part;
                sc->part = 0;

                if (sc->def_len > sc->max) {
                    sc->stats.oversized++;

                    rc = cef_slot_candidate_fails(sc, emit, ctx);
                    if (rc != 0) {
                        return rc;
                    }
                }

                break;
            }

            i++;

            if (m == M_MORE) {
                break;
            }

            /* a slot: open marker, default, close marker */

            need = sc->open_len + sc->def_len;

            if (sc->held) {
                if (need > sc->held
                    && cef_slot_hold_append(sc, p, need - sc->held) != 0)
                {
                    sc->stats.nomem++;

                    rc = cef_slot_candidate_fails(sc, emit, ctx);
                    if (rc != 0) {
                        return rc;
                    }

                    break;
                }

                base = cef_slot_hold_data(&sc->h[sc->cur]);

            } else {
                base = p + cstart;
                rc = cef_slot_emit_pass(sc, p + run, cstart - run, 0, emit,
                                        ctx);
                if (rc != 0) {
                    return rc;
                }
            }

            memset(&ev, 0, sizeof(cef_slot_event_t));
            ev.type = CEF_SLOT_SLOT;
            ev.held = sc->held != 0;
            ev.name.data = (const char *) base + CEF_SLOT_PREFIX_LEN;
            ev.name.len = sc->name_len;
            ev.def = base + sc->open_len;
            ev.def_len = sc->def_len;

            if (sc->held) {
                sc->h[sc->cur].frozen = 1;
                sc->held = 0;
            }

            sc->stats.slots++;
            sc->state = ST_OUT;
            sc->part = 0;
            run = i;

            rc = emit(ctx, &ev);
            if (rc != 0) {
                sc->abort_rc = rc;
                return rc;
            }

            break;
        }
    }

    if (sc->state == ST_OUT) {
        rc = cef_slot_emit_pass(sc, p + run, len - run, 0, emit, ctx);

    } else if (last) {
        /* the body ends in a candidate: it passes unchanged */
        if (sc->state == ST_IN) {
            sc->stats.unclosed++;
        }

        rc = cef_slot_release_held(sc, emit, ctx);
        if (rc == 0) {
            rc = cef_slot_emit_pass(sc, p + run, len - run, 0, emit, ctx);
        }

    } else {
        rc = cef_slot_emit_pass(sc, p + run, cstart - run, 0, emit, ctx);

        if (rc == 0 && cef_slot_hold_append(sc, p + cstart, len - cstart)) {
            /* only a slot can outgrow the inline buffer */
            sc->stats.nomem++;
            sc->state = ST_OUT;

            rc = cef_slot_release_held(sc, emit, ctx);
            if (rc == 0) {
                rc = cef_slot_emit_pass(sc, p + cstart, len - cstart, 0,
                                        emit, ctx);
            }
        }
    }

    if (rc != 0) {
        return rc;
    }

    if (last) {
        sc->state = ST_OUT;
        sc->held = 0;
        sc->part = 0;
        sc->mlen = 0;
    }

    return 0;
}


/* ---- the one-shot reference -------------------------------------------- */

/*
 * The length of the open marker at b, or 0.  Written from the grammar, not
 * from the scanner's state machine: X runs to the first "-->".
 */
static size_t
cef_slot_ref_open(const uint8_t *b, size_t n, size_t *name_len)
{
    size_t  lim, e, nl, k;

    if (n < CEF_SLOT_PREFIX_LEN
        || memcmp(b, cef_slot_open_prefix, CEF_SLOT_PREFIX_LEN) != 0)
    {
        return 0;
    }

    b += CEF_SLOT_PREFIX_LEN;
    n -= CEF_SLOT_PREFIX_LEN;

    /* a valid X is at most NAME_MAX + 1 bytes */
    lim = CEF_SLOT_NAME_MAX + 1 + 3;
    if (lim > n) {
        lim = n;
    }

    for (e = 0; e + 3 <= lim; e++) {
        if (memcmp(b + e, "-->", 3) == 0) {
            break;
        }
    }

    if (e + 3 > lim) {
        return 0;
    }

    nl = e;
    if (nl > 0 && b[nl - 1] == ' ') {
        nl--;
    }

    if (nl < 1 || nl > CEF_SLOT_NAME_MAX) {
        return 0;
    }

    for (k = 0; k < nl; k++) {
        if (!cef_slot_name_char(b[k])) {
            return 0;
        }
    }

    *name_len = nl;

    return CEF_SLOT_PREFIX_LEN + e + 3;
}


static size_t
cef_slot_ref_close(const uint8_t *b, size_t n)
{
    if (n >= 16 && memcmp(b, "<!--/cef:slot-->", 16) == 0) {
        return 16;
    }

    if (n >= 17 && memcmp(b, "<!--/cef:slot -->", 17) == 0) {
        return 17;
    }

    return 0;
}


static int
cef_slot_ref_pass(const uint8_t *b, size_t from, size_t to,
    cef_slot_emit_pt emit, void *ctx)
{
    cef_slot_event_t  ev;

    if (to <= from) {
        return 0;
    }

    memset(&ev, 0, sizeof(cef_slot_event_t));
    ev.type = CEF_SLOT_PASS;
    ev.data = b + from;
    ev.len = to - from;

    return emit(ctx, &ev);
}


int
cef_slot_scan_all(const uint8_t *body, size_t len, size_t max_default,
    cef_slot_emit_pt emit, void *ctx)
{
    int               rc;
    size_t            pos, j, k, c, ol, cl, nl;
    cef_slot_event_t  ev;

    pos = 0;
    j = 0;
    nl = 0;

    for ( ;; ) {

        /* the next open marker at or after j */
        ol = 0;

        for ( /* void */ ; j < len; j++) {
            if (body[j] == '<') {
                ol = cef_slot_ref_open(body + j, len - j, &nl);
                if (ol) {
                    break;
                }
            }
        }

        if (ol == 0) {
            return cef_slot_ref_pass(body, pos, len, emit, ctx);
        }

        /* the first close marker that begins within max_default bytes */
        k = j + ol;
        cl = 0;

        for (c = k; c < len && c - k <= max_default; c++) {
            if (body[c] == '<') {
                cl = cef_slot_ref_close(body + c, len - c);
                if (cl) {
                    break;
                }
            }
        }

        if (cl) {
            rc = cef_slot_ref_pass(body, pos, j, emit, ctx);
            if (rc != 0) {
                return rc;
            }

            memset(&ev, 0, sizeof(cef_slot_event_t));
            ev.type = CEF_SLOT_SLOT;
            ev.name.data = (const char *) body + j + CEF_SLOT_PREFIX_LEN;
            ev.name.len = nl;
            ev.def = body + k;
            ev.def_len = c - k;

            rc = emit(ctx, &ev);
            if (rc != 0) {
                return rc;
            }

            pos = c + cl;
            j = pos;
            continue;
        }

        if (len - k <= max_default) {
            /* the body ends inside the slot */
            return cef_slot_ref_pass(body, pos, len, emit, ctx);
        }

        /* too large: the open marker and max_default + 1 bytes pass */
        j = k + max_default + 1;
    }
}
