/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 */

#include <stdlib.h>
#include <string.h>

#include "cef_profile.h"


int
cef_profile_parse(const uint8_t *blob, size_t len, const cef_dict_t *dict,
    cef_profile_t *p)
{
    size_t    i, idlen;
    uint32_t  n;
    uint8_t   c;

    if (len < 3 || blob[0] != CEF_PROFILE_FORMAT) {
        return -1;
    }

    p->nhints = blob[1];
    i = 2 + 2 * (size_t) p->nhints;

    if (i >= len) {
        return -1;
    }

    p->hints = blob + 2;
    idlen = blob[i++];

    if (len - i < idlen) {
        return -1;
    }

    p->id.data = (const char *) blob + i;
    p->id.len = idlen;
    i += idlen;

    if (i >= len) {
        return -1;
    }

    c = blob[i];

    if (c >= 0x80 && c <= 0x8f) {
        n = c & 0x0f;
        i += 1;

    } else if (c == 0xde && len - i >= 3) {
        n = ((uint32_t) blob[i + 1] << 8) | blob[i + 2];
        i += 3;

    } else if (c == 0xdf && len - i >= 5) {
        n = ((uint32_t) blob[i + 1] << 24) | ((uint32_t) blob[i + 2] << 16)
            | ((uint32_t) blob[i + 3] << 8) | blob[i + 4];
        i += 5;

    } else {
        return -1;
    }

    p->attrs = blob + i;
    p->attrs_len = len - i;
    p->nattrs = n;
    p->dict = dict;

    return 0;
}


int
cef_profile_next(const cef_profile_t *p, size_t *pos, cef_span_t *name,
    cef_value_t *val)
{
    uint64_t  attr;

    if (*pos >= p->attrs_len) {
        return 0;
    }

    if (cef_value_decode_uint(p->attrs, p->attrs_len, pos, &attr) != 0
        || attr >= p->dict->names.n
        || cef_value_decode(p->attrs, p->attrs_len, pos, &p->dict->strs, val)
           != 0)
    {
        return -1;
    }

    *name = p->dict->names.s[attr];

    return 1;
}


int
cef_profile_get_attr(const cef_profile_t *p, uint32_t attr, cef_value_t *val)
{
    size_t       pos = 0;
    uint64_t     a;
    cef_value_t  v;

    while (pos < p->attrs_len) {
        if (cef_value_decode_uint(p->attrs, p->attrs_len, &pos, &a) != 0
            || cef_value_decode(p->attrs, p->attrs_len, &pos, &p->dict->strs,
                                &v) != 0)
        {
            return -1;
        }

        if (a == attr) {
            *val = v;
            return 1;
        }

        if (a > attr) {
            return 0;
        }
    }

    return 0;
}


int
cef_profile_get(const cef_profile_t *p, cef_span_t name, cef_value_t *val)
{
    int64_t  attr;

    attr = cef_dict_name_id(p->dict, name);
    if (attr < 0) {
        return 0;
    }

    return cef_profile_get_attr(p, (uint32_t) attr, val);
}


int
cef_profile_validate(const cef_profile_t *p)
{
    int          rc;
    size_t       pos = 0, apos;
    uint32_t     n = 0;
    cef_span_t   name, s;
    cef_value_t  v;
    double       d;

    while ((rc = cef_profile_next(p, &pos, &name, &v)) == 1) {
        n++;
        apos = 0;

        if (v.type == CEF_VAL_STR_ARRAY) {
            while ((rc = cef_value_array_next(&v, &apos, &s)) == 1) { }

        } else if (v.type == CEF_VAL_NUM_MAP) {
            while ((rc = cef_value_map_next(&v, &apos, &s, &d)) == 1) { }
        }

        if (rc < 0) {
            return -1;
        }
    }

    if (rc < 0 || n != p->nattrs) {
        return -1;
    }

    return 0;
}


uint32_t
cef_dict_hash(const char *s, size_t len)
{
    size_t    i;
    uint32_t  h = 2166136261u;

    for (i = 0; i < len; i++) {
        h = (h ^ (uint8_t) s[i]) * 16777619u;
    }

    return h;
}


void
cef_dict_slot_put(uint32_t *table, uint32_t mask, uint32_t hash, uint32_t id)
{
    uint32_t  slot;

    for (slot = hash & mask; table[slot] != 0; slot = (slot + 1) & mask) {
        /* void */
    }

    table[slot] = id + 1;
}


int64_t
cef_dict_name_id(const cef_dict_t *dict, cef_span_t name)
{
    if (dict->names_hash == NULL) {
        return -1;
    }

    return cef_dict_probe(dict->names_hash, dict->names_mask, dict->names.s,
                          dict->names.n, cef_dict_hash(name.data, name.len),
                          name);
}


int
cef_dict_index(cef_dict_t *dict)
{
    uint32_t   size, i;
    uint32_t  *t;

    for (size = 16; size < dict->names.n * 2 + 1; size *= 2) { }

    t = calloc(size, sizeof(uint32_t));
    if (t == NULL) {
        return -1;
    }

    for (i = 0; i < dict->names.n; i++) {
        cef_dict_slot_put(t, size - 1,
                          cef_dict_hash(dict->names.s[i].data,
                                        dict->names.s[i].len),
                          i);
    }

    free(dict->names_hash);
    dict->names_hash = t;
    dict->names_mask = size - 1;

    return 0;
}
