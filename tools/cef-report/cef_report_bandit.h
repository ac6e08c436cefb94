/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-report bandit: new arm weights for a bandit slot from its results,
 * by Gaussian Thompson sampling as GrowthBook's bandits compute them
 * (growthbook/growthbook, packages/stats/gbstats/bayesian/bandits.py and
 * the period weighting of back-end/src/integrations/sql/ctes/
 * bandit-statistics-cte.ts; docs/report.md says where each step was
 * checked and where we differ).  The files (each exports the prefix of its
 * name):
 *
 *   cef_report_bandit.c          the computation: periods -> weights
 *   cef_report_bandit_input.c    its input: per-period sufficient
 *                                statistics (JSON, the `stats` input
 *                                extended with "periods")
 *   cef_report_bandit_logs.c     its input from the logs: a period per
 *                                weights version (cef_report_periods_t)
 *   cef_report_bandit_record.c   the weights record (docs/formats.md):
 *                                written, and read back for --previous
 *   cef_report_bandit_cli.c      the command line (`cef-report bandit`)
 *
 * GSL (GPL-3) draws the random numbers: this stays in cef-report.
 */

#ifndef CEF_REPORT_BANDIT_H
#define CEF_REPORT_BANDIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cef_report.h"


/* gbstats' BanditConfig defaults and Bandits.n_samples */
#define CEF_REPORT_BANDIT_DRAWS          10000
#define CEF_REPORT_BANDIT_FLOOR          0.01
/* gbstats: no reweighting until every arm has this many units */
#define CEF_REPORT_BANDIT_MIN_EXPOSURES  100
/* gbstats' preprocess_bandits: GaussianPrior(mean=0, variance=1e4,
   proper=True) for every arm */
#define CEF_REPORT_BANDIT_PRIOR_VARIANCE 1e4
/* the weights record carries weights in basis points (sum 10000) */
#define CEF_REPORT_BANDIT_BP             10000


typedef enum {
    CEF_REPORT_BANDIT_TOP_TWO = 0,   /* gbstats' default (top_two=True) */
    CEF_REPORT_BANDIT_THOMPSON       /* probability of being best */
} cef_report_bandit_method_t;


typedef struct {
    cef_report_bandit_method_t  method;
    size_t                      draws;      /* > 0 */
    double                      floor;      /* 0 <= floor < 1/narms */
    double                      min_exposures;
    unsigned long               seed;
} cef_report_bandit_opts_t;


/*
 * A bandit's results, period by period: a period is the time one weights
 * version was live.  Row-major nperiods x narms arrays; a period's
 * weights are the shares that were live in it (any scale; all zero:
 * unknown).
 */
typedef struct {
    char                 *experiment;   /* or NULL */
    char                 *salt;         /* or NULL */
    char                 *goal;         /* or NULL */
    cef_report_metric_t   metric;
    size_t                narms;
    char                **names;        /* narms */
    size_t                nperiods;     /* >= 1 */
    uint64_t             *version;      /* nperiods; 0: not known */
    double               *weights;      /* nperiods x narms */
    double               *n;            /* nperiods x narms */
    double               *sum;          /* nperiods x narms */
    double               *sum_squares;  /* nperiods x narms (binomial: sum) */
} cef_report_bandit_input_t;


/* What the computation found, per arm (arrays of narms). */
typedef struct {
    int          updated;      /* 0: weights are the live ones, see note */
    const char  *note;         /* why not updated, or NULL */
    double       srm_p;        /* over the periods' weights, NaN: none */
    double      *exposures;    /* visitors over all periods */
    double      *mean;         /* period-weighted mean */
    double      *variance;     /* variance of that mean */
    double      *post_mean;    /* posterior (gbstats' proper prior) */
    double      *post_sd;
    double      *best;         /* P(best) from the draws; NaN if !updated */
    double      *weights;      /* the new shares, sum 1 */
    uint32_t    *bp;           /* the same in basis points, sum 10000 */
} cef_report_bandit_result_t;


/*
 * cef_report_bandit.c.
 *
 * cef_report_bandit_compute: new weights for in (narms >= 2).  res is
 * allocated here (cef_report_bandit_result_free).  0, or -1 when out of
 * memory or when GSL's generator cannot be made.
 */
int cef_report_bandit_compute(const cef_report_bandit_input_t *in,
    const cef_report_bandit_opts_t *opts, cef_report_bandit_result_t *res);
void cef_report_bandit_result_free(cef_report_bandit_result_t *res);

/* the period weighting: each arm's mean over the periods, every period
   weighted by its share of all visitors, and the variance of that mean */
void cef_report_bandit_pool(const cef_report_bandit_input_t *in, size_t arm,
    double *n, double *mean, double *variance);

/* the weights live now: the last period's, normalised; uniform if
   unknown (w has narms entries) */
void cef_report_bandit_current(const cef_report_bandit_input_t *in,
    double *w);

/* chi-squared SRM over the periods: each arm expected to get each
   period's visitors times that period's share; NaN if a period's weights
   are unknown */
double cef_report_bandit_srm(const cef_report_bandit_input_t *in);

/* shares (sum 1) to basis points summing to exactly 10000 (largest
   remainder; ties to the lower index) */
void cef_report_bandit_bp(const double *w, size_t narms, uint32_t *bp);

/* the periods of a test: from the log reader, one per weights version
   (cef_report_periods_t); from `stats` or a test without periods, one
   period whose live weights are the arms' weights.  0 or -1 (out of
   memory). */
int cef_report_bandit_from_test(const cef_report_test_t *t,
    cef_report_bandit_input_t *in);


/*
 * cef_report_bandit_input.c: read the input of `cef-report bandit --stats`
 * (docs/report.md) from f; name for messages.  0, or -1 with the reason
 * (naming the period, the arm and the member) in err.
 */
int cef_report_bandit_input_read(FILE *f, const char *name,
    cef_report_bandit_input_t *in, char *err, size_t errlen);
void cef_report_bandit_input_free(cef_report_bandit_input_t *in);


/*
 * cef_report_bandit_logs.c: the periods of experiment (of that salt, goal
 * and metric -- CEF_REPORT_BINOMIAL or _MEAN; -1: binomial) from the logs
 * paths, the tests of one salt added up over its rule sets.  An exit code
 * (the reason said on stderr); in is filled when it is 0.
 */
int cef_report_bandit_logs(const char *experiment, const char *salt,
    const char *goal, int metric, char *const *paths, size_t npaths,
    cef_report_bandit_input_t *in);


/* cef_report_bandit_record.c: the weights record (docs/formats.md) */
typedef struct {
    const char                       *experiment;
    const char                       *salt;
    const char                       *goal;         /* or NULL */
    uint64_t                          version;
    int64_t                           created_at;   /* unix seconds */
    const cef_report_bandit_input_t  *in;
    const cef_report_bandit_result_t *res;
    const cef_report_bandit_opts_t   *opts;
} cef_report_bandit_record_t;

/* one line of compact JSON and a newline; 0 or -1 */
int cef_report_bandit_record_write(FILE *f,
    const cef_report_bandit_record_t *rec);

/*
 * A previous weights record (--previous FILE): its version and, if w is
 * not NULL, its weights for the arms names[0..narms) as shares (an arm it
 * does not name: -1).  0, or -1 with the reason in err.
 */
int cef_report_bandit_record_read(FILE *f, const char *name,
    const char *experiment, uint64_t *version, char **names, size_t narms,
    double *w, char *err, size_t errlen);

/* the version of a new record: max(previous + 1, created_at), >= 1 */
uint64_t cef_report_bandit_record_version(uint64_t previous,
    int64_t created_at);


/* cef_report_bandit_cli.c: `cef-report bandit ...` (argv[0] "bandit");
   an exit code */
int cef_report_bandit_cli(int argc, char **argv);


#endif /* CEF_REPORT_BANDIT_H */
