/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * libFuzzer target: what a visitor sends to identify themselves — signed
 * keys (cef_sign_verify, cef_sign_verify_legacy), plugin-state cookies
 * (cef_sign_verify_state), link tokens (cef_link_token_parse), visitor ids
 * (cef_visitor_id_valid) and the base64url they are made of.
 *
 * Byte 0 picks the secret set and the key type; the rest is the value as
 * a cookie, header or query argument would carry it.  Invariants:
 *   - base64url: a decoded input re-encodes to itself (one encoding per
 *     byte string), and any bytes round-trip through encode/decode;
 *   - a visitor id is valid only if it is 22 base64url characters that
 *     decode to 16 bytes;
 *   - verify/parse return a defined code; OK only for what the signer
 *     itself produced (the input signed here verifies, under every secret
 *     set that holds the signing secret, and with no other), and the spans
 *     returned lie inside the input or the scratch buffer;
 *   - what is signed for one purpose verifies for no other: the input
 *     signed as a key is no state and no token, signed as a state no key;
 *   - a token made from the input's store key parses back to the same
 *     identity, and is neither a key nor a state.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cef_base64url.h"
#include "cef_identity.h"
#include "cef_sign.h"
#include "cef_visitor.h"
#include "fuzz_common.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static cef_signer_t    *signers[3];
static cef_identity_t  *store;


static void
init_signers(void)
{
    char        err[256];
    cef_span_t  a[] = { cef_span_lit("first-secret"),
                        cef_span_lit("old-secret") };
    cef_span_t  b[] = { cef_span_lit("old-secret") };
    cef_span_t  c[] = { cef_span_lit("unrelated") };

    signers[0] = cef_signer_create(a, 2, err, sizeof(err));
    signers[1] = cef_signer_create(b, 1, err, sizeof(err));
    signers[2] = cef_signer_create(c, 1, err, sizeof(err));
    store = cef_identity_create((const uint8_t *) "store-secret", 12, err,
                                sizeof(err));
    CHECK(signers[0] && signers[1] && signers[2] && store);
}


static int
inside(cef_span_t s, const void *base, size_t len)
{
    const char  *b = base;

    return s.data >= b && s.data + s.len <= b + len;
}


static void
check_base64url(const uint8_t *p, size_t len)
{
    uint8_t  out[4096 * 3 / 4 + 8];
    char     enc[4096 + 8];
    size_t   n, m;

    if (len > 4096) {
        return;
    }

    if (cef_base64url_decode((const char *) p, len, out, &n) == 0) {
        CHECK(n <= cef_base64url_decoded_max(len));
        m = cef_base64url_encode(out, n, enc);
        CHECK(m == len && memcmp(enc, p, len) == 0);
    }

    if (len <= 3 * 1024) {
        m = cef_base64url_encode(p, len, enc);
        CHECK(m == cef_base64url_encoded_len(len));
        CHECK(cef_base64url_decode(enc, m, out, &n) == 0);
        CHECK(n == len && memcmp(out, p, len) == 0);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const cef_span_t  types[] = { cef_span_lit("customer"),
                                         cef_span_lit("email"),
                                         cef_span_lit("a:b"),
                                         { "", 0 } };
    int                      v;
    size_t                   len, tlen;
    uint8_t                  mode, buf[CEF_LINK_TOKEN_MAX + 16];
    uint8_t                  raw[32];
    char                     sig[CEF_SIGN_SIG_LEN];
    char                     tok[CEF_LINK_TOKEN_MAX + 1];
    char                    *key;
    cef_span_t               in, type, val;
    cef_link_t               link;
    cef_sign_rc_t            rc;
    cef_signer_t            *s;

    if (signers[0] == NULL) {
        init_signers();
    }

    if (size < 1 || size > 8192) {
        return 0;
    }

    mode = data[0];
    in.data = (const char *) data + 1;
    in.len = size - 1;
    s = signers[mode % 3];
    type = types[(mode >> 2) % 4];

    check_base64url(data + 1, size - 1);

    v = cef_visitor_id_valid(in.data, in.len);
    CHECK(v == 0 || v == 1);
    if (v) {
        CHECK(in.len == CEF_VISITOR_ID_LEN);
        CHECK(cef_base64url_decode(in.data, in.len, raw, &len) == 0
              && len == 16);
    }

    /* the input as a signed key, an old signed key, a plugin state */

    rc = cef_sign_verify(s, type, in, &val);
    CHECK(rc == CEF_SIGN_OK || rc == CEF_SIGN_MALFORMED
          || rc == CEF_SIGN_BAD);
    if (rc == CEF_SIGN_OK) {
        CHECK(inside(val, in.data, in.len));
    }

    rc = cef_sign_verify_legacy(s, type, in, &val);
    CHECK(rc == CEF_SIGN_OK || rc == CEF_SIGN_MALFORMED
          || rc == CEF_SIGN_BAD);
    if (rc == CEF_SIGN_OK) {
        CHECK(inside(val, in.data, in.len));
    }

    rc = cef_sign_verify_state(s, type, in, &val);
    CHECK(rc == CEF_SIGN_OK || rc == CEF_SIGN_MALFORMED
          || rc == CEF_SIGN_BAD);
    if (rc == CEF_SIGN_OK) {
        CHECK(inside(val, in.data, in.len));
    }

    /* the input as a link token */

    memset(&link, 0, sizeof(link));
    rc = cef_link_token_parse(s, in, 1767225600, buf, &link);
    CHECK(rc == CEF_SIGN_OK || rc == CEF_SIGN_MALFORMED
          || rc == CEF_SIGN_BAD || rc == CEF_SIGN_EXPIRED);
    if (rc == CEF_SIGN_OK) {
        CHECK(inside(link.type, buf, sizeof(buf)));
        CHECK(link.key >= buf
              && link.key + CEF_IDENTITY_HASH_LEN <= buf + sizeof(buf));
        CHECK(link.expires >= 1767225600);
    }

    /* the input as a value to sign: what is signed verifies, for its own
       purpose only */

    if (in.len > 0 && in.len <= CEF_SIGN_MAX_VALUE && type.len > 0) {
        CHECK(cef_sign(s, type, in, sig) == CEF_SIGN_OK);

        key = malloc(in.len + 1 + CEF_SIGN_SIG_LEN);
        CHECK(key != NULL);
        memcpy(key, in.data, in.len);
        key[in.len] = '.';
        memcpy(key + in.len + 1, sig, CEF_SIGN_SIG_LEN);

        val.data = key;
        val.len = in.len + 1 + CEF_SIGN_SIG_LEN;
        CHECK(cef_sign_verify(s, type, val, &val) == CEF_SIGN_OK);
        CHECK(val.len == in.len && memcmp(val.data, in.data, in.len) == 0);

        /* signers[0] signs with first-secret, which no other set holds;
           signers[1] signs with old-secret, which signers[0] holds too */
        val.data = key;
        val.len = in.len + 1 + CEF_SIGN_SIG_LEN;
        CHECK(cef_sign_verify(signers[2], type, val, &val)
              == (s == signers[2] ? CEF_SIGN_OK : CEF_SIGN_BAD));
        val.data = key;
        val.len = in.len + 1 + CEF_SIGN_SIG_LEN;
        CHECK(cef_sign_verify(signers[0], type, val, &val)
              == (s == signers[2] ? CEF_SIGN_BAD : CEF_SIGN_OK));

        /* a key is no state, no old key, no token */
        val.data = key;
        val.len = in.len + 1 + CEF_SIGN_SIG_LEN;
        CHECK(cef_sign_verify_state(s, type, val, &val) == CEF_SIGN_BAD);
        CHECK(cef_sign_verify_legacy(s, type, val, &val) == CEF_SIGN_BAD);
        CHECK(cef_link_token_parse(s, val, 0, buf, &link) != CEF_SIGN_OK);

        /* a state is no key */
        CHECK(cef_sign_state(s, type, in, sig) == CEF_SIGN_OK);
        memcpy(key + in.len + 1, sig, CEF_SIGN_SIG_LEN);
        CHECK(cef_sign_verify_state(s, type, val, &val) == CEF_SIGN_OK);
        val.data = key;
        val.len = in.len + 1 + CEF_SIGN_SIG_LEN;
        CHECK(cef_sign_verify(s, type, val, &val) == CEF_SIGN_BAD);

        free(key);

        /* and a link token of the input's store key parses back, and is
           neither a key nor a state */

        CHECK(cef_identity_hash(store, type.data, type.len, in.data, in.len,
                                raw) == 0);
        rc = cef_link_token_make(s, type, raw, 4102444800, tok, &tlen);
        if (rc == CEF_SIGN_OK) {
            CHECK(tlen <= CEF_LINK_TOKEN_MAX);
            val.data = tok;
            val.len = tlen;
            CHECK(cef_link_token_parse(s, val, 1767225600, buf, &link)
                  == CEF_SIGN_OK);
            CHECK(link.type.len == type.len
                  && memcmp(link.type.data, type.data, type.len) == 0);
            CHECK(memcmp(link.key, raw, CEF_IDENTITY_HASH_LEN) == 0);
            CHECK(link.expires == 4102444800);
            CHECK(cef_link_token_parse(s, val, 4102444801, buf, &link)
                  == CEF_SIGN_EXPIRED);
            CHECK(cef_sign_verify(s, type, val, &val) != CEF_SIGN_OK);
            val.data = tok;
            val.len = tlen;
            CHECK(cef_sign_verify_state(s, type, val, &val) != CEF_SIGN_OK);
        } else {
            CHECK(rc == CEF_SIGN_MALFORMED && type.data[1] == ':');
        }
    }

    return 0;
}
