/*
 * Copyright (C) ngx_cef_module developers
 *
 * Response header and body filters.  The module is an HTTP_AUX_FILTER, so
 * these run after the copy filter and before SSI, sub and gzip: the body
 * arrives in memory and uncompressed.
 */


#include "ngx_http_cef_module.h"


static ngx_int_t ngx_http_cef_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_cef_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


ngx_int_t
ngx_http_cef_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_cef_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_cef_body_filter;

    return NGX_OK;
}


ngx_http_cef_ctx_t *
ngx_http_cef_get_ctx(ngx_http_request_t *r)
{
    ngx_http_cef_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_cef_module);

    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_cef_ctx_t));
        if (ctx == NULL) {
            return NULL;
        }

        ngx_http_set_ctx(r, ctx, ngx_http_cef_module);
    }

    return ctx;
}


static ngx_int_t
ngx_http_cef_header_filter(ngx_http_request_t *r)
{
    ngx_http_cef_ctx_t       *ctx;
    ngx_http_cef_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cef_module);

    if (!clcf->enable
        || ngx_http_test_content_type(r, &clcf->types) == NULL)
    {
        goto next;
    }

    ctx = ngx_http_cef_get_ctx(r);
    if (ctx == NULL) {
        goto next;
    }

    if (r == r->main) {
        /* fail open: an unknown visitor gets the generic page */
        (void) ngx_http_cef_identify(r);
    }

    if (r->headers_out.content_length_n != 0 && !r->header_only) {
        ctx->filtering = 1;
    }

next:

    if (r == r->main && ngx_http_cef_set_cookies(r) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_cef_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_chain_t         *cl;
    ngx_http_cef_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_cef_module);

    if (ctx == NULL || !ctx->filtering || in == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    for (cl = in; cl; cl = cl->next) {
        ctx->bytes_seen += ngx_buf_size(cl->buf);

        if (cl->buf->last_buf || cl->buf->last_in_chain) {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "cef filter: %uO body bytes passed",
                           ctx->bytes_seen);
        }
    }

    return ngx_http_next_body_filter(r, in);
}
