/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Stored profiles: encoding (interning, compact decimals) and decoding
 * round-trip exactly; malformed envelopes are rejected.
 */

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "cef_profile.h"
#include "cef_encode.h"


static void
dict_of(cef_encode_t *e, cef_dict_t *d)
{
    memset(d, 0, sizeof(cef_dict_t));
    d->names = e->names.tab;
    d->strs = e->strs.tab;
    assert_int_equal(cef_dict_index(d), 0);
}


static double
roundtrip(cef_encode_t *e, double x, int f32, size_t *size)
{
    cef_dict_t      d;
    cef_value_t     v;
    cef_profile_t   p;
    msgpack_object  o;

    o.type = f32 ? MSGPACK_OBJECT_FLOAT32 : MSGPACK_OBJECT_FLOAT64;
    o.via.f64 = x;

    cef_encode_begin(e);
    assert_int_equal(cef_encode_attr(e, "x", 1, &o), 0);
    assert_int_equal(cef_encode_profile(e, NULL, 0, "id", 2), 0);
    *size = e->blob.size;

    dict_of(e, &d);
    assert_int_equal(cef_profile_parse((const uint8_t *) e->blob.data,
                                       e->blob.size, &d, &p), 0);
    assert_int_equal(cef_profile_get(&p, cef_span_lit("x"), &v), 1);
    assert_int_equal(v.type, CEF_VAL_FLOAT);
    free(d.names_hash);

    return v.u.f;
}


static void
test_floats_roundtrip_exactly(void **state)
{
    int            i;
    double         x, y;
    size_t         size, base;
    uint64_t       r = 12345;
    cef_encode_t  e;

    (void) state;

    assert_int_equal(cef_encode_init(&e), 0);

    roundtrip(&e, 0, 0, &base);    /* header + one 3-byte value */
    base -= 3;

    for (i = 0; i < 200000; i++) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        switch (i % 4) {
        case 0: x = (double) (int64_t) (r >> 33) / 100; break;
        case 1: x = -(double) (r >> 40) / 1000; break;
        case 2: memcpy(&x, &r, sizeof(x)); break;      /* any bits */
        default: x = (double) (r >> 11) * 0x1.0p-53; break;
        }

        if (isnan(x)) {
            continue;
        }

        y = roundtrip(&e, x, 0, &size);
        if (memcmp(&x, &y, sizeof(x)) != 0) {
            fail_msg("%.17g came back as %.17g", x, y);
        }
    }

    /* sizes: short decimals are small, others are plain doubles */
    assert_true(roundtrip(&e, 0.23, 0, &size) == 0.23);
    assert_int_equal(size - base, 3);
    assert_true(roundtrip(&e, 1234.56, 0, &size) == 1234.56);
    assert_int_equal(size - base, 6);
    assert_true(roundtrip(&e, 0.1 + 0.2, 0, &size) == 0.1 + 0.2);
    assert_int_equal(size - base, 9);

    y = roundtrip(&e, -0.0, 0, &size);
    assert_true(y == 0 && signbit(y));
    assert_true(isinf(roundtrip(&e, INFINITY, 0, &size)));
    assert_true(isnan(roundtrip(&e, NAN, 0, &size)));
    assert_true(roundtrip(&e, (float) 0.1, 1, &size) == (double) (float) 0.1);

    cef_encode_free(&e);
}


static void
test_interning_and_envelope(void **state)
{
    uint16_t         hints[2] = { 0x1234, 0xfffe };
    size_t           i, pos;
    cef_span_t       s;
    cef_dict_t       d;
    cef_value_t      v;
    cef_profile_t    p;
    cef_encode_t    e;
    msgpack_object   o, arr[3];

    (void) state;

    assert_int_equal(cef_encode_init(&e), 0);

    cef_encode_begin(&e);

    arr[0].type = MSGPACK_OBJECT_STR;
    arr[0].via.str.ptr = "newsletter";
    arr[0].via.str.size = 10;
    arr[1] = arr[0];
    arr[1].via.str.ptr = "a";
    arr[1].via.str.size = 1;
    arr[2] = arr[0];
    o.type = MSGPACK_OBJECT_ARRAY;
    o.via.array.ptr = arr;
    o.via.array.size = 3;
    assert_int_equal(cef_encode_attr(&e, "segments", 8, &o), 0);

    o.type = MSGPACK_OBJECT_STR;
    o.via.str.ptr = "newsletter";
    o.via.str.size = 10;
    assert_int_equal(cef_encode_attr(&e, "s", 1, &o), 0);

    /* setting an attribute twice keeps the last value */
    o.type = MSGPACK_OBJECT_POSITIVE_INTEGER;
    o.via.u64 = 7;
    assert_int_equal(cef_encode_attr(&e, "n", 1, &o), 0);
    o.via.u64 = 8;
    assert_int_equal(cef_encode_attr(&e, "n", 1, &o), 0);

    assert_int_equal(cef_encode_profile(&e, hints, 2, "pid", 3), 0);
    assert_int_equal(e.strs.n, 1);      /* "newsletter" once, "a" inline */
    assert_int_equal(e.names.n, 3);

    dict_of(&e, &d);
    assert_int_equal(cef_profile_parse((const uint8_t *) e.blob.data,
                                       e.blob.size, &d, &p), 0);
    assert_int_equal(p.nhints, 2);
    assert_int_equal(p.hints[0], 0x12);
    assert_int_equal(p.hints[3], 0xfe);
    assert_int_equal(p.id.len, 3);
    assert_int_equal(p.nattrs, 3);
    assert_int_equal(cef_profile_validate(&p), 0);

    assert_int_equal(cef_profile_get(&p, cef_span_lit("segments"), &v), 1);
    pos = 0;
    assert_int_equal(cef_value_array_next(&v, &pos, &s), 1);
    assert_int_equal(s.len, 10);
    assert_int_equal(cef_value_array_next(&v, &pos, &s), 1);
    assert_int_equal(s.len, 1);
    assert_int_equal(cef_value_array_next(&v, &pos, &s), 1);
    assert_int_equal(cef_value_array_next(&v, &pos, &s), 0);

    assert_int_equal(cef_profile_get(&p, cef_span_lit("s"), &v), 1);
    assert_true(v.type == CEF_VAL_STR && v.u.s.len == 10);
    assert_int_equal(cef_profile_get(&p, cef_span_lit("n"), &v), 1);
    assert_int_equal(v.u.i, 8);

    /* every truncation of the envelope or the map fails cleanly */
    for (i = 0; i < e.blob.size; i++) {
        if (cef_profile_parse((const uint8_t *) e.blob.data, i, &d, &p) == 0)
        {
            assert_int_equal(cef_profile_validate(&p), -1);
        }
    }

    /* an unknown attribute id */
    d.names.n = 1;
    assert_int_equal(cef_profile_parse((const uint8_t *) e.blob.data,
                                       e.blob.size, &d, &p), 0);
    assert_int_equal(cef_profile_validate(&p), -1);

    free(d.names_hash);
    cef_encode_free(&e);
}


static void
test_check_value(void **state)
{
    const char      *why;
    msgpack_object   o, kv_o;
    msgpack_object_kv kv;

    (void) state;

    o.type = MSGPACK_OBJECT_BIN;
    assert_int_equal(cef_encode_check_value(&o, &why), -1);
    o.type = MSGPACK_OBJECT_POSITIVE_INTEGER;
    o.via.u64 = UINT64_MAX;
    assert_int_equal(cef_encode_check_value(&o, &why), -1);
    assert_non_null(strstr(why, "int64"));

    kv.key.type = MSGPACK_OBJECT_STR;
    kv.key.via.str.ptr = "k";
    kv.key.via.str.size = 1;
    kv.val.type = MSGPACK_OBJECT_STR;
    o.type = MSGPACK_OBJECT_MAP;
    o.via.map.ptr = &kv;
    o.via.map.size = 1;
    assert_int_equal(cef_encode_check_value(&o, &why), -1);
    kv.val.type = MSGPACK_OBJECT_FLOAT64;
    assert_int_equal(cef_encode_check_value(&o, &why), 0);

    kv_o.type = MSGPACK_OBJECT_NIL;
    o.type = MSGPACK_OBJECT_ARRAY;
    o.via.array.ptr = &kv_o;
    o.via.array.size = 1;
    assert_int_equal(cef_encode_check_value(&o, &why), -1);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_floats_roundtrip_exactly),
        cmocka_unit_test(test_interning_and_envelope),
        cmocka_unit_test(test_check_value),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
