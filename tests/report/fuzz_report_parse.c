/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * libFuzzer target: cef-report's reading of log lines (cef_report_parse)
 * and the join of what it reads (cef_report_join), under ASan+UBSan.
 *
 * The input is split at newlines; every line goes through a parser kept
 * for the whole input (as a reading thread keeps one, with its yajl
 * handles) and through a fresh one: both must give the same answer (what
 * one line leaves in a kept parser never changes how the next reads).
 * Records go into two joins, alternately, merged at the end; the tests
 * are built with and without a window (byte 0 picks it).  Built by
 * mk/report.mk: make fuzz-report, and fuzz-smoke replays
 * tests/report/corpus/.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cef_report_join.h"
#include "cef_report_parse.h"


#define CHECK(c)  do { if (!(c)) abort(); } while (0)


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
same(const cef_report_record_t *a, const cef_report_record_t *b)
{
    size_t  i;

    CHECK(a->kind == b->kind && a->t == b->t && a->nslots == b->nslots
          && a->narms == b->narms && a->has_value == b->has_value);
    CHECK(strcmp(a->rules, b->rules) == 0);
    CHECK((a->who == NULL) == (b->who == NULL));
    CHECK(a->who == NULL || strcmp(a->who, b->who) == 0);
    for (i = 0; i < a->nslots; i++) {
        CHECK(strcmp(a->slots[i].name, b->slots[i].name) == 0);
        CHECK(a->slots[i].nsplit == b->slots[i].nsplit);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cef_report_parser_t         *kept, *fresh;
    cef_report_join_t           *j[2];
    cef_report_join_opts_t       o = { 0, NULL, NULL };
    const cef_report_record_t   *r1, *r2;
    cef_report_test_t           *t;
    const char                  *why1, *why2, *p, *end, *nl;
    size_t                       n, k;
    int                          rc1, rc2;
    char                        *copy;

    if (size < 1) {
        return 0;
    }
    o.window = data[0] & 1 ? 3600 : 0;

    /* a copy that ends where the input ends: ASan sees any overread */
    copy = malloc(size - 1 + 1);
    CHECK(copy != NULL);
    memcpy(copy, data + 1, size - 1);
    end = copy + size - 1;

    kept = cef_report_parse_new();
    j[0] = cef_report_join_new();
    j[1] = cef_report_join_new();
    CHECK(kept != NULL && j[0] != NULL && j[1] != NULL);

    for (p = copy, k = 0; p < end; p = nl + 1, k++) {
        nl = memchr(p, '\n', (size_t) (end - p));
        if (nl == NULL) {
            nl = end;
        }
        fresh = cef_report_parse_new();
        CHECK(fresh != NULL);
        rc1 = cef_report_parse_line(kept, p, (size_t) (nl - p), &r1, &why1);
        rc2 = cef_report_parse_line(fresh, p, (size_t) (nl - p), &r2, &why2);
        CHECK(rc1 == rc2 && rc1 >= -1 && rc1 <= 1);
        if (rc1 < 0) {
            CHECK(why1[0] != '\0' && strcmp(why1, why2) == 0);
        } else if (rc1 == 1) {
            same(r1, r2);
            CHECK(cef_report_join_add(j[k & 1], r1) == 0);
        }
        cef_report_parse_free(fresh);
    }

    CHECK(cef_report_join_merge(j[0], j[1]) == 0);
    CHECK(cef_report_join_tests(j[0], &o, &t, &n) == 0);
    for (k = 0; k < n; k++) {
        CHECK(t[k].narms >= 1 && t[k].control < t[k].narms);
        CHECK(t[k].series.nperiods >= 1 && t[k].series.nperiods <= 100);
        CHECK(t[k].arms[t[k].control].n >= t[k].arms[t[k].control].sum
              || t[k].metric == CEF_REPORT_MEAN);
    }
    cef_report_join_tests_free(t, n);

    cef_report_join_free(j[0]);
    cef_report_join_free(j[1]);
    cef_report_parse_free(kept);
    free(copy);
    return 0;
}
