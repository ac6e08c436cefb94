/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * The weights record (docs/formats.md, "Weights records"): one compact
 * JSON object on one line, the shape of a cef-sync delta record without
 * its "seq":
 *
 *   {"op":"weights","experiment":E,"salt":S,"version":V,"created_at":T,
 *    "weights":{ARM:BP,...},"updated":B,"exposures":{ARM:N,...},
 *    "goal":G,"metric":"conversion"|"value","method":"top-two"|"thompson",
 *    "draws":D,"floor":F,"seed":SEED}
 *
 * and reading one back (--previous): its version and weights.
 */

#include <errno.h>
#include <math.h>
#include <string.h>

#include <jansson.h>

#include "cef_report_bandit.h"


/* the floor and other reals: as written on the command line, not
   0.010000000000000000208 */
#define CEF_REPORT_BANDIT_RECORD_FLAGS \
    (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10))


int
cef_report_bandit_record_write(FILE *f,
    const cef_report_bandit_record_t *rec)
{
    int                                rc;
    size_t                             i;
    json_t                            *root, *weights, *exposures;
    const cef_report_bandit_input_t   *in;
    const cef_report_bandit_result_t  *res;

    in = rec->in;
    res = rec->res;

    weights = json_object();
    exposures = json_object();

    for (i = 0; weights != NULL && exposures != NULL && i < in->narms; i++)
    {
        if (json_object_set_new(weights, in->names[i],
                                json_integer(res->bp[i])) != 0
            || json_object_set_new(exposures, in->names[i],
                   json_integer((json_int_t) res->exposures[i])) != 0)
        {
            break;
        }
    }

    root = json_pack("{sssssssIsIsosbsososssssIsfsI}",
        "op", "weights",
        "experiment", rec->experiment,
        "salt", rec->salt,
        "version", (json_int_t) rec->version,
        "created_at", (json_int_t) rec->created_at,
        "weights", weights,
        "updated", res->updated,
        "exposures", exposures,
        "goal", rec->goal != NULL ? json_string(rec->goal) : json_null(),
        "metric", in->metric == CEF_REPORT_BINOMIAL ? "conversion" : "value",
        "method", rec->opts->method == CEF_REPORT_BANDIT_TOP_TWO
                  ? "top-two" : "thompson",
        "draws", (json_int_t) rec->opts->draws,
        "floor", rec->opts->floor,
        "seed", (json_int_t) rec->opts->seed);

    if (root == NULL || i != in->narms) {
        json_decref(root);
        return -1;
    }

    rc = json_dumpf(root, f, CEF_REPORT_BANDIT_RECORD_FLAGS);
    json_decref(root);

    if (rc != 0 || fputc('\n', f) == EOF) {
        return -1;
    }

    return 0;
}


int
cef_report_bandit_record_read(FILE *f, const char *name,
    const char *experiment, uint64_t *version, char **names, size_t narms,
    double *w, char *err, size_t errlen)
{
    size_t        i;
    json_t       *root, *v, *weights;
    json_int_t    bp;
    json_error_t  je;

    root = json_loadf(f, JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK,
                      &je);
    if (root == NULL) {
        if (ferror(f)) {
            snprintf(err, errlen, "%s: cannot read: %s", name,
                     strerror(errno));
        } else {
            snprintf(err, errlen, "%s: line %d, column %d: invalid JSON: %s",
                     name, je.line, je.column, je.text);
        }

        return -1;
    }

    if (!json_is_object(root)
        || !json_is_string(json_object_get(root, "op"))
        || strcmp(json_string_value(json_object_get(root, "op")), "weights")
           != 0)
    {
        snprintf(err, errlen, "%s: not a weights record (no \"op\": "
                 "\"weights\")", name);
        goto failed;
    }

    v = json_object_get(root, "experiment");
    if (!json_is_string(v) || strcmp(json_string_value(v), experiment) != 0)
    {
        snprintf(err, errlen, "%s: the weights record of experiment "
                 "\"%.64s\", not \"%.64s\"", name,
                 json_is_string(v) ? json_string_value(v) : "?", experiment);
        goto failed;
    }

    v = json_object_get(root, "version");
    if (!json_is_integer(v) || json_integer_value(v) < 1) {
        snprintf(err, errlen, "%s: member \"version\": expected a whole "
                 "number >= 1", name);
        goto failed;
    }

    *version = (uint64_t) json_integer_value(v);

    weights = json_object_get(root, "weights");
    if (!json_is_object(weights)) {
        snprintf(err, errlen, "%s: member \"weights\": expected an object of "
                 "basis points", name);
        goto failed;
    }

    for (i = 0; w != NULL && i < narms; i++) {
        v = json_object_get(weights, names[i]);

        if (v == NULL) {
            w[i] = -1;
            continue;
        }

        bp = json_is_integer(v) ? json_integer_value(v) : -1;

        if (bp < 0 || bp > CEF_REPORT_BANDIT_BP) {
            snprintf(err, errlen, "%s: weights.%.64s: expected basis points, "
                     "0 to 10000", name, names[i]);
            goto failed;
        }

        w[i] = (double) bp / CEF_REPORT_BANDIT_BP;
    }

    json_decref(root);
    return 0;

failed:

    json_decref(root);
    return -1;
}


/*
 * A version is the time it was computed, so that it moves forward even
 * when the previous record is lost, and at least the previous + 1, so
 * that two records within a second (or a clock set back) still order.
 */
uint64_t
cef_report_bandit_record_version(uint64_t previous, int64_t created_at)
{
    uint64_t  v;

    v = previous + 1;

    if (created_at > 0 && (uint64_t) created_at > v) {
        v = (uint64_t) created_at;
    }

    return v;
}
