/*
 * Copyright (C) ngx_cef_module developers
 *
 * The profile store in nginx: cef_store and cef_store_secret, one reader
 * handle per worker process (opened after fork), lookups that fail open.
 */


#include "ngx_http_cef_module.h"

#include <setjmp.h>

#include "cef_store.h"


#define NGX_HTTP_CEF_STORE_RETRY  1      /* seconds between open attempts */


typedef struct {
    ngx_str_t    name;
    ngx_str_t    value;
} ngx_http_cef_attr_t;


static ngx_int_t ngx_http_cef_store_ready(ngx_log_t *log,
    ngx_http_cef_main_conf_t *cmcf);
static ngx_int_t ngx_http_cef_store_session(ngx_http_request_t *r);
static ngx_int_t ngx_http_cef_render_attrs(ngx_http_request_t *r,
    ngx_http_cef_identity_t *id, cef_profile_t *p);
static u_char *ngx_http_cef_render_value(ngx_pool_t *pool,
    const cef_value_t *v, size_t *len);
static void ngx_http_cef_identity_cleanup(void *data);
static void *ngx_http_cef_store_ready_read(void *data);
static void *ngx_http_cef_store_info_read(void *data);
static void *ngx_http_cef_store_attr_read(void *data);
static void *ngx_http_cef_identify_read(void *data);
static void ngx_http_cef_store_sigbus(int signo, siginfo_t *si, void *uc);
static void ngx_http_cef_store_fault(ngx_http_request_t *r, ngx_log_t *log);


/* per worker process */
static cef_store_t  *ngx_http_cef_store_handle;
static time_t        ngx_http_cef_store_next_try;
static ngx_uint_t    ngx_http_cef_store_failing;

/*
 * LMDB maps data.mdb: a page past the end of a file cut short under the
 * worker raises SIGBUS on first touch.  Store reads run armed
 * (ngx_http_cef_store_guard()); a SIGBUS then jumps back out of the read,
 * the handle is dropped and the request goes on without personalisation.
 */
static sigjmp_buf       *ngx_http_cef_store_jmp;
static struct sigaction  ngx_http_cef_store_sigbus_prev;
static ngx_uint_t        ngx_http_cef_store_sigbus_set;


char *
ngx_http_cef_store(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_cef_main_conf_t *cmcf = conf;

    ngx_str_t  *value;

    if (cmcf->store_dir.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    cmcf->store_dir = value[1];

    if (ngx_conf_full_name(cf->cycle, &cmcf->store_dir, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


char *
ngx_http_cef_store_secret(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_cef_main_conf_t *cmcf = conf;

    char                 err[256];
    ngx_str_t           *value;
    ngx_pool_cleanup_t  *cln;

    if (cmcf->store_secret.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    cmcf->store_secret = value[1];

    if (ngx_conf_full_name(cf->cycle, &cmcf->store_secret, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_cef_check_secret_file(cf, &cmcf->store_secret) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cmcf->store_hash = cef_identity_create_from_file(
                                   (char *) cmcf->store_secret.data,
                                   err, sizeof(err));
    if (cmcf->store_hash == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_cef_identity_cleanup;
    cln->data = cmcf->store_hash;

    return NGX_CONF_OK;
}


static void
ngx_http_cef_identity_cleanup(void *data)
{
    cef_identity_free(data);
}


char *
ngx_http_cef_init_store_conf(ngx_conf_t *cf, ngx_http_cef_main_conf_t *cmcf)
{
    if (cmcf->store_dir.data && cmcf->store_hash == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"cef_store\" requires \"cef_store_secret\"");
        return NGX_CONF_ERROR;
    }

    if (cmcf->store_hash && cmcf->store_dir.data == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"cef_store_secret\" requires \"cef_store\"");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_cef_store_init_process(ngx_cycle_t *cycle)
{
    struct sigaction           sa;
    ngx_http_cef_main_conf_t  *cmcf;

    cmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_cef_module);

    if (cmcf == NULL || cmcf->store_dir.data == NULL) {
        return NGX_OK;
    }

    ngx_http_cef_store_handle = NULL;
    ngx_http_cef_store_next_try = 0;
    ngx_http_cef_store_failing = 0;

    ngx_memzero(&sa, sizeof(struct sigaction));
    sa.sa_sigaction = ngx_http_cef_store_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);

    if (sigaction(SIGBUS, &sa, &ngx_http_cef_store_sigbus_prev) == -1) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                      "cef: sigaction(SIGBUS) failed");
        return NGX_ERROR;
    }

    ngx_http_cef_store_sigbus_set = 1;

    /* a store that cannot be opened now is retried on later requests */
    (void) ngx_http_cef_store_guard(NULL, cycle->log,
                                    ngx_http_cef_store_ready_read, cmcf,
                                    NULL);

    return NGX_OK;
}


static void *
ngx_http_cef_store_ready_read(void *data)
{
    ngx_http_cef_main_conf_t *cmcf = data;

    (void) ngx_http_cef_store_ready(ngx_cycle->log, cmcf);

    return NULL;
}


/*
 * Runs read(data) with store faults caught: returns what read returned,
 * or failed if the store's file faulted under it (the handle is dropped
 * then and reopened later, see ngx_http_cef_store_ready()).  Nests.
 */

void *
ngx_http_cef_store_guard(ngx_http_request_t *r, ngx_log_t *log,
    ngx_http_cef_store_read_pt read, void *data, void *failed)
{
    void        *result;
    sigjmp_buf   jb, *prev;

    prev = ngx_http_cef_store_jmp;
    ngx_http_cef_store_jmp = &jb;

    /* no signal mask to save: the handler runs with SA_NODEFER */

    if (sigsetjmp(jb, 0) == 0) {
        result = read(data);

    } else {
        ngx_http_cef_store_jmp = prev;
        ngx_http_cef_store_fault(r, log);
        result = failed;
    }

    ngx_http_cef_store_jmp = prev;

    return result;
}


static void
ngx_http_cef_store_sigbus(int signo, siginfo_t *si, void *uc)
{
    if (ngx_http_cef_store_jmp) {
        siglongjmp(*ngx_http_cef_store_jmp, 1);
    }

    /* not during a store read: fault again, as if we were not here */

    sigaction(SIGBUS, &ngx_http_cef_store_sigbus_prev, NULL);
}


static void
ngx_http_cef_store_fault(ngx_http_request_t *r, ngx_log_t *log)
{
    sigjmp_buf                 jb, *prev;
    cef_store_t               *s;
    ngx_http_cef_ctx_t        *ctx;
    ngx_http_cef_main_conf_t  *cmcf;

    cmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle, ngx_http_cef_module);

    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "cef: store \"%V\" faulted (SIGBUS: its data file is "
                  "shorter than the database, cut short under nginx?): "
                  "closed, serving without personalisation, reopening in "
                  "%d s", &cmcf->store_dir, NGX_HTTP_CEF_STORE_RETRY);

    s = ngx_http_cef_store_handle;
    ngx_http_cef_store_handle = NULL;
    ngx_http_cef_store_next_try = ngx_time() + NGX_HTTP_CEF_STORE_RETRY;
    ngx_http_cef_store_failing = 1;

    ctx = r ? ngx_http_cef_get_ctx(r->main) : NULL;

    if (ctx && ctx->identity) {
        ctx->identity->store = 0;
        ctx->identity->view_valid = 0;
    }

    if (s == NULL) {
        return;
    }

    /* closing reads no data page; should it fault, the handle is leaked */

    prev = ngx_http_cef_store_jmp;
    ngx_http_cef_store_jmp = &jb;

    if (sigsetjmp(jb, 0) == 0) {
        cef_store_close(s);
    }

    ngx_http_cef_store_jmp = prev;
}


void
ngx_http_cef_store_exit_process(ngx_cycle_t *cycle)
{
    if (ngx_http_cef_store_sigbus_set) {
        sigaction(SIGBUS, &ngx_http_cef_store_sigbus_prev, NULL);
        ngx_http_cef_store_sigbus_set = 0;
    }

    if (ngx_http_cef_store_handle) {
        cef_store_close(ngx_http_cef_store_handle);
        ngx_http_cef_store_handle = NULL;
    }
}


/*
 * Open the store if it is not open yet, at most once a second, logging
 * only when it goes from good to bad and back.
 */

static ngx_int_t
ngx_http_cef_store_ready(ngx_log_t *log, ngx_http_cef_main_conf_t *cmcf)
{
    char          err[512];
    cef_store_t  *s;

    if (ngx_http_cef_store_handle) {
        return NGX_OK;
    }

    if (ngx_time() < ngx_http_cef_store_next_try) {
        return NGX_DECLINED;
    }

    ngx_http_cef_store_next_try = ngx_time() + NGX_HTTP_CEF_STORE_RETRY;

    if (cef_store_open(&s, (char *) cmcf->store_dir.data, err, sizeof(err))
        != CEF_STORE_OK)
    {
        if (!ngx_http_cef_store_failing) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "cef: store \"%V\" is not available, serving "
                          "without personalisation: %s",
                          &cmcf->store_dir, err);
            ngx_http_cef_store_failing = 1;
        }
        return NGX_DECLINED;
    }

    if (cef_store_begin(s) == CEF_STORE_OK) {
        if (cef_store_check_secret(s, cmcf->store_hash) == CEF_STORE_NOTFOUND)
        {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "cef: store \"%V\" was loaded with another secret "
                          "than \"%V\": no key will be found",
                          &cmcf->store_dir, &cmcf->store_secret);
        }
        cef_store_end(s);
    }

    if (ngx_http_cef_store_failing) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "cef: store \"%V\" is available again",
                      &cmcf->store_dir);
        ngx_http_cef_store_failing = 0;
    }

    ngx_http_cef_store_handle = s;

    return NGX_OK;
}


static ngx_int_t
ngx_http_cef_store_session(ngx_http_request_t *r)
{
    ngx_http_cef_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_cef_module);

    if (cmcf->store_dir.data == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_http_cef_store_ready(r->connection->log, cmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (cef_store_begin(ngx_http_cef_store_handle) != CEF_STORE_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "cef: store \"%V\": %s", &cmcf->store_dir,
                      cef_store_strerror(ngx_http_cef_store_handle));
        return NGX_ERROR;
    }

    return NGX_OK;
}


typedef struct {
    ngx_http_request_t         *r;
    ngx_http_cef_identity_t    *id;
    ngx_str_t                  *name;
    ngx_str_t                  *out;
    cef_store_info_t           *info;
    ngx_int_t                   rc;
} ngx_http_cef_store_read_t;


ngx_int_t
ngx_http_cef_store_info(ngx_http_request_t *r, cef_store_info_t *info)
{
    ngx_http_cef_store_read_t  rd;

    rd.r = r;
    rd.info = info;
    rd.rc = NGX_DECLINED;

    (void) ngx_http_cef_store_guard(r, r->connection->log,
                                    ngx_http_cef_store_info_read, &rd, NULL);

    return rd.rc;
}


static void *
ngx_http_cef_store_info_read(void *data)
{
    ngx_http_cef_store_read_t *rd = data;

    if (ngx_http_cef_store_session(rd->r) != NGX_OK) {
        return NULL;
    }

    if (cef_store_info(ngx_http_cef_store_handle, rd->info) == CEF_STORE_OK) {
        rd->rc = NGX_OK;
    }

    cef_store_end(ngx_http_cef_store_handle);

    return NULL;
}


/* ngx_http_cef_identify() with the store's faults caught */

ngx_http_cef_identity_t *
ngx_http_cef_identify_guarded(ngx_http_request_t *r)
{
    return ngx_http_cef_store_guard(r, r->connection->log,
                                    ngx_http_cef_identify_read, r, NULL);
}


static void *
ngx_http_cef_identify_read(void *data)
{
    return ngx_http_cef_identify(data);
}


/*
 * NGX_OK: a session is open; NGX_DECLINED: no store is configured;
 * NGX_ERROR: one is, but it cannot be used now (logged).
 *
 * A store session spans one visitor's recognition: every key is looked up
 * in the same read transaction, and what the request keeps is copied out.
 */

ngx_int_t
ngx_http_cef_store_begin(ngx_http_request_t *r)
{
    return ngx_http_cef_store_session(r);
}


void
ngx_http_cef_store_end(void)
{
    if (ngx_http_cef_store_handle) {
        cef_store_end(ngx_http_cef_store_handle);
    }
}


ngx_int_t
ngx_http_cef_store_find(ngx_http_request_t *r, ngx_str_t *type,
    ngx_str_t *value, ngx_http_cef_identity_t *id)
{
    uint8_t                    key[CEF_IDENTITY_HASH_LEN];
    ngx_http_cef_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_cef_module);

    if (type->len == 0
        || cef_identity_hash(cmcf->store_hash, (char *) type->data, type->len,
                             (char *) value->data, value->len, key)
           != 0)
    {
        return NGX_DECLINED;
    }

    return ngx_http_cef_store_find_key(r, key, id);
}


/* by the store key itself, as a link token carries it */

ngx_int_t
ngx_http_cef_store_find_key(ngx_http_request_t *r, const uint8_t *key,
    ngx_http_cef_identity_t *id)
{
    int             rc;
    cef_profile_t  *p;

    p = &id->view;

    rc = cef_store_lookup_hash(ngx_http_cef_store_handle, key, p);

    if (rc == CEF_STORE_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "cef: store lookup failed: %s",
                      cef_store_strerror(ngx_http_cef_store_handle));
        return NGX_DECLINED;
    }

    if (rc != CEF_STORE_OK) {
        ngx_http_cef_metric(NGX_HTTP_CEF_M_LOOKUP_MISS);
        return NGX_DECLINED;
    }

    ngx_http_cef_metric(NGX_HTTP_CEF_M_LOOKUP_HIT);

    id->profile_id.data = ngx_pnalloc(r->main->pool, p->id.len);
    if (id->profile_id.data == NULL) {
        return NGX_DECLINED;
    }

    ngx_memcpy(id->profile_id.data, p->id.data, p->id.len);
    id->profile_id.len = p->id.len;
    id->view_valid = 1;

    return NGX_OK;
}


/* The visitor's profile, read in place: valid until the session ends. */

ngx_int_t
ngx_http_cef_store_profile(ngx_http_request_t *r, ngx_http_cef_identity_t *id,
    cef_profile_t *p)
{
    int                        rc;
    ngx_http_cef_main_conf_t  *cmcf;

    if (id->profile_id.len == 0) {
        return NGX_DECLINED;
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_cef_module);

    rc = cef_store_lookup_id(ngx_http_cef_store_handle, cmcf->store_hash,
                             (char *) id->profile_id.data, id->profile_id.len,
                             p);

    if (rc == CEF_STORE_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "cef: store lookup of profile \"%V\" failed: %s",
                      &id->profile_id,
                      cef_store_strerror(ngx_http_cef_store_handle));
    }

    return rc == CEF_STORE_OK ? NGX_OK : NGX_DECLINED;
}


/*
 * The profile's attributes, rendered as text into the request pool on
 * first use: LMDB views die with the session, a request outlives it.
 */

ngx_int_t
ngx_http_cef_store_attr(ngx_http_request_t *r, ngx_http_cef_identity_t *id,
    ngx_str_t *name, ngx_str_t *out)
{
    ngx_uint_t                 i;
    ngx_http_cef_attr_t       *attr;
    ngx_http_cef_store_read_t  rd;

    if (id->profile_id.len == 0) {
        return NGX_DECLINED;
    }

    if (id->attrs == NULL) {
        rd.r = r;
        rd.id = id;
        rd.rc = NGX_DECLINED;

        (void) ngx_http_cef_store_guard(r, r->connection->log,
                                        ngx_http_cef_store_attr_read, &rd,
                                        NULL);

        if (rd.rc != NGX_OK) {
            id->attrs = NULL;
            return NGX_DECLINED;
        }
    }

    attr = id->attrs->elts;

    for (i = 0; i < id->attrs->nelts; i++) {
        if (attr[i].name.len == name->len
            && ngx_strncmp(attr[i].name.data, name->data, name->len) == 0)
        {
            *out = attr[i].value;
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


static void *
ngx_http_cef_store_attr_read(void *data)
{
    ngx_http_cef_store_read_t *rd = data;

    int                        rc;
    cef_profile_t              p;
    ngx_http_cef_main_conf_t  *cmcf;

    if (ngx_http_cef_store_session(rd->r) != NGX_OK) {
        return NULL;
    }

    cmcf = ngx_http_get_module_main_conf(rd->r, ngx_http_cef_module);

    rc = cef_store_lookup_id(ngx_http_cef_store_handle, cmcf->store_hash,
                             (char *) rd->id->profile_id.data,
                             rd->id->profile_id.len, &p);

    rd->rc = (rc == CEF_STORE_OK)
             ? ngx_http_cef_render_attrs(rd->r, rd->id, &p) : NGX_DECLINED;

    cef_store_end(ngx_http_cef_store_handle);

    return NULL;
}


static ngx_int_t
ngx_http_cef_render_attrs(ngx_http_request_t *r, ngx_http_cef_identity_t *id,
    cef_profile_t *p)
{
    int                   rc;
    size_t                pos, len;
    cef_span_t            name;
    cef_value_t           v;
    ngx_pool_t           *pool;
    ngx_http_cef_attr_t  *attr;

    pool = r->main->pool;

    id->attrs = ngx_array_create(pool, p->nattrs ? p->nattrs : 1,
                                 sizeof(ngx_http_cef_attr_t));
    if (id->attrs == NULL) {
        return NGX_ERROR;
    }

    pos = 0;

    while ((rc = cef_profile_next(p, &pos, &name, &v)) == 1) {
        attr = ngx_array_push(id->attrs);
        if (attr == NULL) {
            return NGX_ERROR;
        }

        attr->name.data = ngx_pnalloc(pool, name.len);
        attr->value.data = ngx_http_cef_render_value(pool, &v, &len);
        if (attr->name.data == NULL || attr->value.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(attr->name.data, name.data, name.len);
        attr->name.len = name.len;
        attr->value.len = len;
    }

    if (rc < 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "cef: profile \"%V\" is malformed in the store",
                      &id->profile_id);
        id->attrs->nelts = 0;
    }

    return NGX_OK;
}


/* numbers as written, strings raw, arrays and maps comma-joined */

static u_char *
ngx_http_cef_render_value(ngx_pool_t *pool, const cef_value_t *v, size_t *len)
{
    u_char      *buf, *p, *last;
    size_t       size, pos;
    double       num;
    cef_span_t   s;

    switch (v->type) {

    case CEF_VAL_STR:
        buf = ngx_pnalloc(pool, v->u.s.len + 1);
        if (buf == NULL) {
            return NULL;
        }
        ngx_memcpy(buf, v->u.s.data, v->u.s.len);
        *len = v->u.s.len;
        return buf;

    case CEF_VAL_STR_ARRAY:
    case CEF_VAL_NUM_MAP:
        size = 1;
        pos = 0;

        if (v->type == CEF_VAL_STR_ARRAY) {
            while (cef_value_array_next(v, &pos, &s) == 1) {
                size += s.len + 1;
            }

        } else {
            while (cef_value_map_next(v, &pos, &s, &num) == 1) {
                size += s.len + 1 + NGX_INT64_LEN + 24;
            }
        }

        buf = ngx_pnalloc(pool, size);
        if (buf == NULL) {
            return NULL;
        }

        p = buf;
        last = buf + size;
        pos = 0;

        if (v->type == CEF_VAL_STR_ARRAY) {
            while (cef_value_array_next(v, &pos, &s) == 1) {
                p = ngx_slprintf(p, last, "%s%*s", p == buf ? "" : ",",
                                 s.len, s.data);
            }

        } else {
            while (cef_value_map_next(v, &pos, &s, &num) == 1) {
                p = ngx_slprintf(p, last, "%s%*s:", p == buf ? "" : ",",
                                 s.len, s.data);
                p += snprintf((char *) p, last - p, "%.15g", num);
            }
        }

        *len = p - buf;
        return buf;

    default:
        buf = ngx_pnalloc(pool, NGX_INT64_LEN + 32);
        if (buf == NULL) {
            return NULL;
        }

        switch (v->type) {
        case CEF_VAL_BOOL:
            p = ngx_sprintf(buf, "%s", v->u.b ? "true" : "false");
            break;
        case CEF_VAL_INT:
            p = ngx_sprintf(buf, "%L", v->u.i);
            break;
        case CEF_VAL_FLOAT:
            p = buf + snprintf((char *) buf, NGX_INT64_LEN + 32, "%.15g",
                               v->u.f);
            break;
        default:
            p = buf;
        }

        *len = p - buf;
        return buf;
    }
}
