/*
 * Copyright (C) ngx_cef_module developers
 */

#include "cef_version.h"


const char *
cef_version(void)
{
    return CEF_VERSION;
}
