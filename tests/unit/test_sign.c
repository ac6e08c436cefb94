/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * base64url, signed keys, plugin states, link tokens (each signing its own
 * message: none verifies as another) and visitor ids.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/hmac.h>

#include "cef_base64url.h"
#include "cef_identity.h"
#include "cef_sign.h"
#include "cef_visitor.h"
#include "cef_cookie.h"


#define S(lit)  cef_span_lit(lit)


static cef_signer_t *
signer_of(const char *a, const char *b)
{
    cef_span_t  secrets[2];

    secrets[0] = (cef_span_t) { a, strlen(a) };
    if (b) {
        secrets[1] = (cef_span_t) { b, strlen(b) };
    }

    return cef_signer_create(secrets, b ? 2 : 1, NULL, 0);
}


/* base64url of 16 bytes, by hand */
static void
reference_b64(const unsigned char mac[16], char out[23])
{
    static const char  abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int            i, j;
    uint32_t       acc;

    for (i = 0, j = 0; i < 15; i += 3) {
        acc = (uint32_t) mac[i] << 16 | (uint32_t) mac[i + 1] << 8
              | mac[i + 2];
        out[j++] = abc[(acc >> 18) & 63];
        out[j++] = abc[(acc >> 12) & 63];
        out[j++] = abc[(acc >> 6) & 63];
        out[j++] = abc[acc & 63];
    }
    out[j++] = abc[mac[15] >> 2];
    out[j++] = abc[(mac[15] & 3) << 4];
    out[j] = '\0';
}


/* append LP(x): two length bytes, big-endian, then x */
static size_t
lp(unsigned char *msg, size_t at, const void *x, size_t len)
{
    msg[at] = (unsigned char) (len >> 8);
    msg[at + 1] = (unsigned char) len;
    memcpy(msg + at + 2, x, len);
    return at + 2 + len;
}


/* the reference: OpenSSL's one-shot HMAC of LP(label) LP(a) LP(b) */
static void
reference_sig(const char *secret, const char *label, const char *a,
    const char *b, char out[23])
{
    size_t         n;
    unsigned int   len;
    unsigned char  msg[1024], mac[32];

    n = lp(msg, 0, label, strlen(label));
    n = lp(msg, n, a, strlen(a));
    n = lp(msg, n, b, strlen(b));

    HMAC(EVP_sha256(), secret, (int) strlen(secret), msg, n, mac, &len);
    reference_b64(mac, out);
}


/* the format before purpose labels: HMAC of TYPE ":" VALUE */
static void
legacy_sig(const char *secret, const char *msg, char out[23])
{
    unsigned int   len;
    unsigned char  mac[32];

    HMAC(EVP_sha256(), secret, (int) strlen(secret),
         (const unsigned char *) msg, strlen(msg), mac, &len);
    reference_b64(mac, out);
}


static void
test_base64url_round_trip(void **state)
{
    size_t   n, len, out;
    char     enc[64];
    uint8_t  in[40], dec[64];

    (void) state;

    for (n = 0; n < sizeof(in); n++) {
        in[n] = (uint8_t) (n * 37 + 250);
    }

    for (n = 0; n <= sizeof(in); n++) {
        len = cef_base64url_encode(in, n, enc);
        assert_int_equal(len, cef_base64url_encoded_len(n));
        assert_null(memchr(enc, '=', len));
        assert_null(memchr(enc, '+', len));
        assert_null(memchr(enc, '/', len));
        assert_int_equal(cef_base64url_decode(enc, len, dec, &out), 0);
        assert_int_equal(out, n);
        assert_memory_equal(dec, in, n);
    }
}


/* the reference: OpenSSL's base64 with the alphabet translated */
static int
reference_decode(const char *in, size_t len, uint8_t *out, size_t *outlen)
{
    int            n, v;
    size_t         i, rest, full;
    unsigned char  buf[64 + 4];
    const char    *abc, *hit;

    abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    if (len > 64 || len % 4 == 1) {
        return -1;
    }

    for (i = 0; i < len; i++) {
        if (in[i] == '\0' || strchr(abc, in[i]) == NULL) {
            return -1;
        }
        buf[i] = (unsigned char) (in[i] == '-' ? '+'
                                  : in[i] == '_' ? '/' : in[i]);
    }

    rest = len % 4;

    if (rest) {
        hit = strchr(abc, in[len - 1]);
        v = (int) (hit - abc);
        if (v & (rest == 2 ? 0x0f : 0x03)) {
            return -1;
        }
        for (i = rest; i < 4; i++) {
            buf[len + i - rest] = '=';
        }
    }

    full = len + (rest ? 4 - rest : 0);
    if (full == 0) {
        *outlen = 0;
        return 0;
    }

    n = EVP_DecodeBlock(out, buf, (int) full);
    if (n < 0) {
        return -1;
    }

    *outlen = (size_t) n - (rest ? 4 - rest : 0);
    return 0;
}


/* every string of up to 3 characters from a set with each kind of byte,
   and random longer ones, decode as OpenSSL's base64 does */
static void
test_base64url_matches_openssl(void **state)
{
    int            r1, r2;
    size_t         len, i, k, n1, n2, nset;
    char           in[64];
    uint8_t        o1[64], o2[64];
    unsigned int   seed;
    static const char  set[] =
        "ABCDQRYZabcdwxyz0189-_=+/ .~\xff\x80\x01\x7f@[`{:";

    (void) state;

    nset = sizeof(set);     /* with the NUL */

    for (k = 0; k < nset * nset * nset + nset * nset + nset + 1; k++) {
        len = k == 0 ? 0 : k <= nset ? 1 : k <= nset + nset * nset ? 2 : 3;
        for (i = 0, n1 = k; i < len; i++, n1 /= nset) {
            in[i] = set[n1 % nset];
        }

        r1 = cef_base64url_decode(in, len, o1, &n1);
        r2 = reference_decode(in, len, o2, &n2);
        assert_int_equal(r1, r2);
        if (r1 == 0) {
            assert_int_equal(n1, n2);
            assert_memory_equal(o1, o2, n1);
        }
    }

    seed = 9;

    for (k = 0; k < 200000; k++) {
        len = (size_t) (rand_r(&seed) % 41);
        for (i = 0; i < len; i++) {
            /* mostly the alphabet, now and then anything */
            in[i] = rand_r(&seed) % 64
                    ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                      "0123456789-_"[rand_r(&seed) % 64]
                    : (char) (rand_r(&seed) & 0xff);
        }

        r1 = cef_base64url_decode(in, len, o1, &n1);
        r2 = reference_decode(in, len, o2, &n2);
        assert_int_equal(r1, r2);
        if (r1 == 0) {
            assert_int_equal(n1, n2);
            assert_memory_equal(o1, o2, n1);
        }
    }
}


static void
test_base64url_rejects_non_canonical(void **state)
{
    size_t   n;
    uint8_t  out[16];

    (void) state;

    assert_int_equal(cef_base64url_decode("_-8", 3, out, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(out[0], 0xff);
    assert_int_equal(out[1], 0xef);

    assert_int_equal(cef_base64url_decode("QQ==", 4, out, &n), -1);
    assert_int_equal(cef_base64url_decode("Q+", 2, out, &n), -1);
    assert_int_equal(cef_base64url_decode("Q/", 2, out, &n), -1);
    assert_int_equal(cef_base64url_decode("Q Q", 3, out, &n), -1);
    assert_int_equal(cef_base64url_decode("QR", 2, out, &n), -1);  /* bits */
    assert_int_equal(cef_base64url_decode("Q", 1, out, &n), -1);
    assert_int_equal(cef_base64url_decode("Q\0", 2, out, &n), -1);
    assert_int_equal(cef_base64url_decode("QQ", 2, out, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], 'A');
}


static void
test_sign_matches_reference_hmac(void **state)
{
    char           sig[CEF_SIGN_SIG_LEN], want[23];
    cef_signer_t  *s;

    (void) state;

    s = signer_of("topsecret", NULL);
    assert_non_null(s);

    assert_int_equal(cef_sign(s, S("customer"), S("1001"), sig), CEF_SIGN_OK);
    reference_sig("topsecret", "cef-signed-key-v2", "customer", "1001", want);
    assert_memory_equal(sig, want, CEF_SIGN_SIG_LEN);

    assert_int_equal(cef_sign_state(s, S("freqcap"), S("winback:1:17"), sig),
                     CEF_SIGN_OK);
    reference_sig("topsecret", "cef-plugin-state-v2", "freqcap",
                  "winback:1:17", want);
    assert_memory_equal(sig, want, CEF_SIGN_SIG_LEN);

    /* empty and overlong names and values are not signed */
    assert_int_equal(cef_sign(s, S(""), S("1001"), sig), CEF_SIGN_MALFORMED);
    assert_int_equal(cef_sign(s, S("customer"), S(""), sig),
                     CEF_SIGN_MALFORMED);

    cef_signer_free(s);
}


static void
test_verify_signed_key(void **state)
{
    char           buf[128], sig[CEF_SIGN_SIG_LEN];
    cef_span_t     v, in;
    cef_signer_t  *s, *other;

    (void) state;

    s = signer_of("new", "old");
    other = signer_of("old", NULL);

    /* signed with the retired secret still in the file: accepted */
    assert_int_equal(cef_sign(other, S("customer"), S("1001"), sig),
                     CEF_SIGN_OK);
    snprintf(buf, sizeof(buf), "1001.%.*s", CEF_SIGN_SIG_LEN, sig);
    in = (cef_span_t) { buf, strlen(buf) };
    assert_int_equal(cef_sign_verify(s, S("customer"), in, &v), CEF_SIGN_OK);
    assert_int_equal(v.len, 4);
    assert_memory_equal(v.data, "1001", 4);

    /* the same signature is for another type: rejected */
    assert_int_equal(cef_sign_verify(s, S("device"), in, &v), CEF_SIGN_BAD);

    /* another value under the same signature: rejected */
    buf[3] = '2';
    assert_int_equal(cef_sign_verify(s, S("customer"), in, &v), CEF_SIGN_BAD);

    /* the secret was removed from the file: rejected */
    buf[3] = '1';
    cef_signer_free(other);
    other = signer_of("newest", "new");
    assert_int_equal(cef_sign_verify(other, S("customer"), in, &v),
                     CEF_SIGN_BAD);

    /* malformed */
    assert_int_equal(cef_sign_verify(s, S("customer"), S("1001"), &v),
                     CEF_SIGN_MALFORMED);
    assert_int_equal(cef_sign_verify(s, S("customer"),
                                     S("1001.AAAAAAAAAAAAAAAAAAAAA"), &v),
                     CEF_SIGN_MALFORMED);
    assert_int_equal(cef_sign_verify(s, S("customer"),
                                     S("1001.AAAAAAAAAAAAAAAAAAAA=="), &v),
                     CEF_SIGN_MALFORMED);
    assert_int_equal(cef_sign_verify(s, S("customer"),
                                     S(".AAAAAAAAAAAAAAAAAAAAAA"), &v),
                     CEF_SIGN_MALFORMED);
    assert_int_equal(cef_sign_verify(s, S("customer"),
                                     S("1001.AAAAAAAAAAAAAAAAAAAAAA"), &v),
                     CEF_SIGN_BAD);

    cef_signer_free(s);
    cef_signer_free(other);
}


/* the store key of (type, value) under the store secret "store" */
static void
store_key(const char *type, const char *value,
    uint8_t key[CEF_IDENTITY_HASH_LEN])
{
    cef_identity_t  *id;

    id = cef_identity_create((const uint8_t *) "store", 5, NULL, 0);
    assert_non_null(id);
    assert_int_equal(cef_identity_hash(id, type, strlen(type), value,
                                       strlen(value), key), 0);
    cef_identity_free(id);
}


static void
test_link_token(void **state)
{
    char           tok[CEF_LINK_TOKEN_MAX + 1];
    size_t         len, n, at;
    uint8_t        buf[CEF_LINK_TOKEN_MAX], key[CEF_IDENTITY_HASH_LEN];
    uint8_t        raw[CEF_LINK_TOKEN_MAX], want[64];
    unsigned int   mlen;
    unsigned char  msg[256], mac[32];
    cef_link_t     link;
    cef_signer_t  *s;
    static const uint8_t  expires[8] = { 0, 0, 0, 0, 0x77, 0x35, 0x94, 0 };

    (void) state;

    s = signer_of("k1", NULL);
    store_key("email", "ann@example.com", key);

    assert_int_equal(cef_link_token_make(s, S("email"), key, 2000000000, tok,
                                         &len),
                     CEF_SIGN_OK);
    assert_true(len <= CEF_LINK_TOKEN_MAX);
    assert_int_equal(cef_link_token_parse(s, (cef_span_t) { tok, len },
                                          1900000000, buf, &link),
                     CEF_SIGN_OK);
    assert_int_equal(link.type.len, 5);
    assert_memory_equal(link.type.data, "email", 5);
    assert_memory_equal(link.key, key, CEF_IDENTITY_HASH_LEN);
    assert_int_equal(link.expires, 2000000000);

    /* the documented bytes: LP(TYPE) LP(KEY) LP(EXPIRES) MAC, and the MAC
       over LP("cef-link-token-v2") and them; no address anywhere */
    assert_int_equal(cef_base64url_decode(tok, len, raw, &n), 0);
    at = lp(want, 0, "email", 5);
    at = lp(want, at, key, CEF_IDENTITY_HASH_LEN);
    at = lp(want, at, expires, 8);
    assert_int_equal(n, at + 16);
    assert_memory_equal(raw, want, at);
    lp(msg, 0, "cef-link-token-v2", 17);
    memcpy(msg + 19, want, at);
    HMAC(EVP_sha256(), "k1", 2, msg, 19 + at, mac, &mlen);
    assert_memory_equal(raw + at, mac, 16);
    tok[len] = '\0';
    assert_null(strstr(tok, "ann"));

    /* expired */
    assert_int_equal(cef_link_token_parse(s, (cef_span_t) { tok, len },
                                          2000000000, buf, &link),
                     CEF_SIGN_EXPIRED);

    /* tampered type, key or expiry: the signature no longer matches */
    for (at = 0; at < n - 16; at++) {
        raw[at] ^= 0x01;
        len = cef_base64url_encode(raw, n, tok);
        assert_true(cef_link_token_parse(s, (cef_span_t) { tok, len },
                                         1900000000, buf, &link)
                    != CEF_SIGN_OK);
        raw[at] ^= 0x01;
    }

    /* tampered signature */
    raw[n - 1] ^= 0x80;
    len = cef_base64url_encode(raw, n, tok);
    assert_int_equal(cef_link_token_parse(s, (cef_span_t) { tok, len },
                                          1900000000, buf, &link),
                     CEF_SIGN_BAD);

    /* another secret */
    cef_signer_free(s);
    s = signer_of("k2", NULL);
    raw[n - 1] ^= 0x80;
    len = cef_base64url_encode(raw, n, tok);
    assert_int_equal(cef_link_token_parse(s, (cef_span_t) { tok, len },
                                          1900000000, buf, &link),
                     CEF_SIGN_BAD);

    /* truncated, extended, garbage */
    assert_int_equal(cef_link_token_parse(s, (cef_span_t) { tok, len - 1 },
                                          0, buf, &link),
                     CEF_SIGN_MALFORMED);
    raw[n] = 0;
    len = cef_base64url_encode(raw, n + 1, tok);
    assert_int_equal(cef_link_token_parse(s, (cef_span_t) { tok, len },
                                          0, buf, &link),
                     CEF_SIGN_MALFORMED);
    assert_int_equal(cef_link_token_parse(s, S("garbage"), 0, buf, &link),
                     CEF_SIGN_MALFORMED);

    /* types as cef_key takes them */
    assert_int_equal(cef_link_token_make(s, S("a:b"), key, 1, tok, &len),
                     CEF_SIGN_MALFORMED);
    assert_int_equal(cef_link_token_make(s, S("Email"), key, 1, tok, &len),
                     CEF_SIGN_MALFORMED);
    assert_int_equal(cef_link_token_make(s, S(""), key, 1, tok, &len),
                     CEF_SIGN_MALFORMED);

    cef_signer_free(s);
}


/*
 * Every signed value, presented where another kind is expected, fails:
 * keys as tokens and states, tokens as keys and states, states as keys
 * and tokens, with the names that could line up ("freqcap" as both a key
 * type and a plugin, "cef_freqcap" the old state type) and the bytes
 * moved between the two shapes (VALUE.SIG and one base64url blob).
 */
static void
test_cross_use_fails(void **state)
{
    static const cef_span_t  names[] = { cef_span_lit("email"),
                                         cef_span_lit("freqcap"),
                                         cef_span_lit("cef_freqcap") };
    char           sig[CEF_SIGN_SIG_LEN], tok[CEF_LINK_TOKEN_MAX];
    char           forged[8][CEF_LINK_TOKEN_MAX + 600];
    size_t         i, j, k, len, n, nf;
    uint8_t        buf[CEF_LINK_TOKEN_MAX], key[CEF_IDENTITY_HASH_LEN];
    uint8_t        raw[CEF_LINK_TOKEN_MAX + 16], mac[16];
    cef_span_t     v;
    cef_link_t     link;
    cef_signer_t  *s;
    const char    *value = "greta@example.com:4102444800";

    (void) state;

    s = signer_of("secret", NULL);
    store_key("email", "greta@example.com", key);

    for (i = 0; i < 3; i++) {
        nf = 0;

        /* 0: a signed key of this name and value, 1: its MAC on a token's
           body, 2: in the old token shape; 3-4: the same for a state;
           5: a genuine token, 6-7: its MAC in a key's shape */
        assert_int_equal(cef_sign(s, names[i],
                                  (cef_span_t) { value, strlen(value) }, sig),
                         CEF_SIGN_OK);
        snprintf(forged[nf++], sizeof(forged[0]), "%s.%.22s", value, sig);
        assert_int_equal(cef_base64url_decode(sig, CEF_SIGN_SIG_LEN, mac, &n),
                         0);

        assert_int_equal(cef_link_token_make(s, names[i], key, 4102444800,
                                             tok, &len),
                         CEF_SIGN_OK);
        assert_int_equal(cef_base64url_decode(tok, len, raw, &n), 0);
        memcpy(raw + n - 16, mac, 16);
        cef_base64url_encode(raw, n, forged[nf]);
        forged[nf++][cef_base64url_encoded_len(n)] = '\0';
        snprintf((char *) raw, sizeof(raw), "email:%s", value);
        k = cef_base64url_encode(raw, strlen((char *) raw), forged[nf]);
        forged[nf][k++] = '.';
        memcpy(forged[nf] + k, sig, CEF_SIGN_SIG_LEN);
        forged[nf++][k + CEF_SIGN_SIG_LEN] = '\0';

        assert_int_equal(cef_sign_state(s, names[i],
                                        (cef_span_t) { value, strlen(value) },
                                        sig),
                         CEF_SIGN_OK);
        snprintf(forged[nf++], sizeof(forged[0]), "%s.%.22s", value, sig);
        assert_int_equal(cef_base64url_decode(sig, CEF_SIGN_SIG_LEN, mac, &n),
                         0);
        assert_int_equal(cef_base64url_decode(tok, len, raw, &n), 0);
        memcpy(raw + n - 16, mac, 16);
        cef_base64url_encode(raw, n, forged[nf]);
        forged[nf++][cef_base64url_encoded_len(n)] = '\0';

        memcpy(forged[nf], tok, len);
        forged[nf++][len] = '\0';
        assert_int_equal(cef_base64url_decode(tok, len, raw, &n), 0);
        k = cef_base64url_encode(raw, n - 16, forged[nf]);
        forged[nf][k++] = '.';
        cef_base64url_encode(raw + n - 16, 16, forged[nf] + k);
        forged[nf++][k + CEF_SIGN_SIG_LEN] = '\0';
        snprintf(forged[nf], sizeof(forged[0]), "%s.", value);
        k = strlen(forged[nf]);
        cef_base64url_encode(raw + n - 16, 16, forged[nf] + k);
        forged[nf++][k + CEF_SIGN_SIG_LEN] = '\0';

        for (j = 0; j < nf; j++) {
            cef_span_t  f = { forged[j], strlen(forged[j]) };

            for (k = 0; k < 3; k++) {
                if (j != 0 || k != i) {
                    assert_int_not_equal(cef_sign_verify(s, names[k], f, &v),
                                         CEF_SIGN_OK);
                }
                if (j != 3 || k != i) {
                    assert_int_not_equal(cef_sign_verify_state(s, names[k], f,
                                                               &v),
                                         CEF_SIGN_OK);
                }
            }

            if (j != 5) {
                assert_int_not_equal(cef_link_token_parse(s, f, 0, buf,
                                                          &link),
                                     CEF_SIGN_OK);
            }
        }

        /* and the genuine ones are genuine */
        assert_int_equal(cef_sign_verify(s, names[i],
                                         (cef_span_t) { forged[0],
                                                        strlen(forged[0]) },
                                         &v),
                         CEF_SIGN_OK);
        assert_int_equal(cef_sign_verify_state(s, names[i],
                                               (cef_span_t) { forged[3],
                                                         strlen(forged[3]) },
                                               &v),
                         CEF_SIGN_OK);
        assert_int_equal(cef_link_token_parse(s, (cef_span_t) { tok, len },
                                              0, buf, &link),
                         CEF_SIGN_OK);
    }

    cef_signer_free(s);
}


/* the format before purpose labels verifies only through the legacy call */
static void
test_legacy_signed_keys(void **state)
{
    char           buf[128], want[23], sig[CEF_SIGN_SIG_LEN];
    cef_span_t     v;
    cef_signer_t  *s;

    (void) state;

    s = signer_of("new", "old");

    legacy_sig("old", "customer:1001", want);
    snprintf(buf, sizeof(buf), "1001.%s", want);
    assert_int_equal(cef_sign_verify(s, S("customer"),
                                     (cef_span_t) { buf, strlen(buf) }, &v),
                     CEF_SIGN_BAD);
    assert_int_equal(cef_sign_verify_legacy(s, S("customer"),
                                            (cef_span_t) { buf, strlen(buf) },
                                            &v),
                     CEF_SIGN_OK);
    assert_int_equal(v.len, 4);
    assert_memory_equal(v.data, "1001", 4);
    assert_int_equal(cef_sign_verify_state(s, S("customer"),
                                           (cef_span_t) { buf, strlen(buf) },
                                           &v),
                     CEF_SIGN_BAD);

    /* a key of today's format is no legacy key */
    assert_int_equal(cef_sign(s, S("customer"), S("1001"), sig), CEF_SIGN_OK);
    snprintf(buf, sizeof(buf), "1001.%.22s", sig);
    assert_int_equal(cef_sign_verify_legacy(s, S("customer"),
                                            (cef_span_t) { buf, strlen(buf) },
                                            &v),
                     CEF_SIGN_BAD);

    cef_signer_free(s);
}


static void
test_signer_from_file(void **state)
{
    int            fd;
    char           path[] = "/tmp/cef-sign-XXXXXX", err[256];
    cef_signer_t  *s;

    (void) state;

    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "first\r\n\nsecond\nthird", 20), 20);
    close(fd);

    s = cef_signer_create_from_file(path, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(cef_signer_count(s), 3);
    cef_signer_free(s);

    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "\n\n", 2), 2);
    close(fd);
    assert_null(cef_signer_create_from_file(path, err, sizeof(err)));
    assert_non_null(strstr(err, "empty"));

    unlink(path);
    assert_null(cef_signer_create_from_file(path, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot open"));
}


static void
test_visitor_ids(void **state)
{
    char  a[CEF_VISITOR_ID_LEN], b[CEF_VISITOR_ID_LEN];

    (void) state;

    assert_int_equal(cef_visitor_id_new(a), 0);
    assert_int_equal(cef_visitor_id_new(b), 0);
    assert_true(cef_visitor_id_valid(a, sizeof(a)));
    assert_memory_not_equal(a, b, sizeof(a));

    assert_false(cef_visitor_id_valid(a, sizeof(a) - 1));
    assert_false(cef_visitor_id_valid("AAAAAAAAAAAAAAAAAAAAAB", 22));
    assert_true(cef_visitor_id_valid("AAAAAAAAAAAAAAAAAAAAAQ", 22));
    assert_false(cef_visitor_id_valid("AAAAAAAAAAAAAAAAAAAA+Q", 22));
    assert_false(cef_visitor_id_valid("AAAAAAAAAAAAAAAAAAAA\0Q", 22));
}



/* nginx 1.22's ngx_http_parse_multi_header_lines() for one header line,
   transcribed: h is NUL-terminated after len bytes, as nginx's are */
static int
reference_cookie(const char *h, size_t len, const char *name, size_t nlen,
    cef_span_t *value)
{
    size_t       k;
    const char  *start, *last, *end;
    int          c1, c2;
    char         ch;

    if (nlen > len) {
        return 0;
    }

    start = h;
    end = h + len;

    while (start < end) {

        /* ngx_strncasecmp(start, name, nlen) */
        for (k = 0; k < nlen; k++) {
            c1 = (unsigned char) start[k];
            c2 = (unsigned char) name[k];
            c1 = (c1 >= 'A' && c1 <= 'Z') ? (c1 | 0x20) : c1;
            c2 = (c2 >= 'A' && c2 <= 'Z') ? (c2 | 0x20) : c2;
            if (c1 != c2 || c1 == 0) {
                break;
            }
        }

        if (k != nlen) {
            goto skip;
        }

        for (start += nlen; start < end && *start == ' '; start++) {
            /* void */
        }

        if (start == end || *start++ != '=') {
            goto skip;
        }

        while (start < end && *start == ' ') { start++; }

        for (last = start; last < end && *last != ';'; last++) {
            /* void */
        }

        value->len = (size_t) (last - start);
        value->data = start;

        return 1;

    skip:

        while (start < end) {
            ch = *start++;
            if (ch == ';' || ch == ',') {
                break;
            }
        }

        while (start < end && *start == ' ') { start++; }
    }

    return 0;
}


static void
test_cookie_find_matches_nginx(void **state)
{
    int           r1, r2;
    char          h[40];
    size_t        len, i, k, nlen;
    unsigned int  seed;
    cef_span_t    v1, v2;
    static const char  *names[] = { "a", "ab", "vid", "A", "aB", "b" };
    static const char   abc[] = "aAbBvidx= ;,";

    (void) state;

    assert_int_equal(cef_cookie_find(S("c=1.x; vid=abc; s=2").data, 19,
                                     "vid", 3, &v1), 1);
    assert_int_equal(v1.len, 3);
    assert_memory_equal(v1.data, "abc", 3);
    assert_int_equal(cef_cookie_find("xvid=1", 6, "vid", 3, &v1), 0);
    assert_int_equal(cef_cookie_find("vidx=1; VID = 2 ", 16, "vid", 3, &v1),
                     1);
    assert_int_equal(v1.len, 2);
    assert_memory_equal(v1.data, "2 ", 2);

    seed = 5;

    for (k = 0; k < 300000; k++) {
        len = (size_t) (rand_r(&seed) % 24);
        for (i = 0; i < len; i++) {
            h[i] = abc[rand_r(&seed) % (sizeof(abc) - 1)];
        }
        h[len] = '\0';

        nlen = strlen(names[k % 6]);

        r1 = cef_cookie_find(h, len, names[k % 6], nlen, &v1);
        r2 = reference_cookie(h, len, names[k % 6], nlen, &v2);
        assert_int_equal(r1, r2);
        if (r1) {
            assert_ptr_equal(v1.data, v2.data);
            assert_int_equal(v1.len, v2.len);
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64url_round_trip),
        cmocka_unit_test(test_base64url_rejects_non_canonical),
        cmocka_unit_test(test_base64url_matches_openssl),
        cmocka_unit_test(test_sign_matches_reference_hmac),
        cmocka_unit_test(test_verify_signed_key),
        cmocka_unit_test(test_link_token),
        cmocka_unit_test(test_cross_use_fails),
        cmocka_unit_test(test_legacy_signed_keys),
        cmocka_unit_test(test_signer_from_file),
        cmocka_unit_test(test_visitor_ids),
        cmocka_unit_test(test_cookie_find_matches_nginx),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
