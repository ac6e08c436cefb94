/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Counters in a shared memory zone (cef_metrics_zone), so that every
 * worker adds to the same numbers and they survive a reload (nginx hands a
 * zone of the same name and size to the new cycle), and their lines of
 * the Prometheus text that cef_metrics (ngx_http_cef_metrics.c) serves.
 */


#include "ngx_http_cef_module.h"


#define NGX_HTTP_CEF_METRICS_NAMES   1024     /* offer/variant label pairs */
#define NGX_HTTP_CEF_METRICS_LABEL   64
#define NGX_HTTP_CEF_METRICS_GOALS   256      /* goal names */


typedef struct {
    ngx_atomic_t        count;
    uint32_t            hash;
    u_char              offer[NGX_HTTP_CEF_METRICS_LABEL];
    u_char              variant[NGX_HTTP_CEF_METRICS_LABEL];
} ngx_http_cef_impressions_t;


typedef struct {
    ngx_atomic_t        count[NGX_HTTP_CEF_GOAL_MAX];
    uint32_t            hash;
    u_char              name[CEF_RULES_GOAL_NAME_MAX + 1];
} ngx_http_cef_goals_t;


/* the labels of a goal's counters, by ngx_http_cef_goal_e */
static const char  *ngx_http_cef_goal_labels[NGX_HTTP_CEF_GOAL_MAX] = {
    NULL,
    "once", "consent", "visitor", "status", "method",
    "absent", "invalid"
};


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
    ngx_atomic_t                 goals_overflow;
    ngx_http_cef_goals_t         goals[NGX_HTTP_CEF_METRICS_GOALS];
} ngx_http_cef_metrics_shm_t;


static ngx_int_t ngx_http_cef_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static u_char *ngx_http_cef_counters_goals(u_char *p, u_char *last,
    ngx_http_cef_metrics_shm_t *m);


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

    zone = ngx_shared_memory_add(cf, &value[1], size, ngx_http_cef_self);
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


/*
 * One more goal outcome (what) of goal: a table of goal names like the
 * impressions' (names are declared in rule files: valid, at most 64
 * bytes).
 */

void
ngx_http_cef_metric_goal(ngx_str_t *goal, ngx_http_cef_goal_e what)
{
    uint32_t               hash;
    ngx_uint_t             i, n;
    ngx_http_cef_goals_t  *e;

    if (ngx_http_cef_metrics == NULL
        || goal->len > CEF_RULES_GOAL_NAME_MAX)
    {
        return;
    }

    hash = ngx_crc32_short(goal->data, goal->len) | 1;

    for (n = 0; n < NGX_HTTP_CEF_METRICS_GOALS; n++) {
        i = (hash + n) % NGX_HTTP_CEF_METRICS_GOALS;
        e = &ngx_http_cef_metrics->goals[i];

        if (e->hash == 0) {
            ngx_shmtx_lock(&ngx_http_cef_metrics_pool->mutex);

            if (e->hash == 0) {
                ngx_memcpy(e->name, goal->data, goal->len);
                ngx_memory_barrier();
                e->hash = hash;
            }

            ngx_shmtx_unlock(&ngx_http_cef_metrics_pool->mutex);
        }

        if (e->hash == hash && ngx_strlen(e->name) == goal->len
            && ngx_strncmp(e->name, goal->data, goal->len) == 0)
        {
            (void) ngx_atomic_fetch_add(&e->count[what], 1);
            return;
        }
    }

    (void) ngx_atomic_fetch_add(&ngx_http_cef_metrics->goals_overflow, 1);
}


/*
 * The size of a buffer that holds what ngx_http_cef_counters_print()
 * writes, and room for the rest of cef_metrics' page; 0 without a zone.
 */

size_t
ngx_http_cef_counters_size(void)
{
    if (ngx_http_cef_metrics == NULL) {
        return 0;
    }

    return 8192 + NGX_HTTP_CEF_METRICS_NAMES
                  * (2 * NGX_HTTP_CEF_METRICS_LABEL + 80)
                + NGX_HTTP_CEF_METRICS_GOALS * NGX_HTTP_CEF_GOAL_MAX
                  * (CEF_RULES_GOAL_NAME_MAX + 80);
}


/* The counters in Prometheus text, from p up to last; returns the end. */

u_char *
ngx_http_cef_counters_print(u_char *p, u_char *last)
{
    uint64_t                     cumulative;
    ngx_uint_t                   i;
    const char                  *prev;
    ngx_http_cef_impressions_t  *e;
    ngx_http_cef_metrics_shm_t  *m;

    m = ngx_http_cef_metrics;
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
            p = ngx_http_cef_counters_label(p, last, (char *) e->offer);
            p = ngx_slprintf(p, last, "\",variant=\"");
            p = ngx_http_cef_counters_label(p, last, (char *) e->variant);
            p = ngx_slprintf(p, last, "\"} %uA\n", e->count);
        }
    }

    p = ngx_slprintf(p, last, "# TYPE cef_impression_labels_dropped_total "
                     "counter\ncef_impression_labels_dropped_total %uA\n",
                     m->overflow);

    p = ngx_http_cef_counters_goals(p, last, m);

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

    return p;
}


/*
 * cef_goals_total{goal} (records made), cef_goals_suppressed_total{goal,
 * reason} and cef_goal_values_rejected_total{goal,reason}.
 */

static u_char *
ngx_http_cef_counters_goals(u_char *p, u_char *last,
    ngx_http_cef_metrics_shm_t *m)
{
    ngx_uint_t             i, j, k, from, to;
    ngx_http_cef_goals_t  *e;

    static const char     *names[] = {
        "cef_goals_total", "cef_goals_suppressed_total",
        "cef_goal_values_rejected_total"
    };

    for (k = 0; k < 3; k++) {
        p = ngx_slprintf(p, last, "# TYPE %s counter\n", names[k]);

        for (i = 0; i < NGX_HTTP_CEF_METRICS_GOALS; i++) {
            e = &m->goals[i];

            if (e->hash == 0) {
                continue;
            }

            /* goal names are [a-z0-9_-]: no label escaping needed */

            if (k == 0) {
                p = ngx_slprintf(p, last, "cef_goals_total{goal=\"%s\"} "
                                 "%uA\n", e->name,
                                 e->count[NGX_HTTP_CEF_GOAL_RECORDED]);
                continue;
            }

            from = (k == 1) ? NGX_HTTP_CEF_GOAL_ONCE
                            : NGX_HTTP_CEF_GOAL_VALUE_ABSENT;
            to = (k == 1) ? NGX_HTTP_CEF_GOAL_METHOD
                          : NGX_HTTP_CEF_GOAL_VALUE_INVALID;

            for (j = from; j <= to; j++) {
                p = ngx_slprintf(p, last, "%s{goal=\"%s\",reason=\"%s\"} "
                                 "%uA\n", names[k], e->name,
                                 ngx_http_cef_goal_labels[j], e->count[j]);
            }
        }
    }

    return ngx_slprintf(p, last, "# TYPE cef_goal_labels_dropped_total "
                        "counter\ncef_goal_labels_dropped_total %uA\n",
                        m->goals_overflow);
}


/* a Prometheus label value: backslash, quote and newline escaped */

u_char *
ngx_http_cef_counters_label(u_char *p, u_char *last, const char *s)
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
