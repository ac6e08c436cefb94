/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_metrics: the Prometheus text exposition of the counters
 * (ngx_http_cef_counters.c), this worker's store and the location's rule
 * set.
 */


#include "ngx_http_cef_module.h"

#include "cef_store.h"


static ngx_int_t ngx_http_cef_metrics_handler(ngx_http_request_t *r);
static u_char *ngx_http_cef_metrics_store(ngx_http_request_t *r, u_char *p,
    u_char *last);
static u_char *ngx_http_cef_metrics_store_info(u_char *p, u_char *last,
    cef_store_info_t *info);
static u_char *ngx_http_cef_metrics_rules(ngx_http_request_t *r, u_char *p,
    u_char *last);


char *
ngx_http_cef_metrics_location(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_cef_metrics_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_cef_metrics_handler(ngx_http_request_t *r)
{
    u_char     *p, *last;
    size_t      size;
    ngx_int_t   rc;
    ngx_buf_t  *b;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    size = ngx_http_cef_counters_size();

    if (size == 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "cef_metrics needs a \"cef_metrics_zone\"");
        return NGX_HTTP_NOT_FOUND;
    }

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_http_cef_counters_print(b->pos, b->end);
    last = b->end;

    p = ngx_http_cef_metrics_store(r, p, last);
    p = ngx_http_cef_store_weights_print(r, p, last);
    p = ngx_http_cef_metrics_rules(r, p, last);

    b->last = p;

    return ngx_http_cef_send(r, b, "text/plain; version=0.0.4");
}


/* what this worker's store handle says: age, snapshot, counts */

static u_char *
ngx_http_cef_metrics_store(ngx_http_request_t *r, u_char *p, u_char *last)
{
    uint64_t                   serving, newest;
    cef_store_info_t           info;
    ngx_http_cef_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, NGX_HTTP_CEF);

    if (ngx_http_cef_store_info(r, &info) != NGX_OK) {
        p = ngx_slprintf(p, last, "# TYPE cef_store_up gauge\n"
                         "cef_store_up 0\n");

    } else {
        p = ngx_http_cef_metrics_store_info(p, last, &info);
    }

    /* after the session: it is what checks for a newer generation */

    ngx_http_cef_store_generations(cmcf, &serving, &newest);

    return ngx_slprintf(p, last, "# TYPE cef_store_generation gauge\n"
                        "cef_store_generation{state=\"serving\"} %uL\n"
                        "cef_store_generation{state=\"newest\"} %uL\n",
                        serving, newest);
}


static u_char *
ngx_http_cef_metrics_store_info(u_char *p, u_char *last,
    cef_store_info_t *info)
{
    p = ngx_slprintf(p, last,
                     "# TYPE cef_store_up gauge\ncef_store_up 1\n"
                     "# TYPE cef_store_age_seconds gauge\n"
                     "cef_store_age_seconds %T\n"
                     "# TYPE cef_store_info gauge\n"
                     "cef_store_info{snapshot=\"",
                     ngx_http_cef_store_age(info));
    p = ngx_http_cef_counters_label(p, last, info->snapshot_id);

    return ngx_slprintf(p, last,
                        "\",generation=\"%uL\",last_seq=\"%uL\"} 1\n"
                        "# TYPE cef_store_loaded_timestamp_seconds gauge\n"
                        "cef_store_loaded_timestamp_seconds %L\n"
                        "# TYPE cef_store_profiles gauge\n"
                        "cef_store_profiles %uL\n"
                        "# TYPE cef_store_keys gauge\n"
                        "cef_store_keys %uL\n",
                        info->generation, info->last_seq, info->loaded_at,
                        info->profiles, info->keys);
}


/* the rule set of the metrics location, and when it was loaded */

static u_char *
ngx_http_cef_metrics_rules(ngx_http_request_t *r, u_char *p, u_char *last)
{
    ngx_http_cef_loc_conf_t   *clcf;
    ngx_http_cef_main_conf_t  *cmcf;

    clcf = ngx_http_get_module_loc_conf(r, NGX_HTTP_CEF);
    cmcf = ngx_http_get_module_main_conf(r, NGX_HTTP_CEF);

    p = ngx_slprintf(p, last, "# TYPE cef_config_loaded_timestamp_seconds "
                     "gauge\ncef_config_loaded_timestamp_seconds %T\n",
                     cmcf->loaded_at);

    if (clcf->rules == NULL) {
        return p;
    }

    return ngx_slprintf(p, last, "# TYPE cef_rules_info gauge\n"
                        "cef_rules_info{hash=\"%s\"} 1\n",
                        cef_rules_hash(ngx_http_cef_rules_set(clcf->rules)));
}
