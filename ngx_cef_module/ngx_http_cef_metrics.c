/*
 * Copyright (C) ngx_cef_module developers
 *
 * Metrics: counters in a shared memory zone (cef_metrics_zone), so that
 * every worker adds to the same numbers and they survive a reload (nginx
 * hands a zone of the same name and size to the new cycle), and their
 * Prometheus text exposition (cef_metrics).
 */


#include "ngx_http_cef_module.h"

#include "cef_store.h"


#define NGX_HTTP_CEF_METRICS_NAMES   1024     /* offer/variant label pairs */
#define NGX_HTTP_CEF_METRICS_LABEL   64


typedef struct {
    ngx_atomic_t        count;
    uint32_t            hash;
    u_char              offer[NGX_HTTP_CEF_METRICS_LABEL];
    u_char              variant[NGX_HTTP_CEF_METRICS_LABEL];
} ngx_http_cef_impressions_t;


/* decision time buckets, microseconds (le) */
static const ngx_uint_t  ngx_http_cef_decision_buckets[] = {
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000
};

#define NGX_HTTP_CEF_BUCKETS                                                 \
    (sizeof(ngx_http_cef_decision_buckets) / sizeof(ngx_uint_t))


typedef struct {
    ngx_atomic_t                 counter[NGX_HTTP_CEF_M_MAX];
    ngx_atomic_t                 decision_le[NGX_HTTP_CEF_BUCKETS + 1];
    ngx_atomic_t                 decision_ns;      /* sum */
    ngx_atomic_t                 decisions;
    ngx_atomic_t                 overflow;         /* label table full */
    ngx_http_cef_impressions_t   impressions[NGX_HTTP_CEF_METRICS_NAMES];
} ngx_http_cef_metrics_shm_t;


static ngx_int_t ngx_http_cef_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_cef_metrics_handler(ngx_http_request_t *r);
static u_char *ngx_http_cef_metrics_store(ngx_http_request_t *r, u_char *p,
    u_char *last);
static u_char *ngx_http_cef_metrics_store_info(u_char *p, u_char *last,
    cef_store_info_t *info);
static u_char *ngx_http_cef_metrics_rules(ngx_http_request_t *r, u_char *p,
    u_char *last);
static u_char *ngx_http_cef_label(u_char *p, u_char *last, const char *s);


static ngx_http_cef_metrics_shm_t  *ngx_http_cef_metrics;
static ngx_slab_pool_t             *ngx_http_cef_metrics_pool;


/* names and help of the plain counters, by ngx_http_cef_metric_e */
static struct {
    const char  *name;
    const char  *labels;
} ngx_http_cef_metric_names[NGX_HTTP_CEF_M_MAX] = {
    { "cef_responses_total", "result=\"personalised\"" },
    { "cef_responses_total", "result=\"default\"" },
    { "cef_responses_total", "result=\"control\"" },
    { "cef_skipped_total", "reason=\"head\"" },
    { "cef_skipped_total", "reason=\"status\"" },
    { "cef_skipped_total", "reason=\"encoding\"" },
    { "cef_skipped_total", "reason=\"type\"" },
    { "cef_fail_open_total", "reason=\"store\"" },
    { "cef_fail_open_total", "reason=\"budget\"" },
    { "cef_fail_open_total", "reason=\"error\"" },
    { "cef_store_lookups_total", "result=\"hit\"" },
    { "cef_store_lookups_total", "result=\"miss\"" },
    { "cef_slots_total", "result=\"filled\"" },
    { "cef_slots_total", "result=\"default\"" },
    { "cef_slots_total", "result=\"unchanged\"" },
    { "cef_store_faults_total", "log=\"written\"" },
    { "cef_store_faults_total", "log=\"suppressed\"" },
};


char *
ngx_http_cef_metrics_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_cef_main_conf_t *cmcf = conf;

    ssize_t          size;
    ngx_str_t       *value;
    ngx_shm_zone_t  *zone;

    if (cmcf->metrics_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    size = ngx_parse_size(&value[2]);

    if (size == NGX_ERROR
        || (size_t) size < sizeof(ngx_http_cef_metrics_shm_t) + 8 * ngx_pagesize)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\": at least %uzk",
                           &value[2],
                           (sizeof(ngx_http_cef_metrics_shm_t)
                            + 8 * ngx_pagesize) / 1024 + 1);
        return NGX_CONF_ERROR;
    }

    zone = ngx_shared_memory_add(cf, &value[1], size, &ngx_http_cef_module);
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already used", &value[1]);
        return NGX_CONF_ERROR;
    }

    zone->init = ngx_http_cef_metrics_init_zone;
    zone->data = cmcf;
    zone->noreuse = 0;

    cmcf->metrics_zone = zone;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_cef_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t  *shpool;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    /* a reload hands over the old cycle's zone: the counters go on */

    if (data || shm_zone->shm.exists) {
        ngx_http_cef_metrics = shpool->data;
        ngx_http_cef_metrics_pool = shpool;
        return NGX_OK;
    }

    ngx_http_cef_metrics = ngx_slab_calloc(shpool,
                                           sizeof(ngx_http_cef_metrics_shm_t));
    if (ngx_http_cef_metrics == NULL) {
        return NGX_ERROR;
    }

    shpool->data = ngx_http_cef_metrics;
    ngx_http_cef_metrics_pool = shpool;

    return NGX_OK;
}


void
ngx_http_cef_metric(ngx_uint_t which)
{
    if (ngx_http_cef_metrics) {
        (void) ngx_atomic_fetch_add(&ngx_http_cef_metrics->counter[which], 1);
    }
}


void
ngx_http_cef_metric_decision(uint64_t ns)
{
    ngx_uint_t  i;

    if (ngx_http_cef_metrics == NULL) {
        return;
    }

    for (i = 0; i < NGX_HTTP_CEF_BUCKETS; i++) {
        if (ns <= ngx_http_cef_decision_buckets[i] * 1000) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&ngx_http_cef_metrics->decision_le[i], 1);
    (void) ngx_atomic_fetch_add(&ngx_http_cef_metrics->decision_ns, ns);
    (void) ngx_atomic_fetch_add(&ngx_http_cef_metrics->decisions, 1);
}


/*
 * One more impression of offer in variant.  The (offer, variant) table is
 * open addressing in shared memory; new pairs are inserted under the
 * zone's mutex, counts are atomic.
 */

void
ngx_http_cef_metric_impression(ngx_str_t *offer, ngx_str_t *variant)
{
    uint32_t                     hash;
    ngx_uint_t                   i, n;
    ngx_http_cef_impressions_t  *e;

    if (ngx_http_cef_metrics == NULL
        || offer->len >= NGX_HTTP_CEF_METRICS_LABEL
        || variant->len >= NGX_HTTP_CEF_METRICS_LABEL)
    {
        return;
    }

    hash = ngx_crc32_short(offer->data, offer->len)
           ^ ngx_crc32_short(variant->data, variant->len);
    hash |= 1;

    for (n = 0; n < NGX_HTTP_CEF_METRICS_NAMES; n++) {
        i = (hash + n) % NGX_HTTP_CEF_METRICS_NAMES;
        e = &ngx_http_cef_metrics->impressions[i];

        if (e->hash == 0) {
            ngx_shmtx_lock(&ngx_http_cef_metrics_pool->mutex);

            if (e->hash == 0) {
                ngx_memcpy(e->offer, offer->data, offer->len);
                ngx_memcpy(e->variant, variant->data, variant->len);
                ngx_memory_barrier();
                e->hash = hash;
            }

            ngx_shmtx_unlock(&ngx_http_cef_metrics_pool->mutex);
        }

        if (e->hash == hash
            && ngx_strlen(e->offer) == offer->len
            && ngx_strncmp(e->offer, offer->data, offer->len) == 0
            && ngx_strlen(e->variant) == variant->len
            && ngx_strncmp(e->variant, variant->data, variant->len) == 0)
        {
            (void) ngx_atomic_fetch_add(&e->count, 1);
            return;
        }
    }

    (void) ngx_atomic_fetch_add(&ngx_http_cef_metrics->overflow, 1);
}


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
    u_char                      *p, *last;
    size_t                       size;
    uint64_t                     cumulative;
    ngx_int_t                    rc;
    ngx_buf_t                   *b;
    ngx_uint_t                   i;
    const char                  *prev;
    ngx_http_cef_impressions_t  *e;
    ngx_http_cef_metrics_shm_t  *m;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    m = ngx_http_cef_metrics;

    if (m == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "cef_metrics needs a \"cef_metrics_zone\"");
        return NGX_HTTP_NOT_FOUND;
    }

    size = 8192 + NGX_HTTP_CEF_METRICS_NAMES
                  * (2 * NGX_HTTP_CEF_METRICS_LABEL + 80);

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = b->pos;
    last = b->end;
    prev = "";

    for (i = 0; i < NGX_HTTP_CEF_M_MAX; i++) {
        if (ngx_strcmp(prev, ngx_http_cef_metric_names[i].name) != 0) {
            prev = ngx_http_cef_metric_names[i].name;
            p = ngx_slprintf(p, last, "# TYPE %s counter\n", prev);
        }

        p = ngx_slprintf(p, last, "%s{%s} %uA\n",
                         ngx_http_cef_metric_names[i].name,
                         ngx_http_cef_metric_names[i].labels,
                         m->counter[i]);
    }

    p = ngx_slprintf(p, last, "# TYPE cef_impressions_total counter\n");

    for (i = 0; i < NGX_HTTP_CEF_METRICS_NAMES; i++) {
        e = &m->impressions[i];

        if (e->hash) {
            p = ngx_slprintf(p, last,
                             "cef_impressions_total{offer=\"");
            p = ngx_http_cef_label(p, last, (char *) e->offer);
            p = ngx_slprintf(p, last, "\",variant=\"");
            p = ngx_http_cef_label(p, last, (char *) e->variant);
            p = ngx_slprintf(p, last, "\"} %uA\n", e->count);
        }
    }

    p = ngx_slprintf(p, last, "# TYPE cef_impression_labels_dropped_total "
                     "counter\ncef_impression_labels_dropped_total %uA\n",
                     m->overflow);

    p = ngx_slprintf(p, last, "# TYPE cef_decision_seconds histogram\n");
    cumulative = 0;

    for (i = 0; i < NGX_HTTP_CEF_BUCKETS; i++) {
        cumulative += m->decision_le[i];
        p = ngx_slprintf(p, last,
                         "cef_decision_seconds_bucket{le=\"%.6f\"} %uL\n",
                         (double) ngx_http_cef_decision_buckets[i] / 1e6,
                         cumulative);
    }

    cumulative += m->decision_le[NGX_HTTP_CEF_BUCKETS];

    p = ngx_slprintf(p, last,
                     "cef_decision_seconds_bucket{le=\"+Inf\"} %uL\n"
                     "cef_decision_seconds_sum %.9f\n"
                     "cef_decision_seconds_count %uA\n",
                     cumulative, (double) m->decision_ns / 1e9, m->decisions);

    p = ngx_http_cef_metrics_store(r, p, last);
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

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_cef_module);

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
    p = ngx_http_cef_label(p, last, info->snapshot_id);

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

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cef_module);
    cmcf = ngx_http_get_module_main_conf(r, ngx_http_cef_module);

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


/* a Prometheus label value: backslash, quote and newline escaped */

static u_char *
ngx_http_cef_label(u_char *p, u_char *last, const char *s)
{
    for ( /* void */ ; *s && p + 2 < last; s++) {
        switch (*s) {
        case '\\':
        case '"':
            *p++ = '\\';
            *p++ = (u_char) *s;
            break;
        case '\n':
            *p++ = '\\';
            *p++ = 'n';
            break;
        default:
            *p++ = (u_char) *s;
        }
    }

    return p;
}


/* seconds since the store's last load or applied delta batch */

time_t
ngx_http_cef_store_age(cef_store_info_t *info)
{
    time_t  age;

    age = ngx_time() - (time_t) info->updated_at;

    return age > 0 ? age : 0;
}
