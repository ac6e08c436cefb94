/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Part of tools/cef-report (its files and what each exports: cef_report.h).
 *
 * cef_report_join: records in, tests out.  Impression records give each
 * visitor's first exposure per experiment (its arm and time), goal records
 * the visitor's goal events; cef_report_join_tests() joins them on the
 * visitor id into the sufficient statistics of every experiment x goal x
 * metric (docs/report.md#reading-logs has the definitions).
 *
 * An experiment is (rules hash, experiment name, salt): records of
 * different rule sets are never mixed.  Not thread-safe: a join belongs
 * to one thread (cef_report_join_merge() gathers them).
 */

#ifndef CEF_REPORT_JOIN_H
#define CEF_REPORT_JOIN_H

#include <stddef.h>
#include <stdint.h>

#include "cef_report.h"
#include "cef_report_parse.h"


typedef struct cef_report_join_s  cef_report_join_t;


/* what was joined: cef_report_join_stats() */
typedef struct {
    uint64_t   impressions;     /* impression records */
    uint64_t   goals;           /* goal records */
    uint64_t   exposures;       /* exposure records (not only the first) */
    uint64_t   goals_anonymous; /* goal records without a visitor id */
    size_t     experiments;
    size_t     visitors;        /* distinct visitor ids */
} cef_report_join_stats_t;


typedef struct {
    int64_t       window;       /* seconds after the first exposure; 0:
                                   to the end of the data */
    const char   *experiment;   /* only experiments of this name, or NULL */
    const char   *goal;         /* only this goal, or NULL */
} cef_report_join_opts_t;


cef_report_join_t *cef_report_join_new(void);
void cef_report_join_free(cef_report_join_t *j);

/* 0, or -1: out of memory */
int cef_report_join_add(cef_report_join_t *j, const cef_report_record_t *r);

/*
 * Moves what `from` holds into `into` (the first exposure of a visitor in
 * both is the earlier one): 0, or -1 (out of memory).  `from` is left to
 * be freed.  Readers in parallel each fill a join of their own, merged at
 * the end, so that they share no lock.
 */
int cef_report_join_merge(cef_report_join_t *into, cef_report_join_t *from);

void cef_report_join_stats(const cef_report_join_t *j,
    cef_report_join_stats_t *st);

/*
 * The tests, sorted by experiment name, salt, rules hash, goal, metric
 * (binomial, then mean for goals that carried a value): 0, or -1 (out of
 * memory).  Free them with cef_report_join_tests_free().
 */
int cef_report_join_tests(cef_report_join_t *j,
    const cef_report_join_opts_t *o, cef_report_test_t **tests,
    size_t *ntests);
void cef_report_join_tests_free(cef_report_test_t *tests, size_t n);


#endif /* CEF_REPORT_JOIN_H */
