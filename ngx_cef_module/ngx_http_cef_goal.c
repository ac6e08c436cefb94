/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Goals at the edge: `cef_goal NAME [value=$VAR] [once] [pass_header];`
 * in a location (an order confirmation page, a checkout callback, a
 * beacon) records that the visitor reached goal NAME, declared in the
 * goals: section of the location's rule file (docs/goals.md).  The record,
 * $cef_goal (lib/decision/cef_goal.h), is made when the response headers
 * are known — so the value may come from the shop's response, e.g.
 * value=$upstream_http_x_order_total — and carries the visitor's arm in
 * every experiment of the rule set: one hash per experiment, no rule
 * evaluated, no store lookup beyond recognising the visitor.
 *
 * What is recorded, and what not:
 *   - responses with a status below 400 to GET and POST only;
 *   - consent as for decisions (cef_consent): none, no record;
 *   - a visitor the experiments can bucket (a visitor id, or a profile a
 *     key recognised): without one nothing could be attributed, so no
 *     record (counted);
 *   - once: at most one record per visitor, goal and UTC day, kept in the
 *     signed cookie cef_goals (the plugin-state cookie the engine manages);
 *   - a value that is absent, not a plain finite number or outside the
 *     goal's min/max is recorded as null and counted, never an error.
 * The upstream header value= reads is removed from the client's response
 * (the shop's order total is its business data) unless pass_header.
 */


#include "ngx_http_cef_module.h"


static void ngx_http_cef_goal_hide(ngx_http_request_t *r, ngx_str_t *name);


/* --- configuration -------------------------------------------------------- */

char *
ngx_http_cef_goal(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_cef_loc_conf_t *clcf = conf;

    ngx_str_t                         *value, v;
    ngx_uint_t                         i, k, pass;
    ngx_http_cef_goal_t               *g;
    ngx_http_compile_complex_value_t   ccv;

    if (clcf->goal) {
        return "is duplicate (one goal per location)";
    }

    value = cf->args->elts;

    if (!cef_rules_goals_name_ok((const char *) value[1].data, value[1].len))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid goal name \"%V\" (1 to 64 lowercase "
                           "letters, digits, '_' and '-')", &value[1]);
        return NGX_CONF_ERROR;
    }

    g = ngx_pcalloc(cf->pool, sizeof(ngx_http_cef_goal_t));
    if (g == NULL) {
        return NGX_CONF_ERROR;
    }

    g->name = value[1];
    g->file = cf->conf_file->file.name;
    g->line = cf->conf_file->line;
    pass = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "value=", 6) == 0 && g->value == NULL)
        {
            v.data = value[i].data + 6;
            v.len = value[i].len - 6;

            if (v.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "empty \"value=\"");
                return NGX_CONF_ERROR;
            }

            g->value = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
            if (g->value == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
            ccv.cf = cf;
            ccv.value = &v;
            ccv.complex_value = g->value;

            if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            /* exactly $upstream_http_NAME: the header to hide */

            if (v.len > sizeof("$upstream_http_") - 1
                && ngx_strncmp(v.data, "$upstream_http_",
                               sizeof("$upstream_http_") - 1) == 0)
            {
                g->header.len = v.len - (sizeof("$upstream_http_") - 1);
                g->header.data = ngx_pnalloc(cf->pool, g->header.len);
                if (g->header.data == NULL) {
                    return NGX_CONF_ERROR;
                }

                for (k = 0; k < g->header.len; k++) {
                    g->header.data[k] = ngx_tolower(v.data[v.len
                                                    - g->header.len + k]);

                    if (!((g->header.data[k] >= 'a'
                           && g->header.data[k] <= 'z')
                          || (g->header.data[k] >= '0'
                              && g->header.data[k] <= '9')
                          || g->header.data[k] == '_'))
                    {
                        ngx_str_null(&g->header);   /* more than the one
                                                       variable */
                        break;
                    }
                }
            }

            continue;
        }

        if (ngx_strcmp(value[i].data, "once") == 0 && !g->once) {
            g->once = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "pass_header") == 0 && !pass) {
            pass = 1;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid or repeated parameter \"%V\" (cef_goal "
                           "NAME [value=$VAR] [once] [pass_header])",
                           &value[i]);
        return NGX_CONF_ERROR;
    }

    if (pass) {
        if (g->value == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"pass_header\" without \"value=\"");
            return NGX_CONF_ERROR;
        }

        ngx_str_null(&g->header);
    }

    clcf->goal = g;

    return NGX_CONF_OK;
}


/*
 * The goal must be declared in the goals: of the location's rule file,
 * which is only known once the location is merged (cef_rules may come
 * later, or from the server): reported at the directive's file:line.  In
 * a store:NAME location each published version is checked when a worker
 * compiles it, and the fallback file now (ngx_http_cef_fleet_add_goal()).
 * A goal is not inherited by nested locations, only by the location's own
 * "if" blocks.
 */

char *
ngx_http_cef_merge_goal(ngx_conf_t *cf, ngx_http_cef_loc_conf_t *prev,
    ngx_http_cef_loc_conf_t *conf)
{
    u_char                     why[512];
    ngx_int_t                  rc;
    ngx_http_cef_goal_t       *g = conf->goal;
    ngx_http_cef_set_goal_t    sg;
    ngx_http_core_loc_conf_t  *core;

    /* an "if" (or limit_except) block is part of its location */

    core = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (g == NULL && core->noname) {
        conf->goal = prev->goal;
        return NGX_CONF_OK;
    }

    if (g == NULL || g->decl || g->fleet) {
        return NGX_CONF_OK;
    }

    if (conf->rules == NULL && conf->fleet == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "cef_goal \"%V\" needs a rule file declaring it "
                      "(cef_rules) in %V:%ui", &g->name, &g->file, g->line);
        return NGX_CONF_ERROR;
    }

    if (conf->fleet == NULL) {
        rc = ngx_http_cef_fleet_bind_goal(g, conf->rules, cf->pool, &sg, why,
                                          sizeof(why));

        if (rc == NGX_DECLINED) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0, "%s", why);
        }

        if (rc != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        g->decl = sg.decl;
        g->fmt = sg.fmt;
    }

    if (g->once && (conf->signing == NULL || conf->signing->signer == NULL))
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "cef_goal \"%V\" once needs cef_signing_secret (its "
                      "state is a signed cookie) in %V:%ui", &g->name,
                      &g->file, g->line);
        return NGX_CONF_ERROR;
    }

    if (conf->fleet) {
        return ngx_http_cef_fleet_add_goal(cf, conf->fleet, g) == NGX_OK
               ? NGX_CONF_OK : NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* --- request time --------------------------------------------------------- */

/*
 * Called from the header filter for a main request in a location with
 * cef_goal.  Never fails the response for a goal's sake: NGX_ERROR only
 * when out of memory.
 */

/* cef_goal_env_t.state: a plugin's verified state cookie (a sticky
   bandit visitor's arm); data is the request */
static int
ngx_http_cef_goal_plugin_state(void *data, const char *plugin,
    cef_span_t *out)
{
    ngx_http_request_t       *r = data;
    ngx_http_cef_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, NGX_HTTP_CEF);

    if (clcf->signing == NULL || clcf->signing->signer == NULL) {
        return 0;
    }

    return ngx_http_cef_read_state(r, clcf->signing->signer, plugin, 0, out)
           == NGX_OK;
}


ngx_int_t
ngx_http_cef_goal_reached(ngx_http_request_t *r, ngx_http_cef_loc_conf_t *clcf)
{
    size_t                    len, n;
    double                    value;
    ngx_str_t                 text, *by;
    cef_span_t                state;
    cef_signer_t             *signer;
    cef_goal_env_t            env;
    cef_goal_event_t          ev;
    ngx_http_cef_ctx_t       *ctx;
    ngx_http_cef_goal_t      *g;
    cef_goal_value_rc_t       vrc;
    ngx_http_cef_identity_t  *id;
    cef_goal_fmt_t           *fmt;
    const cef_rules_goal_t   *decl;
    ngx_http_cef_fleet_use_t  use, shadow;
    char                      buf[CEF_GOAL_STATE_MAX + 1];

    g = clcf->goal;

    if (g->header.len) {
        ngx_http_cef_goal_hide(r, &g->header);
    }

    ctx = ngx_http_cef_get_ctx(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    if (r->headers_out.status >= NGX_HTTP_BAD_REQUEST) {
        ngx_http_cef_metric_goal(&g->name, NGX_HTTP_CEF_GOAL_STATUS);
        return NGX_OK;
    }

    /* a HEAD (a link checker) or an OPTIONS (a CORS preflight) reaches
       no goal: only what a browser loads or sends does */

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_POST))) {
        ngx_http_cef_metric_goal(&g->name, NGX_HTTP_CEF_GOAL_METHOD);
        return NGX_OK;
    }

    /* shared with the decision when the location has one too */

    id = ngx_http_cef_identify_guarded(r);
    if (id == NULL) {
        return NGX_OK;                      /* a store fault: logged */
    }

    if (!id->consent) {
        ngx_http_cef_metric_goal(&g->name, NGX_HTTP_CEF_GOAL_NO_CONSENT);
        return NGX_OK;
    }

    by = ngx_http_cef_bucket_by(id);
    if (by == NULL) {
        ngx_http_cef_metric_goal(&g->name, NGX_HTTP_CEF_GOAL_NO_VISITOR);
        return NGX_OK;
    }

    /* the rule set this visitor gets here: in a store:NAME location the
       version pinned for r (live or canary), as for its decision */

    decl = g->decl;
    fmt = g->fmt;

    if (clcf->fleet) {
        if (ngx_http_cef_fleet_pick(r, clcf->fleet, by, &use, &shadow)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (use.goals == NULL) {
            return NGX_OK;      /* nothing served: no arm to attribute */
        }

        decl = use.goals[g->index].decl;
        fmt = use.goals[g->index].fmt;
    }

    ngx_memzero(&ev, sizeof(cef_goal_event_t));
    ev.now = ngx_time();
    env.state = ngx_http_cef_goal_plugin_state;
    env.weights = ngx_http_cef_store_weights;
    env.data = r;
    ev.env = &env;

    if (g->once) {
        signer = clcf->signing->signer;
        state.data = "";
        state.len = 0;

        switch (ngx_http_cef_read_state(r, signer, CEF_GOAL_STATE_NAME, 1,
                                        &state))
        {
        case NGX_ERROR:
            return NGX_ERROR;
        case NGX_DECLINED:
            state.len = 0;
            break;
        }

        if (cef_goal_once_seen(state, ev.now, (const char *) g->name.data,
                               g->name.len))
        {
            ngx_http_cef_metric_goal(&g->name, NGX_HTTP_CEF_GOAL_ONCE);
            return NGX_OK;
        }

        len = cef_goal_once_add(state, ev.now, (const char *) g->name.data,
                                g->name.len, buf);

        if (len && ngx_http_cef_write_state(r, signer, CEF_GOAL_STATE_NAME,
                                            buf, len,
                                            cef_goal_once_max_age(ev.now))
                   != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (g->value) {
        if (ngx_http_complex_value(r, g->value, &text) != NGX_OK) {
            return NGX_ERROR;
        }

        vrc = cef_goal_value(decl, (const char *) text.data, text.len,
                             &value);

        if (vrc == CEF_GOAL_VALUE_OK) {
            ev.value = value;
            ev.has_value = 1;

        } else {
            ngx_http_cef_metric_goal(&g->name,
                                     vrc == CEF_GOAL_VALUE_ABSENT
                                     ? NGX_HTTP_CEF_GOAL_VALUE_ABSENT
                                     : NGX_HTTP_CEF_GOAL_VALUE_INVALID);
        }
    }

    ev.key_type.data = (const char *) id->key_type.data;
    ev.key_type.len = id->key_type.len;
    ev.profile.data = (const char *) id->profile_id.data;
    ev.profile.len = id->profile_id.len;
    ev.visitor.data = (const char *) id->visitor.data;
    ev.visitor.len = id->visitor.len;
    ev.bucket_by.data = (const char *) by->data;
    ev.bucket_by.len = by->len;

    len = cef_goal_format_max(fmt, &ev);

    ctx->goal.data = ngx_pnalloc(r->pool, len + 1);
    if (ctx->goal.data == NULL) {
        return NGX_ERROR;
    }

    n = cef_goal_format(fmt, &ev, (char *) ctx->goal.data, len + 1);

    if (n > len) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "cef_goal: the record of \"%V\" is longer than its "
                      "bound", &g->name);
        return NGX_OK;
    }

    ctx->goal.len = n;

    ngx_http_cef_metric_goal(&g->name, NGX_HTTP_CEF_GOAL_RECORDED);

    return NGX_OK;
}


/*
 * Remove the header a variable $upstream_http_NAME reads from the
 * response (nginx spells NAME in lowercase with '_' for '-'), the way the
 * headers filter removes one: hash 0.
 */

static void
ngx_http_cef_goal_hide(ngx_http_request_t *r, ngx_str_t *name)
{
    u_char            c;
    ngx_uint_t        i, k;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_out.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash == 0 || h[i].key.len != name->len) {
            continue;
        }

        for (k = 0; k < name->len; k++) {
            c = ngx_tolower(h[i].key.data[k]);
            if (c == '-') {
                c = '_';
            }

            if (c != name->data[k]) {
                break;
            }
        }

        if (k == name->len) {
            h[i].hash = 0;
        }
    }
}
