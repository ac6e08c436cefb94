/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Test fixture: a plugin whose name clashes with a built-in one.
 */

#include "cef_plugin.h"


static const cef_plugin_t  clash = {
    CEF_PLUGIN_ABI_VERSION, "weighted", "name taken", 0, NULL,
    NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, NULL
};


const cef_plugin_t *cef_plugin_entry(void);


const cef_plugin_t *
cef_plugin_entry(void)
{
    return &clash;
}
