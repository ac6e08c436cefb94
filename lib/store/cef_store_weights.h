/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_store_weights: a bandit's published arm weights as the store keeps
 * them (issue 19), reader side, and their stored layout (shared with the
 * writer, as cef_store_bucket.h is).  Plain C11, no nginx types.
 *
 * cef-sync stores each (experiment, salt)'s newest weights record (the
 * record: docs/formats.md, "Weights records") in the "meta" database under
 * "w/" EXPERIMENT "\0" SALT, in the same write transaction as the stream
 * offsets or the delta sequence.  A reader looks one up by (experiment,
 * salt) in place -- one mdb_get, no copy, no allocation -- inside a session
 * (cef_store_begin()); views are valid until cef_store_end().
 *
 * A worker that derives something per version (cumulative cut-offs over
 * the arms) keeps it with the version it came from and asks
 * cef_store_published_changed() (cef_store.h) at each request whether
 * anything published changed: that is free while no write committed.
 *
 *   cef_store_weights_t  w;
 *   cef_store_arm_t      arm;
 *   size_t               pos = 0;
 *
 *   if (cef_store_weights_get(s, "hero-q4", 7, "hero-q4", 7, &w)
 *       == CEF_STORE_OK)
 *   {
 *       while (cef_store_weights_arm(&w, &pos, &arm)) {
 *           ... arm.name, arm.bp (basis points, summing to 10000) ...
 *       }
 *   }
 *
 * Stored value (little-endian):
 *
 *   u8   format        CEF_STORE_WEIGHTS_FORMAT
 *   u8   updated       the record's "updated"
 *   u16  narms
 *   u32  arms_len      bytes of the arms below
 *   u64  version
 *   i64  created_at    the record's (unix seconds)
 *   i64  stored_at     when cef-sync stored it
 *   arms               narms x { u16 bp, u8 len, char name[len] }, the
 *                      record's order
 *   record             the record as received, msgpack (for tools)
 */

#ifndef CEF_STORE_WEIGHTS_H
#define CEF_STORE_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "cef_store.h"
#include "cef_value.h"


#define CEF_STORE_WEIGHTS_FORMAT    1
#define CEF_STORE_WEIGHTS_HEADER    32
#define CEF_STORE_WEIGHTS_NAME_MAX  200     /* experiment, salt: bytes */
#define CEF_STORE_WEIGHTS_ARM_MAX   255     /* an arm (offer) name: bytes */
#define CEF_STORE_WEIGHTS_ARMS_MAX  256
#define CEF_STORE_WEIGHTS_TOTAL     10000   /* basis points */

/* the key: "w/" experiment "\0" salt */
#define CEF_STORE_WEIGHTS_KEY_MAX   (2 + 2 * CEF_STORE_WEIGHTS_NAME_MAX + 1)


typedef struct {
    cef_span_t      experiment;
    cef_span_t      salt;
    uint64_t        version;
    int64_t         created_at;
    int64_t         stored_at;
    int             updated;
    uint32_t        narms;
    const uint8_t  *arms;           /* read with cef_store_weights_arm() */
    size_t          arms_len;
    const uint8_t  *record;         /* the record as received (msgpack) */
    size_t          record_len;
} cef_store_weights_t;

typedef struct {
    cef_span_t  name;
    uint32_t    bp;                 /* basis points of new visitors */
} cef_store_arm_t;


/*
 * The newest weights of (experiment, salt), in place.
 *
 * @return CEF_STORE_OK, CEF_STORE_NOTFOUND (none published: uniform), or
 *         CEF_STORE_ERROR (outside a session, a read error, a malformed
 *         value; cef_store_strerror() says which).
 */
int cef_store_weights_get(cef_store_t *s, const char *experiment,
    size_t elen, const char *salt, size_t slen, cef_store_weights_t *w);

/*
 * The next arm: 1 with *arm filled (and *pos advanced; start at 0), 0
 * after the last.
 */
int cef_store_weights_arm(const cef_store_weights_t *w, size_t *pos,
    cef_store_arm_t *arm);

/*
 * Every stored weights record, in key order (cef-sync stat, metrics),
 * until fn returns nonzero.  Malformed values are skipped.
 *
 * @return CEF_STORE_OK or CEF_STORE_ERROR.
 */
int cef_store_weights_each(cef_store_t *s,
    int (*fn)(void *data, const cef_store_weights_t *w), void *data);

/*
 * The key of (experiment, salt) into key (CEF_STORE_WEIGHTS_KEY_MAX
 * bytes): its length, or 0 if a name is empty or too long.
 */
size_t cef_store_weights_key(char *key, const char *experiment, size_t elen,
    const char *salt, size_t slen);

/*
 * Decode a stored value (and the key it was stored under): 0, or -1 if
 * malformed (arms that do not add up to 10000 included).
 */
int cef_store_weights_decode(const void *key, size_t klen, const void *val,
    size_t vlen, cef_store_weights_t *w);

/*
 * The writer's half: the fixed header of a value into out
 * (CEF_STORE_WEIGHTS_HEADER bytes), and one arm (3 + name length bytes;
 * the number written).
 */
void cef_store_weights_put_header(uint8_t *out, const cef_store_weights_t *w);
size_t cef_store_weights_put_arm(uint8_t *out, const cef_store_arm_t *arm);


#endif /* CEF_STORE_WEIGHTS_H */
