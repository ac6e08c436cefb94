/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 */

#include <string.h>

#include "cef_cookie.h"


static unsigned
cef_cookie_lower(unsigned c)
{
    return (c >= 'A' && c <= 'Z') ? (c | 0x20) : c;
}


int
cef_cookie_find(const char *hdr, size_t len, const char *name, size_t nlen,
    cef_span_t *value)
{
    size_t                k;
    const unsigned char  *p, *end, *lim, *comma;

    p = (const unsigned char *) hdr;
    end = p + len;

    while (p < end) {

        if ((size_t) (end - p) >= nlen) {
            for (k = 0;
                 k < nlen && cef_cookie_lower(p[k])
                             == cef_cookie_lower((unsigned char) name[k]);
                 k++)
            {
                /* void */
            }

            if (k == nlen) {
                for (p += nlen; p < end && *p == ' '; p++) { /* void */ }

                if (p < end && *p++ == '=') {
                    while (p < end && *p == ' ') {
                        p++;
                    }

                    lim = memchr(p, ';', (size_t) (end - p));

                    value->data = (const char *) p;
                    value->len = (size_t) ((lim ? lim : end) - p);

                    return 1;
                }
            }
        }

        /* past the next ';' or ',' and the spaces after it */

        lim = memchr(p, ';', (size_t) (end - p));
        if (lim == NULL) {
            lim = end;
        }

        comma = memchr(p, ',', (size_t) (lim - p));
        if (comma != NULL) {
            lim = comma;
        }

        p = lim < end ? lim + 1 : end;

        while (p < end && *p == ' ') {
            p++;
        }
    }

    return 0;
}
