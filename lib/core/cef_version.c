/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 */

#include "cef_version.h"


const char *
cef_version(void)
{
    return CEF_VERSION;
}
