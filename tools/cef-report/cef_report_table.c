/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * The terminal table: per test a heading (experiment @ rules, slot, goal,
 * metric, the SRM verdict; a mismatch gets a line of its own that cannot
 * be missed), then one row per arm against the control.  Names come from
 * logs: control characters are shown as '?', never sent to the terminal.
 */

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cef_report.h"


enum {
    CEF_REPORT_COL_ARM = 0,
    CEF_REPORT_COL_N,
    CEF_REPORT_COL_SUM,
    CEF_REPORT_COL_MEAN,
    CEF_REPORT_COL_LIFT,
    CEF_REPORT_COL_ABS,
    CEF_REPORT_COL_P,
    CEF_REPORT_COL_WIN,
    CEF_REPORT_COL_NOTE,
    CEF_REPORT_NCOLS
};

#define CEF_REPORT_CELL  128


typedef struct {
    char  cell[CEF_REPORT_NCOLS][CEF_REPORT_CELL];
} cef_report_row_t;


static int cef_report_table_test(FILE *f, const cef_report_out_t *o,
    const cef_report_opts_t *opts);
static void cef_report_table_heading(FILE *f, const cef_report_out_t *o);
static void cef_report_table_periods(FILE *f, const cef_report_out_t *o);
static void cef_report_table_arm(const cef_report_test_t *t, size_t i,
    const cef_report_result_t *r, cef_report_row_t *row);
static void cef_report_table_print(FILE *f, cef_report_row_t *rows,
    size_t nrows);
static void cef_report_table_safe(char *dst, const char *src, size_t len);
static size_t cef_report_table_width(const char *s);


int
cef_report_table_write(FILE *f, const cef_report_out_t *outs, size_t n,
    const cef_report_opts_t *opts)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (i > 0) {
            fputc('\n', f);
        }

        if (cef_report_table_test(f, &outs[i], opts) != 0) {
            return -1;
        }
    }

    return ferror(f) ? -1 : 0;
}


static int
cef_report_table_test(FILE *f, const cef_report_out_t *o,
    const cef_report_opts_t *opts)
{
    size_t                    i;
    cef_report_row_t         *rows;
    const cef_report_test_t  *t;

    t = o->test;

    rows = calloc(t->narms + 1, sizeof(cef_report_row_t));
    if (rows == NULL) {
        return -1;
    }

    cef_report_table_heading(f, o);

    snprintf(rows[0].cell[CEF_REPORT_COL_ARM], CEF_REPORT_CELL, "arm");
    snprintf(rows[0].cell[CEF_REPORT_COL_N], CEF_REPORT_CELL, "visitors");
    snprintf(rows[0].cell[CEF_REPORT_COL_SUM], CEF_REPORT_CELL, "%s",
             t->metric == CEF_REPORT_BINOMIAL ? "converted" : "value");
    snprintf(rows[0].cell[CEF_REPORT_COL_MEAN], CEF_REPORT_CELL, "%s%s",
             t->metric == CEF_REPORT_BINOMIAL ? "rate" : "per visitor",
             t->periods.nperiods > 0 ? " (weighted)" : "");
    snprintf(rows[0].cell[CEF_REPORT_COL_LIFT], CEF_REPORT_CELL,
             "lift (%g%% %s)", 100 * (1 - opts->alpha),
             opts->sequential ? "sequential CI" : "CI");
    snprintf(rows[0].cell[CEF_REPORT_COL_ABS], CEF_REPORT_CELL, "abs lift");
    snprintf(rows[0].cell[CEF_REPORT_COL_P], CEF_REPORT_CELL, "p");
    snprintf(rows[0].cell[CEF_REPORT_COL_WIN], CEF_REPORT_CELL,
             "chance to win");
    snprintf(rows[0].cell[CEF_REPORT_COL_NOTE], CEF_REPORT_CELL, "note");

    for (i = 0; i < t->narms; i++) {
        cef_report_table_arm(t, i, &o->res[i], &rows[i + 1]);
    }

    cef_report_table_print(f, rows, t->narms + 1);
    free(rows);

    cef_report_table_periods(f, o);

    return ferror(f) ? -1 : 0;
}


/* a bandit's weights versions: visitors, weights and each one's SRM */
static void
cef_report_table_periods(FILE *f, const cef_report_out_t *o)
{
    size_t                         k, i, na;
    double                         p, total;
    const cef_report_test_t       *t = o->test;
    const cef_report_periods_t    *pp = &t->periods;

    if (pp->nperiods == 0) {
        return;
    }

    na = t->narms;
    fprintf(f, "bandit: %zu weights version%s; each rate weights the versions "
            "by their share of all visitors, the same for every arm\n",
            pp->nperiods, pp->nperiods == 1 ? "" : "s");

    for (k = 0; k < pp->nperiods; k++) {
        total = 0;
        for (i = 0; i < na; i++) {
            total += pp->n[k * na + i];
        }

        p = o->period_srm_p != NULL ? o->period_srm_p[k] : NAN;
        fprintf(f, "%s version %" PRIu64 ": %.0f visitors, split",
                !isnan(p) && p < cef_report_stats_srm_alpha(pp->nperiods)
                ? "!!" : "  ", pp->version[k], total);

        for (i = 0; i < na; i++) {
            fprintf(f, "%s%.0f", i ? "/" : " ", pp->n[k * na + i]);
        }

        fprintf(f, " for weights");

        for (i = 0; i < na; i++) {
            fprintf(f, "%s%.4g%%", i ? "/" : " ",
                    100 * pp->weights[k * na + i]);
        }

        if (isnan(p)) {
            fprintf(f, " · SRM not checked\n");

        } else if (p >= cef_report_stats_srm_alpha(pp->nperiods)) {
            fprintf(f, " · SRM ok (p = %.3g)\n", p);

        } else {
            fprintf(f, " · SAMPLE RATIO MISMATCH in this version (p = %.2g < "
                    "%.2g)\n", p, cef_report_stats_srm_alpha(pp->nperiods));
        }
    }
}


static void
cef_report_table_heading(FILE *f, const cef_report_out_t *o)
{
    char                      name[CEF_REPORT_CELL];
    size_t                    k, alarms;
    const cef_report_test_t  *t;

    t = o->test;

    if (t->experiment != NULL) {
        cef_report_table_safe(name, t->experiment, sizeof(name));
        fprintf(f, "%s", name);

        if (t->rules != NULL) {
            cef_report_table_safe(name, t->rules, 13);
            fprintf(f, " @ %s", name);
        }

    } else {
        fprintf(f, "sufficient statistics");
    }

    if (t->slot != NULL) {
        cef_report_table_safe(name, t->slot, sizeof(name));
        fprintf(f, " · slot %s", name);
    }

    if (t->holdout) {
        fprintf(f, " · holdout");
    }

    if (t->goal != NULL) {
        cef_report_table_safe(name, t->goal, sizeof(name));
        fprintf(f, " · %s", name);
    }

    fprintf(f, " · %s", t->metric == CEF_REPORT_BINOMIAL ? "binomial"
                                                           : "mean");

    /* a bandit: over the versions, and each version alone */
    for (k = 0, alarms = 0; k < t->periods.nperiods; k++) {
        alarms += o->period_srm_p != NULL && o->period_srm_p[k]
                  < cef_report_stats_srm_alpha(t->periods.nperiods);
    }

    if (alarms > 0 && !(o->srm_p < CEF_REPORT_SRM_ALPHA)) {
        fprintf(f, " · SRM MISMATCH in %zu of %zu weights versions\n"
                "!! SAMPLE RATIO MISMATCH within a weights version (below): "
                "over all versions the counts may even out, but a period's "
                "visitors were not split as its weights said.\n"
                "!! Do not trust these results until that is explained.\n",
                alarms, t->periods.nperiods);

    } else if (isnan(o->srm_p)) {
        fprintf(f, " · SRM not checked (no weights)\n");

    } else if (o->srm_p >= CEF_REPORT_SRM_ALPHA) {
        fprintf(f, " · SRM%s ok (p = %.3g)\n",
                t->periods.nperiods > 0 ? " over the weights versions" : "",
                o->srm_p);

    } else {
        fprintf(f, " · SRM MISMATCH (p = %.2g)\n", o->srm_p);
        fprintf(f, "!! SAMPLE RATIO MISMATCH: the visitors are not split as "
                "configured (p = %.2g < %g).\n"
                "!! Something loses or duplicates one arm's visitors: do not "
                "trust these results until that is explained.\n",
                o->srm_p, CEF_REPORT_SRM_ALPHA);
    }
}


static void
cef_report_table_arm(const cef_report_test_t *t, size_t i,
    const cef_report_result_t *r, cef_report_row_t *row)
{
    int                        bin;
    char                      *c;
    const cef_report_arm_t    *arm;

    arm = &t->arms[i];
    bin = t->metric == CEF_REPORT_BINOMIAL;

    cef_report_table_safe(row->cell[CEF_REPORT_COL_ARM], arm->name,
                          CEF_REPORT_CELL);
    snprintf(row->cell[CEF_REPORT_COL_N], CEF_REPORT_CELL, "%.0f", arm->n);
    snprintf(row->cell[CEF_REPORT_COL_SUM], CEF_REPORT_CELL,
             bin ? "%.0f" : "%.2f", arm->sum);

    if (isnan(r->mean)) {
        snprintf(row->cell[CEF_REPORT_COL_MEAN], CEF_REPORT_CELL, "-");

    } else {
        snprintf(row->cell[CEF_REPORT_COL_MEAN], CEF_REPORT_CELL,
                 bin ? "%.2f%%" : "%.2f", bin ? 100 * r->mean : r->mean);
    }

    if (i == t->control) {
        snprintf(row->cell[CEF_REPORT_COL_LIFT], CEF_REPORT_CELL,
                 "(control)");
        return;
    }

    if (!r->valid) {
        cef_report_table_safe(row->cell[CEF_REPORT_COL_NOTE],
                              r->note != NULL ? r->note : "not analysed",
                              CEF_REPORT_CELL);
        return;
    }

    snprintf(row->cell[CEF_REPORT_COL_LIFT], CEF_REPORT_CELL,
             "%+.1f%% [%+.1f%%, %+.1f%%]", 100 * r->relative.lift,
             100 * r->relative.lo, 100 * r->relative.hi);

    snprintf(row->cell[CEF_REPORT_COL_ABS], CEF_REPORT_CELL,
             bin ? "%+.2f pp" : "%+.2f",
             bin ? 100 * r->absolute.lift : r->absolute.lift);

    c = row->cell[CEF_REPORT_COL_P];
    if (r->relative.p < 0.0001) {
        snprintf(c, CEF_REPORT_CELL, "<0.0001");
    } else {
        snprintf(c, CEF_REPORT_CELL, "%.4f", r->relative.p);
    }

    c = row->cell[CEF_REPORT_COL_WIN];
    if (r->chance_to_win > 0.999) {
        snprintf(c, CEF_REPORT_CELL, ">99.9%%");
    } else if (r->chance_to_win < 0.001) {
        snprintf(c, CEF_REPORT_CELL, "<0.1%%");
    } else {
        snprintf(c, CEF_REPORT_CELL, "%.1f%%", 100 * r->chance_to_win);
    }
}


/* text columns left-aligned, numbers right-aligned, two spaces between,
   no trailing blanks */
static void
cef_report_table_print(FILE *f, cef_report_row_t *rows, size_t nrows)
{
    int     left;
    char    line[CEF_REPORT_NCOLS * (CEF_REPORT_CELL + 2) + 8];
    size_t  i, j, w, len, width[CEF_REPORT_NCOLS], last;

    memset(width, 0, sizeof(width));
    last = CEF_REPORT_COL_WIN;         /* no notes: no note column */

    for (i = 0; i < nrows; i++) {
        for (j = 0; j < CEF_REPORT_NCOLS; j++) {
            w = cef_report_table_width(rows[i].cell[j]);
            width[j] = w > width[j] ? w : width[j];
        }

        if (i > 0 && rows[i].cell[CEF_REPORT_COL_NOTE][0] != '\0') {
            last = CEF_REPORT_COL_NOTE;
        }
    }

    for (i = 0; i < nrows; i++) {
        len = 0;

        for (j = 0; j <= last; j++) {
            left = j == CEF_REPORT_COL_ARM || j == CEF_REPORT_COL_LIFT
                   || j == CEF_REPORT_COL_NOTE;
            w = width[j] - cef_report_table_width(rows[i].cell[j]);

            len += snprintf(line + len, sizeof(line) - len, "%*s%s%*s",
                            j == 0 ? 2 : 2 + (int) (left ? 0 : w), "",
                            rows[i].cell[j], (int) (left ? w : 0), "");
        }

        while (len > 0 && line[len - 1] == ' ') {
            len--;
        }

        fprintf(f, "%.*s\n", (int) len, line);
    }
}


/* at most len - 1 bytes of src, control characters as '?', whole UTF-8
   characters only */
static void
cef_report_table_safe(char *dst, const char *src, size_t len)
{
    size_t  i;

    for (i = 0; src[i] != '\0' && i + 1 < len; i++) {
        dst[i] = ((unsigned char) src[i] < 0x20 || src[i] == 0x7f)
                 ? '?' : src[i];
    }

    if (src[i] != '\0') {
        while (i > 0 && ((unsigned char) src[i] & 0xc0) == 0x80) {
            i--;
        }
    }

    dst[i] = '\0';
}


/* columns a cell takes: UTF-8 characters, not bytes */
static size_t
cef_report_table_width(const char *s)
{
    size_t  w;

    for (w = 0; *s != '\0'; s++) {
        w += ((unsigned char) *s & 0xc0) != 0x80;
    }

    return w;
}
