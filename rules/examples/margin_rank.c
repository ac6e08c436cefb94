/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * An example external rule plugin, built as a shared object and loaded
 * with
 *
 *     cef_plugin margin_rank /path/to/margin_rank.so;
 *
 * It shows every part of the ABI (lib/plugin/cef_plugin.h, the only header it
 * includes; it links against nothing of the module):
 *
 *   - a strategy, margin_rank: among the matching offers, the one with the
 *     highest margin, where an offer's margin is its own `margin:` key (an
 *     offer key this plugin declares) or else value - cost;
 *   - its slot configuration, `min_margin:` (offers below are never shown)
 *     and `boost:` (an expression added to every margin, e.g. a profile
 *     attribute), rejected with a message when invalid;
 *   - an expression function, season(), the meteorological season of the
 *     request's date in the northern hemisphere: "winter", "spring",
 *     "summer" or "autumn".
 *
 *     offers:
 *       boots: {slot: hero, html: ..., value: 80, cost: 20, margin: 70}
 *     rules:
 *       - {name: cold, when: 'season() == "winter"', show: boots}
 *     slots:
 *       hero: {strategy: margin_rank, min_margin: 10}
 *
 * Build: cc -shared -fPIC -I lib rules/examples/margin_rank.c -o margin_rank.so
 */

#include <stdio.h>

#include "cef_plugin.h"


typedef struct {
    double     min_margin;
    int        boost;          /* 1: boost_id is set */
    uint32_t   boost_id;
    uint32_t   noffers;
    double     margin[];       /* per offer index */
} mr_slot_t;


static const char  *mr_offer_keys[] = { "margin", NULL };


static int
mr_configure(const cef_plugin_rules_t *rules, uint32_t slot,
    const cef_conf_t *conf, void **state, cef_plugin_error_t *err)
{
    uint32_t           i;
    mr_slot_t         *s;
    const cef_conf_t  *c;
    char               msg[200];

    (void) slot;

    for (i = 0; i < conf->n; i++) {
        if (strcmp(conf->items[i].key, "min_margin") != 0
            && strcmp(conf->items[i].key, "boost") != 0)
        {
            err->at = &conf->items[i];
            snprintf(err->msg, sizeof(err->msg), "unknown key '%s' "
                     "(margin_rank takes min_margin: and boost:)",
                     conf->items[i].key);
            return CEF_PLUGIN_ERROR;
        }
    }

    s = calloc(1, sizeof(mr_slot_t) + (rules->noffers + 1) * sizeof(double));
    if (s == NULL) {
        snprintf(err->msg, sizeof(err->msg), "out of memory");
        return CEF_PLUGIN_ERROR;
    }

    *state = s;                 /* freed by mr_free even if we fail below */
    s->noffers = rules->noffers;
    s->min_margin = -1e300;

    c = cef_conf_get(conf, "min_margin");
    if (c && cef_conf_number(c, &s->min_margin) != 0) {
        err->at = c;
        snprintf(err->msg, sizeof(err->msg), "min_margin must be a number, "
                 "not '%s'", c->value ? c->value : "a collection");
        return CEF_PLUGIN_ERROR;
    }

    c = cef_conf_get(conf, "boost");
    if (c) {
        if (c->type != CEF_CONF_SCALAR
            || rules->compile(rules, c->value, &s->boost_id, msg, sizeof(msg))
               != CEF_PLUGIN_OK)
        {
            err->at = c;
            snprintf(err->msg, sizeof(err->msg), "boost: %s",
                     c->type == CEF_CONF_SCALAR ? msg : "not an expression");
            return CEF_PLUGIN_ERROR;
        }
        s->boost = 1;
    }

    /* margins once, here, not per request */

    for (i = 0; i < rules->noffers; i++) {
        c = cef_conf_get(rules->offers[i].extra, "margin");

        if (c == NULL) {
            s->margin[i] = rules->offers[i].value - rules->offers[i].cost;

        } else if (cef_conf_number(c, &s->margin[i]) != 0) {
            err->at = c;
            snprintf(err->msg, sizeof(err->msg), "margin of offer '%s' must "
                     "be a number", rules->offers[i].name);
            return CEF_PLUGIN_ERROR;
        }
    }

    return CEF_PLUGIN_OK;
}


static void
mr_free(void *state)
{
    free(state);
}


static int
mr_select(void *state, const cef_plugin_req_t *req,
    const cef_plugin_cand_t *cands, uint32_t n, cef_plugin_pick_t *pick)
{
    mr_slot_t    *s = state;
    uint32_t      i, o;
    double        m, boost = 0, best = 0;
    cef_value_t   v;

    if (s->boost && req->eval(req, s->boost_id, &v)) {
        if (v.type == CEF_VAL_INT) {
            boost = (double) v.u.i;
        } else if (v.type == CEF_VAL_FLOAT) {
            boost = v.u.f;
        }
    }

    for (i = 0; i < n; i++) {
        o = cands[i].offer->index;

        if (o >= s->noffers) {
            return CEF_PLUGIN_ERROR;    /* cannot happen: say so, not crash */
        }

        m = s->margin[o] + boost;

        if (m >= s->min_margin && (pick->pick == CEF_PLUGIN_NONE || m > best))
        {
            pick->pick = i;
            best = m;
        }
    }

    return CEF_PLUGIN_OK;
}


static int
mr_season(const cef_value_t *args, uint32_t nargs, int64_t now,
    cef_value_t *out)
{
    static const char  *names[] = { "winter", "spring", "summer", "autumn" };
    int64_t             z, era, doe, yoe, doy, mp, month;

    (void) args;
    (void) nargs;

    /* the civil month of a day number (H. Hinnant's civil_from_days) */

    z = (now >= 0 ? now : now - 86399) / 86400 + 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    month = mp < 10 ? mp + 3 : mp - 9;            /* 1..12 */

    out->type = CEF_VAL_STR;
    out->u.s.data = names[(month % 12) / 3];
    out->u.s.len = strlen(out->u.s.data);

    return 1;
}


static const cef_plugin_func_t  mr_funcs[] = {
    { "season", 0, { CEF_VAL_NIL }, CEF_VAL_STR, mr_season },
};


static const cef_plugin_t  mr_plugin = {
    CEF_PLUGIN_ABI_VERSION,
    "margin_rank",
    "the matching offer with the highest margin; season()",
    CEF_PLUGIN_ALL_CANDIDATES,
    mr_offer_keys,
    mr_funcs, 1,
    mr_configure, mr_free,
    mr_select,
    NULL, NULL,
    NULL, NULL,
    NULL, NULL
};


const cef_plugin_t *cef_plugin_entry(void);


const cef_plugin_t *
cef_plugin_entry(void)
{
    return &mr_plugin;
}
