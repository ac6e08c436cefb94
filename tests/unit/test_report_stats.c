/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-report's statistics against GrowthBook gbstats' own test cases
 * (repository growthbook/growthbook, packages/stats/tests/...; the file and
 * test name stand next to every expected number, which gbstats rounds to 5
 * decimals), the sufficient-statistics input and its errors, and the JSON
 * and table writers.
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

#include "cef_report.h"


/* gbstats' expected values are rounded to 5 decimals */
#define R5  5.000001e-6


static const cef_report_opts_t  fixed = { 0.05, 0, 5000 };


#define near(got, want, tol)  near_((got), (want), (tol), #got, __LINE__)

static void
near_(double got, double want, double tol, const char *what, int line)
{
    if (!(fabs(got - want) <= tol)) {
        fail_msg("line %d: %s = %.9g, want %.9g (+-%g)", line, what, got,
                 want, tol);
    }
}


static cef_report_arm_t
arm(const char *name, double n, double sum, double sum_squares)
{
    cef_report_arm_t  a;

    a.name = (char *) name;
    a.weight = 0.5;
    a.n = n;
    a.sum = sum;
    a.sum_squares = sum_squares;

    return a;
}


/* control a, arm b: the result of b */
static cef_report_result_t
compare(cef_report_metric_t metric, cef_report_arm_t a, cef_report_arm_t b,
    const cef_report_opts_t *opts)
{
    double               srm;
    cef_report_arm_t     arms[2];
    cef_report_test_t    t;
    cef_report_result_t  res[2];

    arms[0] = a;
    arms[1] = b;
    memset(&t, 0, sizeof(t));
    t.metric = metric;
    t.narms = 2;
    t.arms = arms;

    assert_int_equal(cef_report_stats_analyse(&t, opts, res, &srm), 0);
    return res[1];
}


/* the mean-metric pair of gbstats' frequentist tests */
#define GB_A(n)  arm("control", (n), 1396.87, 52377.9767)
#define GB_B     arm("b", 3461, 2422.7, 134698.29)


static void
test_welch_relative(void **state)
{
    cef_report_result_t  r;

    (void) state;

    /* tests/frequentist/test_tests.py
       TestTwoSidedTTest.test_two_sided_ttest */
    r = compare(CEF_REPORT_MEAN, GB_A(3407), GB_B, &fixed);
    assert_true(r.valid);
    near(r.relative.lift, 0.70732, R5);
    near(r.relative.lo, -0.03526, R5);
    near(r.relative.hi, 1.44989, R5);
    near(r.relative.se, 0.37879, R5);
    near(r.relative.p, 0.06191, R5);
    near(r.mean, 0.7, 1e-12);
}


static void
test_welch_absolute(void **state)
{
    cef_report_result_t  r;

    (void) state;

    /* tests/frequentist/test_tests.py
       TestTwoSidedTTest.test_two_sided_ttest_absolute */
    r = compare(CEF_REPORT_MEAN, GB_A(3407), GB_B, &fixed);
    near(r.absolute.lift, 0.29, R5);
    near(r.absolute.lo, 0.04538, R5);
    near(r.absolute.hi, 0.53462, R5);
    near(r.absolute.se, 0.12478, R5);
    near(r.absolute.p, 0.02016, R5);
}


static void
test_welch_binomial(void **state)
{
    cef_report_result_t  r;

    (void) state;

    /* tests/frequentist/test_tests.py
       TestTwoSidedTTest.test_two_sided_ttest_binom */
    r = compare(CEF_REPORT_BINOMIAL, arm("control", 28, 14, 14),
                arm("b", 30, 16, 16), &fixed);
    assert_true(r.valid);
    near(r.relative.lift, 0.06667, R5);
    near(r.relative.lo, -0.47767, R5);
    near(r.relative.hi, 0.61101, R5);
    near(r.relative.se, 0.2717, R5);
    near(r.relative.p, 0.80707, R5);
}


static void
test_alpha(void **state)
{
    double               t95, t90;
    cef_report_result_t  r95, r90;
    cef_report_opts_t    o90 = { 0.10, 0, 5000 };

    (void) state;

    /* the same test at 90%: the half-width scales with the t quantile;
       the 95% one is gbstats' (test_two_sided_ttest) */
    r95 = compare(CEF_REPORT_MEAN, GB_A(3407), GB_B, &fixed);
    r90 = compare(CEF_REPORT_MEAN, GB_A(3407), GB_B, &o90);
    t95 = (r95.relative.hi - r95.relative.lift) / r95.relative.se;
    t90 = (r90.relative.hi - r90.relative.lift) / r90.relative.se;

    /* dof ~ 5939: the normal quantiles to 3 decimals */
    near(t95, 1.95996, 1e-3);
    near(t90, 1.64485, 1e-3);
    near(r90.relative.p, r95.relative.p, 1e-15);
    assert_true(r90.relative.lo > r95.relative.lo);
}


static void
test_sequential_mean(void **state)
{
    cef_report_result_t  r;
    cef_report_opts_t    o = { 0.05, 1, 1000 };

    (void) state;

    /* tests/frequentist/test_tests.py
       TestSequentialTTest.test_sequential_test_runs (tuning 1000) */
    r = compare(CEF_REPORT_MEAN, GB_A(3000), GB_B, &o);
    assert_true(r.valid);
    near(r.relative.lift, 0.50336, R5);
    near(r.relative.lo, -0.55844, R5);
    near(r.relative.hi, 1.56516, R5);
    near(r.relative.se, 0.33341, R5);
    near(r.relative.p, 1, R5);
}


static void
test_sequential_binomial(void **state)
{
    cef_report_result_t  r;
    cef_report_opts_t    o = { 0.05, 1, 5000 };

    (void) state;

    /* tests/frequentist/test_tests.py
       TestSequentialTTest.test_sequential_test_runs_prop (default 5000) */
    r = compare(CEF_REPORT_BINOMIAL, arm("control", 3000, 1396, 1396),
                arm("b", 3461, 2422, 2422), &o);
    assert_true(r.valid);
    near(r.relative.lift, 0.50386, R5);
    near(r.relative.lo, 0.40098, R5);
    near(r.relative.hi, 0.60675, R5);
    near(r.relative.se, 0.03386, R5);
    near(r.relative.p, 0.0, R5);
    assert_true(r.relative.p > 0);
}


static void
test_sequential_tuning(void **state)
{
    cef_report_result_t  below, near_n, above, fixed_r;
    cef_report_opts_t    o10 = { 0.05, 1, 10 };
    cef_report_opts_t    o6461 = { 0.05, 1, 6461 };
    cef_report_opts_t    o10000 = { 0.05, 1, 10000 };

    (void) state;

    /* tests/frequentist/test_tests.py
       TestSequentialTTest.test_sequential_test_tuning_as_expected: tuned
       near the sample size the sequence is tightest */
    below = compare(CEF_REPORT_MEAN, GB_A(3000), GB_B, &o10);
    near_n = compare(CEF_REPORT_MEAN, GB_A(3000), GB_B, &o6461);
    above = compare(CEF_REPORT_MEAN, GB_A(3000), GB_B, &o10000);
    fixed_r = compare(CEF_REPORT_MEAN, GB_A(3000), GB_B, &fixed);

    assert_true(below.relative.lo < above.relative.lo
                && below.relative.hi > above.relative.hi);
    assert_true(below.relative.lo < near_n.relative.lo
                && below.relative.hi > near_n.relative.hi);
    assert_true(above.relative.lo < near_n.relative.lo
                && above.relative.hi > near_n.relative.hi);

    /* always valid costs width against the fixed-horizon interval */
    assert_true(near_n.relative.lo < fixed_r.relative.lo
                && near_n.relative.hi > fixed_r.relative.hi);
}


static void
test_p_value_matches_interval(void **state)
{
    int                  k, seq, flips;
    double               sum;
    size_t               i;
    cef_report_result_t  r;
    cef_report_opts_t    o;
    static const double  alphas[] = { 0.01, 0.05, 0.1 };

    (void) state;

    /* p < alpha exactly when the interval leaves out 0, for the Welch test
       and for the confidence sequence: eq. 155's e-value exceeds 1/alpha
       exactly when eq. 9's half-width is below |lift|.  This ties the
       sequential p-value, which gbstats' tests only pin at 0 and 1, to the
       interval they pin to 5 decimals. */
    flips = 0;

    for (seq = 0; seq <= 1; seq++) {
        for (i = 0; i < sizeof(alphas) / sizeof(alphas[0]); i++) {
            o.alpha = alphas[i];
            o.sequential = seq;
            o.tau = 5000;

            for (k = 0; k <= 60; k++) {
                sum = 1000 + 5 * k;
                r = compare(CEF_REPORT_BINOMIAL,
                            arm("control", 10000, 1000, 1000),
                            arm("b", 10000, sum, sum), &o);
                assert_true(r.valid);

                if ((r.relative.p < o.alpha) != (r.relative.lo > 0)) {
                    fail_msg("sequential %d alpha %g sum %g: p %g, lo %g",
                             seq, o.alpha, sum, r.relative.p, r.relative.lo);
                }

                flips += r.relative.p > 0.001 && r.relative.p < 0.999;
            }
        }
    }

    assert_true(flips > 50);
}


static void
test_bayes_binomial(void **state)
{
    cef_report_result_t  r;

    (void) state;

    /* tests/bayesian/test_tests.py TestBinom.test_bayesian_binomial_ab_test
       (EffectBayesianABTest, default improper flat prior) */
    r = compare(CEF_REPORT_BINOMIAL, arm("control", 100, 49, 49),
                arm("b", 100, 51, 51), &fixed);
    assert_true(r.valid);
    near(r.relative.lift, 0.04082, R5);
    near(r.relative.se, 0.14725, R5);
    near(r.bayes_lo, -0.24779, R5);
    near(r.bayes_hi, 0.32943, R5);
    near(r.chance_to_win, 0.60918, R5);
    near(r.risk_control, 0.0814, R5);
    near(r.risk_arm, 0.04058, R5);
}


static void
test_bayes_mean(void **state)
{
    cef_report_result_t  r;

    (void) state;

    /* tests/bayesian/test_tests.py TestNorm.test_bayesian_gaussian_ab_test */
    r = compare(CEF_REPORT_MEAN, arm("control", 10, 100, 1002.25),
                arm("b", 10, 105, 1111.5), &fixed);
    assert_true(r.valid);
    near(r.relative.lift, 0.05, R5);
    near(r.relative.se, 0.03572, R5);
    near(r.bayes_lo, -0.02, R5);
    near(r.bayes_hi, 0.12, R5);
    near(r.chance_to_win, 0.91923, R5);
    near(r.risk_control, 0.05131, R5);
    near(r.risk_arm, 0.00131, R5);
}


static void
test_bayes_far_tail(void **state)
{
    cef_report_result_t  r;

    (void) state;

    /* an overwhelming effect (relative se ~ 1e-3, lift 1): gbstats'
       tests/test_utils.py TestTruncatedNormalMean.test_no_overflow_at_
       repro_point guards the same tail; the risks stay finite: keeping
       the control loses the whole lift, choosing the arm nothing */
    r = compare(CEF_REPORT_BINOMIAL, arm("control", 1e9, 2.5e8, 2.5e8),
                arm("b", 1e9, 5e8, 5e8), &fixed);
    assert_true(r.valid);
    near(r.chance_to_win, 1, 1e-15);
    near(r.risk_control, r.relative.lift, 1e-12);
    assert_true(r.risk_arm >= 0 && r.risk_arm < 1e-300);
}


static void
test_no_visitors(void **state)
{
    double               srm;
    cef_report_arm_t     arms[3];
    cef_report_test_t    t;
    cef_report_result_t  res[3];

    (void) state;

    /* tests/bayesian/test_tests.py TestBinom.test_missing_data: both arms
       empty; gbstats answers its default output, we a note */
    arms[0] = arm("control", 0, 0, 0);
    arms[1] = arm("b", 0, 0, 0);
    arms[2] = arm("c", 10, 1, 1);
    memset(&t, 0, sizeof(t));
    t.metric = CEF_REPORT_BINOMIAL;
    t.narms = 3;
    t.arms = arms;

    assert_int_equal(cef_report_stats_analyse(&t, &fixed, res, &srm), 0);
    assert_false(res[1].valid);
    assert_string_equal(res[1].note, "the control has no visitors");
    assert_true(isnan(res[0].mean) && isnan(res[1].mean));
    near(res[2].mean, 0.1, 1e-15);

    t.control = 2;
    assert_int_equal(cef_report_stats_analyse(&t, &fixed, res, &srm), 0);
    assert_string_equal(res[0].note, "no visitors");
    assert_string_equal(res[1].note, "no visitors");
}


static void
test_zero_variance(void **state)
{
    cef_report_result_t  r;

    (void) state;

    /* tests/frequentist/test_tests.py
       TestTwoSidedTTest.test_two_sided_ttest_missing_variance: n = 2 makes
       the control's variance negative */
    r = compare(CEF_REPORT_MEAN, GB_A(2), GB_B, &fixed);
    assert_false(r.valid);
    assert_string_equal(r.note, "zero variance in the control");

    /* a binomial control without conversions */
    r = compare(CEF_REPORT_BINOMIAL, arm("control", 50, 0, 0),
                arm("b", 50, 5, 5), &fixed);
    assert_false(r.valid);
    assert_string_equal(r.note, "zero variance in the control");

    /* every visitor of the arm converted */
    r = compare(CEF_REPORT_BINOMIAL, arm("control", 50, 5, 5),
                arm("b", 50, 50, 50), &fixed);
    assert_string_equal(r.note, "zero variance in this arm");

    /* one visitor: no variance (statistics.py, n <= 1) */
    r = compare(CEF_REPORT_MEAN, arm("control", 50, 5, 9),
                arm("b", 1, 3, 9), &fixed);
    assert_string_equal(r.note, "zero variance in this arm");
}


static void
test_edges_without_division_by_zero(void **state)
{
    cef_report_result_t  r;

    (void) state;

    /* the binary traps float division by zero (mk/report_stats.mk) */

    /* a binomial arm of one visitor with a fractional sum has a variance
       but no Welch degrees of freedom */
    r = compare(CEF_REPORT_BINOMIAL, arm("control", 50, 5, 5),
                arm("b", 1, 0.5, 0.5), &fixed);
    assert_string_equal(r.note, "a single visitor");
    r = compare(CEF_REPORT_BINOMIAL, arm("control", 1, 0.5, 0.5),
                arm("b", 50, 5, 5), &fixed);
    assert_string_equal(r.note, "the control has a single visitor");

    /* a control mean so small that its square underflows */
    r = compare(CEF_REPORT_MEAN, arm("control", 2, 1e-200, 1e-200),
                arm("b", 2, 3, 5), &fixed);
    assert_false(r.valid);
    assert_string_equal(r.note, "beyond double precision");

    /* values so large that the variance overflows */
    r = compare(CEF_REPORT_MEAN, arm("control", 2, 1e200, 1e308),
                arm("b", 2, 3e200, 1e308), &fixed);
    assert_false(r.valid);
    assert_non_null(r.note);

    /* a huge test: the limit of the t distribution is the normal */
    r = compare(CEF_REPORT_BINOMIAL, arm("control", 4e15, 1e15, 1e15),
                arm("b", 4e15, 1.0000001e15, 1.0000001e15), &fixed);
    assert_true(r.valid);
    near((r.relative.hi - r.relative.lift) / r.relative.se, 1.959964, 1e-5);
}


static void
test_control_mean_zero(void **state)
{
    cef_report_result_t  r;

    (void) state;

    /* values -1 and 1: variance 2, mean 0 (gbstats:
       ZERO_NEGATIVE_BASELINE_VARIATION) */
    r = compare(CEF_REPORT_MEAN, arm("control", 2, 0, 2),
                arm("b", 2, 2, 4), &fixed);
    assert_false(r.valid);
    assert_string_equal(r.note, "the control's mean is 0 (no relative lift)");
}


static void
test_multi_arm(void **state)
{
    size_t               i;
    double               srm;
    cef_report_arm_t     arms[3];
    cef_report_test_t    t;
    cef_report_result_t  res[3], pair;

    (void) state;

    /* each arm against the control alone, whatever the order */
    arms[0] = arm("a", 3461, 2422.7, 134698.29);
    arms[1] = GB_A(3407);
    arms[2] = arm("c", 3300, 1500, 60000);
    memset(&t, 0, sizeof(t));
    t.metric = CEF_REPORT_MEAN;
    t.control = 1;
    t.narms = 3;
    t.arms = arms;

    assert_int_equal(cef_report_stats_analyse(&t, &fixed, res, &srm), 0);
    assert_false(res[1].valid);
    assert_null(res[1].note);

    for (i = 0; i < 3; i += 2) {
        pair = compare(CEF_REPORT_MEAN, arms[1], arms[i], &fixed);
        assert_memory_equal(&pair, &res[i], sizeof(pair));
    }

    /* tests/frequentist/test_tests.py test_two_sided_ttest again */
    near(res[0].relative.p, 0.06191, R5);

    t.narms = 1;
    t.control = 0;
    assert_int_equal(cef_report_stats_analyse(&t, &fixed, res, &srm), -1);
    t.narms = 3;
    t.control = 3;
    assert_int_equal(cef_report_stats_analyse(&t, &fixed, res, &srm), -1);
}


static double
srm(const double *n, const double *w, size_t k)
{
    size_t            i;
    cef_report_arm_t  arms[8];

    for (i = 0; i < k; i++) {
        arms[i] = arm("x", n[i], 0, 0);
        arms[i].weight = w[i];
    }

    return cef_report_stats_srm(arms, k);
}


static void
test_srm(void **state)
{
    (void) state;

    /* tests/test_gbstats.py TestHelpers.test_srm (9 decimals) */
    near(srm((double[]) { 1000, 1200 }, (double[]) { 0.5, 0.5 }, 2),
         0.000020079, 5.000001e-10);

    /* tests/test_utils.py TestCheckSRM.test_zero_weight_variant_skipped_
       df_adjusted: 400 visitors expected 200/200 over the two weighted
       arms, x = 100^2/200 = 50, one degree of freedom; chi2(1).sf(x) =
       erfc(sqrt(x/2)) computed here with libm, not GSL */
    near(srm((double[]) { 100, 100, 200 }, (double[]) { 0.5, 0, 0.5 }, 3),
         erfc(5.0), 1e-20);

    /* TestCheckSRM.test_no_users */
    near(srm((double[]) { 0, 0 }, (double[]) { 0.5, 0.5 }, 2), 1, 0);

    /* TestCheckSRM.test_three_variants_all_positive with the observed
       split exactly the weights, and test_no_srm_when_split_matches */
    near(srm((double[]) { 100, 150, 250 }, (double[]) { 0.2, 0.3, 0.5 }, 3),
         1, 1e-15);
    near(srm((double[]) { 500, 500 }, (double[]) { 0.5, 0.5 }, 2), 1, 1e-15);

    /* TestCheckSRM.test_srm_detected_when_split_is_wrong */
    assert_true(srm((double[]) { 200, 100 }, (double[]) { 0.5, 0.5 }, 2)
                < 0.05);

    /* weights need not sum to 1: 10% holdout as 1000 / 9000 basis points */
    near(srm((double[]) { 100, 900 }, (double[]) { 1000, 9000 }, 2), 1,
         1e-15);

    /* no test: gbstats returns 1 for fewer than two weighted arms
       (TestCheckSRM.test_only_one_valid_variant_returns_1), we NaN; and
       NaN for an unknown weight */
    assert_true(isnan(srm((double[]) { 100, 50 }, (double[]) { 0.5, 0 }, 2)));
    assert_true(isnan(srm((double[]) { 100, 50 }, (double[]) { 0.5, -1 }, 2)));
}


/* --- cef-report stats input --------------------------------------------- */


static int
read_suff(const char *json, cef_report_test_t *t, char *err, size_t len)
{
    int    rc;
    FILE  *f;

    f = fmemopen((void *) json, strlen(json), "r");
    assert_non_null(f);
    rc = cef_report_suff_read(f, "in.json", t, NULL, err, len);
    fclose(f);

    return rc;
}


static void
test_suff_issue_example(void **state)
{
    char               err[512];
    cef_report_test_t  t;

    (void) state;

    /* the example of issue 18 */
    assert_int_equal(read_suff(
        "{\"metric\": \"binomial\", \"control\": \"control\",\n"
        " \"arms\": [{\"name\": \"control\", \"weight\": 0.5, \"n\": 3407, "
        "\"sum\": 1396.87, \"sum_squares\": 52377.9767},\n"
        "          {\"name\": \"b\", \"weight\": 0.5, \"n\": 3461, "
        "\"sum\": 2422.7, \"sum_squares\": 134698.29}]}\n",
        &t, err, sizeof(err)), 0);

    assert_int_equal(t.metric, CEF_REPORT_BINOMIAL);
    assert_int_equal(t.narms, 2);
    assert_int_equal(t.control, 0);
    assert_string_equal(t.arms[1].name, "b");
    near(t.arms[1].n, 3461, 0);
    near(t.arms[1].sum, 2422.7, 0);
    near(t.arms[1].sum_squares, 2422.7, 0);   /* binomial: ignored */
    near(t.arms[0].weight, 0.5, 0);
    assert_null(t.experiment);
    cef_report_suff_free(&t);

    /* control by name anywhere, weights optional, a mean metric */
    assert_int_equal(read_suff(
        "{\"metric\":\"mean\",\"control\":\"base\",\"arms\":["
        "{\"name\":\"x\",\"n\":2,\"sum\":3,\"sum_squares\":5},"
        "{\"name\":\"base\",\"n\":2,\"sum\":2,\"sum_squares\":2}]}",
        &t, err, sizeof(err)), 0);
    assert_int_equal(t.metric, CEF_REPORT_MEAN);
    assert_int_equal(t.control, 1);
    near(t.arms[0].weight, -1, 0);
    near(t.arms[0].sum_squares, 5, 0);
    cef_report_suff_free(&t);

    /* without "control": the arm named control */
    assert_int_equal(read_suff(
        "{\"metric\":\"binomial\",\"arms\":[{\"name\":\"treatment\",\"n\":2,"
        "\"sum\":1},{\"name\":\"control\",\"n\":2,\"sum\":1}]}",
        &t, err, sizeof(err)), 0);
    assert_int_equal(t.control, 1);
    cef_report_suff_free(&t);
}


static void
test_suff_errors(void **state)
{
    size_t             i;
    char               err[512];
    cef_report_test_t  t;

    static const struct {
        const char  *in;
        const char  *err;
    } cases[] = {
        { "[1, 2]",
          "in.json: expected one JSON object with \"metric\" and \"arms\"" },
        { "{\"metric\": \"binomial\",\n \"arms\": [}",
          "in.json: line 2, column 11: invalid JSON: " },
        { "{\"metric\":\"binomial\",\"metric\":\"mean\",\"arms\":[]}",
          "in.json: line 1, column " },
        { "{\"metric\":\"binomial\",\"arms\":[],\"alpha\":1}",
          "in.json: unknown member \"alpha\" (expected metric, control, "
          "arms)" },
        { "{\"arms\":[]}",
          "in.json: member \"metric\" is missing (\"binomial\" or \"mean\")" },
        { "{\"metric\":\"ratio\",\"arms\":[]}",
          "in.json: member \"metric\": expected \"binomial\" or \"mean\"" },
        { "{\"metric\":\"mean\",\"arms\":[{\"name\":\"a\",\"n\":1,\"sum\":1,"
          "\"sum_squares\":1}]}",
          "in.json: member \"arms\": expected an array of at least two "
          "arms" },
        { "{\"metric\":\"mean\",\"arms\":[1,2]}",
          "in.json: arms[0]: expected an object with \"name\", \"n\" and "
          "\"sum\"" },
        { "{\"metric\":\"binomial\",\"arms\":[{\"n\":1,\"sum\":1},{}]}",
          "in.json: arms[0]: member \"name\": expected a non-empty string" },
        { "{\"metric\":\"binomial\",\"arms\":[{\"name\":\"a\",\"n\":1,"
          "\"sum\":1,\"sums\":1},{}]}",
          "in.json: arms[0] (\"a\"): unknown member \"sums\" (expected name, "
          "weight, n, sum, sum_squares)" },
        { "{\"metric\":\"binomial\",\"arms\":[{\"name\":\"a\",\"sum\":1},{}]}",
          "in.json: arms[0] (\"a\"): member \"n\" is missing" },
        { "{\"metric\":\"binomial\",\"arms\":[{\"name\":\"a\",\"n\":\"9\","
          "\"sum\":1},{}]}",
          "in.json: arms[0] (\"a\"): member \"n\": expected a number" },
        { "{\"metric\":\"binomial\",\"arms\":[{\"name\":\"a\",\"n\":9.5,"
          "\"sum\":1},{}]}",
          "in.json: arms[0] (\"a\"): member \"n\": expected a whole number "
          "of visitors >= 0" },
        { "{\"metric\":\"binomial\",\"arms\":[{\"name\":\"control\",\"n\":9,"
          "\"sum\":1},{\"name\":\"b\",\"n\":9,\"sum\":10}]}",
          "in.json: arms[1] (\"b\"): member \"sum\": expected the converting "
          "visitors, 0 to n (9)" },
        { "{\"metric\":\"mean\",\"arms\":[{\"name\":\"a\",\"n\":9,"
          "\"sum\":1},{}]}",
          "in.json: arms[0] (\"a\"): member \"sum_squares\" is missing (a "
          "mean metric needs it)" },
        { "{\"metric\":\"mean\",\"arms\":[{\"name\":\"a\",\"n\":2,"
          "\"sum\":10,\"sum_squares\":5},{}]}",
          "in.json: arms[0] (\"a\"): member \"sum_squares\": 5 cannot be the "
          "sum of squares of 2 values summing to 10" },
        { "{\"metric\":\"binomial\",\"arms\":[{\"name\":\"a\",\"n\":2,"
          "\"sum\":1,\"weight\":-0.5},{}]}",
          "in.json: arms[0] (\"a\"): member \"weight\": expected a share "
          ">= 0" },
        { "{\"metric\":\"binomial\",\"arms\":[{\"name\":\"a\",\"n\":2,"
          "\"sum\":1},{\"name\":\"a\",\"n\":2,\"sum\":1}]}",
          "in.json: arms[1]: duplicate arm name \"a\"" },
        { "{\"metric\":\"binomial\",\"arms\":[{\"name\":\"control\",\"n\":2,"
          "\"sum\":1,\"weight\":1},{\"name\":\"b\",\"n\":2,\"sum\":1}]}",
          "in.json: member \"weight\": given for 1 of 2 arms (all or none: "
          "the SRM check needs every arm's share)" },
        { "{\"metric\":\"binomial\",\"arms\":[{\"name\":\"a\",\"n\":2,"
          "\"sum\":1},{\"name\":\"b\",\"n\":2,\"sum\":1}]}",
          "in.json: member \"control\" is missing and no arm is named "
          "\"control\"" },
        { "{\"metric\":\"binomial\",\"control\":\"z\\u001b[2J\",\"arms\":["
          "{\"name\":\"a\",\"n\":2,\"sum\":1},{\"name\":\"b\",\"n\":2,"
          "\"sum\":1}]}",
          "in.json: member \"control\": no arm is named \"z?[2J\"" },
        { "",
          "in.json: line 1, column 0: invalid JSON: " },
    };

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&t, 0x5a, sizeof(t));
        if (read_suff(cases[i].in, &t, err, sizeof(err)) != -1) {
            fail_msg("case %zu accepted: %s", i, cases[i].in);
        }

        if (strncmp(err, cases[i].err, strlen(cases[i].err)) != 0) {
            fail_msg("case %zu: got '%s', want '%s'", i, err, cases[i].err);
        }

        assert_null(t.arms);
    }
}


/* --- output ------------------------------------------------------------- */


typedef struct {
    cef_report_arm_t     arms[3];
    cef_report_test_t    t;
    cef_report_result_t  res[3];
    cef_report_out_t     out;
} sample_t;


static void
sample(sample_t *s, double control_n)
{
    memset(s, 0, sizeof(*s));
    s->arms[0] = arm("control", control_n, 41, 41);
    s->arms[1] = arm("b\x1b[31m", 100, 70, 70);
    s->arms[2] = arm("empty", 0, 0, 0);
    s->arms[2].weight = 0;
    s->t.metric = CEF_REPORT_BINOMIAL;
    s->t.narms = 3;
    s->t.arms = s->arms;
    s->t.experiment = "hero-q4";
    s->t.rules = "af15f25d2ba3af15f25d2ba3";
    s->t.goal = "purchase";

    assert_int_equal(cef_report_stats_analyse(&s->t, &fixed, s->res,
                                              &s->out.srm_p), 0);
    s->out.test = &s->t;
    s->out.res = s->res;
}


static char *
written(int (*write)(FILE *, const cef_report_out_t *, size_t,
    const cef_report_opts_t *), const cef_report_out_t *outs, size_t n)
{
    char    *buf;
    size_t   len;
    FILE    *f;

    f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(write(f, outs, n, &fixed), 0);
    fclose(f);

    return buf;
}


static void
test_json_shape(void **state)
{
    char          *buf, *nl;
    json_t        *j, *a;
    json_error_t   je;
    sample_t       s;

    (void) state;

    sample(&s, 100);
    s.out.srm_p = NAN;
    buf = written(cef_report_json_write, &s.out, 1);

    /* one line, one object */
    nl = strchr(buf, '\n');
    assert_non_null(nl);
    assert_string_equal(nl, "\n");

    j = json_loads(buf, 0, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "experiment")),
                        "hero-q4");
    assert_true(json_is_null(json_object_get(j, "salt")));
    assert_string_equal(json_string_value(json_object_get(j, "metric")),
                        "binomial");
    assert_true(json_is_false(json_object_get(j, "holdout")));
    assert_true(json_is_null(json_object_get(j, "srm_p")));
    assert_int_equal(json_array_size(json_object_get(j, "arms")), 3);

    /* the control: name, n, sum, mean only */
    a = json_array_get(json_object_get(j, "arms"), 0);
    assert_int_equal(json_object_size(a), 4);
    assert_int_equal(json_integer_value(json_object_get(a, "n")), 100);
    near(json_real_value(json_object_get(a, "mean")), 0.41, 1e-15);

    /* an analysed arm */
    a = json_array_get(json_object_get(j, "arms"), 1);
    assert_string_equal(json_string_value(json_object_get(a, "name")),
                        "b\x1b[31m");
    near(json_number_value(json_object_get(json_object_get(a, "relative"),
                                           "lift")),
         s.res[1].relative.lift, 1e-14);
    assert_int_equal(json_array_size(json_object_get(
        json_object_get(a, "absolute"), "ci")), 2);
    assert_int_equal(json_array_size(json_object_get(
        json_object_get(a, "bayes"), "risk")), 2);
    assert_null(json_object_get(a, "note"));

    /* an arm without visitors: a note instead of results, mean null */
    a = json_array_get(json_object_get(j, "arms"), 2);
    assert_string_equal(json_string_value(json_object_get(a, "note")),
                        "no visitors");
    assert_true(json_is_null(json_object_get(a, "mean")));
    assert_null(json_object_get(a, "relative"));

    json_decref(j);
    free(buf);
}


static void
test_table(void **state)
{
    char      *buf;
    sample_t   s[2];
    cef_report_out_t  outs[2];

    (void) state;

    sample(&s[0], 100);
    sample(&s[1], 300);
    outs[0] = s[0].out;
    outs[1] = s[1].out;
    buf = written(cef_report_table_write, outs, 2);

    /* headings, one per test, the rules hash cut to 12 */
    assert_non_null(strstr(buf, "hero-q4 @ af15f25d2ba3 · purchase · "
                                "binomial · SRM ok (p = "));
    assert_non_null(strstr(buf, "hero-q4 @ af15f25d2ba3 · purchase · "
                                "binomial · SRM MISMATCH (p = "));
    assert_non_null(strstr(buf, "\n!! SAMPLE RATIO MISMATCH: "));

    /* arm rows; no escape sequence reaches the terminal */
    assert_null(strchr(buf, '\x1b'));
    assert_non_null(strstr(buf, "  b?[31m "));
    assert_non_null(strstr(buf, "(control)"));
    assert_non_null(strstr(buf, "41.00%"));
    assert_non_null(strstr(buf, "no visitors\n"));
    assert_non_null(strstr(buf, "lift (95% CI)"));
    assert_null(strstr(buf, " \n"));

    free(buf);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_welch_relative),
        cmocka_unit_test(test_welch_absolute),
        cmocka_unit_test(test_welch_binomial),
        cmocka_unit_test(test_alpha),
        cmocka_unit_test(test_sequential_mean),
        cmocka_unit_test(test_sequential_binomial),
        cmocka_unit_test(test_sequential_tuning),
        cmocka_unit_test(test_p_value_matches_interval),
        cmocka_unit_test(test_bayes_binomial),
        cmocka_unit_test(test_bayes_mean),
        cmocka_unit_test(test_bayes_far_tail),
        cmocka_unit_test(test_no_visitors),
        cmocka_unit_test(test_zero_variance),
        cmocka_unit_test(test_edges_without_division_by_zero),
        cmocka_unit_test(test_control_mean_zero),
        cmocka_unit_test(test_multi_arm),
        cmocka_unit_test(test_srm),
        cmocka_unit_test(test_suff_issue_example),
        cmocka_unit_test(test_suff_errors),
        cmocka_unit_test(test_json_shape),
        cmocka_unit_test(test_table),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
