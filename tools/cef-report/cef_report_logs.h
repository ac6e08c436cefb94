/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Part of tools/cef-report (its files and what each exports: cef_report.h).
 *
 * cef_report_logs: impression and goal logs -> the tests of every
 * experiment x goal x metric (docs/report.md#reading-logs).  Files are
 * read by up to `jobs` threads at once (one file per thread: many edges'
 * logs are read in parallel; a single file or `-` by one thread); each
 * thread joins the records it parses into a join of its own, and the joins
 * are merged at the end (cef_report_join): the threads share no lock.
 *
 * A malformed line is reported on stderr as `FILE:LINE: why` and skipped
 * (the first 100 per file are shown, all are counted); with `strict`, the
 * first one ends the reading.
 */

#ifndef CEF_REPORT_LOGS_H
#define CEF_REPORT_LOGS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cef_report.h"


typedef struct {
    int64_t       window;       /* seconds after the first exposure; 0: to
                                   the end of the data */
    const char   *experiment;   /* only experiments of this name, or NULL */
    const char   *goal;         /* only this goal, or NULL */
    int           strict;       /* a malformed line is fatal */
    int           jobs;         /* reading threads; 0: one per core */
    int           progress;     /* progress on stderr: 1 on a tty */
} cef_report_logs_opts_t;


typedef struct {
    uint64_t   files;
    uint64_t   lines;
    uint64_t   bytes;           /* uncompressed */
    uint64_t   impressions;     /* impression records */
    uint64_t   goals;           /* goal records */
    uint64_t   exposures;
    uint64_t   malformed;       /* lines skipped */
    size_t     experiments;
    size_t     visitors;
} cef_report_logs_summary_t;


/*
 * Reads the logs (paths: files, `-` at most once) and builds the tests.
 * Returns 0, or -1 when the input cannot be read: a file that cannot be
 * opened or read, a malformed line with `strict`, or no memory (each said
 * on stderr).  Free the tests with cef_report_logs_free().
 */
int cef_report_logs_read(const cef_report_logs_opts_t *o,
    char *const *paths, size_t npaths, cef_report_test_t **tests,
    size_t *ntests, cef_report_logs_summary_t *sum);

void cef_report_logs_free(cef_report_test_t *tests, size_t n);

/* "7d", "24h", "90m", "3600s" or "3600" -> seconds (> 0): 0, or -1 */
int cef_report_logs_window(const char *s, int64_t *seconds);

/*
 * --counts: one JSON object per test and line, the sufficient statistics
 * as `cef-report stats` reads them plus what identifies the test and the
 * time series.  0, or -1 (a write error).
 */
int cef_report_logs_counts_write(FILE *f, const cef_report_test_t *tests,
    size_t n);


#endif /* CEF_REPORT_LOGS_H */
