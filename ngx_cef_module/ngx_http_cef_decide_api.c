/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_decide: the decision for the current visitor as JSON, for apps and
 * single-page shops.  Same identity, consent, rules and plugins as the
 * HTML path; built with jansson.
 */


#include "ngx_http_cef_module.h"

#include <jansson.h>


static ngx_int_t ngx_http_cef_decide_handler(ngx_http_request_t *r);
static json_t *ngx_http_cef_decide_json(ngx_http_request_t *r);
static ngx_int_t ngx_http_cef_wanted(ngx_str_t *slots, const char *slot);
static json_t *ngx_http_cef_json_str(ngx_str_t *s);


char *
ngx_http_cef_decide_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_cef_decide_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_cef_decide_handler(ngx_http_request_t *r)
{
    char         *text;
    json_t       *json;
    ngx_int_t     rc;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    json = ngx_http_cef_decide_json(r);
    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    text = json_dumps(json, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(json);

    if (text == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_cef_send_json(r, text);
}


/*
 * {"visitor":ID|null,"profile":ID|null,"key_type":T|null,"consent":BOOL,
 *  "slots":{"hero":{"offer":NAME|null,"html":HTML|null,"variant":V,
 *                   "plugin":P,"would_have":NAME (control only)}},
 *  "decision":{"rules":HASH|null,"over_budget":BOOL,"decision_us":N}}
 */

static json_t *
ngx_http_cef_decide_json(ngx_http_request_t *r)
{
    uint32_t                  i, n;
    ngx_str_t                 slots;
    json_t                   *root, *jslots, *slot, *dec;
    const char               *name;
    const cef_rules_t        *rs;
    ngx_http_cef_ctx_t       *ctx;
    ngx_http_cef_offer_t     *offer;
    ngx_http_cef_decision_t  *d;
    ngx_http_cef_identity_t  *id;

    d = ngx_http_cef_decide(r);

    ctx = ngx_http_get_module_ctx(r->main, NGX_HTTP_CEF);
    id = ctx ? ctx->identity : NULL;

    if (ngx_http_arg(r, (u_char *) "slots", 5, &slots) != NGX_OK) {
        ngx_str_null(&slots);
    }

    root = json_object();
    jslots = json_object();
    dec = json_object();

    if (root == NULL || jslots == NULL || dec == NULL) {
        goto failed;
    }

    if (json_object_set_new(root, "visitor",
                            ngx_http_cef_json_str(id ? &id->visitor : NULL))
        || json_object_set_new(root, "profile",
                               ngx_http_cef_json_str(id ? &id->profile_id
                                                        : NULL))
        || json_object_set_new(root, "key_type",
                               ngx_http_cef_json_str(id ? &id->key_type
                                                        : NULL))
        || json_object_set_new(root, "consent",
                               json_boolean(id && id->consent)))
    {
        goto failed;
    }

    rs = d->rules ? ngx_http_cef_rules_set(d->rules) : NULL;
    n = rs ? cef_rules_nslots(rs) : 0;

    for (i = 0; i < n; i++) {
        name = cef_rules_slot_name(rs, i);

        if (!ngx_http_cef_wanted(&slots, name)) {
            continue;
        }

        offer = ngx_http_cef_decision_offer(d, (u_char *) name,
                                            ngx_strlen(name));

        slot = json_pack("{s:o,s:o,s:s}",
                         "offer", ngx_http_cef_json_str(offer ? &offer->name
                                                              : NULL),
                         "html", ngx_http_cef_json_str(offer ? &offer->html
                                                             : NULL),
                         "variant", d->over_budget
                                    ? "-" : ngx_http_cef_variant(d, i));

        if (slot && d->slots && !d->over_budget
            && ((d->slots[i].plugin
                 && json_object_set_new(slot, "plugin",
                                        json_string(d->slots[i].plugin)))
                || (d->slots[i].would_have != CEF_RULES_NONE
                    && json_object_set_new(slot, "would_have",
                           json_string(cef_rules_offer(rs,
                                       d->slots[i].would_have)->name)))))
        {
            json_decref(slot);
            slot = NULL;
        }

        if (slot == NULL || json_object_set_new(jslots, name, slot)) {
            goto failed;
        }
    }

    if (json_object_set_new(root, "slots", jslots)) {
        jslots = NULL;
        goto failed;
    }

    jslots = NULL;

    if (json_object_set_new(dec, "rules",
                            rs ? json_string(cef_rules_hash(rs))
                               : json_null())
        || json_object_set_new(dec, "over_budget",
                               json_boolean(d->over_budget))
        || json_object_set_new(dec, "decision_us",
                               json_real(ctx ? ctx->decision_ns / 1000.0
                                             : 0))
        || json_object_set_new(root, "decision", dec))
    {
        dec = NULL;
        goto failed;
    }

    return root;

failed:

    json_decref(jslots);
    json_decref(dec);
    json_decref(root);

    return NULL;
}


/* ?slots=hero,footer: is slot in the list (or is there no list)? */

static ngx_int_t
ngx_http_cef_wanted(ngx_str_t *slots, const char *slot)
{
    u_char  *p, *end, *comma;
    size_t   len;

    if (slots->len == 0) {
        return 1;
    }

    len = ngx_strlen(slot);
    p = slots->data;
    end = slots->data + slots->len;

    while (p < end) {
        comma = ngx_strlchr(p, end, ',');
        if (comma == NULL) {
            comma = end;
        }

        if ((size_t) (comma - p) == len && ngx_strncmp(p, slot, len) == 0) {
            return 1;
        }

        p = comma + 1;
    }

    return 0;
}


static json_t *
ngx_http_cef_json_str(ngx_str_t *s)
{
    json_t  *j;

    if (s == NULL || s->data == NULL || s->len == 0) {
        return json_null();
    }

    /*
     * jansson refuses invalid UTF-8.  Offer HTML holds none: the template
     * escaping wrote U+FFFD for it, on the page as here.  A profile id
     * from the store may, and is then null.
     */
    j = json_stringn((const char *) s->data, s->len);

    return j ? j : json_null();
}
