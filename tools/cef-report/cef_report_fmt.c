/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-report: text and numbers for the HTML page (cef_report_fmt.h).
 */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cef_report_fmt.h"


#define REPLACEMENT  "\xef\xbf\xbd"     /* U+FFFD */
#define ELLIPSIS     "\xe2\x80\xa6"     /* U+2026 */
#define MINUS        "\xe2\x88\x92"     /* U+2212 */
#define THIN_SPACE   "\xe2\x80\xaf"     /* U+202F, narrow no-break space */
#define EM_DASH      "\xe2\x80\x94"     /* U+2014 */


/*
 * The length of the well-formed UTF-8 sequence at p (1 to 4), or 0 when
 * the bytes there are not one (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF).  *cp is the code point.
 */
static size_t
utf8_seq(const unsigned char *p, uint32_t *cp)
{
    size_t     n, i;
    uint32_t   c;

    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }

    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        n = 2;
        c = p[0] & 0x1f;

    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        n = 3;
        c = p[0] & 0x0f;

    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4;
        c = p[0] & 0x07;

    } else {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {    /* also stops at the NUL */
            return 0;
        }
        c = (c << 6) | (p[i] & 0x3f);
    }

    if ((n == 3 && c < 0x800) || (n == 4 && c < 0x10000) || c > 0x10ffff
        || (c >= 0xd800 && c <= 0xdfff))
    {
        return 0;
    }

    *cp = c;
    return n;
}


void
cef_report_fmt_text(FILE *f, const char *s, size_t max)
{
    const unsigned char  *p;
    size_t                n, chars;
    uint32_t              c;

    if (s == NULL) {
        return;
    }

    for (p = (const unsigned char *) s, chars = 0; *p; p += n, chars++) {

        if (max != 0 && chars == max) {
            fputs(ELLIPSIS, f);
            return;
        }

        n = utf8_seq(p, &c);

        if (n == 0) {
            n = 1;
            fputs(REPLACEMENT, f);
            continue;
        }

        switch (c) {
        case '&':  fputs("&amp;", f);  continue;
        case '<':  fputs("&lt;", f);   continue;
        case '>':  fputs("&gt;", f);   continue;
        case '"':  fputs("&quot;", f); continue;
        case '\'': fputs("&#39;", f);  continue;
        }

        if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) {
            fputs(REPLACEMENT, f);
            continue;
        }

        fwrite(p, 1, n, f);
    }
}


size_t
cef_report_fmt_chars(const char *s)
{
    const unsigned char  *p;
    size_t                n, chars;
    uint32_t              c;

    if (s == NULL) {
        return 0;
    }

    for (p = (const unsigned char *) s, chars = 0; *p; p += n, chars++) {
        n = utf8_seq(p, &c);
        if (n == 0) {
            n = 1;
        }
    }

    return chars;
}


/* the sign prefix of v: U+2212 for negative numbers, "+" if asked */
static const char *
sign_of(double v, int sign)
{
    return v < 0 ? MINUS : (sign && v > 0 ? "+" : "");
}


char *
cef_report_fmt_pct(char *buf, double v, int sign, const char *unit)
{
    double  a;

    a = fabs(v) * 100;

    return cef_report_fmt_pct_fixed(buf, v, sign, unit,
                                    a >= 99.95 || v == 0 ? 0
                                    : (a >= 9.995 ? 1 : 2));
}


char *
cef_report_fmt_pct_fixed(char *buf, double v, int sign, const char *unit,
    int dec)
{
    double  a;

    if (!isfinite(v)) {
        return strcpy(buf, EM_DASH);
    }

    a = fabs(v) * 100;

    /* a value that rounds to zero has no sign */
    if (a < 0.5 * pow(10, -dec)) {
        v = 0;
    }

    snprintf(buf, CEF_REPORT_FMT_LEN, "%s%.*f%s", sign_of(v, sign), dec, a,
             unit);
    return buf;
}


char *
cef_report_fmt_num(char *buf, double v, int sign)
{
    double  a;

    if (!isfinite(v)) {
        return strcpy(buf, EM_DASH);
    }

    a = fabs(v);

    if (a >= 1e9) {
        snprintf(buf, CEF_REPORT_FMT_LEN, "%s%.3g", sign_of(v, sign), a);

    } else if (a >= 1000) {
        snprintf(buf, CEF_REPORT_FMT_LEN, "%s%.0f", sign_of(v, sign), a);

    } else if (a >= 100) {
        snprintf(buf, CEF_REPORT_FMT_LEN, "%s%.1f", sign_of(v, sign), a);

    } else if (a >= 1 || a == 0) {
        snprintf(buf, CEF_REPORT_FMT_LEN, "%s%.2f", sign_of(v, sign), a);

    } else {
        snprintf(buf, CEF_REPORT_FMT_LEN, "%s%.3g", sign_of(v, sign), a);
    }

    return buf;
}


char *
cef_report_fmt_count(char *buf, double v)
{
    char    digits[32], *o;
    size_t  len, i;

    if (!isfinite(v) || fabs(v) >= 1e18) {
        return cef_report_fmt_num(buf, v, 0);
    }

    len = (size_t) snprintf(digits, sizeof(digits), "%.0f", fabs(v));
    o = buf;

    if (v <= -0.5) {
        o = stpcpy(o, MINUS);
    }

    for (i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0) {
            o = stpcpy(o, THIN_SPACE);
        }
        *o++ = digits[i];
    }

    *o = '\0';
    return buf;
}


char *
cef_report_fmt_p(char *buf, double p)
{
    if (!isfinite(p)) {
        return strcpy(buf, EM_DASH);
    }

    if (p < 0.0001) {
        return strcpy(buf, "&lt;\xc2\xa0" "0.0001");    /* no-break space */
    }

    snprintf(buf, CEF_REPORT_FMT_LEN, "%.4f", p);
    return buf;
}
