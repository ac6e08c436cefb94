/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * --counts (cef_report_logs.h): the sufficient statistics the logs gave,
 * one JSON object per test and line, before any statistics.  Each line is
 * also valid input of `cef-report stats` (metric, control, arms with name,
 * weight, n, sum, sum_squares); the other members say which test it is
 * and carry the time series.
 */

#include <math.h>

#include <jansson.h>

#include "cef_report_logs.h"


/* integral counts as integers, sums of values as reals */
static json_t *
num(double d)
{
    if (d == floor(d) && fabs(d) < 9e15) {
        return json_integer((json_int_t) d);
    }
    return json_real(d);
}


static json_t *
str(const char *s)
{
    return s ? json_string(s) : json_null();
}


static json_t *
series(const cef_report_test_t *t)
{
    json_t  *end = json_array(), *n = json_array(), *c = json_array();
    json_t  *rn, *rc;
    size_t   k, i;

    for (k = 0; k < t->series.nperiods; k++) {
        json_array_append_new(end, json_integer(t->series.end[k]));
        rn = json_array();
        rc = json_array();
        for (i = 0; i < t->narms; i++) {
            json_array_append_new(rn, num(t->series.n[k * t->narms + i]));
            json_array_append_new(rc,
                num(t->series.converters[k * t->narms + i]));
        }
        json_array_append_new(n, rn);
        json_array_append_new(c, rc);
    }
    return json_pack("{s:o,s:o,s:o}", "end", end, "n", n, "converters", c);
}


/* a bandit's weights versions, as `cef-report bandit --stats` reads them */
static json_t *
periods(const cef_report_test_t *t)
{
    const cef_report_periods_t  *p = &t->periods;
    json_t                      *all = json_array(), *arms;
    size_t                       k, i, c;

    for (k = 0; k < p->nperiods; k++) {
        arms = json_array();
        for (i = 0; i < t->narms; i++) {
            c = k * t->narms + i;
            json_array_append_new(arms, json_pack("{s:s,s:o,s:o,s:o,s:o}",
                "name", t->arms[i].name,
                "weight", json_real(p->weights[c]),
                "n", num(p->n[c]),
                "sum", num(p->sum[c]),
                "sum_squares", num(p->sum_squares[c])));
        }
        json_array_append_new(all, json_pack("{s:I,s:o}",
            "version", (json_int_t) p->version[k], "arms", arms));
    }
    return all;
}


int
cef_report_logs_counts_write(FILE *f, const cef_report_test_t *tests,
    size_t n)
{
    const cef_report_test_t  *t;
    json_t                   *o, *arms, *arm;
    size_t                    i, k;
    int                       rc = 0;

    for (i = 0; i < n && rc == 0; i++) {
        t = &tests[i];
        arms = json_array();
        for (k = 0; k < t->narms; k++) {
            arm = json_pack("{s:s,s:o,s:o,s:o,s:o}",
                "name", t->arms[k].name,
                "weight", t->arms[k].weight < 0
                          ? json_null() : json_real(t->arms[k].weight),
                "n", num(t->arms[k].n),
                "sum", num(t->arms[k].sum),
                "sum_squares", num(t->arms[k].sum_squares));
            json_array_append_new(arms, arm);
        }
        o = json_pack("{s:o,s:o,s:o,s:o,s:o,s:s,s:b,s:o,s:o,s:o}",
            "experiment", str(t->experiment),
            "salt", str(t->salt),
            "rules", str(t->rules),
            "slot", str(t->slot),
            "goal", str(t->goal),
            "metric", t->metric == CEF_REPORT_MEAN ? "mean" : "binomial",
            "holdout", t->holdout,
            "control", t->narms ? json_string(t->arms[t->control].name)
                                : json_null(),
            "arms", arms,
            "series", series(t));
        if (o != NULL && t->periods.nperiods > 0
            && json_object_set_new(o, "periods", periods(t)) != 0)
        {
            json_decref(o);
            o = NULL;
        }
        if (o == NULL || json_dumpf(o, f, JSON_COMPACT | JSON_PRESERVE_ORDER
                                       | JSON_REAL_PRECISION(15))
                         != 0
            || fputc('\n', f) == EOF)
        {
            rc = -1;
        }
        json_decref(o);
    }
    return rc;
}
