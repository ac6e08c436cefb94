/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Part of cef-report (the files and what passes between them: cef_report.h).
 *
 * cef_report_svg: the charts of the HTML page, as inline SVG written by
 * hand (no library, no script, no network): the relative lift of each arm
 * with its interval (a forest plot), and conversions over time per arm.
 * Every coordinate written is finite; names go through
 * cef_report_fmt_text().
 */

#ifndef CEF_REPORT_SVG_H
#define CEF_REPORT_SVG_H

#include <stddef.h>
#include <stdio.h>

#include "cef_report.h"


/* The colour of arm i of t (the control grey, the others from a palette
   in arm order), shared by the charts and the table's swatches. */
const char *cef_report_svg_color(const cef_report_test_t *t, size_t i);

/*
 * One row per arm but the control: its relative lift against the control
 * as a point, its interval (confidence, or sequence with --sequential) as
 * a line, green when the interval lies above zero, red when below, grey
 * when it crosses zero; an arm without a result shows its note.  Nothing
 * when the test has one arm.
 */
void cef_report_svg_forest(FILE *f, const cef_report_out_t *o);

/*
 * The cumulative share of converting visitors per arm at the end of each
 * period of t->series (one line per arm, hover titles on the points).
 * Nothing when t has no series.
 */
void cef_report_svg_series(FILE *f, const cef_report_test_t *t);


#endif /* CEF_REPORT_SVG_H */
