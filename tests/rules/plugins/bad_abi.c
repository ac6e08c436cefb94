/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Test fixture: a plugin built for an ABI version newer than the module's.
 */

#include "cef_plugin.h"


static const cef_plugin_t  bad = {
    CEF_PLUGIN_ABI_VERSION + 1, "bad_abi", "wrong ABI version", 0, NULL,
    NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, NULL
};


const cef_plugin_t *cef_plugin_entry(void);


const cef_plugin_t *
cef_plugin_entry(void)
{
    return &bad;
}
