/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Test fixture: a plugin built against ABI version 1 — abi1/cef_plugin.h
 * is that version's header as it was released, so the descriptor below
 * ends where version 1's did (before the experiment and arm hooks).  The
 * engine must load it and never read past its end (the unit test runs
 * under AddressSanitizer).
 */

#include "abi1/cef_plugin.h"


static int
first_select(void *state, const cef_plugin_req_t *req,
    const cef_plugin_cand_t *cands, uint32_t n, cef_plugin_pick_t *pick)
{
    (void) state;
    (void) req;
    (void) cands;
    (void) n;

    pick->pick = 0;
    pick->variant = "v1";

    return CEF_PLUGIN_OK;
}


static const cef_plugin_t  abi_one = {
    1, "abi_one", "built against ABI version 1", 0, NULL,
    NULL, 0, NULL, NULL, first_select, NULL, NULL, NULL, NULL
};


const cef_plugin_t *cef_plugin_entry(void);


const cef_plugin_t *
cef_plugin_entry(void)
{
    return &abi_one;
}
