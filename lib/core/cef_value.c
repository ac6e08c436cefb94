/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * A bounds-checked reader for the subset of msgpack the profile store
 * writes (see cef_value.h and docs/store.md).  It reads the store's own
 * bytes in place; input streams are parsed with msgpack-c elsewhere.
 */

#include <string.h>

#include "cef_value.h"


const double  cef_value_pow10[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
    1e13, 1e14, 1e15
};


/* n is 1, 2, 4 or 8 everywhere: the common ones without a loop */
static inline uint64_t
cef_be(const uint8_t *p, size_t n)
{
    uint64_t  v = 0;
    size_t    i;

    switch (n) {
    case 1:
        return p[0];
    case 2:
        return (uint64_t) p[0] << 8 | p[1];
    case 4:
        return (uint64_t) p[0] << 24 | (uint64_t) p[1] << 16
               | (uint64_t) p[2] << 8 | p[3];
    default:
        for (i = 0; i < n; i++) {
            v = (v << 8) | p[i];
        }
        return v;
    }
}


static inline int64_t
cef_be_signed(const uint8_t *p, size_t n)
{
    uint64_t  v;

    v = cef_be(p, n);

    if (n < 8 && (v & ((uint64_t) 1 << (n * 8 - 1)))) {
        v |= ~(uint64_t) 0 << (n * 8);
    }

    return (int64_t) v;
}


static int cef_value_str_any(const uint8_t *p, size_t len, size_t *pos,
    const cef_strtab_t *strs, cef_span_t *out);


/*
 * A msgpack string at *pos, or an interned index: the two forms the store
 * writes most (an index below 128, a string below 32 bytes) inline, the
 * others through cef_value_str_any().
 */
static inline __attribute__((always_inline)) int
cef_value_str(const uint8_t *p, size_t len, size_t *pos,
    const cef_strtab_t *strs, cef_span_t *out)
{
    size_t   i = *pos;
    uint8_t  c;

    if (i < len) {
        c = p[i];

        if (c <= 0x7f) {
            if (strs == NULL || c >= strs->n) {
                return -1;
            }
            *out = strs->s[c];
            *pos = i + 1;
            return 0;
        }

        if (c >= 0xa0 && c <= 0xbf) {
            if (len - i - 1 < (size_t) (c & 0x1f)) {
                return -1;
            }
            out->data = (const char *) p + i + 1;
            out->len = c & 0x1f;
            *pos = i + 1 + (c & 0x1f);
            return 0;
        }
    }

    return cef_value_str_any(p, len, pos, strs, out);
}


/* any string form; with out NULL only checked (an interned string unread) */

static int
cef_value_str_any(const uint8_t *p, size_t len, size_t *pos,
    const cef_strtab_t *strs, cef_span_t *out)
{
    size_t    i = *pos, hl, sl;
    uint8_t   c;
    uint64_t  idx;

    if (i >= len) {
        return -1;
    }

    c = p[i];

    if (c >= 0xa0 && c <= 0xbf) {
        hl = 1;
        sl = c & 0x1f;

    } else if (c == 0xd9 || c == 0xda || c == 0xdb) {
        hl = 1 + ((size_t) 1 << (c - 0xd9));
        if (len - i < hl) {
            return -1;
        }
        sl = cef_be(p + i + 1, hl - 1);

    } else {
        if (cef_value_decode_uint(p, len, &i, &idx) != 0
            || strs == NULL || idx >= strs->n)
        {
            return -1;
        }

        if (out) {
            *out = strs->s[idx];
        }

        *pos = i;
        return 0;
    }

    if (len - i < hl || len - i - hl < sl) {
        return -1;
    }

    if (out) {
        out->data = (const char *) p + i + hl;
        out->len = sl;
    }

    *pos = i + hl + sl;

    return 0;
}


int
cef_value_decode_uint(const uint8_t *p, size_t len, size_t *pos,
    uint64_t *out)
{
    size_t   i = *pos, n;
    uint8_t  c;

    if (i >= len) {
        return -1;
    }

    c = p[i];

    if (c <= 0x7f) {
        *out = c;
        *pos = i + 1;
        return 0;
    }

    if (c < 0xcc || c > 0xcf) {
        return -1;
    }

    n = (size_t) 1 << (c - 0xcc);

    if (len - i - 1 < n) {
        return -1;
    }

    *out = cef_be(p + i + 1, n);
    *pos = i + 1 + n;

    return 0;
}


static int cef_value_num_any(const uint8_t *p, size_t len, size_t *pos,
    double *num, cef_value_t *out);


/*
 * A number: int, float or decimal ext; a fixint and a decimal in a
 * fixext inline, the others through cef_value_num_any().
 */
static inline __attribute__((always_inline)) int
cef_value_num(const uint8_t *p, size_t len, size_t *pos, double *num,
    cef_value_t *out)
{
    size_t   i = *pos, n;
    uint8_t  c;
    int8_t   type;

    if (i < len) {
        c = p[i];

        if (c <= 0x7f || c >= 0xe0) {
            out->type = CEF_VAL_INT;
            out->u.i = (int8_t) c;
            *pos = i + 1;

            if (num) {
                *num = (double) out->u.i;
            }
            return 0;
        }

        if (c >= 0xd4 && c <= 0xd7) {
            n = (size_t) 1 << (c - 0xd4);
            if (len - i < 2 + n) {
                return -1;
            }
            type = (int8_t) p[i + 1];
            if (type < CEF_VALUE_EXT_DEC_MIN
                || type > CEF_VALUE_EXT_DEC_MAX)
            {
                return -1;
            }
            out->type = CEF_VAL_FLOAT;
            out->u.f = (double) cef_be_signed(p + i + 2, n)
                       / cef_value_pow10[type - CEF_VALUE_EXT_DEC_MIN];
            *pos = i + 2 + n;

            if (num) {
                *num = out->u.f;
            }
            return 0;
        }
    }

    return cef_value_num_any(p, len, pos, num, out);
}


static int
cef_value_num_any(const uint8_t *p, size_t len, size_t *pos, double *num,
    cef_value_t *out)
{
    size_t     i = *pos, n;
    uint8_t    c;
    int8_t     type;
    int64_t    m;
    uint64_t   u;
    union { uint32_t u; float f; }     f32;
    union { uint64_t u; double f; }    f64;

    if (i >= len) {
        return -1;
    }

    c = p[i];

    if (c <= 0x7f || c >= 0xe0) {
        out->type = CEF_VAL_INT;
        out->u.i = (int8_t) c;
        *pos = i + 1;
        goto done;
    }

    if (c >= 0xcc && c <= 0xcf) {
        n = (size_t) 1 << (c - 0xcc);
        if (len - i - 1 < n) {
            return -1;
        }
        u = cef_be(p + i + 1, n);
        if (u > INT64_MAX) {
            return -1;
        }
        out->type = CEF_VAL_INT;
        out->u.i = (int64_t) u;
        *pos = i + 1 + n;
        goto done;
    }

    if (c >= 0xd0 && c <= 0xd3) {
        n = (size_t) 1 << (c - 0xd0);
        if (len - i - 1 < n) {
            return -1;
        }
        out->type = CEF_VAL_INT;
        out->u.i = cef_be_signed(p + i + 1, n);
        *pos = i + 1 + n;
        goto done;
    }

    if (c == 0xca) {
        if (len - i < 5) {
            return -1;
        }
        f32.u = (uint32_t) cef_be(p + i + 1, 4);
        out->type = CEF_VAL_FLOAT;
        out->u.f = f32.f;
        *pos = i + 5;
        goto done;
    }

    if (c == 0xcb) {
        if (len - i < 9) {
            return -1;
        }
        f64.u = cef_be(p + i + 1, 8);
        out->type = CEF_VAL_FLOAT;
        out->u.f = f64.f;
        *pos = i + 9;
        goto done;
    }

    if (c >= 0xd4 && c <= 0xd7) {   /* fixext 1, 2, 4, 8 */
        n = (size_t) 1 << (c - 0xd4);
        if (len - i < 2 + n) {
            return -1;
        }
        type = (int8_t) p[i + 1];
        if (type < CEF_VALUE_EXT_DEC_MIN || type > CEF_VALUE_EXT_DEC_MAX) {
            return -1;
        }
        m = cef_be_signed(p + i + 2, n);
        out->type = CEF_VAL_FLOAT;
        out->u.f = (double) m / cef_value_pow10[type - CEF_VALUE_EXT_DEC_MIN];
        *pos = i + 2 + n;
        goto done;
    }

    return -1;

done:

    if (num) {
        *num = out->type == CEF_VAL_INT ? (double) out->u.i : out->u.f;
    }

    return 0;
}


/*
 * cef_value_str() and cef_value_num() as a check only: the same bytes are
 * accepted and *pos moves the same way, but nothing is converted (no
 * interned string is read from strs, no decimal divided).  A value's
 * elements are checked with these, and cef_value_skip() is made of them.
 */
static int cef_value_str_check(const uint8_t *p, size_t len, size_t *pos,
    const cef_strtab_t *strs);
static int cef_value_num_check(const uint8_t *p, size_t len, size_t *pos);


/*
 * An array element or a map key, checked: the store writes interned
 * strings (a positive fixint index) and short strings inline; the rest go
 * through cef_value_str_check().
 */
static inline __attribute__((always_inline)) int
cef_value_elem_check(const uint8_t *p, size_t len, size_t *pos,
    const cef_strtab_t *strs)
{
    size_t   i = *pos;
    uint8_t  c;

    if (i < len) {
        c = p[i];

        if (c <= 0x7f) {
            if (strs == NULL || c >= strs->n) {
                return -1;
            }
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

        if (c == 0xcc || c == 0xcd) {
            if (len - i - 1 < (size_t) (c - 0xcb) || strs == NULL
                || cef_be(p + i + 1, c - 0xcb) >= strs->n)
            {
                return -1;
            }
            *pos = i + 1 + (c - 0xcb);
            return 0;
        }
    }

    return cef_value_str_check(p, len, pos, strs);
}


/* a map value, checked: a fixint or a decimal as fixext 1 to 8 inline */
static inline __attribute__((always_inline)) int
cef_value_num_fast_check(const uint8_t *p, size_t len, size_t *pos)
{
    size_t   i = *pos, n;
    uint8_t  c;
    int8_t   type;

    if (i < len) {
        c = p[i];

        if (c <= 0x7f || c >= 0xe0) {
            *pos = i + 1;
            return 0;
        }

        if (c >= 0xd4 && c <= 0xd7) {
            n = (size_t) 1 << (c - 0xd4);
            if (len - i < 2 + n) {
                return -1;
            }
            type = (int8_t) p[i + 1];
            if (type < CEF_VALUE_EXT_DEC_MIN
                || type > CEF_VALUE_EXT_DEC_MAX)
            {
                return -1;
            }
            *pos = i + 2 + n;
            return 0;
        }
    }

    return cef_value_num_check(p, len, pos);
}


static int
cef_value_str_check(const uint8_t *p, size_t len, size_t *pos,
    const cef_strtab_t *strs)
{
    return cef_value_str_any(p, len, pos, strs, NULL);
}


static int
cef_value_num_check(const uint8_t *p, size_t len, size_t *pos)
{
    size_t   i = *pos, n;
    uint8_t  c;
    int8_t   type;

    if (i >= len) {
        return -1;
    }

    c = p[i];

    if (c <= 0x7f || c >= 0xe0) {
        *pos = i + 1;
        return 0;
    }

    if (c >= 0xcc && c <= 0xcf) {
        n = (size_t) 1 << (c - 0xcc);
        if (len - i - 1 < n || cef_be(p + i + 1, n) > INT64_MAX) {
            return -1;
        }
        *pos = i + 1 + n;
        return 0;
    }

    if (c >= 0xd0 && c <= 0xd3) {
        n = (size_t) 1 << (c - 0xd0);
        if (len - i - 1 < n) {
            return -1;
        }
        *pos = i + 1 + n;
        return 0;
    }

    if (c == 0xca || c == 0xcb) {
        n = c == 0xca ? 5 : 9;
        if (len - i < n) {
            return -1;
        }
        *pos = i + n;
        return 0;
    }

    if (c >= 0xd4 && c <= 0xd7) {
        n = (size_t) 1 << (c - 0xd4);
        if (len - i < 2 + n) {
            return -1;
        }
        type = (int8_t) p[i + 1];
        if (type < CEF_VALUE_EXT_DEC_MIN || type > CEF_VALUE_EXT_DEC_MAX) {
            return -1;
        }
        *pos = i + 2 + n;
        return 0;
    }

    return -1;
}


static int
cef_value_seq_header(const uint8_t *p, size_t len, size_t *pos, int map,
    uint32_t *n)
{
    size_t   i = *pos;
    uint8_t  c;

    if (i >= len) {
        return -1;
    }

    c = p[i];

    if (!map && c >= 0x90 && c <= 0x9f) {
        *n = c & 0x0f;
        *pos = i + 1;
        return 0;
    }

    if (map && c >= 0x80 && c <= 0x8f) {
        *n = c & 0x0f;
        *pos = i + 1;
        return 0;
    }

    if (c == (map ? 0xde : 0xdc)) {
        if (len - i < 3) {
            return -1;
        }
        *n = (uint32_t) cef_be(p + i + 1, 2);
        *pos = i + 3;
        return 0;
    }

    if (c == (map ? 0xdf : 0xdd)) {
        if (len - i < 5) {
            return -1;
        }
        *n = (uint32_t) cef_be(p + i + 1, 4);
        *pos = i + 5;
        return 0;
    }

    return -1;
}


/* The view of a sequence checked at p[start, end): cnt elements or pairs. */
static void
cef_value_seq_view(cef_value_t *out, cef_value_type_t type, const uint8_t *p,
    size_t start, size_t end, uint32_t cnt, const cef_strtab_t *strs)
{
    out->type = type;
    out->u.seq.raw = p + start;
    out->u.seq.len = end - start;
    out->u.seq.n = cnt;
    out->u.seq.strs = strs;
}


int
cef_value_decode(const uint8_t *p, size_t len, size_t *pos,
    const cef_strtab_t *strs, cef_value_t *out)
{
    size_t       i = *pos, start, n;
    uint8_t      c;
    uint32_t     k, cnt;
    uint64_t     idx;
    cef_span_t   s;

    if (i >= len) {
        return -1;
    }

    c = p[i];

    /* what the store writes most first: fixints, then fixexts (interned
       strings, decimals) */

    if (c <= 0x7f || c >= 0xe0) {
        return cef_value_num(p, len, pos, NULL, out);
    }

    switch (c) {

    case 0xc0:
        out->type = CEF_VAL_NIL;
        *pos = i + 1;
        return 0;

    case 0xc2:
    case 0xc3:
        out->type = CEF_VAL_BOOL;
        out->u.b = (c == 0xc3);
        *pos = i + 1;
        return 0;

    default:
        break;
    }

    if ((c >= 0xa0 && c <= 0xbf) || (c >= 0xd9 && c <= 0xdb)) {
        if (cef_value_str(p, len, &i, NULL, &s) != 0) {
            return -1;
        }
        out->type = CEF_VAL_STR;
        out->u.s = s;
        *pos = i;
        return 0;
    }

    if (c >= 0xd4 && c <= 0xd6 && i + 1 < len
        && (int8_t) p[i + 1] == CEF_VALUE_EXT_INTERNED)
    {
        n = (size_t) 1 << (c - 0xd4);
        if (len - i < 2 + n) {
            return -1;
        }
        idx = cef_be(p + i + 2, n);
        if (strs == NULL || idx >= strs->n) {
            return -1;
        }
        out->type = CEF_VAL_STR;
        out->u.s = strs->s[idx];
        *pos = i + 2 + n;
        return 0;
    }

    if ((c >= 0x90 && c <= 0x9f) || c == 0xdc || c == 0xdd) {
        if (cef_value_seq_header(p, len, &i, 0, &cnt) != 0) {
            return -1;
        }
        start = i;
        for (k = 0; k < cnt; k++) {
            if (cef_value_elem_check(p, len, &i, strs) != 0) {
                return -1;
            }
        }
        cef_value_seq_view(out, CEF_VAL_STR_ARRAY, p, start, i, cnt, strs);
        *pos = i;
        return 0;
    }

    if ((c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf) {
        if (cef_value_seq_header(p, len, &i, 1, &cnt) != 0) {
            return -1;
        }
        start = i;
        for (k = 0; k < cnt; k++) {
            if (cef_value_elem_check(p, len, &i, strs) != 0
                || cef_value_num_fast_check(p, len, &i) != 0)
            {
                return -1;
            }
        }
        cef_value_seq_view(out, CEF_VAL_NUM_MAP, p, start, i, cnt, strs);
        *pos = i;
        return 0;
    }

    return cef_value_num(p, len, pos, NULL, out);
}


int
cef_value_decode_seq_known(const uint8_t *p, size_t start, size_t end,
    const cef_strtab_t *strs, cef_value_t *out)
{
    size_t    i = start;
    uint8_t   c;
    uint32_t  cnt;

    c = p[i];

    if ((c >= 0x90 && c <= 0x9f) || c == 0xdc || c == 0xdd) {
        if (cef_value_seq_header(p, end, &i, 0, &cnt) != 0) {
            return -1;
        }
        cef_value_seq_view(out, CEF_VAL_STR_ARRAY, p, i, end, cnt, strs);
        return 0;
    }

    if ((c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf) {
        if (cef_value_seq_header(p, end, &i, 1, &cnt) != 0) {
            return -1;
        }
        cef_value_seq_view(out, CEF_VAL_NUM_MAP, p, i, end, cnt, strs);
        return 0;
    }

    return -1;
}


int
cef_value_skip_any(const uint8_t *p, size_t len, size_t *pos,
    const cef_strtab_t *strs)
{
    size_t    i = *pos, n;
    uint8_t   c;
    uint32_t  k, cnt;

    if (i >= len) {
        return -1;
    }

    c = p[i];

    /* one byte: nil, booleans, fixints */

    if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
        *pos = i + 1;
        return 0;
    }

    if (c >= 0xa0 && c <= 0xbf) {
        return cef_value_elem_check(p, len, pos, NULL);
    }

    /* fixext: an interned string (1 to 4 bytes), else a decimal */

    if (c >= 0xd4 && c <= 0xd6 && i + 1 < len
        && (int8_t) p[i + 1] == CEF_VALUE_EXT_INTERNED)
    {
        n = (size_t) 1 << (c - 0xd4);
        if (len - i < 2 + n || strs == NULL
            || cef_be(p + i + 2, n) >= strs->n)
        {
            return -1;
        }
        *pos = i + 2 + n;
        return 0;
    }

    if ((c >= 0x90 && c <= 0x9f) || c == 0xdc || c == 0xdd) {
        if (cef_value_seq_header(p, len, &i, 0, &cnt) != 0) {
            return -1;
        }
        for (k = 0; k < cnt; k++) {
            if (cef_value_elem_check(p, len, &i, strs) != 0) {
                return -1;
            }
        }
        *pos = i;
        return 0;
    }

    if ((c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf) {
        if (cef_value_seq_header(p, len, &i, 1, &cnt) != 0) {
            return -1;
        }
        for (k = 0; k < cnt; k++) {
            if (cef_value_elem_check(p, len, &i, strs) != 0
                || cef_value_num_fast_check(p, len, &i) != 0)
            {
                return -1;
            }
        }
        *pos = i;
        return 0;
    }

    if (c >= 0xd9 && c <= 0xdb) {
        return cef_value_str_check(p, len, pos, NULL);
    }

    return cef_value_num_fast_check(p, len, pos);
}


int
cef_value_array_next(const cef_value_t *v, size_t *pos, cef_span_t *out)
{
    if (v->type != CEF_VAL_STR_ARRAY) {
        return -1;
    }

    if (*pos >= v->u.seq.len) {
        return 0;
    }

    if (cef_value_str(v->u.seq.raw, v->u.seq.len, pos, v->u.seq.strs, out)
        != 0)
    {
        return -1;
    }

    return 1;
}


int
cef_value_map_next(const cef_value_t *v, size_t *pos, cef_span_t *key,
    double *num)
{
    cef_value_t  tmp;

    if (v->type != CEF_VAL_NUM_MAP) {
        return -1;
    }

    if (*pos >= v->u.seq.len) {
        return 0;
    }

    if (cef_value_str(v->u.seq.raw, v->u.seq.len, pos, v->u.seq.strs, key)
        != 0
        || cef_value_num(v->u.seq.raw, v->u.seq.len, pos, num, &tmp) != 0)
    {
        return -1;
    }

    return 1;
}


int
cef_value_array_contains(const cef_value_t *v, cef_span_t s)
{
    size_t      pos = 0;
    cef_span_t  e;

    while (cef_value_array_next(v, &pos, &e) == 1) {
        if (e.len == s.len && (s.len == 0 || memcmp(e.data, s.data, s.len) == 0))
        {
            return 1;
        }
    }

    return 0;
}


int
cef_value_map_get(const cef_value_t *v, cef_span_t key, double *num)
{
    size_t      pos = 0;
    double      d;
    cef_span_t  k;

    while (cef_value_map_next(v, &pos, &k, &d) == 1) {
        if (k.len == key.len
            && (key.len == 0 || memcmp(k.data, key.data, key.len) == 0))
        {
            *num = d;
            return 1;
        }
    }

    return 0;
}
