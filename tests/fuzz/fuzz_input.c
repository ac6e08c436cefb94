/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * libFuzzer target: the snapshot and delta stream reader (cef_input.h),
 * msgpack and NDJSON alike, and the attribute value check every record's
 * values pass (cef_encode_check_value()).
 *
 * The input is a stream.  Every record is read; the values under attrs
 * and set are checked; then the reader is rewound and the stream read
 * again.  Invariants: both passes give the same records, result and
 * message; an error message is NUL-terminated and names the record;
 * offsets and consumed bytes stay within the stream; a record is a map.
 */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cef_input.h"
#include "cef_encode.h"
#include "fuzz_common.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
check_values(const msgpack_object *rec)
{
    uint32_t                  i, j;
    const char               *why;
    const msgpack_object_kv  *kv;

    CHECK(rec->type == MSGPACK_OBJECT_MAP);

    for (i = 0; i < rec->via.map.size; i++) {
        kv = &rec->via.map.ptr[i];

        if (kv->key.type != MSGPACK_OBJECT_STR
            || kv->val.type != MSGPACK_OBJECT_MAP)
        {
            continue;
        }

        if (!(kv->key.via.str.size == 5
              && memcmp(kv->key.via.str.ptr, "attrs", 5) == 0)
            && !(kv->key.via.str.size == 3
                 && memcmp(kv->key.via.str.ptr, "set", 3) == 0))
        {
            continue;
        }

        for (j = 0; j < kv->val.via.map.size; j++) {
            why = NULL;
            if (cef_encode_check_value(&kv->val.via.map.ptr[j].val, &why)
                != 0)
            {
                CHECK(why != NULL);
            }
        }
    }
}


static int
read_all(cef_input_t *in, size_t size, uint64_t *records, char *err,
    size_t errlen)
{
    int                    rc;
    const msgpack_object  *obj;

    *records = 0;
    err[0] = '\0';

    while ((rc = cef_input_next(in, &obj, err, errlen)) == 1) {
        (*records)++;
        CHECK(cef_input_record(in) == *records);
        CHECK(cef_input_offset(in) < size);
        CHECK(cef_input_consumed(in) <= size);
        check_values(obj);
    }

    CHECK(rc == 0 || rc == -1);
    CHECK(cef_input_consumed(in) <= size);

    if (rc == -1) {
        CHECK(memchr(err, '\0', errlen) != NULL);
        CHECK(strncmp(err, "record ", 7) == 0 || strstr(err, "record"));
    }

    return rc;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int           rc1, rc2;
    uint64_t      n1, n2;
    cef_input_t  *in;
    char          err1[512], err2[512];

    if (size > 256 * 1024) {
        return 0;
    }

    in = cef_input_open_mem(data, size);
    CHECK(in != NULL);
    CHECK(cef_input_seekable(in));
    CHECK(cef_input_size(in) == (int64_t) size);

    rc1 = read_all(in, size, &n1, err1, sizeof(err1));

    CHECK(cef_input_rewind(in) == 0);
    rc2 = read_all(in, size, &n2, err2, sizeof(err2));

    CHECK(rc1 == rc2 && n1 == n2);
    CHECK(strcmp(err1, err2) == 0);

    cef_input_close(in);

    return 0;
}
