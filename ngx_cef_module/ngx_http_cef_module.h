/*
 * Copyright (C) ngx_cef_module developers
 */

#ifndef NGX_HTTP_CEF_MODULE_H_INCLUDED_
#define NGX_HTTP_CEF_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


typedef struct {
    ngx_flag_t          enable;
    ngx_hash_t          types;
    ngx_array_t        *types_keys;
} ngx_http_cef_loc_conf_t;


typedef struct {
    off_t               bytes_seen;
} ngx_http_cef_ctx_t;


extern ngx_module_t  ngx_http_cef_module;


ngx_int_t ngx_http_cef_filter_init(ngx_conf_t *cf);


#endif /* NGX_HTTP_CEF_MODULE_H_INCLUDED_ */
