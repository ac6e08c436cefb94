/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * A bandit's new arm weights, step by step as GrowthBook computes them
 * (growthbook/growthbook, checked against the files named at each step):
 *
 *   1. the period weighting (back-end/src/integrations/sql/ctes/
 *      bandit-statistics-cte.ts): a period is the time one weights version
 *      was live; each arm's mean is the mean of its per-period means, each
 *      period weighted by its share of ALL visitors, and the variance of
 *      that mean is sum(weight^2 * s^2 / n) over the periods, so that the
 *      bandit's own shifts of traffic between periods (when the true rates
 *      drift) do not bias it;
 *   2. the posterior (gbstats/bayesian/bandits.py, Bandits.posterior_*,
 *      with gbstats.py preprocess_bandits' GaussianPrior(0, 1e4, proper)):
 *      precision 1/1e4 + 1/variance (0 for a variance of 0);
 *   3. Thompson sampling (Bandits.compute_result): draws of all arms'
 *      posteriors at once, 10 000 by default; an arm's weight is the share
 *      of draws in which it is best, or with top-two (the default) the
 *      share of draws in which it is best or second best
 *      (Bandits.top_two_weights);
 *   4. the floor (min_variation_weight 0.01): weights below it are raised
 *      to it, then all are divided by their sum;
 *   5. no reweighting until every arm has 100 units (enough_units): the
 *      live weights stay.
 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "cef_report_bandit.h"


static int cef_report_bandit_alloc(cef_report_bandit_result_t *res,
    size_t narms);
static void cef_report_bandit_draw(const cef_report_bandit_opts_t *opts,
    gsl_rng *rng, size_t narms, const double *mean, const double *sd,
    double *best, double *weights);
static void cef_report_bandit_floor(double *w, size_t narms, double floor);


int
cef_report_bandit_compute(const cef_report_bandit_input_t *in,
    const cef_report_bandit_opts_t *opts, cef_report_bandit_result_t *res)
{
    size_t    i;
    double    prior, precision;
    gsl_rng  *rng;

    if (cef_report_bandit_alloc(res, in->narms) != 0) {
        return -1;
    }

    /* GSL's default handler aborts on a domain error: report instead */
    gsl_set_error_handler_off();

    rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (rng == NULL) {
        cef_report_bandit_result_free(res);
        return -1;
    }

    gsl_rng_set(rng, opts->seed);

    prior = 1 / CEF_REPORT_BANDIT_PRIOR_VARIANCE;
    res->updated = 1;

    for (i = 0; i < in->narms; i++) {
        cef_report_bandit_pool(in, i, &res->exposures[i], &res->mean[i],
                               &res->variance[i]);

        /* gbstats: data precision n / (n * V), 0 when the variance is 0 */
        precision = prior + (res->variance[i] > 0 ? 1 / res->variance[i] : 0);
        res->post_mean[i] = (res->variance[i] > 0
                             ? res->mean[i] / res->variance[i] : 0)
                            / precision;
        res->post_sd[i] = sqrt(1 / precision);

        if (res->exposures[i] < opts->min_exposures) {
            res->updated = 0;
        }
    }

    cef_report_bandit_draw(opts, rng, in->narms, res->post_mean,
                           res->post_sd, res->best, res->weights);
    gsl_rng_free(rng);

    if (res->updated) {
        cef_report_bandit_floor(res->weights, in->narms, opts->floor);

    } else {
        res->note = "an arm has fewer exposures than the minimum; the live "
                    "weights stay";
        cef_report_bandit_current(in, res->weights);
    }

    cef_report_bandit_bp(res->weights, in->narms, res->bp);
    res->srm_p = cef_report_bandit_srm(in);

    return 0;
}


void
cef_report_bandit_result_free(cef_report_bandit_result_t *res)
{
    free(res->exposures);
    free(res->mean);
    free(res->variance);
    free(res->post_mean);
    free(res->post_sd);
    free(res->best);
    free(res->weights);
    free(res->bp);
    memset(res, 0, sizeof(cef_report_bandit_result_t));
}


/*
 * GrowthBook's SQL lets a period in which the arm had no visitors count
 * with a mean of 0, which pulls the arm's mean towards 0; here such a
 * period is left out of that arm's mean and the other periods' weights are
 * scaled up to sum to 1 (the same numbers whenever every arm has visitors
 * in every period).
 */
void
cef_report_bandit_pool(const cef_report_bandit_input_t *in, size_t arm,
    double *n, double *mean, double *variance)
{
    size_t   p, i, k;
    double   total, share, shares, m, v, s2, np, sp, qp, *period;

    total = 0;
    for (k = 0; k < in->nperiods * in->narms; k++) {
        total += in->n[k];
    }

    *n = 0;
    *mean = 0;
    *variance = 0;

    if (total <= 0) {
        return;
    }

    shares = 0;
    m = 0;
    v = 0;

    for (p = 0; p < in->nperiods; p++) {
        period = &in->n[p * in->narms];
        np = period[arm];

        if (np <= 0) {
            continue;
        }

        share = 0;
        for (i = 0; i < in->narms; i++) {
            share += period[i];
        }

        share /= total;
        sp = in->sum[p * in->narms + arm];
        qp = in->sum_squares[p * in->narms + arm];

        /* the sample variance, 0 for one visitor (as the SQL) */
        s2 = np > 1 ? (qp - sp * sp / np) / (np - 1) : 0;
        if (s2 < 0) {
            s2 = 0;
        }

        *n += np;
        shares += share;
        m += share * sp / np;
        v += share * share * s2 / np;
    }

    if (shares <= 0) {
        return;
    }

    *mean = m / shares;
    *variance = v / (shares * shares);
}


void
cef_report_bandit_current(const cef_report_bandit_input_t *in, double *w)
{
    size_t         i;
    double         sum;
    const double  *last;

    last = &in->weights[(in->nperiods - 1) * in->narms];
    sum = 0;

    for (i = 0; i < in->narms; i++) {
        sum += last[i] > 0 ? last[i] : 0;
    }

    for (i = 0; i < in->narms; i++) {
        if (sum > 0) {
            w[i] = (last[i] > 0 ? last[i] : 0) / sum;
        } else {
            w[i] = 1.0 / in->narms;
        }
    }
}


double
cef_report_bandit_srm(const cef_report_bandit_input_t *in)
{
    size_t         p, i, df;
    double         x, e, d, t, wsum, *expected, *observed;
    const double  *w, *n;

    expected = calloc(2 * in->narms, sizeof(double));
    if (expected == NULL) {
        return NAN;
    }

    observed = expected + in->narms;

    for (p = 0; p < in->nperiods; p++) {
        w = &in->weights[p * in->narms];
        n = &in->n[p * in->narms];
        t = 0;
        wsum = 0;

        for (i = 0; i < in->narms; i++) {
            t += n[i];
            wsum += w[i];
            observed[i] += n[i];
        }

        if (!(wsum > 0)) {
            free(expected);
            return NAN;       /* this period's weights are unknown */
        }

        for (i = 0; i < in->narms; i++) {
            expected[i] += t * w[i] / wsum;
        }
    }

    x = 0;
    df = 0;

    for (i = 0; i < in->narms; i++) {
        e = expected[i];

        if (e > 0) {
            d = observed[i] - e;
            x += d * d / e;
            df++;
        }
    }

    free(expected);

    if (df < 2) {
        return NAN;
    }

    return gsl_cdf_chisq_Q(x, (double) (df - 1));
}


void
cef_report_bandit_bp(const double *w, size_t narms, uint32_t *bp)
{
    size_t    i, j, best;
    double    x, sum, top, *frac;
    uint32_t  total;

    sum = 0;
    for (i = 0; i < narms; i++) {
        sum += w[i] > 0 ? w[i] : 0;
    }

    frac = calloc(narms, sizeof(double));
    total = 0;

    for (i = 0; i < narms; i++) {
        x = w[i] > 0 && sum > 0 ? w[i] / sum * CEF_REPORT_BANDIT_BP
                                : (sum > 0 ? 0 : 1.0 * CEF_REPORT_BANDIT_BP
                                                 / narms);
        bp[i] = (uint32_t) floor(x);
        total += bp[i];

        if (frac != NULL) {
            frac[i] = x - floor(x);
        }
    }

    /* fewer than narms points are left: one each to the largest
       fractions */
    for (j = 0; total < CEF_REPORT_BANDIT_BP; j++, total++) {
        best = 0;

        if (frac != NULL) {
            top = -1;

            for (i = 0; i < narms; i++) {
                if (frac[i] > top) {
                    top = frac[i];
                    best = i;
                }
            }

            frac[best] = -1;
        }

        bp[best]++;
    }

    free(frac);
}


int
cef_report_bandit_from_test(const cef_report_test_t *t,
    cef_report_bandit_input_t *in)
{
    size_t                       i, k, np, na;
    const cef_report_periods_t  *pp = &t->periods;

    memset(in, 0, sizeof(cef_report_bandit_input_t));

    /* a bandit's logs: one period per weights version; else one period
       whose live weights are the arms' */
    np = pp->nperiods > 0 ? pp->nperiods : 1;
    na = t->narms;

    in->metric = t->metric;
    in->narms = na;
    in->nperiods = np;
    in->names = calloc(na, sizeof(char *));
    in->version = calloc(np, sizeof(uint64_t));
    in->weights = calloc(np * na, sizeof(double));
    in->n = calloc(np * na, sizeof(double));
    in->sum = calloc(np * na, sizeof(double));
    in->sum_squares = calloc(np * na, sizeof(double));

    if (in->names == NULL || in->version == NULL || in->weights == NULL
        || in->n == NULL || in->sum == NULL || in->sum_squares == NULL)
    {
        goto failed;
    }

    if ((t->experiment != NULL
         && (in->experiment = strdup(t->experiment)) == NULL)
        || (t->salt != NULL && (in->salt = strdup(t->salt)) == NULL)
        || (t->goal != NULL && (in->goal = strdup(t->goal)) == NULL))
    {
        goto failed;
    }

    for (i = 0; i < na; i++) {
        in->names[i] = strdup(t->arms[i].name);
        if (in->names[i] == NULL) {
            goto failed;
        }

        if (pp->nperiods > 0) {
            continue;
        }

        in->weights[i] = t->arms[i].weight > 0 ? t->arms[i].weight : 0;
        in->n[i] = t->arms[i].n;
        in->sum[i] = t->arms[i].sum;
        in->sum_squares[i] = t->metric == CEF_REPORT_BINOMIAL
                             ? t->arms[i].sum : t->arms[i].sum_squares;
    }

    for (k = 0; k < pp->nperiods; k++) {
        in->version[k] = pp->version[k];

        for (i = 0; i < na; i++) {
            in->weights[k * na + i] = pp->weights[k * na + i] > 0
                                      ? pp->weights[k * na + i] : 0;
            in->n[k * na + i] = pp->n[k * na + i];
            in->sum[k * na + i] = pp->sum[k * na + i];
            in->sum_squares[k * na + i] = t->metric == CEF_REPORT_BINOMIAL
                                          ? pp->sum[k * na + i]
                                          : pp->sum_squares[k * na + i];
        }
    }

    return 0;

failed:

    cef_report_bandit_input_free(in);
    return -1;
}


static int
cef_report_bandit_alloc(cef_report_bandit_result_t *res, size_t narms)
{
    memset(res, 0, sizeof(cef_report_bandit_result_t));

    res->exposures = calloc(narms, sizeof(double));
    res->mean = calloc(narms, sizeof(double));
    res->variance = calloc(narms, sizeof(double));
    res->post_mean = calloc(narms, sizeof(double));
    res->post_sd = calloc(narms, sizeof(double));
    res->best = calloc(narms, sizeof(double));
    res->weights = calloc(narms, sizeof(double));
    res->bp = calloc(narms, sizeof(uint32_t));

    if (res->exposures == NULL || res->mean == NULL || res->variance == NULL
        || res->post_mean == NULL || res->post_sd == NULL
        || res->best == NULL || res->weights == NULL || res->bp == NULL)
    {
        cef_report_bandit_result_free(res);
        return -1;
    }

    return 0;
}


/*
 * The draws: one normal variate per arm and draw, in arm order (a draw of
 * gbstats' multivariate_normal with a diagonal covariance is the same
 * thing); best and weights get the shares.  Ties (arms with the same
 * draw) go to the lower index.
 */
static void
cef_report_bandit_draw(const cef_report_bandit_opts_t *opts, gsl_rng *rng,
    size_t narms, const double *mean, const double *sd, double *best,
    double *weights)
{
    size_t  d, i, first, second;
    double  y, y1, y2;

    /* narms >= 2: every draw has a best and a second best */

    memset(best, 0, narms * sizeof(double));
    memset(weights, 0, narms * sizeof(double));

    for (d = 0; d < opts->draws; d++) {
        first = 0;
        second = 0;
        y1 = -INFINITY;
        y2 = -INFINITY;

        for (i = 0; i < narms; i++) {
            y = mean[i] + sd[i] * gsl_ran_gaussian_ziggurat(rng, 1.0);

            if (y > y1) {
                second = first;
                y2 = y1;
                first = i;
                y1 = y;

            } else if (y > y2) {
                second = i;
                y2 = y;
            }
        }

        best[first] += 1;
        weights[first] += 1;

        if (opts->method == CEF_REPORT_BANDIT_TOP_TWO) {
            weights[second] += 1;
        }
    }

    for (i = 0; i < narms; i++) {
        best[i] /= (double) opts->draws;
        weights[i] /= (double) opts->draws
                      * (opts->method == CEF_REPORT_BANDIT_TOP_TWO ? 2 : 1);
    }
}


/* gbstats: p[p < floor] = floor; p /= sum(p) */
static void
cef_report_bandit_floor(double *w, size_t narms, double floor)
{
    size_t  i;
    double  sum;

    sum = 0;

    for (i = 0; i < narms; i++) {
        if (w[i] < floor) {
            w[i] = floor;
        }

        sum += w[i];
    }

    for (i = 0; i < narms; i++) {
        w[i] /= sum;
    }
}
