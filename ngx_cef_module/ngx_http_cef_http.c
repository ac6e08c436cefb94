/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * The glue's leaf: HTTP helpers every other ngx_http_cef_*.c file may
 * call, and which call nothing of ours.  The request's context, cookies
 * in and out, the Cache-Control policy, the module's own small responses
 * (text, JSON: one in-memory buffer, never stored by any cache), and the
 * check of a secret file at configuration time.
 */


#include "ngx_http_cef_module.h"

#include "cef_cookie.h"


/*
 * Set by ngx_http_cef_module.c, which defines the module: its command
 * table names every other file's directive handlers, so that file is the
 * top of the glue, and the files below reach the module through this.
 */
ngx_module_t  *ngx_http_cef_self;


/* --- the request's context -------------------------------------------- */

ngx_http_cef_ctx_t *
ngx_http_cef_get_ctx(ngx_http_request_t *r)
{
    ngx_http_cef_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, NGX_HTTP_CEF);

    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_cef_ctx_t));
        if (ctx == NULL) {
            return NULL;
        }

        ngx_http_set_ctx(r, ctx, NGX_HTTP_CEF);
    }

    return ctx;
}


/* --- cookies in and out --------------------------------------------- */

ngx_int_t
ngx_http_cef_get_cookie(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value)
{
#if (nginx_version >= 1029006)

    /*
     * 1.29.6 split the parsers: ngx_http_parse_multi_header_lines() now
     * separates values by commas only (as the Cookie header must not be),
     * so "a=1; vid=2" would hide vid; cookies have their own function.
     */

    return ngx_http_parse_cookie_lines(r, r->headers_in.cookie, name, value)
           ? NGX_OK : NGX_DECLINED;

#elif (nginx_version >= 1023000)

    /* 1.23.0: the Cookie headers are a list, r->headers_in.cookie */

    return ngx_http_parse_multi_header_lines(r, r->headers_in.cookie, name,
                                             value)
           ? NGX_OK : NGX_DECLINED;

#else

    ngx_uint_t         i;
    cef_span_t         v;
    ngx_table_elt_t  **h;

    h = r->headers_in.cookies.elts;

    for (i = 0; i < r->headers_in.cookies.nelts; i++) {
        if (cef_cookie_find((char *) h[i]->value.data, h[i]->value.len,
                            (char *) name->data, name->len, &v))
        {
            value->data = (u_char *) v.data;
            value->len = v.len;
            return NGX_OK;
        }
    }

    return NGX_DECLINED;

#endif
}


/*
 * Adds "Set-Cookie: name=value attrs" to r's response; attrs is rendered
 * ("; Max-Age=..; Path=/; ...").
 */

ngx_int_t
ngx_http_cef_set_cookie(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value, ngx_str_t *attrs)
{
    u_char           *p;
    size_t            len;
    ngx_table_elt_t  *h;

    len = name->len + 1 + value->len + attrs->len;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif
    ngx_str_set(&h->key, "Set-Cookie");
    h->value.data = p;

    p = ngx_cpymem(p, name->data, name->len);
    *p++ = '=';
    p = ngx_cpymem(p, value->data, value->len);
    p = ngx_cpymem(p, attrs->data, attrs->len);

    h->value.len = p - h->value.data;

    return NGX_OK;
}


/* --- Cache-Control and the module's own responses --------------------- */

ngx_int_t
ngx_http_cef_set_cache_control(ngx_http_request_t *r, ngx_uint_t value)
{
    ngx_table_elt_t  *cc;
#if (nginx_version >= 1023000)
    ngx_table_elt_t  *h;
#else
    ngx_uint_t        i;
    ngx_table_elt_t **ccp;
#endif

    /* the policy replaces the upstream's, Expires included */

    if (r->headers_out.expires) {
        r->headers_out.expires->hash = 0;
        r->headers_out.expires = NULL;
    }

#if (nginx_version >= 1023000)

    for (h = r->headers_out.cache_control; h; h = h->next) {
        h->hash = 0;
    }

#else

    ccp = r->headers_out.cache_control.elts;

    if (ccp == NULL) {
        if (ngx_array_init(&r->headers_out.cache_control, r->pool, 1,
                           sizeof(ngx_table_elt_t *))
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else {
        for (i = 0; i < r->headers_out.cache_control.nelts; i++) {
            ccp[i]->hash = 0;
        }

        r->headers_out.cache_control.nelts = 0;
    }

#endif

    cc = ngx_list_push(&r->headers_out.headers);
    if (cc == NULL) {
        return NGX_ERROR;
    }

    cc->hash = 1;
    ngx_str_set(&cc->key, "Cache-Control");

    if (value == NGX_HTTP_CEF_CACHE_NO_STORE) {
        ngx_str_set(&cc->value, "private, no-store");

    } else {
        ngx_str_set(&cc->value, "private");
    }

#if (nginx_version >= 1023000)

    cc->next = NULL;
    r->headers_out.cache_control = cc;

#else

    ccp = ngx_array_push(&r->headers_out.cache_control);
    if (ccp == NULL) {
        return NGX_ERROR;
    }

    *ccp = cc;

#endif

    return NGX_OK;
}


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


/* --- configuration ---------------------------------------------------- */

/* a secret file shared by cef_store_secret and cef_signing_secret */

ngx_int_t
ngx_http_cef_check_secret_file(ngx_conf_t *cf, ngx_str_t *path)
{
    ngx_file_info_t  fi;

    if (ngx_file_info(path->data, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_file_info_n " \"%V\" failed", path);
        return NGX_ERROR;
    }

    if (!ngx_is_file(&fi) || ngx_file_size(&fi) == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "secret file \"%V\" is empty or not a file", path);
        return NGX_ERROR;
    }

    if (fi.st_mode & S_IROTH) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "secret file \"%V\" is readable by everyone", path);
    }

    return NGX_OK;
}
