/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_decision: the decision loop with rule plugins (cef_plugin.h).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cef_bucket.h"
#include "cef_decision_int.h"
#include "cef_rules_int.h"
#include "cef_rules_goals.h"


/* What the plugin services need, reachable from cef_plugin_req_t.host. */
typedef struct {
    const cef_rules_t   *rs;
    cef_expr_eval_t     *ev;
    cef_decision_t      *d;
    cef_span_t           visitor;
} cef_decision_host_t;


void
cef_decision_set_weights(cef_decision_t *d, cef_decision_weights_pt fn,
    void *data)
{
    cef_decision_priv(d)->weights = fn;
    cef_decision_priv(d)->weights_data = data;
}


cef_decision_t *
cef_decision_create(const cef_rules_t *rs)
{
    uint32_t              i, nslots = rs->nslots, noffers = rs->noffers;
    cef_decision_t       *d;
    cef_decision_priv_t  *dp;

    dp = calloc(1, sizeof(cef_decision_priv_t));
    if (dp == NULL) {
        return NULL;
    }

    d = &dp->pub;
    d->rs = rs;
    d->hash = rs->hash;
    d->nslots = nslots;
    d->slots = calloc(nslots + 1, sizeof(cef_decision_slot_t));
    d->choices = calloc(nslots + 1, sizeof(cef_rules_choice_t));
    dp->blocked = calloc(noffers + 1, 1);
    dp->cands = calloc((size_t) (nslots + 1) * CEF_DECISION_MAX_CANDIDATES,
                       sizeof(cef_plugin_cand_t));
    dp->ncands = calloc(nslots + 1, sizeof(uint32_t));
    dp->shown = calloc(nslots + 1, sizeof(uint32_t));
    d->states = calloc(rs->nactive + 1, sizeof(cef_decision_state_t));

    if (d->slots == NULL || d->choices == NULL || dp->blocked == NULL
        || dp->cands == NULL || dp->ncands == NULL || dp->shown == NULL
        || d->states == NULL)
    {
        cef_decision_free(d);
        return NULL;
    }

    for (i = 0; i < rs->nactive; i++) {
        d->states[i].plugin = rs->active[i].p->name;
    }

    d->nstates = rs->nactive;

    return d;
}


void
cef_decision_free(cef_decision_t *d)
{
    cef_decision_priv_t  *dp;

    if (d == NULL) {
        return;
    }

    dp = cef_decision_priv(d);

    free(d->slots);
    free(d->choices);
    free(dp->blocked);
    free(dp->cands);
    free(dp->ncands);
    free(dp->shown);
    free(d->states);
    free(dp);
}


const cef_plugin_cand_t *
cef_decision_candidates(const cef_decision_t *d, uint32_t slot)
{
    return cef_decision_cpriv(d)->cands
           + (size_t) slot * CEF_DECISION_MAX_CANDIDATES;
}


void
cef_decision_set_state(cef_decision_t *d, const char *plugin, cef_span_t in)
{
    uint32_t  i;

    for (i = 0; i < d->nstates; i++) {
        if (strcmp(d->states[i].plugin, plugin) == 0) {
            d->states[i].in = in;
            return;
        }
    }
}


/* --- services for plugins ------------------------------------------------- */

uint32_t
cef_decision_bucket(const cef_plugin_req_t *req, const char *salt, size_t len)
{
    if (req->visitor.len == 0) {
        return CEF_PLUGIN_NONE;
    }

    return cef_bucket(salt, len, req->visitor.data, req->visitor.len);
}


static int
cef_req_eval(const cef_plugin_req_t *req, uint32_t id, cef_value_t *out)
{
    const cef_decision_host_t  *h = req->host;

    if (id >= h->rs->npexprs) {
        out->type = CEF_VAL_NIL;
        return 0;
    }

    cef_expr_value(h->rs->pexprs[id], h->ev, out);

    return out->type != CEF_VAL_NIL;
}


static cef_decision_state_t *
cef_req_state(const cef_plugin_req_t *req)
{
    const cef_decision_host_t  *h = req->host;
    const cef_plugin_t         *p = req->plugin;
    uint32_t                    i;

    for (i = 0; i < h->d->nstates; i++) {
        if (strcmp(h->d->states[i].plugin, p->name) == 0) {
            return &h->d->states[i];
        }
    }

    return NULL;
}


static int
cef_req_state_get(const cef_plugin_req_t *req, cef_span_t *out)
{
    cef_decision_state_t  *st = cef_req_state(req);

    if (st == NULL || st->in.len == 0) {
        return 0;
    }

    *out = st->in;
    return 1;
}


static int
cef_req_state_set(const cef_plugin_req_t *req, const char *p, size_t len,
    int64_t max_age)
{
    cef_decision_state_t  *st = cef_req_state(req);
    size_t                 i;
    char                   c;

    if (st == NULL || len > CEF_DECISION_STATE_MAX) {
        return CEF_PLUGIN_ERROR;
    }

    for (i = 0; i < len; i++) {
        c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'
              || c == ':' || c == '~'))
        {
            return CEF_PLUGIN_ERROR;
        }
    }

    memcpy(st->out, p, len);
    st->out_len = len;
    st->max_age = max_age;
    st->changed = 1;

    return CEF_PLUGIN_OK;
}


static int
cef_req_map_get(const cef_value_t *map, const char *key, size_t len,
    double *out)
{
    cef_span_t  k = { key, len };

    return map->type == CEF_VAL_NUM_MAP && cef_value_map_get(map, k, out);
}


static int
cef_req_array_has(const cef_value_t *array, const char *s, size_t len)
{
    cef_span_t  k = { s, len };

    return array->type == CEF_VAL_STR_ARRAY
           && cef_value_array_contains(array, k);
}


static int
cef_req_weights(const cef_plugin_req_t *req, const char *experiment,
    const char *salt, cef_plugin_weights_t *out)
{
    const cef_decision_host_t  *h = req->host;
    cef_decision_priv_t        *dp = cef_decision_priv(h->d);

    if (dp->weights == NULL || experiment == NULL || salt == NULL) {
        return 0;
    }

    return dp->weights(dp->weights_data, experiment, salt, out) == 1;
}


static void
cef_decision_fail(cef_decision_t *d, const char *plugin, const char *what)
{
    if (d->errors++ == 0) {
        snprintf(d->error, sizeof(d->error), "rule plugin \"%s\" failed in "
                 "%s", plugin, what);
    }
}


/* --- the decision --------------------------------------------------------- */

/* what an adaptive strategy reported beyond the pick, kept with the slot
   (the live split is copied: the plugin's may change before the log) */
static void
cef_decision_adaptive(const cef_rules_t *rs, uint32_t s,
    const cef_plugin_pick_t *pick, cef_decision_slot_t *ds)
{
    const cef_rules_experiment_t  *x;

    ds->sticky = pick->sticky;
    ds->weights_version = pick->weights_version;

    x = cef_rules_goals_slot_experiment(rs, s);

    if (pick->split && x && x->narms <= CEF_PLUGIN_MAX_ARMS) {
        memcpy(ds->split, pick->split, x->narms * sizeof(uint32_t));
        ds->nsplit = x->narms;
    }
}


/*
 * Add a candidate to slot s; the slot closes at its first unless its
 * strategy wants them all (closed: dp->shown keeps the count meanwhile).
 *
 * @return 1 if the slot closed.
 */

static inline uint32_t
cef_decision_add(const cef_rules_t *rs, cef_decision_priv_t *dp, uint32_t s,
    uint32_t offer, uint32_t rule)
{
    uint32_t           *ncands = dp->ncands;
    cef_plugin_cand_t  *c;

    c = &dp->cands[s * CEF_DECISION_MAX_CANDIDATES + ncands[s]++];
    c->offer = &rs->poffers[offer];
    c->rule = rule;
    c->priority = rs->rules[rule].priority;

    if (rs->strategy[s].all && ncands[s] < CEF_DECISION_MAX_CANDIDATES) {
        return 0;
    }

    dp->shown[s] = ncands[s];
    ncands[s] = CEF_RULES_NONE;

    return 1;
}


/*
 * The rules from the plan that may match (cand; NULL: every one), adding
 * candidates, until every slot is closed.  Inlined twice, so that without
 * an index the walk is a plain pointer walk.
 */
static inline __attribute__((always_inline)) void
cef_decision_walk(const cef_rules_t *rs, cef_expr_eval_t *ev,
    cef_decision_priv_t *dp, const uint64_t *cand, int64_t now)
{
    const cef_plan_rule_t   *pr;
    const cef_plan_offer_t  *po, *pe;
    uint32_t                 i, s, open = rs->nslots, n = rs->nrules;
    uint32_t                *ncands = dp->ncands;
    const uint8_t           *blocked = dp->blocked;

    for (i = cef_rules_next(cand, 0, n); i < n && open;
         i = cef_rules_next(cand, i + 1, n))
    {
        pr = &rs->plan[i];

        if (pr->simple) {
            s = pr->slot;

            if (ncands[s] == CEF_RULES_NONE || blocked[pr->offer]
                || (pr->when && !cef_expr_match(pr->when, ev)))
            {
                continue;
            }

            open -= cef_decision_add(rs, dp, s, pr->offer, pr->rule);
            continue;
        }

        po = rs->plan_offers + pr->first;
        pe = po + pr->n;

        for ( /* void */ ; po < pe; po++) {
            if (ncands[po->slot] != CEF_RULES_NONE && !blocked[po->offer]
                && now >= po->starts && now < po->ends)
            {
                break;
            }
        }

        if (po == pe || (pr->when && !cef_expr_match(pr->when, ev))) {
            continue;
        }

        for ( /* void */ ; po < pe; po++) {
            s = po->slot;

            if (ncands[s] == CEF_RULES_NONE || blocked[po->offer]
                || now < po->starts || now >= po->ends)
            {
                continue;
            }

            open -= cef_decision_add(rs, dp, s, po->offer, pr->rule);
        }
    }
}


uint32_t
cef_decision_make(const cef_rules_t *rs, cef_expr_eval_t *ev,
    const cef_expr_ctx_t *ctx, const cef_decision_input_t *in,
    cef_decision_t *d)
{
    const cef_plugin_inst_t  *si;
    cef_plugin_cand_t        *cands, *c;
    cef_decision_slot_t      *ds;
    cef_plugin_req_t          req;
    cef_plugin_pick_t         pick;
    cef_decision_host_t       host;
    const uint64_t           *cand;
    uint32_t                  i, s, shown = 0, nslots = rs->nslots;
    cef_decision_priv_t      *dp = cef_decision_priv(d);
    uint32_t                 *ncands = dp->ncands;
    uint8_t                  *blocked = dp->blocked;
    int64_t                   now = ctx->now;

    cef_expr_eval_reset(ev, ctx);

    host.rs = rs;
    host.ev = ev;
    host.d = d;
    host.visitor = in ? in->visitor : (cef_span_t) { "", 0 };

    memset(&req, 0, sizeof(req));
    req.now = now;
    req.utc_offset = ctx->utc_offset;
    req.visitor = host.visitor;
    req.bucket = cef_decision_bucket;
    req.eval = cef_req_eval;
    req.state_get = cef_req_state_get;
    req.state_set = cef_req_state_set;
    req.map_get = cef_req_map_get;
    req.array_has = cef_req_array_has;
    req.weights = cef_req_weights;
    req.host = &host;

    d->errors = 0;
    d->error[0] = '\0';
    dp->now = now;
    cands = dp->cands;

    for (i = 0; i < d->nstates; i++) {
        d->states[i].changed = 0;
        d->states[i].out_len = 0;
    }

    memset(blocked, 0, rs->noffers);

    for (i = 0; i < rs->nactive; i++) {
        if (rs->active[i].p->begin == NULL) {
            continue;
        }

        req.plugin = rs->active[i].p;

        if (rs->active[i].p->begin(rs->active[i].state, &req, blocked)
            != CEF_PLUGIN_OK)
        {
            cef_decision_fail(d, rs->active[i].p->name, "begin");
        }
    }

    for (s = 0; s < nslots; s++) {
        ncands[s] = 0;
    }

    /* rules in priority order, those the index says may match (the
     * others are false); a slot closes at its first candidate unless its
     * strategy wants them all */

    cand = cef_rules_candidates(rs, ev);

    if (cand) {
        cef_decision_walk(rs, ev, dp, cand, now);
    } else {
        cef_decision_walk(rs, ev, dp, NULL, now);
    }

    for (s = 0; s < nslots; s++) {
        if (ncands[s] == CEF_RULES_NONE) {
            ncands[s] = dp->shown[s];
        }
    }

    /* each slot's strategy */

    for (s = 0; s < nslots; s++) {
        si = &rs->strategy[s];
        ds = &d->slots[s];
        c = &cands[s * CEF_DECISION_MAX_CANDIDATES];

        ds->offer = CEF_RULES_NONE;
        ds->rule = CEF_RULES_NONE;
        ds->would_have = CEF_RULES_NONE;
        ds->would_have_rule = CEF_RULES_NONE;
        ds->bucket = CEF_RULES_NONE;
        ds->candidates = ncands[s];
        ds->plugin = si->p->name;
        ds->variant = NULL;
        ds->failed = 0;
        ds->sticky = CEF_RULES_NONE;
        ds->weights_version = 0;
        ds->nsplit = 0;

        if (ncands[s]) {
            pick.pick = CEF_PLUGIN_NONE;
            pick.would_have = CEF_PLUGIN_NONE;
            pick.bucket = CEF_PLUGIN_NONE;
            pick.variant = NULL;
            pick.split = NULL;
            pick.weights_version = 0;
            pick.sticky = CEF_PLUGIN_NONE;
            req.plugin = si->p;

            if (si->p->select(si->state, &req, c, ncands[s], &pick)
                != CEF_PLUGIN_OK
                || (pick.pick != CEF_PLUGIN_NONE && pick.pick >= ncands[s])
                || (pick.would_have != CEF_PLUGIN_NONE
                    && pick.would_have >= ncands[s]))
            {
                cef_decision_fail(d, si->p->name, "select");
                ds->failed = 1;

            } else {
                if (pick.pick != CEF_PLUGIN_NONE) {
                    ds->offer = c[pick.pick].offer->index;
                    ds->rule = c[pick.pick].rule;
                }

                if (pick.would_have != CEF_PLUGIN_NONE) {
                    ds->would_have = c[pick.would_have].offer->index;
                    ds->would_have_rule = c[pick.would_have].rule;
                }

                ds->bucket = pick.bucket;
                ds->variant = pick.variant;

                if (pick.sticky != CEF_PLUGIN_NONE) {
                    cef_decision_adaptive(rs, s, &pick, ds);
                }
            }
        }

        d->choices[s].offer = ds->offer;
        d->choices[s].rule = ds->rule;
        dp->shown[s] = ds->offer;
        shown += ds->offer != CEF_RULES_NONE;
    }

    for (i = 0; i < rs->nactive; i++) {
        if (rs->active[i].p->end) {
            req.plugin = rs->active[i].p;
            rs->active[i].p->end(rs->active[i].state, &req, dp->shown, nslots);
        }
    }

    for (i = 0; i < d->nstates; i++) {
        d->states[i].in.len = 0;
    }

    return shown;
}


/* --- signed state --------------------------------------------------------- */

int
cef_decision_state_verify(cef_signer_t *s, const char *plugin,
    cef_span_t value, cef_span_t *out)
{
    cef_span_t  name;

    if (s == NULL) {
        return -1;
    }

    name.data = plugin;
    name.len = strlen(plugin);

    return cef_sign_verify_state(s, name, value, out) == CEF_SIGN_OK ? 0 : -1;
}


size_t
cef_decision_state_sign(cef_signer_t *s, const char *plugin,
    const char *state, size_t len, char *buf)
{
    cef_span_t  name, v;

    name.data = plugin;
    name.len = strlen(plugin);
    v.data = state;
    v.len = len;

    if (s == NULL
        || cef_sign_state(s, name, v, buf + len + 1) != CEF_SIGN_OK)
    {
        return 0;
    }

    memcpy(buf, state, len);
    buf[len] = '.';

    return len + 1 + CEF_SIGN_SIG_LEN;
}


/* --- the log line --------------------------------------------------------- */

/*
 * The line is made for every personalised response, so it is put
 * together by hand: snprintf() per field cost more than the rules.
 */
typedef struct {
    char    *buf;
    size_t   size;
    size_t   len;       /* the whole line's, even past size */
} cef_line_t;


static void
cef_line_put(cef_line_t *l, const char *s, size_t n)
{
    size_t  room;

    if (l->len + 1 < l->size) {
        room = l->size - 1 - l->len;
        memcpy(l->buf + l->len, s, n < room ? n : room);
    }

    l->len += n;
}


static void
cef_line_str(cef_line_t *l, const char *s)
{
    cef_line_put(l, s, strlen(s));
}


static void
cef_line_uint(cef_line_t *l, uint32_t v)
{
    char    tmp[10];
    size_t  n = sizeof(tmp);

    do {
        tmp[--n] = (char) ('0' + v % 10);
        v /= 10;
    } while (v);

    cef_line_put(l, tmp + n, sizeof(tmp) - n);
}


size_t
cef_decision_format(const cef_decision_t *d, char *buf, size_t size)
{
    const cef_decision_slot_t  *ds;
    const cef_rules_t          *rs = d->rs;
    uint32_t                    s;
    size_t                      n;
    cef_line_t                  l;

    l.buf = buf;
    l.size = size;
    l.len = 0;

    n = strlen(d->hash);
    cef_line_put(&l, "rules=", 6);
    cef_line_put(&l, d->hash, n < 12 ? n : 12);

    for (s = 0; s < d->nslots; s++) {
        ds = &d->slots[s];

        cef_line_put(&l, " ", 1);
        cef_line_str(&l, rs->slots[s]);
        cef_line_put(&l, "=", 1);
        cef_line_str(&l, ds->offer == CEF_RULES_NONE
                         ? "-" : rs->offers[ds->offer].name);
        cef_line_put(&l, "/", 1);
        cef_line_str(&l, ds->rule == CEF_RULES_NONE
                         ? "-" : rs->rules[ds->rule].name);
        cef_line_put(&l, "/", 1);
        cef_line_str(&l, ds->plugin);

        if (ds->variant) {
            cef_line_put(&l, ":", 1);
            cef_line_str(&l, ds->variant);
        }

        if (ds->bucket != CEF_RULES_NONE) {
            cef_line_put(&l, ":", 1);
            cef_line_uint(&l, ds->bucket);
        }

        if (ds->would_have != CEF_RULES_NONE) {
            cef_line_put(&l, ":would=", 7);
            cef_line_str(&l, rs->offers[ds->would_have].name);
        }

        if (ds->failed) {
            cef_line_put(&l, ":failed", 7);
        }
    }

    if (size) {
        buf[l.len < size ? l.len : size - 1] = '\0';
    }

    return l.len;
}
