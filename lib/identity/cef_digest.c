/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 */

/*
 * As in cef_identity.c: the deprecated SHA256_* calls let a state be
 * copied by struct assignment; builds against an OpenSSL without them
 * (OPENSSL_NO_DEPRECATED_3_0) use EVP_MD_CTX_copy_ex().
 */
#define OPENSSL_SUPPRESS_DEPRECATED  1

#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "cef_digest.h"


#if !defined(OPENSSL_NO_DEPRECATED_3_0)
#define CEF_DIGEST_LOWLEVEL  1
#endif


struct cef_digest_s {
#if (CEF_DIGEST_LOWLEVEL)
    SHA256_CTX   start;
#else
    EVP_MD_CTX  *start;
    EVP_MD_CTX  *work;
#endif
};


cef_digest_t *
cef_digest_create(const void *prefix, size_t len)
{
    cef_digest_t  *d;

    d = calloc(1, sizeof(cef_digest_t));
    if (d == NULL) {
        return NULL;
    }

#if (CEF_DIGEST_LOWLEVEL)
    if (SHA256_Init(&d->start) != 1
        || SHA256_Update(&d->start, prefix, len) != 1)
    {
        free(d);
        return NULL;
    }
#else
    d->start = EVP_MD_CTX_new();
    d->work = EVP_MD_CTX_new();

    if (d->start == NULL || d->work == NULL
        || EVP_DigestInit_ex2(d->start, EVP_sha256(), NULL) != 1
        || EVP_DigestUpdate(d->start, prefix, len) != 1)
    {
        cef_digest_free(d);
        return NULL;
    }
#endif

    return d;
}


void
cef_digest_free(cef_digest_t *d)
{
    if (d == NULL) {
        return;
    }

#if !(CEF_DIGEST_LOWLEVEL)
    EVP_MD_CTX_free(d->start);
    EVP_MD_CTX_free(d->work);
#endif
    free(d);
}


int
cef_digest(cef_digest_t *d, const void *msg, size_t len,
    uint8_t out[CEF_DIGEST_LEN])
{
#if (CEF_DIGEST_LOWLEVEL)
    SHA256_CTX  c;

    c = d->start;
    SHA256_Update(&c, msg, len);
    SHA256_Final(out, &c);

    return 0;
#else
    unsigned int  n;

    if (EVP_MD_CTX_copy_ex(d->work, d->start) != 1
        || EVP_DigestUpdate(d->work, msg, len) != 1
        || EVP_DigestFinal_ex(d->work, out, &n) != 1)
    {
        return -1;
    }

    return 0;
#endif
}
