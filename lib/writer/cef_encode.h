/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Part of lib/writer (see cef_writer.h for what the folder may include).
 *
 * cef_encode: turns input records (msgpack objects) into stored
 * profiles (cef_profile.h), interning attribute names and recurring
 * strings.  Used by the writer; plain C11, no nginx types.
 */

#ifndef CEF_ENCODE_H
#define CEF_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "cef_value.h"


#define CEF_ENCODE_NAMES_MAX  65535
#define CEF_ENCODE_STRS_MAX   65536
#define CEF_ENCODE_STR_MAXLEN 64


/* An append-only string table with a hash index. */
typedef struct {
    cef_span_t  *spans;      /* malloc'd copies */
    uint32_t     n;
    uint32_t     cap;
    uint32_t     max;        /* never more entries than this */
    uint32_t     written;    /* entries already stored in LMDB */
    uint32_t    *table;      /* id + 1, 0 = empty */
    uint32_t     mask;
    cef_strtab_t tab;        /* { spans, n } for cef_value_decode() */
} cef_encode_intern_t;


typedef struct {
    uint32_t  attr;
    size_t    off;           /* into the encoder's value buffer */
    size_t    len;
} cef_encode_pair_t;


#define CEF_ENCODE_NAME_CACHE  64

typedef struct {
    cef_encode_intern_t        names;
    cef_encode_intern_t        strs;
    int64_t             name_cache[CEF_ENCODE_NAME_CACHE];  /* by position */
    msgpack_sbuffer     vbuf;      /* encoded attribute values */
    msgpack_sbuffer     blob;      /* the assembled profile */
    cef_encode_pair_t  *pairs;
    uint32_t            npairs;
    uint32_t            cap;
} cef_encode_t;


/*
 * Initialise an encoder with empty tables.
 *
 * @return 0, or -1 when out of memory.
 */
int cef_encode_init(cef_encode_t *e);

void cef_encode_free(cef_encode_t *e);

/*
 * Find a string.
 *
 * @return its id, or -1 if absent.
 */
int64_t cef_encode_intern_find(const cef_encode_intern_t *t, const char *s,
    size_t len);

/*
 * Find or add a string.
 *
 * @return its id, or -1 if the table is full or memory ran out.
 */
int64_t cef_encode_intern_add(cef_encode_intern_t *t, const char *s,
    size_t len);

/*
 * Check that a value is one a profile attribute may have: nil, bool,
 * int64, float, string, array of strings, map string -> number.
 *
 * @param[in]  v    the value
 * @param[out] why  a short reason on failure
 * @return 0 if acceptable, -1 if not.
 */
int cef_encode_check_value(const msgpack_object *v, const char **why);

/*
 * Start a profile: forget the pairs of the previous one.
 */
void cef_encode_begin(cef_encode_t *e);

/*
 * Add (or replace) an attribute from an input value that passed
 * cef_encode_check_value().
 *
 * @return 0, or -1 (out of memory, or too many attribute names).
 */
int cef_encode_attr(cef_encode_t *e, const char *name, size_t nlen,
    const msgpack_object *v);

/*
 * Add an attribute whose value is already in stored form (from an existing
 * profile).
 *
 * @return 0, or -1 when out of memory.
 */
int cef_encode_attr_raw(cef_encode_t *e, uint32_t attr, const uint8_t *p,
    size_t len);

/*
 * Remove an attribute, if present.
 */
void cef_encode_unset(cef_encode_t *e, uint32_t attr);

/*
 * Assemble the stored profile into e->blob.
 *
 * @param[in] e       the encoder, with the profile's attributes added
 * @param[in] hints   index buckets of the profile's keys (host order)
 * @param[in] nhints  their number, <= CEF_PROFILE_HINTS_MAX
 * @param[in] id      the profile id
 * @param[in] idlen   its length, <= CEF_PROFILE_ID_MAX
 * @return 0, or -1 when out of memory.
 */
int cef_encode_profile(cef_encode_t *e, const uint16_t *hints,
    uint32_t nhints, const char *id, size_t idlen);


#endif /* CEF_ENCODE_H */
