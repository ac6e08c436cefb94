/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_explain: "why did I see this?" as JSON (docs/observability.md).  For
 * the current request's visitor, or, in this location only, the one named
 * by ?key=TYPE:VALUE: each step of recognition, the profile, the inputs
 * the rules read, every rule matched or not with the first failing
 * comparison and its actual value (cef_expr_explain(), as `cef-rules
 * explain` prints it), and per slot the candidates, the strategy plugin's
 * choice, the variant and the bucket.
 *
 * The visitor is recognised and the decision made by the request path's
 * own code (ngx_http_cef_recognise(), ngx_http_cef_rules_decision()), each
 * with a tracer from this file, which only formats what they tell it.
 * Nothing is recorded, no cookie is set, the store is only read (inside
 * ngx_http_cef_store_guard()).
 */


#include "ngx_http_cef_module.h"

#include "cef_rules_goals.h"

#include <jansson.h>

#include "cef_outcome.h"
#include "cef_plugin.h"
#include "cef_rules_visitor.h"
#include "cef_visitor.h"


typedef struct {
    ngx_http_request_t         *r;
    ngx_http_cef_loc_conf_t    *clcf;
    json_t                     *root;
    json_t                     *steps;
    cef_expr_eval_t            *ev;
    cef_decision_t             *dec;
    ngx_http_cef_identity_t     id;
    cef_rules_visitor_t         vis;
    ngx_str_t                   key;         /* ?key=TYPE:VALUE, unescaped */
    ngx_str_t                  *bucket_by;
    ngx_uint_t                  store;       /* a session is open */
    ngx_uint_t                  failed;      /* a step could not be shown */
    ngx_int_t                   rc;
} ngx_http_cef_explain_t;


static ngx_int_t ngx_http_cef_explain_handler(ngx_http_request_t *r);
static void *ngx_http_cef_explain_read(void *data);
static ngx_int_t ngx_http_cef_explain_identity(ngx_http_cef_explain_t *ex);
static ngx_int_t ngx_http_cef_explain_decision(ngx_http_cef_explain_t *ex);
static void ngx_http_cef_explain_decided(void *data, const cef_rules_t *rs,
    cef_expr_eval_t *ev, const cef_expr_ctx_t *ctx, cef_decision_t *dec);
static int ngx_http_cef_explain_lookup(void *data, const cef_ref_t *ref,
    cef_value_t *out);
static json_t *ngx_http_cef_explain_value(const cef_value_t *v);
static json_t *ngx_http_cef_explain_str(ngx_str_t *s);


char *
ngx_http_cef_explain(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_cef_explain_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_cef_explain_handler(ngx_http_request_t *r)
{
    u_char                  *dst, *src;
    char                    *text;
    ngx_int_t                rc;
    ngx_str_t                arg;
    ngx_http_cef_explain_t   ex;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_memzero(&ex, sizeof(ngx_http_cef_explain_t));
    ex.r = r;
    ex.clcf = ngx_http_get_module_loc_conf(r, NGX_HTTP_CEF);
    ex.rc = NGX_ERROR;

    if (ngx_http_arg(r, (u_char *) "key", 3, &arg) == NGX_OK) {
        ex.key.data = ngx_pnalloc(r->pool, arg.len + 1);
        if (ex.key.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        dst = ex.key.data;
        src = arg.data;
        ngx_unescape_uri(&dst, &src, arg.len, NGX_UNESCAPE_URI);
        ex.key.len = dst - ex.key.data;

        if (ex.key.len < 3 || ngx_strlchr(ex.key.data + 1,
                                          ex.key.data + ex.key.len - 1, ':')
                              == NULL)
        {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "cef_explain: invalid \"key\" argument \"%V\": use "
                          "TYPE:VALUE", &arg);
            return NGX_HTTP_BAD_REQUEST;
        }
    }

    ex.root = json_object();
    ex.steps = json_array();

    if (ex.root == NULL || ex.steps == NULL
        || json_object_set_new(ex.root, "identity", json_object()))
    {
        json_decref(ex.steps);
        json_decref(ex.root);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* every store read runs guarded: a faulting store is a 503 here */

    (void) ngx_http_cef_store_guard(r, r->connection->log,
                                    ngx_http_cef_explain_read, &ex, NULL);

    if (ex.store) {
        ngx_http_cef_store_end();
    }

    text = NULL;

    if (ex.rc == NGX_OK) {
        text = json_dumps(ex.root, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    }

    json_decref(ex.steps);
    json_decref(ex.root);

    if (text == NULL) {
        return ex.rc == NGX_DECLINED ? NGX_HTTP_SERVICE_UNAVAILABLE
                                     : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_cef_send_json(r, text);
}


static void *
ngx_http_cef_explain_read(void *data)
{
    ngx_http_cef_explain_t *ex = data;

    ex->rc = NGX_DECLINED;          /* what a store fault leaves */

    if (ngx_http_cef_explain_identity(ex) != NGX_OK
        || ngx_http_cef_explain_decision(ex) != NGX_OK)
    {
        ex->rc = NGX_ERROR;
        return NULL;
    }

    ex->rc = NGX_OK;

    return NULL;
}


/* --- recognition ---------------------------------------------------------- */

static json_t *
ngx_http_cef_explain_step(ngx_http_cef_explain_t *ex, const char *source)
{
    json_t  *step;

    step = json_pack("{s:s}", "source", source);

    if (step == NULL || json_array_append_new(ex->steps, step) != 0) {
        return NULL;
    }

    return step;
}


/* ?key=TYPE:VALUE: look it up in the open session, noting the outcome */

static ngx_int_t
ngx_http_cef_explain_try(ngx_http_cef_explain_t *ex, json_t *step,
    ngx_str_t *type, ngx_str_t *value)
{
    const char  *result;

    if (json_object_set_new(step, "key_type", ngx_http_cef_explain_str(type))
        || json_object_set_new(step, "value", ngx_http_cef_explain_str(value)))
    {
        return NGX_ERROR;
    }

    if (!ex->store) {
        result = "no store";

    } else if (ngx_http_cef_store_find(ex->r, type, value, &ex->id) == NGX_OK)
    {
        ex->id.key_type = *type;
        result = "found";

    } else {
        result = "not found";
    }

    if (json_object_set_new(step, "result", json_string(result))) {
        return NGX_ERROR;
    }

    if (ex->id.profile_id.len
        && json_object_set_new(step, "profile",
                               ngx_http_cef_explain_str(&ex->id.profile_id)))
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The tracer of ngx_http_cef_recognise(): each step it takes becomes one
 * entry of identity.steps (consent goes to identity itself).
 */

static void
ngx_http_cef_explain_trace(void *data, ngx_http_cef_step_t *st,
    ngx_http_cef_identity_t *id)
{
    ngx_http_cef_explain_t *ex = data;

    u_char      *p;
    json_t      *ident, *step;
    const char  *result;

    if (ex->failed) {
        return;
    }

    if (ngx_strcmp(st->source, "consent") == 0) {
        ident = json_object_get(ex->root, "identity");

        if (json_object_set_new(ident, "consent", json_boolean(id->consent))
            || (st->value
                && json_object_set_new(ident, "consent_value",
                                       ngx_http_cef_explain_str(st->value))))
        {
            ex->failed = 1;
        }

        return;
    }

    step = ngx_http_cef_explain_step(ex, st->source);
    if (step == NULL) {
        ex->failed = 1;
        return;
    }

    result = st->result;

    if (ngx_strcmp(st->source, "store") == 0) {
        result = st->rc == NGX_OK ? "open"
                 : st->rc == NGX_DECLINED ? "not configured"
                 : "unavailable: serving without personalisation";
    }

    if (st->issued) {
        p = ngx_pnalloc(ex->r->pool, ngx_strlen(result)
                        + sizeof(": a new visitor id would be issued"));
        if (p == NULL) {
            ex->failed = 1;
            return;
        }

        ngx_sprintf(p, "%s: a new visitor id would be issued%Z", result);
        result = (const char *) p;
    }

    if ((st->cookie
         && json_object_set_new(step, "cookie",
                                ngx_http_cef_explain_str(st->cookie)))
        || (st->key_type
            && json_object_set_new(step, "key_type",
                                   ngx_http_cef_explain_str(st->key_type)))
        || (ngx_strcmp(st->source, "cef_key") == 0
            && json_object_set_new(step, "signed",
                                   json_boolean(st->is_signed)))
        || (st->value
            && json_object_set_new(step, "value",
                                   ngx_http_cef_explain_str(st->value)))
        || (st->sent
            && json_object_set_new(step, "sent",
                                   ngx_http_cef_explain_str(st->sent)))
        || (st->signature
            && json_object_set_new(step, "signature",
                                   json_string(st->signature)))
        || (st->visitor
            && json_object_set_new(step, "visitor",
                                   ngx_http_cef_explain_str(st->visitor)))
        || (result
            && json_object_set_new(step, "result", json_string(result)))
        || (st->lookup && id->profile_id.len
            && json_object_set_new(step, "profile",
                                   ngx_http_cef_explain_str(&id->profile_id))))
    {
        ex->failed = 1;
    }
}


/*
 * The visitor as the request path recognises it (ngx_http_cef_recognise()
 * with this file's tracer), or, with ?key=, the profile of that key.
 */

static ngx_int_t
ngx_http_cef_explain_identity(ngx_http_cef_explain_t *ex)
{
    u_char                 *colon;
    json_t                 *ident, *step;
    ngx_int_t               rc;
    ngx_str_t               v, type, value;
    ngx_http_request_t     *r = ex->r;
    ngx_http_cef_tracer_t   tracer;

    ident = json_object_get(ex->root, "identity");

    if (json_object_set(ident, "steps", ex->steps)) {
        return NGX_ERROR;
    }

    if (ex->key.len == 0) {
        tracer.step = ngx_http_cef_explain_trace;
        tracer.data = ex;

        ngx_http_cef_recognise(r, &ex->id, 1, &tracer);

        ex->store = ex->id.store;

        if (ex->failed) {
            return NGX_ERROR;
        }

        if (!ex->id.consent) {
            return NGX_OK;
        }

        goto done;
    }

    /* consent is not asked for ?key= */

    ex->id.consent = 1;

    if (json_object_set_new(ident, "consent",
                            json_string("not checked: ?key= given")))
    {
        return NGX_ERROR;
    }

    step = ngx_http_cef_explain_step(ex, "store");
    if (step == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_cef_store_begin(r);
    ex->store = (rc == NGX_OK);

    if (json_object_set_new(step, "result",
                            json_string(rc == NGX_OK ? "open"
                                        : rc == NGX_DECLINED
                                        ? "not configured"
                                        : "unavailable: serving without "
                                          "personalisation")))
    {
        return NGX_ERROR;
    }

    step = ngx_http_cef_explain_step(ex, "query");
    if (step == NULL) {
        return NGX_ERROR;
    }

    colon = ngx_strlchr(ex->key.data + 1, ex->key.data + ex->key.len, ':');
    type.data = ex->key.data;
    type.len = colon - ex->key.data;
    value.data = colon + 1;
    value.len = ex->key.data + ex->key.len - value.data;

    if (ngx_http_cef_explain_try(ex, step, &type, &value) != NGX_OK) {
        return NGX_ERROR;
    }

    /* experiments bucket by ?visitor=ID if given, else by profile */

    if (ngx_http_arg(r, (u_char *) "visitor", 7, &v) == NGX_OK
        && cef_visitor_id_valid((char *) v.data, v.len))
    {
        ex->id.visitor = v;
    }

done:

    if (json_object_set_new(ident, "visitor",
                            ngx_http_cef_explain_str(&ex->id.visitor))
        || json_object_set_new(ident, "visitor_new",
                               json_boolean(ex->id.visitor_new))
        || json_object_set_new(ident, "profile",
                               ngx_http_cef_explain_str(&ex->id.profile_id))
        || json_object_set_new(ident, "key_type",
                               ngx_http_cef_explain_str(&ex->id.key_type)))
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* --- the decision --------------------------------------------------------- */

static int
ngx_http_cef_explain_lookup(void *data, const cef_ref_t *ref,
    cef_value_t *out)
{
    ngx_http_cef_explain_t *ex = data;

    switch (ref->kind) {

    case CEF_REF_PROFILE:
    case CEF_REF_VISITOR_NEW:
    case CEF_REF_VISITOR_KEY_TYPE:
        return cef_rules_visitor_lookup(&ex->vis, ref, out);

    default:
        return ngx_http_cef_request_input(ex->r, ex->clcf->record, ref, out);
    }
}


static json_t *
ngx_http_cef_explain_profile(ngx_http_cef_explain_t *ex)
{
    int           rc;
    size_t        pos;
    json_t       *attrs;
    cef_span_t    name;
    cef_value_t   v;
    char          key[256];

    if (!ex->id.view_valid) {
        return json_null();
    }

    attrs = json_object();
    if (attrs == NULL) {
        return NULL;
    }

    pos = 0;

    while ((rc = cef_profile_next(&ex->id.view, &pos, &name, &v)) == 1) {
        ngx_cpystrn((u_char *) key, (u_char *) name.data,
                    ngx_min(name.len + 1, sizeof(key)));

        if (json_object_set_new(attrs, key, ngx_http_cef_explain_value(&v))) {
            json_decref(attrs);
            return NULL;
        }
    }

    return attrs;
}


static json_t *
ngx_http_cef_explain_rules(ngx_http_cef_explain_t *ex, const cef_rules_t *rs)
{
    int                 m;
    json_t             *rules, *rule, *offers, *jo;
    uint32_t            i, j, n;
    const uint32_t     *order;
    const cef_rule_t   *ru;
    const cef_offer_t  *o;
    char                why[2048], result[256];

    n = cef_rules_nrules(rs);
    order = cef_rules_order(rs);

    rules = json_array();
    if (rules == NULL) {
        return NULL;
    }

    for (i = 0; i < n; i++) {
        ru = cef_rules_rule(rs, order[i]);

        if (ru->when) {
            m = cef_expr_explain(ru->when, ex->ev, why, sizeof(why));
        } else {
            m = 1;
            ngx_cpystrn((u_char *) why, (u_char *) "no when: (always "
                        "matches)", sizeof(why));
        }

        offers = json_array();
        rule = json_pack("{s:s,s:I,s:i,s:b,s:s,s:o}",
                         "name", ru->name,
                         "priority", (json_int_t) ru->priority,
                         "line", (int) ru->line,
                         "matched", m,
                         "why", why,
                         "offers", offers);

        if (rule == NULL || json_array_append_new(rules, rule)) {
            json_decref(rules);
            return NULL;
        }

        for (j = 0; j < ru->noffers; j++) {
            o = cef_rules_offer(rs, ru->offers[j]);

            (void) cef_outcome_format(ex->dec, ru->offers[j],
                                      cef_outcome_offer(ex->dec, order[i],
                                                        ru->offers[j], m),
                                      result, sizeof(result));

            jo = json_pack("{s:s,s:s,s:s}", "slot", o->slot, "offer",
                           o->name, "result", result);

            if (jo == NULL || json_array_append_new(offers, jo)) {
                json_decref(rules);
                return NULL;
            }
        }
    }

    return rules;
}



/* an adaptive strategy's slot (bandit): the weights it drew from and
   whether the visitor kept their arm (docs/plugins.md#bandit) */
static json_t *
ngx_http_cef_explain_bandit(const cef_rules_t *rs, uint32_t s,
    const cef_decision_slot_t *ds)
{
    uint32_t                       i;
    json_t                        *b, *split;
    const cef_rules_experiment_t  *x;

    x = cef_rules_goals_slot_experiment(rs, s);
    split = json_object();

    for (i = 0; x && split && i < ds->nsplit && i < x->narms; i++) {
        json_object_set_new(split, x->arms[i], json_integer(ds->split[i]));
    }

    b = json_pack("{s:s?,s:s?,s:I,s:s,s:o}",
                  "experiment", x ? x->name : NULL,
                  "salt", x ? x->salt : NULL,
                  "weights_version", (json_int_t) ds->weights_version,
                  "arm", ds->sticky == CEF_PLUGIN_STICKY_YES
                         ? "kept (cef_bandit cookie)"
                         : ds->sticky == CEF_PLUGIN_STICKY_REDRAWN
                         ? "redrawn (the kept arm is not eligible)"
                         : ds->weights_version
                           ? "drawn over the published weights"
                           : "drawn uniformly (no weights published)",
                  "split", split ? split : json_null());

    return b ? b : json_null();
}

static json_t *
ngx_http_cef_explain_slots(ngx_http_cef_explain_t *ex, const cef_rules_t *rs)
{
    json_t                     *slots, *slot, *cands, *c;
    uint32_t                    s, k, n;
    const cef_plugin_cand_t    *cand;
    const cef_decision_slot_t  *ds;

    slots = json_object();
    if (slots == NULL) {
        return NULL;
    }

    n = cef_rules_nslots(rs);

    for (s = 0; s < n; s++) {
        ds = &ex->dec->slots[s];
        cand = cef_decision_candidates(ex->dec, s);

        cands = json_array();
        if (cands == NULL) {
            goto failed;
        }

        for (k = 0; k < ds->candidates; k++) {
            c = json_pack("{s:s,s:s,s:I}", "offer", cand[k].offer->name,
                          "rule", cef_rules_rule(rs, cand[k].rule)->name,
                          "priority", (json_int_t) cand[k].priority);

            if (c == NULL || json_array_append_new(cands, c)) {
                json_decref(cands);
                goto failed;
            }
        }

        slot = json_pack("{s:s,s:o,s:o,s:o,s:s,s:o,s:o,s:o,s:b}",
                  "strategy", ds->plugin,
                  "candidates", cands,
                  "offer", ds->offer == CEF_RULES_NONE ? json_null()
                           : json_string(cef_rules_offer(rs, ds->offer)->name),
                  "rule", ds->rule == CEF_RULES_NONE ? json_null()
                          : json_string(cef_rules_rule(rs, ds->rule)->name),
                  "variant", cef_record_variant(ds),
                  "bucket", ds->bucket == CEF_RULES_NONE ? json_null()
                            : json_integer(ds->bucket),
                  "would_have", ds->would_have == CEF_RULES_NONE
                                ? json_null()
                                : json_string(cef_rules_offer(rs,
                                                  ds->would_have)->name),
                  "would_have_rule", ds->would_have_rule == CEF_RULES_NONE
                                ? json_null()
                                : json_string(cef_rules_rule(rs,
                                                  ds->would_have_rule)->name),
                  "failed", (int) ds->failed);

        if (slot == NULL
            || (ds->sticky != CEF_RULES_NONE
                && json_object_set_new(slot, "bandit",
                                       ngx_http_cef_explain_bandit(rs, s, ds)))
            || json_object_set_new(slots, cef_rules_slot_name(rs, s), slot))
        {
            goto failed;
        }
    }

    return slots;

failed:

    json_decref(slots);
    return NULL;
}


static ngx_int_t
ngx_http_cef_explain_decision(ngx_http_cef_explain_t *ex)
{
    json_t                       *j;
    uint32_t                      i, n;
    ngx_int_t                     rc;
    ngx_str_t                    *bucket_by;
    cef_span_t                    key_type;
    cef_record_state_t           *states;
    ngx_http_cef_loc_conf_t      *clcf = ex->clcf;
    ngx_http_cef_rules_result_t   res;
    ngx_http_cef_rules_tracer_t   tracer;

    if (!ex->id.view_valid && ex->id.profile_id.len && ex->store) {
        ex->id.view_valid = (ngx_http_cef_store_profile(ex->r, &ex->id,
                                                       &ex->id.view)
                             == NGX_OK);
    }

    j = ngx_http_cef_explain_profile(ex);
    if (j == NULL || json_object_set_new(ex->root, "profile", j)) {
        return NGX_ERROR;
    }

    if (clcf->rules == NULL || clcf->record == NULL || !ex->id.consent) {
        return json_object_set_new(ex->root, "rules", json_null())
               ? NGX_ERROR : NGX_OK;
    }

    key_type.data = (char *) ex->id.key_type.data;
    key_type.len = ex->id.key_type.len;

    cef_rules_visitor_init(&ex->vis, ex->id.view_valid ? &ex->id.view : NULL,
                           ex->id.visitor_new, key_type);

    bucket_by = ngx_http_cef_bucket_by(&ex->id);
    ex->bucket_by = bucket_by;

    /* the plugins' state: this visitor's cookies, not for ?key= */

    states = ngx_palloc(ex->r->pool, (clcf->record->nplugins + 1)
                                     * sizeof(cef_record_state_t));
    if (states == NULL) {
        return NGX_ERROR;
    }

    n = ex->key.len ? 0
        : ngx_http_cef_read_states(ex->r, clcf->record,
                                   clcf->signing ? clcf->signing->signer
                                                 : NULL,
                                   states);

    j = json_object();
    if (j == NULL || json_object_set_new(ex->root, "state", j)) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        if (json_object_set_new(j, states[i].plugin,
                                json_stringn(states[i].state.data,
                                             states[i].state.len)))
        {
            return NGX_ERROR;
        }
    }

    /* the decision the request path makes, shown to this file as made */

    tracer.decided = ngx_http_cef_explain_decided;
    tracer.data = ex;

    ex->failed = 1;             /* until the tracer is done */

    rc = ngx_http_cef_rules_decision(ex->r, clcf->rules,
                                     cef_rules_visitor_lookup, &ex->vis,
                                     bucket_by, ex->key.len == 0, 0, &res,
                                     &tracer);

    ex->ev = NULL;
    ex->dec = NULL;

    return (rc != NGX_OK || ex->failed) ? NGX_ERROR : NGX_OK;
}


/*
 * The tracer of ngx_http_cef_rules_decision(): the inputs the rules read,
 * every rule and every slot, from the evaluation just made.
 */

static void
ngx_http_cef_explain_decided(void *data, const cef_rules_t *rs,
    cef_expr_eval_t *ev, const cef_expr_ctx_t *ctx, cef_decision_t *dec)
{
    ngx_http_cef_explain_t *ex = data;

    uint32_t                  i, n;
    json_t                   *inputs, *j;
    cef_value_t               v;
    const cef_ref_t          *ref;
    const cef_expr_symtab_t  *st;

    ex->ev = ev;
    ex->dec = dec;

    if (json_object_set_new(ex->root, "time", json_integer(ctx->now))
        || json_object_set_new(ex->root, "utc_offset",
                               json_integer(ctx->utc_offset))
        || json_object_set_new(ex->root, "bucket_by",
                               ex->bucket_by
                               ? ngx_http_cef_explain_str(ex->bucket_by)
                               : json_null())
        || json_object_set_new(ex->root, "rules_hash",
                               json_string(cef_rules_hash(rs))))
    {
        return;
    }

    /* the inputs the rules read, as a decision record would hold them */

    inputs = json_object();
    if (inputs == NULL || json_object_set_new(ex->root, "inputs", inputs)) {
        return;
    }

    st = cef_rules_symtab(rs);
    n = cef_expr_symtab_count(st);

    for (i = 0; i < n; i++) {
        ref = cef_expr_symtab_ref(st, i);

        if (ref->kind == CEF_REF_PROFILE) {
            continue;
        }

        if (!cef_record_time_value(ref->kind, ctx->now, ctx->utc_offset, &v)
            && !ngx_http_cef_explain_lookup(ex, ref, &v))
        {
            v.type = CEF_VAL_NIL;
        }

        if (json_object_set_new(inputs, ref->path.data,
                                ngx_http_cef_explain_value(&v)))
        {
            return;
        }
    }

    j = ngx_http_cef_explain_rules(ex, rs);
    if (j == NULL || json_object_set_new(ex->root, "rules", j)) {
        return;
    }

    j = ngx_http_cef_explain_slots(ex, rs);
    if (j == NULL || json_object_set_new(ex->root, "slots", j)) {
        return;
    }

    ex->failed = 0;
}


/* --- JSON values ---------------------------------------------------------- */

static json_t *
ngx_http_cef_explain_value(const cef_value_t *v)
{
    size_t       pos;
    json_t      *j;
    double       num;
    cef_span_t   s;

    switch (v->type) {

    case CEF_VAL_BOOL:
        return json_boolean(v->u.b);

    case CEF_VAL_INT:
        return json_integer(v->u.i);

    case CEF_VAL_FLOAT:
        return json_real(v->u.f);

    case CEF_VAL_STR:
        j = json_stringn(v->u.s.data, v->u.s.len);
        return j ? j : json_string("(not UTF-8)");

    case CEF_VAL_STR_ARRAY:
        j = json_array();
        pos = 0;

        while (j && cef_value_array_next(v, &pos, &s) == 1) {
            json_array_append_new(j, json_stringn(s.data, s.len));
        }

        return j ? j : json_null();

    case CEF_VAL_NUM_MAP:
        j = json_object();
        pos = 0;

        while (j && cef_value_map_next(v, &pos, &s, &num) == 1) {
            json_object_setn_new(j, s.data, s.len, json_real(num));
        }

        return j ? j : json_null();

    default:
        return json_null();
    }
}


static json_t *
ngx_http_cef_explain_str(ngx_str_t *s)
{
    json_t  *j;

    if (s == NULL || s->len == 0) {
        return json_null();
    }

    j = json_stringn((const char *) s->data, s->len);

    return j ? j : json_null();
}
