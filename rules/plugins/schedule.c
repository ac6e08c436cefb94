/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * schedule: offers are candidates only inside their schedule.  starts:
 * and ends: (dates) are enforced by the rule engine itself, in its plan;
 * this plugin adds the optional offer key hours:, local hours of the day
 * (the server's time zone, like time.hour):
 *
 *     offers:
 *       lunch-deal:
 *         slot: hero
 *         html: ...
 *         hours: 11-14            # 11:00 to 13:59
 *         # hours: [7-9, 17-20]   # several ranges; 22-6 wraps midnight
 *
 * Active for a rule set only when some offer has hours:.
 */

#include <stdio.h>

#include "cef_plugin.h"


typedef struct {
    uint32_t   noffers;
    uint32_t   mask[];          /* per offer: bit per hour, 0: always */
} sched_t;


static const char  *sched_keys[] = { "hours", NULL };


/* "H-H" (end exclusive, may wrap) or "H": hours bits, or 0 if invalid */
static uint32_t
sched_range(const char *s)
{
    char      *end;
    long       a, b;
    uint32_t   m = 0;

    a = strtol(s, &end, 10);
    if (end == s || a < 0 || a > 23) {
        return 0;
    }

    if (*end == '\0') {
        return 1u << a;
    }

    if (*end != '-') {
        return 0;
    }

    s = end + 1;
    b = strtol(s, &end, 10);
    if (end == s || *end != '\0' || b < 0 || b > 24 || a == b) {
        return 0;
    }

    for ( /* void */ ; a != b; a = (a + 1) % 24) {
        m |= 1u << a;
        if (b == 24 && a == 23) {
            break;
        }
    }

    return m;
}


static int
sched_configure(const cef_plugin_rules_t *rules, const cef_conf_t *conf,
    void **state, cef_plugin_error_t *err)
{
    uint32_t           i, j, n, bits;
    sched_t           *sc = NULL;
    const cef_conf_t  *h, *it;

    if (conf) {
        err->at = conf;
        snprintf(err->msg, sizeof(err->msg), "schedule is configured per "
                 "offer (hours:), not under plugins:");
        return CEF_PLUGIN_ERROR;
    }

    for (i = 0; i < rules->noffers; i++) {
        h = cef_conf_get(rules->offers[i].extra, "hours");
        if (h == NULL) {
            continue;
        }

        if (sc == NULL) {
            sc = calloc(1, sizeof(sched_t)
                           + (rules->noffers + 1) * sizeof(uint32_t));
            if (sc == NULL) {
                snprintf(err->msg, sizeof(err->msg), "out of memory");
                return CEF_PLUGIN_ERROR;
            }
            sc->noffers = rules->noffers;
            *state = sc;
        }

        it = h->type == CEF_CONF_LIST ? h->items : h;
        n = h->type == CEF_CONF_LIST ? h->n : 1;

        if (n == 0 || h->type == CEF_CONF_MAP) {
            err->at = h;
            snprintf(err->msg, sizeof(err->msg), "hours: of offer '%s' must "
                     "be a range such as 9-17, or a list of them",
                     rules->offers[i].name);
            return CEF_PLUGIN_ERROR;
        }

        for (j = 0; j < n; j++, it++) {
            bits = it->type == CEF_CONF_SCALAR ? sched_range(it->value) : 0;

            if (bits == 0) {
                err->at = it;
                snprintf(err->msg, sizeof(err->msg), "bad hours '%s' of "
                         "offer '%s' (use e.g. 9-17, 22-6 or 12)",
                         it->value ? it->value : "", rules->offers[i].name);
                return CEF_PLUGIN_ERROR;
            }

            sc->mask[i] |= bits;
        }
    }

    return CEF_PLUGIN_OK;
}


static void
sched_free(void *state)
{
    free(state);
}


static int
sched_begin(void *state, const cef_plugin_req_t *req, uint8_t *blocked)
{
    sched_t   *sc = state;
    uint32_t   i, hour;
    int64_t    t = req->now + req->utc_offset;

    hour = (uint32_t) (((t % 86400) + 86400) % 86400 / 3600);

    for (i = 0; i < sc->noffers; i++) {
        if (sc->mask[i] && !(sc->mask[i] & (1u << hour))) {
            blocked[i] = 1;
        }
    }

    return CEF_PLUGIN_OK;
}


const cef_plugin_t  cef_plugin_schedule = {
    CEF_PLUGIN_ABI_VERSION,
    "schedule",
    "offers only inside their hours:",
    0,
    sched_keys,
    NULL, 0,
    NULL, NULL,
    NULL,
    sched_configure, sched_free,
    sched_begin, NULL,
    NULL, NULL
};
