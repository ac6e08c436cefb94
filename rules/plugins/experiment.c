/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * experiment: holdouts and A/B(/n) tests on a slot.
 *
 *     slots:
 *       hero:
 *         holdout: 10%                 # 0..100 %, default 0
 *         experiment:                  # optional
 *           name: hero-q4              # the salt of the bucketing...
 *           salt: hero-q4-v2           # ...unless given explicitly
 *           variants:                  # weights summing to 100
 *             a: 50
 *             b: {weight: 50, offers: [hero-new]}
 *
 * Each visitor's bucket is bucket(salt, visitor id) in 0..9999
 * (req->bucket): deterministic, so a visitor keeps their arm across
 * requests, reloads and edges, and independent of every other salt, so
 * adding an experiment or a rule moves nobody.  Buckets [0, holdout) are
 * the control group: they get no offer (the page's default content) and
 * the decision records the offer they would have seen.  The rest is split
 * among the arms in order of their weights (cut-offs computed here, once).
 *
 * Offers named in an arm's offers: are shown only in the arms naming
 * them, and are preferred there: an arm shows its highest-priority own
 * offer that matched, else the highest-priority offer named by no arm.
 * Only then does select need every candidate; otherwise every visitor
 * gets the first candidate (control: as would-have) and slot_configure
 * asks for that one alone (CEF_PLUGIN_FIRST_ONLY), so that a holdout
 * costs no extra rule evaluations.  Without an experiment the treated
 * visitors' variant is "treatment".  Without a known visitor id nobody
 * is bucketed: the slot behaves as without the experiment (variant NULL).
 *
 * The experiment hook describes the slot's arms for the records: the
 * holdout is the arm "control" (listed first, when there is one), then
 * the variants, each with its share of all visitors in buckets (basis
 * points); a holdout without variants is {control, treatment}.  arm
 * answers which of those a visitor is in, with the same cut-offs select
 * uses (exp_arm(), the one place that maps a bucket to an arm).
 */

#include <stdio.h>

#include "cef_plugin.h"


#define EXP_MAX_ARMS  32


typedef struct {
    char        *name;
    uint32_t     upto;          /* buckets below this (and >= the previous
                                   arm's) belong to the arm */
} exp_arm_t;


typedef struct {
    char        *name;          /* experiment name: (name:, else salt) */
    char        *salt;
    size_t       salt_len;
    uint32_t     holdout;       /* buckets [0, holdout) are control */
    uint32_t     narms;
    exp_arm_t    arms[EXP_MAX_ARMS];

    /* the experiment hook's view: control (if any), then the arms */
    uint32_t     nview;
    uint32_t     first;         /* index in view of arms[0] */
    const char  *view[EXP_MAX_ARMS + 1];
    uint32_t     split[EXP_MAX_ARMS + 1];

    uint32_t     noffers;
    uint32_t     only[];        /* per offer: bit per arm it is limited to,
                                   0 for every arm */
} exp_t;


static void exp_free(void *state);


/* The arms as the experiment hook lists them, with their shares. */
static void
exp_view(exp_t *e)
{
    uint32_t  i, from;

    e->nview = 0;

    if (e->holdout || e->narms == 0) {
        e->view[0] = "control";
        e->split[0] = e->holdout;
        e->nview = 1;
    }

    e->first = e->nview;

    if (e->narms == 0) {
        e->view[1] = "treatment";
        e->split[1] = CEF_PLUGIN_BUCKETS - e->holdout;
        e->nview = 2;
        return;
    }

    for (from = e->holdout, i = 0; i < e->narms; i++) {
        e->view[e->nview] = e->arms[i].name;
        e->split[e->nview++] = e->arms[i].upto - from;
        from = e->arms[i].upto;
    }
}


static char *
exp_strdup(const char *s)
{
    size_t  n = strlen(s) + 1;
    char   *p = malloc(n);

    if (p) {
        memcpy(p, s, n);
    }

    return p;
}


static int
exp_percent(const cef_conf_t *c, double *out)
{
    char        buf[64];
    size_t      len;
    cef_conf_t  tmp;

    if (c->type != CEF_CONF_SCALAR) {
        return -1;
    }

    len = strlen(c->value);
    if (len == 0 || len >= sizeof(buf)) {
        return -1;
    }

    memcpy(buf, c->value, len + 1);

    if (buf[len - 1] == '%') {
        buf[--len] = '\0';
    }

    tmp = *c;
    tmp.value = buf;

    return cef_conf_number(&tmp, out);
}


static int
exp_fail(cef_plugin_error_t *err, const cef_conf_t *at, const char *msg,
    const char *arg)
{
    err->at = at;
    snprintf(err->msg, sizeof(err->msg), msg, arg);
    return CEF_PLUGIN_ERROR;
}


static int
exp_arms(const cef_plugin_rules_t *rules, uint32_t slot, exp_t *e,
    const cef_conf_t *vs, cef_plugin_error_t *err)
{
    uint32_t           i, j, k;
    double             w, sum = 0, cum = 0;
    const cef_conf_t  *arm, *wc, *offers, *o;
    uint32_t           treated = CEF_PLUGIN_BUCKETS - e->holdout;

    if (vs == NULL || vs->type != CEF_CONF_MAP || vs->n == 0) {
        return exp_fail(err, vs, "variants: must map arm names "
                        "to weights, e.g. {a: 50, b: 50}%s", "");
    }

    if (vs->n > EXP_MAX_ARMS) {
        return exp_fail(err, vs, "more than 32 variants%s", "");
    }

    for (i = 0; i < vs->n; i++) {
        arm = &vs->items[i];
        wc = arm;
        offers = NULL;

        if (arm->type == CEF_CONF_MAP) {
            for (j = 0; j < arm->n; j++) {
                if (strcmp(arm->items[j].key, "weight") != 0
                    && strcmp(arm->items[j].key, "offers") != 0)
                {
                    return exp_fail(err, &arm->items[j], "unknown key '%s' "
                                    "in a variant (weight: and offers:)",
                                    arm->items[j].key);
                }
            }

            wc = cef_conf_get(arm, "weight");
            offers = cef_conf_get(arm, "offers");

            if (wc == NULL) {
                return exp_fail(err, arm, "variant '%s' has no weight:",
                                arm->key);
            }
        }

        if (cef_conf_number(wc, &w) != 0 || w < 0 || w > 100) {
            return exp_fail(err, wc, "weight of variant '%s' must be a "
                            "number from 0 to 100", arm->key);
        }

        if (strcmp(arm->key, "control") == 0) {
            return exp_fail(err, arm, "'%s' is reserved for the holdout "
                            "(use holdout:)", arm->key);
        }

        sum += w;
        e->arms[i].name = exp_strdup(arm->key);
        if (e->arms[i].name == NULL) {
            return exp_fail(err, NULL, "out of memory%s", "");
        }
        e->narms++;

        cum += w;
        e->arms[i].upto = e->holdout
                          + (uint32_t) (treated * cum / 100 + 0.5);

        if (offers == NULL) {
            continue;
        }

        if (offers->type == CEF_CONF_SCALAR) {
            o = offers;
            k = 1;
        } else if (offers->type == CEF_CONF_LIST) {
            o = offers->items;
            k = offers->n;
        } else {
            return exp_fail(err, offers, "offers: lists offer names%s", "");
        }

        for ( /* void */ ; k; k--, o++) {
            if (o->type != CEF_CONF_SCALAR) {
                return exp_fail(err, o, "offers: lists offer names%s", "");
            }

            for (j = 0; j < rules->noffers; j++) {
                if (strcmp(rules->offers[j].name, o->value) == 0) {
                    break;
                }
            }

            if (j == rules->noffers || rules->offers[j].slot_id != slot) {
                err->at = o;
                snprintf(err->msg, sizeof(err->msg), "variant '%s' names "
                         "'%s', which is no offer of slot '%s'", arm->key,
                         o->value, rules->slots[slot]);
                return CEF_PLUGIN_ERROR;
            }

            e->only[j] |= 1u << i;
        }
    }

    if (sum < 100 - 1e-9 || sum > 100 + 1e-9) {
        err->at = vs;
        snprintf(err->msg, sizeof(err->msg), "variant weights must sum to "
                 "100, not %g", sum);
        return CEF_PLUGIN_ERROR;
    }

    e->arms[e->narms - 1].upto = CEF_PLUGIN_BUCKETS;

    return CEF_PLUGIN_OK;
}


static int
exp_configure(const cef_plugin_rules_t *rules, uint32_t slot,
    const cef_conf_t *conf, void **state, cef_plugin_error_t *err)
{
    uint32_t           i;
    exp_t             *e;
    double             h;
    const cef_conf_t  *c, *x, *name, *salt;

    e = calloc(1, sizeof(exp_t) + (rules->noffers + 1) * sizeof(uint32_t));
    if (e == NULL) {
        return exp_fail(err, NULL, "out of memory%s", "");
    }

    *state = e;
    e->noffers = rules->noffers;

    for (i = 0; i < conf->n; i++) {
        if (strcmp(conf->items[i].key, "holdout") != 0
            && strcmp(conf->items[i].key, "experiment") != 0
            && strcmp(conf->items[i].key, "salt") != 0)
        {
            return exp_fail(err, &conf->items[i], "unknown key '%s' "
                            "(experiment takes holdout:, experiment: and "
                            "salt:)", conf->items[i].key);
        }
    }

    c = cef_conf_get(conf, "holdout");
    if (c) {
        if (exp_percent(c, &h) != 0 || h < 0 || h > 100) {
            return exp_fail(err, c, "holdout must be a percentage from 0%% "
                            "to 100%%, not '%s'",
                            c->value ? c->value : "a collection");
        }

        e->holdout = (uint32_t) (h * CEF_PLUGIN_BUCKETS / 100 + 0.5);
    }

    x = cef_conf_get(conf, "experiment");
    salt = cef_conf_get(conf, "salt");
    name = NULL;

    if (x) {
        if (x->type != CEF_CONF_MAP) {
            return exp_fail(err, x, "must be a mapping with name: and "
                            "variants:%s", "");
        }

        for (i = 0; i < x->n; i++) {
            if (strcmp(x->items[i].key, "name") != 0
                && strcmp(x->items[i].key, "salt") != 0
                && strcmp(x->items[i].key, "variants") != 0)
            {
                return exp_fail(err, &x->items[i], "unknown key '%s' in "
                                "experiment (name:, salt:, variants:)",
                                x->items[i].key);
            }
        }

        name = cef_conf_get(x, "name");
        if (name == NULL || name->type != CEF_CONF_SCALAR
            || name->value[0] == '\0')
        {
            return exp_fail(err, name ? name : x, "name: is missing%s", "");
        }

        if (cef_conf_get(x, "salt")) {
            salt = cef_conf_get(x, "salt");
        }

        if (exp_arms(rules, slot, e, cef_conf_get(x, "variants"), err)
            != CEF_PLUGIN_OK)
        {
            return CEF_PLUGIN_ERROR;
        }

    } else if (c == NULL) {
        return exp_fail(err, NULL, "needs holdout: or experiment:%s", "");
    }

    if (salt && (salt->type != CEF_CONF_SCALAR || salt->value[0] == '\0')) {
        return exp_fail(err, salt, "salt must be a non-empty string%s", "");
    }

    e->salt = exp_strdup(salt ? salt->value
                              : name ? name->value : rules->slots[slot]);
    if (e->salt == NULL) {
        return exp_fail(err, NULL, "out of memory%s", "");
    }

    e->salt_len = strlen(e->salt);

    e->name = exp_strdup(name ? name->value : e->salt);
    if (e->name == NULL) {
        return exp_fail(err, NULL, "out of memory%s", "");
    }

    exp_view(e);

    /* without offers reserved to arms every visitor (control's would-have
       included) gets the first candidate: the slot needs no other */

    for (i = 0; i < e->noffers; i++) {
        if (e->only[i]) {
            return CEF_PLUGIN_OK;
        }
    }

    return CEF_PLUGIN_FIRST_ONLY;
}


static void
exp_free(void *state)
{
    exp_t     *e = state;
    uint32_t   i;

    for (i = 0; i < e->narms; i++) {
        free(e->arms[i].name);
    }

    free(e->name);
    free(e->salt);
    free(e);
}


/*
 * The candidate an arm shows: the first (highest-priority) candidate among
 * the arm's own offers, else the first not limited to some arm.  arm -1:
 * no arm (control's would-have, unbucketed visitors).
 */
static uint32_t
exp_first(const exp_t *e, const cef_plugin_cand_t *cands, uint32_t n,
    int arm)
{
    uint32_t  i, only, common = CEF_PLUGIN_NONE;

    for (i = 0; i < n; i++) {
        only = e->only[cands[i].offer->index];

        if (arm >= 0 && (only & (1u << arm))) {
            return i;
        }

        if (only == 0 && common == CEF_PLUGIN_NONE) {
            common = i;
            if (arm < 0) {
                break;
            }
        }
    }

    return common;
}


/*
 * The arm of bucket b: an index into arms, or -1 for the holdout's
 * control group (and -2 for "treatment", a holdout without variants).
 */
static int
exp_arm(const exp_t *e, uint32_t b)
{
    uint32_t  i;

    if (b < e->holdout) {
        return -1;
    }

    if (e->narms == 0) {
        return -2;
    }

    for (i = 0; i + 1 < e->narms && b >= e->arms[i].upto; i++) {
        /* void */
    }

    return (int) i;
}


static int
exp_select(void *state, const cef_plugin_req_t *req,
    const cef_plugin_cand_t *cands, uint32_t n, cef_plugin_pick_t *pick)
{
    exp_t     *e = state;
    uint32_t   b;
    int        arm;

    b = req->bucket(req, e->salt, e->salt_len);

    if (b == CEF_PLUGIN_NONE) {
        pick->pick = exp_first(e, cands, n, -1);
        return CEF_PLUGIN_OK;
    }

    pick->bucket = b;
    arm = exp_arm(e, b);

    if (arm == -1) {
        pick->variant = "control";
        pick->would_have = exp_first(e, cands, n, -1);
        return CEF_PLUGIN_OK;
    }

    if (arm == -2) {
        pick->variant = "treatment";
        pick->pick = exp_first(e, cands, n, -1);
        return CEF_PLUGIN_OK;
    }

    pick->variant = e->arms[arm].name;
    pick->pick = exp_first(e, cands, n, arm);

    return CEF_PLUGIN_OK;
}


static int
exp_experiment(const void *state, cef_plugin_experiment_t *out)
{
    const exp_t  *e = state;

    out->name = e->name;
    out->salt = e->salt;
    out->narms = e->nview;
    out->arms = e->view;
    out->split = e->split;

    return 1;
}


static uint32_t
exp_arm_of(const void *state, const cef_plugin_req_t *req)
{
    const exp_t  *e = state;
    uint32_t      b;
    int           arm;

    b = req->bucket(req, e->salt, e->salt_len);

    if (b == CEF_PLUGIN_NONE) {
        return CEF_PLUGIN_NONE;
    }

    arm = exp_arm(e, b);

    /* control is view[0]; "treatment" follows it; arms from e->first */

    return arm == -1 ? 0 : arm == -2 ? 1 : e->first + (uint32_t) arm;
}


const cef_plugin_t  cef_plugin_experiment = {
    CEF_PLUGIN_ABI_VERSION,
    "experiment",
    "holdouts and experiments with deterministic bucketing",
    CEF_PLUGIN_ALL_CANDIDATES,
    NULL,
    NULL, 0,
    exp_configure, exp_free,
    exp_select,
    NULL, NULL,
    NULL, NULL,
    exp_experiment, exp_arm_of
};
