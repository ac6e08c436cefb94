/*
 * Copyright (C) ngx_cef_module developers
 *
 * The module's own small responses (the decision API, metrics): one
 * in-memory buffer, never stored by any cache.
 */


#include "ngx_http_cef_module.h"


ngx_int_t
ngx_http_cef_send(ngx_http_request_t *r, ngx_buf_t *b, char *type)
{
    ngx_int_t    rc;
    ngx_chain_t  out;

    b->last_buf = (r == r->main);
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    if (ngx_http_cef_set_cache_control(r, NGX_HTTP_CEF_CACHE_NO_STORE)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* text: a JSON document from json_dumps(), freed here */

ngx_int_t
ngx_http_cef_send_json(ngx_http_request_t *r, char *text)
{
    size_t      len;
    ngx_buf_t  *b;

    len = ngx_strlen(text);

    b = ngx_create_temp_buf(r->pool, len + 1);
    if (b == NULL) {
        free(text);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, text, len);
    *b->last++ = '\n';
    free(text);

    return ngx_http_cef_send(r, b, "application/json");
}
