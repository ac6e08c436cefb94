/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * $cef_visitor, $cef_visitor_new, $cef_profile, $cef_key_type,
 * $cef_consent and $cef_attr_NAME.  Reading any of them resolves the
 * visitor (once per main request).  $cef_offers, $cef_variant and
 * $cef_decision_us decide; $cef_decision (the decision record) only
 * reports a decision the request made; $cef_store_age reads the store's
 * metadata.
 */


#include "ngx_http_cef_module.h"

#include "cef_text.h"


typedef enum {
    NGX_HTTP_CEF_VAR_VISITOR = 0,
    NGX_HTTP_CEF_VAR_VISITOR_NEW,
    NGX_HTTP_CEF_VAR_PROFILE,
    NGX_HTTP_CEF_VAR_KEY_TYPE,
    NGX_HTTP_CEF_VAR_CONSENT,
    NGX_HTTP_CEF_VAR_OFFERS,
    NGX_HTTP_CEF_VAR_VARIANT
} ngx_http_cef_var_e;


static ngx_int_t ngx_http_cef_set_safe_value(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, u_char *data, size_t len);
static ngx_int_t ngx_http_cef_identity_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_cef_decision_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_cef_decision_us_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_cef_attr_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_cef_goal_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_cef_record_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_cef_shadow_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_cef_store_age_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_cef_rules_log_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_http_cef_rules_t *ngx_http_cef_pinned_rules(
    ngx_http_request_t *r);


static ngx_http_variable_t  ngx_http_cef_vars[] = {

    { ngx_string("cef_visitor"), NULL, ngx_http_cef_identity_variable,
      NGX_HTTP_CEF_VAR_VISITOR, 0, 0 },

    { ngx_string("cef_visitor_new"), NULL, ngx_http_cef_identity_variable,
      NGX_HTTP_CEF_VAR_VISITOR_NEW, 0, 0 },

    { ngx_string("cef_profile"), NULL, ngx_http_cef_identity_variable,
      NGX_HTTP_CEF_VAR_PROFILE, 0, 0 },

    { ngx_string("cef_key_type"), NULL, ngx_http_cef_identity_variable,
      NGX_HTTP_CEF_VAR_KEY_TYPE, 0, 0 },

    { ngx_string("cef_consent"), NULL, ngx_http_cef_identity_variable,
      NGX_HTTP_CEF_VAR_CONSENT, 0, 0 },

    { ngx_string("cef_offers"), NULL, ngx_http_cef_decision_variable,
      NGX_HTTP_CEF_VAR_OFFERS, 0, 0 },

    { ngx_string("cef_variant"), NULL, ngx_http_cef_decision_variable,
      NGX_HTTP_CEF_VAR_VARIANT, 0, 0 },

    { ngx_string("cef_decision_us"), NULL, ngx_http_cef_decision_us_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("cef_goal"), NULL, ngx_http_cef_goal_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("cef_decision"), NULL, ngx_http_cef_record_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("cef_shadow_decision"), NULL, ngx_http_cef_shadow_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("cef_store_age"), NULL, ngx_http_cef_store_age_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("cef_attr_"), NULL, ngx_http_cef_attr_variable,
      0, NGX_HTTP_VAR_PREFIX, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_cef_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    ngx_http_cef_rules_decision_get = ngx_http_cef_rules_log_variable;
    ngx_http_cef_rules_pinned = ngx_http_cef_pinned_rules;

    for (v = ngx_http_cef_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static void
ngx_http_cef_set_value(ngx_http_variable_value_t *v, u_char *data,
    size_t len)
{
    v->len = len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = data;
}


/*
 * Values that carry profile data (written by the CDP, untrusted for form)
 * or what a client sent end up in add_header, proxy_set_header and logs: a
 * CR, LF or NUL there would start a header of its own.  Control bytes, DEL
 * and "\" are written as "\xHH" here, once for every such variable; the
 * common value needs no copy.
 */

static ngx_int_t
ngx_http_cef_set_safe_value(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, u_char *data, size_t len)
{
    u_char  *p;
    size_t   n;

    n = cef_text_escape_ctl((const char *) data, len, NULL, 0);

    if (n != len) {
        p = ngx_pnalloc(r->pool, n);
        if (p == NULL) {
            return NGX_ERROR;
        }

        (void) cef_text_escape_ctl((const char *) data, len, (char *) p, n);
        data = p;
    }

    ngx_http_cef_set_value(v, data, n);

    return NGX_OK;
}


static ngx_int_t
ngx_http_cef_identity_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                *s;
    ngx_http_cef_identity_t  *id;

    id = ngx_http_cef_identify_guarded(r);
    if (id == NULL) {
        return NGX_ERROR;
    }

    switch (data) {

    case NGX_HTTP_CEF_VAR_VISITOR_NEW:
        ngx_http_cef_set_value(v, (u_char *) (id->visitor_new ? "1" : "0"), 1);
        return NGX_OK;

    case NGX_HTTP_CEF_VAR_CONSENT:
        ngx_http_cef_set_value(v, (u_char *) (id->consent ? "1" : "0"), 1);
        return NGX_OK;

    case NGX_HTTP_CEF_VAR_VISITOR:
        s = &id->visitor;
        break;

    case NGX_HTTP_CEF_VAR_PROFILE:
        s = &id->profile_id;
        break;

    default: /* NGX_HTTP_CEF_VAR_KEY_TYPE */
        s = &id->key_type;
        break;
    }

    return ngx_http_cef_set_safe_value(r, v, s->data, s->len);
}


static ngx_int_t
ngx_http_cef_attr_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t *var = (ngx_str_t *) data;

    ngx_str_t                 name, value;
    ngx_http_cef_identity_t  *id;

    id = ngx_http_cef_identify_guarded(r);
    if (id == NULL) {
        return NGX_ERROR;
    }

    /* nginx passes prefix variables their full (lower-cased) name */
    name.data = var->data + sizeof("cef_attr_") - 1;
    name.len = var->len - (sizeof("cef_attr_") - 1);

    if (ngx_http_cef_store_attr(r, id, &name, &value) != NGX_OK) {
        ngx_str_null(&value);
    }

    return ngx_http_cef_set_safe_value(r, v, value.data, value.len);
}


/*
 * "SLOT=VALUE,..." over every slot of the rule set, in its order: the offer
 * shown ($cef_offers) or the variant ($cef_variant), "-" for none.
 */

static ngx_int_t
ngx_http_cef_decision_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                   *p;
    size_t                    len;
    uint32_t                  i, n;
    const char               *slot, *value;
    const cef_rules_t        *rs;
    ngx_http_cef_decision_t  *d;

    d = ngx_http_cef_decide(r);

    if (d->rules == NULL) {
        ngx_http_cef_set_value(v, (u_char *) "", 0);
        return NGX_OK;
    }

    rs = ngx_http_cef_rules_set(d->rules);
    n = cef_rules_nslots(rs);
    len = 0;

    for (i = 0; i < n; i++) {
        len += ngx_strlen(cef_rules_slot_name(rs, i)) + 2
               + (d->choices[i].offer == CEF_RULES_NONE ? 1
                  : ngx_strlen(cef_rules_offer(rs, d->choices[i].offer)->name))
               + (d->slots && d->slots[i].variant
                  ? ngx_strlen(d->slots[i].variant) : 0)
               + sizeof("treatment");
    }

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;

    for (i = 0; i < n; i++) {
        slot = cef_rules_slot_name(rs, i);

        if (data == NGX_HTTP_CEF_VAR_VARIANT && !d->over_budget
            && d->slots && d->slots[i].variant)
        {
            /* a holdout shows nothing, but is in the control group */
            value = d->slots[i].variant;

        } else if (d->choices[i].offer == CEF_RULES_NONE || d->over_budget) {
            value = "-";

        } else if (data == NGX_HTTP_CEF_VAR_OFFERS) {
            value = cef_rules_offer(rs, d->choices[i].offer)->name;

        } else {
            value = ngx_http_cef_variant(d, i);
        }

        p = ngx_sprintf(p, "%s%s=%s", i ? "," : "", slot, value);
    }

    /* a third-party plugin names its variants */
    return ngx_http_cef_set_safe_value(r, v, v->data, p - v->data);
}


static ngx_int_t
ngx_http_cef_decision_us_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char              *p;
    uint64_t             ns;
    ngx_http_cef_ctx_t  *ctx;

    (void) ngx_http_cef_decide(r);

    ctx = ngx_http_get_module_ctx(r->main, NGX_HTTP_CEF);
    ns = ctx ? ctx->decision_ns : 0;

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN + 4);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_http_cef_set_value(v, p, ngx_sprintf(p, "%uL.%03uL", ns / 1000,
                                             ns % 1000)
                                 - p);
    v->no_cacheable = 1;

    return NGX_OK;
}


/*
 * The record of the decision this request made (docs/observability.md),
 * empty if it made none, or one that shows nothing outside an experiment.
 * Reading it never makes a decision: a request that was not personalised
 * (an image, a page of another type) logs nothing.
 */

static ngx_int_t
ngx_http_cef_record_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_cef_ctx_t       *ctx;
    ngx_http_cef_decision_t  *d;

    ctx = ngx_http_get_module_ctx(r->main, NGX_HTTP_CEF);
    d = ctx ? ctx->decision : NULL;

    if (d && !d->recorded && ngx_http_cef_record_make(r, d) != NGX_OK) {
        return NGX_ERROR;
    }

    if (d == NULL || d->record.len == 0) {
        ngx_http_cef_set_value(v, (u_char *) "", 0);

    } else {
        ngx_http_cef_set_value(v, d->record.data, d->record.len);
    }

    v->no_cacheable = 1;

    return NGX_OK;
}


/*
 * The record the shadow candidate of a rule set served from the store
 * would have made (docs/deploying-rules.md): empty unless the visitor was
 * in the shadow's sample.  Made at decision time; never shown.
 */

static ngx_int_t
ngx_http_cef_shadow_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_cef_ctx_t       *ctx;
    ngx_http_cef_decision_t  *d, *sd;

    ctx = ngx_http_get_module_ctx(r->main, NGX_HTTP_CEF);
    d = ctx ? ctx->decision : NULL;
    sd = d ? d->shadow : NULL;

    if (sd == NULL || sd->record.len == 0) {
        ngx_http_cef_set_value(v, (u_char *) "", 0);

    } else {
        ngx_http_cef_set_value(v, sd->record.data, sd->record.len);
    }

    v->no_cacheable = 1;

    return NGX_OK;
}


/*
 * The record of the goal this request reached (cef_goal, docs/goals.md),
 * made in the header filter; empty before that and for no goal.
 */

static ngx_int_t
ngx_http_cef_goal_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_cef_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, NGX_HTTP_CEF);

    if (ctx == NULL || ctx->goal.len == 0) {
        ngx_http_cef_set_value(v, (u_char *) "", 0);

    } else {
        ngx_http_cef_set_value(v, ctx->goal.data, ctx->goal.len);
    }

    v->no_cacheable = 1;

    return NGX_OK;
}


/* seconds since the store's last full load or applied delta batch */

static ngx_int_t
ngx_http_cef_store_age_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char            *p;
    time_t             age;
    cef_store_info_t   info;

    if (ngx_http_cef_store_info(r, &info) != NGX_OK) {
        v->not_found = 1;
        return NGX_OK;
    }

    age = ngx_http_cef_store_age(&info);

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_http_cef_set_value(v, p, ngx_sprintf(p, "%T", age) - p);
    v->no_cacheable = 1;

    return NGX_OK;
}


/*
 * For $cef_rules_offers and $cef_rules_html in a store:NAME location: the
 * set of the request's decision (pinned for it: the live version or this
 * visitor's canary); without a decision (no consent, say) the live one.
 */

static ngx_http_cef_rules_t *
ngx_http_cef_pinned_rules(ngx_http_request_t *r)
{
    ngx_http_cef_decision_t   *d;
    ngx_http_cef_loc_conf_t   *clcf;
    ngx_http_cef_fleet_use_t   use, shadow;

    clcf = ngx_http_get_module_loc_conf(r, NGX_HTTP_CEF);

    if (clcf->fleet == NULL || clcf->fleet == NGX_CONF_UNSET_PTR) {
        return NULL;
    }

    d = ngx_http_cef_decide(r);

    if (d->rules) {
        return d->rules;
    }

    if (ngx_http_cef_fleet_pick(r, clcf->fleet, NULL, &use, &shadow)
        != NGX_OK)
    {
        return NULL;
    }

    return use.rules;
}


/*
 * $cef_rules_decision, registered by cef_rules: the log line of this
 * request's decision (cef_decision_format()).
 */

static ngx_int_t
ngx_http_cef_rules_log_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_cef_decision_t  *d;

    size_t                    len;
    cef_decision_t            view;

    d = ngx_http_cef_decide(r);

    if (d->log.data == NULL && d->rules && d->slots) {
        ngx_memzero(&view, sizeof(cef_decision_t));
        view.rs = ngx_http_cef_rules_set(d->rules);
        view.hash = cef_rules_hash(view.rs);
        view.nslots = cef_rules_nslots(view.rs);
        view.slots = d->slots;

        len = cef_decision_format(&view, NULL, 0);

        d->log.data = ngx_pnalloc(r->pool, len + 1);
        if (d->log.data == NULL) {
            return NGX_ERROR;
        }

        d->log.len = cef_decision_format(&view, (char *) d->log.data,
                                         len + 1);
    }

    v->len = d->log.len;
    v->data = d->log.data ? d->log.data : (u_char *) "";
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}
