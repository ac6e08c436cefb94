/*
 * Copyright (C) ngx_cef_module developers
 *
 * cef_sign: signed identity keys and link tokens.
 *
 * A signing secret file holds one secret per line.  The first signs; all
 * verify, so a secret can be rotated without a flag day: add the new one as
 * the first line, keep the old one below until every signed value issued
 * with it has expired, then remove it.
 *
 *   signature    SIG = base64url(HMAC-SHA256(secret, TYPE ":" VALUE)[0:16])
 *   signed key   VALUE "." SIG
 *   link token   base64url(TYPE ":" VALUE ":" EXPIRY_UNIX) "." SIG
 *                with SIG over TYPE ":" VALUE ":" EXPIRY_UNIX
 *
 * Signatures are compared in constant time.
 */

#ifndef CEF_SIGN_H
#define CEF_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "cef_value.h"


#define CEF_SIGN_SIG_LEN       22     /* base64url of 16 bytes */
#define CEF_SIGN_MAX_SECRETS   16
#define CEF_SIGN_MAX_VALUE     512    /* longest VALUE accepted */
#define CEF_LINK_TOKEN_MAX     (((CEF_SIGN_MAX_VALUE + 64) * 4 + 2) / 3 \
                                + 1 + CEF_SIGN_SIG_LEN)

typedef enum {
    CEF_SIGN_OK = 0,
    CEF_SIGN_MALFORMED,     /* not of the form VALUE.SIG / PAYLOAD.SIG */
    CEF_SIGN_BAD,           /* no secret gives this signature */
    CEF_SIGN_EXPIRED,       /* link token past its expiry */
    CEF_SIGN_ERROR          /* OpenSSL failed */
} cef_sign_rc_t;

typedef struct cef_signer_s  cef_signer_t;


/*
 * Read a signing secret file: one secret per line; empty lines and
 * trailing "\r" are ignored.
 *
 * @param[in]  path    the file
 * @param[out] err     a message on failure (may be NULL)
 * @param[in]  errlen  bytes at err
 * @return a signer, or NULL if the file is missing, unreadable, has no
 *         secret or more than CEF_SIGN_MAX_SECRETS.  Free with
 *         cef_signer_free().
 */
cef_signer_t *cef_signer_create_from_file(const char *path, char *err,
    size_t errlen);

/* The same from secrets in memory. */
cef_signer_t *cef_signer_create(const cef_span_t *secrets, size_t n,
    char *err, size_t errlen);

void cef_signer_free(cef_signer_t *s);

/* The number of secrets that verify. */
size_t cef_signer_count(const cef_signer_t *s);

/*
 * Sign TYPE ":" VALUE with the first secret.
 *
 * @param[out] sig  CEF_SIGN_SIG_LEN characters, no NUL
 * @return CEF_SIGN_OK or CEF_SIGN_ERROR.
 */
cef_sign_rc_t cef_sign(cef_signer_t *s, cef_span_t type, cef_span_t value,
    char sig[CEF_SIGN_SIG_LEN]);

/*
 * Verify a signed key "VALUE.SIG" of the given type.
 *
 * @param[in]  signed_value  the whole cookie or header value
 * @param[out] value         on CEF_SIGN_OK, the VALUE part (points into
 *                           signed_value)
 * @return CEF_SIGN_OK, CEF_SIGN_MALFORMED, CEF_SIGN_BAD or CEF_SIGN_ERROR.
 */
cef_sign_rc_t cef_sign_verify(cef_signer_t *s, cef_span_t type,
    cef_span_t signed_value, cef_span_t *value);


typedef struct {
    cef_span_t  type;      /* point into the caller's buffer */
    cef_span_t  value;
    int64_t     expires;   /* unix seconds */
} cef_link_t;

/*
 * Make a link token.
 *
 * @param[out] out     at least CEF_LINK_TOKEN_MAX characters
 * @param[out] outlen  characters written (no NUL)
 * @return CEF_SIGN_OK, CEF_SIGN_MALFORMED (empty or overlong type or
 *         value, or a type holding ':') or CEF_SIGN_ERROR.
 */
cef_sign_rc_t cef_link_token_make(cef_signer_t *s, cef_span_t type,
    cef_span_t value, int64_t expires, char *out, size_t *outlen);

/*
 * Check a link token and decode it.
 *
 * @param[in]  token   the token
 * @param[in]  now     the current time, unix seconds
 * @param[out] buf     scratch for the decoded payload, at least
 *                     CEF_LINK_TOKEN_MAX bytes; link's spans point into it
 * @param[out] link    the identity, on CEF_SIGN_OK
 * @return CEF_SIGN_OK, CEF_SIGN_MALFORMED, CEF_SIGN_BAD, CEF_SIGN_EXPIRED
 *         or CEF_SIGN_ERROR.  The signature is checked before the expiry,
 *         so CEF_SIGN_EXPIRED means a genuine but old token.
 */
cef_sign_rc_t cef_link_token_parse(cef_signer_t *s, cef_span_t token,
    int64_t now, uint8_t *buf, cef_link_t *link);


#endif /* CEF_SIGN_H */
