/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Part of lib/decision: what the folder may include, and what must not
 * include it, is said at the top of cef_decision.h.
 *
 * cef_outcome: what became of one offer of one rule in a decision, decided
 * once and worded once.  The glue's explain (JSON), `cef-rules explain`
 * and `cef-rules replay` all print these words, so they cannot drift.
 * Plain C11, no nginx types.
 */

#ifndef CEF_OUTCOME_H
#define CEF_OUTCOME_H

#include <stddef.h>
#include <stdint.h>

#include "cef_decision.h"


typedef enum {
    CEF_OUTCOME_CHOSEN = 0,     /* shown in its slot */
    CEF_OUTCOME_UNMATCHED,      /* the rule's when: is false */
    CEF_OUTCOME_UNSCHEDULED,    /* outside the offer's starts/ends */
    CEF_OUTCOME_BLOCKED,        /* a plugin's begin hook blocked it */
    CEF_OUTCOME_TAKEN,          /* never a candidate: the slot was closed
                                   by the offer of an earlier rule */
    CEF_OUTCOME_NOT_CHOSEN      /* a candidate the slot's strategy did not
                                   show (it picked another, or none) */
} cef_outcome_t;


/*
 * The outcome of offer (an offer of rule) in the last cef_decision_make()
 * with d.
 *
 * @param d        from cef_decision_create(), after cef_decision_make()
 * @param matched  the rule's when: as cef_expr_explain() or
 *                 cef_expr_match() said it in that decision (1 for a rule
 *                 without one)
 */
cef_outcome_t cef_outcome_offer(const cef_decision_t *d, uint32_t rule,
    uint32_t offer, int matched);

/*
 * The words for an outcome of offer in d, NUL-terminated, truncated to
 * size: "chosen", "rule not matched", "not scheduled now (starts
 * 2026-12-24T00:00:00Z, ends ...)", "blocked by a plugin (frequency cap or
 * hours)", "slot taken by rule 'R'", "not chosen".
 *
 * @return the length it needs (excluding the NUL), as snprintf().
 */
size_t cef_outcome_format(const cef_decision_t *d, uint32_t offer,
    cef_outcome_t o, char *buf, size_t size);


#endif /* CEF_OUTCOME_H */
