/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Table-driven: a signed key and a visitor id are decoded on every
 * personalised request, and going through OpenSSL's base64 (translate the
 * alphabet into a copy, pad it, EVP_DecodeBlock) cost about six times as
 * many instructions as this.
 */

#include <string.h>

#include "cef_base64url.h"


#define CEF_B64_MAX_IN   (3 * 1024)
#define CEF_B64_MAX_OUT  (4 * 1024)

#define X  0xff

static const char  cef_b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* the value of each base64url character, X for anything else */
static const uint8_t  cef_b64_value[256] = {
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, 62, X, X,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, X, X, X, X, X, X,
    X, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, X, X, X, X, 63,
    X, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X
};

#undef X


size_t
cef_base64url_encode(const uint8_t *in, size_t len, char *out)
{
    size_t    i, j;
    uint32_t  acc;

    if (len > CEF_B64_MAX_IN) {
        return 0;
    }

    for (i = 0, j = 0; i + 3 <= len; i += 3) {
        acc = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8 | in[i + 2];
        out[j++] = cef_b64_alphabet[acc >> 18];
        out[j++] = cef_b64_alphabet[(acc >> 12) & 63];
        out[j++] = cef_b64_alphabet[(acc >> 6) & 63];
        out[j++] = cef_b64_alphabet[acc & 63];
    }

    switch (len - i) {
    case 2:
        acc = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8;
        out[j++] = cef_b64_alphabet[acc >> 18];
        out[j++] = cef_b64_alphabet[(acc >> 12) & 63];
        out[j++] = cef_b64_alphabet[(acc >> 6) & 63];
        break;
    case 1:
        acc = (uint32_t) in[i] << 16;
        out[j++] = cef_b64_alphabet[acc >> 18];
        out[j++] = cef_b64_alphabet[(acc >> 12) & 63];
        break;
    }

    return j;
}


int
cef_base64url_decode(const char *in, size_t len, uint8_t *out,
    size_t *outlen)
{
    size_t          i, j;
    uint32_t        acc, a, b, c, d;
    const uint8_t  *s;

    if (len > CEF_B64_MAX_OUT || len % 4 == 1) {
        return -1;
    }

    s = (const uint8_t *) in;

    for (i = 0, j = 0; i + 4 <= len; i += 4) {
        a = cef_b64_value[s[i]];
        b = cef_b64_value[s[i + 1]];
        c = cef_b64_value[s[i + 2]];
        d = cef_b64_value[s[i + 3]];

        if ((a | b | c | d) & 0x80) {
            return -1;
        }

        acc = a << 18 | b << 12 | c << 6 | d;
        out[j++] = (uint8_t) (acc >> 16);
        out[j++] = (uint8_t) (acc >> 8);
        out[j++] = (uint8_t) acc;
    }

    /* 2 or 3 characters left: 1 or 2 bytes, and the bits past the last
       whole byte must be zero */

    switch (len - i) {
    case 3:
        a = cef_b64_value[s[i]];
        b = cef_b64_value[s[i + 1]];
        c = cef_b64_value[s[i + 2]];

        if (((a | b | c) & 0x80) || (c & 0x03)) {
            return -1;
        }

        acc = a << 18 | b << 12 | c << 6;
        out[j++] = (uint8_t) (acc >> 16);
        out[j++] = (uint8_t) (acc >> 8);
        break;

    case 2:
        a = cef_b64_value[s[i]];
        b = cef_b64_value[s[i + 1]];

        if (((a | b) & 0x80) || (b & 0x0f)) {
            return -1;
        }

        out[j++] = (uint8_t) (a << 2 | b >> 4);
        break;
    }

    *outlen = j;

    return 0;
}
