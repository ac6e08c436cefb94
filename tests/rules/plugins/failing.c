/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Test fixture: a strategy that misbehaves at request time — an
 * out-of-range pick, or an error when the request's visitor id starts
 * with 'E'.  The engine must serve the slot's default content and log.
 */

#include "cef_plugin.h"


static int
failing_select(void *state, const cef_plugin_req_t *req,
    const cef_plugin_cand_t *cands, uint32_t n, cef_plugin_pick_t *pick)
{
    (void) state;
    (void) cands;

    if (req->visitor.len && req->visitor.data[0] == 'E') {
        return CEF_PLUGIN_ERROR;
    }

    pick->pick = n + 7;
    return CEF_PLUGIN_OK;
}


static const cef_plugin_t  failing = {
    CEF_PLUGIN_ABI_VERSION, "failing", "misbehaves at request time", 0,
    NULL, NULL, 0, NULL, NULL, failing_select, NULL, NULL, NULL, NULL,
    NULL, NULL
};


const cef_plugin_t *cef_plugin_entry(void);


const cef_plugin_t *
cef_plugin_entry(void)
{
    return &failing;
}
