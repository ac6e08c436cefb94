/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * A bandit's published arm weights: the stored layout and its reader
 * (cef_store_weights.h, docs/store.md).
 */

#include <string.h>

#include "cef_store_weights.h"


static uint16_t
cef_store_weights_le16(const uint8_t *p)
{
    return (uint16_t) (p[0] | p[1] << 8);
}


size_t
cef_store_weights_key(char *key, const char *experiment, size_t elen,
    const char *salt, size_t slen)
{
    if (elen == 0 || slen == 0 || elen > CEF_STORE_WEIGHTS_NAME_MAX
        || slen > CEF_STORE_WEIGHTS_NAME_MAX
        || memchr(experiment, '\0', elen) != NULL)
    {
        return 0;
    }

    memcpy(key, CEF_STORE_META_WEIGHTS, 2);
    memcpy(key + 2, experiment, elen);
    key[2 + elen] = '\0';
    memcpy(key + 3 + elen, salt, slen);

    return 3 + elen + slen;
}


int
cef_store_weights_decode(const void *key, size_t klen, const void *val,
    size_t vlen, cef_store_weights_t *w)
{
    size_t          pos = 0;
    uint32_t        i, total = 0;
    const char     *k = key, *nul;
    const uint8_t  *v = val;
    cef_store_arm_t arm;

    memset(w, 0, sizeof(cef_store_weights_t));

    if (klen < 5 || memcmp(k, CEF_STORE_META_WEIGHTS, 2) != 0) {
        return -1;
    }

    nul = memchr(k + 2, '\0', klen - 2);
    if (nul == NULL || nul == k + 2 || nul == k + klen - 1) {
        return -1;
    }

    w->experiment.data = k + 2;
    w->experiment.len = (size_t) (nul - (k + 2));
    w->salt.data = nul + 1;
    w->salt.len = (size_t) (k + klen - (nul + 1));

    if (vlen < CEF_STORE_WEIGHTS_HEADER || v[0] != CEF_STORE_WEIGHTS_FORMAT) {
        return -1;
    }

    w->updated = v[1] != 0;
    w->narms = cef_store_weights_le16(v + 2);
    w->arms_len = (size_t) v[4] | (size_t) v[5] << 8 | (size_t) v[6] << 16
                  | (size_t) v[7] << 24;
    w->version = cef_store_le64(v + 8);
    w->created_at = (int64_t) cef_store_le64(v + 16);
    w->stored_at = (int64_t) cef_store_le64(v + 24);

    if (w->arms_len > vlen - CEF_STORE_WEIGHTS_HEADER || w->narms == 0) {
        return -1;
    }

    w->arms = v + CEF_STORE_WEIGHTS_HEADER;
    w->record = w->arms + w->arms_len;
    w->record_len = vlen - CEF_STORE_WEIGHTS_HEADER - w->arms_len;

    /* walk the arms once: they must fill arms_len and add up */

    for (i = 0; i < w->narms; i++) {
        if (pos + 3 > w->arms_len
            || pos + 3 + w->arms[pos + 2] > w->arms_len)
        {
            return -1;
        }

        (void) cef_store_weights_arm(w, &pos, &arm);
        total += arm.bp;
    }

    if (pos != w->arms_len || total != CEF_STORE_WEIGHTS_TOTAL) {
        return -1;
    }

    return 0;
}


int
cef_store_weights_get(cef_store_t *s, const char *experiment, size_t elen,
    const char *salt, size_t slen, cef_store_weights_t *w)
{
    int          rc;
    char         key[CEF_STORE_WEIGHTS_KEY_MAX];
    size_t       klen, vlen;
    const void  *val;

    memset(w, 0, sizeof(cef_store_weights_t));

    klen = cef_store_weights_key(key, experiment, elen, salt, slen);
    if (klen == 0) {
        return CEF_STORE_NOTFOUND;
    }

    rc = cef_store_meta_get(s, key, klen, &val, &vlen);
    if (rc != CEF_STORE_OK) {
        return rc;
    }

    /* the key's spans must point into the map too, not at our stack */
    if (cef_store_weights_decode(key, klen, val, vlen, w) != 0) {
        return CEF_STORE_ERROR;
    }

    w->experiment.data = experiment;
    w->salt.data = salt;

    return CEF_STORE_OK;
}


int
cef_store_weights_arm(const cef_store_weights_t *w, size_t *pos,
    cef_store_arm_t *arm)
{
    const uint8_t  *p;

    if (*pos + 3 > w->arms_len) {
        return 0;
    }

    p = w->arms + *pos;
    arm->bp = cef_store_weights_le16(p);
    arm->name.len = p[2];
    arm->name.data = (const char *) p + 3;
    *pos += 3 + (size_t) p[2];

    return 1;
}


typedef struct {
    int   (*fn)(void *data, const cef_store_weights_t *w);
    void   *data;
} cef_store_weights_scan_t;


static int
cef_store_weights_one(void *data, const void *key, size_t klen,
    const void *val, size_t vlen)
{
    cef_store_weights_t        w;
    cef_store_weights_scan_t  *sc = data;

    if (cef_store_weights_decode(key, klen, val, vlen, &w) != 0) {
        return 0;
    }

    return sc->fn(sc->data, &w);
}


int
cef_store_weights_each(cef_store_t *s,
    int (*fn)(void *data, const cef_store_weights_t *w), void *data)
{
    cef_store_weights_scan_t  sc = { fn, data };

    return cef_store_meta_scan(s, CEF_STORE_META_WEIGHTS, 2,
                               cef_store_weights_one, &sc);
}


void
cef_store_weights_put_header(uint8_t *out, const cef_store_weights_t *w)
{
    out[0] = CEF_STORE_WEIGHTS_FORMAT;
    out[1] = w->updated ? 1 : 0;
    out[2] = (uint8_t) w->narms;
    out[3] = (uint8_t) (w->narms >> 8);
    out[4] = (uint8_t) w->arms_len;
    out[5] = (uint8_t) (w->arms_len >> 8);
    out[6] = (uint8_t) (w->arms_len >> 16);
    out[7] = (uint8_t) (w->arms_len >> 24);
    cef_store_put_le64(out + 8, w->version);
    cef_store_put_le64(out + 16, (uint64_t) w->created_at);
    cef_store_put_le64(out + 24, (uint64_t) w->stored_at);
}


size_t
cef_store_weights_put_arm(uint8_t *out, const cef_store_arm_t *arm)
{
    out[0] = (uint8_t) arm->bp;
    out[1] = (uint8_t) (arm->bp >> 8);
    out[2] = (uint8_t) arm->name.len;
    memcpy(out + 3, arm->name.data, arm->name.len);

    return 3 + arm->name.len;
}
