/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-report --html FILE: one self-contained page (cef_report.h).  No
 * script, no request to anywhere: inline CSS, and charts as inline SVG
 * (cef_report_svg.c).  Per test: a heading, the sample-ratio verdict
 * (loud when p < CEF_REPORT_SRM_ALPHA), a table of the arms, the relative
 * lift per arm with its interval, and conversions over time per arm.
 * Every name from the logs goes through cef_report_fmt_text().
 */

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cef_report.h"
#include "cef_report_fmt.h"
#include "cef_report_svg.h"


#define HASH_CHARS  12            /* a rule-set hash is shown by its prefix */


static const char  css[] =
    ":root{color-scheme:light;--bad:#cf222e;--ok:#1a7f37;--muted:#57606a;"
    "--line:#d0d7de}\n"
    "body{font:15px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,"
    "sans-serif;color:#24292f;background:#fff;margin:0 auto;"
    "max-width:1100px;padding:24px}\n"
    "h1{font-size:26px;margin:0 0 4px}\n"
    "h2{font-size:21px;margin:0 0 2px;overflow-wrap:anywhere}\n"
    ".sub,.meta,.explain,figcaption,.none{color:var(--muted)}\n"
    ".meta{margin:0 0 12px}\n"
    "nav ol{padding-left:22px}\n"
    "section.test{border-top:1px solid var(--line);padding:20px 0 8px;"
    "margin-top:20px}\n"
    ".tag{display:inline-block;font-size:12px;border:1px solid var(--line);"
    "border-radius:10px;padding:0 8px;margin-left:4px;color:var(--muted)}\n"
    ".tag.bad{background:var(--bad);border-color:var(--bad);color:#fff;"
    "font-weight:700}\n"
    ".srm{border-radius:6px;padding:10px 14px;margin:8px 0 14px;"
    "border:1px solid var(--line)}\n"
    ".srm.ok{border-color:#aceebb;background:#dafbe1}\n"
    ".srm.none{background:#f6f8fa}\n"
    ".srm.bad{border:3px solid var(--bad);background:#ffebe9;"
    "font-size:17px}\n"
    ".srm.bad strong{color:var(--bad);font-size:20px;display:block}\n"
    ".scroll{overflow-x:auto}\n"
    "table{border-collapse:collapse;width:100%;font-size:14px;"
    "font-variant-numeric:tabular-nums}\n"
    "th,td{padding:5px 6px;border-bottom:1px solid var(--line);"
    "text-align:right;vertical-align:top}\n"
    "th{font-size:12px;color:var(--muted);font-weight:600}\n"
    "th:first-child,td:first-child{text-align:left}\n"
    "td{white-space:nowrap}\n"
    "td small{color:var(--muted);font-size:12px}\n"
    "td.arm{white-space:normal;overflow-wrap:anywhere;min-width:8em}\n"
    "td.note{text-align:left;color:var(--muted);white-space:normal}\n"
    "td.note.bad{color:var(--bad)}\n"
    ".up{color:var(--ok);font-weight:600}\n"
    ".down{color:var(--bad);font-weight:600}\n"
    ".swatch{display:inline-block;width:10px;height:10px;border-radius:2px;"
    "margin-right:6px}\n"
    ".explain{font-size:13px;margin:6px 0 14px}\n"
    ".charts{display:grid;grid-template-columns:1fr;gap:12px}\n"
    "figure{margin:0}\n"
    "figcaption{font-size:14px;margin-bottom:4px}\n"
    "svg{width:100%;height:auto;max-width:900px;display:block}\n"
    "svg text{font:12px system-ui,-apple-system,\"Segoe UI\",Roboto,"
    "sans-serif}\n"
    "svg text.arm{font-size:13px}\n"
    "footer{margin-top:28px;font-size:13px;color:var(--muted)}\n";


/* the confidence level as a percentage ("95") */
static double
level(const cef_report_opts_t *opts)
{
    double  alpha;

    alpha = opts != NULL && opts->alpha > 0 && opts->alpha < 1
            ? opts->alpha : 0.05;
    return (1 - alpha) * 100;
}


static void
interval_words(FILE *f, const cef_report_opts_t *opts)
{
    if (opts != NULL && opts->sequential) {
        fprintf(f, "%g%% confidence sequences (valid at any time; "
                "tau %g)", level(opts), opts->tau > 0 ? opts->tau : 5000);
        return;
    }

    fprintf(f, "%g%% confidence intervals", level(opts));
}


static void
page_head(FILE *f, size_t n, const cef_report_opts_t *opts)
{
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
            "<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, "
            "initial-scale=1\">\n"
            "<title>Experiment results \xe2\x80\x94 cef-report</title>\n"
            "<style>\n%s</style>\n</head>\n<body>\n<header>\n"
            "<h1>Experiment results</h1>\n<p class=\"sub\">", css);

    fprintf(f, "%zu comparison%s (experiment \xc3\x97 goal \xc3\x97 "
            "metric) \xc2\xb7 ", n, n == 1 ? "" : "s");
    interval_words(f, opts);
    fputs(" \xc2\xb7 statistics as GrowthBook's gbstats defines them</p>\n"
          "</header>\n", f);
}


/* the rule-set hash as shown: its first HASH_CHARS characters */
static void
hash_text(FILE *f, const char *rules)
{
    char  buf[HASH_CHARS + 1];

    snprintf(buf, sizeof(buf), "%s", rules);
    cef_report_fmt_text(f, buf, 0);
}


static int
srm_flagged(const cef_report_out_t *o)
{
    return o->res != NULL && o->srm_p < CEF_REPORT_SRM_ALPHA;
}


static void
title_text(FILE *f, const cef_report_test_t *t)
{
    if (t->experiment == NULL) {
        fputs("Sufficient statistics", f);
        return;
    }

    cef_report_fmt_text(f, t->experiment, 0);
}


static void
page_nav(FILE *f, const cef_report_out_t *outs, size_t n)
{
    size_t  i;

    fputs("<nav>\n<ol>\n", f);

    for (i = 0; i < n; i++) {
        fprintf(f, "<li><a href=\"#t-%zu\">", i + 1);
        title_text(f, outs[i].test);
        fputs("</a>", f);

        if (outs[i].test->goal != NULL) {
            fputs(" \xc2\xb7 ", f);
            cef_report_fmt_text(f, outs[i].test->goal, 0);
        }

        fputs(outs[i].test->metric == CEF_REPORT_MEAN
              ? " \xc2\xb7 value per visitor" : " \xc2\xb7 conversion rate",
              f);

        if (srm_flagged(&outs[i])) {
            fputs(" <span class=\"tag bad\">sample ratio mismatch</span>", f);
        }

        fputs("</li>\n", f);
    }

    fputs("</ol>\n</nav>\n", f);
}


static void
test_head(FILE *f, const cef_report_out_t *o)
{
    const cef_report_test_t  *t;

    t = o->test;

    fputs("<h2>", f);
    title_text(f, t);

    if (t->rules != NULL) {
        fputs(" <span class=\"tag\" title=\"rule set\">@ ", f);
        hash_text(f, t->rules);
        fputs("</span>", f);
    }

    if (t->holdout) {
        fputs(" <span class=\"tag\">holdout</span>", f);
    }

    if (srm_flagged(o)) {
        fputs(" <span class=\"tag bad\">sample ratio mismatch</span>", f);
    }

    fputs("</h2>\n<p class=\"meta\">", f);

    if (t->goal != NULL) {
        fputs("goal <b>", f);
        cef_report_fmt_text(f, t->goal, 0);
        fputs("</b> \xc2\xb7 ", f);
    }

    fputs(t->metric == CEF_REPORT_MEAN
          ? "value per visitor" : "conversion rate", f);

    if (t->slot != NULL) {
        fputs(" \xc2\xb7 slot <b>", f);
        cef_report_fmt_text(f, t->slot, 0);
        fputs("</b>", f);
    }

    if (t->salt != NULL && (t->experiment == NULL
                            || strcmp(t->salt, t->experiment) != 0))
    {
        fputs(" \xc2\xb7 salt ", f);
        cef_report_fmt_text(f, t->salt, 0);
    }

    if (t->holdout) {
        fputs(" \xc2\xb7 <b>control</b> was held out from the offers (what "
              "it would have seen is in the log): each lift is what showing "
              "the offers earned", f);
    }

    fputs("</p>\n", f);
}


static void
test_srm(FILE *f, const cef_report_out_t *o)
{
    char  p[CEF_REPORT_FMT_LEN];

    if (o->res == NULL || isnan(o->srm_p)) {
        fputs("<div class=\"srm none\"><b>Sample ratio check: not "
              "possible</b> \xe2\x80\x94 the arms' configured weights are "
              "unknown, or fewer than two arms take traffic.</div>\n", f);
        return;
    }

    cef_report_fmt_p(p, o->srm_p);

    if (srm_flagged(o)) {
        fprintf(f, "<div class=\"srm bad\" role=\"alert\"><strong>"
                "\xe2\x9a\xa0 Sample ratio mismatch (p %s%s)</strong>"
                "The arms did not get the shares of visitors they were "
                "configured for (chi-squared test, flagged below p = %g). "
                "Assignment or logging is broken \xe2\x80\x94 lost "
                "impression lines, redirects or bots in one arm. Do not "
                "trust these results until the cause is found.</div>\n",
                o->srm_p < 0.0001 ? "" : "= ", p, CEF_REPORT_SRM_ALPHA);
        return;
    }

    fprintf(f, "<div class=\"srm ok\"><b>Sample ratio check passed</b> "
            "(p %s%s): the arms got the shares of visitors they were "
            "configured for.</div>\n", o->srm_p < 0.0001 ? "" : "= ", p);
}


/* a lift with its interval, coloured when the interval excludes zero */
static void
effect_cell(FILE *f, const cef_report_effect_t *e, int pct)
{
    const char  *cls, *unit;
    char         b1[CEF_REPORT_FMT_LEN];
    char         b2[CEF_REPORT_FMT_LEN];
    char         b3[CEF_REPORT_FMT_LEN];

    cls = e->lo > 0 ? " class=\"up\"" : (e->hi < 0 ? " class=\"down\"" : "");
    unit = pct == 2 ? " pp" : "%";

    if (pct) {
        fprintf(f, "<td%s>%s<br><small>[%s, %s]</small></td>", cls,
                cef_report_fmt_pct(b1, e->lift, 1, unit),
                cef_report_fmt_pct(b2, e->lo, 1, unit),
                cef_report_fmt_pct(b3, e->hi, 1, unit));
        return;
    }

    fprintf(f, "<td%s>%s<br><small>[%s, %s]</small></td>", cls,
            cef_report_fmt_num(b1, e->lift, 1),
            cef_report_fmt_num(b2, e->lo, 1),
            cef_report_fmt_num(b3, e->hi, 1));
}


static void
chance_cell(FILE *f, double c)
{
    if (!isfinite(c)) {
        fputs("<td>\xe2\x80\x94</td>", f);

    } else if (c > 0.999) {
        fputs("<td class=\"up\">&gt;\xc2\xa0" "99.9%</td>", f);

    } else if (c < 0.001) {
        fputs("<td class=\"down\">&lt;\xc2\xa0" "0.1%</td>", f);

    } else {
        fprintf(f, "<td%s>%.1f%%</td>", c >= 0.95 ? " class=\"up\""
                : (c <= 0.05 ? " class=\"down\"" : ""), c * 100);
    }
}


static void
arm_row(FILE *f, const cef_report_out_t *o, size_t i, double total)
{
    const cef_report_test_t    *t;
    const cef_report_arm_t     *a;
    const cef_report_result_t  *r;
    int                         binomial;
    char                        b1[CEF_REPORT_FMT_LEN];
    char                        b2[CEF_REPORT_FMT_LEN];
    char                        b3[CEF_REPORT_FMT_LEN];
    char                        b4[CEF_REPORT_FMT_LEN];

    t = o->test;
    a = &t->arms[i];
    r = o->res != NULL ? &o->res[i] : NULL;
    binomial = t->metric == CEF_REPORT_BINOMIAL;

    fprintf(f, "<tr%s><td class=\"arm\"><span class=\"swatch\" "
            "style=\"background:%s\"></span>", a->n > 0 ? ""
            : " class=\"empty\"", cef_report_svg_color(t, i));
    cef_report_fmt_text(f, a->name, 0);

    if (i == t->control) {
        fputs(" <span class=\"tag\">control</span>", f);
    }

    fprintf(f, "</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>",
            a->weight < 0 ? "unknown"
            : cef_report_fmt_pct(b1, a->weight, 0, "%"),
            total > 0 ? cef_report_fmt_pct(b2, a->n / total, 0, "%")
            : "\xe2\x80\x94",
            cef_report_fmt_count(b3, a->n),
            binomial ? cef_report_fmt_count(b4, a->sum)
                     : cef_report_fmt_num(b4, a->sum, 0));

    if (r == NULL || !(a->n > 0)) {
        fputs("<td>\xe2\x80\x94</td>", f);

    } else {
        fprintf(f, "<td>%s</td>", binomial
                ? cef_report_fmt_pct(b1, r->mean, 0, "%")
                : cef_report_fmt_num(b1, r->mean, 0));
    }

    if (i == t->control) {
        fputs("<td colspan=\"5\" class=\"note\">baseline</td></tr>\n", f);
        return;
    }

    if (r == NULL || !r->valid) {
        fputs("<td colspan=\"5\" class=\"note bad\">not analysed: ", f);
        cef_report_fmt_text(f, r == NULL ? "the test has fewer than two arms"
                            : (r->note != NULL ? r->note : "no result"), 0);
        fputs("</td></tr>\n", f);
        return;
    }

    effect_cell(f, &r->relative, 1);
    effect_cell(f, &r->absolute, binomial ? 2 : 0);
    fprintf(f, "<td>%s</td>", cef_report_fmt_p(b1, r->relative.p));
    chance_cell(f, r->chance_to_win);
    fprintf(f, "<td>%s</td></tr>\n",
            cef_report_fmt_pct(b1, r->risk_arm, 0, "%"));
}


static void
test_table(FILE *f, const cef_report_out_t *o, const cef_report_opts_t *opts)
{
    const cef_report_test_t  *t;
    double                    total;
    size_t                    i;
    int                       binomial;

    t = o->test;
    binomial = t->metric == CEF_REPORT_BINOMIAL;

    for (i = 0, total = 0; i < t->narms; i++) {
        if (t->arms[i].n > 0) {
            total += t->arms[i].n;
        }
    }

    fprintf(f, "<div class=\"scroll\">\n<table class=\"arms\">\n<thead>"
            "<tr><th>Arm</th><th>Configured</th><th>Observed</th>"
            "<th>Visitors</th><th>%s</th><th>%s</th><th>Relative lift</th>"
            "<th>Absolute lift</th><th>p-value</th><th>Chance to win</th>"
            "<th>Risk</th></tr></thead>\n<tbody>\n",
            binomial ? "Converters" : "Total value",
            binomial ? "Conversion rate" : "Value per visitor");

    for (i = 0; i < t->narms; i++) {
        arm_row(f, o, i, total);
    }

    fputs("</tbody>\n</table>\n</div>\n<p class=\"explain\">Configured and"
          " observed shares of the visitors; lifts against the control "
          "with ", f);
    interval_words(f, opts);
    fputs(" (Welch's t-test; the relative lift by the delta method). "
          "Chance to win and risk (the expected loss of choosing the arm, "
          "in relative lift) from a Gaussian Bayesian model with a flat "
          "prior.</p>\n", f);
}


static void
test_charts(FILE *f, const cef_report_out_t *o, const cef_report_opts_t *opts)
{
    const cef_report_test_t  *t;

    t = o->test;

    fputs("<div class=\"charts\">\n", f);

    if (t->narms > 1) {
        fputs("<figure>\n<figcaption>Relative lift against the control, "
              "with ", f);
        interval_words(f, opts);
        fputs("</figcaption>\n", f);
        cef_report_svg_forest(f, o);
        fputs("</figure>\n", f);
    }

    fputs("<figure>\n<figcaption>", f);

    if (t->series.nperiods == 0) {
        fputs("Conversions over time</figcaption>\n<p class=\"none\">"
              "No time series: the input has no times (sufficient "
              "statistics).</p>\n</figure>\n</div>\n", f);
        return;
    }

    fputs(t->metric == CEF_REPORT_BINOMIAL
          ? "Conversion rate over time (cumulative, per arm)"
          : "Share of visitors with a conversion over time (cumulative, "
            "per arm)", f);
    fputs("</figcaption>\n", f);
    cef_report_svg_series(f, t);
    fputs("</figure>\n</div>\n", f);
}


int
cef_report_html_write(FILE *f, const cef_report_out_t *outs, size_t n,
    const cef_report_opts_t *opts)
{
    size_t  i;

    page_head(f, n, opts);

    if (n == 0) {
        fputs("<p class=\"none\">No experiment in the input: no impression "
              "record of a visitor bucketed by an experiment.</p>\n", f);
    }

    if (n > 1) {
        page_nav(f, outs, n);
    }

    for (i = 0; i < n; i++) {
        fprintf(f, "<section class=\"test\" id=\"t-%zu\">\n", i + 1);
        test_head(f, &outs[i]);
        test_srm(f, &outs[i]);
        test_table(f, &outs[i], opts);
        test_charts(f, &outs[i], opts);
        fputs("</section>\n", f);
    }

    fputs("<footer>Written by cef-report (ngx_cef_module). A conversion "
          "counts once per visitor, after the visitor's first exposure."
          "</footer>\n</body>\n</html>\n", f);

    return fflush(f) == 0 && !ferror(f) ? 0 : -1;
}
