/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Folder lib/identity: who a visitor is (the store's keyed hash of an
 * identity, signed values, visitor ids, cookies).  It includes only
 * lib/core; lib/store, lib/decision, lib/writer, the glue and the tools
 * include it.
 *
 * cef_identity: the keyed hash that turns an identity (TYPE, VALUE) into
 * the 16-byte key the profile store indexes.  Plain C11, no nginx types.
 *
 *   key = HMAC-SHA256(secret, TYPE ":" VALUE)[0:16]
 *
 * A profile's own id is hashed the same way with an empty TYPE, i.e.
 * HMAC-SHA256(secret, ":" ID)[0:16]; key types are never empty, so the two
 * never collide.
 *
 * The HMAC inner and outer pad states are computed once per secret, in
 * cef_identity_create(); each hash copies them (EVP_MD_CTX_copy_ex), feeds
 * the message and finishes: about 0.3 us with OpenSSL 3.0.
 */

#ifndef CEF_IDENTITY_H
#define CEF_IDENTITY_H

#include <stddef.h>
#include <stdint.h>


#define CEF_IDENTITY_HASH_LEN    16
#define CEF_IDENTITY_SECRET_MAX  4096

typedef struct cef_identity_s  cef_identity_t;


/*
 * Read a secret file: its whole content, less one trailing "\n" or "\r\n".
 *
 * @param[in]  path    the file
 * @param[out] buf     receives the secret (not NUL-terminated)
 * @param[in]  size    bytes at buf; at least CEF_IDENTITY_SECRET_MAX
 * @param[out] len     the secret's length
 * @param[out] err     a message on failure (may be NULL)
 * @param[in]  errlen  bytes at err
 * @return 0 on success; -1 if the file is missing, unreadable, empty (after
 *         trimming) or longer than size.
 */
int cef_identity_read_secret(const char *path, uint8_t *buf, size_t size,
    size_t *len, char *err, size_t errlen);

/*
 * Key the hash with a secret.  The secret itself is not kept.
 *
 * @param[in] secret  the secret bytes
 * @param[in] len     their length, > 0
 * @param[out] err    a message on failure (may be NULL)
 * @param[in] errlen  bytes at err
 * @return the keyed context, or NULL on failure (empty secret, OpenSSL
 *         error, out of memory).  Free it with cef_identity_free().
 */
cef_identity_t *cef_identity_create(const uint8_t *secret, size_t len,
    char *err, size_t errlen);

/*
 * cef_identity_read_secret() and cef_identity_create() in one call.
 */
cef_identity_t *cef_identity_create_from_file(const char *path, char *err,
    size_t errlen);

/*
 * A second keyed context equal to id, for another thread.
 *
 * @return the copy, or NULL when out of memory or on an OpenSSL failure.
 */
cef_identity_t *cef_identity_dup(const cef_identity_t *id);

void cef_identity_free(cef_identity_t *id);

/*
 * Hash an identity key.  Not thread-safe per context (it reuses one
 * scratch EVP_MD_CTX): use one context per thread or process.
 *
 * @param[in]  id     a keyed context
 * @param[in]  type   the key type, e.g. "email"; for a profile id, empty
 * @param[in]  tlen   its length
 * @param[in]  value  the key value
 * @param[in]  vlen   its length
 * @param[out] out    CEF_IDENTITY_HASH_LEN bytes
 * @return 0 on success, -1 on an OpenSSL failure.
 */
int cef_identity_hash(cef_identity_t *id, const char *type, size_t tlen,
    const char *value, size_t vlen, uint8_t out[CEF_IDENTITY_HASH_LEN]);

/*
 * HMAC-SHA256 of a whole message, cut to CEF_IDENTITY_HASH_LEN bytes: the
 * primitive under cef_sign's signatures.  Same cost and thread rules as
 * cef_identity_hash().
 *
 * @return 0 on success, -1 on an OpenSSL failure.
 */
int cef_identity_hmac(cef_identity_t *id, const void *msg, size_t len,
    uint8_t out[CEF_IDENTITY_HASH_LEN]);

/*
 * A fingerprint of the secret (HMAC of a fixed label), stored by cef-sync
 * so that a store and a secret that do not belong together are detected.
 * It does not reveal the secret.
 *
 * @param[in]  id   a keyed context
 * @param[out] out  8 bytes
 * @return 0 on success, -1 on an OpenSSL failure.
 */
int cef_identity_fingerprint(cef_identity_t *id, uint8_t out[8]);


#endif /* CEF_IDENTITY_H */
