/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-report's HTML page (cef_report_html.c, cef_report_svg.c,
 * cef_report_fmt.c) on hand-built results: a self-contained page with no
 * script and no address, every name from the logs escaped, the SRM verdict
 * loud below p = 0.001, arms without visitors and invalid results shown as
 * such, the forest plot's points on the right side of zero, one point per
 * period in the time series, no "nan" or "inf" anywhere, and a write error
 * reported.
 *
 *   test_report_html --page FILE   writes the sample page (three tests) to
 *                                  FILE for tests/integration/
 *                                  test_report_html.py (Chromium)
 */

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cef_report.h"
#include "cef_report_fmt.h"
#include "cef_report_svg.h"


#define DAY  86400
#define T0   1795392000           /* 2026-11-23 00:00 UTC */
#define NOEFF  { 0, 0, 0, 0, 0 }


/* --- a hand-built report: three tests ------------------------------------ */

/* an A/B/C test with an arm that got no visitors; names that need escaping */
static cef_report_arm_t  ab_arms[] = {
    { "control", 0.34, 3407, 1397, 1397 },
    { "b <script>alert(\"x\")</script>&'", 0.33, 3461, 2423, 2423 },
    { "c", 0.33, 3390, 1220, 1220 },
    { "d-empty", 0, 0, 0, 0 },
};

static int64_t  ab_end[] = { T0 + DAY, T0 + 2 * DAY, T0 + 3 * DAY,
                             T0 + 4 * DAY };

/* cumulative, 4 periods x 4 arms (the empty arm: no points) */
static double  ab_n[] = {
     900,  910,  880, 0,
    1800, 1830, 1760, 0,
    2600, 2650, 2570, 0,
    3407, 3461, 3390, 0,
};

static double  ab_conv[] = {
     360,  600,  330, 0,
     730, 1270,  640, 0,
    1060, 1850,  930, 0,
    1397, 2423, 1220, 0,
};

static cef_report_test_t  ab = {
    "hero-q4", "hero-q4",
    "af15f25d2ba3e1ab9d57351639736d67973fc23331cd5adb59e123dbc3400e9a",
    "hero", "purchase", CEF_REPORT_BINOMIAL, 0, 0, 4, ab_arms,
    { 4, ab_end, ab_n, ab_conv }, { 0, NULL, NULL, NULL, NULL, NULL }
};

static cef_report_result_t  ab_res[] = {
    { 0, NULL, 0.41, NOEFF, NOEFF, 0, 0, 0, 0, 0 },
    { 1, NULL, 0.70, { 0.70, 0.55, 0.86, 0.08, 1e-12 },
      { 0.29, 0.25, 0.33, 0.02, 1e-12 }, 0.9999, 0.55, 0.86, 0.29, 0.0001 },
    { 1, NULL, 0.36, { -0.12, -0.18, -0.06, 0.03, 0.0004 },
      { -0.05, -0.07, -0.03, 0.01, 0.0004 }, 0.0002, -0.18, -0.06,
      0.0001, 0.05 },
    { 0, "no visitors", NAN, { NAN, NAN, NAN, NAN, NAN },
      { NAN, NAN, NAN, NAN, NAN }, NAN, NAN, NAN, NAN, NAN },
};


/* a holdout with a value metric whose SRM fails; a hostile experiment
   name (invalid UTF-8, a control character) */
static cef_report_arm_t  ho_arms[] = {
    { "control", 0.1, 410, 20500.5, 4.1e6 },
    { "treatment", 0.9, 4590, 252450, 5.1e7 },
};

static int64_t  ho_end[] = { T0 + 3600 };
static double   ho_n[] = { 410, 4590 };
static double   ho_conv[] = { 200, 2600 };

static cef_report_test_t  ho = {
    "hold\xff" "out\x01<b>", "side", "0123456789abcdef", "side", "revenue",
    CEF_REPORT_MEAN, 1, 0, 2, ho_arms, { 1, ho_end, ho_n, ho_conv },
    { 0, NULL, NULL, NULL, NULL, NULL }
};

static cef_report_result_t  ho_res[] = {
    { 0, NULL, 50.0, NOEFF, NOEFF, 0, 0, 0, 0, 0 },
    { 1, NULL, 55.0, { 0.10, -0.02, 0.22, 0.06, 0.1 },
      { 5.0, -1.0, 11.0, 3.0, 0.1 }, 0.95, -0.02, 0.22, 5.5, 0.3 },
};


/* `cef-report stats`: no names, no series, weights unknown */
static cef_report_arm_t  st_arms[] = {
    { "control", -1, 1000, 100, 100 },
    { "b", -1, 1000, 120, 120 },
};

static cef_report_test_t  st = {
    NULL, NULL, NULL, NULL, NULL, CEF_REPORT_BINOMIAL, 0, 0, 2, st_arms,
    { 0, NULL, NULL, NULL }, { 0, NULL, NULL, NULL, NULL, NULL }
};

static cef_report_result_t  st_res[] = {
    { 0, NULL, 0.10, NOEFF, NOEFF, 0, 0, 0, 0, 0 },
    { 1, NULL, 0.12, { 0.2, -0.05, 0.45, 0.13, 0.15 },
      { 0.02, -0.005, 0.045, 0.013, 0.15 }, 0.92, -0.05, 0.45, 0.03, 0.006 },
};


static cef_report_out_t  sample[3];
static cef_report_opts_t  opts = { 0.05, 0, 5000 };


static void
sample_init(void)
{
    sample[0] = (cef_report_out_t) { &ab, ab_res, 0.62, NULL };
    sample[1] = (cef_report_out_t) { &ho, ho_res, 2.3e-9, NULL };
    sample[2] = (cef_report_out_t) { &st, st_res, NAN, NULL };
}


/* the page of outs[0..n) as a string (the caller frees it) */
static char *
render(const cef_report_out_t *outs, size_t n, const cef_report_opts_t *o)
{
    char    *buf;
    size_t   len;
    FILE    *f;

    f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(cef_report_html_write(f, outs, n, o), 0);
    assert_int_equal(fclose(f), 0);
    return buf;
}


static size_t
count(const char *hay, const char *needle)
{
    size_t  n;

    for (n = 0; (hay = strstr(hay, needle)) != NULL; hay++) {
        n++;
    }

    return n;
}


/* the text of one section (test i, 1-based) of a page */
static char *
section(const char *page, int i)
{
    const char  *p, *e;
    char         id[32];

    snprintf(id, sizeof(id), "id=\"t-%d\"", i);
    p = strstr(page, id);
    assert_non_null(p);
    e = strstr(p, "</section>");
    assert_non_null(e);
    return strndup(p, (size_t) (e - p));
}


/* --- the tests ------------------------------------------------------------ */

static void
test_page_is_self_contained(void **state)
{
    char  *page;

    (void) state;

    page = render(sample, 3, &opts);

    assert_non_null(strstr(page, "<!DOCTYPE html>\n<html lang=\"en\">"));
    assert_non_null(strstr(page, "<meta charset=\"utf-8\">"));
    assert_non_null(strstr(page, "</html>\n"));
    assert_int_equal(count(page, "<section "), 3);
    assert_int_equal(count(page, "</section>"), 3);
    assert_int_equal(count(page, "<svg "), count(page, "</svg>"));
    /* 2 forest plots + 2 time series (the stats test: forest only) */
    assert_int_equal(count(page, "<svg class=\"forest\""), 3);
    assert_int_equal(count(page, "<svg class=\"series\""), 2);

    /* nothing runs, nothing is fetched */
    assert_null(strstr(page, "<script"));
    assert_null(strstr(page, "<link"));
    assert_null(strstr(page, "<img"));
    assert_null(strstr(page, "http"));
    assert_null(strstr(page, "url("));
    assert_null(strstr(page, "on=\""));

    /* every number finite */
    assert_null(strstr(page, "nan"));
    assert_null(strstr(page, "inf"));
    assert_null(strstr(page, "NaN"));

    /* a table of contents for more than one test, naming the metric */
    assert_non_null(strstr(page, "<a href=\"#t-3\">Sufficient statistics"
                           "</a> \xc2\xb7 conversion rate</li>"));
    assert_non_null(strstr(page, "</a> \xc2\xb7 revenue \xc2\xb7 value per "
                           "visitor <span class=\"tag bad\">"));

    free(page);
}


static void
test_names_are_escaped(void **state)
{
    char  *page;

    (void) state;

    page = render(sample, 3, &opts);

    assert_null(strstr(page, "<script>"));
    assert_null(strstr(page, "alert(\"x\")"));
    assert_null(strstr(page, "<b>\""));
    assert_non_null(strstr(page, "b &lt;script&gt;alert(&quot;x&quot;)"
                           "&lt;/script&gt;&amp;&#39;"));

    /* invalid UTF-8 and a control character become U+FFFD */
    assert_non_null(strstr(page, "hold\xef\xbf\xbdout\xef\xbf\xbd&lt;b&gt;"));
    assert_null(strstr(page, "\xff"));
    assert_null(strstr(page, "\x01"));

    /* the rule-set hash by its first 12 characters */
    assert_non_null(strstr(page, "@ af15f25d2ba3</span>"));
    assert_null(strstr(page, "af15f25d2ba3e"));

    free(page);
}


static void
test_srm_verdicts(void **state)
{
    char  *page, *s1, *s2, *s3;

    (void) state;

    page = render(sample, 3, &opts);
    s1 = section(page, 1);
    s2 = section(page, 2);
    s3 = section(page, 3);

    assert_non_null(strstr(s1, "Sample ratio check passed</b> (p = 0.6200)"));
    assert_null(strstr(s1, "mismatch"));

    assert_non_null(strstr(s2, "<div class=\"srm bad\" role=\"alert\">"));
    assert_non_null(strstr(s2, "Sample ratio mismatch "
                           "(p &lt;\xc2\xa0" "0.0001)"));
    assert_non_null(strstr(s2, "Do not trust these results"));
    assert_non_null(strstr(s2, "<span class=\"tag bad\">sample ratio "
                           "mismatch</span>"));

    assert_non_null(strstr(s3, "Sample ratio check: not possible"));

    /* the mismatch shows in the table of contents too */
    assert_int_equal(count(page, "tag bad"), 2);

    free(s1);
    free(s2);
    free(s3);
    free(page);
}


static void
test_srm_threshold(void **state)
{
    cef_report_out_t   o;
    char              *page;

    (void) state;

    /* just above the threshold: passes; just below: flagged */
    o = (cef_report_out_t) { &ab, ab_res, 0.0011, NULL };
    page = render(&o, 1, &opts);
    assert_non_null(strstr(page, "Sample ratio check passed</b> "
                           "(p = 0.0011)"));
    free(page);

    o.srm_p = 0.0009;
    page = render(&o, 1, &opts);
    assert_non_null(strstr(page, "Sample ratio mismatch (p = 0.0009)"));
    free(page);
}


static void
test_arms_table(void **state)
{
    char  *page, *s1, *s2, *s3;

    (void) state;

    page = render(sample, 3, &opts);
    s1 = section(page, 1);
    s2 = section(page, 2);
    s3 = section(page, 3);

    /* counts with thin spaces, shares, rates */
    assert_non_null(strstr(s1, "<td>34.0%</td><td>33.2%</td><td>3\xe2\x80\xaf"
                           "407</td><td>1\xe2\x80\xaf" "397</td>"
                           "<td>41.0%</td>"));
    assert_non_null(strstr(s1, "<span class=\"tag\">control</span>"));
    assert_non_null(strstr(s1, "<td colspan=\"5\" class=\"note\">baseline"));

    /* b wins: green, its interval, p, chance to win */
    assert_non_null(strstr(s1, "<td class=\"up\">+70.0%<br><small>"
                           "[+55.0%, +86.0%]</small></td>"
                           "<td class=\"up\">+29.0 pp<br><small>"
                           "[+25.0 pp, +33.0 pp]</small></td>"
                           "<td>&lt;\xc2\xa0" "0.0001</td>"
                           "<td class=\"up\">&gt;\xc2\xa0" "99.9%</td>"
                           "<td>0.01%</td></tr>"));

    /* c loses: red, minus signs */
    assert_non_null(strstr(s1, "<td class=\"down\">\xe2\x88\x92" "12.0%"));

    /* the arm without visitors: said so, nothing divided */
    assert_non_null(strstr(s1, "<tr class=\"empty\">"));
    assert_non_null(strstr(s1, "d-empty</td><td>0%</td><td>0%</td><td>0</td>"
                           "<td>0</td><td>\xe2\x80\x94</td>"
                           "<td colspan=\"5\" class=\"note bad\">not "
                           "analysed: no visitors</td>"));

    /* a value metric: value columns, numbers not percentages */
    assert_non_null(strstr(s2, "<th>Total value</th><th>Value per visitor"));
    assert_non_null(strstr(s2, "<td>20500</td><td>50.00</td>"));
    assert_non_null(strstr(s2, "<td>+5.00<br><small>[\xe2\x88\x92" "1.00, "
                           "+11.00]</small></td>"));
    assert_non_null(strstr(s2, "<span class=\"tag\">holdout</span>"));
    assert_non_null(strstr(s2, "goal <b>revenue</b> \xc2\xb7 value per "
                           "visitor"));

    /* weights unknown */
    assert_non_null(strstr(s3, "<td>unknown</td><td>50.0%</td>"));
    assert_non_null(strstr(s3, "No time series"));

    free(s1);
    free(s2);
    free(s3);
    free(page);
}


/* the x of the dashed zero line and of each arm's point in a forest plot */
static void
forest_points(const char *s, double *zero, double *cx, size_t max, size_t *n)
{
    const char  *p, *end;

    p = strstr(s, "<svg class=\"forest\"");
    assert_non_null(p);
    p = strstr(p, "stroke-dasharray");
    assert_non_null(p);

    /* the line's x1 precedes its attributes */
    while (strncmp(p, "<line x1=\"", 10) != 0) {
        p--;
    }
    assert_int_equal(sscanf(p, "<line x1=\"%lf\"", zero), 1);

    end = strstr(p, "</svg>");
    assert_non_null(end);

    for (*n = 0; *n < max && (p = strstr(p, "<circle cx=\"")) != NULL
                 && p < end; p++)
    {
        assert_int_equal(sscanf(p, "<circle cx=\"%lf\"", &cx[(*n)++]), 1);
    }
}


static void
test_forest_plot(void **state)
{
    cef_report_out_t   o;
    double             zero, cx[4];
    size_t             n;
    char              *page, *s1, *s3;

    (void) state;

    o = (cef_report_out_t) { &ab, ab_res, 0.62, NULL };
    page = render(&o, 1, &opts);
    s1 = section(page, 1);

    /* b (+70%) right of zero, c (-12%) left of it, d not drawn */
    forest_points(s1, &zero, cx, 4, &n);
    assert_int_equal(n, 2);
    assert_true(cx[0] > zero);
    assert_true(cx[1] < zero);
    assert_non_null(strstr(s1, "class=\"note\">not analysed: no visitors"
                           "</text>"));
    assert_non_null(strstr(s1, "fill=\"#1a7f37\" class=\"val\">+70.0% "
                           "[+55.0%, +86.0%]</text>"));
    assert_non_null(strstr(s1, "fill=\"#cf222e\" class=\"val\">\xe2\x88\x92"
                           "12.0% [\xe2\x88\x92" "18.0%, \xe2\x88\x92"
                           "6.00%]</text>"));
    assert_non_null(strstr(s1, "95% confidence intervals"));
    free(s1);
    free(page);

    /* an interval crossing zero is grey; --sequential says so */
    opts.sequential = 1;
    o = (cef_report_out_t) { &st, st_res, NAN, NULL };
    page = render(&o, 1, &opts);
    opts.sequential = 0;
    s3 = section(page, 1);
    forest_points(s3, &zero, cx, 4, &n);
    assert_int_equal(n, 1);
    assert_true(cx[0] > zero);
    assert_non_null(strstr(s3, "fill=\"#57606a\" class=\"val\">+20.0%"));
    assert_non_null(strstr(s3, "95% confidence sequences (valid at any "
                           "time; tau 5000)"));
    free(s3);
    free(page);
}


static void
test_time_series(void **state)
{
    cef_report_out_t   o;
    const char        *p, *e;
    double             x, y, prev_x;
    size_t             points;
    char              *page;

    (void) state;

    o = (cef_report_out_t) { &ab, ab_res, 0.62, NULL };
    page = render(&o, 1, &opts);

    /* one line per arm; the empty arm's line has no points */
    assert_int_equal(count(page, "<polyline "), 4);
    assert_non_null(strstr(page, "points=\"\"/>"));

    /* the control's line: four points, left to right */
    p = strstr(page, "<polyline ");
    p = strstr(p, "points=\"") + 8;
    e = strchr(p, '"');
    prev_x = -1;

    for (points = 0; p < e; points++) {
        assert_int_equal(sscanf(p, "%lf,%lf", &x, &y), 2);
        assert_true(x > prev_x);
        prev_x = x;
        p = strchr(p, ' ') + 1;
    }

    assert_int_equal(points, 4);

    /* hover titles, date ticks over a span of days */
    assert_non_null(strstr(page, "<title>control by 2026-11-24: 40.0% "
                           "(360 of 900)</title>"));
    assert_non_null(strstr(page, ">2026-11-27</text>"));
    free(page);

    /* one period: hours, the point in the middle */
    o = (cef_report_out_t) { &ho, ho_res, 0.5, NULL };
    page = render(&o, 1, &opts);
    assert_non_null(strstr(page, "points=\"384.0,"));
    assert_non_null(strstr(page, ">01:00:00</text>"));
    free(page);
}


/* a long run: 500 periods, 10 arms -- lines without dots, the palette
   cycles, names cut in the charts (whole in the table and the titles) */
static void
test_many_periods_and_arms(void **state)
{
    cef_report_arm_t      arms[10];
    cef_report_result_t   res[10];
    cef_report_test_t     t;
    cef_report_out_t      o;
    int64_t               end[500];
    double                n[5000], conv[5000];
    char                  names[10][48], *page;
    size_t                i, p;

    (void) state;

    for (i = 0; i < 10; i++) {
        snprintf(names[i], sizeof(names[i]), "arm-%zu-with-a-rather-long-name",
                 i);
        arms[i] = (cef_report_arm_t) { names[i], 0.1, 5000, 500 + i, 0 };
        res[i] = (cef_report_result_t) { i > 0, NULL, 0.1,
            { 0.002 * i, -0.1, 0.1 + 0.002 * i, 0.05, 0.5 }, NOEFF, 0.5,
            0, 0, 0, 0 };
    }

    for (p = 0; p < 500; p++) {
        end[p] = T0 + (int64_t) p * 3600;
        for (i = 0; i < 10; i++) {
            n[p * 10 + i] = 10.0 * (p + 1);
            conv[p * 10 + i] = (p + 1) * (1.0 + 0.01 * i);
        }
    }

    t = (cef_report_test_t) { "long", "long", NULL, NULL, "g",
        CEF_REPORT_BINOMIAL, 0, 0, 10, arms, { 500, end, n, conv },
        { 0, NULL, NULL, NULL, NULL, NULL } };
    o = (cef_report_out_t) { &t, res, 0.5, NULL };
    page = render(&o, 1, &opts);

    assert_int_equal(count(page, "<polyline "), 10);
    assert_int_equal(count(page, "r=\"2.5\""), 0);
    /* 9 forest rows and 9 colours of a palette of 8: the first again */
    assert_int_equal(count(page, "class=\"lift\""), 9);
    assert_int_equal(count(page, "stroke=\"#0969da\" fill=\"#0969da\""),
                     2);
    assert_non_null(strstr(page, ">arm-9-with-a-rathe\xe2\x80\xa6</text>"));
    assert_non_null(strstr(page, "arm-9-with-a-rather-long-name</td>"));
    assert_null(strstr(page, "nan"));
    free(page);
}


static void
test_empty_and_unanalysed(void **state)
{
    cef_report_out_t   o;
    char              *page;

    (void) state;

    page = render(NULL, 0, NULL);
    assert_non_null(strstr(page, "No experiment in the input"));
    assert_null(strstr(page, "<section"));
    free(page);

    /* no results at all (fewer than two arms) */
    o = (cef_report_out_t) { &st, NULL, NAN, NULL };
    page = render(&o, 1, &opts);
    assert_non_null(strstr(page, "not analysed: the test has fewer than "
                           "two arms"));
    assert_non_null(strstr(page, "Sample ratio check: not possible"));
    assert_null(strstr(page, "nan"));
    free(page);
}


static void
test_write_error(void **state)
{
    FILE  *f;

    (void) state;

    f = fopen("/dev/full", "w");
    assert_non_null(f);
    assert_int_equal(cef_report_html_write(f, sample, 3, &opts), -1);
    fclose(f);
}


static void
test_formats(void **state)
{
    char  b[CEF_REPORT_FMT_LEN];

    (void) state;

    assert_string_equal(cef_report_fmt_pct(b, 0.4112, 0, "%"), "41.1%");
    assert_string_equal(cef_report_fmt_pct(b, 0.00523, 1, "%"), "+0.52%");
    assert_string_equal(cef_report_fmt_pct(b, 1.5, 1, "%"), "+150%");
    assert_string_equal(cef_report_fmt_pct(b, -0.0912, 1, " pp"),
                        "\xe2\x88\x92" "9.12 pp");
    assert_string_equal(cef_report_fmt_pct(b, -0.00001, 1, "%"), "0.00%");
    assert_string_equal(cef_report_fmt_pct(b, NAN, 1, "%"), "\xe2\x80\x94");
    assert_string_equal(cef_report_fmt_pct(b, INFINITY, 1, "%"),
                        "\xe2\x80\x94");

    assert_string_equal(cef_report_fmt_num(b, 59.9, 0), "59.90");
    assert_string_equal(cef_report_fmt_num(b, 123456, 1), "+123456");
    assert_string_equal(cef_report_fmt_num(b, 0.0123, 0), "0.0123");
    assert_string_equal(cef_report_fmt_num(b, -250.25, 0),
                        "\xe2\x88\x92" "250.2");
    assert_string_equal(cef_report_fmt_num(b, 0, 1), "0.00");

    assert_string_equal(cef_report_fmt_count(b, 0), "0");
    assert_string_equal(cef_report_fmt_count(b, 999), "999");
    assert_string_equal(cef_report_fmt_count(b, 1000), "1\xe2\x80\xaf" "000");
    assert_string_equal(cef_report_fmt_count(b, 12345678),
                        "12\xe2\x80\xaf" "345\xe2\x80\xaf" "678");

    assert_string_equal(cef_report_fmt_p(b, 0.0312), "0.0312");
    assert_string_equal(cef_report_fmt_p(b, 1e-12), "&lt;\xc2\xa0" "0.0001");
    assert_string_equal(cef_report_fmt_p(b, NAN), "\xe2\x80\x94");

    assert_int_equal(cef_report_fmt_chars("a\xc3\xa9\xe2\x82\xac"), 3);
    assert_int_equal(cef_report_fmt_chars("\xff\xfe"), 2);
}


static void
test_text_cut(void **state)
{
    char    *buf;
    size_t   len;
    FILE    *f;

    (void) state;

    f = open_memstream(&buf, &len);
    assert_non_null(f);
    /* cut after 3 characters, not bytes; overlong and surrogate forms
       rejected */
    cef_report_fmt_text(f, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 3);
    fputc('|', f);
    cef_report_fmt_text(f, "\xc0\xaf\xed\xa0\x80", 0);
    fputc('|', f);
    cef_report_fmt_text(f, "\xc3\xa9\xc3\xa9\xc3\xa9", 3);
    fclose(f);

    assert_string_equal(buf, "\xc3\xa9\xc3\xa9\xc3\xa9\xe2\x80\xa6|"
                        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                        "\xef\xbf\xbd|\xc3\xa9\xc3\xa9\xc3\xa9");
    free(buf);
}


static int
write_page(const char *path)
{
    FILE  *f;

    f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        return 1;
    }

    if (cef_report_html_write(f, sample, 3, &opts) != 0 || fclose(f) != 0) {
        perror(path);
        return 1;
    }

    return 0;
}


int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page_is_self_contained),
        cmocka_unit_test(test_names_are_escaped),
        cmocka_unit_test(test_srm_verdicts),
        cmocka_unit_test(test_srm_threshold),
        cmocka_unit_test(test_arms_table),
        cmocka_unit_test(test_forest_plot),
        cmocka_unit_test(test_time_series),
        cmocka_unit_test(test_many_periods_and_arms),
        cmocka_unit_test(test_empty_and_unanalysed),
        cmocka_unit_test(test_write_error),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_text_cut),
    };

    sample_init();

    if (argc == 3 && strcmp(argv[1], "--page") == 0) {
        return write_page(argv[2]);
    }

    return cmocka_run_group_tests(tests, NULL, NULL);
}
