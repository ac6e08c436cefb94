/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Part of tools/cef-report (its files and what each exports: cef_report.h).
 *
 * The report of a bandit (docs/report.md#bandits-in-the-report).  A
 * bandit moves traffic towards the arm that looks best, so an arm's
 * visitors come more and more from later periods: when the conversion
 * rate drifts over time (a sale, the weekend), the pooled means mix
 * different periods in different proportions per arm and show a lift
 * nobody caused (Simpson's paradox).  GrowthBook weights each period by
 * its share of all visitors, the same for every arm
 * (back-end/src/integrations/sql/ctes/bandit-statistics-cte.ts, gbstats'
 * BanditPeriodDataSampleMean): cef_report_bandit_pool does that, and the
 * weighted arms go through the ordinary tests as gbstats' sample means
 * (n, mean, per-visitor variance n * var(mean)).  The SRM check expects
 * each version's weights of that version's visitors (gbstats'
 * Bandits.compute_srm); each version is also checked alone, so a skew
 * in one period is not hidden by the others.
 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cef_report_bandit.h"


/* version k alone: the ordinary chi-squared against its weights */
static double
cef_report_periods_srm_one(const cef_report_test_t *t, size_t k,
    cef_report_arm_t *arms)
{
    size_t  i, na = t->narms;

    for (i = 0; i < na; i++) {
        arms[i].name = t->arms[i].name;
        arms[i].weight = t->periods.weights[k * na + i];
        arms[i].n = t->periods.n[k * na + i];
        arms[i].sum = 0;
        arms[i].sum_squares = 0;
    }

    return cef_report_stats_srm(arms, na);
}


int
cef_report_periods_analyse(const cef_report_test_t *t,
    const cef_report_opts_t *opts, cef_report_result_t *res, double *srm_p,
    double *period_srm_p)
{
    int                         rc;
    size_t                      i, k;
    double                      n, mean, var, v;
    cef_report_test_t           w;
    cef_report_arm_t           *arms;
    cef_report_bandit_input_t   in;

    if (t->periods.nperiods == 0) {
        return cef_report_stats_analyse(t, opts, res, srm_p);
    }

    if (t->narms < 2 || t->control >= t->narms) {
        if (srm_p != NULL) {
            *srm_p = NAN;
        }
        return -1;
    }

    arms = calloc(t->narms, sizeof(cef_report_arm_t));
    if (arms == NULL || cef_report_bandit_from_test(t, &in) != 0) {
        free(arms);
        return -1;
    }

    /* each arm as gbstats' SampleMeanStatistic of the weighted moments:
       sum = n m, sum_squares = (n - 1) s2 + n m^2 with s2 = n var(m) */
    for (i = 0; i < t->narms; i++) {
        cef_report_bandit_pool(&in, i, &n, &mean, &var);
        v = n * var;
        arms[i].name = t->arms[i].name;
        arms[i].weight = -1;            /* SRM: per version, below */
        arms[i].n = n;
        arms[i].sum = n * mean;
        arms[i].sum_squares = n > 0 ? (n - 1) * v + n * mean * mean : 0;
    }

    w = *t;
    w.metric = CEF_REPORT_MEAN;
    w.arms = arms;

    rc = cef_report_stats_analyse(&w, opts, res, NULL);

    if (srm_p != NULL) {
        *srm_p = cef_report_bandit_srm(&in);
    }

    for (k = 0; period_srm_p != NULL && k < t->periods.nperiods; k++) {
        period_srm_p[k] = cef_report_periods_srm_one(t, k, arms);
    }

    cef_report_bandit_input_free(&in);
    free(arms);
    return rc;
}
