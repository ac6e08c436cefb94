/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_outcome: the one classifier of per-offer outcomes (cef_outcome.h).
 */

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cef_decision_int.h"
#include "cef_outcome.h"


cef_outcome_t
cef_outcome_offer(const cef_decision_t *d, uint32_t rule, uint32_t offer,
    int matched)
{
    const cef_decision_priv_t  *dp = cef_decision_cpriv(d);
    const cef_offer_t          *o = cef_rules_offer(d->rs, offer);
    const cef_decision_slot_t  *ds = &d->slots[o->slot_id];
    const cef_plugin_cand_t    *c;
    uint32_t                    k;

    if (!matched) {
        return CEF_OUTCOME_UNMATCHED;
    }

    if (!cef_rules_offer_active(o, dp->now)) {
        return CEF_OUTCOME_UNSCHEDULED;
    }

    if (dp->blocked[offer]) {
        return CEF_OUTCOME_BLOCKED;
    }

    if (ds->offer == offer && ds->rule == rule) {
        return CEF_OUTCOME_CHOSEN;
    }

    /* the strategy saw it and showed another offer, or none (a holdout,
     * a failure): not chosen; it never reached the strategy because an
     * earlier rule's offer closed the slot: taken */

    c = cef_decision_candidates(d, o->slot_id);

    for (k = 0; k < ds->candidates; k++) {
        if (c[k].offer->index == offer && c[k].rule == rule) {
            return CEF_OUTCOME_NOT_CHOSEN;
        }
    }

    return ds->rule != CEF_RULES_NONE ? CEF_OUTCOME_TAKEN
                                      : CEF_OUTCOME_NOT_CHOSEN;
}


static size_t
cef_outcome_time(int64_t t, char *buf, size_t size)
{
    time_t     tt = (time_t) t;
    struct tm  tm;

    if (gmtime_r(&tt, &tm) == NULL) {
        return (size_t) snprintf(buf, size, "%lld", (long long) t);
    }

    return strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}


size_t
cef_outcome_format(const cef_decision_t *d, uint32_t offer, cef_outcome_t o,
    char *buf, size_t size)
{
    const cef_offer_t  *of = cef_rules_offer(d->rs, offer);
    uint32_t            by;
    char                starts[64], ends[64];
    int                 n;

    switch (o) {

    case CEF_OUTCOME_CHOSEN:
        n = snprintf(buf, size, "chosen");
        break;

    case CEF_OUTCOME_UNMATCHED:
        n = snprintf(buf, size, "rule not matched");
        break;

    case CEF_OUTCOME_UNSCHEDULED:
        starts[0] = ends[0] = '\0';

        if (of->starts != INT64_MIN) {
            (void) cef_outcome_time(of->starts, starts, sizeof(starts));
        }

        if (of->ends != INT64_MAX) {
            (void) cef_outcome_time(of->ends, ends, sizeof(ends));
        }

        n = snprintf(buf, size, "not scheduled now (%s%s%s%s%s)",
                     starts[0] ? "starts " : "", starts,
                     starts[0] && ends[0] ? ", " : "",
                     ends[0] ? "ends " : "", ends);
        break;

    case CEF_OUTCOME_BLOCKED:
        n = snprintf(buf, size, "blocked by a plugin (frequency cap or "
                     "hours)");
        break;

    case CEF_OUTCOME_TAKEN:
        by = d->slots[of->slot_id].rule;
        n = snprintf(buf, size, "slot taken by rule '%s'",
                     by != CEF_RULES_NONE ? cef_rules_rule(d->rs, by)->name
                                          : "?");
        break;

    default:
        n = snprintf(buf, size, "not chosen");
        break;
    }

    return n < 0 ? 0 : (size_t) n;
}
