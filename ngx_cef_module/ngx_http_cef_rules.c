/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Rule sets: the cef_rules directive, which compiles a rule file once at
 * configuration time (the compiled set is inherited by forked workers and
 * shared by every location that names the same file), the
 * $cef_rules_hash variable, and the request-time glue that evaluates a
 * rule set against a request: request.* fields, var.* (nginx variables
 * whose indexes are resolved at configuration time) and time.*; profile.*
 * and visitor.* come from the caller, typically cef_rules_visitor_lookup()
 * (lib/rules/cef_rules_visitor.h) over the visitor's stored profile:
 *
 *     cef_rules_visitor_t   vis;
 *     cef_rules_choice_t   *choices;
 *     ngx_str_t            *html;
 *
 *     cef_rules_visitor_init(&vis, &profile, 0, key_type);
 *     ngx_http_cef_rules_decide(r, clcf->rules, cef_rules_visitor_lookup,
 *                               &vis, &choices, &html);
 *
 * The offers are rendered in the same call, into r->pool: the evaluation
 * state is per process and the next request's decision reuses it, and the
 * profile view is only valid while its store session is open.
 */


#include "ngx_http_cef_module.h"


struct ngx_http_cef_rules_s {
    ngx_pool_t                *pool;        /* adopted at run time: its own
                                               (ngx_http_cef_rules_adopt()) */
    ngx_str_t                  path;
    ngx_str_t                  hash;
    cef_rules_t               *rs;
    ngx_int_t                 *var_index;   /* per reference id */
    cef_expr_eval_t           *ev;          /* per process, made on use */
    cef_decision_t            *dec;         /* per process, made on use */
    ngx_uint_t                 busy;        /* deciding: ev is in use */
    ngx_uint_t                 busy_faults; /* store faults caught when
                                               busy was set */
};


typedef struct {
    ngx_http_request_t        *r;
    ngx_http_cef_rules_t      *rules;
    ngx_http_cef_rules_lookup_pt  lookup;
    void                      *data;
} ngx_http_cef_rules_req_t;


static void ngx_http_cef_rules_cleanup(void *data);
static ngx_int_t ngx_http_cef_rules_hash_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_cef_rules_offers_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_cef_rules_html_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_cef_rules_decision_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static int ngx_http_cef_rules_lookup(void *data, const cef_ref_t *ref,
    cef_value_t *out);
static ngx_int_t ngx_http_cef_rules_var_index(ngx_conf_t *cf,
    ngx_http_cef_rules_t *rules, const cef_ref_t *ref);
static ngx_uint_t ngx_http_cef_rules_var_known(
    ngx_http_core_main_conf_t *cmcf, ngx_str_t *name);


static ngx_http_variable_t  ngx_http_cef_rules_vars[] = {

    { ngx_string("cef_rules_hash"), NULL, ngx_http_cef_rules_hash_variable,
      0, NGX_HTTP_VAR_CHANGEABLE|NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("cef_rules_offers"), NULL,
      ngx_http_cef_rules_offers_variable, 0,
      NGX_HTTP_VAR_CHANGEABLE|NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("cef_rules_html"), NULL,
      ngx_http_cef_rules_html_variable, 0,
      NGX_HTTP_VAR_CHANGEABLE|NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("cef_rules_decision"), NULL,
      ngx_http_cef_rules_decision_variable, 0,
      NGX_HTTP_VAR_CHANGEABLE|NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


/*
 * Rule sets compiled for the configuration being read, so that locations
 * naming the same file share one.  Forgotten when that configuration's
 * pool goes away.
 */
static ngx_array_t  *ngx_http_cef_rules_loaded;
static ngx_pool_t   *ngx_http_cef_rules_loaded_pool;


/*
 * var.NAME that nginx did not know yet when the file was compiled: a map,
 * geo or set later in the configuration may still define it.  nginx
 * resolves variables after the whole http{} block was read and would
 * report an unknown one without the rule file's position, so such names
 * are checked first, from the module's postconfiguration
 * (ngx_http_cef_rules_check_variables()), and reported as FILE:LINE:COL.
 */
typedef struct {
    ngx_str_t                   file;
    ngx_str_t                   name;
    ngx_uint_t                  line;     /* 0: no position */
    ngx_uint_t                  col;
} ngx_http_cef_rules_var_t;


static ngx_array_t  *ngx_http_cef_rules_pending;   /* of the conf being
                                                      read */


static void
ngx_http_cef_rules_forget(void *data)
{
    if (ngx_http_cef_rules_loaded_pool == data) {
        ngx_http_cef_rules_loaded = NULL;
        ngx_http_cef_rules_loaded_pool = NULL;
        ngx_http_cef_rules_pending = NULL;
    }
}


static ngx_http_cef_rules_t *
ngx_http_cef_rules_compile(ngx_conf_t *cf, ngx_str_t *path)
{
    uint32_t                   i, n;
    ngx_uint_t                 k;
    cef_rules_t               *rs;
    const cef_ref_t           *ref;
    ngx_pool_cleanup_t        *cln;
    cef_rules_errors_t         errs;
    ngx_http_cef_rules_t      *rules, **loaded;
    const cef_expr_symtab_t   *st;
    char                       line[1024];

    if (ngx_http_cef_rules_loaded_pool == cf->pool) {
        loaded = ngx_http_cef_rules_loaded->elts;

        for (k = 0; k < ngx_http_cef_rules_loaded->nelts; k++) {
            if (loaded[k]->path.len == path->len
                && ngx_strncmp(loaded[k]->path.data, path->data, path->len)
                   == 0)
            {
                return loaded[k];
            }
        }

    } else {
        cln = ngx_pool_cleanup_add(cf->pool, 0);
        if (cln == NULL) {
            return NULL;
        }

        ngx_http_cef_rules_loaded = ngx_array_create(cf->pool, 4,
                                                sizeof(ngx_http_cef_rules_t *));
        if (ngx_http_cef_rules_loaded == NULL) {
            return NULL;
        }

        ngx_http_cef_rules_loaded_pool = cf->pool;
        ngx_http_cef_rules_pending = NULL;
        cln->handler = ngx_http_cef_rules_forget;
        cln->data = cf->pool;
    }

    /* path is NUL-terminated by ngx_conf_full_name() */

    if (cef_rules_load_file_with((const char *) path->data,
                                 ngx_http_cef_plugins(cf), &rs, &errs)
        != 0)
    {
        for (i = 0; i < errs.n; i++) {
            cef_rules_error_format(&errs, i, line, sizeof(line));
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "cef_rules: %s", line);
        }

        cef_rules_errors_free(&errs);
        return NGX_CONF_ERROR;
    }

    cef_rules_errors_free(&errs);

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        cef_rules_free(rs);
        return NULL;
    }

    rules = ngx_pcalloc(cf->pool, sizeof(ngx_http_cef_rules_t));
    if (rules == NULL) {
        cef_rules_free(rs);
        return NULL;
    }

    rules->rs = rs;
    rules->path = *path;
    cln->handler = ngx_http_cef_rules_cleanup;
    cln->data = rules;

    rules->hash.len = ngx_strlen(cef_rules_hash(rs));
    rules->hash.data = (u_char *) cef_rules_hash(rs);

    /* var.NAME: nginx variable indexes, resolved once */

    st = cef_rules_symtab(rs);
    n = cef_expr_symtab_count(st);

    rules->var_index = ngx_palloc(cf->pool, (n + 1) * sizeof(ngx_int_t));
    if (rules->var_index == NULL) {
        return NULL;
    }

    for (i = 0; i < n; i++) {
        ref = cef_expr_symtab_ref(st, i);
        rules->var_index[i] = NGX_ERROR;

        if (ref->kind != CEF_REF_VAR) {
            continue;
        }

        rules->var_index[i] = ngx_http_cef_rules_var_index(cf, rules, ref);
        if (rules->var_index[i] == NGX_ERROR) {
            return NULL;
        }
    }

    loaded = ngx_array_push(ngx_http_cef_rules_loaded);
    if (loaded == NULL) {
        return NULL;
    }

    *loaded = rules;

    return rules;
}


/*
 * The index of the nginx variable of var.NAME; a name nginx does not know
 * yet is remembered for ngx_http_cef_rules_check_vars().
 */
static ngx_int_t
ngx_http_cef_rules_var_index(ngx_conf_t *cf, ngx_http_cef_rules_t *rules,
    const cef_ref_t *ref)
{
    u_char                     *p;
    uint32_t                    line, col;
    ngx_str_t                   name;
    ngx_int_t                   index;
    ngx_http_cef_rules_var_t   *pending;
    ngx_http_core_main_conf_t  *cmcf;

    p = ngx_pnalloc(cf->pool, ref->name.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    name.len = ref->name.len;
    name.data = p;
    ngx_strlow(p, (u_char *) ref->name.data, name.len);

    index = ngx_http_get_variable_index(cf, &name);
    if (index == NGX_ERROR) {
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    if (ngx_http_cef_rules_var_known(cmcf, &name)) {
        return index;
    }

    /* not yet: checked once the http{} block is read */

    if (ngx_http_cef_rules_pending == NULL) {
        ngx_http_cef_rules_pending = ngx_array_create(cf->pool, 4,
                                             sizeof(ngx_http_cef_rules_var_t));
        if (ngx_http_cef_rules_pending == NULL) {
            return NGX_ERROR;
        }
    }

    pending = ngx_array_push(ngx_http_cef_rules_pending);
    if (pending == NULL) {
        return NGX_ERROR;
    }

    pending->file = rules->path;
    pending->name = name;
    pending->line = 0;
    pending->col = 0;

    if (cef_rules_ref_position(rules->rs, ref->id, &line, &col)) {
        pending->line = line;
        pending->col = col;
    }

    return index;
}


/* Defined by now, or one of the prefix variables ($arg_, $http_...)? */

static ngx_uint_t
ngx_http_cef_rules_var_known(ngx_http_core_main_conf_t *cmcf,
    ngx_str_t *name)
{
    ngx_uint_t            k;
    ngx_hash_key_t       *key;
    ngx_http_variable_t  *pv;

    key = cmcf->variables_keys->keys.elts;

    for (k = 0; k < cmcf->variables_keys->keys.nelts; k++) {
        if (key[k].key.len == name->len
            && ngx_strncmp(key[k].key.data, name->data, name->len) == 0)
        {
            return 1;
        }
    }

    pv = cmcf->prefix_variables.elts;

    for (k = 0; k < cmcf->prefix_variables.nelts; k++) {
        if (name->len >= pv[k].name.len
            && ngx_strncmp(name->data, pv[k].name.data, pv[k].name.len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * Postconfiguration, before nginx resolves its variables: the var.NAMEs
 * still unknown, reported with their place in the rule file.
 */

ngx_int_t
ngx_http_cef_rules_check_variables(ngx_conf_t *cf)
{
    ngx_uint_t                  i, bad;
    ngx_http_cef_rules_var_t   *pv;
    ngx_http_core_main_conf_t  *cmcf;

    if (ngx_http_cef_rules_pending == NULL
        || ngx_http_cef_rules_loaded_pool != cf->pool)
    {
        return NGX_OK;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    bad = 0;
    pv = ngx_http_cef_rules_pending->elts;

    for (i = 0; i < ngx_http_cef_rules_pending->nelts; i++) {
        if (ngx_http_cef_rules_var_known(cmcf, &pv[i].name)) {
            continue;
        }

        bad++;

        if (pv[i].line) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "cef_rules: %V:%ui:%ui: unknown nginx variable "
                          "\"%V\"", &pv[i].file, pv[i].line, pv[i].col,
                          &pv[i].name);
        } else {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "cef_rules: %V: unknown nginx variable \"%V\"",
                          &pv[i].file, &pv[i].name);
        }
    }

    return bad ? NGX_ERROR : NGX_OK;
}


char *
ngx_http_cef_rules(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_cef_loc_conf_t  *clcf = conf;

    ngx_str_t                *value, path;
    ngx_http_cef_rules_t     *rules;

    if (clcf->rules != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        clcf->rules = NULL;
        return NGX_CONF_OK;
    }

    path = value[1];

    rules = ngx_http_cef_rules_file(cf, &path);
    if (rules == NULL) {
        return NGX_CONF_ERROR;
    }

    clcf->rules = rules;

    return ngx_http_cef_rules_add_variables(cf);
}


/*
 * The rule file at path (relative to the prefix) compiled, or NULL
 * (reported as FILE:LINE:COL); files are shared by the configuration.
 */
ngx_http_cef_rules_t *
ngx_http_cef_rules_file(ngx_conf_t *cf, ngx_str_t *path)
{
    ngx_http_cef_rules_t  *rules;

    if (ngx_conf_full_name(cf->cycle, path, 1) != NGX_OK) {
        return NULL;
    }

    rules = ngx_http_cef_rules_compile(cf, path);

    if (rules == NGX_CONF_ERROR) {
        return NULL;
    }

    if (rules == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cef_rules: cannot compile \"%V\"", path);
        return NULL;
    }

    return rules;
}


/* The debug variables exist once any cef_rules is configured. */

char *
ngx_http_cef_rules_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_cef_rules_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_CONF_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_CONF_OK;
}


/*
 * A rule set compiled at run time (a version published through the store,
 * ngx_http_cef_fleet.c) made servable, in a pool of its own: var.NAME is
 * resolved against the variables this nginx indexes (defined by map, set,
 * geo, or used anywhere in the configuration), since no variable can be
 * added once the configuration is read.  NGX_DECLINED: var.NAME is not one
 * of them (NAME into unknown, NUL-terminated, cut to size); rs is then
 * still the caller's.
 */
ngx_int_t
ngx_http_cef_rules_adopt(cef_rules_t *rs, ngx_str_t *label, ngx_log_t *log,
    ngx_http_cef_rules_t **out, u_char *unknown, size_t size)
{
    u_char                     *p;
    uint32_t                    i, n;
    ngx_uint_t                  k;
    ngx_pool_t                 *pool;
    const cef_ref_t            *ref;
    ngx_http_variable_t        *vars;
    ngx_http_cef_rules_t       *rules;
    const cef_expr_symtab_t    *st;
    ngx_http_core_main_conf_t  *cmcf;

    pool = ngx_create_pool(4096, log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    rules = ngx_pcalloc(pool, sizeof(ngx_http_cef_rules_t));
    if (rules == NULL) {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    rules->pool = pool;
    rules->path.data = ngx_pnalloc(pool, label->len + 1);
    if (rules->path.data == NULL) {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    ngx_memcpy(rules->path.data, label->data, label->len);
    rules->path.data[label->len] = '\0';
    rules->path.len = label->len;

    rules->hash.len = ngx_strlen(cef_rules_hash(rs));
    rules->hash.data = (u_char *) cef_rules_hash(rs);

    st = cef_rules_symtab(rs);
    n = cef_expr_symtab_count(st);

    rules->var_index = ngx_palloc(pool, (n + 1) * sizeof(ngx_int_t));
    if (rules->var_index == NULL) {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    cmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_core_module);
    vars = cmcf->variables.elts;

    for (i = 0; i < n; i++) {
        ref = cef_expr_symtab_ref(st, i);
        rules->var_index[i] = NGX_ERROR;

        if (ref->kind != CEF_REF_VAR) {
            continue;
        }

        for (k = 0; k < cmcf->variables.nelts; k++) {
            if (vars[k].name.len == ref->name.len
                && ngx_strncasecmp(vars[k].name.data,
                                   (u_char *) ref->name.data, ref->name.len)
                   == 0)
            {
                rules->var_index[i] = k;
                break;
            }
        }

        if (rules->var_index[i] == NGX_ERROR) {
            p = ngx_cpymem(unknown, ref->name.data,
                           ngx_min(ref->name.len, size - 1));
            *p = '\0';
            ngx_destroy_pool(pool);
            return NGX_DECLINED;
        }
    }

    rules->rs = rs;
    *out = rules;

    return NGX_OK;
}


/* An adopted set's pool, for what lives as long as the set. */

ngx_pool_t *
ngx_http_cef_rules_pool(ngx_http_cef_rules_t *rules)
{
    return rules->pool;
}


/* The end of an adopted set: its evaluation state, the set, its pool. */

void
ngx_http_cef_rules_release(ngx_http_cef_rules_t *rules)
{
    ngx_pool_t  *pool;

    pool = rules->pool;
    ngx_http_cef_rules_cleanup(rules);
    ngx_destroy_pool(pool);
}


static void
ngx_http_cef_rules_cleanup(void *data)
{
    ngx_http_cef_rules_t  *rules = data;

    cef_decision_free(rules->dec);
    cef_expr_eval_free(rules->ev);
    cef_rules_free(rules->rs);
    rules->dec = NULL;
    rules->ev = NULL;
    rules->rs = NULL;
}


static ngx_int_t
ngx_http_cef_rules_hash_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_cef_loc_conf_t  *clcf;

    ngx_http_cef_ctx_t       *ctx;
    ngx_http_cef_rules_t     *rules;

    clcf = ngx_http_get_module_loc_conf(r, NGX_HTTP_CEF);

    /* the set the request's decision was made with (a published one may
       have changed since), else the location's file */

    ctx = ngx_http_get_module_ctx(r->main, NGX_HTTP_CEF);
    rules = (ctx && ctx->decision && ctx->decision->rules)
            ? ctx->decision->rules : clcf->rules;

    if (rules == NULL || rules == NGX_CONF_UNSET_PTR) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = rules->hash.len;
    v->data = rules->hash.data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * The set the debugging variables decide with: the location's file, or in
 * a store:NAME location the request's pinned set (ngx_http_cef_variables.c
 * sets ngx_http_cef_rules_pinned at preconfiguration: the decision is made
 * above this file).  NULL: none.
 */

ngx_http_cef_rules_pinned_pt  ngx_http_cef_rules_pinned;


static ngx_http_cef_rules_t *
ngx_http_cef_rules_of(ngx_http_request_t *r)
{
    ngx_http_cef_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, NGX_HTTP_CEF);

    if (clcf->rules && clcf->rules != NGX_CONF_UNSET_PTR) {
        return clcf->rules;
    }

    return ngx_http_cef_rules_pinned ? ngx_http_cef_rules_pinned(r) : NULL;
}


/*
 * "slot=offer slot=- ..." decided from what the request alone tells
 * (request.*, var.*, time.*; profile.* and visitor.* are null): a debugging
 * aid that exercises the request-time glue.
 */
static ngx_int_t
ngx_http_cef_rules_offers_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                   *p;
    size_t                    len;
    uint32_t                  i, n;
    const char               *name;
    const cef_rules_t        *rs;
    cef_rules_choice_t       *choices;
    ngx_http_cef_rules_t     *rules;

    rules = ngx_http_cef_rules_of(r);

    if (rules == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    if (ngx_http_cef_rules_decide(r, rules, NULL, NULL, &choices,
                                  NULL)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    rs = rules->rs;
    n = cef_rules_nslots(rs);
    len = 0;

    for (i = 0; i < n; i++) {
        name = choices[i].offer == CEF_RULES_NONE
               ? "-" : cef_rules_offer(rs, choices[i].offer)->name;
        len += ngx_strlen(cef_rules_slot_name(rs, i)) + ngx_strlen(name) + 2;
    }

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;

    for (i = 0; i < n; i++) {
        name = choices[i].offer == CEF_RULES_NONE
               ? "-" : cef_rules_offer(rs, choices[i].offer)->name;
        p = ngx_sprintf(p, "%s%s=%s", i ? " " : "",
                        cef_rules_slot_name(rs, i), name);
    }

    v->len = p - v->data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* "SLOT: HTML" lines of the decided slots, rendered as above. */
static ngx_int_t
ngx_http_cef_rules_html_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                   *p;
    size_t                    len;
    uint32_t                  i, n;
    ngx_str_t                *html;
    const cef_rules_t        *rs;
    cef_rules_choice_t       *choices;
    ngx_http_cef_rules_t     *rules;

    rules = ngx_http_cef_rules_of(r);

    if (rules == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    if (ngx_http_cef_rules_decide(r, rules, NULL, NULL, &choices,
                                  &html)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    rs = rules->rs;
    n = cef_rules_nslots(rs);
    len = 0;

    for (i = 0; i < n; i++) {
        if (choices[i].offer != CEF_RULES_NONE) {
            len += ngx_strlen(cef_rules_slot_name(rs, i)) + html[i].len + 3;
        }
    }

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;

    for (i = 0; i < n; i++) {
        if (choices[i].offer != CEF_RULES_NONE) {
            p = ngx_sprintf(p, "%s: %V\n", cef_rules_slot_name(rs, i),
                            &html[i]);
        }
    }

    v->len = p - v->data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* --- request time --------------------------------------------------------- */

const cef_rules_t *
ngx_http_cef_rules_set(ngx_http_cef_rules_t *rules)
{
    return rules->rs;
}


/* The rule file's full path (NUL-terminated), for messages. */

ngx_str_t *
ngx_http_cef_rules_path(ngx_http_cef_rules_t *rules)
{
    return &rules->path;
}


/*
 * The nginx variable index of each var.* reference, by reference id
 * (NGX_ERROR for the other references): resolved once, when the rule set
 * is loaded, for everything that reads var.* (ngx_http_cef_request_value()).
 */

ngx_int_t *
ngx_http_cef_rules_var_indexes(ngx_http_cef_rules_t *rules)
{
    return rules->var_index;
}


/*
 * Decide for r, and render the chosen offers at once (when html is not
 * NULL): both arrays have cef_rules_nslots() entries, indexed by slot id,
 * from r->pool; html[i] is empty for an undecided slot.  Plugins run
 * without a visitor id and without their per-visitor state (nothing is
 * recorded): the debugging view.
 */
ngx_int_t
ngx_http_cef_rules_decide(ngx_http_request_t *r, ngx_http_cef_rules_t *rules,
    ngx_http_cef_rules_lookup_pt lookup, void *data,
    cef_rules_choice_t **choices, ngx_str_t **html)
{
    ngx_http_cef_rules_result_t  res;

    if (ngx_http_cef_rules_decision(r, rules, lookup, data, NULL, 0,
                                    html != NULL, &res, NULL)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    *choices = res.choices;

    if (html) {
        *html = res.html;
    }

    return NGX_OK;
}


/*
 * Plugin state: the cookie "cef_PLUGIN", signed with the signing secret.
 * The one place that reads and writes these cookies (ngx_http_cef_record.c
 * reads them through ngx_http_cef_read_state() too).
 *
 * NGX_OK: *out is the verified state; NGX_DECLINED: no such cookie, or
 * one that does not verify (logged at info if log is set); NGX_ERROR.
 */

ngx_int_t
ngx_http_cef_read_state(ngx_http_request_t *r, cef_signer_t *signer,
    const char *plugin, ngx_uint_t log, cef_span_t *out)
{
    u_char     *p;
    size_t      len;
    ngx_str_t   name, value;
    cef_span_t  in;

    len = ngx_strlen(plugin);

    name.len = sizeof("cef_") - 1 + len;
    name.data = ngx_pnalloc(r->pool, name.len);
    if (name.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(name.data, "cef_", sizeof("cef_") - 1);
    ngx_memcpy(p, plugin, len);

    if (ngx_http_cef_get_cookie(r->main, &name, &value) != NGX_OK) {
        return NGX_DECLINED;
    }

    in.data = (const char *) value.data;
    in.len = value.len;

    if (cef_decision_state_verify(signer, plugin, in, out) != 0) {
        if (log) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "cef: client sent invalid \"%V\" cookie \"%V\": "
                          "reading it as empty", &name, &value);
        }

        return NGX_DECLINED;
    }

    return NGX_OK;
}


static void
ngx_http_cef_rules_read_states(ngx_http_request_t *r, cef_decision_t *dec)
{
    uint32_t                  i;
    cef_span_t                out;
    ngx_http_cef_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, NGX_HTTP_CEF);

    if (clcf->signing == NULL || clcf->signing->signer == NULL) {
        return;
    }

    for (i = 0; i < dec->nstates; i++) {
        switch (ngx_http_cef_read_state(r, clcf->signing->signer,
                                        dec->states[i].plugin, 1, &out))
        {
        case NGX_OK:
            cef_decision_set_state(dec, dec->states[i].plugin, out);
            break;

        case NGX_DECLINED:
            break;

        default:
            return;
        }
    }
}


/*
 * Send a per-visitor state as the signed cookie "cef_NAME" (Max-Age
 * max_age seconds) on the main response: the one place that writes these
 * cookies, for the rule plugins' states and the module's own (cef_goal
 * once, ngx_http_cef_goal.c).  A state that cannot be signed is not sent.
 */
ngx_int_t
ngx_http_cef_write_state(ngx_http_request_t *r, cef_signer_t *signer,
    const char *plugin, const char *state, size_t state_len, int64_t max_age)
{
    size_t      n, len;
    ngx_str_t   name, value, attrs;
    char        buf[CEF_DECISION_STATE_MAX + 1 + CEF_SIGN_SIG_LEN];

    if (state_len > CEF_DECISION_STATE_MAX) {
        return NGX_OK;
    }

    n = cef_decision_state_sign(signer, plugin, state, state_len, buf);
    if (n == 0) {
        return NGX_OK;
    }

    len = ngx_strlen(plugin);

    name.data = ngx_pnalloc(r->pool, sizeof("cef_") - 1 + len
                            + sizeof("; Max-Age=; Path=/; HttpOnly; "
                                     "SameSite=Lax; Secure") - 1
                            + NGX_TIME_T_LEN);
    if (name.data == NULL) {
        return NGX_ERROR;
    }

    name.len = ngx_sprintf(name.data, "cef_%s", plugin) - name.data;

    attrs.data = name.data + name.len;
    attrs.len = ngx_sprintf(attrs.data, "; Max-Age=%T; Path=/; HttpOnly; "
                            "SameSite=Lax", (time_t) max_age)
                - attrs.data;
#if (NGX_HTTP_SSL)
    if (r->main->connection->ssl) {
        attrs.len = ngx_cpymem(attrs.data + attrs.len, "; Secure",
                               sizeof("; Secure") - 1)
                    - attrs.data;
    }
#endif

    value.data = (u_char *) buf;
    value.len = n;

    return ngx_http_cef_set_cookie(r->main, &name, &value, &attrs);
}


static ngx_int_t
ngx_http_cef_rules_write_states(ngx_http_request_t *r, cef_decision_t *dec)
{
    uint32_t                  i;
    cef_decision_state_t     *st;
    ngx_http_cef_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, NGX_HTTP_CEF);

    if (clcf->signing == NULL || clcf->signing->signer == NULL
        || r->main->header_sent)
    {
        return NGX_OK;
    }

    for (i = 0; i < dec->nstates; i++) {
        st = &dec->states[i];

        if (!st->changed) {
            continue;
        }

        if (ngx_http_cef_write_state(r, clcf->signing->signer, st->plugin,
                                     st->out, st->out_len, st->max_age)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * The decision for r with its rule plugins.  visitor (may be NULL) is the
 * id experiments bucket by; with record, plugins read their per-visitor
 * state from the request's cookies (ngx_http_cef_rules_send_states()
 * then sends the updated state, once the offers are sure to be shown).
 * The offers are rendered with render (res->html).  tr, if not NULL, is
 * shown the decision as it is made (cef_explain); the request path passes
 * NULL.
 */
ngx_int_t
ngx_http_cef_rules_decision(ngx_http_request_t *r,
    ngx_http_cef_rules_t *rules, ngx_http_cef_rules_lookup_pt lookup,
    void *data, ngx_str_t *visitor, ngx_uint_t record, ngx_uint_t render,
    ngx_http_cef_rules_result_t *res, ngx_http_cef_rules_tracer_t *tr)
{
    size_t                     len;
    uint32_t                   i, n;
    ngx_str_t                 *out;
    cef_expr_ctx_t            *ctx;
    cef_decision_t            *dec;
    const cef_offer_t         *o;
    cef_decision_input_t       in;
    ngx_http_cef_rules_req_t  *req;

    static time_t              logged;
    static u_char              scratch[4096];

    if (rules->ev == NULL) {
        rules->ev = cef_rules_eval_create(rules->rs);
        if (rules->ev == NULL) {
            return NGX_ERROR;
        }
    }

    if (rules->dec == NULL) {
        rules->dec = cef_decision_create(rules->rs);
        if (rules->dec == NULL) {
            return NGX_ERROR;
        }
    }

    dec = rules->dec;
    n = cef_rules_nslots(rules->rs);

    ngx_memzero(res, sizeof(ngx_http_cef_rules_result_t));

    res->choices = ngx_palloc(r->pool, (n + 1) * sizeof(cef_rules_choice_t));
    res->slots = ngx_palloc(r->pool, (n + 1) * sizeof(cef_decision_slot_t));
    ctx = ngx_pcalloc(r->pool, sizeof(cef_expr_ctx_t));
    req = ngx_palloc(r->pool, sizeof(ngx_http_cef_rules_req_t));

    if (res->choices == NULL || res->slots == NULL || ctx == NULL
        || req == NULL)
    {
        return NGX_ERROR;
    }

    req->r = r;
    req->rules = rules;
    req->lookup = lookup;
    req->data = data;

    ctx->lookup = ngx_http_cef_rules_lookup;
    ctx->data = req;
    ctx->now = (int64_t) ngx_time();
    ctx->utc_offset = (int32_t) ngx_cached_time->gmtoff * 60;

    in.visitor.data = visitor ? (const char *) visitor->data : "";
    in.visitor.len = visitor ? visitor->len : 0;

    /*
     * A var.* lookup may evaluate a variable that decides again (a map
     * of $cef_rules_offers): that would clobber ev under our feet.
     */

    /*
     * A store fault caught in the middle of a decision jumps past the
     * code that clears busy: busy set before the last fault is stale.
     */

    if (rules->busy && rules->busy_faults == ngx_http_cef_store_faults) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "cef_rules: a rule depends on its own decision "
                      "through a variable");
        return NGX_ERROR;
    }

    if (record) {
        ngx_http_cef_rules_read_states(r, dec);
    }

    cef_decision_set_weights(dec, ngx_http_cef_store_weights, r);

    rules->busy = 1;
    rules->busy_faults = ngx_http_cef_store_faults;
    (void) cef_decision_make(rules->rs, rules->ev, ctx, &in, dec);

    if (tr) {
        tr->decided(tr->data, rules->rs, rules->ev, ctx, dec);
    }

    rules->busy = 0;

    ngx_memcpy(res->choices, dec->choices, n * sizeof(cef_rules_choice_t));
    ngx_memcpy(res->slots, dec->slots, n * sizeof(cef_decision_slot_t));

    if (dec->errors && logged != ngx_time()) {
        logged = ngx_time();
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "cef_rules: %s (%uD times in this decision): the slot "
                      "gets its default content", dec->error, dec->errors);
    }

    /* the log line is formatted from res->slots when it is read */

    if (!render) {
        return NGX_OK;
    }

    out = ngx_pcalloc(r->pool, (n + 1) * sizeof(ngx_str_t));
    if (out == NULL) {
        return NGX_ERROR;
    }

    res->html = out;

    for (i = 0; i < n; i++) {
        if (res->choices[i].offer == CEF_RULES_NONE) {
            continue;
        }

        o = cef_rules_offer(rules->rs, res->choices[i].offer);

        /* once into a scratch buffer (a worker renders one offer at a
           time), a second time only for an offer larger than that */

        rules->busy = 1;
        rules->busy_faults = ngx_http_cef_store_faults;
        len = cef_template_render(o->html, rules->ev, (char *) scratch,
                                  sizeof(scratch));
        rules->busy = 0;

        out[i].data = ngx_pnalloc(r->pool, len ? len : 1);
        if (out[i].data == NULL) {
            return NGX_ERROR;
        }

        out[i].len = len;

        if (len <= sizeof(scratch)) {
            ngx_memcpy(out[i].data, scratch, len);
            continue;
        }

        rules->busy = 1;
        rules->busy_faults = ngx_http_cef_store_faults;
        out[i].len = cef_template_render(o->html, rules->ev,
                                         (char *) out[i].data, len);
        rules->busy = 0;
    }

    return NGX_OK;
}


/*
 * Add the plugin states the last decision with rules changed (caps counting
 * impressions) to the main request's response as signed cookies.  Call it
 * right after ngx_http_cef_rules_decision() with record, before anything
 * else decides in this process, and only if the offers will be shown.
 */
ngx_int_t
ngx_http_cef_rules_send_states(ngx_http_request_t *r,
    ngx_http_cef_rules_t *rules)
{
    if (rules->dec == NULL) {
        return NGX_OK;
    }

    return ngx_http_cef_rules_write_states(r, rules->dec);
}


/*
 * $cef_rules_decision reads the request's decision, which is made above
 * this file (ngx_http_cef_decision.c): ngx_http_cef_variables.c sets
 * ngx_http_cef_rules_decision_get at preconfiguration, before any cef_rules
 * directive registers the variable.
 */

ngx_http_get_variable_pt  ngx_http_cef_rules_decision_get;


static ngx_int_t
ngx_http_cef_rules_decision_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    return ngx_http_cef_rules_decision_get(r, v, data);
}


static ngx_int_t
ngx_http_cef_rules_header(ngx_http_request_t *r, const cef_ref_t *ref,
    ngx_str_t *value)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
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

        if (h[i].key.len == ref->name.len
            && ngx_strncasecmp(h[i].key.data, (u_char *) ref->name.data,
                               ref->name.len) == 0)
        {
            *value = h[i].value;
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


/*
 * The value of a request.* or var.* reference for r, a string (1) or null
 * (0); var_index: the nginx variable of each reference id.  A variable
 * already evaluated for this request keeps the value it had then.  Other
 * references (profile.*, visitor.*, time.*) are null here.
 */

int
ngx_http_cef_request_value(ngx_http_request_t *r, ngx_int_t *var_index,
    const cef_ref_t *ref, cef_value_t *out)
{
    ngx_str_t                   name, value;
    ngx_http_variable_value_t  *vv;

    switch (ref->kind) {

    case CEF_REF_REQUEST_PATH:
        value = r->uri;
        break;

    case CEF_REF_REQUEST_METHOD:
        value = r->method_name;
        break;

    case CEF_REF_REQUEST_HOST:
        value = r->headers_in.server;
        if (value.len == 0) {
            return 0;
        }
        break;

    case CEF_REF_REQUEST_ARG:
        if (ngx_http_arg(r, (u_char *) ref->name.data, ref->name.len, &value)
            != NGX_OK)
        {
            return 0;
        }
        break;

    case CEF_REF_REQUEST_COOKIE:
        name.len = ref->name.len;
        name.data = (u_char *) ref->name.data;

        if (ngx_http_cef_get_cookie(r, &name, &value) != NGX_OK) {
            return 0;
        }
        break;

    case CEF_REF_REQUEST_HEADER:
        if (ngx_http_cef_rules_header(r, ref, &value) != NGX_OK) {
            return 0;
        }
        break;

    case CEF_REF_VAR:
        if (var_index[ref->id] == NGX_ERROR) {
            return 0;
        }

        vv = ngx_http_get_indexed_variable(r, var_index[ref->id]);
        if (vv == NULL || vv->not_found) {
            return 0;
        }

        value.data = vv->data;
        value.len = vv->len;
        break;

    default:
        return 0;
    }

    out->type = CEF_VAL_STR;
    out->u.s.data = (const char *) value.data;
    out->u.s.len = value.len;

    return 1;
}


static int
ngx_http_cef_rules_lookup(void *data, const cef_ref_t *ref, cef_value_t *out)
{
    ngx_http_cef_rules_req_t  *req = data;

    switch (ref->kind) {

    case CEF_REF_REQUEST_PATH:
    case CEF_REF_REQUEST_METHOD:
    case CEF_REF_REQUEST_HOST:
    case CEF_REF_REQUEST_ARG:
    case CEF_REF_REQUEST_COOKIE:
    case CEF_REF_REQUEST_HEADER:
    case CEF_REF_VAR:
        return ngx_http_cef_request_value(req->r, req->rules->var_index, ref,
                                          out);

    default:
        /* profile.* and visitor.*: the caller's */
        return req->lookup ? req->lookup(req->data, ref, out) : 0;
    }
}
