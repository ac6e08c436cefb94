/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * `cef-report bandit ... LOG...`: the bandit's periods from the logs
 * (docs/report.md#cef-report-bandit).  The log reader gives one test per
 * experiment x goal x metric and rule set, each with a period per weights
 * version (cef_report_periods_t).  The weights belong to (experiment,
 * salt), not to a rule set: editing another slot of the rule file changes
 * its hash, not the bandit.  So the tests of one salt are added up here,
 * arms matched by name, periods by version (said on stderr, never
 * silently); two salts or two goals are the person's choice (--salt,
 * --goal).
 */

#include <stdlib.h>
#include <string.h>

#include "cef_report_bandit.h"
#include "cef_report_logs.h"


/* the index of name in in->names, added (with zeros) if new; or -1 */
static long
cef_report_bandit_logs_arm(cef_report_bandit_input_t *in, const char *name)
{
    size_t  i;
    char  **names;

    for (i = 0; i < in->narms; i++) {
        if (strcmp(in->names[i], name) == 0) {
            return (long) i;
        }
    }

    names = realloc(in->names, (in->narms + 1) * sizeof(char *));
    if (names == NULL) {
        return -1;
    }

    in->names = names;
    if ((names[in->narms] = strdup(name)) == NULL) {
        return -1;
    }

    return (long) in->narms++;
}


/*
 * Adds test t's periods to the arrays (nv versions x na arms, grown here)
 * of in: 0 or -1 (out of memory).  A version's weights are the first
 * known ones.
 */
static int
cef_report_bandit_logs_add(cef_report_bandit_input_t *in, size_t *cap_v,
    size_t *cap_a, const cef_report_test_t *t)
{
    size_t                     k, i, v, a, np, nv, na;
    long                       arm;
    cef_report_bandit_input_t  one;
    double                    *arr[4], *grown;
    uint64_t                  *ver;

    if (cef_report_bandit_from_test(t, &one) != 0) {
        return -1;
    }

    for (k = 0; k < one.nperiods; k++) {
        for (v = 0; v < in->nperiods && in->version[v] != one.version[k];
             v++)
        {
            ;
        }

        for (i = 0; i < one.narms; i++) {
            arm = cef_report_bandit_logs_arm(in, one.names[i]);

            /* grow to (versions, arms) and re-lay the rows */
            nv = v < in->nperiods ? in->nperiods : in->nperiods + 1;
            na = in->narms;
            if (arm < 0) {
                goto failed;
            }

            if (nv > *cap_v || na > *cap_a) {
                size_t  cv = nv > *cap_v ? nv * 2 : *cap_v;
                size_t  ca = na > *cap_a ? na * 2 : *cap_a;

                arr[0] = in->weights;
                arr[1] = in->n;
                arr[2] = in->sum;
                arr[3] = in->sum_squares;
                for (a = 0; a < 4; a++) {
                    grown = calloc(cv * ca, sizeof(double));
                    if (grown == NULL) {
                        goto failed;
                    }
                    for (np = 0; np < in->nperiods; np++) {
                        memcpy(&grown[np * ca], &arr[a][np * *cap_a],
                               *cap_a * sizeof(double));
                    }
                    free(arr[a]);
                    arr[a] = grown;
                }
                in->weights = arr[0];
                in->n = arr[1];
                in->sum = arr[2];
                in->sum_squares = arr[3];

                ver = realloc(in->version, cv * sizeof(uint64_t));
                if (ver == NULL) {
                    goto failed;
                }
                in->version = ver;
                *cap_v = cv;
                *cap_a = ca;
            }

            if (v == in->nperiods) {
                in->version[in->nperiods++] = one.version[k];
            }

            a = v * *cap_a + (size_t) arm;
            in->n[a] += one.n[k * one.narms + i];
            in->sum[a] += one.sum[k * one.narms + i];
            in->sum_squares[a] += one.sum_squares[k * one.narms + i];
        }

        /* the version's weights: the first rule set that knew them */
        for (i = 0, a = 0; i < one.narms; i++) {
            a |= in->weights[v * *cap_a
                             + (size_t) cef_report_bandit_logs_arm(in,
                                            one.names[i])] > 0;
        }

        for (i = 0; !a && i < one.narms; i++) {
            in->weights[v * *cap_a
                        + (size_t) cef_report_bandit_logs_arm(in,
                                       one.names[i])]
                = one.weights[k * one.narms + i];
        }
    }

    cef_report_bandit_input_free(&one);
    return 0;

failed:

    cef_report_bandit_input_free(&one);
    return -1;
}


/* the rows laid out cap_a wide -> narms wide, by version ascending */
static int
cef_report_bandit_logs_pack(cef_report_bandit_input_t *in, size_t cap_a)
{
    size_t     k, m, r, i, na = in->narms, nv = in->nperiods;
    size_t    *order;
    double    *arr[4], *packed;
    uint64_t  *ver;

    order = calloc(nv + 1, sizeof(size_t));
    ver = calloc(nv + 1, sizeof(uint64_t));
    if (order == NULL || ver == NULL) {
        free(order);
        free(ver);
        return -1;
    }

    for (k = 0; k < nv; k++) {
        for (m = 0, r = 0; m < nv; m++) {
            r += in->version[m] < in->version[k];
        }
        order[r] = k;
        ver[r] = in->version[k];
    }

    arr[0] = in->weights;
    arr[1] = in->n;
    arr[2] = in->sum;
    arr[3] = in->sum_squares;

    for (m = 0; m < 4; m++) {
        packed = calloc(nv * na + 1, sizeof(double));
        if (packed == NULL) {
            free(order);
            free(ver);
            return -1;
        }
        for (r = 0; r < nv; r++) {
            for (i = 0; i < na; i++) {
                packed[r * na + i] = arr[m][order[r] * cap_a + i];
            }
        }
        free(arr[m]);
        arr[m] = packed;
    }

    in->weights = arr[0];
    in->n = arr[1];
    in->sum = arr[2];
    in->sum_squares = arr[3];
    free(in->version);
    in->version = ver;
    free(order);
    return 0;
}


int
cef_report_bandit_logs(const char *experiment, const char *salt,
    const char *goal, int metric, char *const *paths, size_t npaths,
    cef_report_bandit_input_t *in)
{
    int                         rc;
    size_t                      ntests, i, m, cap_v, cap_a, nsets;
    cef_report_test_t          *tests;
    cef_report_logs_opts_t      lo;
    cef_report_logs_summary_t   sum;
    const cef_report_test_t    *first, *t;

    memset(in, 0, sizeof(cef_report_bandit_input_t));
    memset(&lo, 0, sizeof(lo));
    lo.experiment = experiment;
    lo.goal = goal;

    if (cef_report_logs_read(&lo, paths, npaths, &tests, &ntests, &sum)
        != 0)
    {
        return CEF_REPORT_EXIT_PROBLEM;
    }

    if (metric < 0) {
        metric = CEF_REPORT_BINOMIAL;
    }

    /* the tests of the bandit: one salt, one goal, the metric */
    first = NULL;
    rc = CEF_REPORT_EXIT_OK;
    for (i = 0, m = 0; i < ntests; i++) {
        t = &tests[i];
        if ((int) t->metric != metric
            || (salt != NULL && strcmp(t->salt, salt) != 0))
        {
            continue;
        }
        if (first == NULL) {
            first = t;
        }
        if (strcmp(t->salt, first->salt) != 0) {
            fprintf(stderr, "cef-report bandit: %s has two salts in the "
                    "logs, \"%.64s\" and \"%.64s\": name one with --salt\n",
                    experiment, first->salt, t->salt);
            rc = CEF_REPORT_EXIT_USAGE;
            break;
        }
        if ((first->goal == NULL) != (t->goal == NULL)
            || (t->goal != NULL && strcmp(t->goal, first->goal) != 0))
        {
            fprintf(stderr, "cef-report bandit: the logs have two goals, "
                    "\"%.64s\" and \"%.64s\": name one with --goal\n",
                    first->goal ? first->goal : "", t->goal ? t->goal : "");
            rc = CEF_REPORT_EXIT_USAGE;
            break;
        }
        m++;
    }

    if (rc == CEF_REPORT_EXIT_OK && first == NULL) {
        fprintf(stderr, "cef-report bandit: no exposure of experiment %s%s%s "
                "with a %s in the logs\n", experiment,
                salt ? " with salt " : "", salt ? salt : "",
                metric == CEF_REPORT_BINOMIAL ? "conversion" : "value");
        rc = CEF_REPORT_EXIT_PROBLEM;
    }

    if (rc != CEF_REPORT_EXIT_OK) {
        cef_report_logs_free(tests, ntests);
        return rc;
    }

    /* added up over the rule sets of that salt */
    cap_v = cap_a = 0;
    nsets = 0;
    in->metric = (cef_report_metric_t) metric;
    if ((in->experiment = strdup(experiment)) == NULL
        || (in->salt = strdup(first->salt)) == NULL
        || (first->goal != NULL && (in->goal = strdup(first->goal)) == NULL))
    {
        goto nomem;
    }

    for (i = 0; i < ntests; i++) {
        t = &tests[i];
        if ((int) t->metric != metric || strcmp(t->salt, first->salt) != 0) {
            continue;
        }
        if (cef_report_bandit_logs_add(in, &cap_v, &cap_a, t) != 0) {
            goto nomem;
        }
        nsets++;
    }

    if (cef_report_bandit_logs_pack(in, cap_a) != 0) {
        goto nomem;
    }

    if (nsets > 1) {
        fprintf(stderr, "cef-report bandit: %s: the logs of %zu rule sets "
                "(salt \"%.64s\") counted together, arms by name, periods "
                "by weights version\n", experiment, nsets, first->salt);
    }

    cef_report_logs_free(tests, ntests);
    return CEF_REPORT_EXIT_OK;

nomem:

    fprintf(stderr, "cef-report bandit: out of memory\n");
    cef_report_logs_free(tests, ntests);
    cef_report_bandit_input_free(in);
    return CEF_REPORT_EXIT_PROBLEM;
}
