/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * --json: one JSON object per test, one per line (JSON Lines), the same
 * for `cef-report stats` and the log reader (docs/report.md "JSON
 * output").  A number that is not finite is written as null; an arm that
 * could not be analysed carries "note" instead of the results.  Reals have
 * 15 significant digits (17 would print 0.05 as 0.050000000000000003).
 */

#include <math.h>

#include <jansson.h>

#include "cef_report.h"


static json_t *cef_report_json_test(const cef_report_out_t *o,
    const cef_report_opts_t *opts);
static json_t *cef_report_json_arm(const cef_report_test_t *t, size_t i,
    const cef_report_result_t *r);
static json_t *cef_report_json_effect(const cef_report_effect_t *e);
static json_t *cef_report_json_pair(double a, double b);
static json_t *cef_report_json_num(double v);
static json_t *cef_report_json_count(double v);
static json_t *cef_report_json_str(const char *s);


int
cef_report_json_write(FILE *f, const cef_report_out_t *outs, size_t n,
    const cef_report_opts_t *opts)
{
    int      rc;
    size_t   i;
    json_t  *o;

    for (i = 0; i < n; i++) {
        o = cef_report_json_test(&outs[i], opts);
        if (o == NULL) {
            return -1;
        }

        rc = json_dumpf(o, f, JSON_COMPACT | JSON_REAL_PRECISION(15));
        json_decref(o);

        if (rc != 0 || fputc('\n', f) == EOF) {
            return -1;
        }
    }

    return ferror(f) ? -1 : 0;
}


/* a bandit's weights versions: each one's weights, visitors, sums (in the
   arms' order) and its own SRM check */
static json_t *
cef_report_json_periods(const cef_report_out_t *o)
{
    int                       bad = 0;
    size_t                    k, i, na;
    double                    p;
    json_t                   *all, *per, *w, *n, *sum;
    const cef_report_test_t  *t = o->test;

    na = t->narms;
    all = json_array();
    if (all == NULL) {
        return NULL;
    }

    for (k = 0; k < t->periods.nperiods && !bad; k++) {
        per = json_object();
        w = json_array();
        n = json_array();
        sum = json_array();
        p = o->period_srm_p != NULL ? o->period_srm_p[k] : NAN;
        bad |= per == NULL || w == NULL || n == NULL || sum == NULL;

        for (i = 0; i < na && !bad; i++) {
            bad |= json_array_append_new(w,
                       cef_report_json_num(t->periods.weights[k * na + i]))
                 | json_array_append_new(n,
                       cef_report_json_count(t->periods.n[k * na + i]))
                 | json_array_append_new(sum,
                       cef_report_json_count(t->periods.sum[k * na + i]));
        }

        if (bad) {
            json_decref(per);
            json_decref(w);
            json_decref(n);
            json_decref(sum);
            break;
        }

        bad |= json_object_set_new(per, "version",
                   json_integer((json_int_t) t->periods.version[k]))
             | json_object_set_new(per, "weights", w)
             | json_object_set_new(per, "n", n)
             | json_object_set_new(per, "sum", sum)
             | json_object_set_new(per, "srm_p", cef_report_json_num(p))
             | json_object_set_new(per, "srm_alarm", json_boolean(
                   !isnan(p) && p < cef_report_stats_srm_alpha(
                                        t->periods.nperiods)))
             | json_array_append_new(all, per);
    }

    if (bad) {
        json_decref(all);
        return NULL;
    }

    return all;
}


static json_t *
cef_report_json_test(const cef_report_out_t *o, const cef_report_opts_t *opts)
{
    int                       bad;
    size_t                    i;
    json_t                   *j, *arms;
    const cef_report_test_t  *t;

    t = o->test;
    j = json_object();
    arms = json_array();

    if (j == NULL || arms == NULL) {
        json_decref(j);
        json_decref(arms);
        return NULL;
    }

    bad = json_object_set_new(j, "experiment",
                              cef_report_json_str(t->experiment))
        | json_object_set_new(j, "salt", cef_report_json_str(t->salt))
        | json_object_set_new(j, "rules", cef_report_json_str(t->rules))
        | json_object_set_new(j, "slot", cef_report_json_str(t->slot))
        | json_object_set_new(j, "goal", cef_report_json_str(t->goal))
        | json_object_set_new(j, "metric",
              json_string(t->metric == CEF_REPORT_BINOMIAL ? "binomial"
                                                            : "mean"))
        | json_object_set_new(j, "holdout", json_boolean(t->holdout))
        | json_object_set_new(j, "alpha", cef_report_json_num(opts->alpha))
        | json_object_set_new(j, "sequential",
                              json_boolean(opts->sequential));

    if (opts->sequential) {
        bad |= json_object_set_new(j, "tau", cef_report_json_num(opts->tau));
    }

    bad |= json_object_set_new(j, "srm_p", cef_report_json_num(o->srm_p));

    if (t->periods.nperiods > 0) {
        bad |= json_object_set_new(j, "weighting", json_string("periods"))
             | json_object_set_new(j, "periods", cef_report_json_periods(o));
    }

    bad |= json_object_set_new(j, "arms", arms);

    for (i = 0; i < t->narms && !bad; i++) {
        bad |= json_array_append_new(arms,
                                     cef_report_json_arm(t, i, &o->res[i]));
    }

    if (bad) {
        json_decref(j);
        return NULL;
    }

    return j;
}


static json_t *
cef_report_json_arm(const cef_report_test_t *t, size_t i,
    const cef_report_result_t *r)
{
    int      bad;
    json_t  *a, *b;

    a = json_object();
    if (a == NULL) {
        return NULL;
    }

    bad = json_object_set_new(a, "name", cef_report_json_str(t->arms[i].name))
        | json_object_set_new(a, "n", cef_report_json_count(t->arms[i].n))
        | json_object_set_new(a, "sum",
                              cef_report_json_count(t->arms[i].sum))
        | json_object_set_new(a, "mean", cef_report_json_num(r->mean));

    if (i == t->control || bad) {
        /* the control: name, n, sum, mean */

    } else if (!r->valid) {
        bad |= json_object_set_new(a, "note", cef_report_json_str(r->note));

    } else {
        b = json_object();
        bad |= b == NULL
            || json_object_set_new(b, "chance_to_win",
                                   cef_report_json_num(r->chance_to_win))
            || json_object_set_new(b, "ci",
                   cef_report_json_pair(r->bayes_lo, r->bayes_hi))
            || json_object_set_new(b, "risk",
                   cef_report_json_pair(r->risk_control, r->risk_arm));

        bad |= json_object_set_new(a, "relative",
                                   cef_report_json_effect(&r->relative))
             | json_object_set_new(a, "absolute",
                                   cef_report_json_effect(&r->absolute))
             | json_object_set_new(a, "bayes", b);
    }

    if (bad) {
        json_decref(a);
        return NULL;
    }

    return a;
}


static json_t *
cef_report_json_effect(const cef_report_effect_t *e)
{
    json_t  *j;

    j = json_object();
    if (j == NULL
        || json_object_set_new(j, "lift", cef_report_json_num(e->lift))
        || json_object_set_new(j, "ci", cef_report_json_pair(e->lo, e->hi))
        || json_object_set_new(j, "se", cef_report_json_num(e->se))
        || json_object_set_new(j, "p", cef_report_json_num(e->p)))
    {
        json_decref(j);
        return NULL;
    }

    return j;
}


static json_t *
cef_report_json_pair(double a, double b)
{
    return json_pack("[oo]", cef_report_json_num(a), cef_report_json_num(b));
}


static json_t *
cef_report_json_num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}


/* visitors and converters: whole numbers as integers */
static json_t *
cef_report_json_count(double v)
{
    if (isfinite(v) && v == floor(v) && fabs(v) <= 9007199254740992.0) {
        return json_integer((json_int_t) v);
    }

    return cef_report_json_num(v);
}


static json_t *
cef_report_json_str(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}
