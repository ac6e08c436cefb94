/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * priority: the default strategy.  The offer of the matching rule with the
 * highest priority (ties: file order).  The engine hands it only the first
 * candidate, so rules below the winner are never evaluated.
 */

#include "cef_plugin.h"


static int
priority_select(void *state, const cef_plugin_req_t *req,
    const cef_plugin_cand_t *cands, uint32_t n, cef_plugin_pick_t *pick)
{
    (void) state;
    (void) req;
    (void) cands;
    (void) n;

    pick->pick = 0;

    return CEF_PLUGIN_OK;
}


const cef_plugin_t  cef_plugin_priority = {
    CEF_PLUGIN_ABI_VERSION,
    "priority",
    "the matching rule with the highest priority",
    0,
    NULL,
    NULL, 0,
    NULL, NULL,
    priority_select,
    NULL, NULL,
    NULL, NULL,
    NULL, NULL
};
