/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cef_version.h"


static void
test_version_string_matches_macros(void **state)
{
    char  buf[32];

    (void) state;

    snprintf(buf, sizeof(buf), "%d.%d.%d", CEF_VERSION_MAJOR,
             CEF_VERSION_MINOR, CEF_VERSION_PATCH);
    assert_string_equal(cef_version(), buf);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_string_matches_macros),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
