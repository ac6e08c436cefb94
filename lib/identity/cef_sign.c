/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cef_base64url.h"
#include "cef_identity.h"
#include "cef_sign.h"


#define CEF_SIGN_FILE_MAX  (CEF_SIGN_MAX_SECRETS * (CEF_IDENTITY_SECRET_MAX + 2))


struct cef_signer_s {
    size_t           n;
    cef_identity_t  *secret[CEF_SIGN_MAX_SECRETS];
};


cef_signer_t *
cef_signer_create(const cef_span_t *secrets, size_t n, char *err,
    size_t errlen)
{
    size_t         i;
    cef_signer_t  *s;

    if (n == 0 || n > CEF_SIGN_MAX_SECRETS) {
        snprintf(err, err ? errlen : 0, "a signing secret file needs 1 to %d "
                 "secrets, one per line (%zu given)", CEF_SIGN_MAX_SECRETS, n);
        return NULL;
    }

    s = calloc(1, sizeof(cef_signer_t));
    if (s == NULL) {
        snprintf(err, err ? errlen : 0, "out of memory");
        return NULL;
    }

    for (i = 0; i < n; i++) {
        s->secret[i] = cef_identity_create((const uint8_t *) secrets[i].data,
                                           secrets[i].len, err, errlen);
        if (s->secret[i] == NULL) {
            cef_signer_free(s);
            return NULL;
        }
        s->n++;
    }

    return s;
}


cef_signer_t *
cef_signer_create_from_file(const char *path, char *err, size_t errlen)
{
    char          *buf, *p, *end, *eol;
    FILE          *f;
    size_t         len, n, e;
    cef_span_t     lines[CEF_SIGN_MAX_SECRETS + 1];
    cef_signer_t  *s;

    f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, err ? errlen : 0, "cannot open signing secret file "
                 "\"%s\": %s", path, strerror(errno));
        return NULL;
    }

    buf = malloc(CEF_SIGN_FILE_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        snprintf(err, err ? errlen : 0, "out of memory");
        return NULL;
    }

    len = fread(buf, 1, CEF_SIGN_FILE_MAX + 1, f);
    e = ferror(f);
    fclose(f);

    if (e || len > CEF_SIGN_FILE_MAX) {
        snprintf(err, err ? errlen : 0, e ? "cannot read signing secret file "
                 "\"%s\"" : "signing secret file \"%s\" is too large", path);
        free(buf);
        return NULL;
    }

    n = 0;
    p = buf;
    end = buf + len;

    while (p < end && n <= CEF_SIGN_MAX_SECRETS) {
        eol = memchr(p, '\n', (size_t) (end - p));
        if (eol == NULL) {
            eol = end;
        }

        lines[n].data = p;
        lines[n].len = (size_t) (eol - p);

        if (lines[n].len && p[lines[n].len - 1] == '\r') {
            lines[n].len--;
        }

        if (lines[n].len) {
            n++;
        }

        p = eol + 1;
    }

    if (n == 0) {
        snprintf(err, err ? errlen : 0, "signing secret file \"%s\" is empty",
                 path);
        s = NULL;

    } else {
        s = cef_signer_create(lines, n, err, errlen);
    }

    OPENSSL_cleanse(buf, len);
    free(buf);

    return s;
}


void
cef_signer_free(cef_signer_t *s)
{
    size_t  i;

    if (s == NULL) {
        return;
    }

    for (i = 0; i < s->n; i++) {
        cef_identity_free(s->secret[i]);
    }

    free(s);
}


size_t
cef_signer_count(const cef_signer_t *s)
{
    return s->n;
}


/* --- messages ------------------------------------------------------------ */

#define cef_sign_label(s)  { s, sizeof(s) - 1 }

/* the purpose labels: no message of one purpose is one of another */
static const cef_span_t  cef_sign_key_label =
    cef_sign_label("cef-signed-key-v2");
static const cef_span_t  cef_sign_state_label =
    cef_sign_label("cef-plugin-state-v2");
static const cef_span_t  cef_sign_link_label =
    cef_sign_label("cef-link-token-v2");

/* the longest message: a label, a type and a value, length-prefixed */
#define CEF_SIGN_MSG_MAX  (3 * 2 + 32 + CEF_SIGN_MAX_TYPE + CEF_SIGN_MAX_VALUE)


static uint8_t *
cef_sign_lp(uint8_t *p, const void *data, size_t len)
{
    *p++ = (uint8_t) (len >> 8);
    *p++ = (uint8_t) len;
    memcpy(p, data, len);

    return p + len;
}


/* LP(label) LP(name) LP(value), the message of a signed key or state */
static size_t
cef_sign_msg(uint8_t *msg, cef_span_t label, cef_span_t name,
    cef_span_t value)
{
    uint8_t  *p;

    p = cef_sign_lp(msg, label.data, label.len);
    p = cef_sign_lp(p, name.data, name.len);
    p = cef_sign_lp(p, value.data, value.len);

    return (size_t) (p - msg);
}


static cef_sign_rc_t
cef_sign_mac_check(cef_signer_t *s, const uint8_t *msg, size_t len,
    const uint8_t want[CEF_SIGN_MAC_LEN])
{
    size_t   i;
    uint8_t  mac[CEF_IDENTITY_HASH_LEN];

    for (i = 0; i < s->n; i++) {
        if (cef_identity_hmac(s->secret[i], msg, len, mac) != 0) {
            return CEF_SIGN_ERROR;
        }

        if (CRYPTO_memcmp(mac, want, CEF_SIGN_MAC_LEN) == 0) {
            return CEF_SIGN_OK;
        }
    }

    return CEF_SIGN_BAD;
}


/* --- VALUE.SIG: signed keys and plugin states ---------------------------- */

static cef_sign_rc_t
cef_sign_dotted(cef_signer_t *s, cef_span_t label, cef_span_t name,
    cef_span_t value, char sig[CEF_SIGN_SIG_LEN])
{
    size_t   len;
    uint8_t  msg[CEF_SIGN_MSG_MAX], mac[CEF_IDENTITY_HASH_LEN];

    if (name.len == 0 || name.len > CEF_SIGN_MAX_TYPE
        || value.len == 0 || value.len > CEF_SIGN_MAX_VALUE)
    {
        return CEF_SIGN_MALFORMED;
    }

    len = cef_sign_msg(msg, label, name, value);

    if (cef_identity_hmac(s->secret[0], msg, len, mac) != 0) {
        return CEF_SIGN_ERROR;
    }

    cef_base64url_encode(mac, CEF_SIGN_MAC_LEN, sig);

    return CEF_SIGN_OK;
}


/* split "VALUE.SIG" and decode SIG */
static cef_sign_rc_t
cef_sign_split(cef_span_t signed_value, cef_span_t *value,
    uint8_t want[CEF_SIGN_MAC_LEN])
{
    size_t       n;
    const char  *dot;
    uint8_t      raw[cef_base64url_decoded_max(CEF_SIGN_SIG_LEN)];

    if (signed_value.len <= CEF_SIGN_SIG_LEN + 1
        || signed_value.len > CEF_SIGN_MAX_VALUE + 1 + CEF_SIGN_SIG_LEN)
    {
        return CEF_SIGN_MALFORMED;
    }

    dot = signed_value.data + signed_value.len - CEF_SIGN_SIG_LEN - 1;
    if (*dot != '.') {
        return CEF_SIGN_MALFORMED;
    }

    if (cef_base64url_decode(dot + 1, CEF_SIGN_SIG_LEN, raw, &n) != 0
        || n != CEF_SIGN_MAC_LEN)
    {
        return CEF_SIGN_MALFORMED;
    }

    memcpy(want, raw, CEF_SIGN_MAC_LEN);
    value->data = signed_value.data;
    value->len = (size_t) (dot - signed_value.data);

    return CEF_SIGN_OK;
}


static cef_sign_rc_t
cef_sign_dotted_verify(cef_signer_t *s, cef_span_t label, cef_span_t name,
    cef_span_t signed_value, cef_span_t *value)
{
    size_t         len;
    uint8_t        msg[CEF_SIGN_MSG_MAX], want[CEF_SIGN_MAC_LEN];
    cef_span_t     v;
    cef_sign_rc_t  rc;

    rc = cef_sign_split(signed_value, &v, want);
    if (rc != CEF_SIGN_OK) {
        return rc;
    }

    if (name.len == 0 || name.len > CEF_SIGN_MAX_TYPE) {
        return CEF_SIGN_MALFORMED;
    }

    len = cef_sign_msg(msg, label, name, v);

    rc = cef_sign_mac_check(s, msg, len, want);
    if (rc == CEF_SIGN_OK) {
        *value = v;
    }

    return rc;
}


cef_sign_rc_t
cef_sign(cef_signer_t *s, cef_span_t type, cef_span_t value,
    char sig[CEF_SIGN_SIG_LEN])
{
    return cef_sign_dotted(s, cef_sign_key_label, type, value, sig);
}


cef_sign_rc_t
cef_sign_verify(cef_signer_t *s, cef_span_t type, cef_span_t signed_value,
    cef_span_t *value)
{
    return cef_sign_dotted_verify(s, cef_sign_key_label, type, signed_value,
                                  value);
}


cef_sign_rc_t
cef_sign_state(cef_signer_t *s, cef_span_t plugin, cef_span_t state,
    char sig[CEF_SIGN_SIG_LEN])
{
    return cef_sign_dotted(s, cef_sign_state_label, plugin, state, sig);
}


cef_sign_rc_t
cef_sign_verify_state(cef_signer_t *s, cef_span_t plugin,
    cef_span_t signed_state, cef_span_t *state)
{
    return cef_sign_dotted_verify(s, cef_sign_state_label, plugin,
                                  signed_state, state);
}


cef_sign_rc_t
cef_sign_verify_legacy(cef_signer_t *s, cef_span_t type,
    cef_span_t signed_value, cef_span_t *value)
{
    size_t         i;
    uint8_t        want[CEF_SIGN_MAC_LEN], mac[CEF_IDENTITY_HASH_LEN];
    cef_span_t     v;
    cef_sign_rc_t  rc;

    rc = cef_sign_split(signed_value, &v, want);
    if (rc != CEF_SIGN_OK) {
        return rc;
    }

    for (i = 0; i < s->n; i++) {
        if (cef_identity_hash(s->secret[i], type.data, type.len, v.data,
                              v.len, mac)
            != 0)
        {
            return CEF_SIGN_ERROR;
        }

        if (CRYPTO_memcmp(mac, want, CEF_SIGN_MAC_LEN) == 0) {
            *value = v;
            return CEF_SIGN_OK;
        }
    }

    return CEF_SIGN_BAD;
}


/* --- link tokens ---------------------------------------------------------- */

static int
cef_sign_type_ok(cef_span_t type)
{
    size_t  i;
    char    c;

    if (type.len == 0 || type.len > CEF_SIGN_MAX_TYPE) {
        return 0;
    }

    for (i = 0; i < type.len; i++) {
        c = type.data[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'
              || c == '-'))
        {
            return 0;
        }
    }

    return 1;
}


/* LP(label) BODY, BODY = LP(TYPE) LP(KEY) LP(EXPIRES); the BODY's length */
static size_t
cef_link_msg(uint8_t *msg, cef_span_t type, const uint8_t *key,
    int64_t expires)
{
    int       i;
    uint8_t  *p, be[8];

    for (i = 0; i < 8; i++) {
        be[i] = (uint8_t) ((uint64_t) expires >> (56 - 8 * i));
    }

    p = cef_sign_lp(msg, cef_sign_link_label.data, cef_sign_link_label.len);
    p = cef_sign_lp(p, type.data, type.len);
    p = cef_sign_lp(p, key, CEF_IDENTITY_HASH_LEN);
    p = cef_sign_lp(p, be, sizeof(be));

    return (size_t) (p - msg) - 2 - cef_sign_link_label.len;
}


cef_sign_rc_t
cef_link_token_make(cef_signer_t *s, cef_span_t type, const uint8_t *key,
    int64_t expires, char *out, size_t *outlen)
{
    size_t    body, head;
    uint8_t   msg[2 + 32 + CEF_LINK_TOKEN_RAW];

    if (!cef_sign_type_ok(type)) {
        return CEF_SIGN_MALFORMED;
    }

    head = 2 + cef_sign_link_label.len;
    body = cef_link_msg(msg, type, key, expires);

    if (cef_identity_hmac(s->secret[0], msg, head + body, msg + head + body)
        != 0)
    {
        return CEF_SIGN_ERROR;
    }

    *outlen = cef_base64url_encode(msg + head, body + CEF_SIGN_MAC_LEN, out);

    return CEF_SIGN_OK;
}


cef_sign_rc_t
cef_link_token_parse(cef_signer_t *s, cef_span_t token, int64_t now,
    uint8_t *buf, cef_link_t *link)
{
    int            i;
    size_t         n, tlen, head;
    int64_t        expires;
    uint8_t       *p, msg[2 + 32 + CEF_LINK_TOKEN_RAW];
    cef_sign_rc_t  rc;

    /* the shortest: a 1-byte type */
    if (token.len < ((2 + 1 + 2 + 16 + 2 + 8 + CEF_SIGN_MAC_LEN) * 4 + 2) / 3
        || token.len > CEF_LINK_TOKEN_MAX
        || cef_base64url_decode(token.data, token.len, buf, &n) != 0)
    {
        return CEF_SIGN_MALFORMED;
    }

    tlen = (size_t) buf[0] << 8 | buf[1];

    if (n != 2 + tlen + 2 + 16 + 2 + 8 + CEF_SIGN_MAC_LEN) {
        return CEF_SIGN_MALFORMED;
    }

    p = buf + 2 + tlen;

    if (p[0] != 0 || p[1] != CEF_IDENTITY_HASH_LEN
        || p[2 + 16] != 0 || p[2 + 16 + 1] != 8)
    {
        return CEF_SIGN_MALFORMED;
    }

    link->type.data = (const char *) buf + 2;
    link->type.len = tlen;

    if (!cef_sign_type_ok(link->type)) {
        return CEF_SIGN_MALFORMED;
    }

    head = 2 + cef_sign_link_label.len;
    cef_sign_lp(msg, cef_sign_link_label.data, cef_sign_link_label.len);
    memcpy(msg + head, buf, n - CEF_SIGN_MAC_LEN);

    rc = cef_sign_mac_check(s, msg, head + n - CEF_SIGN_MAC_LEN,
                            buf + n - CEF_SIGN_MAC_LEN);
    if (rc != CEF_SIGN_OK) {
        return rc;
    }

    p += 2 + 16 + 2;
    expires = 0;
    for (i = 0; i < 8; i++) {
        expires = (int64_t) ((uint64_t) expires << 8 | p[i]);
    }

    if (expires <= now) {
        return CEF_SIGN_EXPIRED;
    }

    link->key = buf + 2 + tlen + 2;
    link->expires = expires;

    return CEF_SIGN_OK;
}
