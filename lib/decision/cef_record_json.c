/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_record_json: the JSON writer of the records ($cef_decision,
 * cef_record.c; $cef_goal, cef_goal.c), written into a caller's buffer
 * without allocating (records are made on the request path): output past
 * the buffer's end is counted, not written, so one pass measures and the
 * next writes.  Strings are escaped for JSON and for a header line (control
 * characters and DEL as \uXXXX); bytes that are not valid UTF-8 become
 * U+FFFD.
 */

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cef_decision_int.h"
#include "cef_text.h"


void
cef_record_json_init(cef_record_out_t *o, char *buf, size_t size)
{
    o->buf = size ? buf : NULL;         /* size 0: just measure */
    o->size = size ? size - 1 : 0;
    o->len = 0;
}


size_t
cef_record_json_end(cef_record_out_t *o)
{
    if (o->buf) {
        o->buf[o->len < o->size ? o->len : o->size] = '\0';
    }

    return o->len;
}


void
cef_record_json_put(cef_record_out_t *o, const char *s, size_t n)
{
    if (o->len < o->size) {
        memcpy(o->buf + o->len, s,
               o->size - o->len > n ? n : o->size - o->len);
    }

    o->len += n;
}


void
cef_record_json_puts(cef_record_out_t *o, const char *s)
{
    cef_record_json_put(o, s, strlen(s));
}


void
cef_record_json_printf(cef_record_out_t *o, const char *fmt, ...)
{
    char     tmp[64];
    int      n;
    va_list  ap;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);

    if (n > 0) {
        cef_record_json_put(o, tmp, (size_t) n < sizeof(tmp) ? (size_t) n
                                                 : sizeof(tmp) - 1);
    }
}


void
cef_record_json_str(cef_record_out_t *o, const char *s, size_t n)
{
    const uint8_t  *p = (const uint8_t *) s, *end = p + n, *run;
    size_t          l;
    char            esc[8];

    cef_record_json_put(o, "\"", 1);

    while (p < end) {
        run = p;

        while (p < end && *p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\')
        {
            p++;
        }

        cef_record_json_put(o, (const char *) run, (size_t) (p - run));

        if (p == end) {
            break;
        }

        switch (*p) {
        case '"':
            cef_record_json_put(o, "\\\"", 2);
            p++;
            continue;
        case '\\':
            cef_record_json_put(o, "\\\\", 2);
            p++;
            continue;
        case '\n':
            cef_record_json_put(o, "\\n", 2);
            p++;
            continue;
        case '\r':
            cef_record_json_put(o, "\\r", 2);
            p++;
            continue;
        case '\t':
            cef_record_json_put(o, "\\t", 2);
            p++;
            continue;
        }

        /* DEL too: a record may be placed into a header line */
        if (*p < 0x20 || *p == 0x7f) {
            snprintf(esc, sizeof(esc), "\\u%04x", *p);
            cef_record_json_put(o, esc, 6);
            p++;
            continue;
        }

        l = cef_text_utf8_len(p, (size_t) (end - p));

        if (l == 0) {
            cef_record_json_put(o, "\\ufffd", 6);
            p++;
            continue;
        }

        cef_record_json_put(o, (const char *) p, l);
        p += l;
    }

    cef_record_json_put(o, "\"", 1);
}


void
cef_record_json_cstr(cef_record_out_t *o, const char *s)
{
    if (s == NULL) {
        cef_record_json_put(o, "null", 4);
        return;
    }

    cef_record_json_str(o, s, strlen(s));
}


void
cef_record_json_span(cef_record_out_t *o, cef_span_t s)
{
    if (s.len == 0) {
        cef_record_json_put(o, "null", 4);
        return;
    }

    cef_record_json_str(o, s.data, s.len);
}


/*
 * A finite number in its shortest form that reads back the same (59.9, not
 * 59.899999999999999); null for NaN and infinities, which JSON lacks.
 */
void
cef_record_json_number(cef_record_out_t *o, double v)
{
    char    tmp[40];
    double  back;
    int     prec;

    if (v != v || v - v != 0) {
        cef_record_json_put(o, "null", 4);
        return;
    }

    for (prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        back = strtod(tmp, NULL);
        if (back == v) {
            break;
        }
    }

    cef_record_json_puts(o, tmp);
}
