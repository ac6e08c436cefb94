/*
 * Copyright (C) ngx_cef_module developers
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
    (void) req;
    (void) out;

    return 0;
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


size_t
cef_goal_arms(const cef_rules_t *rs, int64_t now, cef_span_t bucket_by,
    cef_goal_arm_t *out)
{
    size_t                         n = 0;
    uint32_t                       i, nx, arm;
    cef_plugin_req_t               req;
    const cef_rules_experiment_t  *x;

    if (bucket_by.len == 0) {
        return 0;
    }

    memset(&req, 0, sizeof(req));
    req.now = now;
    req.visitor = bucket_by;
    req.bucket = cef_decision_bucket;
    req.eval = cef_goal_eval;
    req.state_get = cef_goal_state_get;
    req.state_set = cef_goal_state_set;
    req.map_get = cef_goal_map_get;
    req.array_has = cef_goal_array_has;

    nx = cef_rules_goals_nexperiments(rs);

    for (i = 0; i < nx; i++) {
        x = cef_rules_goals_experiment(rs, i);

        if (!x->first) {
            continue;
        }

        req.plugin = x->plugin;
        arm = x->plugin->arm(x->state, &req);

        if (arm >= x->narms) {
            continue;                       /* CEF_PLUGIN_NONE */
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

size_t
cef_goal_format(const cef_goal_record_t *rec, char *buf, size_t size)
{
    size_t            i;
    cef_record_out_t  o;

    cef_record_json_init(&o, buf, size);

    cef_record_json_printf(&o, "{\"v\":%u,\"t\":%" PRId64 ",\"goal\":",
                           (unsigned) CEF_GOAL_VERSION, rec->now);
    cef_record_json_cstr(&o, rec->goal);

    cef_record_json_puts(&o, ",\"value\":");
    if (rec->has_value) {
        cef_record_json_number(&o, rec->value);
    } else {
        cef_record_json_puts(&o, "null");
    }

    cef_record_json_puts(&o, ",\"rules\":");
    cef_record_json_cstr(&o, rec->rules);
    cef_record_json_puts(&o, ",\"key_type\":");
    cef_record_json_span(&o, rec->key_type);
    cef_record_json_puts(&o, ",\"profile\":");
    cef_record_json_span(&o, rec->profile);
    cef_record_json_puts(&o, ",\"visitor\":");
    cef_record_json_span(&o, rec->visitor);
    cef_record_json_puts(&o, ",\"arms\":{");

    for (i = 0; i < rec->narms; i++) {
        if (i) {
            cef_record_json_put(&o, ",", 1);
        }

        cef_record_json_cstr(&o, rec->arms[i].experiment);
        cef_record_json_puts(&o, ":{\"salt\":");
        cef_record_json_cstr(&o, rec->arms[i].salt);
        cef_record_json_puts(&o, ",\"arm\":");
        cef_record_json_cstr(&o, rec->arms[i].arm);
        cef_record_json_put(&o, "}", 1);
    }

    cef_record_json_puts(&o, "}}");

    return cef_record_json_end(&o);
}
