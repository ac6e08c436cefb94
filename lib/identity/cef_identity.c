/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 */

/*
 * The SHA256_* calls are deprecated in OpenSSL 3.0 but still there; with
 * them a precomputed pad state is copied by a plain struct assignment,
 * which makes an HMAC about 2.3x faster than EVP_MD_CTX_copy_ex() (135 vs
 * 310 ns, see PITFALLS).  Builds against an OpenSSL without them
 * (OPENSSL_NO_DEPRECATED_3_0) use EVP.
 */
#define OPENSSL_SUPPRESS_DEPRECATED  1

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "cef_identity.h"


#define CEF_HMAC_BLOCK  64

#if !defined(OPENSSL_NO_DEPRECATED_3_0)
#define CEF_IDENTITY_LOWLEVEL  1
#endif


struct cef_identity_s {
    EVP_MD_CTX  *inner;     /* sha256 after (key ^ ipad) */
    EVP_MD_CTX  *outer;     /* sha256 after (key ^ opad) */
    EVP_MD_CTX  *work;
#if (CEF_IDENTITY_LOWLEVEL)
    SHA256_CTX   sinner;
    SHA256_CTX   souter;
#endif
};


static void
cef_identity_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list  ap;

    if (err == NULL || errlen == 0) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}


int
cef_identity_read_secret(const char *path, uint8_t *buf, size_t size,
    size_t *len, char *err, size_t errlen)
{
    FILE    *f;
    size_t   n;
    int      c;

    f = fopen(path, "rb");
    if (f == NULL) {
        cef_identity_seterr(err, errlen, "cannot open secret file \"%s\": %s",
                            path, strerror(errno));
        return -1;
    }

    n = fread(buf, 1, size, f);

    if (ferror(f)) {
        cef_identity_seterr(err, errlen, "cannot read secret file \"%s\": %s",
                            path, strerror(errno));
        fclose(f);
        return -1;
    }

    c = fgetc(f);
    fclose(f);

    if (c != EOF) {
        cef_identity_seterr(err, errlen, "secret file \"%s\" is longer than "
                            "%zu bytes", path, size);
        return -1;
    }

    if (n > 0 && buf[n - 1] == '\n') {
        n--;
        if (n > 0 && buf[n - 1] == '\r') {
            n--;
        }
    }

    if (n == 0) {
        cef_identity_seterr(err, errlen, "secret file \"%s\" is empty", path);
        return -1;
    }

    *len = n;
    return 0;
}


/*
 * One half of HMAC's key schedule (RFC 2104): the inner (0x36) or outer
 * (0x5c) digest state after absorbing key ^ pad, kept in id.  pad is the
 * caller's scratch block, which it wipes.
 */
static int
cef_identity_key_pad(cef_identity_t *id, int outer, const EVP_MD *md,
    const uint8_t key[CEF_HMAC_BLOCK], uint8_t pad[CEF_HMAC_BLOCK])
{
    size_t       i;
    uint8_t      x = outer ? 0x5c : 0x36;
    EVP_MD_CTX  *ctx = outer ? id->outer : id->inner;

    for (i = 0; i < CEF_HMAC_BLOCK; i++) {
        pad[i] = key[i] ^ x;
    }

    if (EVP_DigestInit_ex(ctx, md, NULL) != 1
        || EVP_DigestUpdate(ctx, pad, CEF_HMAC_BLOCK) != 1)
    {
        return -1;
    }

#if (CEF_IDENTITY_LOWLEVEL)
    {
        SHA256_CTX  *sctx = outer ? &id->souter : &id->sinner;

        if (SHA256_Init(sctx) != 1
            || SHA256_Update(sctx, pad, CEF_HMAC_BLOCK) != 1)
        {
            return -1;
        }
    }
#endif

    return 0;
}


cef_identity_t *
cef_identity_create(const uint8_t *secret, size_t len, char *err,
    size_t errlen)
{
    unsigned int     dlen;
    const EVP_MD    *md;
    cef_identity_t  *id;
    uint8_t          key[CEF_HMAC_BLOCK], pad[CEF_HMAC_BLOCK];

    if (len == 0) {
        cef_identity_seterr(err, errlen, "empty secret");
        return NULL;
    }

    id = calloc(1, sizeof(cef_identity_t));
    if (id == NULL) {
        cef_identity_seterr(err, errlen, "out of memory");
        return NULL;
    }

    md = EVP_sha256();
    memset(key, 0, sizeof(key));

    id->inner = EVP_MD_CTX_new();
    id->outer = EVP_MD_CTX_new();
    id->work = EVP_MD_CTX_new();

    if (id->inner == NULL || id->outer == NULL || id->work == NULL) {
        goto failed;
    }

    if (len > CEF_HMAC_BLOCK) {
        if (EVP_DigestInit_ex(id->work, md, NULL) != 1
            || EVP_DigestUpdate(id->work, secret, len) != 1
            || EVP_DigestFinal_ex(id->work, key, &dlen) != 1)
        {
            goto failed;
        }

    } else {
        memcpy(key, secret, len);
    }

    if (cef_identity_key_pad(id, 0, md, key, pad) != 0
        || cef_identity_key_pad(id, 1, md, key, pad) != 0)
    {
        goto failed;
    }

    memset(key, 0, sizeof(key));
    memset(pad, 0, sizeof(pad));

    return id;

failed:

    memset(key, 0, sizeof(key));
    memset(pad, 0, sizeof(pad));
    cef_identity_seterr(err, errlen, "cannot key HMAC-SHA256 (OpenSSL)");
    cef_identity_free(id);
    return NULL;
}


cef_identity_t *
cef_identity_create_from_file(const char *path, char *err, size_t errlen)
{
    size_t           len;
    uint8_t         *buf;
    cef_identity_t  *id;

    buf = malloc(CEF_IDENTITY_SECRET_MAX);
    if (buf == NULL) {
        cef_identity_seterr(err, errlen, "out of memory");
        return NULL;
    }

    if (cef_identity_read_secret(path, buf, CEF_IDENTITY_SECRET_MAX, &len,
                                 err, errlen) != 0)
    {
        free(buf);
        return NULL;
    }

    id = cef_identity_create(buf, len, err, errlen);

    memset(buf, 0, CEF_IDENTITY_SECRET_MAX);
    free(buf);

    return id;
}


cef_identity_t *
cef_identity_dup(const cef_identity_t *id)
{
    cef_identity_t  *c;

    c = calloc(1, sizeof(cef_identity_t));
    if (c == NULL) {
        return NULL;
    }

    c->inner = EVP_MD_CTX_new();
    c->outer = EVP_MD_CTX_new();
    c->work = EVP_MD_CTX_new();

    if (c->inner == NULL || c->outer == NULL || c->work == NULL
        || EVP_MD_CTX_copy_ex(c->inner, id->inner) != 1
        || EVP_MD_CTX_copy_ex(c->outer, id->outer) != 1)
    {
        cef_identity_free(c);
        return NULL;
    }

#if (CEF_IDENTITY_LOWLEVEL)
    c->sinner = id->sinner;
    c->souter = id->souter;
#endif

    return c;
}


void
cef_identity_free(cef_identity_t *id)
{
    if (id == NULL) {
        return;
    }

    EVP_MD_CTX_free(id->inner);
    EVP_MD_CTX_free(id->outer);
    EVP_MD_CTX_free(id->work);
    free(id);
}


static int
cef_identity_mac(cef_identity_t *id, const void *a, size_t alen,
    const void *b, size_t blen, const void *c_, size_t clen, uint8_t *out,
    size_t outlen)
{
    unsigned int  n;
    uint8_t       md[EVP_MAX_MD_SIZE];

#if (CEF_IDENTITY_LOWLEVEL)
    SHA256_CTX    c;

    c = id->sinner;
    SHA256_Update(&c, a, alen);
    SHA256_Update(&c, b, blen);
    if (clen) {
        SHA256_Update(&c, c_, clen);
    }
    SHA256_Final(md, &c);

    c = id->souter;
    SHA256_Update(&c, md, SHA256_DIGEST_LENGTH);
    SHA256_Final(md, &c);

    memcpy(out, md, outlen);
    (void) n;
    return 0;
#endif

    if (EVP_MD_CTX_copy_ex(id->work, id->inner) != 1
        || EVP_DigestUpdate(id->work, a, alen) != 1
        || EVP_DigestUpdate(id->work, b, blen) != 1
        || (clen && EVP_DigestUpdate(id->work, c_, clen) != 1)
        || EVP_DigestFinal_ex(id->work, md, &n) != 1
        || EVP_MD_CTX_copy_ex(id->work, id->outer) != 1
        || EVP_DigestUpdate(id->work, md, n) != 1
        || EVP_DigestFinal_ex(id->work, md, &n) != 1)
    {
        return -1;
    }

    memcpy(out, md, outlen);
    return 0;
}


int
cef_identity_hash(cef_identity_t *id, const char *type, size_t tlen,
    const char *value, size_t vlen, uint8_t out[CEF_IDENTITY_HASH_LEN])
{
    return cef_identity_mac(id, type, tlen, ":", 1, value, vlen, out,
                            CEF_IDENTITY_HASH_LEN);
}


int
cef_identity_hmac(cef_identity_t *id, const void *msg, size_t len,
    uint8_t out[CEF_IDENTITY_HASH_LEN])
{
    return cef_identity_mac(id, msg, len, "", 0, NULL, 0, out,
                            CEF_IDENTITY_HASH_LEN);
}


int
cef_identity_fingerprint(cef_identity_t *id, uint8_t out[8])
{
    static const char  label[] = "cef-store-secret-check";

    return cef_identity_mac(id, label, sizeof(label) - 1, "", 0, NULL, 0,
                            out, 8);
}
