/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_text: UTF-8 validity and control-byte escaping.
 */

#include <string.h>

#include "cef_text.h"


size_t
cef_text_utf8_len(const uint8_t *p, size_t n)
{
    uint32_t  c;
    size_t    len, i;

    if (p[0] < 0x80) {
        return 1;
    }

    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        len = 2;
        c = p[0] & 0x1f;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        len = 3;
        c = p[0] & 0x0f;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        len = 4;
        c = p[0] & 0x07;
    } else {
        return 0;
    }

    if (n < len) {
        return 0;
    }

    for (i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        c = (c << 6) | (p[i] & 0x3f);
    }

    if ((len == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff)))
        || (len == 4 && (c < 0x10000 || c > 0x10ffff)))
    {
        return 0;
    }

    return len;
}


size_t
cef_text_escape_ctl(const char *src, size_t len, char *buf, size_t size)
{
    static const char  hex[] = "0123456789ABCDEF";

    char           esc[4];
    size_t         i, at = 0, run = 0;
    unsigned char  c;

    /* src may be NULL: NULL + 0 below would be undefined */
    if (len == 0) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = (unsigned char) src[i];

        if (c >= 0x20 && c != 0x7f && c != '\\') {
            continue;
        }

        esc[0] = '\\';
        esc[1] = 'x';
        esc[2] = hex[c >> 4];
        esc[3] = hex[c & 0xf];

        at = cef_text_put(buf, size, at, src + run, i - run);
        at = cef_text_put(buf, size, at, esc, 4);
        run = i + 1;
    }

    return cef_text_put(buf, size, at, src + run, len - run);
}
