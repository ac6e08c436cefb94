/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * The decision record ($cef_decision): written and read back exactly,
 * escaped so that it stays one valid JSON line, found in impression log
 * lines however nginx escaped it, and a profile digest that ignores
 * storage order.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "cef_record.h"
#include "cef_encode.h"


static const char *const  side_arms[] = { "control", "a", "b" };
static const uint32_t     side_split[] = { 1000, 4500, 4500 };

static const cef_record_slot_t  slots[] = {
    { "hero", "gold-hero", "gold", "priority", "treatment", NULL, NULL,
      CEF_RECORD_NONE, 0, NULL, NULL, 0, NULL, NULL, 0, 0, 0 },
    { "side", NULL, NULL, "experiment", "control", "winback", "churn", 720,
      0, "side-q4", "side-q4-v2", 3, side_arms, side_split, 0, 0, 0 },
    { "foot", NULL, NULL, "weighted", "-", NULL, NULL, CEF_RECORD_NONE, 1,
      NULL, NULL, 0, NULL, NULL, 0, 0, 0 },
};


static void
sample(cef_record_t *rec, cef_record_input_t *in, cef_record_state_t *st)
{
    memset(rec, 0, sizeof(cef_record_t));

    in[0].path = "request.path";
    in[0].v.type = CEF_VAL_STR;
    in[0].v.u.s = cef_span_lit("/a \"quoted\" \\path\n\t\x01 \xc3\xa9 \xff!");
    in[1].path = "request.arg.utm";
    in[1].v.type = CEF_VAL_NIL;
    in[2].path = "visitor.new";
    in[2].v.type = CEF_VAL_BOOL;
    in[2].v.u.b = 0;
    in[3].path = "time.hour";
    in[3].v.type = CEF_VAL_INT;
    in[3].v.u.i = 14;
    in[4].path = "var.score";
    in[4].v.type = CEF_VAL_FLOAT;
    in[4].v.u.f = 0.1;

    st[0].plugin = "freqcap";
    st[0].state = cef_span_lit("a:3~b:1");

    rec->now = 1763913600;
    rec->utc_offset = 3600;
    rec->rules = "2213d0503f62aa";
    rec->snapshot = "snap-\"1\"";
    rec->seq = 42;
    rec->key_type = cef_span_lit("customer");
    rec->profile = cef_span_lit("p-gold");
    rec->visitor = cef_span_lit("abcDEF_-0123456789abcd");
    rec->digest = 0x9f3a01c2d4e5b6a7ULL;
    rec->has_digest = 1;
    rec->inputs = in;
    rec->ninputs = 5;
    rec->states = st;
    rec->nstates = 1;
    rec->slots = slots;
    rec->nslots = 3;
}


static char *
format(const cef_record_t *rec)
{
    size_t   n = cef_record_format(rec, NULL, 0);
    char    *buf = malloc(n + 1);

    assert_non_null(buf);
    assert_int_equal(cef_record_format(rec, buf, n + 1), n);
    assert_int_equal(strlen(buf), n);

    return buf;
}


static void
assert_span(cef_span_t s, const char *want, size_t len)
{
    assert_int_equal(s.len, len);
    assert_memory_equal(s.data, want, len);
}


static void
assert_same(const cef_record_t *a, const cef_record_t *b)
{
    size_t  i;

    assert_int_equal(b->version, CEF_RECORD_VERSION);
    assert_int_equal(a->now, b->now);
    assert_int_equal(a->utc_offset, b->utc_offset);
    assert_string_equal(a->rules, b->rules);
    assert_string_equal(a->snapshot, b->snapshot);
    assert_int_equal(a->seq, b->seq);
    assert_span(b->key_type, a->key_type.data, a->key_type.len);
    assert_span(b->profile, a->profile.data, a->profile.len);
    assert_span(b->visitor, a->visitor.data, a->visitor.len);
    assert_int_equal(a->has_digest, b->has_digest);
    assert_true(a->digest == b->digest);

    assert_int_equal(a->ninputs, b->ninputs);
    for (i = 0; i < a->ninputs; i++) {
        assert_string_equal(a->inputs[i].path, b->inputs[i].path);
        assert_int_equal(a->inputs[i].v.type, b->inputs[i].v.type);
    }

    assert_int_equal(a->nstates, b->nstates);
    for (i = 0; i < a->nstates; i++) {
        assert_string_equal(a->states[i].plugin, b->states[i].plugin);
        assert_span(b->states[i].state, a->states[i].state.data,
                    a->states[i].state.len);
    }

    assert_int_equal(a->nslots, b->nslots);
    for (i = 0; i < a->nslots; i++) {
        const cef_record_slot_t  *x = &a->slots[i], *y = &b->slots[i];

        assert_string_equal(x->slot, y->slot);
#define SAME(f)  if (x->f) { assert_string_equal(x->f, y->f); }            \
                 else { assert_null(y->f); }
        SAME(offer) SAME(rule) SAME(plugin) SAME(would) SAME(would_rule)
        SAME(experiment) SAME(salt)
#undef SAME
        assert_string_equal(x->variant, y->variant);
        assert_int_equal(x->bucket, y->bucket);
        assert_int_equal(x->failed, y->failed);
        assert_int_equal(x->nsplit, y->nsplit);
        for (size_t k = 0; k < x->nsplit; k++) {
            assert_string_equal(x->split_arms[k], y->split_arms[k]);
            assert_int_equal(x->split[k], y->split[k]);
        }
    }
}


static void
test_roundtrip(void **state)
{
    char                *text;
    char                 err[256];
    cef_record_t         rec, back;
    cef_record_input_t   in[5];
    cef_record_state_t   st[1];

    (void) state;

    sample(&rec, in, st);
    text = format(&rec);

    /* one line, valid JSON on its own */
    assert_null(strchr(text, '\n'));

    /* a bucketed slot names its experiment, salt and configured split */
    assert_non_null(strstr(text, "\"variant\":\"control\",\"bucket\":720,"
                           "\"experiment\":\"side-q4\",\"salt\":"
                           "\"side-q4-v2\",\"split\":{\"control\":1000,"
                           "\"a\":4500,\"b\":4500},\"would\":"));
    assert_null(strstr(strstr(text, "\"foot\""), "experiment"));
    assert_int_equal(cef_record_parse(text, strlen(text), &back, err,
                                      sizeof(err)), 0);
    assert_same(&rec, &back);

    /* string values come back byte for byte, invalid UTF-8 as U+FFFD */
    assert_int_equal(back.inputs[0].v.type, CEF_VAL_STR);
    assert_span(back.inputs[0].v.u.s,
                "/a \"quoted\" \\path\n\t\x01 \xc3\xa9 \xef\xbf\xbd!",
                sizeof("/a \"quoted\" \\path\n\t\x01 \xc3\xa9 "
                       "\xef\xbf\xbd!") - 1);
    assert_int_equal(back.inputs[2].v.type, CEF_VAL_BOOL);
    assert_int_equal(back.inputs[2].v.u.b, 0);
    assert_int_equal(back.inputs[3].v.type, CEF_VAL_INT);
    assert_int_equal(back.inputs[3].v.u.i, 14);
    assert_int_equal(back.inputs[4].v.type, CEF_VAL_FLOAT);
    assert_true(back.inputs[4].v.u.f == 0.1);

    cef_record_release(&back);
    free(text);
}


static void
test_anonymous_record_has_nulls(void **state)
{
    char           buf[1024], err[256];
    cef_record_t   rec, back;
    json_t        *j;
    json_error_t   jerr;

    (void) state;

    memset(&rec, 0, sizeof(rec));
    rec.now = 5;
    rec.rules = "abc";
    rec.slots = slots;
    rec.nslots = 1;

    cef_record_format(&rec, buf, sizeof(buf));

    j = json_loads(buf, 0, &jerr);
    assert_non_null(j);
    assert_true(json_is_null(json_object_get(j, "snapshot")));
    assert_true(json_is_null(json_object_get(j, "seq")));
    assert_true(json_is_null(json_object_get(j, "profile")));
    assert_true(json_is_null(json_object_get(j, "ph")));
    assert_int_equal(json_object_size(json_object_get(j, "in")), 0);
    json_decref(j);

    assert_int_equal(cef_record_parse(buf, strlen(buf), &back, err,
                                      sizeof(err)), 0);
    assert_null(back.snapshot);
    assert_int_equal(back.profile.len, 0);
    assert_int_equal(back.has_digest, 0);
    cef_record_release(&back);
}


static void
test_truncation_measures(void **state)
{
    char                 small[40], *full;
    cef_record_t         rec;
    cef_record_input_t   in[5];
    cef_record_state_t   st[1];
    size_t               n;

    (void) state;

    sample(&rec, in, st);
    full = format(&rec);
    n = cef_record_format(&rec, small, sizeof(small));

    assert_int_equal(n, strlen(full));
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_memory_equal(small, full, sizeof(small) - 1);
    free(full);
}


/* what nginx's log_format escape=json does to a variable's value */
static char *
nginx_escape_json(const char *s)
{
    size_t   n = strlen(s), i, o = 0;
    char    *out = malloc(6 * n + 1);

    assert_non_null(out);

    for (i = 0; i < n; i++) {
        unsigned char  c = (unsigned char) s[i];

        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char) c;
        } else if (c < 0x20) {
            o += (size_t) sprintf(out + o, "\\u%04x", c);
        } else {
            out[o++] = (char) c;
        }
    }

    out[o] = '\0';
    return out;
}


static void
test_log_lines(void **state)
{
    char                *text, *esc, *line, err[256];
    size_t               n;
    cef_record_t         rec, back;
    cef_record_input_t   in[5];
    cef_record_state_t   st[1];

    (void) state;

    sample(&rec, in, st);
    text = format(&rec);

    /* escape=json, the record in a string member */
    esc = nginx_escape_json(text);
    n = strlen(esc) + 200;
    line = malloc(n);
    assert_non_null(line);
    snprintf(line, n, "{\"time\":\"2026-11-23T16:00:00+00:00\",\"status\":"
             "200,\"decision\":\"%s\"}\n", esc);
    assert_int_equal(cef_record_from_log_line(line, strlen(line), &back, err,
                                              sizeof(err)), 0);
    assert_same(&rec, &back);
    cef_record_release(&back);

    /* escape=none, the record as an object member */
    snprintf(line, n, "{\"time\":\"x\",\"decision\":%s}", text);
    assert_int_equal(cef_record_from_log_line(line, strlen(line), &back, err,
                                              sizeof(err)), 0);
    assert_same(&rec, &back);
    cef_record_release(&back);

    /* a bare record */
    assert_int_equal(cef_record_from_log_line(text, strlen(text), &back, err,
                                              sizeof(err)), 0);
    assert_same(&rec, &back);
    cef_record_release(&back);

    /* nothing to replay */
    assert_int_equal(cef_record_from_log_line("{\"decision\":\"\"}", 15,
                                              &back, err, sizeof(err)), 1);
    assert_int_equal(cef_record_from_log_line("  \n", 3, &back, err,
                                              sizeof(err)), 1);

    /* malformed */
    assert_int_equal(cef_record_from_log_line("{\"decision\":\"{\\\"v\\\"\"}",
                                              21, &back, err, sizeof(err)),
                     -1);
    cef_record_release(&back);
    assert_int_equal(cef_record_from_log_line("{\"decision\":", 12, &back,
                                              err, sizeof(err)), -1);
    assert_non_null(strstr(err, "invalid JSON"));
    cef_record_release(&back);

    free(line);
    free(esc);
    free(text);
}


static void
test_rejects(void **state)
{
    static const char  *bad[] = {
        "[]",
        "{\"t\":1,\"rules\":\"x\",\"slots\":{}}",
        "{\"v\":2,\"t\":1,\"rules\":\"x\",\"slots\":{}}",
        "{\"v\":1,\"rules\":\"x\",\"slots\":{}}",
        "{\"v\":1,\"t\":1,\"slots\":{}}",
        "{\"v\":1,\"t\":1,\"rules\":\"x\"}",
        "{\"v\":1,\"t\":1,\"rules\":\"x\",\"slots\":[]}",
        "{\"v\":1,\"t\":1,\"rules\":\"x\",\"slots\":{\"a\":{\"offer\":3}}}",
        "{\"v\":1,\"t\":1,\"rules\":\"x\",\"slots\":{\"a\":{\"bucket\":-1}}}",
        "{\"v\":1,\"t\":1,\"rules\":\"x\",\"ph\":\"12\",\"slots\":{}}",
        "{\"v\":1,\"t\":1,\"rules\":\"x\",\"in\":{\"a\":[1]},\"slots\":{}}",
        "{\"v\":1,\"t\":1,\"rules\":\"x\",\"state\":{\"a\":1},\"slots\":{}}",
        "{\"v\":1,\"t\":1,\"rules\":\"x\",\"profile\":5,\"slots\":{}}",
        "{\"v\":1,\"t\":1,\"rules\":\"x\",\"seq\":-2,\"slots\":{}}",
        "{\"v\":1,\"t\":1,\"rules\":\"x\",\"tz\":4294967296,\"slots\":{}}",
        "{\"v\":1,\"t\":1,\"rules\":\"x\",\"tz\":-90000,\"slots\":{}}",
        "{\"v\":1,\"t\":1,\"rules\":\"x\",\"slots\":{\"a\":{\"salt\":1}}}",
        "{\"v\":1,\"t\":1,\"rules\":\"x\",\"slots\":{\"a\":{\"split\":[]}}}",
        "{\"v\":1,\"t\":1,\"rules\":\"x\",\"slots\":{\"a\":{\"split\":"
            "{\"b\":10001}}}}",
    };
    size_t         i;
    char           err[256];
    cef_record_t   rec;
    const char    *ok = "{\"v\":1,\"t\":1,\"rules\":\"x\",\"slots\":{}}";

    (void) state;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(cef_record_parse(bad[i], strlen(bad[i]), &rec, err,
                                          sizeof(err)), -1);
        assert_true(err[0] != '\0');
        cef_record_release(&rec);
    }

    assert_int_equal(cef_record_parse(ok, strlen(ok), &rec, err,
                                      sizeof(err)), 0);
    assert_int_equal(rec.nslots, 0);
    cef_record_release(&rec);
}


static void
test_time_values(void **state)
{
    cef_value_t  v;

    (void) state;

    /* 2026-11-23 (a Monday) 23:30 UTC */
    assert_int_equal(cef_record_time_value(CEF_REF_TIME_HOUR, 1795476600, 0,
                                           &v), 1);
    assert_int_equal(v.u.i, 23);
    assert_int_equal(cef_record_time_value(CEF_REF_TIME_WEEKDAY, 1795476600,
                                           0, &v), 1);
    assert_int_equal(v.u.i, 1);

    /* one hour east: Tuesday, 00:30 */
    cef_record_time_value(CEF_REF_TIME_HOUR, 1795476600, 3600, &v);
    assert_int_equal(v.u.i, 0);
    cef_record_time_value(CEF_REF_TIME_WEEKDAY, 1795476600, 3600, &v);
    assert_int_equal(v.u.i, 2);

    assert_int_equal(cef_record_time_value(CEF_REF_TIME_NOW, 77, 3600, &v),
                     1);
    assert_int_equal(v.u.i, 77);
    assert_int_equal(cef_record_time_value(CEF_REF_REQUEST_PATH, 0, 0, &v),
                     0);
}


/* a profile of attributes given as name, msgpack-able value pairs */
static void
profile_of(cef_encode_t *e, cef_dict_t *d, cef_profile_t *p,
    const char *const *names, const msgpack_object *vals, size_t n)
{
    size_t  i;

    cef_encode_begin(e);

    for (i = 0; i < n; i++) {
        assert_int_equal(cef_encode_attr(e, names[i], strlen(names[i]),
                                         &vals[i]), 0);
    }

    assert_int_equal(cef_encode_profile(e, NULL, 0, "id", 2), 0);

    memset(d, 0, sizeof(cef_dict_t));
    d->names = e->names.tab;
    d->strs = e->strs.tab;
    assert_int_equal(cef_dict_index(d), 0);
    assert_int_equal(cef_profile_parse((const uint8_t *) e->blob.data,
                                       e->blob.size, d, p), 0);
}


static void
test_profile_digest(void **state)
{
    cef_encode_t    e1, e2;
    cef_dict_t       d1, d2;
    cef_profile_t    p1, p2;
    uint64_t         h1, h2, h3;
    msgpack_object   v[2], w[2];
    const char      *ab[] = { "clv", "tier" }, *ba[] = { "tier", "clv" };

    (void) state;

    assert_int_equal(cef_encode_init(&e1), 0);
    assert_int_equal(cef_encode_init(&e2), 0);

    v[0].type = MSGPACK_OBJECT_POSITIVE_INTEGER;
    v[0].via.u64 = 1234;
    v[1].type = MSGPACK_OBJECT_STR;
    v[1].via.str.ptr = "gold";
    v[1].via.str.size = 4;
    w[0] = v[1];
    w[1] = v[0];

    /* the same profile, its attributes numbered the other way round */
    profile_of(&e1, &d1, &p1, ab, v, 2);
    profile_of(&e2, &d2, &p2, ba, w, 2);
    assert_int_equal(cef_record_profile_digest(&p1, &h1), 0);
    assert_int_equal(cef_record_profile_digest(&p2, &h2), 0);
    assert_true(h1 == h2);
    free(d1.names_hash);

    /* one value changed */
    v[0].via.u64 = 1235;
    profile_of(&e1, &d1, &p1, ab, v, 2);
    assert_int_equal(cef_record_profile_digest(&p1, &h3), 0);
    assert_true(h3 != h1);

    free(d1.names_hash);
    free(d2.names_hash);
    cef_encode_free(&e1);
    cef_encode_free(&e2);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_anonymous_record_has_nulls),
        cmocka_unit_test(test_truncation_measures),
        cmocka_unit_test(test_log_lines),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_time_values),
        cmocka_unit_test(test_profile_digest),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
