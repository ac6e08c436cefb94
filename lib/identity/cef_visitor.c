/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 */

#include <stdint.h>

#include <openssl/rand.h>

#include "cef_base64url.h"
#include "cef_visitor.h"


int
cef_visitor_id_new(char out[CEF_VISITOR_ID_LEN])
{
    uint8_t  bits[16];

    if (RAND_bytes(bits, sizeof(bits)) != 1) {
        return -1;
    }

    cef_base64url_encode(bits, sizeof(bits), out);

    return 0;
}


int
cef_visitor_id_valid(const char *p, size_t len)
{
    size_t   n;
    uint8_t  bits[cef_base64url_decoded_max(CEF_VISITOR_ID_LEN)];

    return len == CEF_VISITOR_ID_LEN
           && cef_base64url_decode(p, len, bits, &n) == 0
           && n == 16;
}
