/*
 * Copyright (C) ngx_cef_module developers
 *
 * The profile store in nginx: cef_store and cef_store_secret, one reader
 * handle per worker process (opened after fork), lookups that fail open.
 */


#include "ngx_http_cef_module.h"

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


/* per worker process */
static cef_store_t  *ngx_http_cef_store_handle;
static time_t        ngx_http_cef_store_next_try;
static ngx_uint_t    ngx_http_cef_store_failing;


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
    ngx_http_cef_main_conf_t  *cmcf;

    cmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_cef_module);

    if (cmcf == NULL || cmcf->store_dir.data == NULL) {
        return NGX_OK;
    }

    ngx_http_cef_store_handle = NULL;
    ngx_http_cef_store_next_try = 0;
    ngx_http_cef_store_failing = 0;

    /* a store that cannot be opened now is retried on later requests */
    (void) ngx_http_cef_store_ready(cycle->log, cmcf);

    return NGX_OK;
}


void
ngx_http_cef_store_exit_process(ngx_cycle_t *cycle)
{
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


ngx_int_t
ngx_http_cef_store_info(ngx_http_request_t *r, cef_store_info_t *info)
{
    int  rc;

    if (ngx_http_cef_store_session(r) != NGX_OK) {
        return NGX_DECLINED;
    }

    rc = cef_store_info(ngx_http_cef_store_handle, info);

    cef_store_end(ngx_http_cef_store_handle);

    return rc == CEF_STORE_OK ? NGX_OK : NGX_DECLINED;
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
    cef_store_end(ngx_http_cef_store_handle);
}


ngx_int_t
ngx_http_cef_store_find(ngx_http_request_t *r, ngx_str_t *type,
    ngx_str_t *value, ngx_http_cef_identity_t *id)
{
    int                        rc;
    cef_profile_t             *p;
    ngx_http_cef_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_cef_module);
    p = &id->view;

    rc = cef_store_lookup_key(ngx_http_cef_store_handle, cmcf->store_hash,
                              (char *) type->data, type->len,
                              (char *) value->data, value->len, p);

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
    ngx_int_t                  rc;
    ngx_uint_t                 i;
    cef_profile_t              p;
    ngx_http_cef_attr_t       *attr;
    ngx_http_cef_main_conf_t  *cmcf;

    if (id->profile_id.len == 0) {
        return NGX_DECLINED;
    }

    if (id->attrs == NULL) {
        if (ngx_http_cef_store_session(r) != NGX_OK) {
            return NGX_DECLINED;
        }

        cmcf = ngx_http_get_module_main_conf(r, ngx_http_cef_module);

        rc = cef_store_lookup_id(ngx_http_cef_store_handle, cmcf->store_hash,
                                 (char *) id->profile_id.data,
                                 id->profile_id.len, &p);

        rc = (rc == CEF_STORE_OK) ? ngx_http_cef_render_attrs(r, id, &p)
                                  : NGX_DECLINED;

        cef_store_end(ngx_http_cef_store_handle);

        if (rc != NGX_OK) {
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
