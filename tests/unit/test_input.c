/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_input: msgpack and NDJSON streams, record numbers and byte offsets,
 * and every malformed stream.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cef_input.h"


static char  err[1024];


static void
pack_rec(msgpack_packer *pk, int i)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_str(pk, 1);
    msgpack_pack_str_body(pk, "n", 1);
    msgpack_pack_int(pk, i);
}


static void
test_msgpack_stream(void **state)
{
    int                    i, rc;
    size_t                 off[200];
    cef_input_t           *in;
    msgpack_sbuffer        sb;
    msgpack_packer         pk;
    const msgpack_object  *o;

    (void) state;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

    for (i = 0; i < 200; i++) {
        off[i] = sb.size;
        pack_rec(&pk, i * 1000);
    }

    in = cef_input_open_mem(sb.data, sb.size);

    for (i = 0; i < 200; i++) {
        assert_int_equal(cef_input_next(in, &o, err, sizeof(err)), 1);
        assert_int_equal(o->type, MSGPACK_OBJECT_MAP);
        assert_int_equal(o->via.map.ptr[0].val.via.i64, i * 1000);
        assert_int_equal(cef_input_record(in), i + 1);
        assert_int_equal(cef_input_offset(in), off[i]);
    }

    assert_int_equal(cef_input_next(in, &o, err, sizeof(err)), 0);
    assert_int_equal(cef_input_format(in), CEF_INPUT_MSGPACK);

    /* rewind gives the same again */
    assert_int_equal(cef_input_rewind(in), 0);
    assert_int_equal(cef_input_next(in, &o, err, sizeof(err)), 1);
    assert_int_equal(cef_input_offset(in), 0);
    cef_input_close(in);

    /* every truncation inside the last record is reported as such */
    for (i = 1; i < (int) (sb.size - off[199]); i++) {
        in = cef_input_open_mem(sb.data, off[199] + i);
        while ((rc = cef_input_next(in, &o, err, sizeof(err))) == 1) { }
        assert_int_equal(rc, -1);
        assert_non_null(strstr(err, "truncated"));
        assert_non_null(strstr(err, "record 200"));
        cef_input_close(in);
    }

    /* a never-used byte in record 3 */
    sb.data[off[2]] = (char) 0xc1;
    in = cef_input_open_mem(sb.data, sb.size);
    while ((rc = cef_input_next(in, &o, err, sizeof(err))) == 1) { }
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "malformed msgpack"));
    assert_non_null(strstr(err, "record 3"));
    cef_input_close(in);

    msgpack_sbuffer_destroy(&sb);
}


static void
test_msgpack_limits(void **state)
{
    int                    rc;
    char                  *big;
    cef_input_t           *in;
    msgpack_sbuffer        sb;
    msgpack_packer         pk;
    const msgpack_object  *o;

    (void) state;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

    pack_rec(&pk, 1);
    big = calloc(1, 70000);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, "s", 1);
    msgpack_pack_str(&pk, 70000);
    msgpack_pack_str_body(&pk, big, 70000);
    free(big);

    in = cef_input_open_mem(sb.data, sb.size);
    assert_int_equal(cef_input_next(in, &o, err, sizeof(err)), 1);
    rc = cef_input_next(in, &o, err, sizeof(err));
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "record 2 (byte 4)"));
    assert_non_null(strstr(err, "larger than 65536"));
    cef_input_close(in);

    /* a header claiming 2^32 - 1 elements never reaches msgpack-c */
    msgpack_sbuffer_clear(&sb);
    pack_rec(&pk, 1);
    pack_rec(&pk, 2);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, "a", 1);
    msgpack_sbuffer_write(&sb, "\xdd\xff\xff\xff\xff\x01", 6);
    in = cef_input_open_mem(sb.data, sb.size);
    assert_int_equal(cef_input_next(in, &o, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "record 3 (byte 8)"));
    assert_non_null(strstr(err, "claims more elements"));
    cef_input_close(in);

    /* a record that is not a map */
    msgpack_sbuffer_clear(&sb);
    pack_rec(&pk, 1);
    msgpack_pack_array(&pk, 0);
    in = cef_input_open_mem(sb.data, sb.size);
    assert_int_equal(cef_input_next(in, &o, err, sizeof(err)), 1);
    assert_int_equal(cef_input_next(in, &o, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a msgpack map"));
    cef_input_close(in);

    msgpack_sbuffer_destroy(&sb);
}


/* one whole value, as cef-sync consume checks a Kafka message */
static void
test_msgpack_check_one_value(void **state)
{
    int              i;
    char             deep[80];
    msgpack_sbuffer  sb;
    msgpack_packer   pk;

    (void) state;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_rec(&pk, 1);
    assert_int_equal(cef_input_msgpack_check(sb.data, sb.size), 0);
    msgpack_sbuffer_destroy(&sb);

    /* 2^32 - 1 elements; more elements than bytes; exactly as many */
    assert_int_equal(cef_input_msgpack_check("\xdd\xff\xff\xff\xff\x01", 6),
                     -1);
    assert_int_equal(cef_input_msgpack_check("\x81\xa1" "a\xdc\x00\x09"
                                             "\x01\x02", 8), -1);
    assert_int_equal(cef_input_msgpack_check("\x93\x01\x02\x03", 4), 0);

    /* 32 open containers are the limit, as in msgpack-c */
    for (i = 0; i < 33; i++) {
        deep[i] = (char) 0x91;
    }
    deep[33] = 0x01;
    assert_int_equal(cef_input_msgpack_check(deep, 32), 0);
    assert_int_equal(cef_input_msgpack_check(deep, 34), -1);

    /* bytes that are not msgpack are msgpack-c's to report */
    assert_int_equal(cef_input_msgpack_check("\xc1", 1), 0);
    assert_int_equal(cef_input_msgpack_check("", 0), 0);
}


/* msgpack-c reads 32 nested containers: a deeper JSON record is refused
 * as such, not reported as out of memory */
static void
test_ndjson_depth(void **state)
{
    int                    n, depth;
    char                   line[256];
    cef_input_t           *in;
    const msgpack_object  *o;

    (void) state;

    for (depth = 32; depth <= 33; depth++) {
        n = snprintf(line, sizeof(line), "{\"a\":");
        memset(line + n, '[', depth - 1);
        n += depth - 1;
        memset(line + n, ']', depth - 1);
        n += depth - 1;
        line[n++] = '}';
        line[n] = '\0';

        in = cef_input_open_mem(line, n);
        if (depth == 32) {
            assert_int_equal(cef_input_next(in, &o, err, sizeof(err)), 1);
            assert_int_equal(o->via.map.ptr[0].val.type,
                             MSGPACK_OBJECT_ARRAY);
        } else {
            assert_int_equal(cef_input_next(in, &o, err, sizeof(err)), -1);
            assert_non_null(strstr(err, "record 1 (line 1, byte 0): arrays "
                                   "and objects nest deeper than 32"));
        }
        cef_input_close(in);
    }
}


static void
test_ndjson(void **state)
{
    int                    rc;
    char                  *big;
    cef_input_t           *in;
    const msgpack_object  *o;
    static const char      data[] =
        "  {\"a\":1,\"b\":[true,null,\"s\"],\"c\":{\"x\":1.5}}\n"
        "\n"
        "{\"a\":-2}\r\n"
        "{\"a\":3}";

    (void) state;

    in = cef_input_open_mem(data, strlen(data));

    assert_int_equal(cef_input_next(in, &o, err, sizeof(err)), 1);
    assert_int_equal(cef_input_format(in), CEF_INPUT_NDJSON);
    assert_int_equal(o->type, MSGPACK_OBJECT_MAP);
    assert_int_equal(o->via.map.size, 3);
    assert_int_equal(o->via.map.ptr[0].val.via.u64, 1);
    assert_int_equal(o->via.map.ptr[1].val.via.array.size, 3);
    assert_int_equal(o->via.map.ptr[2].val.via.map.ptr[0].val.type,
                     MSGPACK_OBJECT_FLOAT64);

    assert_int_equal(cef_input_next(in, &o, err, sizeof(err)), 1);
    assert_int_equal(cef_input_record(in), 2);
    assert_int_equal(cef_input_offset(in), 45);
    assert_int_equal(o->via.map.ptr[0].val.via.i64, -2);

    assert_int_equal(cef_input_next(in, &o, err, sizeof(err)), 1);
    assert_int_equal(cef_input_record(in), 3);
    assert_int_equal(o->via.map.ptr[0].val.via.i64, 3);
    assert_int_equal(cef_input_next(in, &o, err, sizeof(err)), 0);
    cef_input_close(in);

    /* malformed, duplicate keys, not an object */
    in = cef_input_open_mem("{\"a\":1}\n{\"a\":1,\"a\":2}\n", 22);
    assert_int_equal(cef_input_next(in, &o, err, sizeof(err)), 1);
    assert_int_equal(cef_input_next(in, &o, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "record 2 (line 2, byte 8)"));
    cef_input_close(in);

    in = cef_input_open_mem("{\"a\":1}\n7\n", 10);
    assert_int_equal(cef_input_next(in, &o, err, sizeof(err)), 1);
    assert_int_equal(cef_input_next(in, &o, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "malformed JSON"));
    cef_input_close(in);

    /* a line over 64 KiB */
    big = malloc(70010);
    memset(big, ' ', 70009);
    big[0] = '{';
    big[70008] = '}';
    big[70009] = '\n';
    in = cef_input_open_mem(big, 70010);
    rc = cef_input_next(in, &o, err, sizeof(err));
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "larger than 65536"));
    cef_input_close(in);
    free(big);
}


static void
test_fd_and_pipe(void **state)
{
    int                    p[2];
    cef_input_t           *in;
    const msgpack_object  *o;

    (void) state;

    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], "{\"a\":1}\n{\"a\":2}\n", 16), 16);
    close(p[1]);

    in = cef_input_open_fd(p[0]);
    assert_false(cef_input_seekable(in));
    assert_int_equal(cef_input_size(in), -1);
    assert_int_equal(cef_input_wait(in, 10), 1);
    assert_int_equal(cef_input_next(in, &o, err, sizeof(err)), 1);
    assert_int_equal(cef_input_next(in, &o, err, sizeof(err)), 1);
    assert_int_equal(cef_input_next(in, &o, err, sizeof(err)), 0);
    assert_int_equal(cef_input_rewind(in), -1);
    cef_input_close(in);
    close(p[0]);
}


static void
test_threaded(void **state)
{
    int                    i, p[2];
    size_t                 off[3000];
    char                   buf[64];
    cef_input_t           *in;
    msgpack_sbuffer        sb;
    msgpack_packer         pk;
    const msgpack_object  *o;

    (void) state;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

    for (i = 0; i < 3000; i++) {
        off[i] = sb.size;
        pack_rec(&pk, i);
    }

    /* msgpack, read ahead, then the same truncated */
    in = cef_input_open_mem(sb.data, sb.size);
    assert_int_equal(cef_input_start_thread(in, NULL, NULL, 0), 0);
    for (i = 0; i < 3000; i++) {
        assert_int_equal(cef_input_next(in, &o, err, sizeof(err)), 1);
        assert_int_equal(o->via.map.ptr[0].val.via.i64, i);
        assert_int_equal(cef_input_record(in), i + 1);
        assert_int_equal(cef_input_offset(in), off[i]);
    }
    assert_int_equal(cef_input_next(in, &o, err, sizeof(err)), 0);
    assert_int_equal(cef_input_rewind(in), -1);
    cef_input_close(in);

    in = cef_input_open_mem(sb.data, sb.size - 1);
    assert_int_equal(cef_input_start_thread(in, NULL, NULL, 0), 0);
    for (i = 0; i < 2999; i++) {
        assert_int_equal(cef_input_next(in, &o, err, sizeof(err)), 1);
    }
    assert_int_equal(cef_input_next(in, &o, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "record 3000"));
    cef_input_close(in);

    /* NDJSON: every record keeps its own bytes */
    msgpack_sbuffer_clear(&sb);
    for (i = 0; i < 2000; i++) {
        snprintf(buf, sizeof(buf), "{\"s\":\"value-%d\"}\n", i);
        msgpack_sbuffer_write(&sb, buf, strlen(buf));
    }
    in = cef_input_open_mem(sb.data, sb.size);
    assert_int_equal(cef_input_start_thread(in, NULL, NULL, 0), 0);
    for (i = 0; i < 2000; i++) {
        assert_int_equal(cef_input_next(in, &o, err, sizeof(err)), 1);
        snprintf(buf, sizeof(buf), "value-%d", i);
        assert_int_equal(o->via.map.ptr[0].val.via.str.size, strlen(buf));
        assert_memory_equal(o->via.map.ptr[0].val.via.str.ptr, buf,
                            strlen(buf));
    }
    assert_int_equal(cef_input_next(in, &o, err, sizeof(err)), 0);
    cef_input_close(in);

    /* closed early while the thread blocks on a pipe that stays open */
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], "{\"a\":1}\n", 8), 8);
    in = cef_input_open_fd(p[0]);
    assert_int_equal(cef_input_start_thread(in, NULL, NULL, 0), 0);
    assert_int_equal(cef_input_wait(in, 2000), 1);
    assert_int_equal(cef_input_next(in, &o, err, sizeof(err)), 1);
    assert_int_equal(cef_input_wait(in, 50), 0);
    cef_input_close(in);
    close(p[0]);
    close(p[1]);

    msgpack_sbuffer_destroy(&sb);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msgpack_stream),
        cmocka_unit_test(test_msgpack_limits),
        cmocka_unit_test(test_msgpack_check_one_value),
        cmocka_unit_test(test_ndjson),
        cmocka_unit_test(test_ndjson_depth),
        cmocka_unit_test(test_fd_and_pipe),
        cmocka_unit_test(test_threaded),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
