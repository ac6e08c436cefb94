/*
 * Copyright (C) ngx_cef_module developers
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


cef_sign_rc_t
cef_sign(cef_signer_t *s, cef_span_t type, cef_span_t value,
    char sig[CEF_SIGN_SIG_LEN])
{
    uint8_t  mac[CEF_IDENTITY_HASH_LEN];

    if (cef_identity_hash(s->secret[0], type.data, type.len, value.data,
                          value.len, mac)
        != 0)
    {
        return CEF_SIGN_ERROR;
    }

    cef_base64url_encode(mac, sizeof(mac), sig);

    return CEF_SIGN_OK;
}


static cef_sign_rc_t
cef_sign_check(cef_signer_t *s, cef_span_t type, cef_span_t value,
    cef_span_t sig)
{
    size_t   i, n;
    uint8_t  want[cef_base64url_decoded_max(CEF_SIGN_SIG_LEN)];
    uint8_t  mac[CEF_IDENTITY_HASH_LEN];

    if (sig.len != CEF_SIGN_SIG_LEN
        || cef_base64url_decode(sig.data, sig.len, want, &n) != 0
        || n != CEF_IDENTITY_HASH_LEN)
    {
        return CEF_SIGN_MALFORMED;
    }

    for (i = 0; i < s->n; i++) {
        if (cef_identity_hash(s->secret[i], type.data, type.len, value.data,
                              value.len, mac)
            != 0)
        {
            return CEF_SIGN_ERROR;
        }

        if (CRYPTO_memcmp(mac, want, CEF_IDENTITY_HASH_LEN) == 0) {
            return CEF_SIGN_OK;
        }
    }

    return CEF_SIGN_BAD;
}


cef_sign_rc_t
cef_sign_verify(cef_signer_t *s, cef_span_t type, cef_span_t signed_value,
    cef_span_t *value)
{
    cef_span_t   v, sig;
    const char  *dot;

    if (signed_value.len <= CEF_SIGN_SIG_LEN + 1
        || signed_value.len > CEF_SIGN_MAX_VALUE + 1 + CEF_SIGN_SIG_LEN)
    {
        return CEF_SIGN_MALFORMED;
    }

    dot = signed_value.data + signed_value.len - CEF_SIGN_SIG_LEN - 1;
    if (*dot != '.') {
        return CEF_SIGN_MALFORMED;
    }

    v.data = signed_value.data;
    v.len = (size_t) (dot - signed_value.data);
    sig.data = dot + 1;
    sig.len = CEF_SIGN_SIG_LEN;

    switch (cef_sign_check(s, type, v, sig)) {
    case CEF_SIGN_OK:
        *value = v;
        return CEF_SIGN_OK;
    case CEF_SIGN_MALFORMED:
        return CEF_SIGN_MALFORMED;
    case CEF_SIGN_ERROR:
        return CEF_SIGN_ERROR;
    default:
        return CEF_SIGN_BAD;
    }
}


cef_sign_rc_t
cef_link_token_make(cef_signer_t *s, cef_span_t type, cef_span_t value,
    int64_t expires, char *out, size_t *outlen)
{
    int         n;
    char        payload[CEF_SIGN_MAX_VALUE + 64 + 32];
    size_t      len;
    cef_span_t  rest;

    if (type.len == 0 || type.len > 64 || memchr(type.data, ':', type.len)
        || value.len == 0 || value.len > CEF_SIGN_MAX_VALUE)
    {
        return CEF_SIGN_MALFORMED;
    }

    n = snprintf(payload, sizeof(payload), "%.*s:%.*s:%lld",
                 (int) type.len, type.data, (int) value.len, value.data,
                 (long long) expires);
    if (n < 0 || (size_t) n >= sizeof(payload)) {
        return CEF_SIGN_MALFORMED;
    }

    rest.data = payload + type.len + 1;
    rest.len = (size_t) n - type.len - 1;

    len = cef_base64url_encode((const uint8_t *) payload, (size_t) n, out);
    out[len++] = '.';

    if (cef_sign(s, type, rest, out + len) != CEF_SIGN_OK) {
        return CEF_SIGN_ERROR;
    }

    *outlen = len + CEF_SIGN_SIG_LEN;

    return CEF_SIGN_OK;
}


cef_sign_rc_t
cef_link_token_parse(cef_signer_t *s, cef_span_t token, int64_t now,
    uint8_t *buf, cef_link_t *link)
{
    char           *p, *colon, *last;
    size_t          n, plen, i;
    int64_t         expires;
    cef_span_t      payload, sig, type, rest;
    cef_sign_rc_t   rc;

    if (token.len <= CEF_SIGN_SIG_LEN + 1 || token.len > CEF_LINK_TOKEN_MAX
        || token.data[token.len - CEF_SIGN_SIG_LEN - 1] != '.')
    {
        return CEF_SIGN_MALFORMED;
    }

    payload.data = token.data;
    payload.len = token.len - CEF_SIGN_SIG_LEN - 1;
    sig.data = token.data + payload.len + 1;
    sig.len = CEF_SIGN_SIG_LEN;

    if (cef_base64url_decode(payload.data, payload.len, buf, &plen) != 0) {
        return CEF_SIGN_MALFORMED;
    }

    p = (char *) buf;
    colon = memchr(p, ':', plen);
    last = NULL;

    for (i = plen; i > 0; i--) {
        if (p[i - 1] == ':') {
            last = p + i - 1;
            break;
        }
    }

    if (colon == NULL || colon == p || last == colon
        || last + 1 == p + plen || (size_t) (p + plen - last - 1) > 18)
    {
        return CEF_SIGN_MALFORMED;
    }

    expires = 0;
    for (n = 1; last + n < p + plen; n++) {
        if (last[n] < '0' || last[n] > '9') {
            return CEF_SIGN_MALFORMED;
        }
        expires = expires * 10 + (last[n] - '0');
    }

    type.data = p;
    type.len = (size_t) (colon - p);
    rest.data = colon + 1;
    rest.len = plen - type.len - 1;

    rc = cef_sign_check(s, type, rest, sig);
    if (rc != CEF_SIGN_OK) {
        return rc;
    }

    if (expires <= now) {
        return CEF_SIGN_EXPIRED;
    }

    link->type = type;
    link->value.data = colon + 1;
    link->value.len = (size_t) (last - colon - 1);
    link->expires = expires;

    if (link->value.len == 0) {
        return CEF_SIGN_MALFORMED;
    }

    return CEF_SIGN_OK;
}
