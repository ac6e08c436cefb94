/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-report's statistics, as GrowthBook's gbstats defines them
 * (growthbook/growthbook, packages/stats/gbstats: models/statistics.py for
 * the per-arm moments, models/tests.py and utils.py for the effect and its
 * delta-method variance, frequentist/tests.py for the Welch t-test and the
 * asymptotic confidence sequences, bayesian/tests.py for the flat-prior
 * Gaussian model, utils.py check_srm).  GSL supplies the distribution
 * functions.  docs/report.md states every formula and where it was checked;
 * tests/unit/test_report_stats.c replays gbstats' own test cases.
 */

#include <math.h>
#include <string.h>

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_randist.h>

#include "cef_report.h"


/* One arm as the tests see it: gbstats' SampleMeanStatistic or
   ProportionStatistic. */
typedef struct {
    double  n;
    double  mean;
    double  var;
} cef_report_moments_t;


static void cef_report_stats_moments(cef_report_metric_t metric,
    const cef_report_arm_t *arm, cef_report_moments_t *m);
static const char *cef_report_stats_problem(const cef_report_moments_t *a,
    const cef_report_moments_t *b);
static int cef_report_stats_effect(const cef_report_moments_t *a,
    const cef_report_moments_t *b, int relative,
    const cef_report_opts_t *opts, cef_report_effect_t *e);
static void cef_report_stats_bayes(const cef_report_effect_t *rel,
    const cef_report_opts_t *opts, cef_report_result_t *r);


static const cef_report_opts_t  cef_report_stats_defaults = {
    0.05, 0, 5000
};


int
cef_report_stats_analyse(const cef_report_test_t *t,
    const cef_report_opts_t *opts, cef_report_result_t *res, double *srm_p)
{
    size_t                 i;
    cef_report_moments_t   ctl, arm;

    if (srm_p != NULL) {
        *srm_p = NAN;
    }

    if (t->narms < 2 || t->control >= t->narms) {
        return -1;
    }

    if (opts == NULL) {
        opts = &cef_report_stats_defaults;
    }

    /* GSL's default handler aborts on a domain error: report instead */
    gsl_set_error_handler_off();

    memset(res, 0, t->narms * sizeof(cef_report_result_t));

    cef_report_stats_moments(t->metric, &t->arms[t->control], &ctl);

    for (i = 0; i < t->narms; i++) {
        cef_report_stats_moments(t->metric, &t->arms[i], &arm);
        res[i].mean = arm.n > 0 ? arm.mean : NAN;

        if (i == t->control) {
            continue;
        }

        res[i].note = cef_report_stats_problem(&ctl, &arm);
        if (res[i].note != NULL) {
            continue;
        }

        if (cef_report_stats_effect(&ctl, &arm, 1, opts, &res[i].relative)
            != 0
            || cef_report_stats_effect(&ctl, &arm, 0, opts,
                                       &res[i].absolute) != 0)
        {
            res[i].note = "beyond double precision";
            continue;
        }

        cef_report_stats_bayes(&res[i].relative, opts, &res[i]);
        res[i].valid = 1;
    }

    if (srm_p != NULL) {
        *srm_p = cef_report_stats_srm(t->arms, t->narms);
    }

    return 0;
}


/*
 * gbstats' check_srm (utils.py): Pearson's chi-squared over the arms with
 * weight > 0, each expecting its share of ALL visitors (so visitors in an
 * arm configured to take none count against the others), with (arms with
 * weight > 0) - 1 degrees of freedom; 1 without any visitors.  Where
 * gbstats returns 1 for fewer than two such arms we return NaN: there is no
 * test to report.  Any unknown weight (< 0): NaN.
 */
double
cef_report_stats_srm(const cef_report_arm_t *arms, size_t narms)
{
    size_t  i, k;
    double  total, wsum, x, e;

    total = 0;
    wsum = 0;
    k = 0;

    for (i = 0; i < narms; i++) {
        if (!(arms[i].weight >= 0) || !isfinite(arms[i].weight)) {
            return NAN;
        }

        total += arms[i].n;

        if (arms[i].weight > 0) {
            wsum += arms[i].weight;
            k++;
        }
    }

    if (k < 2) {
        return NAN;
    }

    if (total == 0) {
        return 1.0;
    }

    x = 0;

    for (i = 0; i < narms; i++) {
        if (arms[i].weight > 0) {
            e = arms[i].weight / wsum * total;

            if (e > 0) {    /* else a share below double precision: as 0 */
                x += (arms[i].n - e) * (arms[i].n - e) / e;
            }
        }
    }

    return gsl_cdf_chisq_Q(x, (double) (k - 1));
}


/* Bonferroni over n checks: the whole report keeps the alarm rate */
double
cef_report_stats_srm_alpha(size_t nchecks)
{
    return CEF_REPORT_SRM_ALPHA / (double) (nchecks > 0 ? nchecks : 1);
}


/*
 * models/statistics.py: a proportion's variance is p(1 - p) (no n - 1
 * correction), a sample mean's (sum_squares - sum^2/n) / (n - 1), 0 for
 * n <= 1.
 */
static void
cef_report_stats_moments(cef_report_metric_t metric,
    const cef_report_arm_t *arm, cef_report_moments_t *m)
{
    m->n = arm->n;
    m->mean = arm->n > 0 ? arm->sum / arm->n : 0;

    if (metric == CEF_REPORT_BINOMIAL) {
        m->var = m->mean * (1 - m->mean);

    } else if (arm->n <= 1) {
        m->var = 0;

    } else {
        m->var = (arm->sum_squares - arm->sum * arm->sum / arm->n)
                 / (arm->n - 1);
    }
}


/*
 * Why an arm cannot be compared with the control, or NULL: the cases in
 * which gbstats returns its default output (NO_UNITS_IN_VARIATION,
 * ZERO_NEGATIVE_VARIANCE, ZERO_NEGATIVE_BASELINE_VARIATION), never a
 * division by zero.
 */
static const char *
cef_report_stats_problem(const cef_report_moments_t *a,
    const cef_report_moments_t *b)
{
    if (a->n <= 0) {
        return "the control has no visitors";
    }

    if (b->n <= 0) {
        return "no visitors";
    }

    if (!(a->var > 0) || !(b->var > 0)) {
        return a->var > 0 ? "zero variance in this arm"
                          : "zero variance in the control";
    }

    /* Welch's degrees of freedom divide by n - 1 (a binomial arm of one
       visitor has a variance when its sum is fractional) */
    if (a->n < 2 || b->n < 2) {
        return a->n < 2 ? "the control has a single visitor"
                        : "a single visitor";
    }

    if (a->mean == 0) {
        return "the control's mean is 0 (no relative lift)";
    }

    return NULL;
}


/*
 * The lift of b over a, relative ((mb - ma) / ma, variance by the delta
 * method: utils.py frequentist_variance / variance_of_ratios) or absolute
 * (mb - ma, variance vb/nb + va/na); a two-sided Welch t-test with the
 * Welch-Satterthwaite degrees of freedom (frequentist/tests.py
 * TwoSidedTTest), or with --sequential the asymptotic confidence sequence
 * of Waudby-Smith et al. (arXiv 2103.06476v7 eq. 9, 155 and 161, as
 * frequentist/tests.py SequentialTwoSidedTTest computes it).
 *
 * The p-value is 2 Q(|t|) rather than gbstats' 2 (1 - P(|t|)): the same
 * number, without rounding to 0 below 1e-16.  -1 when the numbers leave
 * double precision (a variance that overflows or underflows to 0).
 */
static int
cef_report_stats_effect(const cef_report_moments_t *a,
    const cef_report_moments_t *b, int relative,
    const cef_report_opts_t *opts, cef_report_effect_t *e)
{
    double  var, va, vb, m2, u, dof, t, q, half, n, rho2, la, tr2p1, st2,
            loge, r;

    va = a->var / a->n;
    vb = b->var / b->n;

    if (relative) {
        m2 = a->mean * a->mean;
        if (m2 == 0 || !isfinite(m2)) {
            return -1;
        }

        r = b->mean / a->mean;
        e->lift = (b->mean - a->mean) / a->mean;
        var = (vb + va * r * r) / m2;

    } else {
        e->lift = b->mean - a->mean;
        var = vb + va;
    }

    if (!(var > 0) || !isfinite(var) || !isfinite(e->lift)) {
        return -1;
    }

    e->se = sqrt(var);

    if (!opts->sequential) {
        /* Welch-Satterthwaite, (vb + va)^2 / (vb^2/(nb-1) + va^2/(na-1)),
           in shares of vb + va: no overflow, no underflow */
        u = vb / (vb + va);
        dof = 1 / (u * u / (b->n - 1) + (1 - u) * (1 - u) / (a->n - 1));
        t = fabs(e->lift) / e->se;

        if (isfinite(dof)) {
            e->p = 2 * gsl_cdf_tdist_Q(t, dof);
            q = gsl_cdf_tdist_Pinv(1 - opts->alpha / 2, dof);

        } else {                        /* the limit: the normal */
            e->p = 2 * gsl_cdf_ugaussian_Q(t);
            q = gsl_cdf_ugaussian_Pinv(1 - opts->alpha / 2);
        }

        half = q * e->se;

    } else {
        n = a->n + b->n;
        la = -2 * log(opts->alpha);
        rho2 = (la + log(la + 1)) / opts->tau;
        tr2p1 = n * rho2 + 1;

        /* eq. 9 with s2 = var * n, the per-visitor variance */
        half = sqrt(var * n)
               * sqrt(2 * tr2p1 * log(sqrt(tr2p1) / opts->alpha)
                      / (n * n * rho2));

        /* eq. 155: p = min(1, 1/e-value), in logs against overflow */
        st2 = e->lift * e->lift * n / var;
        loge = rho2 * st2 / (2 * tr2p1) - 0.5 * log(tr2p1);
        e->p = loge > 0 ? exp(-loge) : 1.0;
    }

    e->lo = e->lift - half;
    e->hi = e->lift + half;

    return 0;
}


/*
 * bayesian/tests.py EffectBayesianABTest with the default improper flat
 * prior: the posterior of the relative lift is the normal of the
 * frequentist estimate, N(lift, se^2).  Chance to win P(X > 0); the
 * credible interval at alpha; the risks E[max(X, 0)] of keeping the control
 * and E[max(-X, 0)] of choosing the arm (get_risk's truncated-normal means
 * times their probabilities, in closed form: mu Phi(z) + s phi(z) and
 * s phi(z) - mu Phi(-z), z = mu/s).
 */
static void
cef_report_stats_bayes(const cef_report_effect_t *rel,
    const cef_report_opts_t *opts, cef_report_result_t *r)
{
    double  mu, s, z, pdf;

    mu = rel->lift;
    s = rel->se;
    z = mu / s;
    pdf = gsl_ran_ugaussian_pdf(z);

    r->chance_to_win = gsl_cdf_ugaussian_P(z);
    r->bayes_lo = mu + s * gsl_cdf_ugaussian_Pinv(opts->alpha / 2);
    r->bayes_hi = mu + s * gsl_cdf_ugaussian_Qinv(opts->alpha / 2);
    r->risk_control = mu * gsl_cdf_ugaussian_P(z) + s * pdf;
    r->risk_arm = s * pdf - mu * gsl_cdf_ugaussian_Q(z);

    if (r->risk_arm < 0) {
        r->risk_arm = 0;    /* rounding far in the tail */
    }

    if (r->risk_control < 0) {
        r->risk_control = 0;
    }
}
