/*
 * Copyright (C) ngx_cef_module developers
 */

#include <string.h>

#include <openssl/evp.h>

#include "cef_base64url.h"


#define CEF_B64_MAX_IN   (3 * 1024)
#define CEF_B64_MAX_OUT  (4 * 1024)


size_t
cef_base64url_encode(const uint8_t *in, size_t len, char *out)
{
    int            n;
    size_t         i, want;
    unsigned char  buf[CEF_B64_MAX_OUT + 1];

    if (len > CEF_B64_MAX_IN) {
        return 0;
    }

    n = EVP_EncodeBlock(buf, in, (int) len);
    want = cef_base64url_encoded_len(len);

    for (i = 0; i < want && i < (size_t) n; i++) {
        switch (buf[i]) {
        case '+':
            out[i] = '-';
            break;
        case '/':
            out[i] = '_';
            break;
        default:
            out[i] = (char) buf[i];
        }
    }

    return want;
}


static int
cef_base64url_value(char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '-') {
        return 62;
    }
    if (c == '_') {
        return 63;
    }
    return -1;
}


int
cef_base64url_decode(const char *in, size_t len, uint8_t *out,
    size_t *outlen)
{
    int            n, last;
    size_t         i, full, rest;
    unsigned char  buf[CEF_B64_MAX_OUT + 4];

    if (len > CEF_B64_MAX_OUT || len % 4 == 1) {
        return -1;
    }

    for (i = 0; i < len; i++) {
        if (cef_base64url_value(in[i]) < 0) {
            return -1;
        }
        buf[i] = (unsigned char) (in[i] == '-' ? '+'
                                  : in[i] == '_' ? '/' : in[i]);
    }

    rest = len % 4;

    if (rest) {
        /* the bits past the last whole byte must be zero */
        last = cef_base64url_value(in[len - 1]);
        if (last & (rest == 2 ? 0x0f : 0x03)) {
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

    /* EVP_DecodeBlock counts the padding as zero bytes */
    *outlen = (size_t) n - (rest ? 4 - rest : 0);

    return 0;
}
