/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_digest: SHA-256 of a fixed prefix followed by a message, with the
 * prefix absorbed once (at configuration time) and each digest starting
 * from a copy of that state.  For tags computed on every response (the
 * ETag of a rewritten page: a label and key, then what this visitor is
 * shown): no allocation and no EVP dispatch per digest where OpenSSL still
 * has the SHA256_* calls, EVP otherwise.  Plain C11, no nginx types.
 *
 *   digest = SHA-256(prefix || message)
 */

#ifndef CEF_DIGEST_H
#define CEF_DIGEST_H

#include <stddef.h>
#include <stdint.h>


#define CEF_DIGEST_LEN  32

typedef struct cef_digest_s  cef_digest_t;


/*
 * @param[in] prefix  the bytes every digest starts with (copied)
 * @param[in] len     their length
 * @return the digest state, or NULL when out of memory or libcrypto fails.
 */
cef_digest_t *cef_digest_create(const void *prefix, size_t len);

void cef_digest_free(cef_digest_t *d);

/*
 * SHA-256(prefix || msg) into out.
 *
 * @return 0, or -1 when libcrypto fails (EVP builds only).
 */
int cef_digest(cef_digest_t *d, const void *msg, size_t len,
    uint8_t out[CEF_DIGEST_LEN]);

#endif /* CEF_DIGEST_H */
