/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_goal: the goal record and its judgements (cef_goal.h).
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cef_goal.h"
#include "cef_bucket.h"
#include "cef_decision_int.h"


/* --- the value ------------------------------------------------------------ */

cef_goal_value_rc_t
cef_goal_value(const cef_rules_goal_t *g, const char *s, size_t len,
    double *out)
{
    char     buf[CEF_GOAL_VALUE_MAX + 1];
    size_t   i, digits = 0, dots = 0;
    double   v;

    while (len && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }

    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t')) {
        len--;
    }

    if (len == 0) {
        return CEF_GOAL_VALUE_ABSENT;
    }

    if (len > CEF_GOAL_VALUE_MAX || !g->has_value) {
        return CEF_GOAL_VALUE_INVALID;
    }

    /* strtod() alone would take "1e308", "0x10", "inf" and "nan" */

    for (i = 0; i < len; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            digits++;
        } else if (s[i] == '.') {
            dots++;
        } else if (!(i == 0 && (s[i] == '-' || s[i] == '+'))) {
            return CEF_GOAL_VALUE_INVALID;
        }
    }

    if (digits == 0 || dots > 1) {
        return CEF_GOAL_VALUE_INVALID;
    }

    memcpy(buf, s, len);
    buf[len] = '\0';
    v = strtod(buf, NULL);

    if (v != v || v - v != 0 || v < g->min || v > g->max) {
        return CEF_GOAL_VALUE_INVALID;
    }

    *out = v == 0 ? 0 : v;                  /* no "-0" in the record */

    return CEF_GOAL_VALUE_OK;
}


/* --- arms ----------------------------------------------------------------- */

/* the services an arm hook may not use: null, empty, refused */

static int
cef_goal_eval(const cef_plugin_req_t *req, uint32_t id, cef_value_t *out)
{
    (void) req;
    (void) id;

    out->type = CEF_VAL_NIL;
    return 0;
}


static int
cef_goal_state_get(const cef_plugin_req_t *req, cef_span_t *out)
{
    const cef_goal_env_t  *env = req->host;
    const cef_plugin_t    *p = req->plugin;

    if (env == NULL || env->state == NULL || p == NULL) {
        return 0;
    }

    return env->state(env->data, p->name, out) == 1;
}


static int
cef_goal_weights(const cef_plugin_req_t *req, const char *experiment,
    const char *salt, cef_plugin_weights_t *out)
{
    const cef_goal_env_t  *env = req->host;

    if (env == NULL || env->weights == NULL) {
        return 0;
    }

    return env->weights(env->data, experiment, salt, out) == 1;
}


static int
cef_goal_state_set(const cef_plugin_req_t *req, const char *p, size_t len,
    int64_t max_age)
{
    (void) req;
    (void) p;
    (void) len;
    (void) max_age;

    return CEF_PLUGIN_ERROR;
}


static int
cef_goal_map_get(const cef_value_t *map, const char *key, size_t len,
    double *out)
{
    (void) map;
    (void) key;
    (void) len;
    (void) out;

    return 0;
}


static int
cef_goal_array_has(const cef_value_t *array, const char *s, size_t len)
{
    (void) array;
    (void) s;
    (void) len;

    return 0;
}


/* a request for arm hooks: only now, visitor and bucket are real */
static void
cef_goal_req(cef_plugin_req_t *req, int64_t now, cef_span_t bucket_by,
    const cef_goal_env_t *env)
{
    memset(req, 0, sizeof(cef_plugin_req_t));
    req->now = now;
    req->visitor = bucket_by;
    req->bucket = cef_decision_bucket;
    req->eval = cef_goal_eval;
    req->state_get = cef_goal_state_get;
    req->state_set = cef_goal_state_set;
    req->map_get = cef_goal_map_get;
    req->array_has = cef_goal_array_has;
    req->weights = cef_goal_weights;
    req->host = (void *) env;
}


/* the visitor's arm in x: an index into x->arms, or CEF_PLUGIN_NONE */
static uint32_t
cef_goal_arm(const cef_rules_experiment_t *x, cef_plugin_req_t *req)
{
    uint32_t  arm;

    req->plugin = x->plugin;
    arm = x->plugin->arm(x->state, req);

    return arm < x->narms ? arm : CEF_PLUGIN_NONE;
}


size_t
cef_goal_arms(const cef_rules_t *rs, int64_t now, cef_span_t bucket_by,
    cef_goal_arm_t *out)
{
    return cef_goal_arms_env(rs, now, bucket_by, NULL, out);
}


size_t
cef_goal_arms_env(const cef_rules_t *rs, int64_t now, cef_span_t bucket_by,
    const cef_goal_env_t *env, cef_goal_arm_t *out)
{
    size_t                         n = 0;
    uint32_t                       i, nx, arm;
    cef_plugin_req_t               req;
    const cef_rules_experiment_t  *x;

    if (bucket_by.len == 0) {
        return 0;
    }

    cef_goal_req(&req, now, bucket_by, env);
    nx = cef_rules_goals_nexperiments(rs);

    for (i = 0; i < nx; i++) {
        x = cef_rules_goals_experiment(rs, i);

        if (!x->first || (arm = cef_goal_arm(x, &req)) == CEF_PLUGIN_NONE) {
            continue;
        }

        out[n].experiment = x->name;
        out[n].salt = x->salt;
        out[n].arm = x->arms[arm];
        n++;
    }

    return n;
}


/* --- once per day --------------------------------------------------------- */

static int64_t
cef_goal_day(int64_t now)
{
    return now >= 0 ? now / 86400 : (now - 86399) / 86400;
}


int64_t
cef_goal_once_max_age(int64_t now)
{
    return (cef_goal_day(now) + 1) * 86400 - now;
}


static void
cef_goal_tag(const char *goal, size_t len, char *tag)
{
    static const char  hex[] = "0123456789abcdef";
    uint32_t           h;
    int                i;

    h = (uint32_t) (cef_bucket_mix(cef_bucket_fnv(CEF_BUCKET_FNV_OFFSET,
                                                  goal, len)) >> 32);

    for (i = 7; i >= 0; i--) {
        tag[i] = hex[h & 0xf];
        h >>= 4;
    }
}


/* the tags of state if it is of today: their start and length, else 0 */
static size_t
cef_goal_today(cef_span_t state, int64_t now, const char **tags)
{
    char      day[24];
    int       n;
    size_t    len;

    n = snprintf(day, sizeof(day), "%" PRId64, cef_goal_day(now));
    len = (size_t) n;

    if (state.len < len || memcmp(state.data, day, len) != 0
        || (state.len > len && state.data[len] != '.'))
    {
        return 0;
    }

    *tags = state.data + len;

    return state.len - len;
}


int
cef_goal_once_seen(cef_span_t state, int64_t now, const char *goal,
    size_t len)
{
    const char  *tags = NULL;
    size_t       n, i;
    char         tag[8];

    n = cef_goal_today(state, now, &tags);
    cef_goal_tag(goal, len, tag);

    /* ".HHHHHHHH" each */

    for (i = 0; i + 9 <= n; i += 9) {
        if (tags[i] == '.' && memcmp(tags + i + 1, tag, 8) == 0) {
            return 1;
        }
    }

    return 0;
}


size_t
cef_goal_once_add(cef_span_t state, int64_t now, const char *goal,
    size_t len, char *buf)
{
    const char  *tags = NULL;
    size_t       n, k;
    int          d;

    n = cef_goal_today(state, now, &tags);
    n -= n % 9;                             /* whole entries only */

    d = snprintf(buf, CEF_GOAL_STATE_MAX + 1, "%" PRId64, cef_goal_day(now));
    k = (size_t) d;

    if (k + n + 9 > CEF_GOAL_STATE_MAX) {
        return 0;
    }

    if (n) {
        memcpy(buf + k, tags, n);
        k += n;
    }

    buf[k++] = '.';
    cef_goal_tag(goal, len, buf + k);
    k += 8;
    buf[k] = '\0';

    return k;
}


/* --- the record ----------------------------------------------------------- */

typedef struct {
    const cef_rules_experiment_t  *x;
    char                         **arm;      /* per arm: its member, */
    size_t                        *len;      /* "NAME":{"salt":..,"arm":..} */
    size_t                         max;      /* the longest */
} cef_goal_fmt_exp_t;


struct cef_goal_fmt_s {
    char                *head;      /* ,"goal":"NAME","value": */
    size_t               head_len;
    char                *rules;     /* ,"rules":"HASH","key_type": */
    size_t               rules_len;
    uint32_t             nexps;
    cef_goal_fmt_exp_t  *exps;      /* each experiment name once */
    size_t               max;       /* the fixed parts' length */
};


/* s written by the records' JSON writer, in memory of its own */
static char *
cef_goal_fmt_text(cef_record_out_t *o, size_t *len)
{
    char  *p;

    *len = cef_record_json_end(o);

    p = malloc(*len + 1);
    if (p == NULL) {
        return NULL;
    }

    o->len = 0;
    o->buf = p;
    o->size = *len;

    return p;
}


static char *
cef_goal_fmt_head(const char *goal, size_t *len)
{
    cef_record_out_t  o;
    char             *p = NULL;
    int               pass;

    cef_record_json_init(&o, NULL, 0);

    for (pass = 0; pass < 2; pass++) {
        cef_record_json_puts(&o, ",\"goal\":");
        cef_record_json_cstr(&o, goal);
        cef_record_json_puts(&o, ",\"value\":");

        if (pass == 0 && (p = cef_goal_fmt_text(&o, len)) == NULL) {
            return NULL;
        }
    }

    cef_record_json_end(&o);

    return p;
}


static char *
cef_goal_fmt_rules(const char *hash, size_t *len)
{
    cef_record_out_t  o;
    char             *p = NULL;
    int               pass;

    cef_record_json_init(&o, NULL, 0);

    for (pass = 0; pass < 2; pass++) {
        cef_record_json_puts(&o, ",\"rules\":");
        cef_record_json_cstr(&o, hash);
        cef_record_json_puts(&o, ",\"key_type\":");

        if (pass == 0 && (p = cef_goal_fmt_text(&o, len)) == NULL) {
            return NULL;
        }
    }

    cef_record_json_end(&o);

    return p;
}


static char *
cef_goal_fmt_arm(const cef_rules_experiment_t *x, uint32_t arm, size_t *len)
{
    cef_record_out_t  o;
    char             *p = NULL;
    int               pass;

    cef_record_json_init(&o, NULL, 0);

    for (pass = 0; pass < 2; pass++) {
        cef_record_json_cstr(&o, x->name);
        cef_record_json_puts(&o, ":{\"salt\":");
        cef_record_json_cstr(&o, x->salt);
        cef_record_json_puts(&o, ",\"arm\":");
        cef_record_json_cstr(&o, x->arms[arm]);
        cef_record_json_put(&o, "}", 1);

        if (pass == 0 && (p = cef_goal_fmt_text(&o, len)) == NULL) {
            return NULL;
        }
    }

    cef_record_json_end(&o);

    return p;
}


cef_goal_fmt_t *
cef_goal_fmt_create(const cef_rules_t *rs, const char *goal)
{
    uint32_t                       i, j, nx;
    cef_goal_fmt_t                *f;
    cef_goal_fmt_exp_t            *e;
    const cef_rules_experiment_t  *x;

    f = calloc(1, sizeof(cef_goal_fmt_t));
    if (f == NULL) {
        return NULL;
    }

    nx = cef_rules_goals_nexperiments(rs);
    f->exps = calloc(nx + 1, sizeof(cef_goal_fmt_exp_t));
    f->head = cef_goal_fmt_head(goal, &f->head_len);
    f->rules = cef_goal_fmt_rules(cef_rules_hash(rs), &f->rules_len);

    if (f->exps == NULL || f->head == NULL || f->rules == NULL) {
        cef_goal_fmt_free(f);
        return NULL;
    }

    f->max = f->head_len + f->rules_len + 128;

    for (i = 0; i < nx; i++) {
        x = cef_rules_goals_experiment(rs, i);

        if (!x->first) {
            continue;
        }

        e = &f->exps[f->nexps++];
        e->x = x;
        e->arm = calloc(x->narms, sizeof(char *));
        e->len = calloc(x->narms, sizeof(size_t));
        if (e->arm == NULL || e->len == NULL) {
            cef_goal_fmt_free(f);
            return NULL;
        }

        for (j = 0; j < x->narms; j++) {
            e->arm[j] = cef_goal_fmt_arm(x, j, &e->len[j]);
            if (e->arm[j] == NULL) {
                cef_goal_fmt_free(f);
                return NULL;
            }

            if (e->len[j] > e->max) {
                e->max = e->len[j];
            }
        }

        f->max += e->max + 1;
    }

    return f;
}


void
cef_goal_fmt_free(cef_goal_fmt_t *f)
{
    uint32_t  i, j;

    if (f == NULL) {
        return;
    }

    for (i = 0; i < f->nexps; i++) {
        for (j = 0; f->exps[i].arm && j < f->exps[i].x->narms; j++) {
            free(f->exps[i].arm[j]);
        }

        free(f->exps[i].arm);
        free(f->exps[i].len);
    }

    free(f->exps);
    free(f->head);
    free(f->rules);
    free(f);
}


size_t
cef_goal_format_max(const cef_goal_fmt_t *f, const cef_goal_event_t *ev)
{
    /* an escaped byte takes at most 6 ("\u001f", "\ufffd") */

    return f->max + 6 * (ev->key_type.len + ev->profile.len
                         + ev->visitor.len);
}


/* a whole number, without printf (it is on the request path) */
static void
cef_goal_int(cef_record_out_t *o, int64_t v)
{
    char      tmp[24], *p = tmp + sizeof(tmp);
    uint64_t  u = v < 0 ? (uint64_t) 0 - (uint64_t) v : (uint64_t) v;

    do {
        *--p = (char) ('0' + u % 10);
        u /= 10;
    } while (u);

    if (v < 0) {
        *--p = '-';
    }

    cef_record_json_put(o, p, (size_t) (tmp + sizeof(tmp) - p));
}


size_t
cef_goal_format(const cef_goal_fmt_t *f, const cef_goal_event_t *ev,
    char *buf, size_t size)
{
    uint32_t                   i, arm, n = 0;
    cef_plugin_req_t           req;
    cef_record_out_t           o;
    const cef_goal_fmt_exp_t  *e;

    cef_record_json_init(&o, buf, size);

    _Static_assert(CEF_GOAL_VERSION == 1, "the record's first member");

    cef_record_json_put(&o, "{\"v\":1,\"t\":", sizeof("{\"v\":1,\"t\":") - 1);
    cef_goal_int(&o, ev->now);
    cef_record_json_put(&o, f->head, f->head_len);

    if (ev->has_value) {
        cef_record_json_number(&o, ev->value);
    } else {
        cef_record_json_put(&o, "null", 4);
    }

    cef_record_json_put(&o, f->rules, f->rules_len);
    cef_record_json_span(&o, ev->key_type);
    cef_record_json_puts(&o, ",\"profile\":");
    cef_record_json_span(&o, ev->profile);
    cef_record_json_puts(&o, ",\"visitor\":");
    cef_record_json_span(&o, ev->visitor);
    cef_record_json_puts(&o, ",\"arms\":{");

    if (ev->bucket_by.len) {
        cef_goal_req(&req, ev->now, ev->bucket_by, ev->env);

        for (i = 0; i < f->nexps; i++) {
            e = &f->exps[i];

            arm = cef_goal_arm(e->x, &req);
            if (arm == CEF_PLUGIN_NONE) {
                continue;
            }

            if (n++) {
                cef_record_json_put(&o, ",", 1);
            }

            cef_record_json_put(&o, e->arm[arm], e->len[arm]);
        }
    }

    cef_record_json_put(&o, "}}", 2);

    return cef_record_json_end(&o);
}
