/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * `cef-report stats`: per-arm sufficient statistics in, one test out.  The
 * input is one JSON object (docs/report.md):
 *
 *   {"metric": "binomial" | "mean", "control": NAME,
 *    "arms": [{"name": N, "weight": W, "n": N, "sum": S,
 *              "sum_squares": Q}, ...]}
 *
 * Every error names the member and the arm; unknown members are errors
 * (a typo must not pass as a default).
 */

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cef_report.h"


/* no arm name or message part longer than this reaches a message */
#define CEF_REPORT_SUFF_SHOW   64
/* 2^53: every whole number up to it is exact in a double */
#define CEF_REPORT_SUFF_WHOLE  9007199254740992.0


typedef struct {
    const char  *file;
    char        *err;
    size_t       errlen;
    FILE        *warn;
} cef_report_suff_ctx_t;


static int cef_report_suff_test(cef_report_suff_ctx_t *c, json_t *root,
    cef_report_test_t *t);
static int cef_report_suff_arm(cef_report_suff_ctx_t *c, json_t *v,
    size_t i, cef_report_metric_t metric, cef_report_arm_t *arm);
static int cef_report_suff_number(cef_report_suff_ctx_t *c, json_t *obj,
    const char *key, const char *where, double *out);
static int cef_report_suff_fail(cef_report_suff_ctx_t *c, const char *fmt,
    ...) __attribute__((format(printf, 2, 3)));
static const char *cef_report_suff_show(const char *s, char *buf,
    size_t len);


int
cef_report_suff_read(FILE *f, const char *name, cef_report_test_t *t,
    FILE *warn, char *err, size_t errlen)
{
    int                     rc;
    json_t                 *root;
    cef_report_suff_ctx_t   c;

    memset(t, 0, sizeof(cef_report_test_t));

    c.file = name;
    c.err = err;
    c.errlen = errlen;
    c.warn = warn;

    root = cef_report_suff_load(f, name, err, errlen);
    if (root == NULL) {
        return -1;
    }

    rc = cef_report_suff_test(&c, root, t);
    json_decref(root);

    if (rc != 0) {
        cef_report_suff_free(t);
    }

    return rc;
}


json_t *
cef_report_suff_load(FILE *f, const char *name, char *err, size_t errlen)
{
    json_t                 *root;
    json_error_t            je;
    cef_report_suff_ctx_t   c;

    c.file = name;
    c.err = err;
    c.errlen = errlen;
    c.warn = NULL;

    root = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        if (ferror(f)) {
            cef_report_suff_fail(&c, "cannot read: %s", strerror(errno));

        } else {
            cef_report_suff_fail(&c, "line %d, column %d: invalid JSON: %s",
                                 je.line, je.column, je.text);
        }
    }

    return root;
}


void
cef_report_suff_free(cef_report_test_t *t)
{
    size_t  i;

    if (t->arms != NULL) {
        for (i = 0; i < t->narms; i++) {
            free(t->arms[i].name);
        }
    }

    free(t->arms);
    memset(t, 0, sizeof(cef_report_test_t));
}


static int
cef_report_suff_test(cef_report_suff_ctx_t *c, json_t *root,
    cef_report_test_t *t)
{
    size_t       i, j, nweights;
    json_t      *v, *arms, *metric, *control;
    const char  *key, *name;
    char         show[CEF_REPORT_SUFF_SHOW + 8];

    if (!json_is_object(root)) {
        return cef_report_suff_fail(c, "expected one JSON object with "
                                    "\"metric\" and \"arms\"");
    }

    json_object_foreach(root, key, v) {
        if (strcmp(key, "metric") != 0 && strcmp(key, "control") != 0
            && strcmp(key, "arms") != 0)
        {
            return cef_report_suff_fail(c, "unknown member \"%s\" (expected "
                       "metric, control, arms)",
                       cef_report_suff_show(key, show, sizeof(show)));
        }
    }

    metric = json_object_get(root, "metric");
    if (metric == NULL) {
        return cef_report_suff_fail(c, "member \"metric\" is missing "
                                    "(\"binomial\" or \"mean\")");
    }

    if (json_is_string(metric)
        && strcmp(json_string_value(metric), "binomial") == 0)
    {
        t->metric = CEF_REPORT_BINOMIAL;

    } else if (json_is_string(metric)
               && strcmp(json_string_value(metric), "mean") == 0)
    {
        t->metric = CEF_REPORT_MEAN;

    } else {
        return cef_report_suff_fail(c, "member \"metric\": expected "
                                    "\"binomial\" or \"mean\"");
    }

    arms = json_object_get(root, "arms");
    if (!json_is_array(arms) || json_array_size(arms) < 2) {
        return cef_report_suff_fail(c, "member \"arms\": expected an array "
                                    "of at least two arms");
    }

    t->arms = calloc(json_array_size(arms), sizeof(cef_report_arm_t));
    if (t->arms == NULL) {
        return cef_report_suff_fail(c, "out of memory");
    }

    nweights = 0;

    json_array_foreach(arms, i, v) {
        t->narms = i + 1;       /* so that a failure frees this arm's name */

        if (cef_report_suff_arm(c, v, i, t->metric, &t->arms[i]) != 0) {
            return -1;
        }

        nweights += t->arms[i].weight >= 0;

        for (j = 0; j < i; j++) {
            if (strcmp(t->arms[j].name, t->arms[i].name) == 0) {
                return cef_report_suff_fail(c, "arms[%zu]: duplicate arm "
                           "name \"%s\"", i,
                           cef_report_suff_show(t->arms[i].name, show,
                                                sizeof(show)));
            }
        }
    }

    if (nweights != 0 && nweights != t->narms) {
        return cef_report_suff_fail(c, "member \"weight\": given for %zu of "
                                    "%zu arms (all or none: the SRM check "
                                    "needs every arm's share)",
                                    nweights, t->narms);
    }

    control = json_object_get(root, "control");
    if (control != NULL && !json_is_string(control)) {
        return cef_report_suff_fail(c, "member \"control\": expected the "
                                    "name of an arm");
    }

    name = control != NULL ? json_string_value(control) : "control";

    for (i = 0; i < t->narms; i++) {
        if (strcmp(t->arms[i].name, name) == 0) {
            t->control = i;
            return 0;
        }
    }

    if (control == NULL) {
        return cef_report_suff_fail(c, "member \"control\" is missing and "
                                    "no arm is named \"control\"");
    }

    return cef_report_suff_fail(c, "member \"control\": no arm is named "
                                "\"%s\"",
                                cef_report_suff_show(name, show,
                                                     sizeof(show)));
}


static int
cef_report_suff_arm(cef_report_suff_ctx_t *c, json_t *v, size_t i,
    cef_report_metric_t metric, cef_report_arm_t *arm)
{
    json_t      *name, *m;
    const char  *key;
    char         where[CEF_REPORT_SUFF_SHOW + 32];
    char         show[CEF_REPORT_SUFF_SHOW + 8];

    if (!json_is_object(v)) {
        return cef_report_suff_fail(c, "arms[%zu]: expected an object with "
                                    "\"name\", \"n\" and \"sum\"", i);
    }

    name = json_object_get(v, "name");
    if (!json_is_string(name) || json_string_length(name) == 0) {
        return cef_report_suff_fail(c, "arms[%zu]: member \"name\": expected "
                                    "a non-empty string", i);
    }

    if (strlen(json_string_value(name)) != json_string_length(name)) {
        return cef_report_suff_fail(c, "arms[%zu]: member \"name\": contains "
                                    "a NUL character", i);
    }

    snprintf(where, sizeof(where), "arms[%zu] (\"%s\")", i,
             cef_report_suff_show(json_string_value(name), show,
                                  sizeof(show)));

    json_object_foreach(v, key, m) {
        if (strcmp(key, "name") != 0 && strcmp(key, "weight") != 0
            && strcmp(key, "n") != 0 && strcmp(key, "sum") != 0
            && strcmp(key, "sum_squares") != 0)
        {
            return cef_report_suff_fail(c, "%s: unknown member \"%s\" "
                       "(expected name, weight, n, sum, sum_squares)", where,
                       cef_report_suff_show(key, show, sizeof(show)));
        }
    }

    arm->name = strdup(json_string_value(name));
    if (arm->name == NULL) {
        return cef_report_suff_fail(c, "out of memory");
    }

    arm->weight = -1;

    if (json_object_get(v, "weight") != NULL) {
        if (cef_report_suff_number(c, v, "weight", where, &arm->weight) != 0)
        {
            return -1;
        }

        if (arm->weight < 0) {
            return cef_report_suff_fail(c, "%s: member \"weight\": expected a "
                                        "share >= 0", where);
        }
    }

    if (cef_report_suff_number(c, v, "n", where, &arm->n) != 0
        || cef_report_suff_number(c, v, "sum", where, &arm->sum) != 0)
    {
        return -1;
    }

    if (arm->n < 0 || arm->n != floor(arm->n)
        || arm->n > CEF_REPORT_SUFF_WHOLE)
    {
        return cef_report_suff_fail(c, "%s: member \"n\": expected a whole "
                                    "number of visitors >= 0", where);
    }

    if (metric == CEF_REPORT_BINOMIAL) {
        if (arm->sum < 0 || arm->sum > arm->n) {
            return cef_report_suff_fail(c, "%s: member \"sum\": expected the "
                                        "converting visitors, 0 to n (%.17g)",
                                        where, arm->n);
        }

        if (json_object_get(v, "sum_squares") != NULL && c->warn != NULL) {
            fprintf(c->warn, "%s: %s: warning: member \"sum_squares\" is "
                    "ignored for a binomial metric (its variance is "
                    "p(1 - p))\n",
                    c->file, where);
        }

        arm->sum_squares = arm->sum;
        return 0;
    }

    if (json_object_get(v, "sum_squares") == NULL) {
        return cef_report_suff_fail(c, "%s: member \"sum_squares\" is "
                                    "missing (a mean metric needs it)",
                                    where);
    }

    if (cef_report_suff_number(c, v, "sum_squares", where, &arm->sum_squares)
        != 0)
    {
        return -1;
    }

    /* sum^2 <= n * sum_squares for any set of values (Cauchy-Schwarz);
       the slack is for a warehouse's rounding */
    if (arm->sum_squares < 0
        || (arm->n > 0 && arm->sum * arm->sum
                          > arm->n * arm->sum_squares * (1 + 1e-9) + 1e-12))
    {
        return cef_report_suff_fail(c, "%s: member \"sum_squares\": %.17g "
                   "cannot be the sum of squares of %.17g values summing to "
                   "%.17g", where, arm->sum_squares, arm->n, arm->sum);
    }

    if (arm->n == 0 && (arm->sum != 0 || arm->sum_squares != 0)) {
        return cef_report_suff_fail(c, "%s: \"sum\" and \"sum_squares\" must "
                                    "be 0 when \"n\" is 0", where);
    }

    return 0;
}


static int
cef_report_suff_number(cef_report_suff_ctx_t *c, json_t *obj,
    const char *key, const char *where, double *out)
{
    json_t  *v;

    v = json_object_get(obj, key);
    if (v == NULL) {
        return cef_report_suff_fail(c, "%s: member \"%s\" is missing", where,
                                    key);
    }

    if (!json_is_number(v) || !isfinite(json_number_value(v))) {
        return cef_report_suff_fail(c, "%s: member \"%s\": expected a number",
                                    where, key);
    }

    *out = json_number_value(v);
    return 0;
}


static int
cef_report_suff_fail(cef_report_suff_ctx_t *c, const char *fmt, ...)
{
    int      n;
    va_list  ap;

    n = snprintf(c->err, c->errlen, "%s: ", c->file);
    if (n < 0 || (size_t) n >= c->errlen) {
        return -1;
    }

    va_start(ap, fmt);
    vsnprintf(c->err + n, c->errlen - n, fmt, ap);
    va_end(ap);

    return -1;
}


/* s for a message: control characters as '?', cut at a readable length */
static const char *
cef_report_suff_show(const char *s, char *buf, size_t len)
{
    size_t  i;

    for (i = 0; s[i] != '\0' && i + 4 < len && i < CEF_REPORT_SUFF_SHOW; i++)
    {
        buf[i] = ((unsigned char) s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    }

    if (s[i] != '\0') {
        while (i > 0 && ((unsigned char) s[i] & 0xc0) == 0x80) {
            i--;            /* not into the middle of a UTF-8 character */
        }

        memcpy(buf + i, "...", 3);
        i += 3;
    }

    buf[i] = '\0';
    return buf;
}
