/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Response header and body filters.  The module is an HTTP_AUX_FILTER, so
 * these run after the copy filter and before SSI, sub and gzip: the body
 * arrives in memory and uncompressed.
 *
 * The body filter feeds each buffer to the slot scanner.  Long stretches
 * of bytes outside slots go out in buffers that point into the input
 * buffer (never written to); the last output buffer made from an input
 * buffer carries it as its shadow, and the input is marked consumed only
 * once that one is sent, as nginx's sub filter does.  Short pieces
 * (offers, defaults, short stretches) are copied, several into one
 * buffer; so are bytes the scanner had to hold across a buffer boundary.
 * Long offers point into the decision's rendered HTML.
 */


#include "ngx_http_cef_module.h"


/*
 * Pieces of output up to NGX_HTTP_CEF_SMALL bytes (offers, slot defaults,
 * the stretches between slots that are close together) are copied into
 * buffers of NGX_HTTP_CEF_JOIN bytes instead of each getting a buffer of
 * its own: every buffer is one more iovec for writev() and one more
 * chain link in each filter after this one, and on loopback TCP an iovec
 * costs the kernel about as much as copying half a kilobyte.
 */
#define NGX_HTTP_CEF_SMALL     512
#define NGX_HTTP_CEF_JOIN      1024


static ngx_int_t ngx_http_cef_header_filter_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_cef_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_cef_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_cef_should_filter(ngx_http_request_t *r,
    ngx_http_cef_loc_conf_t *clcf);
static void ngx_http_cef_count_response(ngx_http_cef_identity_t *id,
    ngx_http_cef_decision_t *d);
static ngx_int_t ngx_http_cef_rewrite_headers(ngx_http_request_t *r,
    ngx_http_cef_loc_conf_t *clcf, ngx_http_cef_ctx_t *ctx);
static ngx_uint_t ngx_http_cef_next_slice(ngx_http_request_t *r);
static cef_slot_scanner_t *ngx_http_cef_scanner(ngx_http_request_t *r,
    ngx_http_cef_loc_conf_t *clcf);
static ngx_uint_t ngx_http_cef_last(ngx_http_cef_ctx_t *ctx, ngx_buf_t *b);
static ngx_int_t ngx_http_cef_scan(ngx_http_request_t *r,
    ngx_http_cef_ctx_t *ctx, ngx_buf_t *in);
static int ngx_http_cef_emit(void *data, const cef_slot_event_t *ev);
static int ngx_http_cef_put(ngx_http_cef_ctx_t *ctx, const u_char *p,
    size_t len, ngx_uint_t held);
static ngx_buf_t *ngx_http_cef_out_buf(ngx_http_cef_ctx_t *ctx,
    ngx_uint_t join);
static ngx_int_t ngx_http_cef_output(ngx_http_request_t *r,
    ngx_http_cef_ctx_t *ctx);
static void *ngx_http_cef_pool_alloc(void *pool, size_t n);


static ngx_http_module_t  ngx_http_cef_header_filter_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_cef_header_filter_init,       /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_cef_header_filter_module = {
    NGX_MODULE_V1,
    &ngx_http_cef_header_filter_module_ctx, /* module context */
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
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


ngx_int_t
ngx_http_cef_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_cef_body_filter;

    return NGX_OK;
}


/*
 * The header filter is hooked in from ngx_http_cef_header_filter_module,
 * which sits above nginx's not_modified filter: see
 * ngx_http_cef_conditional.c.
 */

static ngx_int_t
ngx_http_cef_header_filter_init(ngx_conf_t *cf)
{
    if (ngx_http_cef_conditional_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_cef_header_filter;

    return NGX_OK;
}


static ngx_int_t
ngx_http_cef_header_filter(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_http_cef_ctx_t       *ctx;
    ngx_http_cef_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, NGX_HTTP_CEF);

    if (!clcf->enable) {
        goto next;
    }

    if (r == r->main) {
        ngx_http_cef_own_conditionals(r);
    }

    rc = ngx_http_cef_should_filter(r, clcf);

    if (rc != NGX_OK) {
        if (r == r->main) {
            ngx_http_cef_metric(rc);
        }
        goto next;
    }

    ctx = ngx_http_cef_get_ctx(r);
    if (ctx == NULL) {
        goto next;
    }

    /* fail open: whatever goes wrong, the visitor gets the generic page */

    ctx->filling = ngx_http_cef_decide(r);

    /* a HEAD gets the headers its GET would get, and no body filter */

    if (r->header_only || r->method == NGX_HTTP_HEAD) {
        if (r != r->main) {
            goto next;
        }

        ngx_http_cef_metric(NGX_HTTP_CEF_M_SKIP_HEAD);

        if (ngx_http_cef_rewrite_headers(r, clcf, ctx) != NGX_OK) {
            return NGX_ERROR;
        }

        goto next;
    }

    if (r == r->main) {
        ngx_http_cef_count_response(ngx_http_cef_get_ctx(r)->identity,
                                    ctx->filling);
    }

    ctx->scanner = ngx_http_cef_scanner(r, clcf);
    if (ctx->scanner == NULL) {
        goto next;
    }

    ctx->request = r;
    ctx->last_out = &ctx->out;
    ctx->filtering = 1;
    ctx->slice = r->subrequest_ranges;

    if (r != r->main) {
        /* the main response is rewritten whole: no slice is cut to a range */
        r->allow_ranges = 0;
    }

    r->filter_need_in_memory = 1;

    if (r == r->main && ngx_http_cef_rewrite_headers(r, clcf, ctx) != NGX_OK)
    {
        return NGX_ERROR;
    }

next:

    /* a goal after the decision: the visitor is recognised once for both */

    if (r == r->main && clcf->goal && ngx_http_cef_goal_reached(r, clcf)
                                      != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (r == r->main && ngx_http_cef_set_cookies(r) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_cef_in_control(ngx_http_cef_decision_t *d)
{
    ngx_uint_t  i, n;

    if (d->rules == NULL || d->slots == NULL) {
        return 0;
    }

    n = cef_rules_nslots(ngx_http_cef_rules_set(d->rules));

    for (i = 0; i < n; i++) {
        if (d->slots[i].variant
            && ngx_strcmp(d->slots[i].variant, "control") == 0)
        {
            return 1;
        }
    }

    return 0;
}


/* every personalisable main response is counted in exactly one class */

static void
ngx_http_cef_count_response(ngx_http_cef_identity_t *id,
    ngx_http_cef_decision_t *d)
{
    ngx_uint_t  m;

    if (d->over_budget) {
        m = NGX_HTTP_CEF_M_FAIL_BUDGET;

    } else if (d->failed) {
        m = NGX_HTTP_CEF_M_FAIL_ERROR;

    } else if (id && id->store_failed) {
        m = NGX_HTTP_CEF_M_FAIL_STORE;

    } else if (d->noffers) {
        m = NGX_HTTP_CEF_M_PERSONALISED;

    } else if (ngx_http_cef_in_control(d)) {
        m = NGX_HTTP_CEF_M_CONTROL;

    } else {
        m = NGX_HTTP_CEF_M_DEFAULT;
    }

    ngx_http_cef_metric(m);
}


static ngx_int_t
ngx_http_cef_status_wanted(ngx_http_request_t *r,
    ngx_http_cef_loc_conf_t *clcf)
{
    ngx_uint_t   i, *status;

    if (clcf->statuses == NULL) {
        return r->headers_out.status == NGX_HTTP_OK;
    }

    status = clcf->statuses->elts;

    for (i = 0; i < clcf->statuses->nelts; i++) {
        if (status[i] == r->headers_out.status) {
            return 1;
        }
    }

    return 0;
}


/*
 * A subrequest (an SSI include, an addition, a slice) is part of the main
 * request's response: it is personalised only if the main response is, so
 * that what the status, location and type of the main response decided
 * (and its Cache-Control: private) holds for every part of it.
 *
 * The slice module sets subrequest_ranges on a response it delivers in
 * slices and content_offset to where its body starts in the page: a main
 * response that does not start at the page's first byte (a Range request
 * beyond the first slice) cannot be rewritten and goes out as the range
 * filter cuts it, unpersonalised.
 */

static ngx_int_t
ngx_http_cef_should_filter(ngx_http_request_t *r,
    ngx_http_cef_loc_conf_t *clcf)
{
    ngx_table_elt_t     *ce;
    ngx_http_cef_ctx_t  *mctx;

    if (r != r->main) {
        mctx = ngx_http_get_module_ctx(r->main, NGX_HTTP_CEF);

        if (mctx == NULL || !mctx->filtering) {
            return NGX_HTTP_CEF_M_SKIP_STATUS;
        }

        if (ngx_http_cef_next_slice(r)) {
            return NGX_OK;
        }
    }

    if (ngx_http_test_content_type(r, &clcf->types) == NULL) {
        return NGX_HTTP_CEF_M_SKIP_TYPE;
    }

    if (r->headers_out.content_length_n == 0) {
        return NGX_HTTP_CEF_M_SKIP_HEAD;
    }

    if (r == r->main
        && (!ngx_http_cef_status_wanted(r, clcf)
            || (r->subrequest_ranges && r->headers_out.content_offset)))
    {
        return NGX_HTTP_CEF_M_SKIP_STATUS;
    }

    ce = r->headers_out.content_encoding;

    if (ce && ce->hash && ce->value.len
        && !(ce->value.len == 8
             && ngx_strncasecmp(ce->value.data, (u_char *) "identity", 8)
                == 0))
    {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "cef filter: skipping \"%V\" encoded body",
                       &ce->value);
        return NGX_HTTP_CEF_M_SKIP_ENCODING;
    }

    return NGX_OK;
}


/*
 * The markers are always removed, so the length changes; the validators
 * name this visitor's rendering; a personalised page must never be stored
 * by a shared cache downstream.  Made before nginx's not_modified filter
 * runs, so a 304 carries the same headers as the 200 it stands for.
 */

static ngx_int_t
ngx_http_cef_rewrite_headers(ngx_http_request_t *r,
    ngx_http_cef_loc_conf_t *clcf, ngx_http_cef_ctx_t *ctx)
{
    ngx_http_cef_identity_t  *id;
#if (nginx_version < 1023000)
    ngx_table_elt_t         **ccp;
#endif

    ngx_http_clear_content_length(r);
    ngx_http_clear_accept_ranges(r);

    if (ngx_http_cef_set_validators(r, ctx->filling) != NGX_OK) {
        return NGX_ERROR;
    }

    id = ctx->identity;

    if (clcf->cache_control == NGX_HTTP_CEF_CACHE_OFF
        || ((ctx->filling == NULL || ctx->filling->noffers == 0)
            && !(id && id->consent
                 && (id->visitor_new || id->link_cookie.len))))
    {
        return NGX_OK;
    }

    if (ngx_http_cef_set_cache_control(r, clcf->cache_control) != NGX_OK) {
        return NGX_ERROR;
    }

    /* for the merge with add_header and expires, which run after us */

#if (nginx_version >= 1023000)
    ctx->cache_control = r->headers_out.cache_control;
#else
    ccp = r->headers_out.cache_control.elts;
    ctx->cache_control = ccp[0];
#endif

    ctx->cache_policy = ctx->cache_control->value;

    return NGX_OK;
}


/*
 * A subrequest of the slice module: the next slice of the main request's
 * page, whose scan it goes on with.
 */

static ngx_uint_t
ngx_http_cef_next_slice(ngx_http_request_t *r)
{
    return r != r->main && r->subrequest_ranges;
}


static cef_slot_scanner_t *
ngx_http_cef_scanner(ngx_http_request_t *r, ngx_http_cef_loc_conf_t *clcf)
{
    cef_allocator_t      a;
    ngx_http_cef_ctx_t  *mctx;

    if (ngx_http_cef_next_slice(r)) {
        mctx = ngx_http_get_module_ctx(r->main, NGX_HTTP_CEF);
        return mctx->scanner;
    }

    a.alloc = ngx_http_cef_pool_alloc;
    a.free = NULL;
    a.ctx = r->pool;

    return cef_slot_scanner_create(&a, clcf->slot_max_size);
}


static void *
ngx_http_cef_pool_alloc(void *pool, size_t n)
{
    return ngx_palloc(pool, n);
}


static ngx_int_t
ngx_http_cef_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    size_t               n;
    ngx_chain_t         *cl;
    cef_slot_stats_t     stats;
    ngx_http_cef_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, NGX_HTTP_CEF);

    if (ctx == NULL || !ctx->filtering) {
        return ngx_http_next_body_filter(r, in);
    }

    if (in == NULL && ctx->busy == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    for (cl = in; cl; cl = cl->next) {
        ctx->bytes_seen += ngx_buf_size(cl->buf);

        if (ngx_http_cef_scan(r, ctx, cl->buf) != NGX_OK) {
            return NGX_ERROR;
        }

        if (ngx_http_cef_last(ctx, cl->buf)) {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "cef filter: %O body bytes passed",
                           ctx->bytes_seen);

            cef_slot_scanner_stats(ctx->scanner, &stats);

            for (n = stats.oversized + stats.unclosed + stats.nomem;
                 n > ctx->unchanged;
                 ctx->unchanged++)
            {
                ngx_http_cef_metric(NGX_HTTP_CEF_M_SLOT_UNCHANGED);
            }
        }
    }

    return ngx_http_cef_output(r, ctx);
}


/*
 * The end of the page: a subrequest's (an SSI include's) last buffer ends
 * a page of its own; a page in slices goes on after the last buffer of
 * each slice (the slice module makes the main request's last_in_chain)
 * and ends with the main request's last_buf.
 */

static ngx_uint_t
ngx_http_cef_last(ngx_http_cef_ctx_t *ctx, ngx_buf_t *b)
{
    return b->last_buf || (b->last_in_chain && !ctx->slice);
}


static ngx_int_t
ngx_http_cef_scan(ngx_http_request_t *r, ngx_http_cef_ctx_t *ctx,
    ngx_buf_t *in)
{
    int            rc, last;
    ngx_buf_t     *b;
    ngx_chain_t  **before;

    last = ngx_http_cef_last(ctx, in);

    ctx->in = in;
    before = ctx->last_out;

    if (ngx_buf_in_memory(in) || last) {
        rc = cef_slot_scanner_feed(ctx->scanner,
                                   ngx_buf_in_memory(in) ? in->pos : NULL,
                                   ngx_buf_in_memory(in)
                                   ? (size_t) (in->last - in->pos) : 0,
                                   last, ngx_http_cef_emit, ctx);
        if (rc != 0) {
            return NGX_ERROR;
        }
    }

    /*
     * The input's flags, and its shadow, go on the last buffer made during
     * this feed, or on an empty one if the feed made none (all held).
     */

    if (ctx->last_out != before) {
        b = ((ngx_chain_t *) ((u_char *) ctx->last_out
                              - offsetof(ngx_chain_t, next)))->buf;

    } else {
        b = ngx_http_cef_out_buf(ctx, 0);
        if (b == NULL) {
            return NGX_ERROR;
        }

        b->sync = 1;
    }

    b->flush = in->flush;
    b->last_buf = in->last_buf;
    b->last_in_chain = in->last_in_chain;
    b->shadow = in;
    b->recycled = in->recycled;

    ctx->in = NULL;

    return NGX_OK;
}


static int
ngx_http_cef_emit(void *data, const cef_slot_event_t *ev)
{
    ngx_http_cef_ctx_t *ctx = data;

    ngx_http_cef_offer_t  *offer;

    if (ev->type == CEF_SLOT_PASS) {
        return ngx_http_cef_put(ctx, ev->data, ev->len, ev->held);
    }

    offer = ctx->filling
            ? ngx_http_cef_decision_offer(ctx->filling,
                                          (u_char *) ev->name.data,
                                          ev->name.len)
            : NULL;

    if (offer) {
        ngx_http_cef_metric(NGX_HTTP_CEF_M_SLOT_FILLED);
        ngx_http_cef_metric_impression(&offer->name, &offer->variant);

        /* the decision's HTML lives as long as the request */
        return ngx_http_cef_put(ctx, offer->html.data, offer->html.len, 0);
    }

    ngx_http_cef_metric(NGX_HTTP_CEF_M_SLOT_DEFAULT);

    return ngx_http_cef_put(ctx, ev->def, ev->def_len, ev->held);
}


/*
 * Send len bytes at p: copied if short (appended to the last output
 * buffer when that is a buffer of copies with room that no input's
 * shadow or flags ride on yet) or held (scanner memory, valid only until
 * the next feed), else pointed to.
 */

static int
ngx_http_cef_put(ngx_http_cef_ctx_t *ctx, const u_char *p, size_t len,
    ngx_uint_t held)
{
    u_char     *m;
    ngx_buf_t  *b;

    if (len == 0) {
        return 0;
    }

    if (len <= NGX_HTTP_CEF_SMALL) {
        b = NULL;

        if (ctx->last_out != &ctx->out) {
            b = ((ngx_chain_t *) ((u_char *) ctx->last_out
                                  - offsetof(ngx_chain_t, next)))->buf;

            if (b->end == NULL || (size_t) (b->end - b->last) < len
                || b->shadow || b->sync || b->flush || b->last_buf
                || b->last_in_chain)
            {
                b = NULL;
            }
        }

        if (b == NULL) {
            b = ngx_http_cef_out_buf(ctx, 1);
            if (b == NULL) {
                return -1;
            }
        }

        b->last = ngx_cpymem(b->last, p, len);

        return 0;
    }

    b = ngx_http_cef_out_buf(ctx, 0);
    if (b == NULL) {
        return -1;
    }

    if (held) {
        m = ngx_pnalloc(ctx->request->pool, len);
        if (m == NULL) {
            return -1;
        }

        ngx_memcpy(m, p, len);
        b->temporary = 1;
        b->pos = m;
        b->last = m + len;

    } else {
        b->memory = 1;
        b->pos = (u_char *) p;
        b->last = (u_char *) p + len;
    }

    return 0;
}


/*
 * A new output buffer at the end of ctx->out: with join set, an empty
 * buffer of NGX_HTTP_CEF_JOIN bytes for copies.  Sent buffers are reused
 * (ctx->free), a buffer for copies with its memory, so that a long body
 * fed in many small pieces does not grow the pool with each one.
 */

static ngx_buf_t *
ngx_http_cef_out_buf(ngx_http_cef_ctx_t *ctx, ngx_uint_t join)
{
    u_char        *start, *end;
    ngx_buf_t     *b;
    ngx_chain_t   *cl, **ll;

    for (ll = &ctx->free; *ll; ll = &(*ll)->next) {
        if (((*ll)->buf->start != NULL) == (join != 0)) {
            break;
        }
    }

    if (*ll) {
        cl = *ll;
        *ll = cl->next;
        b = cl->buf;
        start = b->start;
        end = b->end;
        ngx_memzero(b, sizeof(ngx_buf_t));

    } else {
        /* one allocation for both: a response makes one per slot and per
           stretch between slots.  The link is never given to
           ngx_free_chain(): the output goes out through next filters that
           copy the chain */
        cl = ngx_palloc(ctx->request->pool,
                        sizeof(ngx_chain_t) + sizeof(ngx_buf_t));
        if (cl == NULL) {
            return NULL;
        }

        b = (ngx_buf_t *) (cl + 1);
        ngx_memzero(b, sizeof(ngx_buf_t));
        cl->buf = b;

        start = NULL;
        end = NULL;

        if (join) {
            start = ngx_pnalloc(ctx->request->pool, NGX_HTTP_CEF_JOIN);
            if (start == NULL) {
                return NULL;
            }

            end = start + NGX_HTTP_CEF_JOIN;
        }
    }

    if (join) {
        b->temporary = 1;
        b->start = start;
        b->pos = start;
        b->last = start;
        b->end = end;
    }

    b->tag = (ngx_buf_tag_t) ngx_http_cef_self;

    cl->next = NULL;
    *ctx->last_out = cl;
    ctx->last_out = &cl->next;

    return b;
}


/*
 * A filter after this one may call the chain again from inside the call
 * below (the addition filter sends its last buffer so): the chain being
 * sent is taken off ctx->out first, and put on busy in the order sent.
 *
 * r->buffered is never set for the bytes the scanner holds: only more
 * input or the last buffer releases them, and a request marked buffered
 * whose upstream has died waits for them until send_timeout.
 */

static ngx_int_t
ngx_http_cef_output(ngx_http_request_t *r, ngx_http_cef_ctx_t *ctx)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t  *cl, *out, **ll;

    out = ctx->out;

    ctx->out = NULL;
    ctx->last_out = &ctx->out;

    for (ll = &ctx->busy; *ll; ll = &(*ll)->next) { /* void */ }
    *ll = out;

    rc = ngx_http_next_body_filter(r, out);

    while (ctx->busy) {

        cl = ctx->busy;
        b = cl->buf;

        if (ngx_buf_size(b) != 0) {
            break;
        }

        if (b->shadow) {
            b->shadow->pos = b->shadow->last;
        }

        ctx->busy = cl->next;

        cl->next = ctx->free;
        ctx->free = cl;
    }

    return rc;
}
