/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Module definition, directives and configuration.  The response filters
 * live in ngx_http_cef_filter.c.
 */


#include "ngx_http_cef_module.h"


static ngx_int_t ngx_http_cef_preconfiguration(ngx_conf_t *cf);
static void *ngx_http_cef_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_cef_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_cef_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_cef_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_cef_budget(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_cef_statuses(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_cef_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_cef_init_process(ngx_cycle_t *cycle);
static void ngx_http_cef_exit_process(ngx_cycle_t *cycle);


static ngx_conf_enum_t  ngx_http_cef_cache_control[] = {
    { ngx_string("private"), NGX_HTTP_CEF_CACHE_PRIVATE },
    { ngx_string("no-store"), NGX_HTTP_CEF_CACHE_NO_STORE },
    { ngx_string("off"), NGX_HTTP_CEF_CACHE_OFF },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_cef_commands[] = {

    { ngx_string("cef"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_HTTP_LIF_CONF
                        |NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_cef_loc_conf_t, enable),
      NULL },

    { ngx_string("cef_types"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_types_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_cef_loc_conf_t, types_keys),
      &ngx_http_html_default_types[0] },

    { ngx_string("cef_slot_max_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_cef_loc_conf_t, slot_max_size),
      NULL },

    { ngx_string("cef_decide"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_cef_decide_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("cef_statuses"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_cef_statuses,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("cef_budget"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_cef_budget,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("cef_cache_control"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_cef_loc_conf_t, cache_control),
      &ngx_http_cef_cache_control },

    { ngx_string("cef_store"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_cef_store,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("cef_metrics_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_cef_metrics_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("cef_explain"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_cef_explain,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("cef_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_cef_metrics_location,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("cef_store_secret"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_cef_store_secret,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("cef_visitor_cookie"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_cef_visitor_cookie,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("cef_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE23,
      ngx_http_cef_key,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("cef_signing_secret"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_cef_signing_secret,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("cef_link_token"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_cef_link_token,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("cef_consent"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_cef_loc_conf_t, consent),
      NULL },

    { ngx_string("cef_plugin"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_cef_plugin,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("cef_goal"),
      NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_cef_goal,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("cef_rules"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE123,
      ngx_http_cef_fleet_rules,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_cef_module_ctx = {
    ngx_http_cef_preconfiguration,         /* preconfiguration */
    ngx_http_cef_postconfiguration,        /* postconfiguration */

    ngx_http_cef_create_main_conf,         /* create main configuration */
    ngx_http_cef_init_main_conf,           /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_cef_create_loc_conf,          /* create location configuration */
    ngx_http_cef_merge_loc_conf            /* merge location configuration */
};


ngx_module_t  ngx_http_cef_module = {
    NGX_MODULE_V1,
    &ngx_http_cef_module_ctx,              /* module context */
    ngx_http_cef_commands,                 /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_cef_init_process,             /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_cef_exit_process,             /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_cef_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_cef_add_variables(cf);
}


static void *
ngx_http_cef_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_cef_main_conf_t  *cmcf;

    /* the first call nginx makes into the module's http{} */
    ngx_http_cef_self = &ngx_http_cef_module;

    cmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_cef_main_conf_t));
    if (cmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     cmcf->store_dir = { 0, NULL };
     *     cmcf->store_secret = { 0, NULL };
     *     cmcf->store_hash = NULL;
     *     cmcf->plugins = NULL;
     *     cmcf->record = 0;
     *     cmcf->etag_digest = NULL;
     */

    return cmcf;
}


static char *
ngx_http_cef_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_cef_main_conf_t *cmcf = conf;

    cmcf->loaded_at = ngx_time();
    cmcf->record = ngx_http_cef_record_used(cf);

    return ngx_http_cef_init_store_conf(cf, cmcf);
}


static void *
ngx_http_cef_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_cef_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_cef_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->types = { NULL };
     *     conf->types_keys = NULL;
     *     conf->visitor_cookie = NULL;
     *     conf->keys = NULL;
     *     conf->signing = NULL;
     *     conf->link_token = NULL;
     *     conf->link_cookie = NULL;
     *     conf->consent = NULL;
     *     conf->statuses = NULL;
     *     conf->record = NULL;
     *     conf->goal = NULL;
     */

    conf->enable = NGX_CONF_UNSET;
    conf->slot_max_size = NGX_CONF_UNSET_SIZE;
    conf->budget = NGX_CONF_UNSET_UINT;
    conf->cache_control = NGX_CONF_UNSET_UINT;
    conf->rules = NGX_CONF_UNSET_PTR;
    conf->fleet = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_http_cef_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_cef_loc_conf_t *prev = parent;
    ngx_http_cef_loc_conf_t *conf = child;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_size_value(conf->slot_max_size, prev->slot_max_size,
                              CEF_SLOT_DEFAULT_MAX);
    ngx_conf_merge_uint_value(conf->budget, prev->budget, 0);

    if (conf->statuses == NULL) {
        conf->statuses = prev->statuses;
    }
    ngx_conf_merge_uint_value(conf->cache_control, prev->cache_control,
                              NGX_HTTP_CEF_CACHE_PRIVATE);

    if (conf->slot_max_size > CEF_SLOT_MAX_DEFAULT_LIMIT) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"cef_slot_max_size\" is too large");
        return NGX_CONF_ERROR;
    }
    /* cef_rules FILE or store:NAME: one or the other, inherited together */

    if (conf->fleet == NGX_CONF_UNSET_PTR) {
        conf->fleet = (conf->rules == NGX_CONF_UNSET_PTR
                       && prev->fleet != NGX_CONF_UNSET_PTR)
                      ? prev->fleet : NULL;
    }

    ngx_conf_merge_ptr_value(conf->rules, prev->rules, NULL);

    if (ngx_http_merge_types(cf, &conf->types_keys, &conf->types,
                             &prev->types_keys, &prev->types,
                             ngx_http_html_default_types)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_cef_merge_record(cf, prev, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_cef_merge_identity(cf, prev, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    return ngx_http_cef_merge_goal(cf, prev, conf);
}


/* cef_statuses 200 404 ...: the statuses whose pages are personalised */

static char *
ngx_http_cef_statuses(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_cef_loc_conf_t *clcf = conf;

    ngx_int_t    n;
    ngx_str_t   *value;
    ngx_uint_t   i, *status;

    if (clcf->statuses != NULL) {
        return "is duplicate";
    }

    clcf->statuses = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                      sizeof(ngx_uint_t));
    if (clcf->statuses == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        n = ngx_atoi(value[i].data, value[i].len);

        if (n < 200 || n > 599) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid status \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        if (n == NGX_HTTP_PARTIAL_CONTENT) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "status 206 cannot be personalised: a partial "
                               "response holds only part of a page");
            return NGX_CONF_ERROR;
        }

        status = ngx_array_push(clcf->statuses);
        if (status == NULL) {
            return NGX_CONF_ERROR;
        }

        *status = (ngx_uint_t) n;
    }

    return NGX_CONF_OK;
}


/* cef_budget 300us | 2ms | off */

static char *
ngx_http_cef_budget(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_cef_loc_conf_t *clcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value, s;

    if (clcf->budget != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        clcf->budget = 0;
        return NGX_CONF_OK;
    }

    if (value[1].len > 2
        && ngx_strcmp(value[1].data + value[1].len - 2, "us") == 0)
    {
        n = ngx_atoi(value[1].data, value[1].len - 2);

    } else {
        s = value[1];
        n = ngx_parse_time(&s, 0);
        n = (n == NGX_ERROR || n > NGX_MAX_INT_T_VALUE / 1000)
            ? NGX_ERROR : n * 1000;
    }

    if (n == NGX_ERROR || n == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid time \"%V\": use e.g. 300us or 2ms",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    clcf->budget = (ngx_uint_t) n;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_cef_postconfiguration(ngx_conf_t *cf)
{
    if (ngx_http_cef_rules_check_variables(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_cef_fleet_check_conf(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_cef_filter_init(cf);
}


static ngx_int_t
ngx_http_cef_init_process(ngx_cycle_t *cycle)
{
    ngx_http_cef_self = &ngx_http_cef_module;

    if (ngx_http_cef_store_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_cef_fleet_init_process(cycle);
}


static void
ngx_http_cef_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_cef_fleet_exit_process(cycle);
    ngx_http_cef_store_exit_process(cycle);
}
