/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Visitor recognition: consent, link tokens, identity keys (plain and
 * signed), the link cookie and the visitor cookie.  The answer is worked
 * out once per main request, on first use, and shared with subrequests.
 */


#include "ngx_http_cef_module.h"

#include "cef_expr.h"
#include "cef_visitor.h"


#define NGX_HTTP_CEF_MAX_KEY_VALUE  CEF_SIGN_MAX_VALUE
#define NGX_HTTP_CEF_LEGACY_MAX     (366 * 86400)


static char *ngx_http_cef_parse_cookie(ngx_conf_t *cf, ngx_str_t *value,
    ngx_uint_t first, ngx_uint_t n, ngx_uint_t httponly,
    ngx_http_cef_cookie_t *cookie);
static ngx_http_cef_identity_t *ngx_http_cef_resolve(ngx_http_request_t *r,
    ngx_uint_t keep_open);
static ngx_int_t ngx_http_cef_try_key(ngx_http_request_t *r,
    ngx_http_cef_identity_t *id, ngx_str_t *type, ngx_str_t *value);
static void ngx_http_cef_link(ngx_http_request_t *r,
    ngx_http_cef_loc_conf_t *clcf, ngx_http_cef_identity_t *id,
    ngx_str_t *token, ngx_uint_t from_url, ngx_http_cef_step_t *st);
static void ngx_http_cef_visitor(ngx_http_request_t *r,
    ngx_http_cef_loc_conf_t *clcf, ngx_http_cef_identity_t *id,
    ngx_http_cef_tracer_t *tr);
static const char *ngx_http_cef_lookup_result(ngx_http_cef_identity_t *id,
    ngx_int_t rc);
static void *ngx_http_cef_identify_read(void *data);
static void ngx_http_cef_signing_cleanup(void *data);
static char *ngx_http_cef_legacy_until(ngx_conf_t *cf, ngx_str_t *value,
    ngx_http_cef_signing_t *signing);


static ngx_str_t  ngx_http_cef_visitor_type = ngx_string("visitor");
static ngx_str_t  ngx_http_cef_default_link_cookie = ngx_string("cef_id");


char *
ngx_http_cef_visitor_cookie(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_cef_loc_conf_t *clcf = conf;

    ngx_str_t  *value;

    if (clcf->visitor_cookie != NULL) {
        return "is duplicate";
    }

    clcf->visitor_cookie = ngx_pcalloc(cf->pool,
                                       sizeof(ngx_http_cef_cookie_t));
    if (clcf->visitor_cookie == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        if (cf->args->nelts > 2) {
            return "takes no parameters after \"off\"";
        }
        return NGX_CONF_OK;
    }

    clcf->visitor_cookie->name = value[1];
    clcf->visitor_cookie->max_age = 365 * 86400;

    return ngx_http_cef_parse_cookie(cf, value, 2, cf->args->nelts, 0,
                                     clcf->visitor_cookie);
}


/*
 * [max_age=TIME] [domain=D] [path=P] [secure] [httponly[=on|off]]
 * [samesite=lax|strict|none], rendered once into the attributes string;
 * httponly gives the default.
 */

static char *
ngx_http_cef_parse_cookie(ngx_conf_t *cf, ngx_str_t *value, ngx_uint_t first,
    ngx_uint_t n, ngx_uint_t httponly, ngx_http_cef_cookie_t *cookie)
{
    u_char      *p;
    time_t       max_age;
    ngx_str_t    domain, path, samesite, s;
    ngx_uint_t   i, secure;

    ngx_str_set(&path, "/");
    ngx_str_set(&samesite, "Lax");
    ngx_str_null(&domain);
    secure = 0;
    max_age = cookie->max_age;

    for (p = cookie->name.data; p < cookie->name.data + cookie->name.len; p++)
    {
        if (*p <= ' ' || *p >= 0x7f || ngx_strchr("()<>@,;:\\\"/[]?={}", *p))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid cookie name \"%V\"", &cookie->name);
            return NGX_CONF_ERROR;
        }
    }

    for (i = first; i < n; i++) {

        if (ngx_strncmp(value[i].data, "max_age=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;
            max_age = ngx_parse_time(&s, 1);
            if (max_age == (time_t) NGX_ERROR || max_age == 0) {
                goto invalid;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "domain=", 7) == 0
            && value[i].len > 7)
        {
            domain.data = value[i].data + 7;
            domain.len = value[i].len - 7;
            continue;
        }

        if (ngx_strncmp(value[i].data, "path=", 5) == 0
            && value[i].len > 5 && value[i].data[5] == '/')
        {
            path.data = value[i].data + 5;
            path.len = value[i].len - 5;
            continue;
        }

        if (ngx_strcmp(value[i].data, "secure") == 0) {
            secure = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "httponly") == 0
            || ngx_strcmp(value[i].data, "httponly=on") == 0)
        {
            httponly = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "httponly=off") == 0) {
            httponly = 0;
            continue;
        }

        if (ngx_strcmp(value[i].data, "samesite=lax") == 0) {
            ngx_str_set(&samesite, "Lax");
            continue;
        }

        if (ngx_strcmp(value[i].data, "samesite=strict") == 0) {
            ngx_str_set(&samesite, "Strict");
            continue;
        }

        if (ngx_strcmp(value[i].data, "samesite=none") == 0) {
            ngx_str_set(&samesite, "None");
            continue;
        }

        goto invalid;
    }

    if (samesite.len == 4 && !secure) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"samesite=none\" requires \"secure\"");
        return NGX_CONF_ERROR;
    }

    cookie->max_age = max_age;
    cookie->attrs.len = sizeof("; Max-Age=") - 1 + NGX_TIME_T_LEN
                        + sizeof("; Domain=") - 1 + domain.len
                        + sizeof("; Path=") - 1 + path.len
                        + sizeof("; Secure; HttpOnly; SameSite=Strict") - 1;

    cookie->attrs.data = ngx_pnalloc(cf->pool, cookie->attrs.len);
    if (cookie->attrs.data == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_sprintf(cookie->attrs.data, "; Max-Age=%T", max_age);

    if (domain.len) {
        p = ngx_sprintf(p, "; Domain=%V", &domain);
    }

    p = ngx_sprintf(p, "; Path=%V", &path);

    if (secure) {
        p = ngx_cpymem(p, "; Secure", sizeof("; Secure") - 1);
    }

    if (httponly) {
        p = ngx_cpymem(p, "; HttpOnly", sizeof("; HttpOnly") - 1);
    }

    p = ngx_sprintf(p, "; SameSite=%V", &samesite);

    cookie->attrs.len = p - cookie->attrs.data;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);
    return NGX_CONF_ERROR;
}


char *
ngx_http_cef_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_cef_loc_conf_t *clcf = conf;

    u_char                            *p;
    ngx_str_t                         *value;
    ngx_http_cef_key_t                *key;
    ngx_http_compile_complex_value_t   ccv;

    value = cf->args->elts;

    for (p = value[1].data; p < value[1].data + value[1].len; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
              || *p == '_' || *p == '-'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid key type \"%V\": use lower-case "
                               "letters, digits, \"_\" and \"-\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    if (value[1].len == 0 || value[1].len > 64) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid key type \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 4 && ngx_strcmp(value[3].data, "signed") != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[3]);
        return NGX_CONF_ERROR;
    }

    if (clcf->keys == NULL) {
        clcf->keys = ngx_array_create(cf->pool, 4,
                                      sizeof(ngx_http_cef_key_t));
        if (clcf->keys == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    key = ngx_array_push(clcf->keys);
    if (key == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[2];
    ccv.complex_value = &key->value;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    key->type = value[1];
    key->is_signed = (cf->args->nelts == 4);

    return NGX_CONF_OK;
}


char *
ngx_http_cef_signing_secret(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_cef_loc_conf_t *clcf = conf;

    char                    err[256];
    ngx_str_t              *value;
    ngx_pool_cleanup_t     *cln;
    ngx_http_cef_signing_t *signing;

    if (clcf->signing != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_conf_full_name(cf->cycle, &value[1], 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_cef_check_secret_file(cf, &value[1]) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    signing = ngx_pcalloc(cf->pool, sizeof(ngx_http_cef_signing_t));
    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (signing == NULL || cln == NULL) {
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 3
        && ngx_http_cef_legacy_until(cf, &value[2], signing) != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    signing->path = value[1];
    signing->signer = cef_signer_create_from_file((char *) value[1].data,
                                                  err, sizeof(err));
    if (signing->signer == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_cef_signing_cleanup;
    cln->data = signing->signer;

    clcf->signing = signing;

    return NGX_CONF_OK;
}


static void
ngx_http_cef_signing_cleanup(void *data)
{
    cef_signer_free(data);
}


/*
 * legacy_keys_until=DATE: until then, signed keys of the format before
 * purpose labels verify too.  That format is ambiguous (a signed key, a
 * link token and a plugin state could stand for one another), so the
 * transition is at most a year.
 */

static char *
ngx_http_cef_legacy_until(ngx_conf_t *cf, ngx_str_t *value,
    ngx_http_cef_signing_t *signing)
{
    int64_t  until;

    if (value->len <= sizeof("legacy_keys_until=") - 1
        || ngx_strncmp(value->data, "legacy_keys_until=",
                       sizeof("legacy_keys_until=") - 1) != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", value);
        return NGX_CONF_ERROR;
    }

    if (cef_expr_parse_time((char *) value->data
                            + sizeof("legacy_keys_until=") - 1,
                            value->len - (sizeof("legacy_keys_until=") - 1),
                            &until)
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid date in \"%V\" (use YYYY-MM-DD)", value);
        return NGX_CONF_ERROR;
    }

    if (until > (int64_t) ngx_time() + NGX_HTTP_CEF_LEGACY_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" is more than a year ahead: reissue the "
                           "signed keys sooner", value);
        return NGX_CONF_ERROR;
    }

    if (until <= (int64_t) ngx_time()) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"%V\" has passed: signed keys of the old "
                           "format are refused", value);
    }

    signing->legacy_until = (time_t) until;

    return NGX_CONF_OK;
}


/*
 * A signed key "VALUE.SIG": the format with purpose labels, or until
 * legacy_keys_until= the one before.  *legacy says which verified.
 */

cef_sign_rc_t
ngx_http_cef_verify_key(ngx_http_cef_signing_t *signing, ngx_str_t *type,
    ngx_str_t *value, ngx_str_t *plain, ngx_uint_t *legacy)
{
    cef_span_t     t, v, out;
    cef_sign_rc_t  rc;

    t.data = (char *) type->data;
    t.len = type->len;
    v.data = (char *) value->data;
    v.len = value->len;

    *legacy = 0;

    rc = cef_sign_verify(signing->signer, t, v, &out);

    if (rc == CEF_SIGN_BAD && ngx_time() < signing->legacy_until) {
        rc = cef_sign_verify_legacy(signing->signer, t, v, &out);
        *legacy = (rc == CEF_SIGN_OK);
    }

    if (rc == CEF_SIGN_OK) {
        plain->data = (u_char *) out.data;
        plain->len = out.len;
    }

    return rc;
}


char *
ngx_http_cef_link_token(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_cef_loc_conf_t *clcf = conf;

    ngx_str_t                         *value;
    ngx_uint_t                         i, n;
    ngx_http_compile_complex_value_t   ccv;

    if (clcf->link_token != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    clcf->link_token = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    clcf->link_cookie = ngx_pcalloc(cf->pool, sizeof(ngx_http_cef_cookie_t));
    if (clcf->link_token == NULL || clcf->link_cookie == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = clcf->link_token;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    clcf->link_cookie->name = ngx_http_cef_default_link_cookie;
    clcf->link_cookie->max_age = 30 * 86400;

    /* cookie=NAME may stand anywhere among the cookie attributes */

    n = cf->args->nelts;

    for (i = 2; i < n; i++) {
        if (ngx_strncmp(value[i].data, "cookie=", 7) == 0) {
            clcf->link_cookie->name.data = value[i].data + 7;
            clcf->link_cookie->name.len = value[i].len - 7;

            if (clcf->link_cookie->name.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid parameter \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            value[i] = value[n - 1];
            n--;
            break;
        }
    }

    /* HttpOnly by default: no script needs the token, and none may steal
       it */

    return ngx_http_cef_parse_cookie(cf, value, 2, n, 1, clcf->link_cookie);
}


char *
ngx_http_cef_merge_identity(ngx_conf_t *cf, ngx_http_cef_loc_conf_t *prev,
    ngx_http_cef_loc_conf_t *conf)
{
    ngx_uint_t           i;
    ngx_http_cef_key_t  *key;

    if (conf->visitor_cookie == NULL) {
        conf->visitor_cookie = prev->visitor_cookie;
    }

    if (conf->keys == NULL) {
        conf->keys = prev->keys;
    }

    if (conf->signing == NULL) {
        conf->signing = prev->signing;
    }

    if (conf->link_token == NULL) {
        conf->link_token = prev->link_token;
        conf->link_cookie = prev->link_cookie;
    }

    if (conf->consent == NULL) {
        conf->consent = prev->consent;
    }

    if (conf->signing != NULL) {
        return NGX_CONF_OK;
    }

    if (conf->link_token != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"cef_link_token\" requires "
                           "\"cef_signing_secret\"");
        return NGX_CONF_ERROR;
    }

    if (conf->keys != NULL) {
        key = conf->keys->elts;
        for (i = 0; i < conf->keys->nelts; i++) {
            if (key[i].is_signed) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "signed \"cef_key %V\" requires "
                                   "\"cef_signing_secret\"", &key[i].type);
                return NGX_CONF_ERROR;
            }
        }
    }

    return NGX_CONF_OK;
}


/*
 * Candidates are tried in this order, the first with a profile wins:
 * a link token in this request, the cef_key directives as written, the
 * link cookie an earlier token set, and the visitor cookie.
 */

ngx_http_cef_identity_t *
ngx_http_cef_identify(ngx_http_request_t *r)
{
    return ngx_http_cef_resolve(r, 0);
}


/*
 * As ngx_http_cef_identify(), but when the visitor is recognised by this
 * call the store session stays open and id->view is the profile, read in
 * place, so that the decision needs no second lookup.  The caller ends
 * the session (ngx_http_cef_store_end()) if id->store is set.
 */

ngx_http_cef_identity_t *
ngx_http_cef_identify_open(ngx_http_request_t *r)
{
    return ngx_http_cef_resolve(r, 1);
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


static ngx_http_cef_identity_t *
ngx_http_cef_resolve(ngx_http_request_t *r, ngx_uint_t keep_open)
{
    ngx_http_cef_ctx_t       *ctx;
    ngx_http_cef_identity_t  *id;

    ctx = ngx_http_cef_get_ctx(r->main);
    if (ctx == NULL) {
        return NULL;
    }

    if (ctx->identity) {
        return ctx->identity;
    }

    id = ngx_pcalloc(r->main->pool, sizeof(ngx_http_cef_identity_t));
    if (id == NULL) {
        return NULL;
    }

    ctx->identity = id;

    ngx_http_cef_recognise(r, id, keep_open, NULL);

    return id;
}


/*
 * Recognises r's visitor into id (zeroed by the caller), trying the
 * candidates in the order ngx_http_cef_identify() gives.  tr, if not NULL,
 * is told each step and what came of it (cef_explain); the request path
 * passes NULL.  With keep_open, a store session opened here stays open
 * (id->store): the caller ends it.
 */

void
ngx_http_cef_recognise(ngx_http_request_t *r, ngx_http_cef_identity_t *id,
    ngx_uint_t keep_open, ngx_http_cef_tracer_t *tr)
{
    ngx_int_t                 rc;
    ngx_str_t                 value, v, plain;
    ngx_uint_t                i, legacy;
    ngx_http_cef_key_t       *key;
    ngx_http_cef_step_t       st;
    ngx_http_cef_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, NGX_HTTP_CEF);

    id->consent = ngx_http_cef_consent(r, clcf, tr ? &value : NULL);

    if (tr) {
        ngx_memzero(&st, sizeof(ngx_http_cef_step_t));
        st.source = "consent";
        st.value = clcf->consent ? &value : NULL;
        tr->step(tr->data, &st, id);
    }

    if (!id->consent) {
        return;
    }

    rc = ngx_http_cef_store_begin(r);
    id->store = (rc == NGX_OK);
    id->store_failed = (rc == NGX_ERROR);

    if (tr) {
        ngx_memzero(&st, sizeof(ngx_http_cef_step_t));
        st.source = "store";
        st.rc = rc;
        tr->step(tr->data, &st, id);
    }

    if (clcf->link_token) {
        if (tr) {
            ngx_memzero(&st, sizeof(ngx_http_cef_step_t));
            st.source = "link_token";
        }

        if (ngx_http_complex_value(r, clcf->link_token, &value) == NGX_OK
            && value.len)
        {
            ngx_http_cef_link(r, clcf, id, &value, 1, tr ? &st : NULL);

        } else if (tr) {
            st.result = "absent";
        }

        if (tr) {
            tr->step(tr->data, &st, id);
        }
    }

    if (id->profile_id.len == 0 && clcf->keys) {
        key = clcf->keys->elts;

        for (i = 0; i < clcf->keys->nelts; i++) {
            if (tr) {
                ngx_memzero(&st, sizeof(ngx_http_cef_step_t));
                st.source = "cef_key";
                st.key_type = &key[i].type;
                st.is_signed = key[i].is_signed;
            }

            if (ngx_http_complex_value(r, &key[i].value, &value) != NGX_OK
                || value.len == 0)
            {
                if (tr) {
                    st.result = "absent";
                    tr->step(tr->data, &st, id);
                }
                continue;
            }

            if (value.len > NGX_HTTP_CEF_MAX_KEY_VALUE
                + (key[i].is_signed ? CEF_SIGN_SIG_LEN + 1 : 0))
            {
                ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                              "cef: client sent an overlong \"%V\" key",
                              &key[i].type);
                if (tr) {
                    st.result = "overlong";
                    tr->step(tr->data, &st, id);
                }
                continue;
            }

            if (key[i].is_signed) {
                if (ngx_http_cef_verify_key(clcf->signing, &key[i].type,
                                            &value, &plain, &legacy)
                    != CEF_SIGN_OK)
                {
                    /* not the value: it may be an address */
                    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                                  "cef: client sent an invalid signed "
                                  "\"%V\" key (%uz bytes)", &key[i].type,
                                  value.len);
                    if (tr) {
                        st.sent = &value;
                        st.signature = "bad";
                        st.result = "ignored";
                        tr->step(tr->data, &st, id);
                    }
                    continue;
                }

                if (tr) {
                    st.signature = legacy ? "legacy" : "ok";
                }

                value = plain;
            }

            rc = ngx_http_cef_try_key(r, id, &key[i].type, &value);

            if (tr) {
                st.value = &value;
                st.result = ngx_http_cef_lookup_result(id, rc);
                st.lookup = 1;
                tr->step(tr->data, &st, id);
            }

            if (rc == NGX_OK) {
                break;
            }
        }
    }

    if (id->profile_id.len == 0 && clcf->link_token) {
        if (tr) {
            ngx_memzero(&st, sizeof(ngx_http_cef_step_t));
            st.source = "link_cookie";
            st.cookie = &clcf->link_cookie->name;
        }

        if (ngx_http_cef_get_cookie(r, &clcf->link_cookie->name, &v)
            == NGX_OK)
        {
            ngx_http_cef_link(r, clcf, id, &v, 0, tr ? &st : NULL);

        } else if (tr) {
            st.result = "absent";
        }

        if (tr) {
            tr->step(tr->data, &st, id);
        }
    }

    ngx_http_cef_visitor(r, clcf, id, tr);

    if (id->store && !keep_open) {
        ngx_http_cef_store_end();
        id->store = 0;
        id->view_valid = 0;
    }
}


/* what came of a lookup, for a tracer */

static const char *
ngx_http_cef_lookup_result(ngx_http_cef_identity_t *id, ngx_int_t rc)
{
    return !id->store ? "no store" : rc == NGX_OK ? "found" : "not found";
}


/*
 * cef_consent's verdict for r: 1 without cef_consent, else 0 when it
 * evaluates to "", "0", "no" or "false".  value, if not NULL, gets what it
 * evaluated to (cef_explain shows it).
 */

ngx_uint_t
ngx_http_cef_consent(ngx_http_request_t *r, ngx_http_cef_loc_conf_t *clcf,
    ngx_str_t *value)
{
    ngx_str_t  v;

    ngx_str_null(&v);

    if (value) {
        *value = v;
    }

    if (clcf->consent == NULL) {
        return 1;
    }

    if (ngx_http_complex_value(r, clcf->consent, &v) != NGX_OK) {
        return 0;
    }

    if (value) {
        *value = v;
    }

    if (v.len == 0
        || (v.len == 1 && v.data[0] == '0')
        || (v.len == 2 && ngx_strncasecmp(v.data, (u_char *) "no", 2) == 0)
        || (v.len == 5 && ngx_strncasecmp(v.data, (u_char *) "false", 5) == 0))
    {
        return 0;
    }

    return 1;
}


static ngx_int_t
ngx_http_cef_try_key(ngx_http_request_t *r, ngx_http_cef_identity_t *id,
    ngx_str_t *type, ngx_str_t *value)
{
    if (!id->store || ngx_http_cef_store_find(r, type, value, id) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    id->key_type = *type;

    return NGX_OK;
}


static void
ngx_http_cef_link(ngx_http_request_t *r, ngx_http_cef_loc_conf_t *clcf,
    ngx_http_cef_identity_t *id, ngx_str_t *token, ngx_uint_t from_url,
    ngx_http_cef_step_t *st)
{
    ngx_int_t        found;
    u_char          *buf;
    size_t           len;
    cef_link_t       link;
    cef_signer_t    *signer;
    cef_sign_rc_t    rc;

    signer = clcf->signing->signer;

    buf = ngx_pnalloc(r->pool, 2 * CEF_LINK_TOKEN_MAX);
    if (buf == NULL) {
        return;
    }

    rc = cef_link_token_parse(signer,
                              (cef_span_t) { (char *) token->data,
                                             token->len },
                              ngx_time(), buf, &link);
    if (rc != CEF_SIGN_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "cef: client sent %s link %s",
                      rc == CEF_SIGN_EXPIRED ? "an expired" : "an invalid",
                      from_url ? "token" : "cookie");

        if (st) {
            st->signature = (rc == CEF_SIGN_EXPIRED) ? "expired" : "bad";
        }

        return;
    }

    if (from_url) {
        /* remember the visitor: a fresh token with the cookie's lifetime */
        if (cef_link_token_make(signer, link.type, link.key,
                                ngx_time() + clcf->link_cookie->max_age,
                                (char *) buf + CEF_LINK_TOKEN_MAX, &len)
            == CEF_SIGN_OK)
        {
            id->link_cookie.data = buf + CEF_LINK_TOKEN_MAX;
            id->link_cookie.len = len;
        }
    }

    found = NGX_DECLINED;

    if (id->store && ngx_http_cef_store_find_key(r, link.key, id) == NGX_OK) {
        id->key_type.data = (u_char *) link.type.data;
        id->key_type.len = link.type.len;
        found = NGX_OK;
    }

    if (st) {
        /* the type only: the key may stand for an address */
        st->link_type.data = (u_char *) link.type.data;
        st->link_type.len = link.type.len;
        st->key_type = &st->link_type;
        st->signature = "ok";
        st->result = ngx_http_cef_lookup_result(id, found);
        st->lookup = 1;
    }
}


static void
ngx_http_cef_visitor(ngx_http_request_t *r, ngx_http_cef_loc_conf_t *clcf,
    ngx_http_cef_identity_t *id, ngx_http_cef_tracer_t *tr)
{
    ngx_int_t               rc;
    ngx_str_t               v;
    ngx_http_cef_step_t     st;
    ngx_http_cef_cookie_t  *cookie;

    cookie = clcf->visitor_cookie;

    if (cookie == NULL || cookie->name.len == 0) {
        return;
    }

    if (tr) {
        ngx_memzero(&st, sizeof(ngx_http_cef_step_t));
        st.source = "visitor_cookie";
        st.cookie = &cookie->name;
        st.result = "absent";
    }

    if (ngx_http_cef_get_cookie(r, &cookie->name, &v) == NGX_OK) {
        if (cef_visitor_id_valid((char *) v.data, v.len)) {
            id->visitor = v;

            if (id->profile_id.len == 0) {
                rc = ngx_http_cef_try_key(r, id, &ngx_http_cef_visitor_type,
                                          &v);
                if (tr) {
                    st.key_type = &ngx_http_cef_visitor_type;
                    st.value = &v;
                    st.result = ngx_http_cef_lookup_result(id, rc);
                    st.lookup = 1;
                }

            } else if (tr) {
                st.visitor = &v;
                st.result = NULL;
            }

            if (tr) {
                tr->step(tr->data, &st, id);
            }

            return;
        }

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "cef: client sent an invalid visitor cookie");

        if (tr) {
            st.result = "invalid";
        }
    }

    id->visitor.data = ngx_pnalloc(r->main->pool, CEF_VISITOR_ID_LEN);
    if (id->visitor.data == NULL
        || cef_visitor_id_new((char *) id->visitor.data) != 0)
    {
        ngx_str_null(&id->visitor);
        return;
    }

    id->visitor.len = CEF_VISITOR_ID_LEN;
    id->visitor_new = 1;

    if (tr) {
        st.issued = 1;
        tr->step(tr->data, &st, id);
    }
}


/*
 * On 1.22 cef_cookie_find() parses each Cookie line as nginx's own
 * ngx_http_parse_multi_header_lines() does ($cookie_NAME), with memchr
 * instead of a byte loop: a personalising request reads two or three
 * cookies.
 */


/* Called from the header filter of the main request. */

ngx_int_t
ngx_http_cef_set_cookies(ngx_http_request_t *r)
{
    ngx_http_cef_ctx_t       *ctx;
    ngx_http_cef_identity_t  *id;
    ngx_http_cef_loc_conf_t  *clcf;

    ctx = ngx_http_get_module_ctx(r, NGX_HTTP_CEF);
    if (ctx == NULL || ctx->identity == NULL) {
        return NGX_OK;
    }

    id = ctx->identity;

    if (id->cookies_set || !id->consent) {
        return NGX_OK;
    }

    id->cookies_set = 1;
    clcf = ngx_http_get_module_loc_conf(r, NGX_HTTP_CEF);

    if (id->visitor_new && clcf->visitor_cookie
        && clcf->visitor_cookie->name.len)
    {
        if (ngx_http_cef_set_cookie(r, &clcf->visitor_cookie->name,
                                    &id->visitor,
                                    &clcf->visitor_cookie->attrs)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (id->link_cookie.len && clcf->link_cookie) {
        if (ngx_http_cef_set_cookie(r, &clcf->link_cookie->name,
                                    &id->link_cookie,
                                    &clcf->link_cookie->attrs)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


