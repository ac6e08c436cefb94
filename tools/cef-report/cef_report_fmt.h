/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Part of cef-report (the files and what passes between them: cef_report.h).
 *
 * cef_report_fmt: text and numbers for the HTML page (cef_report_html.c,
 * cef_report_svg.c).  A leaf: it depends on nothing of ours.
 *
 * Every string that came from a log (experiment, arm, goal, slot names) is
 * written through cef_report_fmt_text(), which escapes it for HTML and for
 * SVG alike.  Numbers are formatted into a caller's buffer of
 * CEF_REPORT_FMT_LEN bytes, ready for the page as they are (UTF-8 and
 * character references; they are not passed through cef_report_fmt_text());
 * a number that is not finite is written as an em dash, never as "nan" or
 * "inf".
 */

#ifndef CEF_REPORT_FMT_H
#define CEF_REPORT_FMT_H

#include <stddef.h>
#include <stdio.h>


#define CEF_REPORT_FMT_LEN  48


/*
 * Write s as HTML text (also valid in an attribute value in double quotes):
 * & < > " ' as character references, control characters and bytes that
 * are not valid UTF-8 as U+FFFD.  At most max characters (0: all), then
 * an ellipsis.  NULL writes nothing.
 */
void cef_report_fmt_text(FILE *f, const char *s, size_t max);

/* The number of characters (code points) cef_report_fmt_text() writes for
   s, before any cut. */
size_t cef_report_fmt_chars(const char *s);

/*
 * v (a fraction) as a percentage with three significant digits at most two
 * decimals: 0.4112 -> "41.1%", 0.00523 -> "0.52%"; sign: "+" on positive
 * numbers; unit: "%" or " pp" (percentage points), written after the
 * number.  Exactly zero is "0%".  Minus is U+2212.
 */
char *cef_report_fmt_pct(char *buf, double v, int sign, const char *unit);

/* the same with dec decimals (axis ticks) */
char *cef_report_fmt_pct_fixed(char *buf, double v, int sign,
    const char *unit, int dec);

/* v as a plain number for values (per-visitor means, sums): 59.9 ->
   "59.90", 123456 -> "123456", 0.0123 -> "0.0123"; sign as above. */
char *cef_report_fmt_num(char *buf, double v, int sign);

/* v as a whole count with thin spaces between thousands: "12 345". */
char *cef_report_fmt_count(char *buf, double v);

/* a p-value: "0.0312", "< 0.0001" (a no-break space after "<") */
char *cef_report_fmt_p(char *buf, double p);


#endif /* CEF_REPORT_FMT_H */
