/*
 * Copyright (C) ngx_cef_module developers
 *
 * $cef_visitor, $cef_visitor_new, $cef_profile, $cef_key_type,
 * $cef_consent and $cef_attr_NAME.  Reading any of them resolves the
 * visitor (once per main request).
 */


#include "ngx_http_cef_module.h"


typedef enum {
    NGX_HTTP_CEF_VAR_VISITOR = 0,
    NGX_HTTP_CEF_VAR_VISITOR_NEW,
    NGX_HTTP_CEF_VAR_PROFILE,
    NGX_HTTP_CEF_VAR_KEY_TYPE,
    NGX_HTTP_CEF_VAR_CONSENT
} ngx_http_cef_var_e;


static ngx_int_t ngx_http_cef_identity_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_cef_attr_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_http_variable_t  ngx_http_cef_vars[] = {

    { ngx_string("cef_visitor"), NULL, ngx_http_cef_identity_variable,
      NGX_HTTP_CEF_VAR_VISITOR, 0, 0 },

    { ngx_string("cef_visitor_new"), NULL, ngx_http_cef_identity_variable,
      NGX_HTTP_CEF_VAR_VISITOR_NEW, 0, 0 },

    { ngx_string("cef_profile"), NULL, ngx_http_cef_identity_variable,
      NGX_HTTP_CEF_VAR_PROFILE, 0, 0 },

    { ngx_string("cef_key_type"), NULL, ngx_http_cef_identity_variable,
      NGX_HTTP_CEF_VAR_KEY_TYPE, 0, 0 },

    { ngx_string("cef_consent"), NULL, ngx_http_cef_identity_variable,
      NGX_HTTP_CEF_VAR_CONSENT, 0, 0 },

    { ngx_string("cef_attr_"), NULL, ngx_http_cef_attr_variable,
      0, NGX_HTTP_VAR_PREFIX, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_cef_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_cef_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static void
ngx_http_cef_set_value(ngx_http_variable_value_t *v, u_char *data,
    size_t len)
{
    v->len = len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = data;
}


static ngx_int_t
ngx_http_cef_identity_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                *s;
    ngx_http_cef_identity_t  *id;

    id = ngx_http_cef_identify(r);
    if (id == NULL) {
        return NGX_ERROR;
    }

    switch (data) {

    case NGX_HTTP_CEF_VAR_VISITOR_NEW:
        ngx_http_cef_set_value(v, (u_char *) (id->visitor_new ? "1" : "0"), 1);
        return NGX_OK;

    case NGX_HTTP_CEF_VAR_CONSENT:
        ngx_http_cef_set_value(v, (u_char *) (id->consent ? "1" : "0"), 1);
        return NGX_OK;

    case NGX_HTTP_CEF_VAR_VISITOR:
        s = &id->visitor;
        break;

    case NGX_HTTP_CEF_VAR_PROFILE:
        s = &id->profile_id;
        break;

    default: /* NGX_HTTP_CEF_VAR_KEY_TYPE */
        s = &id->key_type;
        break;
    }

    ngx_http_cef_set_value(v, s->data, s->len);

    return NGX_OK;
}


static ngx_int_t
ngx_http_cef_attr_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t *var = (ngx_str_t *) data;

    ngx_str_t                 name, value;
    ngx_http_cef_identity_t  *id;

    id = ngx_http_cef_identify(r);
    if (id == NULL) {
        return NGX_ERROR;
    }

    /* nginx passes prefix variables their full (lower-cased) name */
    name.data = var->data + sizeof("cef_attr_") - 1;
    name.len = var->len - (sizeof("cef_attr_") - 1);

    if (ngx_http_cef_store_attr(r, id, &name, &value) != NGX_OK) {
        ngx_str_null(&value);
    }

    ngx_http_cef_set_value(v, value.data, value.len);

    return NGX_OK;
}
