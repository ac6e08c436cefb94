/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * value: customer value management.  Among the matching offers, the one
 * with the highest expected value
 *
 *     EV = p × value − cost
 *
 * where value and cost are the offer's and p is an expression of the slot
 * configuration (typically a propensity score shipped by the CDP).  p may
 * be a number (the same for every offer) or a number map (keyed by offer
 * name, else by campaign).  An offer whose EV is negative is never shown;
 * without a p the slot shows nothing.
 *
 *     slots:
 *       hero:
 *         strategy: value
 *         p: profile.propensity          # an expression
 *         min_ev: 0                      # optional floor, >= 0
 */

#include <stdio.h>

#include "cef_plugin.h"


typedef struct {
    uint32_t  p;
    double    min_ev;
} value_t;


static int
value_configure(const cef_plugin_rules_t *rules, uint32_t slot,
    const cef_conf_t *conf, void **state, cef_plugin_error_t *err)
{
    uint32_t           i;
    value_t           *v;
    const cef_conf_t  *c;
    char               msg[200];

    (void) slot;

    for (i = 0; i < conf->n; i++) {
        if (strcmp(conf->items[i].key, "p") != 0
            && strcmp(conf->items[i].key, "min_ev") != 0)
        {
            err->at = &conf->items[i];
            snprintf(err->msg, sizeof(err->msg), "unknown key '%s' (value "
                     "takes p: and min_ev:)", conf->items[i].key);
            return CEF_PLUGIN_ERROR;
        }
    }

    c = cef_conf_get(conf, "p");
    if (c == NULL || c->type != CEF_CONF_SCALAR) {
        err->at = c;
        snprintf(err->msg, sizeof(err->msg), "p: must name the probability, "
                 "e.g. p: profile.propensity");
        return CEF_PLUGIN_ERROR;
    }

    v = calloc(1, sizeof(value_t));
    if (v == NULL) {
        snprintf(err->msg, sizeof(err->msg), "out of memory");
        return CEF_PLUGIN_ERROR;
    }

    *state = v;

    if (rules->compile(rules, c->value, &v->p, msg, sizeof(msg))
        != CEF_PLUGIN_OK)
    {
        err->at = c;
        snprintf(err->msg, sizeof(err->msg), "p: %s", msg);
        return CEF_PLUGIN_ERROR;
    }

    c = cef_conf_get(conf, "min_ev");
    if (c && (cef_conf_number(c, &v->min_ev) != 0 || v->min_ev < 0)) {
        err->at = c;
        snprintf(err->msg, sizeof(err->msg), "min_ev must be a number >= 0");
        return CEF_PLUGIN_ERROR;
    }

    return CEF_PLUGIN_OK;
}


static void
value_free(void *state)
{
    free(state);
}


static int
value_num(const cef_value_t *v, double *out)
{
    switch (v->type) {
    case CEF_VAL_INT:
        *out = (double) v->u.i;
        return 1;
    case CEF_VAL_FLOAT:
        *out = v->u.f;
        return 1;
    default:
        return 0;
    }
}


static int
value_select(void *state, const cef_plugin_req_t *req,
    const cef_plugin_cand_t *cands, uint32_t n, cef_plugin_pick_t *pick)
{
    value_t                   *v = state;
    uint32_t                   i;
    double                     p, ev, best = 0;
    cef_value_t                pv;
    const cef_plugin_offer_t  *o;

    if (!req->eval(req, v->p, &pv)) {
        return CEF_PLUGIN_OK;           /* no propensity: no offer */
    }

    for (i = 0; i < n; i++) {
        o = cands[i].offer;

        if (pv.type == CEF_VAL_NUM_MAP) {
            if (!req->map_get(&pv, o->name, strlen(o->name), &p)
                && (o->campaign == NULL
                    || !req->map_get(&pv, o->campaign, strlen(o->campaign),
                                     &p)))
            {
                continue;
            }

        } else if (!value_num(&pv, &p)) {
            return CEF_PLUGIN_OK;
        }

        if (!(p >= 0 && p <= 1)) {
            continue;                   /* not a probability */
        }

        ev = p * o->value - o->cost;

        if (ev >= v->min_ev && (pick->pick == CEF_PLUGIN_NONE || ev > best)) {
            pick->pick = i;
            best = ev;
        }
    }

    return CEF_PLUGIN_OK;
}


const cef_plugin_t  cef_plugin_value = {
    CEF_PLUGIN_ABI_VERSION,
    "value",
    "the offer with the highest expected value p * value - cost",
    CEF_PLUGIN_ALL_CANDIDATES,
    NULL,
    NULL, 0,
    value_configure, value_free,
    value_select,
    NULL, NULL,
    NULL, NULL,
    NULL, NULL
};
