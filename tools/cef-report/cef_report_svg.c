/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-report: the charts of the HTML page as inline SVG (cef_report_svg.h).
 */

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cef_report.h"
#include "cef_report_fmt.h"
#include "cef_report_svg.h"


#define WIDTH        720

/* the forest plot: labels | plot | numbers */
#define F_LABEL_X    142
#define F_PLOT_X0    156
#define F_PLOT_X1    520
#define F_TEXT_X     534
#define F_TOP        10
#define F_ROW        32
#define F_AXIS       30

/* the time series */
#define S_X0         64
#define S_X1         (WIDTH - 16)
#define S_TOP        14
#define S_BOTTOM     190
#define S_LEGEND     22
#define S_MAX_DOTS   60           /* more periods: lines without dots */

#define NAME_CHARS   18           /* longer names are cut (full in title) */
#define MAX_TICKS    12

#define COLOR_UP     "#1a7f37"
#define COLOR_DOWN   "#cf222e"
#define COLOR_FLAT   "#57606a"
#define COLOR_GRID   "#d0d7de"
#define COLOR_TEXT   "#24292f"
#define COLOR_MUTED  "#57606a"


static const char  *palette[] = {
    "#0969da", "#bc4c00", "#8250df", "#1b7c83", "#bf3989", "#9a6700",
    "#1a7f37", "#cf222e"
};


/* A linear axis with "nice" ticks: lo and hi are multiples of step. */
typedef struct {
    double   lo, hi, step;
} axis_t;


static void
axis_nice(axis_t *a, double lo, double hi, int ticks)
{
    double  raw, mag, r, pad;

    if (!isfinite(lo) || !isfinite(hi)) {
        lo = -0.1;
        hi = 0.1;
    }

    if (!(hi > lo)) {
        pad = lo == 0 ? 0.01 : fabs(lo) * 0.1;
        lo -= pad;
        hi += pad;
    }

    raw = (hi - lo) / ticks;
    mag = pow(10, floor(log10(raw)));
    r = raw / mag;
    a->step = (r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10) * mag;
    a->lo = floor(lo / a->step + 1e-9) * a->step;
    a->hi = ceil(hi / a->step - 1e-9) * a->step;

    if (!(a->hi > a->lo)) {
        a->hi = a->lo + a->step;
    }
}


/* the pixel of v on an axis drawn from p0 to p1 (v clamped to the axis) */
static double
axis_px(const axis_t *a, double v, double p0, double p1)
{
    if (v < a->lo) {
        v = a->lo;
    }

    if (v > a->hi) {
        v = a->hi;
    }

    return p0 + (v - a->lo) / (a->hi - a->lo) * (p1 - p0);
}


/* the i-th tick, with the rounding noise of i * step removed */
static double
axis_tick(const axis_t *a, int i)
{
    double  v;

    v = a->lo + i * a->step;
    return fabs(v) < a->step * 1e-9 ? 0 : v;
}


/* a tick's label: as many decimals of a percentage as the step needs */
static char *
axis_label(char *buf, const axis_t *a, double v, int sign)
{
    int  dec;

    dec = (int) -floor(log10(a->step * 100) + 1e-9);
    return cef_report_fmt_pct_fixed(buf, v, sign, "%", dec < 0 ? 0 : dec);
}


static int
axis_nticks(const axis_t *a)
{
    int  n;

    n = (int) floor((a->hi - a->lo) / a->step + 1e-9) + 1;
    return n > MAX_TICKS ? MAX_TICKS : n;
}


const char *
cef_report_svg_color(const cef_report_test_t *t, size_t i)
{
    size_t  k;

    if (i == t->control) {
        return COLOR_FLAT;
    }

    k = i < t->control ? i : i - 1;
    return palette[k % (sizeof(palette) / sizeof(palette[0]))];
}


static int
forest_shows(const cef_report_out_t *o, size_t i)
{
    const cef_report_result_t  *r;

    if (o->res == NULL) {
        return 0;
    }

    r = &o->res[i];
    return r->valid && isfinite(r->relative.lift);
}


void
cef_report_svg_forest(FILE *f, const cef_report_out_t *o)
{
    const cef_report_test_t    *t;
    const cef_report_result_t  *r;
    const char                 *color;
    axis_t                      ax;
    double                      lo, hi, y, x0, x1, xp, v;
    size_t                      i, row, rows;
    int                         k, nt;
    char                        b1[CEF_REPORT_FMT_LEN];
    char                        b2[CEF_REPORT_FMT_LEN];
    char                        b3[CEF_REPORT_FMT_LEN];

    t = o->test;
    rows = t->narms > 0 ? t->narms - 1 : 0;

    if (rows == 0) {
        return;
    }

    /* the axis spans zero and every finite interval */
    lo = 0;
    hi = 0;

    for (i = 0; i < t->narms; i++) {
        if (i == t->control || !forest_shows(o, i)) {
            continue;
        }

        r = &o->res[i];

        lo = fmin(lo, r->relative.lift);
        hi = fmax(hi, r->relative.lift);

        if (isfinite(r->relative.lo)) {
            lo = fmin(lo, r->relative.lo);
        }

        if (isfinite(r->relative.hi)) {
            hi = fmax(hi, r->relative.hi);
        }
    }

    axis_nice(&ax, lo, hi, 5);
    nt = axis_nticks(&ax);

    fprintf(f, "<svg class=\"forest\" viewBox=\"0 0 %d %d\" role=\"img\" "
            "aria-label=\"relative lift per arm with its interval\">\n",
            WIDTH, F_TOP + (int) rows * F_ROW + F_AXIS);

    /* grid and tick labels; the zero line darker */
    for (k = 0; k < nt; k++) {
        v = axis_tick(&ax, k);
        xp = axis_px(&ax, v, F_PLOT_X0, F_PLOT_X1);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" "
                "stroke=\"%s\"%s/>\n", xp, F_TOP, xp,
                F_TOP + (int) rows * F_ROW,
                v == 0 ? COLOR_MUTED : COLOR_GRID,
                v == 0 ? " stroke-dasharray=\"4 3\"" : "");
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" "
                "fill=\"%s\">%s</text>\n", xp,
                F_TOP + (int) rows * F_ROW + 18, COLOR_MUTED,
                axis_label(b1, &ax, v, 1));
    }

    for (i = 0, row = 0; i < t->narms; i++) {
        if (i == t->control) {
            continue;
        }

        y = F_TOP + row++ * F_ROW + F_ROW / 2.0;

        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" "
                "fill=\"%s\" class=\"arm\"><title>", F_LABEL_X, y + 4,
                COLOR_TEXT);
        cef_report_fmt_text(f, t->arms[i].name, 0);
        fputs("</title>", f);
        cef_report_fmt_text(f, t->arms[i].name, NAME_CHARS);
        fputs("</text>\n", f);

        if (!forest_shows(o, i)) {
            r = o->res != NULL ? &o->res[i] : NULL;
            fprintf(f, "<text x=\"%d\" y=\"%.1f\" fill=\"%s\" "
                    "class=\"note\">not analysed: ", F_PLOT_X0 + 6, y + 4,
                    COLOR_DOWN);
            cef_report_fmt_text(f, r != NULL && r->note != NULL ? r->note
                                : "no result", 0);
            fputs("</text>\n", f);
            continue;
        }

        r = &o->res[i];
        color = r->relative.lo > 0 ? COLOR_UP
                : (r->relative.hi < 0 ? COLOR_DOWN : COLOR_FLAT);
        xp = axis_px(&ax, r->relative.lift, F_PLOT_X0, F_PLOT_X1);

        if (isfinite(r->relative.lo) && isfinite(r->relative.hi)) {
            x0 = axis_px(&ax, r->relative.lo, F_PLOT_X0, F_PLOT_X1);
            x1 = axis_px(&ax, r->relative.hi, F_PLOT_X0, F_PLOT_X1);
            fprintf(f, "<path d=\"M%.1f %.1fH%.1fM%.1f %.1fV%.1fM%.1f %.1f"
                    "V%.1f\" stroke=\"%s\" stroke-width=\"2.5\" "
                    "fill=\"none\" class=\"ci\"/>\n", x0, y, x1,
                    x0, y - 6, y + 6, x1, y - 6, y + 6, color);
            snprintf(b3, sizeof(b3), " [%s, ", cef_report_fmt_pct(b2,
                     r->relative.lo, 1, "%"));

        } else {
            strcpy(b3, " [interval undefined");
            b2[0] = '\0';
        }

        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5.5\" fill=\"%s\" "
                "class=\"lift\" data-lift=\"%.6g\"><title>", xp, y, color,
                r->relative.lift);
        cef_report_fmt_text(f, t->arms[i].name, 0);
        fprintf(f, ": %s</title></circle>\n",
                cef_report_fmt_pct(b1, r->relative.lift, 1, "%"));

        fprintf(f, "<text x=\"%d\" y=\"%.1f\" fill=\"%s\" class=\"val\">"
                "%s%s%s]</text>\n", F_TEXT_X, y + 4, color, b1, b3,
                isfinite(r->relative.hi)
                ? cef_report_fmt_pct(b2, r->relative.hi, 1, "%") : "");
    }

    fputs("</svg>\n", f);
}


/* a period's end as a tick label: dates over days, minutes over hours,
   seconds within an hour */
static char *
time_label(char *buf, size_t len, int64_t at, int64_t span)
{
    struct tm  tm;
    time_t     tt;

    tt = (time_t) at;

    if (gmtime_r(&tt, &tm) == NULL) {
        snprintf(buf, len, "%lld", (long long) at);
        return buf;
    }

    strftime(buf, len, span >= 2 * 86400 ? "%Y-%m-%d"
                       : (span >= 2 * 3600 ? "%m-%d %H:%M" : "%H:%M:%S"), &tm);
    return buf;
}


/* the x pixel of period p's end (one period: the middle) */
static double
series_x(const cef_report_series_t *s, size_t p)
{
    int64_t  span;

    span = s->end[s->nperiods - 1] - s->end[0];

    if (span <= 0) {
        return (S_X0 + S_X1) / 2.0;
    }

    return S_X0 + (double) (s->end[p] - s->end[0]) / (double) span
                  * (S_X1 - S_X0);
}


static void
series_legend(FILE *f, const cef_report_test_t *t, int y)
{
    size_t  i, chars;
    double  x;

    x = S_X0;

    for (i = 0; i < t->narms; i++) {
        chars = cef_report_fmt_chars(t->arms[i].name);
        chars = chars > NAME_CHARS ? NAME_CHARS + 1 : chars;

        fprintf(f, "<rect x=\"%.1f\" y=\"%d\" width=\"14\" height=\"4\" "
                "fill=\"%s\"/><text x=\"%.1f\" y=\"%d\" fill=\"%s\">", x,
                y - 4, cef_report_svg_color(t, i), x + 18, y, COLOR_TEXT);
        cef_report_fmt_text(f, t->arms[i].name, NAME_CHARS);
        fputs("</text>\n", f);

        x += 18 + 7.0 * (double) chars + 18;
    }
}


void
cef_report_svg_series(FILE *f, const cef_report_test_t *t)
{
    const cef_report_series_t  *s;
    axis_t                      ay;
    double                      top, rate, n, c, xp, yp;
    size_t                      i, p, np, na, tick, last;
    int64_t                     span;
    int                         k, nt;
    char                        b1[CEF_REPORT_FMT_LEN];
    char                        b2[CEF_REPORT_FMT_LEN];
    char                        b3[CEF_REPORT_FMT_LEN];
    char                        when[32];

    s = &t->series;
    np = s->nperiods;
    na = t->narms;

    if (np == 0 || na == 0) {
        return;
    }

    top = 0;

    for (p = 0; p < np * na; p++) {
        if (s->n[p] > 0 && isfinite(s->converters[p] / s->n[p])) {
            top = fmax(top, s->converters[p] / s->n[p]);
        }
    }

    axis_nice(&ay, 0, top > 0 ? top : 0.01, 4);
    nt = axis_nticks(&ay);

    span = s->end[np - 1] - s->end[0];

    fprintf(f, "<svg class=\"series\" viewBox=\"0 0 %d %d\" role=\"img\" "
            "aria-label=\"cumulative conversion per arm over time\">\n",
            WIDTH, S_BOTTOM + 24 + S_LEGEND);

    for (k = 0; k < nt; k++) {
        yp = axis_px(&ay, axis_tick(&ay, k), S_BOTTOM, S_TOP);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
                "stroke=\"%s\"/>\n<text x=\"%d\" y=\"%.1f\" "
                "text-anchor=\"end\" fill=\"%s\">%s</text>\n", S_X0, yp,
                S_X1, yp, k == 0 ? COLOR_MUTED : COLOR_GRID, S_X0 - 6,
                yp + 4, COLOR_MUTED,
                axis_label(b1, &ay, axis_tick(&ay, k), 0));
    }

    /* up to six time ticks, on periods, first and last included */
    last = (size_t) -1;

    for (k = 0; k < 6; k++) {
        tick = np == 1 ? 0 : (size_t) k * (np - 1) / 5;

        if (tick == last) {
            continue;
        }

        last = tick;
        xp = series_x(s, tick);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"%s\" "
                "fill=\"%s\">%s</text>\n", xp, S_BOTTOM + 18,
                np == 1 ? "middle" : (k == 0 ? "start"
                                      : (k == 5 ? "end" : "middle")),
                COLOR_MUTED, time_label(when, sizeof(when), s->end[tick],
                                        span));
    }

    for (i = 0; i < na; i++) {
        fprintf(f, "<g class=\"arm-series\" stroke=\"%s\" fill=\"%s\">"
                "<title>", cef_report_svg_color(t, i),
                cef_report_svg_color(t, i));
        cef_report_fmt_text(f, t->arms[i].name, 0);
        fputs("</title>\n<polyline fill=\"none\" stroke-width=\"2\" "
              "points=\"", f);

        for (p = 0; p < np; p++) {
            n = s->n[p * na + i];
            c = s->converters[p * na + i];

            if (!(n > 0) || !isfinite(c / n)) {
                continue;
            }

            xp = series_x(s, p);
            yp = axis_px(&ay, c / n, S_BOTTOM, S_TOP);
            fprintf(f, "%.1f,%.1f ", xp, yp);
        }

        fputs("\"/>\n", f);

        for (p = 0; np <= S_MAX_DOTS && p < np; p++) {
            n = s->n[p * na + i];
            c = s->converters[p * na + i];
            rate = c / n;

            if (!(n > 0) || !isfinite(rate)) {
                continue;
            }

            xp = series_x(s, p);
            yp = axis_px(&ay, rate, S_BOTTOM, S_TOP);
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\">"
                    "<title>", xp, yp);
            cef_report_fmt_text(f, t->arms[i].name, 0);
            fprintf(f, " by %s: %s (%s of %s)</title></circle>\n",
                    time_label(when, sizeof(when), s->end[p], span),
                    cef_report_fmt_pct(b1, rate, 0, "%"),
                    cef_report_fmt_count(b2, c), cef_report_fmt_count(b3, n));
        }

        fputs("</g>\n", f);
    }

    series_legend(f, t, S_BOTTOM + 24 + S_LEGEND - 6);
    fputs("</svg>\n", f);
}
