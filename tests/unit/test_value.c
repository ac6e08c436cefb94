/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_value: decoding the store's value encoding, iterators, and every
 * malformed or truncated input.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "cef_value.h"


static const cef_span_t    strs_s[] = {
    { "interned-zero", 13 }, { "one", 3 }, { "two", 3 }
};
static const cef_strtab_t  strs = { strs_s, 3 };


static int
decode(const uint8_t *p, size_t len, cef_value_t *v)
{
    size_t  pos = 0;
    int     rc;

    rc = cef_value_decode(p, len, &pos, &strs, v);
    if (rc == 0) {
        assert_int_equal(pos, len);
    }

    return rc;
}


static void
test_scalars(void **state)
{
    cef_value_t    v;
    const uint8_t  nil[] = { 0xc0 }, t[] = { 0xc3 }, f[] = { 0xc2 },
                   pos[] = { 0x2a }, neg[] = { 0xfb },
                   u16[] = { 0xcd, 0x01, 0x00 },
                   i32[] = { 0xd2, 0xff, 0xff, 0xff, 0x00 },
                   u64big[] = { 0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0 },
                   f64[] = { 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0 },
                   f32[] = { 0xca, 0x3f, 0xc0, 0, 0 },
                   str[] = { 0xa3, 'a', 'b', 'c' },
                   str8[] = { 0xd9, 0x02, 'h', 'i' },
                   in[] = { 0xd4, 0x01, 0x02 },
                   dec[] = { 0xd5, 18, 0x04, 0xd2 },     /* 1234 / 100 */
                   decneg[] = { 0xd4, 17, 0xf6 };        /* -10 / 10 */

    (void) state;

    assert_int_equal(decode(nil, sizeof(nil), &v), 0);
    assert_int_equal(v.type, CEF_VAL_NIL);
    assert_int_equal(decode(t, sizeof(t), &v), 0);
    assert_true(v.type == CEF_VAL_BOOL && v.u.b == 1);
    assert_int_equal(decode(f, sizeof(f), &v), 0);
    assert_true(v.type == CEF_VAL_BOOL && v.u.b == 0);
    assert_int_equal(decode(pos, sizeof(pos), &v), 0);
    assert_true(v.type == CEF_VAL_INT && v.u.i == 42);
    assert_int_equal(decode(neg, sizeof(neg), &v), 0);
    assert_true(v.type == CEF_VAL_INT && v.u.i == -5);
    assert_int_equal(decode(u16, sizeof(u16), &v), 0);
    assert_true(v.type == CEF_VAL_INT && v.u.i == 256);
    assert_int_equal(decode(i32, sizeof(i32), &v), 0);
    assert_true(v.type == CEF_VAL_INT && v.u.i == -256);
    assert_int_equal(decode(u64big, sizeof(u64big), &v), -1);
    assert_int_equal(decode(f64, sizeof(f64), &v), 0);
    assert_true(v.type == CEF_VAL_FLOAT && v.u.f == 1.5);
    assert_int_equal(decode(f32, sizeof(f32), &v), 0);
    assert_true(v.type == CEF_VAL_FLOAT && v.u.f == 1.5);
    assert_int_equal(decode(str, sizeof(str), &v), 0);
    assert_true(v.type == CEF_VAL_STR && v.u.s.len == 3
                && memcmp(v.u.s.data, "abc", 3) == 0);
    assert_int_equal(decode(str8, sizeof(str8), &v), 0);
    assert_true(v.type == CEF_VAL_STR && v.u.s.len == 2);
    assert_int_equal(decode(in, sizeof(in), &v), 0);
    assert_true(v.type == CEF_VAL_STR && v.u.s.len == 3
                && memcmp(v.u.s.data, "two", 3) == 0);
    assert_int_equal(decode(dec, sizeof(dec), &v), 0);
    assert_true(v.type == CEF_VAL_FLOAT && v.u.f == 12.34);
    assert_int_equal(decode(decneg, sizeof(decneg), &v), 0);
    assert_true(v.type == CEF_VAL_FLOAT && v.u.f == -1.0);
}


static void
test_array_and_map(void **state)
{
    int            n;
    size_t         pos;
    double         d;
    cef_span_t     s;
    cef_value_t    v;
    const uint8_t  arr[] = { 0x93, 0xa1, 'x', 0x01, 0xa2, 'y', 'z' };
    const uint8_t  map[] = { 0x82, 0xa1, 'a', 0x05, 0x02, 0xd4, 17, 0x07 };

    (void) state;

    assert_int_equal(decode(arr, sizeof(arr), &v), 0);
    assert_int_equal(v.type, CEF_VAL_STR_ARRAY);
    assert_int_equal(v.u.seq.n, 3);

    pos = 0;
    n = 0;
    while (cef_value_array_next(&v, &pos, &s) == 1) {
        n++;
    }
    assert_int_equal(n, 3);

    assert_true(cef_value_array_contains(&v, cef_span_lit("one")));
    assert_true(cef_value_array_contains(&v, cef_span_lit("yz")));
    assert_false(cef_value_array_contains(&v, cef_span_lit("y")));

    assert_int_equal(decode(map, sizeof(map), &v), 0);
    assert_int_equal(v.type, CEF_VAL_NUM_MAP);
    assert_true(cef_value_map_get(&v, cef_span_lit("a"), &d) && d == 5);
    assert_true(cef_value_map_get(&v, cef_span_lit("two"), &d) && d == 0.7);
    assert_false(cef_value_map_get(&v, cef_span_lit("b"), &d));

    /* iterating the wrong type */
    pos = 0;
    assert_int_equal(cef_value_array_next(&v, &pos, &s), -1);
}


static void
test_malformed(void **state)
{
    size_t         i;
    cef_value_t    v;
    const uint8_t  good_arr[] = { 0x92, 0xa1, 'x', 0xa2, 'y', 'z' };
    const uint8_t  bad[][6] = {
        { 0xc4, 0x01, 0x00 },                /* bin */
        { 0xc1 },                            /* never used */
        { 0xd4, 0x01, 0x09 },                /* interned 9 of 3 */
        { 0xd4, 0x05, 0x01 },                /* unknown ext */
        { 0x91, 0x01 + 0x40 },               /* array of an int >= n */
        { 0x91, 0xc3 },                      /* array of a bool */
        { 0x81, 0xa1, 'a', 0xa1, 'b' },      /* map to a string */
        { 0xdd, 0xff, 0xff, 0xff, 0xff },    /* 4G elements, no data */
    };

    (void) state;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(decode(bad[i], 6, &v), -1);
    }

    /* every truncation of a good value is rejected, never over-read */
    for (i = 0; i < sizeof(good_arr); i++) {
        assert_int_equal(decode(good_arr, i, &v), -1);
    }

    /* interned strings without a table */
    {
        size_t         pos = 0;
        const uint8_t  in[] = { 0xd4, 0x01, 0x00 };

        assert_int_equal(cef_value_decode(in, sizeof(in), &pos, NULL, &v),
                         -1);
    }
}


/*
 * cef_value_skip() accepts exactly what cef_value_decode() accepts and
 * ends where it ends: random byte strings built from the headers the
 * store writes (and some it never does), mutated and truncated, with and
 * without a string table.  The same strings then decode to the same
 * values through the inline fast paths as through the general ones, which
 * the iterators re-read element by element.
 */
static void
test_skip_agrees_with_decode(void **state)
{
    static const uint8_t  heads[] = {
        0x00, 0x05, 0x7f, 0x80, 0x82, 0x85, 0x90, 0x93, 0x9f, 0xa0, 0xa3,
        0xbf, 0xc0, 0xc1, 0xc2, 0xc3, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf,
        0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
        0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff, 0x01, 0x10, 0x11, 0x1f
    };
    cef_span_t     names[6] = {
        { "a", 1 }, { "bb", 2 }, { "ccc", 3 }, { "d", 1 }, { "e", 1 },
        { "f", 1 }
    };
    cef_strtab_t   tab = { names, 6 };
    uint8_t        buf[48];
    unsigned       seed = 22, round, k, n;
    size_t         pd, ps, len, pos;
    int            rd, rs, rc;
    cef_value_t    v, v2;
    cef_span_t     sp;
    double         d;
    uint64_t       accepted = 0;

    (void) state;

#define VRND(m)  (seed = seed * 1103515245 + 12345, (seed >> 16) % (m))

    for (round = 0; round < 200000; round++) {
        len = 1 + VRND(sizeof(buf));

        for (k = 0; k < len; k++) {
            buf[k] = VRND(3) ? heads[VRND(sizeof(heads))]
                             : (uint8_t) VRND(256);
        }

        /* often a well-formed header first, so that arrays and maps
           with valid elements come up, or a fixext of a type at the
           edges of those the store writes (interned 1, decimals 16..31) */
        switch (VRND(4)) {
        case 0:
        case 1:
            n = VRND(4);
            buf[0] = (uint8_t) (VRND(2) ? 0x90 + n : 0x80 + n);
            break;
        case 2:
            if (len > 1) {
                static const int8_t  types[] = { 0, 1, 2, 15, 16, 17, 30,
                                                 31, 32, -1 };
                buf[0] = (uint8_t) (0xd4 + VRND(5));
                buf[1] = (uint8_t) types[VRND(sizeof(types))];
            }
            break;
        default:
            break;
        }

        for (k = 0; k < 2; k++) {
            const cef_strtab_t  *st = k ? &tab : NULL;

            pd = 0;
            ps = 0;
            rd = cef_value_decode(buf, len, &pd, st, &v);
            rs = cef_value_skip(buf, len, &ps, st);

            if (rd != rs || (rd == 0 && pd != ps)) {
                fail_msg("round %u: decode %d at %zu, skip %d at %zu "
                         "(first byte 0x%02x, %zu bytes)", round, rd, pd,
                         rs, ps, buf[0], len);
            }

            if (rd != 0) {
                continue;
            }

            accepted++;

            /* decoding it again as a known value: the same value */
            assert_int_equal(cef_value_decode_known(buf, 0, pd, st, &v2), 0);
            assert_int_equal(v2.type, v.type);
            switch (v.type) {
            case CEF_VAL_BOOL:
                assert_int_equal(v2.u.b, v.u.b);
                break;
            case CEF_VAL_INT:
                assert_true(v2.u.i == v.u.i);
                break;
            case CEF_VAL_FLOAT:
                assert_memory_equal(&v2.u.f, &v.u.f, sizeof(double));
                break;
            case CEF_VAL_STR:
                assert_ptr_equal(v2.u.s.data, v.u.s.data);
                assert_int_equal(v2.u.s.len, v.u.s.len);
                break;
            case CEF_VAL_STR_ARRAY:
            case CEF_VAL_NUM_MAP:
                assert_ptr_equal(v2.u.seq.raw, v.u.seq.raw);
                assert_int_equal(v2.u.seq.len, v.u.seq.len);
                assert_int_equal(v2.u.seq.n, v.u.seq.n);
                assert_ptr_equal(v2.u.seq.strs, v.u.seq.strs);
                break;
            default:
                break;
            }

            /* the iterators never fail on an accepted array or map */
            pos = 0;
            if (v.type == CEF_VAL_STR_ARRAY) {
                n = 0;
                while ((rc = cef_value_array_next(&v, &pos, &sp)) == 1) {
                    n++;
                }
                assert_int_equal(rc, 0);
                assert_int_equal(n, v.u.seq.n);

            } else if (v.type == CEF_VAL_NUM_MAP) {
                n = 0;
                while ((rc = cef_value_map_next(&v, &pos, &sp, &d)) == 1) {
                    n++;
                }
                assert_int_equal(rc, 0);
                assert_int_equal(n, v.u.seq.n);
            }
        }
    }

#undef VRND

    /* enough of them well formed to mean something */
    assert_true(accepted > 20000);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_array_and_map),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_skip_agrees_with_decode),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
