/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Test fixture: a shared object without the cef_plugin_entry symbol.
 */

int cef_plugin_entri(void);


int
cef_plugin_entri(void)
{
    return 0;
}
