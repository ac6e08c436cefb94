/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * The decision record, $cef_decision (lib/decision/cef_record.h,
 * docs/observability.md): the decision of a request with everything a
 * replay needs that the store does not hold — the request inputs the rule
 * set reads, the time, the visitor id experiments bucketed by, the plugins'
 * per-visitor state, the store's snapshot and sequence and a digest of the
 * profile.
 *
 * When the configuration uses $cef_decision, the record is made right
 * after the decision (the profile digest inside its store session);
 * otherwise nothing of it is done on the request path.
 */


#include "ngx_http_cef_module.h"


static ngx_str_t  ngx_http_cef_record_var = ngx_string("cef_decision");


/* Is $cef_decision used anywhere (log_format, access_log if=, map...)? */

ngx_int_t
ngx_http_cef_record_used(ngx_conf_t *cf)
{
    ngx_uint_t                  i;
    ngx_http_variable_t        *v;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    v = cmcf->variables.elts;

    for (i = 0; i < cmcf->variables.nelts; i++) {
        if (v[i].name.len == ngx_http_cef_record_var.len
            && ngx_strncasecmp(v[i].name.data, ngx_http_cef_record_var.data,
                               v[i].name.len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * Per rule set: the index of every var.* variable (the rule set's, see
 * ngx_http_cef_rules_var_indexes()) and the stateful plugins' names.
 */

char *
ngx_http_cef_merge_record(ngx_conf_t *cf, ngx_http_cef_loc_conf_t *prev,
    ngx_http_cef_loc_conf_t *conf)
{
    if (conf->rules == NULL) {
        conf->record = NULL;
        return NGX_CONF_OK;
    }

    if (prev->record
        && prev->record->rs == ngx_http_cef_rules_set(conf->rules))
    {
        conf->record = prev->record;
        return NGX_CONF_OK;
    }

    conf->record = ngx_http_cef_record_conf_make(cf->pool, conf->rules);

    return conf->record ? NGX_CONF_OK : NGX_CONF_ERROR;
}


/* What recording a decision of rules needs, from pool (NULL: no memory). */

ngx_http_cef_record_conf_t *
ngx_http_cef_record_conf_make(ngx_pool_t *pool, ngx_http_cef_rules_t *rules)
{
    uint32_t                     i;
    ngx_str_t                    name;
    cef_decision_t              *dec;
    const cef_rules_t           *rs;
    ngx_http_cef_record_conf_t  *rc;

    rs = ngx_http_cef_rules_set(rules);

    rc = ngx_pcalloc(pool, sizeof(ngx_http_cef_record_conf_t));
    if (rc == NULL) {
        return NULL;
    }

    rc->rs = rs;

    /* var.*: the rule set's own indexes, resolved when it was loaded */

    rc->var_index = ngx_http_cef_rules_var_indexes(rules);

    /* the plugins that keep state are those a decision has states for */

    dec = cef_decision_create(rs);
    if (dec == NULL) {
        return NULL;
    }

    rc->plugins = ngx_pcalloc(pool,
                              (dec->nstates + 1) * sizeof(ngx_str_t));
    if (rc->plugins == NULL) {
        cef_decision_free(dec);
        return NULL;
    }

    for (i = 0; i < dec->nstates; i++) {
        name.len = ngx_strlen(dec->states[i].plugin);
        name.data = ngx_pnalloc(pool, name.len + 1);
        if (name.data == NULL) {
            cef_decision_free(dec);
            return NULL;
        }

        ngx_memcpy(name.data, dec->states[i].plugin, name.len + 1);
        rc->plugins[rc->nplugins++] = name;
    }

    cef_decision_free(dec);

    return rc;
}


/* --- request inputs ------------------------------------------------------- */

/* The value of a request.* or var.* reference, as the rules read it. */

int
ngx_http_cef_request_input(ngx_http_request_t *r,
    ngx_http_cef_record_conf_t *rc, const cef_ref_t *ref, cef_value_t *out)
{
    return ngx_http_cef_request_value(r, rc->var_index, ref, out);
}


/*
 * The verified per-visitor states of the rule set's plugins, from their
 * "cef_PLUGIN" cookies (ngx_http_cef_read_state()).  out has room
 * for rc->nplugins entries.
 *
 * @return the number of states found.
 */

ngx_uint_t
ngx_http_cef_read_states(ngx_http_request_t *r,
    ngx_http_cef_record_conf_t *rc, cef_signer_t *signer,
    cef_record_state_t *out)
{
    ngx_int_t   rv;
    ngx_uint_t  i, n;
    cef_span_t  st;

    if (signer == NULL) {
        return 0;
    }

    n = 0;

    for (i = 0; i < rc->nplugins; i++) {
        rv = ngx_http_cef_read_state(r, signer,
                                     (const char *) rc->plugins[i].data, 0,
                                     &st);
        if (rv == NGX_ERROR) {
            return n;
        }

        if (rv == NGX_OK) {
            out[n].plugin = (const char *) rc->plugins[i].data;
            out[n].state = st;
            n++;
        }
    }

    return n;
}


/* --- the record ----------------------------------------------------------- */

ngx_int_t
ngx_http_cef_record_make(ngx_http_request_t *r, ngx_http_cef_decision_t *d)
{
    size_t                       len;
    u_char                      *p;
    uint32_t                     i, n, nrefs;
    ngx_pool_t                  *pool;
    cef_record_t                 rec;
    const cef_ref_t             *ref;
    cef_store_info_t             info;
    cef_record_slot_t           *slots;
    cef_record_input_t          *in;
    cef_record_state_t          *states;
    const cef_rules_t           *rs;
    ngx_http_cef_ctx_t          *ctx;
    ngx_http_cef_identity_t     *id;
    ngx_http_cef_loc_conf_t     *clcf;
    ngx_http_cef_record_conf_t  *rc;
    const cef_expr_symtab_t     *st;

    /* the shared "no decision" has no rules: it is never written to */

    if (d->recorded || d->rules == NULL) {
        return NGX_OK;
    }

    d->recorded = 1;

    if (d->slots == NULL || d->record_conf == NULL || d->failed
        || d->over_budget)
    {
        return NGX_OK;
    }

    rc = d->record_conf;
    rs = rc->rs;
    n = cef_rules_nslots(rs);

    if (!cef_record_wanted(d->slots, n)) {
        return NGX_OK;
    }

    pool = r->main->pool;
    ctx = ngx_http_get_module_ctx(r->main, NGX_HTTP_CEF);
    id = ctx ? ctx->identity : NULL;
    clcf = ngx_http_get_module_loc_conf(r, NGX_HTTP_CEF);

    st = cef_rules_symtab(rs);
    nrefs = cef_expr_symtab_count(st);

    slots = ngx_palloc(pool, (n + 1) * sizeof(cef_record_slot_t));
    in = ngx_palloc(pool, (nrefs + 1) * sizeof(cef_record_input_t));
    states = ngx_palloc(pool, (rc->nplugins + 1)
                              * sizeof(cef_record_state_t));
    if (slots == NULL || in == NULL || states == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(&rec, sizeof(cef_record_t));

    cef_record_slots(slots, rs, d->slots);
    rec.slots = slots;
    rec.nslots = n;

    rec.now = d->now;
    rec.utc_offset = (int32_t) d->utc_offset;
    rec.rules = cef_rules_hash(rs);
    rec.digest = d->digest;
    rec.has_digest = d->has_digest;

    if (id) {
        rec.key_type.data = (const char *) id->key_type.data;
        rec.key_type.len = id->key_type.len;
        rec.profile.data = (const char *) id->profile_id.data;
        rec.profile.len = id->profile_id.len;
        rec.visitor.data = (const char *) id->visitor.data;
        rec.visitor.len = id->visitor.len;
    }

    /* every path the rule set reads but profile.*: the store has those */

    for (i = 0; i < nrefs; i++) {
        ref = cef_expr_symtab_ref(st, i);
        in[rec.ninputs].path = ref->path.data;
        in[rec.ninputs].v.type = CEF_VAL_NIL;

        switch (ref->kind) {

        case CEF_REF_PROFILE:
            continue;

        case CEF_REF_VISITOR_NEW:
            in[rec.ninputs].v.type = CEF_VAL_BOOL;
            in[rec.ninputs].v.u.b = id && id->visitor_new;
            break;

        case CEF_REF_VISITOR_KEY_TYPE:
            if (id && id->key_type.len) {
                in[rec.ninputs].v.type = CEF_VAL_STR;
                in[rec.ninputs].v.u.s.data = (const char *) id->key_type.data;
                in[rec.ninputs].v.u.s.len = id->key_type.len;
            }
            break;

        case CEF_REF_TIME_HOUR:
        case CEF_REF_TIME_WEEKDAY:
        case CEF_REF_TIME_NOW:
            (void) cef_record_time_value(ref->kind, rec.now, rec.utc_offset,
                                         &in[rec.ninputs].v);
            break;

        default:
            (void) ngx_http_cef_request_input(r, rc, ref, &in[rec.ninputs].v);
        }

        rec.ninputs++;
    }

    rec.inputs = in;

    rec.nstates = ngx_http_cef_read_states(r, rc,
                                           clcf->signing
                                           ? clcf->signing->signer : NULL,
                                           states);
    rec.states = states;

    /* a separate store session, just after the decision's */

    if (ngx_http_cef_store_info(r, &info) == NGX_OK) {
        len = ngx_strlen(info.snapshot_id);
        p = ngx_pnalloc(pool, len + 1);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(p, info.snapshot_id, len + 1);
        rec.snapshot = (const char *) p;
        rec.seq = info.last_seq;
    }

    len = cef_record_format(&rec, NULL, 0);

    d->record.data = ngx_pnalloc(pool, len + 1);
    if (d->record.data == NULL) {
        return NGX_ERROR;
    }

    d->record.len = cef_record_format(&rec, (char *) d->record.data, len + 1);

    return NGX_OK;
}
