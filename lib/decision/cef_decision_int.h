/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * lib/decision internals, for lib/decision's own .c files only (nothing
 * outside the folder includes this): the scratch space behind a
 * cef_decision_t.  cef_decision_create() allocates a cef_decision_priv_t
 * and hands out its first member, so a public cef_decision_t has no field
 * the decision loop alone may touch, and a view built by hand (the glue's
 * $cef_decision, for cef_decision_format()) stays a plain cef_decision_t.
 */

#ifndef CEF_DECISION_INT_H
#define CEF_DECISION_INT_H

#include "cef_decision.h"
#include "cef_plugin.h"


typedef struct {
    cef_decision_t      pub;        /* first: what the API hands out */
    int64_t             now;        /* ctx->now of the last decision */
    uint8_t            *blocked;    /* per offer: a begin hook blocked it */
    cef_plugin_cand_t  *cands;      /* per slot, CEF_DECISION_MAX_CANDIDATES
                                       each: what the strategy saw */
    uint32_t           *ncands;     /* per slot: how many (while deciding,
                                       CEF_RULES_NONE once it closed) */
    uint32_t           *shown;      /* per slot: while deciding, the count
                                       of a closed slot; then the offer
                                       shown, for the end hooks */
} cef_decision_priv_t;


/* d from cef_decision_create() (never a view built by hand). */
static inline cef_decision_priv_t *
cef_decision_priv(cef_decision_t *d)
{
    return (cef_decision_priv_t *) d;
}


static inline const cef_decision_priv_t *
cef_decision_cpriv(const cef_decision_t *d)
{
    return (const cef_decision_priv_t *) d;
}


#endif /* CEF_DECISION_INT_H */
