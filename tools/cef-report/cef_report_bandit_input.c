/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * The input of `cef-report bandit --stats FILE` (docs/report.md): the
 * `cef-report stats` input as it is (one period), or the same with the
 * arms of each period the bandit ran:
 *
 *   {"metric": "binomial" | "mean", "experiment": E, "salt": S, "goal": G,
 *    "periods": [{"version": V, "arms": [{"name", "weight", "n", "sum",
 *                                         "sum_squares"}, ...]}, ...]}
 *
 * Each period's arms are checked by the `stats` reader itself
 * (cef_report_suff_read), so an arm means the same in both commands.
 */

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cef_report_bandit.h"


/* 2^53: every whole number up to it is exact in a double */
#define CEF_REPORT_BANDIT_WHOLE  9007199254740992.0


typedef struct {
    const char  *file;
    char        *err;
    size_t       errlen;
} cef_report_bandit_input_ctx_t;


static int cef_report_bandit_input_root(cef_report_bandit_input_ctx_t *c,
    json_t *root, cef_report_bandit_input_t *in);
static int cef_report_bandit_input_period(cef_report_bandit_input_ctx_t *c,
    json_t *metric, json_t *period, size_t p, int plain,
    cef_report_bandit_input_t *in);
static int cef_report_bandit_input_arms(cef_report_bandit_input_ctx_t *c,
    const cef_report_test_t *t, size_t p, cef_report_bandit_input_t *in);
static int cef_report_bandit_input_string(cef_report_bandit_input_ctx_t *c,
    json_t *root, const char *key, char **out);
static int cef_report_bandit_input_fail(cef_report_bandit_input_ctx_t *c,
    const char *fmt, ...) __attribute__((format(printf, 2, 3)));


int
cef_report_bandit_input_read(FILE *f, const char *name,
    cef_report_bandit_input_t *in, char *err, size_t errlen)
{
    int                            rc;
    json_t                        *root;
    cef_report_bandit_input_ctx_t  c;

    memset(in, 0, sizeof(cef_report_bandit_input_t));

    c.file = name;
    c.err = err;
    c.errlen = errlen;

    root = cef_report_suff_load(f, name, err, errlen);
    if (root == NULL) {
        return -1;
    }

    rc = cef_report_bandit_input_root(&c, root, in);
    json_decref(root);

    if (rc != 0) {
        cef_report_bandit_input_free(in);
    }

    return rc;
}


void
cef_report_bandit_input_free(cef_report_bandit_input_t *in)
{
    size_t  i;

    if (in->names != NULL) {
        for (i = 0; i < in->narms; i++) {
            free(in->names[i]);
        }
    }

    free(in->names);
    free(in->experiment);
    free(in->salt);
    free(in->goal);
    free(in->version);
    free(in->weights);
    free(in->n);
    free(in->sum);
    free(in->sum_squares);
    memset(in, 0, sizeof(cef_report_bandit_input_t));
}


static int
cef_report_bandit_input_root(cef_report_bandit_input_ctx_t *c, json_t *root,
    cef_report_bandit_input_t *in)
{
    int          rc;
    size_t       p;
    json_t      *v, *periods, *arms, *one;
    const char  *key;

    if (!json_is_object(root)) {
        return cef_report_bandit_input_fail(c, "expected one JSON object "
                   "with \"metric\" and \"arms\" or \"periods\"");
    }

    json_object_foreach(root, key, v) {
        if (strcmp(key, "metric") != 0 && strcmp(key, "control") != 0
            && strcmp(key, "arms") != 0 && strcmp(key, "periods") != 0
            && strcmp(key, "experiment") != 0 && strcmp(key, "salt") != 0
            && strcmp(key, "goal") != 0)
        {
            return cef_report_bandit_input_fail(c, "unknown member \"%.64s\" "
                       "(expected metric, experiment, salt, goal, periods "
                       "or arms, control)", key);
        }
    }

    if (cef_report_bandit_input_string(c, root, "experiment",
                                       &in->experiment) != 0
        || cef_report_bandit_input_string(c, root, "salt", &in->salt) != 0
        || cef_report_bandit_input_string(c, root, "goal", &in->goal) != 0)
    {
        return -1;
    }

    arms = json_object_get(root, "arms");
    periods = json_object_get(root, "periods");

    if ((arms == NULL) == (periods == NULL)) {
        return cef_report_bandit_input_fail(c, "expected either \"arms\" "
                   "(one period) or \"periods\"");
    }

    if (arms != NULL) {
        one = json_pack("{sO}", "arms", arms);
        if (one == NULL) {
            return cef_report_bandit_input_fail(c, "out of memory");
        }

        in->nperiods = 1;
        rc = cef_report_bandit_input_period(c, json_object_get(root, "metric"),
                                            one, 0, 1, in);
        json_decref(one);
        return rc;
    }

    if (!json_is_array(periods) || json_array_size(periods) == 0) {
        return cef_report_bandit_input_fail(c, "member \"periods\": expected "
                   "an array of at least one period");
    }

    in->nperiods = json_array_size(periods);

    json_array_foreach(periods, p, v) {
        if (cef_report_bandit_input_period(c, json_object_get(root, "metric"),
                                           v, p, 0, in)
            != 0)
        {
            return -1;
        }
    }

    return 0;
}


/* one period (plain: the `stats` form, "arms" without "periods"): its
   arms go through the `stats` reader */
static int
cef_report_bandit_input_period(cef_report_bandit_input_ctx_t *c,
    json_t *metric, json_t *period, size_t p, int plain,
    cef_report_bandit_input_t *in)
{
    int                 rc;
    FILE               *f;
    char               *text, where[64], err[1024];
    json_t             *v, *arms, *first, *suff;
    double              version;
    const char         *key, *control;
    cef_report_test_t   t;

    if (!json_is_object(period)) {
        return cef_report_bandit_input_fail(c, "periods[%zu]: expected an "
                   "object with \"arms\"", p);
    }

    json_object_foreach(period, key, v) {
        if (strcmp(key, "arms") != 0 && strcmp(key, "version") != 0) {
            return cef_report_bandit_input_fail(c, "periods[%zu]: unknown "
                       "member \"%.64s\" (expected version, arms)", p, key);
        }
    }

    version = 0;
    v = json_object_get(period, "version");

    if (v != NULL) {
        version = json_is_integer(v) ? (double) json_integer_value(v) : -1;

        /* 0: the uniform weights before the first record (the decision
           records' weights_version 0) */
        if (!(version >= 0 && version <= CEF_REPORT_BANDIT_WHOLE)) {
            return cef_report_bandit_input_fail(c, "periods[%zu]: member "
                       "\"version\": expected a whole number >= 0 (the "
                       "weights version live in the period)", p);
        }
    }

    arms = json_object_get(period, "arms");
    first = json_array_get(arms, 0);
    control = json_string_value(json_object_get(first, "name"));

    /* metric missing or wrong: the stats reader says so */
    suff = json_pack("{sOsOss}", "metric", metric ? metric : json_null(),
                     "arms", arms ? arms : json_null(),
                     "control", control ? control : "");
    if (metric == NULL && suff != NULL) {
        json_object_del(suff, "metric");
    }

    text = suff != NULL ? json_dumps(suff, 0) : NULL;
    json_decref(suff);

    if (text == NULL) {
        return cef_report_bandit_input_fail(c, "out of memory");
    }

    if (plain) {
        snprintf(where, sizeof(where), "%s", c->file);
    } else {
        snprintf(where, sizeof(where), "%.40s: periods[%zu]", c->file, p);
    }

    f = fmemopen(text, strlen(text), "r");
    if (f == NULL) {
        free(text);
        return cef_report_bandit_input_fail(c, "out of memory");
    }

    rc = cef_report_suff_read(f, where, &t, stderr, err, sizeof(err));
    fclose(f);
    free(text);

    if (rc != 0) {
        snprintf(c->err, c->errlen, "%s", err);
        return -1;
    }

    rc = cef_report_bandit_input_arms(c, &t, p, in);

    if (rc == 0) {
        in->version[p] = (uint64_t) version;
    }

    cef_report_suff_free(&t);
    return rc;
}


/* the arms of period p into in; the first period names them */
static int
cef_report_bandit_input_arms(cef_report_bandit_input_ctx_t *c,
    const cef_report_test_t *t, size_t p, cef_report_bandit_input_t *in)
{
    size_t  i, j, k, cells;

    if (p == 0) {
        in->metric = t->metric;
        in->narms = t->narms;
        cells = in->nperiods * t->narms;

        in->names = calloc(t->narms, sizeof(char *));
        in->version = calloc(in->nperiods, sizeof(uint64_t));
        in->weights = calloc(cells, sizeof(double));
        in->n = calloc(cells, sizeof(double));
        in->sum = calloc(cells, sizeof(double));
        in->sum_squares = calloc(cells, sizeof(double));

        if (in->names == NULL || in->version == NULL || in->weights == NULL
            || in->n == NULL || in->sum == NULL || in->sum_squares == NULL)
        {
            return cef_report_bandit_input_fail(c, "out of memory");
        }

        for (i = 0; i < t->narms; i++) {
            in->names[i] = strdup(t->arms[i].name);
            if (in->names[i] == NULL) {
                return cef_report_bandit_input_fail(c, "out of memory");
            }
        }

    } else if (t->narms != in->narms) {
        return cef_report_bandit_input_fail(c, "periods[%zu]: %zu arms, the "
                   "first period has %zu (every period lists every arm)", p,
                   t->narms, in->narms);
    }

    for (i = 0; i < t->narms; i++) {
        for (j = 0; j < in->narms; j++) {
            if (strcmp(in->names[j], t->arms[i].name) == 0) {
                break;
            }
        }

        if (j == in->narms) {
            return cef_report_bandit_input_fail(c, "periods[%zu]: arm "
                       "\"%.64s\" is not in the first period (every period "
                       "lists the same arms)", p, t->arms[i].name);
        }

        k = p * in->narms + j;
        in->weights[k] = t->arms[i].weight > 0 ? t->arms[i].weight : 0;
        in->n[k] = t->arms[i].n;
        in->sum[k] = t->arms[i].sum;
        in->sum_squares[k] = t->arms[i].sum_squares;
    }

    return 0;
}


static int
cef_report_bandit_input_string(cef_report_bandit_input_ctx_t *c,
    json_t *root, const char *key, char **out)
{
    json_t  *v;

    v = json_object_get(root, key);
    if (v == NULL) {
        return 0;
    }

    if (!json_is_string(v) || json_string_length(v) == 0
        || strlen(json_string_value(v)) != json_string_length(v))
    {
        return cef_report_bandit_input_fail(c, "member \"%s\": expected a "
                                            "non-empty string", key);
    }

    *out = strdup(json_string_value(v));
    if (*out == NULL) {
        return cef_report_bandit_input_fail(c, "out of memory");
    }

    return 0;
}


static int
cef_report_bandit_input_fail(cef_report_bandit_input_ctx_t *c,
    const char *fmt, ...)
{
    int      n;
    va_list  ap;

    n = snprintf(c->err, c->errlen, "%s: ", c->file);
    if (n < 0 || (size_t) n >= c->errlen) {
        return -1;
    }

    va_start(ap, fmt);
    vsnprintf(c->err + n, c->errlen - n, fmt, ap);
    va_end(ap);

    return -1;
}
