/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_store_rules: rule sets published through the store (issue 20), reader
 * side, and their stored layout (shared with the writer).  Plain C11, no
 * nginx types.
 *
 * cef-sync stores, per rule-set NAME, the state "r/" NAME -- its last
 * applied record version, the versions kept (at most
 * CEF_STORE_RULES_HISTORY, oldest first: hash, who, when, state), which one
 * is live and which one is the candidate (canary or shadow, with its share)
 * -- and each kept version's source under "s/" NAME "\0" SHA-256 (32 raw
 * bytes).  The records: docs/formats.md, "Rules records".
 *
 * Reading, inside a session, in place:
 *
 *   cef_store_rules_t          r;
 *   cef_store_rules_version_t  live;
 *
 *   if (cef_store_rules_get(s, "shop", 4, &r) == CEF_STORE_OK
 *       && r.live >= 0
 *       && cef_store_rules_at(&r, (uint32_t) r.live, &live) == 0
 *       && cef_store_rules_source(s, &r, &live) == CEF_STORE_OK)
 *   {
 *       ... live.hex (as $cef_rules_hash), live.source ...
 *   }
 *
 * "Did it change": r.version changes with every record applied to NAME
 * (one mdb_get, the header read); cef_store_published_changed() (cef_store.h)
 * says whether anything published changed at all, for free while no write
 * committed.  A worker compiles a new live or candidate version off the
 * request path, keyed by its hash: versions never change content.
 *
 * Stored state (little-endian):
 *
 *   u8   format        CEF_STORE_RULES_FORMAT
 *   u8   mode          CEF_STORE_RULES_NONE, _CANARY or _SHADOW: the
 *                      candidate's rollout
 *   u16  share         the candidate's share, basis points (1..10000)
 *   u16  nhistory
 *   i16  live          index into the history, -1 none
 *   i16  candidate     index, -1 none
 *   u16  0
 *   u32  0
 *   u64  version       of the last record applied to NAME
 *   i64  changed_at    when cef-sync applied it
 *   history            nhistory x entry, oldest first:
 *       u8   sha256[32]
 *       u64  version      of the record that published it
 *       i64  created_at   the record's (unix seconds)
 *       u64  live_at      version of the record that last made it live; 0
 *       u8   state        CEF_STORE_RULES_STATE_*
 *       u8   label_len, author_len
 *       char label[label_len], author[author_len]
 */

#ifndef CEF_STORE_RULES_H
#define CEF_STORE_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "cef_store.h"
#include "cef_value.h"


#define CEF_STORE_RULES_FORMAT    1
#define CEF_STORE_RULES_HEADER    32
#define CEF_STORE_RULES_ENTRY     (32 + 8 + 8 + 8 + 3)
#define CEF_STORE_RULES_HISTORY   50
#define CEF_STORE_RULES_NAME_MAX  128     /* [A-Za-z0-9._-], bytes */
#define CEF_STORE_RULES_TEXT_MAX  255     /* a label, an author */

/* the candidate's rollout */
#define CEF_STORE_RULES_NONE      0
#define CEF_STORE_RULES_CANARY    1
#define CEF_STORE_RULES_SHADOW    2

/* a version's state */
#define CEF_STORE_RULES_STATE_HELD         0   /* published, never live */
#define CEF_STORE_RULES_STATE_LIVE         1
#define CEF_STORE_RULES_STATE_CANARY       2
#define CEF_STORE_RULES_STATE_SHADOW       3
#define CEF_STORE_RULES_STATE_RETIRED      4   /* was live, replaced */
#define CEF_STORE_RULES_STATE_ROLLED_BACK  5   /* taken back by a rollback */
#define CEF_STORE_RULES_STATE_DROPPED      6   /* a candidate replaced or
                                                  withdrawn */


typedef struct {
    uint8_t         sha256[32];
    char            hex[65];        /* as $cef_rules_hash */
    uint64_t        version;
    int64_t         created_at;
    uint64_t        live_at;
    int             state;
    cef_span_t      label;
    cef_span_t      author;
    cef_span_t      source;         /* set by cef_store_rules_source() */
} cef_store_rules_version_t;

typedef struct {
    cef_span_t      name;
    uint64_t        version;
    int64_t         changed_at;
    int             mode;           /* the candidate's rollout */
    uint32_t        share;          /* basis points */
    int             live;           /* index, -1 none */
    int             candidate;      /* index, -1 none */
    uint32_t        nhistory;
    const uint8_t  *history;        /* read with cef_store_rules_at() */
    size_t          history_len;
} cef_store_rules_t;


/*
 * NAME's state, in place.
 *
 * @return CEF_STORE_OK, CEF_STORE_NOTFOUND (nothing published as NAME), or
 *         CEF_STORE_ERROR (outside a session, a read error, malformed).
 */
int cef_store_rules_get(cef_store_t *s, const char *name, size_t len,
    cef_store_rules_t *r);

/* History entry i (0 = oldest) into *v: 0, or -1 if there is none. */
int cef_store_rules_at(const cef_store_rules_t *r, uint32_t i,
    cef_store_rules_version_t *v);

/*
 * v's source text, in place, into v->source.
 *
 * @return CEF_STORE_OK, CEF_STORE_NOTFOUND, CEF_STORE_ERROR.
 */
int cef_store_rules_source(cef_store_t *s, const cef_store_rules_t *r,
    cef_store_rules_version_t *v);

/* Every rule-set name's state, in name order, until fn returns nonzero. */
int cef_store_rules_each(cef_store_t *s,
    int (*fn)(void *data, const cef_store_rules_t *r), void *data);

/* "live", "canary", ... */
const char *cef_store_rules_state_name(int state);
const char *cef_store_rules_mode_name(int mode);

/* 1 if name is a valid rule-set name (1..CEF_STORE_RULES_NAME_MAX of
   [A-Za-z0-9._-]) */
int cef_store_rules_name_ok(const char *name, size_t len);

/* Layout helpers for the writer: the keys (their length), decoding a value
   found under key. */
size_t cef_store_rules_key(char *key, const char *name, size_t len);
size_t cef_store_rules_source_key(char *key, const char *name, size_t len,
    const uint8_t *sha256);
int cef_store_rules_decode(const void *key, size_t klen, const void *val,
    size_t vlen, cef_store_rules_t *r);


#endif /* CEF_STORE_RULES_H */
