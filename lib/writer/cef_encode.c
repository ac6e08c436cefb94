/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Compact encodings (docs/store.md):
 *   - attribute names become small integers (map keys);
 *   - strings of 3..64 bytes in scalars, and of 2..64 bytes in arrays and
 *     map keys, are interned while the table has room and the reference is
 *     shorter than the string;
 *   - a float that is a short decimal (m / 10^e, |m| < 2^31, e < 16, the
 *     division giving back the very same double) is stored as that decimal
 *     in 3 to 6 bytes instead of 9.
 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cef_profile.h"
#include "cef_encode.h"


static int
cef_encode_intern_init(cef_encode_intern_t *t, uint32_t max)
{
    memset(t, 0, sizeof(cef_encode_intern_t));
    t->max = max;
    t->mask = 1023;
    t->table = calloc(t->mask + 1, sizeof(uint32_t));

    return t->table ? 0 : -1;
}


static void
cef_encode_intern_free(cef_encode_intern_t *t)
{
    uint32_t  i;

    for (i = 0; i < t->n; i++) {
        free((void *) t->spans[i].data);
    }

    free(t->spans);
    free(t->table);
    memset(t, 0, sizeof(cef_encode_intern_t));
}


int64_t
cef_encode_intern_find(const cef_encode_intern_t *t, const char *s, size_t len)
{
    cef_span_t  span = { s, len };

    return cef_dict_probe(t->table, t->mask, t->spans, t->n,
                          cef_dict_hash(s, len), span);
}


static int
cef_encode_intern_grow(cef_encode_intern_t *t)
{
    uint32_t   size, i;
    uint32_t  *table;

    size = (t->mask + 1) * 2;
    table = calloc(size, sizeof(uint32_t));
    if (table == NULL) {
        return -1;
    }

    for (i = 0; i < t->n; i++) {
        cef_dict_slot_put(table, size - 1,
                          cef_dict_hash(t->spans[i].data, t->spans[i].len), i);
    }

    free(t->table);
    t->table = table;
    t->mask = size - 1;

    return 0;
}


int64_t
cef_encode_intern_add(cef_encode_intern_t *t, const char *s, size_t len)
{
    int64_t      id;
    uint32_t     ncap;
    char        *copy;
    cef_span_t  *spans;

    id = cef_encode_intern_find(t, s, len);
    if (id >= 0) {
        return id;
    }

    if (t->n >= t->max) {
        return -1;
    }

    if ((t->n + 1) * 2 > t->mask + 1 && cef_encode_intern_grow(t) != 0) {
        return -1;
    }

    if (t->n == t->cap) {
        ncap = t->cap ? t->cap * 2 : 64;
        spans = realloc(t->spans, ncap * sizeof(cef_span_t));
        if (spans == NULL) {
            return -1;
        }
        t->spans = spans;
        t->cap = ncap;
    }

    copy = malloc(len + 1);
    if (copy == NULL) {
        return -1;
    }

    if (len) {
        memcpy(copy, s, len);
    }
    copy[len] = '\0';

    t->spans[t->n].data = copy;
    t->spans[t->n].len = len;

    cef_dict_slot_put(t->table, t->mask, cef_dict_hash(s, len), t->n);

    t->n++;
    t->tab.s = t->spans;
    t->tab.n = t->n;

    return t->n - 1;
}


int
cef_encode_init(cef_encode_t *e)
{
    memset(e, 0, sizeof(cef_encode_t));
    memset(e->name_cache, 0xff, sizeof(e->name_cache));

    msgpack_sbuffer_init(&e->vbuf);
    msgpack_sbuffer_init(&e->blob);

    if (cef_encode_intern_init(&e->names, CEF_ENCODE_NAMES_MAX) != 0
        || cef_encode_intern_init(&e->strs, CEF_ENCODE_STRS_MAX) != 0)
    {
        cef_encode_free(e);
        return -1;
    }

    return 0;
}


void
cef_encode_free(cef_encode_t *e)
{
    cef_encode_intern_free(&e->names);
    cef_encode_intern_free(&e->strs);
    msgpack_sbuffer_destroy(&e->vbuf);
    msgpack_sbuffer_destroy(&e->blob);
    free(e->pairs);
    memset(e, 0, sizeof(cef_encode_t));
}


static int
cef_encode_is_number(const msgpack_object *v)
{
    return v->type == MSGPACK_OBJECT_POSITIVE_INTEGER
           || v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER
           || v->type == MSGPACK_OBJECT_FLOAT32
           || v->type == MSGPACK_OBJECT_FLOAT64;
}


int
cef_encode_check_value(const msgpack_object *v, const char **why)
{
    uint32_t  i;

    switch (v->type) {

    case MSGPACK_OBJECT_NIL:
    case MSGPACK_OBJECT_BOOLEAN:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
    case MSGPACK_OBJECT_STR:
        return 0;

    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (v->via.u64 > INT64_MAX) {
            *why = "integer out of the int64 range";
            return -1;
        }
        return 0;

    case MSGPACK_OBJECT_ARRAY:
        for (i = 0; i < v->via.array.size; i++) {
            if (v->via.array.ptr[i].type != MSGPACK_OBJECT_STR) {
                *why = "an array value must hold only strings";
                return -1;
            }
        }
        return 0;

    case MSGPACK_OBJECT_MAP:
        for (i = 0; i < v->via.map.size; i++) {
            if (v->via.map.ptr[i].key.type != MSGPACK_OBJECT_STR) {
                *why = "a map value must have string keys";
                return -1;
            }
            if (!cef_encode_is_number(&v->via.map.ptr[i].val)
                || (v->via.map.ptr[i].val.type
                    == MSGPACK_OBJECT_POSITIVE_INTEGER
                    && v->via.map.ptr[i].val.via.u64 > INT64_MAX))
            {
                *why = "a map value must map strings to numbers";
                return -1;
            }
        }
        return 0;

    default:
        *why = "unsupported value type (binary or extension)";
        return -1;
    }
}


static void
cef_encode_be(uint8_t *p, uint64_t v, size_t n)
{
    while (n--) {
        p[n] = (uint8_t) v;
        v >>= 8;
    }
}


static int
cef_encode_double(msgpack_packer *pk, double x, int was_float32)
{
    int      e;
    double   y, r;
    int64_t  m;
    size_t   w;
    uint8_t  b[4];

    if (isfinite(x) && !(x == 0 && signbit(x))) {

        for (e = 0; e < 16; e++) {
            y = x * cef_value_pow10[e];
            if (y > 2147483647.0 || y < -2147483648.0) {
                break;
            }

            r = (double) (int64_t) (y + (y >= 0 ? 0.5 : -0.5));

            if (r / cef_value_pow10[e] == x) {
                m = (int64_t) r;
                w = (m >= -128 && m <= 127) ? 1
                    : (m >= -32768 && m <= 32767) ? 2 : 4;
                cef_encode_be(b, (uint64_t) m, w);
                return msgpack_pack_ext_with_body(pk, b, w,
                                                  CEF_VALUE_EXT_DEC_MIN + e);
            }
        }
    }

    if (was_float32) {
        return msgpack_pack_float(pk, (float) x);
    }

    return msgpack_pack_double(pk, x);
}


static int
cef_encode_number(msgpack_packer *pk, const msgpack_object *v)
{
    switch (v->type) {

    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return msgpack_pack_uint64(pk, v->via.u64);

    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return msgpack_pack_int64(pk, v->via.i64);

    case MSGPACK_OBJECT_FLOAT32:
        return cef_encode_double(pk, v->via.f64, 1);

    default:
        return cef_encode_double(pk, v->via.f64, 0);
    }
}


static size_t
cef_encode_str_size(size_t len)
{
    return len + (len < 32 ? 1 : len < 256 ? 2 : len < 65536 ? 3 : 5);
}


static size_t
cef_encode_uint_size(uint64_t v)
{
    return v < 128 ? 1 : v < 256 ? 2 : v < 65536 ? 3 : 5;
}


/* A string inside an array or a map key: interned as a plain uint. */

static int
cef_encode_elem(cef_encode_t *e, msgpack_packer *pk, const char *s,
    size_t len)
{
    int64_t  id;

    if (len >= 2 && len <= CEF_ENCODE_STR_MAXLEN) {
        id = cef_encode_intern_find(&e->strs, s, len);

        if (id < 0 && e->strs.n < e->strs.max
            && cef_encode_uint_size(e->strs.n) < cef_encode_str_size(len))
        {
            id = cef_encode_intern_add(&e->strs, s, len);
        }

        if (id >= 0 && cef_encode_uint_size(id) < cef_encode_str_size(len)) {
            return msgpack_pack_uint64(pk, (uint64_t) id);
        }
    }

    msgpack_pack_str(pk, len);
    return msgpack_pack_str_body(pk, s, len);
}


static size_t
cef_encode_ext_size(uint64_t id)
{
    return id < 256 ? 3 : id < 65536 ? 4 : 6;
}


/* A scalar string: interned as ext type 1. */

static int
cef_encode_scalar_str(cef_encode_t *e, msgpack_packer *pk, const char *s,
    size_t len)
{
    int64_t  id;
    size_t   w;
    uint8_t  b[4];

    if (len >= 3 && len <= CEF_ENCODE_STR_MAXLEN) {
        id = cef_encode_intern_find(&e->strs, s, len);

        if (id < 0 && e->strs.n < e->strs.max
            && cef_encode_ext_size(e->strs.n) < cef_encode_str_size(len))
        {
            id = cef_encode_intern_add(&e->strs, s, len);
        }

        if (id >= 0 && cef_encode_ext_size(id) < cef_encode_str_size(len)) {
            w = id < 256 ? 1 : id < 65536 ? 2 : 4;
            cef_encode_be(b, (uint64_t) id, w);
            return msgpack_pack_ext_with_body(pk, b, w, CEF_VALUE_EXT_INTERNED);
        }
    }

    msgpack_pack_str(pk, len);
    return msgpack_pack_str_body(pk, s, len);
}


void
cef_encode_begin(cef_encode_t *e)
{
    msgpack_sbuffer_clear(&e->vbuf);
    e->npairs = 0;
}


static int
cef_encode_pair(cef_encode_t *e, uint32_t attr, size_t off)
{
    uint32_t            i, ncap;
    cef_encode_pair_t  *p;

    for (i = 0; i < e->npairs; i++) {
        if (e->pairs[i].attr == attr) {
            e->pairs[i].off = off;
            e->pairs[i].len = e->vbuf.size - off;
            return 0;
        }
    }

    if (e->npairs == e->cap) {
        ncap = e->cap ? e->cap * 2 : 32;
        p = realloc(e->pairs, ncap * sizeof(cef_encode_pair_t));
        if (p == NULL) {
            return -1;
        }
        e->pairs = p;
        e->cap = ncap;
    }

    e->pairs[e->npairs].attr = attr;
    e->pairs[e->npairs].off = off;
    e->pairs[e->npairs].len = e->vbuf.size - off;
    e->npairs++;

    return 0;
}


int
cef_encode_attr(cef_encode_t *e, const char *name, size_t nlen,
    const msgpack_object *v)
{
    size_t                off;
    int64_t               attr;
    uint32_t              i;
    msgpack_packer        pk;
    const msgpack_object  *k;

    /*
     * Records usually list their attributes in the same order: try the
     * name seen at this position last time before hashing.
     */

    attr = -1;

    if (e->npairs < CEF_ENCODE_NAME_CACHE) {
        attr = e->name_cache[e->npairs];
        if (attr < 0 || (uint64_t) attr >= e->names.n
            || e->names.spans[attr].len != nlen
            || memcmp(e->names.spans[attr].data, name, nlen) != 0)
        {
            attr = -1;
        }
    }

    if (attr < 0) {
        attr = cef_encode_intern_add(&e->names, name, nlen);
        if (attr < 0) {
            return -1;
        }

        if (e->npairs < CEF_ENCODE_NAME_CACHE) {
            e->name_cache[e->npairs] = attr;
        }
    }

    off = e->vbuf.size;
    msgpack_packer_init(&pk, &e->vbuf, msgpack_sbuffer_write);

    switch (v->type) {

    case MSGPACK_OBJECT_NIL:
        msgpack_pack_nil(&pk);
        break;

    case MSGPACK_OBJECT_BOOLEAN:
        if (v->via.boolean) {
            msgpack_pack_true(&pk);
        } else {
            msgpack_pack_false(&pk);
        }
        break;

    case MSGPACK_OBJECT_STR:
        cef_encode_scalar_str(e, &pk, v->via.str.ptr, v->via.str.size);
        break;

    case MSGPACK_OBJECT_ARRAY:
        msgpack_pack_array(&pk, v->via.array.size);
        for (i = 0; i < v->via.array.size; i++) {
            k = &v->via.array.ptr[i];
            cef_encode_elem(e, &pk, k->via.str.ptr, k->via.str.size);
        }
        break;

    case MSGPACK_OBJECT_MAP:
        msgpack_pack_map(&pk, v->via.map.size);
        for (i = 0; i < v->via.map.size; i++) {
            k = &v->via.map.ptr[i].key;
            cef_encode_elem(e, &pk, k->via.str.ptr, k->via.str.size);
            cef_encode_number(&pk, &v->via.map.ptr[i].val);
        }
        break;

    default:
        cef_encode_number(&pk, v);
        break;
    }

    return cef_encode_pair(e, (uint32_t) attr, off);
}


int
cef_encode_attr_raw(cef_encode_t *e, uint32_t attr, const uint8_t *p,
    size_t len)
{
    size_t  off;

    off = e->vbuf.size;

    if (msgpack_sbuffer_write(&e->vbuf, (const char *) p, len) != 0) {
        return -1;
    }

    return cef_encode_pair(e, attr, off);
}


void
cef_encode_unset(cef_encode_t *e, uint32_t attr)
{
    uint32_t  i;

    for (i = 0; i < e->npairs; i++) {
        if (e->pairs[i].attr == attr) {
            e->pairs[i] = e->pairs[--e->npairs];
            return;
        }
    }
}




int
cef_encode_profile(cef_encode_t *e, const uint16_t *hints, uint32_t nhints,
    const char *id, size_t idlen)
{
    uint8_t          head[2 + 2 * CEF_PROFILE_HINTS_MAX + 1];
    uint32_t         i;
    size_t           n;
    msgpack_packer   pk;

    if (nhints > CEF_PROFILE_HINTS_MAX || idlen > CEF_PROFILE_ID_MAX) {
        return -1;
    }

    msgpack_sbuffer_clear(&e->blob);

    head[0] = CEF_PROFILE_FORMAT;
    head[1] = (uint8_t) nhints;
    n = 2;

    for (i = 0; i < nhints; i++) {
        head[n++] = (uint8_t) (hints[i] >> 8);
        head[n++] = (uint8_t) hints[i];
    }

    head[n++] = (uint8_t) idlen;

    if (msgpack_sbuffer_write(&e->blob, (const char *) head, n) != 0
        || (idlen && msgpack_sbuffer_write(&e->blob, id, idlen) != 0))
    {
        return -1;
    }

    /* a dozen pairs, usually in order already: insertion sort */
    for (i = 1; i < e->npairs; i++) {
        cef_encode_pair_t  t = e->pairs[i];
        uint32_t           j;

        for (j = i; j > 0 && e->pairs[j - 1].attr > t.attr; j--) {
            e->pairs[j] = e->pairs[j - 1];
        }
        e->pairs[j] = t;
    }

    msgpack_packer_init(&pk, &e->blob, msgpack_sbuffer_write);

    if (msgpack_pack_map(&pk, e->npairs) != 0) {
        return -1;
    }

    for (i = 0; i < e->npairs; i++) {
        if (msgpack_pack_uint32(&pk, e->pairs[i].attr) != 0
            || msgpack_sbuffer_write(&e->blob,
                                     e->vbuf.data + e->pairs[i].off,
                                     e->pairs[i].len) != 0)
        {
            return -1;
        }
    }

    return 0;
}
