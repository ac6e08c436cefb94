/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-report bandit's weights (tools/cef-report/cef_report_bandit*.c)
 * against known cases with fixed seeds, and against what GrowthBook fixes
 * deterministically (repository growthbook/growthbook; the file and the
 * test or function stand next to each expected number): the period
 * weighting of back-end/src/integrations/sql/ctes/bandit-statistics-cte.ts
 * followed by gbstats' SampleMeanStatistic, the floor and top-two rules of
 * packages/stats/gbstats/bayesian/bandits.py, the 100-units rule, and the
 * chi-squared SRM of packages/stats/tests/test_gbstats.py.  Then the input
 * reader's errors and the weights record.
 */

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "cef_report_bandit.h"


#define near(got, want, tol)  near_((got), (want), (tol), #got, __LINE__)

static void
near_(double got, double want, double tol, const char *what, int line)
{
    if (!(fabs(got - want) <= tol)) {
        fail_msg("line %d: %s = %.12g, want %.12g (+-%g)", line, what, got,
                 want, tol);
    }
}


static const cef_report_bandit_opts_t  top_two = {
    CEF_REPORT_BANDIT_TOP_TWO, CEF_REPORT_BANDIT_DRAWS,
    CEF_REPORT_BANDIT_FLOOR, CEF_REPORT_BANDIT_MIN_EXPOSURES, 42
};

static const cef_report_bandit_opts_t  thompson = {
    CEF_REPORT_BANDIT_THOMPSON, CEF_REPORT_BANDIT_DRAWS,
    CEF_REPORT_BANDIT_FLOOR, CEF_REPORT_BANDIT_MIN_EXPOSURES, 42
};


/* an input read from JSON text, as `cef-report bandit --stats` reads it */
static cef_report_bandit_input_t
input(const char *json)
{
    FILE                       *f;
    char                        err[1024];
    cef_report_bandit_input_t   in;

    f = fmemopen((void *) json, strlen(json), "r");
    assert_non_null(f);

    if (cef_report_bandit_input_read(f, "t.json", &in, err, sizeof(err))
        != 0)
    {
        fclose(f);
        fail_msg("%s", err);
    }

    fclose(f);
    return in;
}


/* the reader's message for bad input */
static void
input_fails(const char *json, const char *want)
{
    FILE                       *f;
    char                        err[1024];
    cef_report_bandit_input_t   in;

    f = fmemopen((void *) json, strlen(json), "r");
    assert_non_null(f);
    assert_int_equal(cef_report_bandit_input_read(f, "t.json", &in, err,
                                                  sizeof(err)), -1);
    fclose(f);

    if (strstr(err, want) == NULL) {
        fail_msg("message \"%s\" lacks \"%s\"", err, want);
    }
}


static const char *three_arms =
    "{\"metric\": \"binomial\", \"arms\": ["
    "{\"name\": \"a\", \"weight\": 1, \"n\": 2000, \"sum\": 40},"
    "{\"name\": \"b\", \"weight\": 1, \"n\": 2000, \"sum\": 60},"
    "{\"name\": \"c\", \"weight\": 1, \"n\": 2000, \"sum\": 100}]}";


static void
test_better_arm_gains(void **state)
{
    cef_report_bandit_input_t   in;
    cef_report_bandit_result_t  res;

    (void) state;

    in = input(three_arms);

    /* top-two: c is best in nearly every draw, b second: half each */
    assert_int_equal(cef_report_bandit_compute(&in, &top_two, &res), 0);
    assert_true(res.updated);
    assert_true(res.weights[2] > 0.45);
    assert_true(res.weights[2] <= 0.5);
    assert_true(res.weights[1] > 0.4);
    assert_true(res.best[2] > 0.99);
    near(res.weights[0], 0.01 / 1.01, 0.002);   /* at the floor */
    assert_int_equal(res.bp[0] + res.bp[1] + res.bp[2], 10000);
    cef_report_bandit_result_free(&res);

    /* Thompson: c takes nearly everything, the others keep the floor */
    assert_int_equal(cef_report_bandit_compute(&in, &thompson, &res), 0);
    assert_true(res.weights[2] > 0.97);
    assert_true(res.weights[2] > res.weights[1]);
    assert_true(res.weights[1] >= res.weights[0]);
    cef_report_bandit_result_free(&res);

    cef_report_bandit_input_free(&in);
}


static void
test_equal_arms_stay_near_uniform(void **state)
{
    size_t                      i;
    cef_report_bandit_input_t   in;
    cef_report_bandit_result_t  res;

    (void) state;

    in = input("{\"metric\": \"binomial\", \"arms\": ["
               "{\"name\": \"a\", \"n\": 5000, \"sum\": 150},"
               "{\"name\": \"b\", \"n\": 5000, \"sum\": 150},"
               "{\"name\": \"c\", \"n\": 5000, \"sum\": 150}]}");

    assert_int_equal(cef_report_bandit_compute(&in, &top_two, &res), 0);
    for (i = 0; i < 3; i++) {
        /* 10 000 draws: a share's sd is about 0.005 */
        near(res.weights[i], 1.0 / 3, 0.02);
        near(res.best[i], 1.0 / 3, 0.02);
    }
    cef_report_bandit_result_free(&res);

    assert_int_equal(cef_report_bandit_compute(&in, &thompson, &res), 0);
    for (i = 0; i < 3; i++) {
        near(res.weights[i], 1.0 / 3, 0.02);
    }
    cef_report_bandit_result_free(&res);

    cef_report_bandit_input_free(&in);
}


/* gbstats bandits.py compute_result: p[p < min_variation_weight] =
   min_variation_weight; p /= sum(p) */
static void
test_floor(void **state)
{
    cef_report_bandit_opts_t    opts;
    cef_report_bandit_input_t   in;
    cef_report_bandit_result_t  res;

    (void) state;

    in = input("{\"metric\": \"binomial\", \"arms\": ["
               "{\"name\": \"a\", \"n\": 20000, \"sum\": 200},"
               "{\"name\": \"b\", \"n\": 20000, \"sum\": 200},"
               "{\"name\": \"c\", \"n\": 20000, \"sum\": 2000}]}");

    /* c wins every draw: [0, 0, 1] -> [0.01, 0.01, 1] / 1.02 */
    assert_int_equal(cef_report_bandit_compute(&in, &thompson, &res), 0);
    near(res.best[2], 1, 0);
    near(res.weights[0], 0.01 / 1.02, 1e-12);
    near(res.weights[1], 0.01 / 1.02, 1e-12);
    near(res.weights[2], 1 / 1.02, 1e-12);
    assert_int_equal(res.bp[0], 98);
    assert_int_equal(res.bp[1], 98);
    assert_int_equal(res.bp[2], 9804);
    cef_report_bandit_result_free(&res);

    /* a 5 % floor */
    opts = thompson;
    opts.floor = 0.05;
    assert_int_equal(cef_report_bandit_compute(&in, &opts, &res), 0);
    near(res.weights[0], 0.05 / 1.10, 1e-12);
    cef_report_bandit_result_free(&res);

    /* no floor: the losers get nothing */
    opts.floor = 0;
    assert_int_equal(cef_report_bandit_compute(&in, &opts, &res), 0);
    assert_int_equal(res.bp[0], 0);
    assert_int_equal(res.bp[2], 10000);
    cef_report_bandit_result_free(&res);

    cef_report_bandit_input_free(&in);
}


/* gbstats bandits.py: enough_units = all(variation_counts >= 100); else
   get_bandit_result returns the current weights */
static void
test_minimum_exposures(void **state)
{
    cef_report_bandit_input_t   in;
    cef_report_bandit_result_t  res;

    (void) state;

    /* 99 in one arm, live weights 20/30/50: they stay */
    in = input("{\"metric\": \"binomial\", \"arms\": ["
               "{\"name\": \"a\", \"weight\": 20, \"n\": 99, \"sum\": 30},"
               "{\"name\": \"b\", \"weight\": 30, \"n\": 5000, \"sum\": 50},"
               "{\"name\": \"c\", \"weight\": 50, \"n\": 5000, \"sum\": 50}]}");
    assert_int_equal(cef_report_bandit_compute(&in, &thompson, &res), 0);
    assert_false(res.updated);
    assert_non_null(res.note);
    assert_int_equal(res.bp[0], 2000);
    assert_int_equal(res.bp[1], 3000);
    assert_int_equal(res.bp[2], 5000);
    cef_report_bandit_result_free(&res);
    cef_report_bandit_input_free(&in);

    /* no live weights known: uniform */
    in = input("{\"metric\": \"binomial\", \"arms\": ["
               "{\"name\": \"a\", \"n\": 99, \"sum\": 30},"
               "{\"name\": \"b\", \"n\": 5000, \"sum\": 50},"
               "{\"name\": \"c\", \"n\": 5000, \"sum\": 50}]}");
    assert_int_equal(cef_report_bandit_compute(&in, &thompson, &res), 0);
    assert_false(res.updated);
    assert_int_equal(res.bp[0], 3334);
    assert_int_equal(res.bp[1], 3333);
    assert_int_equal(res.bp[2], 3333);
    cef_report_bandit_result_free(&res);
    cef_report_bandit_input_free(&in);

    /* 100 counts over the periods: reweighted (a's 30 % wins) */
    in = input("{\"metric\": \"binomial\", \"periods\": ["
               "{\"arms\": [{\"name\": \"a\", \"n\": 40, \"sum\": 12},"
               "{\"name\": \"b\", \"n\": 2500, \"sum\": 25},"
               "{\"name\": \"c\", \"n\": 2500, \"sum\": 25}]},"
               "{\"arms\": [{\"name\": \"a\", \"n\": 60, \"sum\": 18},"
               "{\"name\": \"b\", \"n\": 2500, \"sum\": 25},"
               "{\"name\": \"c\", \"n\": 2500, \"sum\": 25}]}]}");
    assert_int_equal(cef_report_bandit_compute(&in, &thompson, &res), 0);
    assert_true(res.updated);
    near(res.exposures[0], 100, 0);
    assert_true(res.weights[0] > 0.95);
    cef_report_bandit_result_free(&res);
    cef_report_bandit_input_free(&in);
}


/*
 * The period weighting, against GrowthBook's SQL
 * (bandit-statistics-cte.ts) and gbstats' SampleMeanStatistic.  Periods
 * of 200 and 400 visitors (shares 1/3, 2/3); arm a: 10/100 then 60/300,
 * arm b: 20/100 then 20/100.  The SQL gives, per arm, mean m = sum of
 * share * sum/n, V = sum of share^2 * s^2 / n with s^2 the sample variance
 * (sum_squares = sum for 0/1 values), main_sum = m N and main_sum_squares
 * = N (V (N - 1) + m^2); gbstats' variance (ss - s^2/N) / (N - 1) over N
 * is then V.  Computed in Python from those formulas:
 *   a: N 400, m 0.16666666666666666, V 0.00033883990405729535
 *   b: N 200, m 0.2,                 V 0.0008978675645342313
 * (pooling without weights would give a 70/400 = 0.175).
 */
static void
test_period_weighting(void **state)
{
    double                      n, m, v;
    cef_report_bandit_input_t   in;

    (void) state;

    in = input("{\"metric\": \"binomial\", \"periods\": ["
               "{\"version\": 7, \"arms\": ["
               "{\"name\": \"a\", \"weight\": 1, \"n\": 100, \"sum\": 10},"
               "{\"name\": \"b\", \"weight\": 1, \"n\": 100, \"sum\": 20}]},"
               "{\"version\": 8, \"arms\": ["
               "{\"name\": \"b\", \"weight\": 1, \"n\": 100, \"sum\": 20},"
               "{\"name\": \"a\", \"weight\": 3, \"n\": 300, \"sum\": 60}"
               "]}]}");

    assert_int_equal(in.nperiods, 2);
    assert_int_equal(in.version[0], 7);
    assert_int_equal(in.version[1], 8);

    cef_report_bandit_pool(&in, 0, &n, &m, &v);
    near(n, 400, 0);
    near(m, 0.16666666666666666, 1e-15);
    near(v, 0.00033883990405729535, 1e-17);

    cef_report_bandit_pool(&in, 1, &n, &m, &v);
    near(n, 200, 0);
    near(m, 0.2, 1e-15);
    near(v, 0.0008978675645342313, 1e-17);

    /* the SRM over the periods' weights: expected a 100 + 300, b 100 + 100,
       exactly what came: p = 1 */
    near(cef_report_bandit_srm(&in), 1, 1e-12);

    cef_report_bandit_input_free(&in);
}


/* one period: the plain mean, and gbstats' variance of a proportion
   recast as SampleMeanStatistic(n, sum, sum_squares=sum) (gbstats.py
   create_bandit_statistics): p (1 - p) n / (n - 1), over n */
static void
test_one_period(void **state)
{
    double                      n, m, v, p;
    cef_report_bandit_input_t   in;
    cef_report_bandit_result_t  res;

    (void) state;

    in = input(three_arms);

    cef_report_bandit_pool(&in, 2, &n, &m, &v);
    p = 100.0 / 2000;
    near(m, p, 1e-15);
    near(v, p * (1 - p) * 2000 / 1999 / 2000, 1e-17);

    /* the posterior with gbstats' proper prior N(0, 1e4)
       (preprocess_bandits, Bandits.posterior_mean/variance) */
    assert_int_equal(cef_report_bandit_compute(&in, &top_two, &res), 0);
    near(res.post_mean[2], (m / v) / (1e-4 + 1 / v), 1e-15);
    near(res.post_sd[2], sqrt(1 / (1e-4 + 1 / v)), 1e-15);
    cef_report_bandit_result_free(&res);

    cef_report_bandit_input_free(&in);
}


/* a mean (value) metric: the sample variance from sum_squares */
static void
test_value_metric(void **state)
{
    double                      n, m, v;
    cef_report_bandit_input_t   in;
    cef_report_bandit_result_t  res;

    (void) state;

    in = input("{\"metric\": \"mean\", \"arms\": ["
               "{\"name\": \"a\", \"n\": 1000, \"sum\": 2000,"
               " \"sum_squares\": 4400},"
               "{\"name\": \"b\", \"n\": 1000, \"sum\": 3000,"
               " \"sum_squares\": 9600}]}");

    cef_report_bandit_pool(&in, 0, &n, &m, &v);
    near(m, 2, 1e-15);
    near(v, (4400 - 2000.0 * 2000 / 1000) / 999 / 1000, 1e-15);

    assert_int_equal(cef_report_bandit_compute(&in, &thompson, &res), 0);
    assert_true(res.updated);
    assert_true(res.best[1] > 0.99);
    cef_report_bandit_result_free(&res);

    cef_report_bandit_input_free(&in);
}


/* an arm with no visitors in a period: that period is left out of its
   mean (GrowthBook's SQL would count it as 0) */
static void
test_period_without_the_arm(void **state)
{
    double                      n, m, v;
    cef_report_bandit_input_t   in;

    (void) state;

    in = input("{\"metric\": \"binomial\", \"periods\": ["
               "{\"arms\": [{\"name\": \"a\", \"n\": 0, \"sum\": 0},"
               "{\"name\": \"b\", \"n\": 500, \"sum\": 10}]},"
               "{\"arms\": [{\"name\": \"a\", \"n\": 500, \"sum\": 50},"
               "{\"name\": \"b\", \"n\": 500, \"sum\": 10}]}]}");

    cef_report_bandit_pool(&in, 0, &n, &m, &v);
    near(n, 500, 0);
    near(m, 0.1, 1e-15);
    near(v, 0.1 * 0.9 * 500 / 499 / 500, 1e-17);

    cef_report_bandit_input_free(&in);
}


/* the same seed gives the same weights; another seed other draws */
static void
test_seed(void **state)
{
    cef_report_bandit_opts_t    opts;
    cef_report_bandit_input_t   in;
    cef_report_bandit_result_t  r1, r2, r3;

    (void) state;

    in = input("{\"metric\": \"binomial\", \"arms\": ["
               "{\"name\": \"a\", \"n\": 1000, \"sum\": 30},"
               "{\"name\": \"b\", \"n\": 1000, \"sum\": 33}]}");

    opts = top_two;
    assert_int_equal(cef_report_bandit_compute(&in, &opts, &r1), 0);
    assert_int_equal(cef_report_bandit_compute(&in, &opts, &r2), 0);
    opts.seed = 43;
    assert_int_equal(cef_report_bandit_compute(&in, &opts, &r3), 0);

    assert_memory_equal(r1.weights, r2.weights, 2 * sizeof(double));
    assert_memory_equal(r1.best, r2.best, 2 * sizeof(double));
    assert_true(r1.best[0] != r3.best[0]);

    /* b ahead but not clearly: P(best) about 0.65 */
    near(r1.best[1], 0.65, 0.05);
    /* two arms, top-two: each is best or second in every draw */
    near(r1.weights[0], 0.5, 1e-12);

    cef_report_bandit_result_free(&r1);
    cef_report_bandit_result_free(&r2);
    cef_report_bandit_result_free(&r3);
    cef_report_bandit_input_free(&in);
}


/* packages/stats/tests/test_gbstats.py TestHelpers.test_srm:
   check_srm([1000, 1200], [0.5, 0.5]) == 0.000020079 (9 decimals) */
static void
test_srm(void **state)
{
    cef_report_bandit_input_t   in;

    (void) state;

    in = input("{\"metric\": \"binomial\", \"arms\": ["
               "{\"name\": \"a\", \"weight\": 0.5, \"n\": 1000, \"sum\": 1},"
               "{\"name\": \"b\", \"weight\": 0.5, \"n\": 1200, \"sum\": 1}"
               "]}");
    near(cef_report_bandit_srm(&in), 0.000020079, 5e-10);
    cef_report_bandit_input_free(&in);

    /* the same visitors over two periods of other weights: 1000 of 1500
       at 50/50 and 700 at 0/100 (a took none in the second) */
    in = input("{\"metric\": \"binomial\", \"periods\": ["
               "{\"arms\": [{\"name\": \"a\", \"weight\": 1, \"n\": 750,"
               " \"sum\": 1}, {\"name\": \"b\", \"weight\": 1, \"n\": 750,"
               " \"sum\": 1}]},"
               "{\"arms\": [{\"name\": \"a\", \"weight\": 0, \"n\": 0,"
               " \"sum\": 0}, {\"name\": \"b\", \"weight\": 1, \"n\": 700,"
               " \"sum\": 1}]}]}");
    near(cef_report_bandit_srm(&in), 1, 1e-12);
    cef_report_bandit_input_free(&in);

    /* weights unknown: no verdict */
    in = input(three_arms);
    in.weights[0] = in.weights[1] = in.weights[2] = 0;
    assert_true(isnan(cef_report_bandit_srm(&in)));
    cef_report_bandit_input_free(&in);
}


static void
test_basis_points(void **state)
{
    uint32_t      bp[4];
    const double  thirds[3] = { 1.0 / 3, 1.0 / 3, 1.0 / 3 };
    const double  odd[4] = { 0.12345, 0.54321, 0.22222, 0.11112 };
    const double  scaled[2] = { 3, 1 };

    (void) state;

    cef_report_bandit_bp(thirds, 3, bp);
    assert_int_equal(bp[0], 3334);
    assert_int_equal(bp[1], 3333);
    assert_int_equal(bp[2], 3333);

    /* 1234.5 5432.1 2222.2 1111.2: floors sum 9999, the point goes to
       the largest fraction */
    cef_report_bandit_bp(odd, 4, bp);
    assert_int_equal(bp[0], 1235);
    assert_int_equal(bp[1], 5432);
    assert_int_equal(bp[2], 2222);
    assert_int_equal(bp[3], 1111);

    cef_report_bandit_bp(scaled, 2, bp);
    assert_int_equal(bp[0], 7500);
    assert_int_equal(bp[1], 2500);
}


static void
test_version(void **state)
{
    (void) state;

    assert_int_equal(cef_report_bandit_record_version(0, 1800000000),
                     1800000000);
    assert_int_equal(cef_report_bandit_record_version(1800000000,
                                                      1800000000),
                     1800000001);
    /* a clock set back never moves a version backwards */
    assert_int_equal(cef_report_bandit_record_version(1800000000, 5),
                     1800000001);
    assert_int_equal(cef_report_bandit_record_version(0, -1), 1);
}


static void
test_record(void **state)
{
    FILE                         *f;
    char                          buf[4096], err[256], *names[3];
    double                        w[3];
    json_t                       *root;
    uint64_t                      version;
    json_error_t                  je;
    cef_report_bandit_input_t     in;
    cef_report_bandit_result_t    res;
    cef_report_bandit_record_t    rec;

    (void) state;

    in = input(three_arms);
    assert_int_equal(cef_report_bandit_compute(&in, &top_two, &res), 0);

    rec.experiment = "hero-q4";
    rec.salt = "hero-salt";
    rec.goal = "purchase";
    rec.version = 1800000001;
    rec.created_at = 1800000000;
    rec.in = &in;
    rec.res = &res;
    rec.opts = &top_two;

    f = fmemopen(buf, sizeof(buf), "w");
    assert_non_null(f);
    assert_int_equal(cef_report_bandit_record_write(f, &rec), 0);
    fclose(f);

    /* one line */
    assert_non_null(strchr(buf, '\n'));
    assert_null(strchr(buf, '\n') + 1 == NULL ? NULL
                : strchr(strchr(buf, '\n') + 1, '\n'));

    root = json_loads(buf, 0, &je);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "op")),
                        "weights");
    assert_string_equal(json_string_value(json_object_get(root, "salt")),
                        "hero-salt");
    assert_string_equal(json_string_value(json_object_get(root, "metric")),
                        "conversion");
    assert_string_equal(json_string_value(json_object_get(root, "method")),
                        "top-two");
    assert_true(json_is_true(json_object_get(root, "updated")));
    assert_int_equal(json_integer_value(json_object_get(root, "seed")), 42);
    assert_int_equal(json_integer_value(json_object_get(root, "draws")),
                     10000);
    near(json_real_value(json_object_get(root, "floor")), 0.01, 0);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(root, "exposures"), "c")), 2000);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(root, "weights"), "a"))
                     + json_integer_value(json_object_get(
                         json_object_get(root, "weights"), "b"))
                     + json_integer_value(json_object_get(
                         json_object_get(root, "weights"), "c")), 10000);
    assert_int_equal(json_object_size(root), 14);
    json_decref(root);

    /* read back for --previous; an arm it does not know gets -1 */
    names[0] = "c";
    names[1] = "a";
    names[2] = "z";
    f = fmemopen(buf, strlen(buf), "r");
    assert_int_equal(cef_report_bandit_record_read(f, "r.json", "hero-q4",
                         &version, names, 3, w, err, sizeof(err)), 0);
    fclose(f);
    assert_int_equal(version, 1800000001);
    near(w[0], res.bp[2] / 10000.0, 0);
    near(w[1], res.bp[0] / 10000.0, 0);
    near(w[2], -1, 0);

    /* another experiment's record */
    f = fmemopen(buf, strlen(buf), "r");
    assert_int_equal(cef_report_bandit_record_read(f, "r.json", "side",
                         &version, names, 3, w, err, sizeof(err)), -1);
    fclose(f);
    assert_non_null(strstr(err, "the weights record of experiment "
                               "\"hero-q4\", not \"side\""));

    cef_report_bandit_result_free(&res);
    cef_report_bandit_input_free(&in);
}


/* the entry point of the log reader: a `stats` test is one period whose
   weights were live */
static void
test_from_test(void **state)
{
    double                      n, m, v;
    cef_report_arm_t            arms[2];
    cef_report_test_t           t;
    cef_report_bandit_input_t   in;
    cef_report_bandit_result_t  res;

    (void) state;

    memset(&t, 0, sizeof(t));
    arms[0].name = "a";
    arms[0].weight = 2500;
    arms[0].n = 100;
    arms[0].sum = 2;
    arms[0].sum_squares = 99;        /* ignored for a binomial metric */
    arms[1].name = "b";
    arms[1].weight = 7500;
    arms[1].n = 300;
    arms[1].sum = 30;
    arms[1].sum_squares = 99;
    t.experiment = "hero";
    t.salt = "hero-salt";
    t.goal = "purchase";
    t.metric = CEF_REPORT_BINOMIAL;
    t.narms = 2;
    t.arms = arms;

    assert_int_equal(cef_report_bandit_from_test(&t, &in), 0);
    assert_int_equal(in.nperiods, 1);
    assert_string_equal(in.salt, "hero-salt");
    assert_string_equal(in.names[1], "b");

    cef_report_bandit_pool(&in, 0, &n, &m, &v);
    near(m, 0.02, 1e-15);
    near(v, 0.02 * 0.98 * 100 / 99 / 100, 1e-17);

    /* a has 100: reweighted; the split was as configured: SRM p 1 */
    assert_int_equal(cef_report_bandit_compute(&in, &thompson, &res), 0);
    assert_true(res.updated);
    near(res.srm_p, 1, 1e-12);
    assert_true(res.weights[1] > 0.97);
    cef_report_bandit_result_free(&res);

    cef_report_bandit_input_free(&in);
}


static void
test_input_errors(void **state)
{
    (void) state;

    input_fails("[]", "expected one JSON object");
    input_fails("{\"metric\": \"binomial\"}", "expected either \"arms\"");
    input_fails("{\"metric\": \"binomial\", \"arms\": [], \"periods\": []}",
                "expected either \"arms\"");
    input_fails("{\"metric\": \"binomial\", \"periods\": []}",
                "member \"periods\": expected an array of at least one");
    input_fails("{\"metric\": \"binomial\", \"arms\": [], \"slot\": 1}",
                "unknown member \"slot\"");
    input_fails("{\"metric\": \"binomial\", \"experiment\": 3, "
                "\"arms\": []}", "member \"experiment\": expected a "
                "non-empty string");
    /* the stats reader's own messages, with the period */
    input_fails("{\"metric\": \"binomial\", \"periods\": [{\"arms\": ["
                "{\"name\": \"a\", \"n\": 10, \"sum\": 1},"
                "{\"name\": \"b\", \"n\": 10, \"sum\": 11}]}]}",
                "t.json: periods[0]: arms[1] (\"b\"): member \"sum\": "
                "expected the converting visitors");
    input_fails("{\"arms\": [{\"name\": \"a\", \"n\": 10, \"sum\": 1},"
                "{\"name\": \"b\", \"n\": 10, \"sum\": 1}]}",
                "t.json: member \"metric\" is missing");
    input_fails("{\"metric\": \"binomial\", \"periods\": [{\"arms\": ["
                "{\"name\": \"a\", \"n\": 10, \"sum\": 1},"
                "{\"name\": \"b\", \"n\": 10, \"sum\": 1}]}, {\"arms\": ["
                "{\"name\": \"a\", \"n\": 10, \"sum\": 1},"
                "{\"name\": \"c\", \"n\": 10, \"sum\": 1}]}]}",
                "periods[1]: arm \"c\" is not in the first period");
    input_fails("{\"metric\": \"binomial\", \"periods\": [{\"arms\": ["
                "{\"name\": \"a\", \"n\": 10, \"sum\": 1},"
                "{\"name\": \"b\", \"n\": 10, \"sum\": 1}]}, {\"arms\": ["
                "{\"name\": \"a\", \"n\": 10, \"sum\": 1},"
                "{\"name\": \"b\", \"n\": 10, \"sum\": 1},"
                "{\"name\": \"c\", \"n\": 10, \"sum\": 1}]}]}",
                "periods[1]: 3 arms, the first period has 2");
    input_fails("{\"metric\": \"binomial\", \"periods\": [{\"version\": -1, "
                "\"arms\": []}]}", "periods[0]: member \"version\": "
                "expected a whole number >= 0");
    input_fails("{\"metric\": \"binomial\", \"periods\": [{\"weights\": 1, "
                "\"arms\": []}]}", "periods[0]: unknown member \"weights\"");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_better_arm_gains),
        cmocka_unit_test(test_equal_arms_stay_near_uniform),
        cmocka_unit_test(test_floor),
        cmocka_unit_test(test_minimum_exposures),
        cmocka_unit_test(test_period_weighting),
        cmocka_unit_test(test_one_period),
        cmocka_unit_test(test_value_metric),
        cmocka_unit_test(test_period_without_the_arm),
        cmocka_unit_test(test_seed),
        cmocka_unit_test(test_srm),
        cmocka_unit_test(test_basis_points),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_record),
        cmocka_unit_test(test_from_test),
        cmocka_unit_test(test_input_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
