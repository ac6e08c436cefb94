/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-report's log reading below the command line: the line parser (what
 * it reads of each form, why it rejects a line, that a kept yajl handle
 * starts clean after a bad line), the join on records made here (first
 * exposure, window, merge) and --window's durations.  Built and run with
 * ASan+UBSan by `make unit` (mk/report.mk); the command is tested by
 * tests/integration/test_report_logs.py.
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

#include "cef_report_join.h"
#include "cef_report_logs.h"
#include "cef_report_parse.h"


#define IMP  "{\"v\":1,\"t\":%d,\"rules\":\"r1\",\"visitor\":\"%s\"," \
             "\"in\":{\"slots\":{\"hero\":1},\"x\":[{\"split\":{}}]}," \
             "\"slots\":{\"hero\":{\"offer\":%s,\"variant\":\"%s\"," \
             "\"would\":%s,\"experiment\":\"e\",\"salt\":\"e\"," \
             "\"split\":{\"control\":1000,\"a\":9000}}}}"

/* a bandit's impression: weights version %d with the split %s */
#define BANDIT "{\"v\":1,\"t\":%d,\"rules\":\"r1\",\"visitor\":\"%s\"," \
             "\"slots\":{\"hero\":{\"offer\":\"o\",\"variant\":\"%s\"," \
             "\"experiment\":\"b\",\"salt\":\"b\",\"sticky\":false," \
             "\"weights_version\":%d,\"split\":%s}}}"

#define GOAL "{\"v\":1,\"t\":%d,\"goal\":\"buy\",\"value\":%s," \
             "\"rules\":\"r1\",\"visitor\":\"%s\"}"


static int
parse(cef_report_parser_t *p, const char *line,
    const cef_report_record_t **rec, const char **why)
{
    return cef_report_parse_line(p, line, strlen(line), rec, why);
}


static void
test_forms_of_a_line(void **state)
{
    cef_report_parser_t         *p = cef_report_parse_new();
    const cef_report_record_t   *rec;
    const char                  *why;
    char                         bare[1024], line[2048];
    size_t                       i, k;

    (void) state;
    snprintf(bare, sizeof(bare), IMP, 100, "v1", "\"o\"", "a", "null");

    /* the string member, escaped as escape=json does */
    k = (size_t) snprintf(line, sizeof(line), "{\"uri\":\"/x\",\"decision\":\"");
    for (i = 0; bare[i]; i++) {
        if (bare[i] == '"' || bare[i] == '\\') {
            line[k++] = '\\';
        }
        line[k++] = bare[i];
    }
    snprintf(line + k, sizeof(line) - k, "\"}");

    assert_int_equal(parse(p, line, &rec, &why), 1);
    assert_int_equal(rec->kind, CEF_REPORT_REC_IMPRESSION);
    assert_int_equal(rec->t, 100);
    assert_string_equal(rec->rules, "r1");
    assert_string_equal(rec->visitor, "v1");
    assert_int_equal(rec->nslots, 1);             /* `in`'s "slots" skipped */
    assert_string_equal(rec->slots[0].name, "hero");
    assert_string_equal(rec->slots[0].offer, "o");
    assert_string_equal(rec->slots[0].variant, "a");
    assert_null(rec->slots[0].would);
    assert_string_equal(rec->slots[0].experiment, "e");
    assert_int_equal(rec->slots[0].nsplit, 2);
    assert_string_equal(rec->arms[rec->slots[0].split + 1].name, "a");
    assert_true(rec->arms[rec->slots[0].split + 1].bp == 9000);

    /* bare, and escape=none */
    assert_int_equal(parse(p, bare, &rec, &why), 1);
    assert_string_equal(rec->slots[0].variant, "a");
    snprintf(line, sizeof(line), "{\"time\":\"x\",\"decision\":%s}", bare);
    assert_int_equal(parse(p, line, &rec, &why), 1);
    assert_int_equal(rec->nslots, 1);

    /* a goal record, bare: value */
    snprintf(line, sizeof(line), GOAL, 7, "12.5", "v1");
    assert_int_equal(parse(p, line, &rec, &why), 1);
    assert_int_equal(rec->kind, CEF_REPORT_REC_GOAL);
    assert_string_equal(rec->goal, "buy");
    assert_true(rec->has_value && rec->value == 12.5);

    /* no record */
    assert_int_equal(parse(p, "{\"decision\":\"\"}", &rec, &why), 0);
    assert_int_equal(parse(p, "{\"goal\":null}", &rec, &why), 0);
    assert_int_equal(parse(p, " \r", &rec, &why), 0);

    cef_report_parse_free(p);
}


static void
test_bad_lines_and_a_clean_restart(void **state)
{
    static const struct { const char *line, *why; }  bad[] = {
        { "{\"v\":1,\"t\":1,\"rules\":\"r\",\"goal\":\"g\"} {}",
          "more than one JSON value" },
        { "{\"v\":1,\"t\":1,\"rules\":\"r\",\"goal\":\"g\"",
          "invalid JSON: parse error: premature EOF" },
        { "{\"v\":1,\"t\":1.5,\"rules\":\"r\",\"goal\":\"g\"}",
          "t is not a time in unix seconds" },
        { "{\"v\":1,\"t\":1,\"rules\":\"r\",\"slots\":{\"s\":{\"split\":"
          "{\"a\":10001}}}}", "slot s: split of arm a is not 0 to 10000" },
        { "{\"v\":1,\"t\":1,\"rules\":\"r\",\"slots\":{\"s\":{\"offer\":1}}}",
          "slot s: offer is a number, not a string" },
        { "{\"v\":1,\"t\":1,\"rules\":\"r\"}",
          "record with neither slots nor goal" },
        { "{\"decision\":\"{\\\"v\\\":1,\\\"t\\\":\"}",
          "decision: invalid JSON: parse error: premature EOF" },
        { "{\"goal\":\"[]\"}", "goal: not a JSON object" },
        { "\"x\"", "not a JSON object" },
        /* a token left open after the object (found by fuzz_report_parse:
           it used to begin the next line's parse on the kept handle) */
        { "{\"goal\":\"\"}\":2}", "invalid JSON: more after the object" },
        { "{\"v\":1,\"t\":1,\"rules\":\"r\",\"goal\":\"g\"} 12",
          "more than one JSON value" },
        { "{\"v\":1,\"t\":1,\"rules\":\"r\",\"goal\":\"g\"} \"a}",
          "invalid JSON: more after the object" },
        { "{\"v\":1,\"t\":1,\"rules\":\"r\",\"goal\":\"\xff\"}", NULL },
    };
    cef_report_parser_t         *p = cef_report_parse_new();
    const cef_report_record_t   *rec;
    const char                  *why;
    char                         good[512];
    size_t                       i;

    (void) state;
    snprintf(good, sizeof(good), GOAL, 7, "null", "v1");
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(p, bad[i].line, &rec, &why), -1);
        if (bad[i].why != NULL) {
            assert_string_equal(why, bad[i].why);
        } else {
            assert_non_null(strstr(why, "invalid JSON"));    /* UTF-8 */
        }
        /* the next good line reads as if nothing had happened */
        assert_int_equal(parse(p, good, &rec, &why), 1);
        assert_string_equal(rec->goal, "buy");
        assert_false(rec->has_value);
    }
    cef_report_parse_free(p);
}


static void
add(cef_report_join_t *j, cef_report_parser_t *p, const char *line)
{
    const cef_report_record_t  *rec;
    const char                 *why;

    assert_int_equal(parse(p, line, &rec, &why), 1);
    assert_int_equal(cef_report_join_add(j, rec), 0);
}


static void
test_join_first_exposure_window_and_merge(void **state)
{
    cef_report_parser_t     *p = cef_report_parse_new();
    cef_report_join_t       *j1 = cef_report_join_new();
    cef_report_join_t       *j2 = cef_report_join_new();
    cef_report_join_opts_t   o = { 0, NULL, NULL };
    cef_report_test_t       *t;
    size_t                   n;
    char                     line[1024];

    (void) state;
    /* v1: a at 100 (j1) and at 50 (j2): first exposure 50 after merge */
    snprintf(line, sizeof(line), IMP, 100, "v1", "\"o\"", "a", "null");
    add(j1, p, line);
    snprintf(line, sizeof(line), IMP, 50, "v1", "\"o\"", "a", "null");
    add(j2, p, line);
    /* v2: held out, would-be offer recorded */
    snprintf(line, sizeof(line), IMP, 10, "v2", "null", "control", "\"o\"");
    add(j2, p, line);
    /* v3: control, nothing would have been shown: no exposure */
    snprintf(line, sizeof(line), IMP, 10, "v3", "null", "control", "null");
    add(j1, p, line);
    snprintf(line, sizeof(line), GOAL, 60, "4", "v1");
    add(j1, p, line);
    snprintf(line, sizeof(line), GOAL, 200, "6", "v1");
    add(j2, p, line);
    snprintf(line, sizeof(line), GOAL, 9, "1", "v2");      /* before */
    add(j1, p, line);
    snprintf(line, sizeof(line), GOAL, 20, "1", "v3");
    add(j1, p, line);

    assert_int_equal(cef_report_join_merge(j1, j2), 0);
    cef_report_join_free(j2);

    assert_int_equal(cef_report_join_tests(j1, &o, &t, &n), 0);
    assert_int_equal(n, 2);                       /* binomial, mean */
    assert_int_equal(t[1].metric, CEF_REPORT_MEAN);
    assert_string_equal(t[1].arms[0].name, "control");
    assert_true(t[1].holdout);
    assert_true(t[1].arms[0].n == 1 && t[1].arms[0].sum == 0);
    assert_true(t[1].arms[1].n == 1 && t[1].arms[1].sum == 10
                && t[1].arms[1].sum_squares == 100);
    assert_true(t[1].arms[1].weight == 0.9);
    assert_true(t[0].arms[1].sum == 1 && t[0].arms[1].sum_squares == 1);
    cef_report_join_tests_free(t, n);

    /* within 10 s of the first exposure (50): the purchase at 60 only */
    o.window = 10;
    assert_int_equal(cef_report_join_tests(j1, &o, &t, &n), 0);
    assert_true(t[1].arms[1].sum == 4);
    cef_report_join_tests_free(t, n);

    cef_report_join_free(j1);
    cef_report_parse_free(p);
}


/*
 * A bandit: a visitor's period is the version of their first exposure,
 * also when the earlier exposure is in another join (merged); the
 * periods come out by version; period weighting gives each arm the same
 * mix of periods (0.5 x 1/2 + 0.5 x 0/2 = 0.25 for both arms, where the
 * pooled rates are 1/3 and 1/5).
 */
static void
test_bandit_periods_and_their_weighting(void **state)
{
    static const char       *even = "{\"a\":5000,\"b\":5000}";
    static const char       *skew = "{\"a\":2000,\"b\":8000}";
    static const struct {
        int          t, version;
        const char  *vid, *arm;
        int          buys;
    } v[] = {
        /* version 9 (20/80): 1 a, 3 b, nobody buys; version 2: 2 and 2,
           one of each arm buys */
        { 500, 9, "p", "a", 0 }, { 500, 9, "q", "b", 0 },
        { 500, 9, "r", "b", 0 }, { 500, 9, "s", "b", 0 },
        { 100, 2, "w", "a", 1 }, { 100, 2, "x", "a", 0 },
        { 100, 2, "y", "b", 1 }, { 100, 2, "z", "b", 0 },
    };
    cef_report_parser_t     *p = cef_report_parse_new();
    cef_report_join_t       *j1 = cef_report_join_new();
    cef_report_join_t       *j2 = cef_report_join_new();
    cef_report_join_opts_t   o = { 0, NULL, NULL };
    cef_report_opts_t        so = { 0.05, 0, 5000 };
    cef_report_result_t      res[2];
    cef_report_test_t       *t;
    size_t                   n, i;
    double                   srm, psrm[2];
    char                     line[1024];

    (void) state;
    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        snprintf(line, sizeof(line), BANDIT, v[i].t, v[i].vid, v[i].arm,
                 v[i].version, v[i].version == 9 ? skew : even);
        add(i < 4 ? j1 : j2, p, line);
        if (v[i].buys) {
            snprintf(line, sizeof(line), GOAL, v[i].t + 1, "null", v[i].vid);
            add(j1, p, line);
        }
    }
    /* w comes back under version 9 (sticky): still version 2's */
    snprintf(line, sizeof(line), BANDIT, 600, "w", "a", 9, skew);
    add(j1, p, line);

    assert_int_equal(cef_report_join_merge(j1, j2), 0);
    cef_report_join_free(j2);
    assert_int_equal(cef_report_join_tests(j1, &o, &t, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(t[0].periods.nperiods, 2);
    assert_true(t[0].periods.version[0] == 2 && t[0].periods.version[1] == 9);
    assert_true(t[0].periods.weights[0] == 0.5 && t[0].periods.weights[1] == 0.5);
    assert_true(t[0].periods.weights[2] == 0.2 && t[0].periods.weights[3] == 0.8);
    assert_true(t[0].periods.n[0] == 2 && t[0].periods.n[1] == 2);
    assert_true(t[0].periods.n[2] == 1 && t[0].periods.n[3] == 3);
    assert_true(t[0].periods.sum[0] == 1 && t[0].periods.sum[1] == 1);
    assert_true(t[0].periods.sum[2] == 0 && t[0].periods.sum[3] == 0);
    assert_true(t[0].arms[0].n == 3 && t[0].arms[1].n == 5);

    assert_int_equal(cef_report_periods_analyse(&t[0], &so, res, &srm, psrm),
                     0);
    assert_true(fabs(res[0].mean - 0.25) < 1e-15);
    assert_true(fabs(res[1].mean - 0.25) < 1e-15);
    /* over both versions a expects 2 + 0.8, b 2 + 3.2 (observed 3, 5):
       chi-squared 0.04/2.8 + 0.04/5.2, 1 degree of freedom; version 2 as
       expected, version 9 0.04/0.8 + 0.04/3.2 */
    assert_true(fabs(srm - erfc(sqrt((0.04 / 2.8 + 0.04 / 5.2) / 2)))
                < 1e-12);
    assert_true(fabs(psrm[0] - 1) < 1e-12);
    assert_true(fabs(psrm[1] - erfc(sqrt((0.04 / 0.8 + 0.04 / 3.2) / 2)))
                < 1e-12);
    /* the ordinary analysis of the same test pools: 1/3 and 1/5 */
    assert_int_equal(cef_report_stats_analyse(&t[0], &so, res, &srm), 0);
    assert_true(fabs(res[0].mean - 1.0 / 3) < 1e-15);
    cef_report_join_tests_free(t, n);

    cef_report_join_free(j1);
    cef_report_parse_free(p);
}


static void
test_window_durations(void **state)
{
    static const struct { const char *s; int64_t sec; }  good[] = {
        { "3600", 3600 }, { "3600s", 3600 }, { "90m", 5400 },
        { "24h", 86400 }, { "7d", 604800 }, { "2w", 1209600 },
    };
    static const char *bad[] = {
        "", "0", "-1", "1y", "h", "1hh", "1.5h", " 1h", "99999999999999999999",
        "9223372036854775807d",
    };
    int64_t  sec;
    size_t   i;

    (void) state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(cef_report_logs_window(good[i].s, &sec), 0);
        assert_int_equal(sec, good[i].sec);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(cef_report_logs_window(bad[i], &sec), -1);
    }
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_forms_of_a_line),
        cmocka_unit_test(test_bad_lines_and_a_clean_restart),
        cmocka_unit_test(test_join_first_exposure_window_and_merge),
        cmocka_unit_test(test_bandit_periods_and_their_weighting),
        cmocka_unit_test(test_window_durations),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
