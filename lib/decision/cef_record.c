/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_record: the replayable decision record, written without
 * allocating (it is made on the request path) and read with jansson.
 */

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cef_record.h"
#include "cef_bucket.h"
#include "cef_decision_int.h"
#include "cef_rules_goals.h"


/* --- from a decision ------------------------------------------------------ */

const char *
cef_record_variant(const cef_decision_slot_t *ds)
{
    if (ds->variant) {
        return ds->variant;
    }

    return ds->offer == CEF_RULES_NONE ? "-" : "treatment";
}


void
cef_record_slots(cef_record_slot_t *out, const cef_rules_t *rs,
    const cef_decision_slot_t *ds)
{
    uint32_t                       i, n = cef_rules_nslots(rs);
    const cef_rules_experiment_t  *x;

    for (i = 0; i < n; i++) {
        out[i].slot = cef_rules_slot_name(rs, i);
        out[i].offer = ds[i].offer == CEF_RULES_NONE
                       ? NULL : cef_rules_offer(rs, ds[i].offer)->name;
        out[i].rule = ds[i].rule == CEF_RULES_NONE
                      ? NULL : cef_rules_rule(rs, ds[i].rule)->name;
        out[i].plugin = ds[i].plugin;
        out[i].variant = cef_record_variant(&ds[i]);
        out[i].would = ds[i].would_have == CEF_RULES_NONE
                       ? NULL : cef_rules_offer(rs, ds[i].would_have)->name;
        out[i].would_rule = ds[i].would_have_rule == CEF_RULES_NONE
                            ? NULL
                            : cef_rules_rule(rs, ds[i].would_have_rule)->name;
        out[i].bucket = ds[i].bucket;
        out[i].failed = ds[i].failed;

        x = ds[i].bucket == CEF_RULES_NONE && ds[i].sticky == CEF_RULES_NONE
            ? NULL : cef_rules_goals_slot_experiment(rs, i);

        out[i].experiment = x ? x->name : NULL;
        out[i].salt = x ? x->salt : NULL;
        out[i].nsplit = x ? x->narms : 0;
        out[i].split_arms = x ? x->arms : NULL;
        out[i].split = x ? (ds[i].nsplit == x->narms ? ds[i].split : x->split)
                         : NULL;
        out[i].adaptive = x && ds[i].sticky != CEF_RULES_NONE;
        out[i].sticky = out[i].adaptive ? ds[i].sticky : 0;
        out[i].weights_version = out[i].adaptive ? ds[i].weights_version : 0;
    }
}


int
cef_record_wanted(const cef_decision_slot_t *ds, uint32_t nslots)
{
    uint32_t  i;

    for (i = 0; i < nslots; i++) {
        if (ds[i].offer != CEF_RULES_NONE || ds[i].variant
            || ds[i].would_have != CEF_RULES_NONE)
        {
            return 1;
        }
    }

    return 0;
}


int
cef_record_time_value(cef_ref_kind_t kind, int64_t now, int32_t utc_offset,
    cef_value_t *out)
{
    int64_t  t, days, secs;

    t = now + utc_offset;
    days = t / 86400;
    secs = t % 86400;

    if (secs < 0) {
        secs += 86400;
        days--;
    }

    out->type = CEF_VAL_INT;

    switch (kind) {
    case CEF_REF_TIME_HOUR:
        out->u.i = secs / 3600;
        return 1;
    case CEF_REF_TIME_WEEKDAY:
        out->u.i = ((days % 7) + 7 + 3) % 7 + 1;       /* 1 = Monday */
        return 1;
    case CEF_REF_TIME_NOW:
        out->u.i = now;
        return 1;
    default:
        out->type = CEF_VAL_NIL;
        return 0;
    }
}


/* --- the profile digest --------------------------------------------------- */

static uint64_t
cef_fnv_span(uint64_t h, cef_span_t s)
{
    uint64_t  n = s.len;

    h = cef_bucket_fnv(h, &n, sizeof(n));
    return cef_bucket_fnv(h, s.data, s.len);
}


int
cef_record_profile_digest(const cef_profile_t *p, uint64_t *out)
{
    int          rc;
    size_t       pos = 0, ep;
    double       num;
    uint8_t      tag;
    uint64_t     h, sum = 0;
    cef_span_t   name, s;
    cef_value_t  v;

    while ((rc = cef_profile_next(p, &pos, &name, &v)) == 1) {
        h = cef_fnv_span(CEF_BUCKET_FNV_OFFSET, name);
        tag = (uint8_t) v.type;
        h = cef_bucket_fnv(h, &tag, 1);

        switch (v.type) {
        case CEF_VAL_BOOL:
            tag = (uint8_t) (v.u.b != 0);
            h = cef_bucket_fnv(h, &tag, 1);
            break;

        case CEF_VAL_INT:
            /* 5 and 5.0 are the same number to the rules */
            num = (double) v.u.i;
            h = cef_bucket_fnv(h, &num, sizeof(num));
            break;

        case CEF_VAL_FLOAT:
            num = v.u.f;
            h = cef_bucket_fnv(h, &num, sizeof(num));
            break;

        case CEF_VAL_STR:
            h = cef_fnv_span(h, v.u.s);
            break;

        case CEF_VAL_STR_ARRAY:
            ep = 0;
            while ((rc = cef_value_array_next(&v, &ep, &s)) == 1) {
                h = cef_fnv_span(h, s);
            }
            if (rc < 0) {
                return -1;
            }
            break;

        case CEF_VAL_NUM_MAP:
            ep = 0;
            while ((rc = cef_value_map_next(&v, &ep, &s, &num)) == 1) {
                h = cef_fnv_span(h, s);
                h = cef_bucket_fnv(h, &num, sizeof(num));
            }
            if (rc < 0) {
                return -1;
            }
            break;

        default:
            break;
        }

        /* a sum: the order attributes are stored in does not matter */
        sum += cef_bucket_mix(h);
    }

    if (rc < 0) {
        return -1;
    }

    *out = cef_bucket_mix(sum ^ p->nattrs);

    return 0;
}


/* --- writing -------------------------------------------------------------- */

static void
cef_put_value(cef_record_out_t *o, const cef_value_t *v)
{
    switch (v->type) {
    case CEF_VAL_BOOL:
        cef_record_json_puts(o, v->u.b ? "true" : "false");
        break;
    case CEF_VAL_INT:
        cef_record_json_printf(o, "%" PRId64, v->u.i);
        break;
    case CEF_VAL_FLOAT:
        if (v->u.f != v->u.f || v->u.f - v->u.f != 0) {
            cef_record_json_puts(o, "null");        /* NaN, infinities: not JSON */
        } else {
            cef_record_json_printf(o, "%.17g", v->u.f);
        }
        break;
    case CEF_VAL_STR:
        cef_record_json_str(o, v->u.s.data, v->u.s.len);
        break;
    default:
        cef_record_json_puts(o, "null");
    }
}


size_t
cef_record_format(const cef_record_t *rec, char *buf, size_t size)
{
    size_t                    i, k;
    cef_record_out_t                 o;
    const cef_record_slot_t  *s;

    cef_record_json_init(&o, buf, size);

    cef_record_json_printf(&o, "{\"v\":%u,\"t\":%" PRId64 ",\"tz\":%d,\"rules\":",
             (unsigned) CEF_RECORD_VERSION, rec->now, (int) rec->utc_offset);
    cef_record_json_cstr(&o, rec->rules);

    cef_record_json_puts(&o, ",\"snapshot\":");
    cef_record_json_cstr(&o, rec->snapshot);

    if (rec->snapshot) {
        cef_record_json_printf(&o, ",\"seq\":%" PRIu64, rec->seq);
    } else {
        cef_record_json_puts(&o, ",\"seq\":null");
    }

    cef_record_json_puts(&o, ",\"key_type\":");
    cef_record_json_span(&o, rec->key_type);
    cef_record_json_puts(&o, ",\"profile\":");
    cef_record_json_span(&o, rec->profile);
    cef_record_json_puts(&o, ",\"visitor\":");
    cef_record_json_span(&o, rec->visitor);

    if (rec->has_digest) {
        cef_record_json_printf(&o, ",\"ph\":\"%016" PRIx64 "\"", rec->digest);
    } else {
        cef_record_json_puts(&o, ",\"ph\":null");
    }

    cef_record_json_puts(&o, ",\"in\":{");

    for (i = 0; i < rec->ninputs; i++) {
        if (i) {
            cef_record_json_put(&o, ",", 1);
        }
        cef_record_json_cstr(&o, rec->inputs[i].path);
        cef_record_json_put(&o, ":", 1);
        cef_put_value(&o, &rec->inputs[i].v);
    }

    cef_record_json_puts(&o, "},\"state\":{");

    for (i = 0; i < rec->nstates; i++) {
        if (i) {
            cef_record_json_put(&o, ",", 1);
        }
        cef_record_json_cstr(&o, rec->states[i].plugin);
        cef_record_json_put(&o, ":", 1);
        cef_record_json_str(&o, rec->states[i].state.data, rec->states[i].state.len);
    }

    cef_record_json_puts(&o, "},\"slots\":{");

    for (i = 0; i < rec->nslots; i++) {
        s = &rec->slots[i];

        if (i) {
            cef_record_json_put(&o, ",", 1);
        }

        cef_record_json_cstr(&o, s->slot);
        cef_record_json_puts(&o, ":{\"offer\":");
        cef_record_json_cstr(&o, s->offer);
        cef_record_json_puts(&o, ",\"rule\":");
        cef_record_json_cstr(&o, s->rule);
        cef_record_json_puts(&o, ",\"plugin\":");
        cef_record_json_cstr(&o, s->plugin);
        cef_record_json_puts(&o, ",\"variant\":");
        cef_record_json_cstr(&o, s->variant ? s->variant : "-");

        if (s->bucket != CEF_RECORD_NONE) {
            cef_record_json_printf(&o, ",\"bucket\":%u", s->bucket);
        }

        if (s->experiment) {
            cef_record_json_puts(&o, ",\"experiment\":");
            cef_record_json_cstr(&o, s->experiment);
            cef_record_json_puts(&o, ",\"salt\":");
            cef_record_json_cstr(&o, s->salt);
            cef_record_json_puts(&o, ",\"split\":{");

            for (k = 0; k < s->nsplit; k++) {
                if (k) {
                    cef_record_json_put(&o, ",", 1);
                }
                cef_record_json_cstr(&o, s->split_arms[k]);
                cef_record_json_printf(&o, ":%u", (unsigned) s->split[k]);
            }

            cef_record_json_put(&o, "}", 1);

            if (s->adaptive) {
                cef_record_json_printf(&o, ",\"weights_version\":%" PRIu64
                                       ",\"sticky\":%s%s",
                                       s->weights_version,
                                       s->sticky == CEF_PLUGIN_STICKY_YES
                                       ? "true" : "false",
                                       s->sticky == CEF_PLUGIN_STICKY_REDRAWN
                                       ? ",\"redrawn\":true" : "");
            }
        }

        if (s->would) {
            cef_record_json_puts(&o, ",\"would\":");
            cef_record_json_cstr(&o, s->would);
            cef_record_json_puts(&o, ",\"would_rule\":");
            cef_record_json_cstr(&o, s->would_rule);
        }

        if (s->failed) {
            cef_record_json_puts(&o, ",\"failed\":true");
        }

        cef_record_json_put(&o, "}", 1);
    }

    cef_record_json_puts(&o, "}}");

    return cef_record_json_end(&o);
}


/* --- reading -------------------------------------------------------------- */

typedef struct {
    json_t              *root;
    cef_record_input_t  *inputs;
    cef_record_state_t  *states;
    cef_record_slot_t   *slots;
    const char         **split_arms;   /* every slot's split, one array */
    uint32_t            *split;
    size_t               nsplit;       /* used */
} cef_record_own_t;


void
cef_record_release(cef_record_t *rec)
{
    cef_record_own_t  *own = rec->own;

    if (own) {
        json_decref(own->root);
        free(own->inputs);
        free(own->states);
        free(own->slots);
        free(own->split_arms);
        free(own->split);
        free(own);
    }

    memset(rec, 0, sizeof(cef_record_t));
}


static int
cef_fail(char *err, size_t errlen, const char *fmt, const char *what)
{
    if (errlen) {
        snprintf(err, errlen, fmt, what);
    }

    return -1;
}


/* a string member or null: 0, or -1 if it is something else */
static int
cef_get_str(json_t *obj, const char *key, const char **out, size_t *len)
{
    json_t  *j = json_object_get(obj, key);

    *out = NULL;

    if (len) {
        *len = 0;
    }

    if (j == NULL || json_is_null(j)) {
        return 0;
    }

    if (!json_is_string(j)) {
        return -1;
    }

    *out = json_string_value(j);

    if (len) {
        *len = json_string_length(j);
    }

    return 0;
}


static int
cef_get_span(json_t *obj, const char *key, cef_span_t *out)
{
    const char  *s;
    size_t       len;

    if (cef_get_str(obj, key, &s, &len) != 0) {
        return -1;
    }

    out->data = s ? s : "";
    out->len = len;

    return 0;
}


/* "weights_version": V, "sticky": true|false, "redrawn": true (an adaptive
   strategy's slot): all absent, or version and sticky both there */
static int
cef_parse_adaptive(json_t *v, cef_record_slot_t *s)
{
    json_t  *wv, *st, *rd;

    wv = json_object_get(v, "weights_version");
    st = json_object_get(v, "sticky");
    rd = json_object_get(v, "redrawn");

    if (wv == NULL && st == NULL && rd == NULL) {
        return 0;
    }

    if (!json_is_integer(wv) || json_integer_value(wv) < 0
        || !json_is_boolean(st) || (rd && !json_is_true(rd))
        || (rd && json_is_true(st)))
    {
        return -1;
    }

    s->adaptive = 1;
    s->weights_version = (uint64_t) json_integer_value(wv);
    s->sticky = rd ? CEF_PLUGIN_STICKY_REDRAWN
                : json_is_true(st) ? CEF_PLUGIN_STICKY_YES
                : CEF_PLUGIN_STICKY_NO;

    return 0;
}


/* "split": {"control": 1000, ...}, basis points (absent: none), into
   own's arrays, sized by cef_parse_slots() for every slot's split */
static int
cef_parse_split(json_t *j, cef_record_slot_t *s, cef_record_own_t *own)
{
    json_int_t   bp;
    const char  *key;
    json_t      *v;

    if (j == NULL || json_is_null(j)) {
        return 0;
    }

    if (!json_is_object(j)) {
        return -1;
    }

    s->split_arms = &own->split_arms[own->nsplit];
    s->split = &own->split[own->nsplit];

    json_object_foreach(j, key, v) {
        bp = json_is_integer(v) ? json_integer_value(v) : -1;

        if (bp < 0 || bp > 10000) {
            return -1;
        }

        own->split_arms[own->nsplit] = key;
        own->split[own->nsplit++] = (uint32_t) bp;
        s->nsplit++;
    }

    return 0;
}


static int
cef_parse_slots(json_t *j, cef_record_t *rec, cef_record_own_t *own,
    char *err, size_t errlen)
{
    size_t              i = 0, total;
    const char         *key;
    json_t             *v, *b, *sp;
    json_int_t          bucket;
    cef_record_slot_t  *s;

    if (!json_is_object(j)) {
        return cef_fail(err, errlen, "\"%s\" is not an object", "slots");
    }

    own->slots = calloc(json_object_size(j) + 1, sizeof(cef_record_slot_t));
    if (own->slots == NULL) {
        return cef_fail(err, errlen, "%s", "out of memory");
    }

    total = 0;

    json_object_foreach(j, key, v) {
        sp = json_is_object(v) ? json_object_get(v, "split") : NULL;
        total += json_is_object(sp) ? json_object_size(sp) : 0;
    }

    own->split_arms = calloc(total + 1, sizeof(char *));
    own->split = calloc(total + 1, sizeof(uint32_t));
    if (own->split_arms == NULL || own->split == NULL) {
        return cef_fail(err, errlen, "%s", "out of memory");
    }

    json_object_foreach(j, key, v) {
        s = &own->slots[i++];
        s->slot = key;
        s->bucket = CEF_RECORD_NONE;

        if (!json_is_object(v)
            || cef_get_str(v, "offer", &s->offer, NULL) != 0
            || cef_get_str(v, "rule", &s->rule, NULL) != 0
            || cef_get_str(v, "plugin", &s->plugin, NULL) != 0
            || cef_get_str(v, "variant", &s->variant, NULL) != 0
            || cef_get_str(v, "would", &s->would, NULL) != 0
            || cef_get_str(v, "would_rule", &s->would_rule, NULL) != 0)
        {
            return cef_fail(err, errlen, "slot \"%s\" is malformed", key);
        }

        if (s->variant == NULL) {
            s->variant = "-";
        }

        b = json_object_get(v, "bucket");

        if (b && !json_is_null(b)) {
            bucket = json_is_integer(b) ? json_integer_value(b) : -1;

            if (bucket < 0 || bucket >= CEF_RECORD_NONE) {
                return cef_fail(err, errlen, "slot \"%s\" has an invalid "
                                "bucket", key);
            }

            s->bucket = (uint32_t) bucket;
        }

        s->failed = json_is_true(json_object_get(v, "failed"));

        if (cef_get_str(v, "experiment", &s->experiment, NULL) != 0
            || cef_get_str(v, "salt", &s->salt, NULL) != 0
            || cef_parse_split(json_object_get(v, "split"), s, own) != 0)
        {
            return cef_fail(err, errlen, "slot \"%s\" has a malformed "
                            "experiment", key);
        }

        if (cef_parse_adaptive(v, s) != 0) {
            return cef_fail(err, errlen, "slot \"%s\" has a malformed "
                            "weights_version or sticky", key);
        }
    }

    rec->slots = own->slots;
    rec->nslots = i;

    return 0;
}


static int
cef_parse_inputs(json_t *j, cef_record_t *rec, cef_record_own_t *own,
    char *err, size_t errlen)
{
    size_t               i = 0;
    const char          *key;
    json_t              *v;
    cef_record_input_t  *in;

    if (j == NULL) {
        return 0;
    }

    if (!json_is_object(j)) {
        return cef_fail(err, errlen, "\"%s\" is not an object", "in");
    }

    own->inputs = calloc(json_object_size(j) + 1, sizeof(cef_record_input_t));
    if (own->inputs == NULL) {
        return cef_fail(err, errlen, "%s", "out of memory");
    }

    json_object_foreach(j, key, v) {
        in = &own->inputs[i++];
        in->path = key;

        switch (json_typeof(v)) {
        case JSON_NULL:
            in->v.type = CEF_VAL_NIL;
            break;
        case JSON_TRUE:
        case JSON_FALSE:
            in->v.type = CEF_VAL_BOOL;
            in->v.u.b = json_is_true(v);
            break;
        case JSON_INTEGER:
            in->v.type = CEF_VAL_INT;
            in->v.u.i = json_integer_value(v);
            break;
        case JSON_REAL:
            in->v.type = CEF_VAL_FLOAT;
            in->v.u.f = json_real_value(v);
            break;
        case JSON_STRING:
            in->v.type = CEF_VAL_STR;
            in->v.u.s.data = json_string_value(v);
            in->v.u.s.len = json_string_length(v);
            break;
        default:
            return cef_fail(err, errlen, "input \"%s\" is not a string, "
                            "number, boolean or null", key);
        }
    }

    rec->inputs = own->inputs;
    rec->ninputs = i;

    return 0;
}


static int
cef_parse_states(json_t *j, cef_record_t *rec, cef_record_own_t *own,
    char *err, size_t errlen)
{
    size_t               i = 0;
    const char          *key;
    json_t              *v;

    if (j == NULL) {
        return 0;
    }

    if (!json_is_object(j)) {
        return cef_fail(err, errlen, "\"%s\" is not an object", "state");
    }

    own->states = calloc(json_object_size(j) + 1, sizeof(cef_record_state_t));
    if (own->states == NULL) {
        return cef_fail(err, errlen, "%s", "out of memory");
    }

    json_object_foreach(j, key, v) {
        if (!json_is_string(v)) {
            return cef_fail(err, errlen, "state of \"%s\" is not a string",
                            key);
        }

        own->states[i].plugin = key;
        own->states[i].state.data = json_string_value(v);
        own->states[i].state.len = json_string_length(v);
        i++;
    }

    rec->states = own->states;
    rec->nstates = i;

    return 0;
}


static int
cef_parse_root(json_t *root, cef_record_t *rec, char *err, size_t errlen)
{
    const char        *ph;
    json_t            *j;
    cef_record_own_t  *own;
    char              *end;

    memset(rec, 0, sizeof(cef_record_t));

    own = calloc(1, sizeof(cef_record_own_t));
    if (own == NULL) {
        json_decref(root);
        return cef_fail(err, errlen, "%s", "out of memory");
    }

    own->root = root;
    rec->own = own;

    if (!json_is_object(root)) {
        return cef_fail(err, errlen, "%s", "a record is a JSON object");
    }

    j = json_object_get(root, "v");
    if (!json_is_integer(j)) {
        return cef_fail(err, errlen, "%s", "not a decision record (no "
                        "\"v\")");
    }

    if (json_integer_value(j) != CEF_RECORD_VERSION) {
        return cef_fail(err, errlen, "%s", "a record of an unknown version");
    }

    rec->version = CEF_RECORD_VERSION;

    j = json_object_get(root, "t");
    if (!json_is_integer(j)) {
        return cef_fail(err, errlen, "\"%s\" is missing or not an integer",
                        "t");
    }

    rec->now = json_integer_value(j);

    j = json_object_get(root, "tz");
    if (j && !json_is_integer(j)) {
        return cef_fail(err, errlen, "\"%s\" is not an integer", "tz");
    }

    if (j && (json_integer_value(j) < -86400
              || json_integer_value(j) > 86400))
    {
        return cef_fail(err, errlen, "\"%s\" is not a UTC offset in seconds",
                        "tz");
    }

    rec->utc_offset = j ? (int32_t) json_integer_value(j) : 0;

    j = json_object_get(root, "seq");
    if (j && !json_is_null(j)
        && !(json_is_integer(j) && json_integer_value(j) >= 0))
    {
        return cef_fail(err, errlen, "\"%s\" is not a non-negative integer",
                        "seq");
    }

    rec->seq = json_is_integer(j) ? (uint64_t) json_integer_value(j) : 0;

    if (cef_get_str(root, "rules", &rec->rules, NULL) != 0
        || rec->rules == NULL)
    {
        return cef_fail(err, errlen, "\"%s\" is missing or not a string",
                        "rules");
    }

    if (cef_get_str(root, "snapshot", &rec->snapshot, NULL) != 0
        || cef_get_span(root, "key_type", &rec->key_type) != 0
        || cef_get_span(root, "profile", &rec->profile) != 0
        || cef_get_span(root, "visitor", &rec->visitor) != 0
        || cef_get_str(root, "ph", &ph, NULL) != 0)
    {
        return cef_fail(err, errlen, "%s", "a member of the wrong type");
    }

    if (ph) {
        rec->digest = strtoull(ph, &end, 16);

        if (strlen(ph) != 16 || *end != '\0') {
            return cef_fail(err, errlen, "\"%s\" is not 16 hex digits", "ph");
        }

        rec->has_digest = 1;
    }

    if (cef_parse_inputs(json_object_get(root, "in"), rec, own, err, errlen)
        != 0
        || cef_parse_states(json_object_get(root, "state"), rec, own, err,
                            errlen)
           != 0)
    {
        return -1;
    }

    j = json_object_get(root, "slots");
    if (j == NULL) {
        return cef_fail(err, errlen, "\"%s\" is missing", "slots");
    }

    return cef_parse_slots(j, rec, own, err, errlen);
}


int
cef_record_parse(const char *text, size_t len, cef_record_t *rec, char *err,
    size_t errlen)
{
    json_t        *root;
    json_error_t   jerr;

    memset(rec, 0, sizeof(cef_record_t));

    root = json_loadb(text, len, JSON_ALLOW_NUL, &jerr);
    if (root == NULL) {
        if (errlen) {
            snprintf(err, errlen, "invalid JSON at column %d: %s",
                     jerr.column, jerr.text);
        }
        return -1;
    }

    return cef_parse_root(root, rec, err, errlen);
}


int
cef_record_from_log_line(const char *line, size_t len, cef_record_t *rec,
    char *err, size_t errlen)
{
    json_t        *root, *d;
    json_error_t   jerr;
    const char    *s;

    memset(rec, 0, sizeof(cef_record_t));

    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'
                   || line[len - 1] == ' ' || line[len - 1] == '\t'))
    {
        len--;
    }

    while (len && (*line == ' ' || *line == '\t')) {
        line++;
        len--;
    }

    if (len == 0) {
        return 1;
    }

    root = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
    if (root == NULL) {
        if (errlen) {
            snprintf(err, errlen, "invalid JSON at column %d: %s",
                     jerr.column, jerr.text);
        }
        return -1;
    }

    if (!json_is_object(root) || json_object_get(root, "v")
        || (d = json_object_get(root, "decision")) == NULL)
    {
        /* a bare record (or nothing we know: parse says what) */
        return cef_parse_root(root, rec, err, errlen);
    }

    if (json_is_null(d)) {
        json_decref(root);
        return 1;
    }

    if (json_is_string(d)) {
        s = json_string_value(d);

        if (json_string_length(d) == 0) {
            json_decref(root);
            return 1;
        }

        if (cef_record_parse(s, json_string_length(d), rec, err, errlen)
            != 0)
        {
            json_decref(root);
            return -1;
        }

        json_decref(root);
        return 0;
    }

    json_incref(d);
    json_decref(root);

    return cef_parse_root(d, rec, err, errlen);
}
