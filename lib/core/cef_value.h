/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Folder lib/core: the vocabulary every other folder speaks (values and
 * spans, base64url, experiment bucketing, text checks, the version).  It
 * includes nothing of ours; every folder, the glue and the tools may
 * include it.
 *
 * cef_value: the one value type shared by the profile store, the rule
 * engine and rule plugins.  Plain C11, no nginx types.
 *
 * Values are views: strings, arrays and maps point into memory owned by
 * someone else (a profile in the LMDB map, a compiled rule set, a request's
 * pool).  A value is valid exactly as long as the memory it points into.
 */

#ifndef CEF_VALUE_H
#define CEF_VALUE_H

#include <stddef.h>
#include <stdint.h>


/* A byte span; not NUL-terminated. */
typedef struct {
    const char  *data;
    size_t       len;
} cef_span_t;

#define cef_span_lit(s)  ((cef_span_t) { (s), sizeof(s) - 1 })


/*
 * The store's msgpack extension types (docs/store.md), read here and
 * written by lib/writer's encoder: an interned string (its index in the
 * dictionary), and a short decimal m / 10^(type - CEF_VALUE_EXT_DEC_MIN).
 * cef_value_pow10[e] is 10^e for e = 0 .. 15, so that reader and writer
 * divide by the very same doubles.
 */
#define CEF_VALUE_EXT_INTERNED  1
#define CEF_VALUE_EXT_DEC_MIN   16
#define CEF_VALUE_EXT_DEC_MAX   31

extern const double  cef_value_pow10[CEF_VALUE_EXT_DEC_MAX
                                     - CEF_VALUE_EXT_DEC_MIN + 1];


typedef enum {
    CEF_VAL_NIL = 0,
    CEF_VAL_BOOL,
    CEF_VAL_INT,
    CEF_VAL_FLOAT,
    CEF_VAL_STR,
    CEF_VAL_STR_ARRAY,     /* array of strings, e.g. segments */
    CEF_VAL_NUM_MAP        /* map string -> number, e.g. interest scores */
} cef_value_type_t;


/*
 * A table of interned strings.  In the profile store, strings that recur
 * (segment names, interest categories, lifecycle stages, ...) are stored
 * once in the store's dictionary and referred to by index; a value read
 * from the store carries the table so that the iterators below can resolve
 * them.  Values built elsewhere (rule literals) leave it NULL.
 */
typedef struct {
    const cef_span_t  *s;
    uint32_t           n;
} cef_strtab_t;


/*
 * Arrays and maps stay encoded (msgpack, as stored) and are read with the
 * iterators below, so that looking a profile up never allocates.
 *
 * Encoding of the elements (see docs/store.md): an array element or a map
 * key is a msgpack str, or a msgpack positive int that indexes strs; a map
 * value is a msgpack int or float, or a decimal (ext types 16..31, see
 * cef_value_decode()).
 */
typedef struct {
    const uint8_t       *raw;   /* msgpack bytes of the elements, after the
                                   header */
    size_t               len;   /* bytes at raw */
    uint32_t             n;     /* element (array) or pair (map) count */
    const cef_strtab_t  *strs;  /* interned strings, or NULL */
} cef_value_seq_t;


typedef struct {
    cef_value_type_t  type;
    union {
        int              b;
        int64_t          i;
        double           f;
        cef_span_t       s;
        cef_value_seq_t  seq;   /* CEF_VAL_STR_ARRAY and CEF_VAL_NUM_MAP */
    } u;
} cef_value_t;


/*
 * Iterate over a CEF_VAL_STR_ARRAY.
 *
 * @param[in]     v     the array value
 * @param[in,out] pos   byte offset into v->u.seq.raw; start at 0
 * @param[out]    out   the next element
 * @return 1 if an element was produced, 0 at the end, -1 if the encoding
 *         is malformed (the caller treats the value as absent).
 */
int cef_value_array_next(const cef_value_t *v, size_t *pos, cef_span_t *out);

/*
 * Iterate over a CEF_VAL_NUM_MAP.  Same contract as cef_value_array_next;
 * integer map values are returned as doubles.
 */
int cef_value_map_next(const cef_value_t *v, size_t *pos, cef_span_t *key,
    double *num);

/* 1 if the string array contains s, else 0. */
int cef_value_array_contains(const cef_value_t *v, cef_span_t s);

/* 1 and *num set if the number map has key, else 0. */
int cef_value_map_get(const cef_value_t *v, cef_span_t key, double *num);


/*
 * Decode one value in the profile store's encoding: msgpack nil, bool, int,
 * float, str, an array of strings, a map string -> number, plus
 *   - ext type 1 (fixext 1/2/4, big-endian unsigned): an interned string,
 *     an index into strs;
 *   - ext types 16..31 (fixext 1/2/4/8, big-endian signed m): the decimal
 *     m / 10^(type - 16), decoded as a CEF_VAL_FLOAT.
 * Every read is bounds-checked.  Arrays and maps are checked element by
 * element as they are skipped, so the iterators never fail on a value this
 * function accepted.
 *
 * @param[in]     p     encoded bytes
 * @param[in]     len   bytes at p
 * @param[in,out] pos   offset of the value; on success, just past it
 * @param[in]     strs  interned strings (may be NULL: no interned strings)
 * @param[out]    out   the value; strings point into p or into strs
 * @return 0 on success, -1 if the bytes are malformed, truncated, or of a
 *         type a profile value cannot have.
 */
int cef_value_decode(const uint8_t *p, size_t len, size_t *pos,
    const cef_strtab_t *strs, cef_value_t *out);

/*
 * Decode the value at p[start, end), which cef_value_skip() or
 * cef_value_decode() already accepted and which ends exactly at end: the
 * same *out as cef_value_decode(), but an array or map is not checked
 * element by element a second time (its view is p[header end, end)).
 * Only for bytes known to be such a value: nothing in an array or map is
 * checked, not even against end.  Inline: scalars go straight to
 * cef_value_decode(); cef_value_decode_seq_known() is the array and map
 * part (-1 for any other first byte).
 *
 * @return 0, or -1 if the first bytes are not a value (never, for an
 *         accepted value).
 */
int cef_value_decode_seq_known(const uint8_t *p, size_t start, size_t end,
    const cef_strtab_t *strs, cef_value_t *out);

static inline int
cef_value_decode_known(const uint8_t *p, size_t start, size_t end,
    const cef_strtab_t *strs, cef_value_t *out)
{
    uint8_t  c;

    if (start >= end) {
        return -1;
    }

    c = p[start];

    if ((c >= 0x80 && c <= 0x9f) || (c >= 0xdc && c <= 0xdf)) {
        return cef_value_decode_seq_known(p, start, end, strs, out);
    }

    return cef_value_decode(p, end, &start, strs, out);
}

/*
 * Step over one value as cef_value_decode() would read it, converting
 * nothing: the same bytes are accepted (every element of an array or map
 * checked, an interned index checked against strs->n) and *pos ends at the
 * same offset, but no interned string is looked up in strs and no decimal
 * divided, so stepping over the values a reader does not want touches only
 * the encoded bytes.
 *
 * @return 0 and *pos just past the value, or -1 where cef_value_decode()
 *         returns -1.
 */
int cef_value_skip_any(const uint8_t *p, size_t len, size_t *pos,
    const cef_strtab_t *strs);

static inline int
cef_value_skip(const uint8_t *p, size_t len, size_t *pos,
    const cef_strtab_t *strs)
{
    size_t   i = *pos, n;
    uint8_t  c;
    int8_t   type;

    /* inline what the store writes most: one-byte values, short
       strings, interned strings and decimals in a fixext */

    if (i < len) {
        c = p[i];

        if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
            *pos = i + 1;
            return 0;
        }

        if (c >= 0xa0 && c <= 0xbf) {
            if (len - i - 1 < (size_t) (c & 0x1f)) {
                return -1;
            }
            *pos = i + 1 + (c & 0x1f);
            return 0;
        }

        if (c == 0xd4 || c == 0xd5 || c == 0xd7) {
            n = (size_t) 1 << (c - 0xd4);

            if (len - i >= 2 + n) {
                type = (int8_t) p[i + 1];

                if (type == CEF_VALUE_EXT_INTERNED && c != 0xd7) {
                    if (strs == NULL
                        || (c == 0xd4 ? p[i + 2]
                                      : (uint32_t) p[i + 2] << 8 | p[i + 3])
                           >= strs->n)
                    {
                        return -1;
                    }
                    *pos = i + 2 + n;
                    return 0;
                }

                if (type >= CEF_VALUE_EXT_DEC_MIN
                    && type <= CEF_VALUE_EXT_DEC_MAX)
                {
                    *pos = i + 2 + n;
                    return 0;
                }
            }
        }
    }

    return cef_value_skip_any(p, len, pos, strs);
}

/*
 * Read a msgpack unsigned integer (as used for attribute ids) at *pos.
 *
 * @return 0 and *pos advanced on success, -1 if not a non-negative int.
 */
int cef_value_decode_uint(const uint8_t *p, size_t len, size_t *pos,
    uint64_t *out);


#endif /* CEF_VALUE_H */
