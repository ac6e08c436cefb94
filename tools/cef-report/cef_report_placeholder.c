/*
 * Copyright (C) ngx_cef_module developers
 *
 * TEMPORARY, deleted at the merge of issue 18: minimal stand-ins for the
 * statistics (cef_report_stats.c), --json (cef_report_json.c), the table
 * (cef_report_table.c) and --html (cef_report_html.c), so that the
 * log-reading branch builds and its tests run before those land.  Means
 * only: no lift, no intervals, no SRM.
 */

#include <math.h>
#include <string.h>

#include <jansson.h>

#include "cef_report.h"


int
cef_report_stats_analyse(const cef_report_test_t *t,
    const cef_report_opts_t *opts, cef_report_result_t *res, double *srm_p)
{
    size_t  i;

    (void) opts;
    *srm_p = cef_report_stats_srm(t->arms, t->narms);
    for (i = 0; i < t->narms; i++) {
        memset(&res[i], 0, sizeof(res[i]));
        res[i].mean = t->arms[i].n > 0 ? t->arms[i].sum / t->arms[i].n : 0;
        res[i].note = t->arms[i].n > 0 ? "placeholder: no statistics"
                                       : "no visitors";
    }
    return t->narms < 2 ? -1 : 0;
}


double
cef_report_stats_srm(const cef_report_arm_t *arms, size_t narms)
{
    (void) arms;
    (void) narms;
    return NAN;
}


int
cef_report_json_write(FILE *f, const cef_report_out_t *outs, size_t n,
    const cef_report_opts_t *opts)
{
    const cef_report_test_t  *t;
    json_t                   *o, *arms;
    size_t                    i, k;
    char                      rules[13];

    (void) opts;
    for (i = 0; i < n; i++) {
        t = outs[i].test;
        arms = json_array();
        for (k = 0; k < t->narms; k++) {
            json_array_append_new(arms, json_pack("{s:s,s:f,s:f}",
                "name", t->arms[k].name, "n", t->arms[k].n,
                "mean", outs[i].res[k].mean));
        }
        snprintf(rules, sizeof(rules), "%s", t->rules ? t->rules : "");
        o = json_pack("{s:s?,s:s?,s:s?,s:s?,s:s?,s:s,s:b,s:n,s:o}",
            "experiment", t->experiment, "salt", t->salt,
            "rules", t->rules ? rules : NULL, "slot", t->slot,
            "goal", t->goal,
            "metric", t->metric == CEF_REPORT_MEAN ? "mean" : "binomial",
            "holdout", t->holdout, "srm_p", "arms", arms);
        if (o == NULL || json_dumpf(o, f, JSON_COMPACT | JSON_PRESERVE_ORDER)
                         != 0)
        {
            json_decref(o);
            return -1;
        }
        fputc('\n', f);
        json_decref(o);
    }
    return 0;
}


int
cef_report_table_write(FILE *f, const cef_report_out_t *outs, size_t n,
    const cef_report_opts_t *opts)
{
    const cef_report_test_t  *t;
    size_t                    i, k;

    (void) opts;
    for (i = 0; i < n; i++) {
        t = outs[i].test;
        fprintf(f, "%s @ %.12s · %s · %s\n", t->experiment, t->rules,
                t->goal ? t->goal : "-",
                t->metric == CEF_REPORT_MEAN ? "mean" : "binomial");
        for (k = 0; k < t->narms; k++) {
            fprintf(f, "  %-12s n %-10.0f mean %.4f\n", t->arms[k].name,
                    t->arms[k].n, outs[i].res[k].mean);
        }
    }
    return 0;
}


int
cef_report_html_write(FILE *f, const cef_report_out_t *outs, size_t n,
    const cef_report_opts_t *opts)
{
    (void) outs;
    (void) opts;
    fprintf(f, "<!doctype html><title>cef-report</title>"
            "<p>%zu tests (placeholder page)</p>\n", n);
    return 0;
}
