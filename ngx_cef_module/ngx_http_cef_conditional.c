/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Validators and caching policy of the pages the module rewrites.
 *
 * nginx answers If-None-Match and If-Modified-Since in its not_modified
 * filter, from the response's ETag and Last-Modified, and applies
 * add_header and expires in its headers filter.  The module's own place in
 * the filter chain, just before the copy filter, is after the first and
 * before the second.  Two more modules of this .so take the places the
 * header work needs (config, ngx_module_order):
 *
 *   ngx_http_cef_header_filter_module          above not_modified (below
 *       slice): the cef header filter runs there, so the client's validator
 *       is compared with this visitor's rendering, never the upstream's
 *       (defined in ngx_http_cef_filter.c, which calls this file);
 *   ngx_http_cef_cache_control_filter_module   below headers: one
 *       Cache-Control out of the module's policy and add_header/expires.
 *
 * A rewritten page's ETag is
 *
 *   W/"cef1-" base64url(SHA-256(label, key, upstream validator,
 *                               (slot, offer HTML) per offer shown)[0:16]) "
 *
 * (key: derived from cef_store_secret when there is one, so a tag reveals
 * nothing of the names rendered into it), with no Last-Modified: it
 * changes whenever the upstream's page or what this visitor is shown does.
 */


#include "ngx_http_cef_module.h"


#define NGX_HTTP_CEF_ETAG_BYTES  16
#define NGX_HTTP_CEF_ETAG_LABEL  "cef-etag-1"


static ngx_int_t ngx_http_cef_etag_digest(ngx_http_request_t *r,
    ngx_str_t *validator, time_t lm, ngx_http_cef_decision_t *d,
    u_char *out);
static size_t ngx_http_cef_etag_field(u_char *p, const u_char *data,
    size_t len);
static void ngx_http_cef_etag_cleanup(void *data);
static ngx_int_t ngx_http_cef_hide_conditionals(ngx_http_request_t *r);
static ngx_int_t ngx_http_cef_cache_control_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_cef_merge_cache_control(ngx_http_request_t *r,
    ngx_http_cef_ctx_t *ctx);
static ngx_int_t ngx_http_cef_cache_control_postconf(ngx_conf_t *cf);


static ngx_http_module_t  ngx_http_cef_cache_control_filter_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_cef_cache_control_postconf,   /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_cef_cache_control_filter_module = {
    NGX_MODULE_V1,
    &ngx_http_cef_cache_control_filter_module_ctx, /* module context */
    NULL,                                  /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;

/*
 * The ETag digest's state with its first two fields absorbed, made once at
 * configuration time: the label and, with a store, the key HMAC(cef_store_
 * secret, label).  Without a store no profile value can reach a page (only
 * the request's own values, var.*), and the digest goes unkeyed.
 */

static ngx_int_t
ngx_http_cef_etag_key(ngx_conf_t *cf)
{
    u_char                     key[CEF_IDENTITY_HASH_LEN];
    u_char                     prefix[2 * sizeof(uint32_t)
                                      + sizeof(NGX_HTTP_CEF_ETAG_LABEL) - 1
                                      + CEF_IDENTITY_HASH_LEN];
    size_t                     n;
    ngx_pool_cleanup_t        *cln;
    ngx_http_cef_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, NGX_HTTP_CEF);

    n = ngx_http_cef_etag_field(prefix, (u_char *) NGX_HTTP_CEF_ETAG_LABEL,
                                sizeof(NGX_HTTP_CEF_ETAG_LABEL) - 1);

    if (cmcf->store_hash) {
        if (cef_identity_hash(cmcf->store_hash, NGX_HTTP_CEF_ETAG_LABEL,
                              sizeof(NGX_HTTP_CEF_ETAG_LABEL) - 1, "", 0, key)
            != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "cef: could not derive the ETag key");
            return NGX_ERROR;
        }

        n += ngx_http_cef_etag_field(prefix + n, key, sizeof(key));
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cmcf->etag_digest = cef_digest_create(prefix, n);
    if (cmcf->etag_digest == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cef: could not set up the ETag digest");
        return NGX_ERROR;
    }

    cln->handler = ngx_http_cef_etag_cleanup;
    cln->data = cmcf->etag_digest;

    return NGX_OK;
}


static void
ngx_http_cef_etag_cleanup(void *data)
{
    cef_digest_free(data);
}


/*
 * At postconfiguration, from ngx_http_cef_header_filter_module (in
 * ngx_http_cef_filter.c, which hooks the cef header filter there): the
 * ETag key, and the handler that hides the client's validators.
 */

ngx_int_t
ngx_http_cef_conditional_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    if (ngx_http_cef_etag_key(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PREACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_cef_hide_conditionals;

    return NGX_OK;
}


static ngx_int_t
ngx_http_cef_cache_control_postconf(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_cef_cache_control_filter;

    return NGX_OK;
}


static ngx_uint_t
ngx_http_cef_is_validator_header(ngx_table_elt_t *h)
{
    return (h->key.len == sizeof("if-none-match") - 1
            && ngx_strncmp(h->lowcase_key, "if-none-match",
                           sizeof("if-none-match") - 1) == 0)
           || (h->key.len == sizeof("if-modified-since") - 1
               && ngx_strncmp(h->lowcase_key, "if-modified-since",
                              sizeof("if-modified-since") - 1) == 0);
}


/*
 * A GET's If-None-Match and If-Modified-Since in a cef location are
 * nginx's to answer, not the upstream's: without a cache proxy_pass
 * forwards them, and an upstream that answers 304 for the generic page it
 * knows leaves the browser with another visitor's rendering.  They are
 * taken out of the header list that proxy, fastcgi and the like copy; the
 * not_modified filter still sees them (r->headers_in keeps its pointers).
 */

static ngx_int_t
ngx_http_cef_hide_conditionals(ngx_http_request_t *r)
{
    ngx_uint_t                i, n;
    ngx_list_t                old;
    ngx_list_part_t          *part;
    ngx_table_elt_t          *h, *copy;
    ngx_http_cef_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, NGX_HTTP_CEF);

    if (r != r->main || !clcf->enable
        || !(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))
        || (r->headers_in.if_none_match == NULL
            && r->headers_in.if_modified_since == NULL))
    {
        return NGX_DECLINED;
    }

    n = 0;

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;

        for (i = 0; i < part->nelts; i++) {
            n += ngx_http_cef_is_validator_header(&h[i]);
        }
    }

    if (n == 0) {
        return NGX_DECLINED;     /* hidden before an internal redirect */
    }

    /*
     * The list is rebuilt in place (its "last" points into itself); the
     * old elements stay where they are, for the pointers to them.  Out of
     * memory, the request goes on as it came (fail open).
     */

    old = r->headers_in.headers;

    if (ngx_list_init(&r->headers_in.headers, r->pool, 20,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        r->headers_in.headers = old;
        return NGX_DECLINED;
    }

    for (part = &old.part; part; part = part->next) {
        h = part->elts;

        for (i = 0; i < part->nelts; i++) {
            if (ngx_http_cef_is_validator_header(&h[i])) {
                continue;
            }

            copy = ngx_list_push(&r->headers_in.headers);
            if (copy == NULL) {
                r->headers_in.headers = old;
                return NGX_DECLINED;
            }

            *copy = h[i];
        }
    }

    return NGX_DECLINED;
}


/*
 * Called by the cef header filter for every main response in a cef
 * location: the upstream never saw the client's validators (above), so
 * nginx evaluates them even where proxy_pass without a cache turned its
 * not_modified filter off.
 */

void
ngx_http_cef_own_conditionals(ngx_http_request_t *r)
{
    if ((r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))
        && (r->headers_in.if_none_match || r->headers_in.if_modified_since))
    {
        r->disable_not_modified = 0;
    }
}


/*
 * The validators of a rewritten main response: the weak ETag above, or
 * none when the upstream sent no validator; never Last-Modified, so
 * If-Modified-Since and If-Unmodified-Since do not apply (RFC 9110
 * 13.1.3, 13.1.4) and If-None-Match alone decides.
 */

ngx_int_t
ngx_http_cef_set_validators(ngx_http_request_t *r,
    ngx_http_cef_decision_t *d)
{
    u_char           *p;
    time_t            lm;
    ngx_str_t         validator, src;
    ngx_table_elt_t  *etag;
    u_char            digest[NGX_HTTP_CEF_ETAG_BYTES];

    etag = r->headers_out.etag;
    lm = r->headers_out.last_modified_time;

    ngx_http_clear_last_modified(r);
    r->headers_in.if_modified_since = NULL;
    r->headers_in.if_unmodified_since = NULL;

    ngx_str_null(&validator);

    if (etag && etag->hash) {
        validator = etag->value;

    } else if (lm == -1) {
        ngx_http_clear_etag(r);
        return NGX_OK;
    }

    if (ngx_http_cef_etag_digest(r, &validator, lm, d, digest) != NGX_OK) {
        ngx_http_clear_etag(r);
        return NGX_OK;
    }

    if (etag == NULL || etag->hash == 0) {
        etag = ngx_list_push(&r->headers_out.headers);
        if (etag == NULL) {
            return NGX_ERROR;
        }

        etag->hash = 1;
#if (nginx_version >= 1023000)
        etag->next = NULL;
#endif
        ngx_str_set(&etag->key, "ETag");
        r->headers_out.etag = etag;
    }

    p = ngx_pnalloc(r->pool, sizeof("W/\"cef1-\"") - 1
                             + ngx_base64_encoded_length(sizeof(digest)));
    if (p == NULL) {
        return NGX_ERROR;
    }

    etag->value.data = p;
    p = ngx_cpymem(p, "W/\"cef1-", sizeof("W/\"cef1-") - 1);

    src.data = digest;
    src.len = sizeof(digest);
    validator.data = p;
    ngx_encode_base64url(&validator, &src);
    p += validator.len;
    *p++ = '"';

    etag->value.len = p - etag->value.data;

    return NGX_OK;
}


/* one field of the digest's input: its length (uint32_t, host order), its bytes */

static size_t
ngx_http_cef_etag_field(u_char *p, const u_char *data, size_t len)
{
    uint32_t  n;

    n = (uint32_t) len;
    ngx_memcpy(p, &n, sizeof(n));

    if (len) {
        ngx_memcpy(p + sizeof(n), data, len);
    }

    return sizeof(n) + len;
}


/*
 * The digest of what follows the label and key, gathered into one buffer
 * (on the stack when it fits, else from the request's pool) and digested
 * from the state ngx_http_cef_etag_key() made: one SHA-256 update per
 * response, no allocation and no EVP dispatch.
 */

static ngx_int_t
ngx_http_cef_etag_digest(ngx_http_request_t *r, ngx_str_t *validator,
    time_t lm, ngx_http_cef_decision_t *d, u_char *out)
{
    u_char                     md[CEF_DIGEST_LEN], stack[1024], *buf, *p;
    size_t                     len;
    ngx_uint_t                 i;
    ngx_http_cef_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, NGX_HTTP_CEF);

    len = 2 * sizeof(uint32_t) + 1
          + (validator->len ? validator->len : sizeof(lm));

    for (i = 0; i < d->noffers; i++) {
        len += 2 * sizeof(uint32_t) + d->offers[i].slot.len
               + d->offers[i].html.len;
    }

    buf = len <= sizeof(stack) ? stack : ngx_pnalloc(r->pool, len);
    if (buf == NULL) {
        goto failed;
    }

    p = buf;

    if (validator->len) {
        p += ngx_http_cef_etag_field(p, (u_char *) "E", 1);
        p += ngx_http_cef_etag_field(p, validator->data, validator->len);

    } else {
        p += ngx_http_cef_etag_field(p, (u_char *) "M", 1);
        p += ngx_http_cef_etag_field(p, (u_char *) &lm, sizeof(lm));
    }

    for (i = 0; i < d->noffers; i++) {
        p += ngx_http_cef_etag_field(p, d->offers[i].slot.data,
                                     d->offers[i].slot.len);
        p += ngx_http_cef_etag_field(p, d->offers[i].html.data,
                                     d->offers[i].html.len);
    }

    if (cef_digest(cmcf->etag_digest, buf, p - buf, md) != 0) {
        goto failed;
    }

    ngx_memcpy(out, md, NGX_HTTP_CEF_ETAG_BYTES);

    return NGX_OK;

failed:

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "cef: could not compute the ETag, sending none");

    return NGX_ERROR;
}


/*
 * Cache-Control of a response the module made private, after add_header
 * and expires: one header, the module's policy first, then what the
 * location added that a private cache can use (max-age, no-cache,
 * must-revalidate, no-transform, ...).  Directives for shared caches
 * (public, s-maxage, proxy-revalidate) and repeats are dropped.
 */

static ngx_int_t
ngx_http_cef_cache_control_filter(ngx_http_request_t *r)
{
    ngx_http_cef_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, NGX_HTTP_CEF);

    if (r == r->main && ctx && ctx->cache_control
        && ngx_http_cef_merge_cache_control(r, ctx) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_next_header_filter(r);
}


static ngx_uint_t
ngx_http_cef_directive_name_is(ngx_str_t *name, char *s)
{
    size_t  len;

    len = ngx_strlen(s);

    return name->len == len
           && ngx_strncasecmp(name->data, (u_char *) s, len) == 0;
}


/* the directive's name in d: up to "=", without blanks */

static void
ngx_http_cef_directive_name(ngx_str_t *d, ngx_str_t *name)
{
    u_char  *p, *end;

    end = d->data + d->len;

    for (p = d->data; p < end && *p != '='; p++) { /* void */ }

    while (p > d->data && (p[-1] == ' ' || p[-1] == '\t')) {
        p--;
    }

    name->data = d->data;
    name->len = p - d->data;
}


static ngx_uint_t
ngx_http_cef_directive_kept(ngx_str_t *d, ngx_str_t *out)
{
    u_char     *p, *end;
    ngx_str_t   name, have, have_name;

    ngx_http_cef_directive_name(d, &name);

    if (name.len == 0
        || ngx_http_cef_directive_name_is(&name, "public")
        || ngx_http_cef_directive_name_is(&name, "private")
        || ngx_http_cef_directive_name_is(&name, "s-maxage")
        || ngx_http_cef_directive_name_is(&name, "proxy-revalidate"))
    {
        return 0;
    }

    /* out holds "d1, d2, ..." without quotes that matter here */

    p = out->data;
    end = out->data + out->len;

    while (p < end) {
        have.data = p;

        while (p < end && *p != ',') {
            p++;
        }

        have.len = p - have.data;
        ngx_http_cef_directive_name(&have, &have_name);

        if (have_name.len == name.len
            && ngx_strncasecmp(have_name.data, name.data, name.len) == 0)
        {
            return 0;
        }

        p += (p < end) ? 2 : 0;
    }

    return 1;
}


/* add each directive of value to out, "d1, d2"; quoted commas respected */

static void
ngx_http_cef_merge_directives(ngx_str_t *value, ngx_str_t *out)
{
    u_char      *p, *end, *last;
    ngx_str_t    d;
    ngx_uint_t   quoted;

    p = value->data;
    end = value->data + value->len;

    while (p < end) {

        while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) {
            p++;
        }

        d.data = p;
        quoted = 0;

        while (p < end && (quoted || *p != ',')) {
            if (*p == '"') {
                quoted = !quoted;
            }

            p++;
        }

        last = p;

        while (last > d.data && (last[-1] == ' ' || last[-1] == '\t')) {
            last--;
        }

        d.len = last - d.data;

        if (d.len && ngx_http_cef_directive_kept(&d, out)) {
            out->data[out->len++] = ',';
            out->data[out->len++] = ' ';
            ngx_memcpy(out->data + out->len, d.data, d.len);
            out->len += d.len;
        }
    }
}


static ngx_int_t
ngx_http_cef_merge_cache_control(ngx_http_request_t *r,
    ngx_http_cef_ctx_t *ctx)
{
    size_t            len;
    ngx_str_t         out;
    ngx_uint_t        i, n;
    ngx_table_elt_t  *ours, *all[16];
#if (nginx_version >= 1023000)
    ngx_table_elt_t  *h;
#else
    ngx_table_elt_t **ccp;
#endif

    ours = ctx->cache_control;
    n = 0;

#if (nginx_version >= 1023000)

    for (h = r->headers_out.cache_control; h && n < 16; h = h->next) {
        if (h->hash) {
            all[n++] = h;
        }
    }

#else

    ccp = r->headers_out.cache_control.elts;

    for (i = 0; i < r->headers_out.cache_control.nelts && n < 16; i++) {
        if (ccp[i]->hash) {
            all[n++] = ccp[i];
        }
    }

#endif

    /* expires writes its max-age into the first Cache-Control: ours */

    len = ctx->cache_policy.len;

    for (i = 0; i < n; i++) {
        len += all[i]->value.len + 2;
    }

    if (n == 1 && all[0] == ours
        && ours->value.data == ctx->cache_policy.data)
    {
        return NGX_OK;
    }

    out.data = ngx_pnalloc(r->pool, len + 2);
    if (out.data == NULL) {
        return NGX_ERROR;
    }

    out.len = ngx_cpymem(out.data, ctx->cache_policy.data,
                         ctx->cache_policy.len)
              - out.data;

    for (i = 0; i < n; i++) {
        if (all[i] == ours && ours->value.data == ctx->cache_policy.data) {
            continue;
        }

        ngx_http_cef_merge_directives(&all[i]->value, &out);

        if (all[i] != ours) {
            all[i]->hash = 0;
        }
    }

    ours->hash = 1;
    ours->value = out;

#if (nginx_version >= 1023000)

    ours->next = NULL;
    r->headers_out.cache_control = ours;

#else

    ccp = r->headers_out.cache_control.elts;
    ccp[0] = ours;
    r->headers_out.cache_control.nelts = 1;

#endif

    return NGX_OK;
}
