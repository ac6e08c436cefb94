/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * One decision per main request: who the visitor is, their profile read in
 * place inside one store session, the rule set's choice per slot and the
 * offers rendered into the request pool.  Made on first use (the header
 * filter of a personalised page, or a subrequest) and shared with every
 * subrequest.  Any failure leaves the request with no offers: the generic
 * page.
 */


#include "ngx_http_cef_module.h"

#include "cef_rules_visitor.h"


static void *ngx_http_cef_decide_read(void *data);
static ngx_int_t ngx_http_cef_decide_offers(ngx_http_request_t *r,
    ngx_http_cef_loc_conf_t *clcf, ngx_http_cef_identity_t *id,
    ngx_http_cef_decision_t *d);
static ngx_int_t ngx_http_cef_decide_shadow(ngx_http_request_t *r,
    ngx_http_cef_fleet_use_t *shadow, cef_rules_visitor_t *vis,
    ngx_str_t *visitor, ngx_http_cef_decision_t *d);


static ngx_http_cef_decision_t  ngx_http_cef_no_decision;

/* decisions over cef_budget in this worker (for the metrics) */
ngx_atomic_uint_t  ngx_http_cef_over_budget;


static uint64_t
ngx_http_cef_now_ns(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}


static void
ngx_http_cef_decision_end(ngx_http_cef_identity_t *id)
{
    if (id->store) {
        ngx_http_cef_store_end();
        id->store = 0;
    }

    id->view_valid = 0;
}


ngx_http_cef_decision_t *
ngx_http_cef_decide(ngx_http_request_t *r)
{
    ngx_http_cef_ctx_t        *ctx;
    ngx_http_cef_decision_t   *d;
    ngx_http_cef_main_conf_t  *cmcf;

    ctx = ngx_http_cef_get_ctx(r->main);
    if (ctx == NULL) {
        return &ngx_http_cef_no_decision;
    }

    if (ctx->decision) {
        return ctx->decision;
    }

    ctx->decision = &ngx_http_cef_no_decision;

    /* the profile is read in place: a store fault means the generic page */

    d = ngx_http_cef_store_guard(r, r->connection->log,
                                 ngx_http_cef_decide_read, r,
                                 &ngx_http_cef_no_decision);

    cmcf = ngx_http_get_module_main_conf(r, NGX_HTTP_CEF);

    if (cmcf->record && d != &ngx_http_cef_no_decision
        && ngx_http_cef_record_make(r, d) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "cef: could not make the decision record");
    }

    /* the shadow's record: made whether or not $cef_decision is used */

    if (d != &ngx_http_cef_no_decision && d->shadow
        && ngx_http_cef_record_make(r, d->shadow) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "cef: could not make the shadow decision record");
    }

    return d;
}


static void *
ngx_http_cef_decide_read(void *data)
{
    ngx_http_request_t *r = data;

    ngx_int_t                 rc;
    uint64_t                  start;
    ngx_http_cef_ctx_t       *ctx;
    ngx_http_cef_decision_t  *d;
    ngx_http_cef_identity_t  *id;
    ngx_http_cef_loc_conf_t  *clcf;

    ctx = ngx_http_cef_get_ctx(r->main);

    clcf = ngx_http_get_module_loc_conf(r, NGX_HTTP_CEF);

    start = ngx_http_cef_now_ns();

    id = ngx_http_cef_identify_open(r);
    if (id == NULL) {
        return ctx->decision;
    }

    d = (id->consent && (clcf->rules || clcf->fleet))
        ? ngx_pcalloc(r->main->pool, sizeof(ngx_http_cef_decision_t)) : NULL;

    if (d == NULL) {
        ngx_http_cef_decision_end(id);
        ctx->decision_ns = ngx_http_cef_now_ns() - start;
        return ctx->decision;
    }

    rc = ngx_http_cef_decide_offers(r, clcf, id, d);

    ngx_http_cef_decision_end(id);

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "cef: no decision for this request, serving the "
                      "generic page");
        d->failed = 1;
        d->noffers = 0;
        ctx->decision = d;
        return d;
    }

    ctx->decision_ns = ngx_http_cef_now_ns() - start;
    ngx_http_cef_metric_decision(ctx->decision_ns);

    if (clcf->budget && ctx->decision_ns > clcf->budget * 1000) {
        ngx_http_cef_over_budget++;
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "cef: decision took %uLus, over cef_budget %uLus: "
                      "serving the generic page",
                      ctx->decision_ns / 1000, (uint64_t) clcf->budget);
        d->over_budget = 1;
        d->noffers = 0;

    } else if (d->rules
               && ngx_http_cef_rules_send_states(r->main, d->rules)
                  != NGX_OK)
    {
        return ctx->decision;
    }

    /* states (caps) are sent only for offers that are shown */

    ctx->decision = d;

    return d;
}


/*
 * What experiments bucket by: the visitor id, or, with the visitor cookie
 * off, the profile a key recognised; NULL: neither.
 */

ngx_str_t *
ngx_http_cef_bucket_by(ngx_http_cef_identity_t *id)
{
    return id->visitor.len ? &id->visitor
           : id->profile_id.len ? &id->profile_id : NULL;
}


static ngx_int_t
ngx_http_cef_decide_offers(ngx_http_request_t *r,
    ngx_http_cef_loc_conf_t *clcf, ngx_http_cef_identity_t *id,
    ngx_http_cef_decision_t *d)
{
    ngx_int_t                     rc;
    uint32_t                      i, n;
    ngx_str_t                    *html, *visitor;
    cef_span_t                    key_type;
    const cef_rules_t            *rs;
    cef_rules_visitor_t           vis;
    cef_rules_choice_t           *choices;
    ngx_http_cef_offer_t         *offer;
    ngx_http_cef_main_conf_t     *cmcf;
    ngx_http_cef_rules_t         *rules;
    ngx_http_cef_fleet_use_t      use, shadow;
    ngx_http_cef_rules_result_t   res;

    visitor = ngx_http_cef_bucket_by(id);

    /* what the rules glue takes as time.now, for the record */
    d->now = ngx_time();
    d->utc_offset = ngx_cached_time->gmtoff * 60;

    /* a published set: the one this visitor gets now, pinned for r */

    shadow.rules = NULL;

    if (clcf->fleet) {
        if (ngx_http_cef_fleet_pick(r, clcf->fleet, visitor, &use, &shadow)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (use.rules == NULL) {
            return NGX_OK;              /* nothing to serve: generic page */
        }

        rules = use.rules;
        d->record_conf = use.record;

    } else {
        rules = clcf->rules;
        d->record_conf = clcf->record;
    }

    rs = ngx_http_cef_rules_set(rules);
    n = cef_rules_nslots(rs);

    key_type.data = (char *) id->key_type.data;
    key_type.len = id->key_type.len;

    /* recognised just now: the session is open and the view valid */

    if (!id->store && id->profile_id.len) {
        id->store = (ngx_http_cef_store_begin(r) == NGX_OK);
        id->view_valid = id->store
                         && ngx_http_cef_store_profile(r, id, &id->view)
                            == NGX_OK;
    }

    cef_rules_visitor_init(&vis, id->view_valid ? &id->view : NULL,
                           id->visitor_new, key_type);

    rc = ngx_http_cef_rules_decision(r, rules,
                                     cef_rules_visitor_lookup, &vis, visitor,
                                     1, 1, &res, NULL);
    choices = res.choices;
    html = res.html;

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    cmcf = ngx_http_get_module_main_conf(r, NGX_HTTP_CEF);

    if (cmcf->record && id->view_valid
        && cef_record_profile_digest(&id->view, &d->digest) == 0)
    {
        d->has_digest = 1;
    }

    d->rules = rules;
    d->choices = choices;
    d->slots = res.slots;
    d->offers = ngx_pcalloc(r->main->pool, n * sizeof(ngx_http_cef_offer_t));
    if (n && d->offers == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        offer = &d->offers[d->noffers];

        if (choices[i].offer == CEF_RULES_NONE) {
            continue;
        }

        offer->slot.data = (u_char *) cef_rules_slot_name(rs, i);
        offer->slot.len = ngx_strlen(offer->slot.data);
        offer->name.data = (u_char *) cef_rules_offer(rs,
                                                      choices[i].offer)->name;
        offer->name.len = ngx_strlen(offer->name.data);
        offer->html = html[i];
        offer->variant.data = (u_char *) ngx_http_cef_variant(d, i);
        offer->variant.len = ngx_strlen(offer->variant.data);

        d->noffers++;
    }

    if (shadow.rules) {
        return ngx_http_cef_decide_shadow(r, &shadow, &vis, visitor, d);
    }

    return NGX_OK;
}


/*
 * The shadow: the candidate decides too, with the same inputs and plugin
 * states, and only its record is kept ($cef_shadow_decision).  Nothing of
 * it is shown or sent (no state cookie).  Its failure is the shadow's
 * alone.
 */
static ngx_int_t
ngx_http_cef_decide_shadow(ngx_http_request_t *r,
    ngx_http_cef_fleet_use_t *shadow, cef_rules_visitor_t *vis,
    ngx_str_t *visitor, ngx_http_cef_decision_t *d)
{
    ngx_http_cef_decision_t      *sd;
    ngx_http_cef_rules_result_t   res;

    if (ngx_http_cef_rules_decision(r, shadow->rules,
                                    cef_rules_visitor_lookup, vis, visitor,
                                    1, 0, &res, NULL)
        != NGX_OK)
    {
        return NGX_OK;
    }

    sd = ngx_pcalloc(r->main->pool, sizeof(ngx_http_cef_decision_t));
    if (sd == NULL) {
        return NGX_OK;
    }

    sd->rules = shadow->rules;
    sd->choices = res.choices;
    sd->slots = res.slots;
    sd->record_conf = shadow->record;
    sd->now = d->now;
    sd->utc_offset = d->utc_offset;
    sd->digest = d->digest;
    sd->has_digest = d->has_digest;

    d->shadow = sd;

    return NGX_OK;
}


ngx_http_cef_offer_t *
ngx_http_cef_decision_offer(ngx_http_cef_decision_t *d, u_char *slot,
    size_t len)
{
    ngx_uint_t  i;

    for (i = 0; i < d->noffers; i++) {
        if (d->offers[i].slot.len == len
            && ngx_memcmp(d->offers[i].slot.data, slot, len) == 0)
        {
            return &d->offers[i];
        }
    }

    return NULL;
}


/*
 * The variant of slot i as logs and the API name it: the experiment's arm
 * ("control" for a holdout), else "treatment" when an offer is shown.
 */

const char *
ngx_http_cef_variant(ngx_http_cef_decision_t *d, ngx_uint_t i)
{
    if (d->slots && d->slots[i].variant) {
        return d->slots[i].variant;
    }

    return d->choices[i].offer == CEF_RULES_NONE ? "-" : "treatment";
}
