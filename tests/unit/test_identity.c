/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_identity: the keyed hash equals HMAC-SHA256 truncated; secret files.
 * cef_digest: SHA-256 of the absorbed prefix and a message.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cef_digest.h"
#include "cef_identity.h"


static void
write_file(const char *path, const char *data, size_t len)
{
    FILE  *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}


static void
test_hash_is_hmac(void **state)
{
    uint8_t          out[16], ref[32], key[100], msg[200];
    unsigned int     n, mlen;
    char             err[256];
    cef_identity_t  *id;
    size_t           klen;

    (void) state;

    for (klen = 1; klen <= sizeof(key); klen += 33) {
        memset(key, 'k', klen);
        id = cef_identity_create(key, klen, err, sizeof(err));
        assert_non_null(id);

        assert_int_equal(cef_identity_hash(id, "email", 5, "a@b.example", 11,
                                           out), 0);
        HMAC(EVP_sha256(), key, (int) klen,
             (const unsigned char *) "email:a@b.example", 17, ref, &n);
        assert_memory_equal(out, ref, 16);

        /* profile ids: empty type */
        assert_int_equal(cef_identity_hash(id, "", 0, "p1", 2, out), 0);
        HMAC(EVP_sha256(), key, (int) klen, (const unsigned char *) ":p1", 3,
             ref, &n);
        assert_memory_equal(out, ref, 16);

        /* a whole message (cef_sign's), of one and of several blocks */
        for (n = 0; n < sizeof(msg); n += 37) {
            memset(msg, (int) n, sizeof(msg));
            assert_int_equal(cef_identity_hmac(id, msg, n, out), 0);
            HMAC(EVP_sha256(), key, (int) klen, msg, n, ref, &mlen);
            assert_memory_equal(out, ref, 16);
        }

        cef_identity_free(id);
    }

    assert_null(cef_identity_create((const uint8_t *) "", 0, err,
                                    sizeof(err)));
}


static void
test_secret_files(void **state)
{
    char             dir[] = "/tmp/cef-test-identity-XXXXXX", path[256],
                     err[256];
    uint8_t          buf[CEF_IDENTITY_SECRET_MAX], a[16], b[16], fa[8], fb[8];
    size_t           len;
    cef_identity_t  *x, *y;

    (void) state;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/secret", dir);

    write_file(path, "s3cret\n", 7);
    assert_int_equal(cef_identity_read_secret(path, buf, sizeof(buf), &len,
                                              err, sizeof(err)), 0);
    assert_int_equal(len, 6);
    assert_memory_equal(buf, "s3cret", 6);

    write_file(path, "s3cret\r\n", 8);
    assert_int_equal(cef_identity_read_secret(path, buf, sizeof(buf), &len,
                                              err, sizeof(err)), 0);
    assert_int_equal(len, 6);

    /* the file with and without the newline gives the same hashes */
    x = cef_identity_create_from_file(path, err, sizeof(err));
    write_file(path, "s3cret", 6);
    y = cef_identity_create_from_file(path, err, sizeof(err));
    assert_non_null(x);
    assert_non_null(y);
    cef_identity_hash(x, "t", 1, "v", 1, a);
    cef_identity_hash(y, "t", 1, "v", 1, b);
    assert_memory_equal(a, b, 16);
    cef_identity_fingerprint(x, fa);
    cef_identity_fingerprint(y, fb);
    assert_memory_equal(fa, fb, 8);
    cef_identity_free(x);
    cef_identity_free(y);

    write_file(path, "\n", 1);
    assert_int_equal(cef_identity_read_secret(path, buf, sizeof(buf), &len,
                                              err, sizeof(err)), -1);
    assert_non_null(strstr(err, "empty"));

    write_file(path, "", 0);
    assert_null(cef_identity_create_from_file(path, err, sizeof(err)));
    assert_non_null(strstr(err, "empty"));

    unlink(path);
    assert_null(cef_identity_create_from_file(path, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot open"));

    rmdir(dir);
}


/* every split of prefix and message, every length around a block edge */
static void
test_digest_is_sha256_of_prefix_and_message(void **state)
{
    uint8_t        data[300], got[CEF_DIGEST_LEN], want[EVP_MAX_MD_SIZE];
    size_t         p, m;
    unsigned int   n;
    cef_digest_t  *d;

    (void) state;

    for (p = 0; p < sizeof(data); p++) {
        data[p] = (uint8_t) (p * 31 + 7);
    }

    for (p = 0; p <= 130; p += 13) {
        d = cef_digest_create(data, p);
        assert_non_null(d);

        for (m = 0; p + m <= sizeof(data); m += 17) {
            assert_int_equal(cef_digest(d, data + p, m, got), 0);
            assert_int_equal(EVP_Digest(data, p + m, want, &n, EVP_sha256(),
                                        NULL), 1);
            assert_int_equal(n, CEF_DIGEST_LEN);
            assert_memory_equal(got, want, CEF_DIGEST_LEN);

            /* the state is copied: the same message, the same digest */
            assert_int_equal(cef_digest(d, data + p, m, want), 0);
            assert_memory_equal(got, want, CEF_DIGEST_LEN);
        }

        cef_digest_free(d);
    }
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_is_hmac),
        cmocka_unit_test(test_secret_files),
        cmocka_unit_test(test_digest_is_sha256_of_prefix_and_message),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
