/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * weighted: a weighted random choice among the matching offers, sticky per
 * visitor: the draw is the visitor's bucket for a salt made of the slot
 * name and the candidate offers' names, so the same visitor gets the same
 * offer for as long as the same offers match (edits elsewhere in the rule
 * file change nothing).
 *
 *     slots:
 *       hero:
 *         strategy: weighted
 *         weights: {spring-sale: 3, newsletter: 1}   # default 1 each
 */

#include <stdio.h>

#include "cef_plugin.h"


typedef struct {
    const char  *slot;
    uint32_t     noffers;
    double       weight[];       /* per offer index */
} weighted_t;


static int
weighted_configure(const cef_plugin_rules_t *rules, uint32_t slot,
    const cef_conf_t *conf, void **state, cef_plugin_error_t *err)
{
    uint32_t           i, j;
    weighted_t        *w;
    const cef_conf_t  *ws, *it;
    double             x;

    w = malloc(sizeof(weighted_t) + (rules->noffers + 1) * sizeof(double));
    if (w == NULL) {
        snprintf(err->msg, sizeof(err->msg), "out of memory");
        return CEF_PLUGIN_ERROR;
    }

    w->slot = rules->slots[slot];
    w->noffers = rules->noffers;

    for (i = 0; i < rules->noffers; i++) {
        w->weight[i] = 1;
    }

    *state = w;

    for (i = 0; i < conf->n; i++) {
        if (strcmp(conf->items[i].key, "weights") != 0) {
            err->at = &conf->items[i];
            snprintf(err->msg, sizeof(err->msg), "unknown key '%s' (weighted "
                     "takes weights:)", conf->items[i].key);
            return CEF_PLUGIN_ERROR;
        }
    }

    ws = cef_conf_get(conf, "weights");
    if (ws == NULL) {
        return CEF_PLUGIN_OK;
    }

    if (ws->type != CEF_CONF_MAP) {
        err->at = ws;
        snprintf(err->msg, sizeof(err->msg), "weights must map offer names "
                 "to numbers");
        return CEF_PLUGIN_ERROR;
    }

    for (i = 0; i < ws->n; i++) {
        it = &ws->items[i];

        for (j = 0; j < rules->noffers; j++) {
            if (strcmp(rules->offers[j].name, it->key) == 0) {
                break;
            }
        }

        err->at = it;

        if (j == rules->noffers || rules->offers[j].slot_id != slot) {
            snprintf(err->msg, sizeof(err->msg), "weights: no offer '%s' "
                     "in slot '%s'", it->key, w->slot);
            return CEF_PLUGIN_ERROR;
        }

        if (cef_conf_number(it, &x) != 0 || x < 0 || x > 1e6) {
            snprintf(err->msg, sizeof(err->msg), "weight of '%s' must be a "
                     "number from 0 to 1000000, not '%s'", it->key,
                     it->value ? it->value : "a collection");
            return CEF_PLUGIN_ERROR;
        }

        w->weight[j] = x;
    }

    err->at = NULL;

    return CEF_PLUGIN_OK;
}


static void
weighted_free(void *state)
{
    free(state);
}


static int
weighted_select(void *state, const cef_plugin_req_t *req,
    const cef_plugin_cand_t *cands, uint32_t n, cef_plugin_pick_t *pick)
{
    weighted_t  *w = state;
    uint32_t     i, b, best = 0;
    double       total = 0, at, x;
    size_t       len;
    int          k;
    char         salt[640];

    for (i = 0; i < n; i++) {
        x = w->weight[cands[i].offer->index];
        total += x;
        if (x > w->weight[cands[best].offer->index]) {
            best = i;
        }
    }

    if (total <= 0) {
        return CEF_PLUGIN_OK;        /* every candidate weighs 0: none */
    }

    /* the salt: the slot and the candidate set */

    k = snprintf(salt, sizeof(salt), "weighted:%s", w->slot);
    len = k > 0 ? (size_t) k : 0;

    /* names, not indexes: editing other parts of the file moves nobody */

    for (i = 0; i < n && len < sizeof(salt) - 1; i++) {
        k = snprintf(salt + len, sizeof(salt) - len, ":%s",
                     cands[i].offer->name);
        len += k > 0 ? (size_t) k : 0;
    }

    if (len > sizeof(salt) - 1) {
        len = sizeof(salt) - 1;
    }

    b = req->bucket(req, salt, len);

    if (b == CEF_PLUGIN_NONE) {
        /* no visitor id to stick to: the heaviest candidate */
        pick->pick = best;
        return CEF_PLUGIN_OK;
    }

    at = (b + 0.5) / CEF_PLUGIN_BUCKETS * total;

    for (i = 0; i < n; i++) {
        x = w->weight[cands[i].offer->index];
        if (at < x) {
            break;
        }
        at -= x;
    }

    if (i == n) {
        i = n - 1;
        while (w->weight[cands[i].offer->index] <= 0) {
            i--;
        }
    }

    pick->pick = i;
    pick->bucket = b;

    return CEF_PLUGIN_OK;
}


const cef_plugin_t  cef_plugin_weighted = {
    CEF_PLUGIN_ABI_VERSION,
    "weighted",
    "weighted random among the matching offers, sticky per visitor",
    CEF_PLUGIN_ALL_CANDIDATES,
    NULL,
    NULL, 0,
    weighted_configure, weighted_free,
    weighted_select,
    NULL, NULL,
    NULL, NULL,
    NULL, NULL
};
