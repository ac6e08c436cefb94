/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-report: experiment results from impression and goal logs.  The
 * shared vocabulary of its files (each file exports the prefix of its
 * name):
 *
 *   cef_report_logs.c    reading impression and goal logs (files, -, gzip),
 *                        first exposures, conversions within the window
 *                        -> cef_report_test_t per experiment x goal x metric
 *   cef_report_suff.c    `cef-report stats`: sufficient statistics (JSON)
 *                        -> cef_report_test_t
 *   cef_report_stats.c   the statistics (GrowthBook gbstats' definitions,
 *                        GSL's distribution functions)
 *                        cef_report_test_t -> cef_report_result_t per arm
 *   cef_report_periods.c a bandit's test: weighted by period (its weights
 *                        versions), SRM per version; others as stats.c
 *   cef_report_json.c    --json output (the same for both commands)
 *   cef_report_table.c   the terminal table
 *   cef_report_html.c    --html FILE: one self-contained page (inline SVG)
 *   cef_report_main.c    the command line
 *   cef_report_bandit*.c `cef-report bandit` (cef_report_bandit.h)
 *
 * GSL is GPL-3: it is linked into cef-report only, never into the module
 * or libcef (docs/report.md).
 */

#ifndef CEF_REPORT_H
#define CEF_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>


#define CEF_REPORT_EXIT_OK       0
#define CEF_REPORT_EXIT_PROBLEM  1
#define CEF_REPORT_EXIT_USAGE    2


typedef enum {
    CEF_REPORT_BINOMIAL = 0,   /* sum counts converting visitors */
    CEF_REPORT_MEAN            /* sum adds a per-visitor value */
} cef_report_metric_t;


/* One arm's sufficient statistics. */
typedef struct {
    char      *name;
    double     weight;        /* configured share of traffic, > 0; 0: the
                                 arm takes no traffic (left out of SRM);
                                 < 0: unknown (no SRM check) */
    double     n;             /* exposed visitors */
    double     sum;           /* converters, or the summed value */
    double     sum_squares;   /* sum of per-visitor squares (binomial:
                                 equal to sum) */
} cef_report_arm_t;


/*
 * Conversions over time, for the HTML chart: cumulative exposed visitors
 * and cumulative converters per arm at the end of each period (row-major,
 * nperiods x narms).  nperiods 0: no series (the `stats` command).
 */
typedef struct {
    size_t     nperiods;
    int64_t   *end;           /* unix seconds, one per period */
    double    *n;             /* nperiods x narms */
    double    *converters;    /* nperiods x narms */
} cef_report_series_t;


/*
 * A bandit's periods (docs/report.md#bandits-in-the-report): a period is
 * the time one weights version was live, and a visitor belongs to the
 * version of their first exposure.  Row-major nperiods x narms arrays, by
 * version ascending; weights are the shares that version gave (from the
 * records' `split`; all zero: unknown).  nperiods 0: not a bandit (the
 * arms' own figures are the whole story).
 */
typedef struct {
    size_t     nperiods;
    uint64_t  *version;       /* nperiods */
    double    *weights;       /* nperiods x narms */
    double    *n;             /* nperiods x narms */
    double    *sum;
    double    *sum_squares;
} cef_report_periods_t;


/* One comparison: an experiment x goal x metric. */
typedef struct {
    char                 *experiment;  /* its name; NULL from `stats` */
    char                 *salt;        /* its bucketing salt, or NULL */
    char                 *rules;       /* the rule-set hash, or NULL */
    char                 *slot;        /* or NULL */
    char                 *goal;        /* or NULL */
    cef_report_metric_t   metric;
    int                   holdout;     /* control vs treatment of a
                                          holdout (the `would` offer) */
    size_t                control;     /* index of the control arm */
    size_t                narms;
    cef_report_arm_t     *arms;
    cef_report_series_t   series;
    cef_report_periods_t  periods;     /* a bandit's; nperiods 0: none */
} cef_report_test_t;


typedef struct {
    double     lift;
    double     lo, hi;        /* the confidence interval (or sequence) */
    double     se;
    double     p;
} cef_report_effect_t;


/* The results of one arm against the control (unused for the control). */
typedef struct {
    int                   valid;       /* 0: not computed, see note */
    const char           *note;        /* why not ("no visitors", "zero
                                          variance", ...), or NULL */
    double                mean;        /* of this arm, control included */
    cef_report_effect_t   relative;
    cef_report_effect_t   absolute;
    double                chance_to_win;
    double                bayes_lo, bayes_hi;   /* relative, credible */
    double                risk_control, risk_arm;
} cef_report_result_t;


typedef struct {
    double     alpha;         /* default 0.05 */
    int        sequential;    /* --sequential */
    double     tau;           /* --tau, default 5000 */
} cef_report_opts_t;


/* The SRM verdict threshold: p below it is flagged. */
#define CEF_REPORT_SRM_ALPHA  0.001


/* A test with its results: res has narms entries (res[control] holds only
   the control's mean), srm_p is NaN when no SRM check is possible.  A
   bandit's (test->periods.nperiods > 0): res from the period-weighted
   arms, srm_p over all versions (each expecting its own weights),
   period_srm_p[k] within version k alone. */
typedef struct {
    const cef_report_test_t  *test;
    cef_report_result_t      *res;
    double                    srm_p;
    double                   *period_srm_p;   /* test->periods.nperiods */
} cef_report_out_t;


/* cef_report_stats.c: 0, or -1 when the test cannot be analysed at all
   (fewer than two arms); arms without visitors get valid 0 and a note. */
int cef_report_stats_analyse(const cef_report_test_t *t,
    const cef_report_opts_t *opts, cef_report_result_t *res, double *srm_p);
/* the chi-squared SRM p-value over arms with weight > 0, or NaN */
double cef_report_stats_srm(const cef_report_arm_t *arms, size_t narms);
/* one of n SRM checks (a bandit's weights versions) is flagged below this:
   CEF_REPORT_SRM_ALPHA / n (Bonferroni: the report keeps the alarm rate) */
double cef_report_stats_srm_alpha(size_t nchecks);

/*
 * cef_report_periods.c: the statistics of any test (docs/report.md#
 * bandits-in-the-report).  Without periods: cef_report_stats_analyse.  A
 * bandit's: each arm's mean weighted over the weights versions as
 * GrowthBook weights a bandit's periods (cef_report_bandit_pool), then
 * the same tests; srm_p is gbstats' bandit SRM over the versions and
 * period_srm_p (nperiods entries, or NULL) each version's own.  0, or -1
 * as cef_report_stats_analyse (or out of memory).
 */
int cef_report_periods_analyse(const cef_report_test_t *t,
    const cef_report_opts_t *opts, cef_report_result_t *res, double *srm_p,
    double *period_srm_p);

/*
 * cef_report_suff.c: read the input of `cef-report stats` (docs/report.md)
 * from f into t; name is the file's name for messages.  0, or -1 with the
 * reason (naming the member and the arm) in err.  Warnings (a member that
 * is ignored) go to warn if not NULL.  cef_report_suff_free releases what
 * a successful read allocated.
 */
int cef_report_suff_read(FILE *f, const char *name, cef_report_test_t *t,
    FILE *warn, char *err, size_t errlen);
void cef_report_suff_free(cef_report_test_t *t);
/* The one JSON document of FILE (jansson, duplicate keys refused): the
   root, or NULL with "NAME: line L, column C: invalid JSON: ..." (or
   "NAME: cannot read: ...") in err.  Both `stats` and `bandit --stats`
   read their input with it. */
struct json_t;
struct json_t *cef_report_suff_load(FILE *f, const char *name, char *err,
    size_t errlen);

/* cef_report_json.c, cef_report_table.c, cef_report_html.c: 0 or -1 */
int cef_report_json_write(FILE *f, const cef_report_out_t *outs, size_t n,
    const cef_report_opts_t *opts);
int cef_report_table_write(FILE *f, const cef_report_out_t *outs, size_t n,
    const cef_report_opts_t *opts);
int cef_report_html_write(FILE *f, const cef_report_out_t *outs, size_t n,
    const cef_report_opts_t *opts);

/* cef_report_logs_cli.c: `cef-report [options] LOG...` (argv[0] the
   program) and its usage */
int cef_report_logs_cli(int argc, char **argv);
void cef_report_logs_cli_usage(FILE *f);


#endif /* CEF_REPORT_H */
