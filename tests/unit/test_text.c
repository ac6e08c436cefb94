/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_text: UTF-8 validity and the control-byte escaping of values bound
 * for header lines.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "cef_text.h"


static void
test_utf8_len(void **state)
{
    static const struct {
        const char  *s;
        size_t       len;
    } cases[] = {
        { "a", 1 },
        { "\x7f", 1 },
        { "\xc3\xa9", 2 },
        { "\xe2\x82\xac", 3 },
        { "\xf0\x9f\x8c\xb2", 4 },
        { "\xf4\x8f\xbf\xbf", 4 },          /* U+10FFFF */
        { "\x80", 0 },                      /* continuation */
        { "\xc0\xaf", 0 },                  /* overlong */
        { "\xe0\x80\xaf", 0 },              /* overlong */
        { "\xed\xa0\x80", 0 },              /* surrogate */
        { "\xf4\x90\x80\x80", 0 },          /* above U+10FFFF */
        { "\xf5\x80\x80\x80", 0 },
        { "\xe2\x82", 0 },                  /* cut short */
        { "\xc3(", 0 },
    };
    size_t  i;

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(cef_text_utf8_len((const uint8_t *) cases[i].s,
                                           strlen(cases[i].s)),
                         cases[i].len);
    }
}


static void
test_escape_ctl(void **state)
{
    static const struct {
        const char  *src;
        size_t       len;
        const char  *want;
    } cases[] = {
        { "plain value, 50% <off> & 'more'", 31,
          "plain value, 50% <off> & 'more'" },
        { "J\xc3\xbcrgen", 7, "J\xc3\xbcrgen" },
        { "ok\r\nX-Injected: yes", 19, "ok\\x0D\\x0AX-Injected: yes" },
        { "a\0b", 3, "a\\x00b" },
        { "\t\x1f\x7f", 3, "\\x09\\x1F\\x7F" },
        { "C:\\dir", 6, "C:\\x5Cdir" },
        { "\\x0A", 4, "\\x5Cx0A" },
        { "", 0, "" },
    };
    char    buf[64];
    size_t  i, n;

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        n = cef_text_escape_ctl(cases[i].src, cases[i].len, buf, sizeof(buf));
        assert_int_equal(n, strlen(cases[i].want));
        assert_memory_equal(buf, cases[i].want, n);
        assert_int_equal(cef_text_escape_ctl(cases[i].src, cases[i].len,
                                             NULL, 0), n);
    }

    assert_int_equal(cef_text_escape_ctl(NULL, 0, NULL, 0), 0);
}


/* a short buffer gets a prefix of the full escaping, nothing past size */
static void
test_escape_ctl_truncates(void **state)
{
    char    buf[8];
    size_t  n;

    (void) state;

    memset(buf, 'Z', sizeof(buf));
    n = cef_text_escape_ctl("ab\ncd", 5, buf, 5);
    assert_int_equal(n, 8);
    assert_memory_equal(buf, "ab\\x0", 5);
    assert_int_equal(buf[5], 'Z');
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_len),
        cmocka_unit_test(test_escape_ctl),
        cmocka_unit_test(test_escape_ctl_truncates),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
