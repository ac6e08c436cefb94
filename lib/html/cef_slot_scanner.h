/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Folder lib/html: the slot scanner of the body filter.  It includes only
 * lib/core; the glue (and tests) include it, no other folder does.
 *
 * cef_slot_scanner: finds slots in an HTML body that arrives in pieces.
 * Plain C11, no nginx types, no global state.
 *
 * Shop templates mark a slot as
 *
 *     <!--cef:slot NAME-->DEFAULT<!--/cef:slot-->
 *
 * The scanner is fed the body buffer by buffer and reports, in body order,
 * which bytes to pass on unchanged (CEF_SLOT_PASS) and where a complete slot
 * stands (CEF_SLOT_SLOT: its name and default content; the markers are not
 * reported, the caller emits either an offer or the default in their
 * place).  Concatenating the PASS bytes and, for each SLOT, its default
 * gives the body without the slot markers; nothing else is ever changed,
 * dropped or reordered.
 *
 * Marker grammar (byte-exact, case-sensitive; see docs/slots.md):
 *
 *     open   = "<!--cef:slot " X "-->"
 *              where X is everything up to the first "-->", and X is
 *              NAME or NAME followed by one space;
 *     NAME   = 1*64( ALPHA / DIGIT / "_" / "-" )
 *     close  = "<!--/cef:slot-->" / "<!--/cef:slot -->"
 *
 * - Anything that is not exactly a marker is content.
 * - Slots do not nest: inside a slot only a close marker is recognised; an
 *   open marker there is default content.
 * - A close marker outside a slot is content (passed unchanged).
 * - If no close marker begins within max_default bytes after the open
 *   marker, the slot is not a slot: the open marker and the first
 *   max_default + 1 bytes of the default are passed unchanged and scanning
 *   resumes (outside a slot) after them.  If the body ends inside a slot,
 *   the open marker and everything after it are passed unchanged.
 *
 * Use:
 *
 *     sc = cef_slot_scanner_create(&allocator, 65536);
 *     for each buffer of the body:
 *         cef_slot_scanner_feed(sc, buf, len, is_last, on_event, ctx);
 *     cef_slot_scanner_destroy(sc);
 *
 *     on_event(ctx, ev):
 *         PASS: send ev->data/len (copy it first if ev->held and it must
 *               outlive the next feed)
 *         SLOT: send the offer for ev->name, or ev->def/def_len
 *
 * Memory: bytes outside slots are passed as soon as they cannot be the start
 * of an open marker; at most CEF_SLOT_OPEN_MAX - 1 bytes (only a viable
 * prefix of an open marker, which always starts with '<') are held back at
 * the end of a buffer.  Inside a slot, the open marker, the default so far
 * and a partial close marker are held: at most
 * CEF_SLOT_HELD_MAX(max_default) bytes.
 */

#ifndef CEF_SLOT_SCANNER_H
#define CEF_SLOT_SCANNER_H

#include <stddef.h>
#include <stdint.h>

#include "cef_value.h"


#define CEF_SLOT_NAME_MAX   64

/* the longest open marker: "<!--cef:slot " + 64-byte NAME + " -->" */
#define CEF_SLOT_OPEN_MAX   (13 + CEF_SLOT_NAME_MAX + 4)

/* the longest close marker: "<!--/cef:slot -->" */
#define CEF_SLOT_CLOSE_MAX  17

/*
 * The most bytes a scanner created with max_default ever holds between
 * feed calls (cef_slot_scanner_held()): a whole open marker, max_default
 * bytes of default and a close marker less its last byte.
 */
#define CEF_SLOT_HELD_MAX(max_default)                                       \
    ((size_t) (max_default) + CEF_SLOT_OPEN_MAX + CEF_SLOT_CLOSE_MAX - 1)

/* the nginx default for cef_slot_max_size */
#define CEF_SLOT_DEFAULT_MAX  65536

/* the largest max_default cef_slot_scanner_create() accepts */
#define CEF_SLOT_MAX_DEFAULT_LIMIT  ((size_t) 1 << 30)


typedef struct cef_slot_scanner_s  cef_slot_scanner_t;


/*
 * Where the scanner gets its memory.  The nginx glue passes a request-pool
 * allocator without free; tools pass malloc/free.
 */
typedef struct {
    /* Return n bytes aligned for any object, or NULL. */
    void   *(*alloc)(void *ctx, size_t n);
    /* Release memory from alloc; may be NULL (memory is then reclaimed by
       the owner of ctx, e.g. when the request pool is destroyed). */
    void    (*free)(void *ctx, void *p);
    void    *ctx;
} cef_allocator_t;


typedef enum {
    CEF_SLOT_PASS = 0,      /* bytes to pass on unchanged */
    CEF_SLOT_SLOT           /* a complete slot, markers dropped */
} cef_slot_event_type_t;


/*
 * One event.
 *
 * CEF_SLOT_PASS: data/len (len >= 1) are bytes of the body to pass on.
 * CEF_SLOT_SLOT: name is the slot's NAME (1..64 bytes of [A-Za-z0-9_-]),
 *   def/def_len its default content (def_len may be 0; def is then
 *   non-NULL but must not be read).
 *
 * held says where the pointers point:
 *   0  into the buffer passed to the current cef_slot_scanner_feed() call
 *      (or into the body given to cef_slot_scan_all()): valid for as long
 *      as the caller keeps that buffer, so the caller can pass it on
 *      without copying;
 *   1  into the scanner's own memory: valid until the next call to
 *      cef_slot_scanner_feed() or cef_slot_scanner_destroy() on the same
 *      scanner.  A caller that needs the bytes for longer (e.g. an nginx
 *      filter whose output buffers may outlive the call) copies them.
 * For a SLOT event held applies to both name and def.
 */
typedef struct {
    cef_slot_event_type_t   type;
    const uint8_t          *data;      /* PASS */
    size_t                  len;       /* PASS */
    int                     held;
    cef_span_t              name;      /* SLOT */
    const uint8_t          *def;       /* SLOT */
    size_t                  def_len;   /* SLOT */
} cef_slot_event_t;


/*
 * Receives events, in body order.
 *
 * @param[in] ctx  the ctx given to cef_slot_scanner_feed()
 * @param[in] ev   the event; the struct itself is only valid during the call
 * @return 0 to continue; any other value aborts the feed, which then
 *         returns that value.
 *
 * The callback must not call cef_slot_scanner_feed() or
 * cef_slot_scanner_destroy() on the scanner that is calling it.
 */
typedef int (*cef_slot_emit_pt)(void *ctx, const cef_slot_event_t *ev);


/* Counters for one scanner, over all bodies it has been fed. */
typedef struct {
    size_t  slots;       /* SLOT events */
    size_t  oversized;   /* slots passed unchanged: no close marker within
                            max_default */
    size_t  unclosed;    /* slots passed unchanged: the body ended inside */
    size_t  nomem;       /* slots passed unchanged: allocation failed */
} cef_slot_stats_t;


/*
 * Create a scanner.
 *
 * Allocates one object of a few hundred bytes.  Feeding allocates more only
 * when a slot (a complete open marker and more than a few dozen bytes after
 * it) has to be held across a buffer boundary: a body without "<!--"
 * allocates nothing beyond the scanner itself.  All memory comes from a,
 * and its total never exceeds about 2.3 * CEF_SLOT_HELD_MAX(max_default)
 * plus the scanner object, also with an allocator without free.
 *
 * @param[in] a            the allocator; copied, but a->ctx must stay
 *                         valid for the scanner's lifetime
 * @param[in] max_default  the most bytes of default content a slot may
 *                         have (cef_slot_max_size; 0 allows only empty
 *                         defaults); at most CEF_SLOT_MAX_DEFAULT_LIMIT
 * @return the scanner, or NULL if allocation failed or max_default is too
 *         large.
 */
cef_slot_scanner_t *cef_slot_scanner_create(const cef_allocator_t *a,
    size_t max_default);

/*
 * Feed the next piece of the body.
 *
 * Emits, through emit, every event that the bytes fed so far determine,
 * in order.  Bytes that may still belong to a marker or a slot are held
 * (copied into the scanner) until a later call decides them.  With last
 * set everything held is decided: a partial marker or an unfinished slot is
 * passed unchanged.  The scanner is then back in its initial state and may
 * be fed another body.
 *
 * If the scanner cannot allocate memory to hold a slot, that slot is
 * passed unchanged (as if it were too large) and counted in
 * cef_slot_stats_t.nomem; feeding goes on.
 *
 * @param[in] sc    the scanner
 * @param[in] p     the bytes (may be NULL if len is 0); not modified and
 *                  not referenced by the scanner after the call
 * @param[in] len   bytes at p; 0 is allowed (e.g. a last call with no data)
 * @param[in] last  nonzero: this is the end of the body
 * @param[in] emit  the event callback
 * @param[in] ctx   passed to emit
 * @return 0 on success, or the nonzero value emit returned to abort.  After
 *         an abort the scanner's state is lost: every later feed returns
 *         the same value without emitting anything; destroy it.
 */
int cef_slot_scanner_feed(cef_slot_scanner_t *sc, const uint8_t *p,
    size_t len, int last, cef_slot_emit_pt emit, void *ctx);

/*
 * The number of bytes the scanner currently holds back: 0 after a last
 * feed and whenever the body fed so far has no '<' since the last decided
 * byte; at most CEF_SLOT_OPEN_MAX - 1 outside a slot and
 * CEF_SLOT_HELD_MAX(max_default) inside one.  Held bytes are always the
 * last bytes fed, and start with '<'.
 */
size_t cef_slot_scanner_held(const cef_slot_scanner_t *sc);

/* Copy the scanner's counters to *st. */
void cef_slot_scanner_stats(const cef_slot_scanner_t *sc,
    cef_slot_stats_t *st);

/*
 * Free a scanner and its memory (through the allocator's free, if any).
 * Held bytes are discarded: feed with last set first to get them.  NULL is
 * accepted.
 */
void cef_slot_scanner_destroy(cef_slot_scanner_t *sc);


/*
 * The reference: scan a whole body at once, with the same grammar and
 * limits as the streaming scanner but an independent implementation, for
 * tests, fuzzing and tools.  Every event has held == 0 and points into
 * body.  Feeding the same body to a scanner created with the same
 * max_default, split anywhere, produces the same SLOT events and the same
 * concatenated PASS bytes in between (PASS events may be cut differently).
 *
 * @param[in] body         the body (may be NULL if len is 0)
 * @param[in] len          its length
 * @param[in] max_default  as for cef_slot_scanner_create()
 * @param[in] emit, ctx    as for cef_slot_scanner_feed()
 * @return 0, or the nonzero value emit returned to abort.
 */
int cef_slot_scan_all(const uint8_t *body, size_t len, size_t max_default,
    cef_slot_emit_pt emit, void *ctx);


#endif /* CEF_SLOT_SCANNER_H */
