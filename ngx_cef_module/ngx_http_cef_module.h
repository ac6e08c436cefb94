/*
 * Copyright (C) ngx_cef_module developers
 */

#ifndef NGX_HTTP_CEF_MODULE_H_INCLUDED_
#define NGX_HTTP_CEF_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "cef_rules.h"

typedef struct ngx_http_cef_rules_s  ngx_http_cef_rules_t;


typedef struct {
    ngx_flag_t          enable;
    ngx_hash_t          types;
    ngx_array_t        *types_keys;
    ngx_http_cef_rules_t *rules;         /* cef_rules */
} ngx_http_cef_loc_conf_t;


typedef struct {
    off_t               bytes_seen;
} ngx_http_cef_ctx_t;


extern ngx_module_t  ngx_http_cef_module;


ngx_int_t ngx_http_cef_filter_init(ngx_conf_t *cf);


/* rules: ngx_http_cef_rules.c */
/*
 * Looks up what the rules glue cannot know itself (profile.*, visitor.*):
 * the contract of cef_expr_ctx_t's lookup.
 */
typedef int (*ngx_http_cef_rules_lookup_pt)(void *data, const cef_ref_t *ref,
    cef_value_t *out);

char *ngx_http_cef_rules(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
const cef_rules_t *ngx_http_cef_rules_set(ngx_http_cef_rules_t *rules);
ngx_int_t ngx_http_cef_rules_decide(ngx_http_request_t *r,
    ngx_http_cef_rules_t *rules, ngx_http_cef_rules_lookup_pt lookup,
    void *data, cef_rules_choice_t **choices);
ngx_int_t ngx_http_cef_rules_render(ngx_http_request_t *r,
    ngx_http_cef_rules_t *rules, uint32_t offer, ngx_str_t *out);

#endif /* NGX_HTTP_CEF_MODULE_H_INCLUDED_ */
