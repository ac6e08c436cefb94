/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Rule sets published through the store: the stored layout and its reader
 * (cef_store_rules.h, docs/store.md).
 */

#include <string.h>

#include "cef_store_rules.h"


#define CEF_RULES_KEY_MAX  (2 + CEF_STORE_RULES_NAME_MAX + 1 + 32)


static uint16_t
cef_store_rules_le16(const uint8_t *p)
{
    return (uint16_t) (p[0] | p[1] << 8);
}


int
cef_store_rules_name_ok(const char *name, size_t len)
{
    size_t  i;
    char    c;

    if (len == 0 || len > CEF_STORE_RULES_NAME_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
        {
            return 0;
        }
    }

    return 1;
}


size_t
cef_store_rules_key(char *key, const char *name, size_t len)
{
    if (!cef_store_rules_name_ok(name, len)) {
        return 0;
    }

    memcpy(key, CEF_STORE_META_RULES, 2);
    memcpy(key + 2, name, len);

    return 2 + len;
}


size_t
cef_store_rules_source_key(char *key, const char *name, size_t len,
    const uint8_t *sha256)
{
    if (!cef_store_rules_name_ok(name, len)) {
        return 0;
    }

    memcpy(key, CEF_STORE_META_SOURCE, 2);
    memcpy(key + 2, name, len);
    key[2 + len] = '\0';
    memcpy(key + 3 + len, sha256, 32);

    return 3 + len + 32;
}


int
cef_store_rules_decode(const void *key, size_t klen, const void *val,
    size_t vlen, cef_store_rules_t *r)
{
    int16_t         live, cand;
    size_t          pos = 0;
    uint32_t        i;
    const uint8_t  *v = val;

    memset(r, 0, sizeof(cef_store_rules_t));

    if (klen < 3 || memcmp(key, CEF_STORE_META_RULES, 2) != 0
        || !cef_store_rules_name_ok((const char *) key + 2, klen - 2))
    {
        return -1;
    }

    r->name.data = (const char *) key + 2;
    r->name.len = klen - 2;

    if (vlen < CEF_STORE_RULES_HEADER || v[0] != CEF_STORE_RULES_FORMAT
        || v[1] > CEF_STORE_RULES_SHADOW)
    {
        return -1;
    }

    r->mode = v[1];
    r->share = cef_store_rules_le16(v + 2);
    r->nhistory = cef_store_rules_le16(v + 4);
    live = (int16_t) cef_store_rules_le16(v + 6);
    cand = (int16_t) cef_store_rules_le16(v + 8);
    r->live = live;
    r->candidate = cand;
    r->version = cef_store_le64(v + 16);
    r->changed_at = (int64_t) cef_store_le64(v + 24);
    r->history = v + CEF_STORE_RULES_HEADER;
    r->history_len = vlen - CEF_STORE_RULES_HEADER;

    if (r->live < -1 || r->live >= (int) r->nhistory
        || r->candidate < -1 || r->candidate >= (int) r->nhistory
        || r->share > 10000
        || (r->candidate >= 0) != (r->mode != CEF_STORE_RULES_NONE))
    {
        return -1;
    }

    for (i = 0; i < r->nhistory; i++) {
        if (pos + CEF_STORE_RULES_ENTRY > r->history_len) {
            return -1;
        }

        pos += CEF_STORE_RULES_ENTRY + r->history[pos + 57]
               + r->history[pos + 58];

        if (pos > r->history_len) {
            return -1;
        }
    }

    return pos == r->history_len ? 0 : -1;
}


int
cef_store_rules_at(const cef_store_rules_t *r, uint32_t i,
    cef_store_rules_version_t *v)
{
    size_t          pos = 0;
    uint32_t        j, k;
    const uint8_t  *e;

    if (i >= r->nhistory) {
        return -1;
    }

    for (j = 0; j < i; j++) {
        pos += CEF_STORE_RULES_ENTRY + r->history[pos + 57]
               + r->history[pos + 58];
    }

    e = r->history + pos;

    memset(v, 0, sizeof(cef_store_rules_version_t));
    memcpy(v->sha256, e, 32);

    for (k = 0; k < 32; k++) {
        v->hex[2 * k] = "0123456789abcdef"[e[k] >> 4];
        v->hex[2 * k + 1] = "0123456789abcdef"[e[k] & 15];
    }
    v->hex[64] = '\0';

    v->version = cef_store_le64(e + 32);
    v->created_at = (int64_t) cef_store_le64(e + 40);
    v->live_at = cef_store_le64(e + 48);
    v->state = e[56];
    v->label.data = (const char *) e + CEF_STORE_RULES_ENTRY;
    v->label.len = e[57];
    v->author.data = v->label.data + v->label.len;
    v->author.len = e[58];

    return 0;
}


int
cef_store_rules_get(cef_store_t *s, const char *name, size_t len,
    cef_store_rules_t *r)
{
    int          rc;
    char         key[CEF_RULES_KEY_MAX];
    size_t       klen, vlen;
    const void  *val;

    memset(r, 0, sizeof(cef_store_rules_t));

    klen = cef_store_rules_key(key, name, len);
    if (klen == 0) {
        return CEF_STORE_NOTFOUND;
    }

    rc = cef_store_meta_get(s, key, klen, &val, &vlen);
    if (rc != CEF_STORE_OK) {
        return rc;
    }

    if (cef_store_rules_decode(key, klen, val, vlen, r) != 0) {
        return CEF_STORE_ERROR;
    }

    r->name.data = name;

    return CEF_STORE_OK;
}


int
cef_store_rules_source(cef_store_t *s, const cef_store_rules_t *r,
    cef_store_rules_version_t *v)
{
    int          rc;
    char         key[CEF_RULES_KEY_MAX];
    size_t       klen, vlen;
    const void  *val;

    klen = cef_store_rules_source_key(key, r->name.data, r->name.len,
                                      v->sha256);
    if (klen == 0) {
        return CEF_STORE_NOTFOUND;
    }

    rc = cef_store_meta_get(s, key, klen, &val, &vlen);
    if (rc != CEF_STORE_OK) {
        return rc;
    }

    v->source.data = val;
    v->source.len = vlen;

    return CEF_STORE_OK;
}


typedef struct {
    int   (*fn)(void *data, const cef_store_rules_t *r);
    void   *data;
} cef_store_rules_scan_t;


static int
cef_store_rules_one(void *data, const void *key, size_t klen,
    const void *val, size_t vlen)
{
    cef_store_rules_t        r;
    cef_store_rules_scan_t  *sc = data;

    if (cef_store_rules_decode(key, klen, val, vlen, &r) != 0) {
        return 0;
    }

    return sc->fn(sc->data, &r);
}


int
cef_store_rules_each(cef_store_t *s,
    int (*fn)(void *data, const cef_store_rules_t *r), void *data)
{
    cef_store_rules_scan_t  sc = { fn, data };

    return cef_store_meta_scan(s, CEF_STORE_META_RULES, 2,
                               cef_store_rules_one, &sc);
}


const char *
cef_store_rules_state_name(int state)
{
    static const char *const  names[] = { "held", "live", "canary", "shadow",
                                          "retired", "rolled-back",
                                          "dropped" };

    return state >= 0 && state <= CEF_STORE_RULES_STATE_DROPPED
           ? names[state] : "?";
}


const char *
cef_store_rules_mode_name(int mode)
{
    return mode == CEF_STORE_RULES_CANARY ? "canary"
           : mode == CEF_STORE_RULES_SHADOW ? "shadow" : "none";
}
