/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Folder lib/identity: who a visitor is (the store's keyed hash of an
 * identity, signed values, visitor ids, cookies).  It includes only
 * lib/core; lib/store, lib/decision, lib/writer, the glue and the tools
 * include it.
 *
 * cef_sign: signed identity keys, link tokens and plugin-state cookies.
 *
 * A signing secret file holds one secret per line.  The first signs; all
 * verify, so a secret can be rotated without a flag day: add the new one as
 * the first line, keep the old one below until every signed value issued
 * with it has expired, then remove it.
 *
 * Each kind of signed value signs its own message: a purpose label and the
 * fields, every one prefixed with its length, so that no signature made for
 * one purpose (or one split of the fields) verifies for another:
 *
 *   LP(x)           len(x) as 2 bytes, big-endian, then x
 *   MAC(m)          HMAC-SHA256(secret, m), first 16 bytes
 *   SIG(m)          base64url(MAC(m)), 22 characters
 *
 *   signed key      VALUE "." SIG(LP("cef-signed-key-v2") LP(TYPE) LP(VALUE))
 *   plugin state    STATE "." SIG(LP("cef-plugin-state-v2") LP(PLUGIN)
 *                                 LP(STATE))
 *   link token      base64url(BODY MAC(LP("cef-link-token-v2") BODY))
 *                   BODY = LP(TYPE) LP(KEY) LP(EXPIRES)
 *
 * A link token names the visitor by KEY, the store's key of the identity
 * (cef_identity.h: HMAC-SHA256(store secret, TYPE ":" VALUE), 16 bytes),
 * never by the value itself: an address in a link does not reach URLs,
 * Referer headers or logs.  EXPIRES is unix seconds, 8 bytes big-endian.
 *
 * Signed keys of the format before these labels (SIG over TYPE ":" VALUE)
 * verify only through cef_sign_verify_legacy(), for a transition the
 * caller bounds.  Signatures are compared in constant time.
 */

#ifndef CEF_SIGN_H
#define CEF_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "cef_value.h"


#define CEF_SIGN_SIG_LEN       22     /* base64url of 16 bytes */
#define CEF_SIGN_MAC_LEN       16
#define CEF_SIGN_MAX_SECRETS   16
#define CEF_SIGN_MAX_TYPE      64     /* longest TYPE or PLUGIN */
#define CEF_SIGN_MAX_VALUE     512    /* longest VALUE or STATE */
#define CEF_LINK_TOKEN_RAW     (2 + CEF_SIGN_MAX_TYPE + 2 + 16 + 2 + 8 \
                                + CEF_SIGN_MAC_LEN)
#define CEF_LINK_TOKEN_MAX     ((CEF_LINK_TOKEN_RAW * 4 + 2) / 3)

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
 * Sign a key: the SIG of "VALUE.SIG" with the first secret.
 *
 * @param[out] sig  CEF_SIGN_SIG_LEN characters, no NUL
 * @return CEF_SIGN_OK, CEF_SIGN_MALFORMED (an empty or overlong type or
 *         value) or CEF_SIGN_ERROR.
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

/*
 * As cef_sign_verify(), for a key signed in the format before purpose
 * labels: SIG over TYPE ":" VALUE.  That message is ambiguous (the same
 * bytes for another split of TYPE and VALUE, and for the old link tokens
 * and plugin states), so the caller allows it only for a bounded
 * transition (cef_signing_secret legacy_keys_until=).
 */
cef_sign_rc_t cef_sign_verify_legacy(cef_signer_t *s, cef_span_t type,
    cef_span_t signed_value, cef_span_t *value);

/*
 * Sign a plugin's state for its cookie: the SIG of "STATE.SIG".
 *
 * @param[in]  plugin  the plugin's name
 * @return as cef_sign().
 */
cef_sign_rc_t cef_sign_state(cef_signer_t *s, cef_span_t plugin,
    cef_span_t state, char sig[CEF_SIGN_SIG_LEN]);

/*
 * Verify a plugin-state cookie "STATE.SIG".
 *
 * @return as cef_sign_verify(); on CEF_SIGN_OK *state is the STATE part.
 */
cef_sign_rc_t cef_sign_verify_state(cef_signer_t *s, cef_span_t plugin,
    cef_span_t signed_state, cef_span_t *state);


typedef struct {
    cef_span_t      type;      /* points into the caller's buffer */
    const uint8_t  *key;       /* the store key, CEF_IDENTITY_HASH_LEN
                                  bytes in the caller's buffer */
    int64_t         expires;   /* unix seconds */
} cef_link_t;

/*
 * Make a link token.
 *
 * @param[in]  type    the key type, [a-z0-9_-], 1 to CEF_SIGN_MAX_TYPE
 * @param[in]  key     the store key of (type, value): cef_identity_hash()
 *                     keyed with the store secret
 * @param[out] out     at least CEF_LINK_TOKEN_MAX characters
 * @param[out] outlen  characters written (no NUL)
 * @return CEF_SIGN_OK, CEF_SIGN_MALFORMED (a bad type) or CEF_SIGN_ERROR.
 */
cef_sign_rc_t cef_link_token_make(cef_signer_t *s, cef_span_t type,
    const uint8_t *key, int64_t expires, char *out, size_t *outlen);

/*
 * Check a link token and decode it.
 *
 * @param[in]  token   the token
 * @param[in]  now     the current time, unix seconds
 * @param[out] buf     scratch for the decoded token, at least
 *                     CEF_LINK_TOKEN_MAX bytes; link points into it
 * @param[out] link    the identity, on CEF_SIGN_OK
 * @return CEF_SIGN_OK, CEF_SIGN_MALFORMED, CEF_SIGN_BAD, CEF_SIGN_EXPIRED
 *         or CEF_SIGN_ERROR.  The signature is checked before the expiry,
 *         so CEF_SIGN_EXPIRED means a genuine but old token.
 */
cef_sign_rc_t cef_link_token_parse(cef_signer_t *s, cef_span_t token,
    int64_t now, uint8_t *buf, cef_link_t *link);


#endif /* CEF_SIGN_H */
