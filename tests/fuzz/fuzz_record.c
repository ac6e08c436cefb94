/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * libFuzzer target: the replayable decision record (cef_record.h)
 * as `cef-rules replay` reads it from impression log lines.
 *
 * Byte 0, bit 0 picks cef_record_parse() (0) or
 * cef_record_from_log_line() (1); the rest is the text.  A record that
 * parses is written back with cef_record_format(), which must parse
 * again, and its second writing must equal the first (format and parse
 * agree); every shorter buffer gets a NUL-terminated prefix of the full
 * line and the same length back.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cef_record.h"
#include "fuzz_common.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static char *
format(const cef_record_t *rec, size_t *len)
{
    size_t   n, cut;
    char    *buf, *part;

    n = cef_record_format(rec, NULL, 0);
    buf = malloc(n + 1);
    part = malloc(n + 1);
    CHECK(buf != NULL && part != NULL);

    CHECK(cef_record_format(rec, buf, n + 1) == n);
    CHECK(buf[n] == '\0' && strlen(buf) == n);

    for (cut = 1; cut <= n; cut += 1 + cut / 2) {
        CHECK(cef_record_format(rec, part, cut) == n);
        CHECK(part[cut - 1] == '\0');
        CHECK(memcmp(part, buf, cut - 1) == 0);
    }

    free(part);
    *len = n;

    return buf;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int            rc;
    size_t         n1, n2;
    char          *f1, *f2, err[256];
    cef_record_t   rec, back;

    if (size < 1 || size > 16384) {
        return 0;
    }

    memset(&rec, 0, sizeof(rec));
    err[0] = '\0';

    if (data[0] & 1) {
        rc = cef_record_from_log_line((const char *) data + 1, size - 1, &rec,
                                      err, sizeof(err));
        CHECK(rc == 0 || rc == 1 || rc == -1);
    } else {
        rc = cef_record_parse((const char *) data + 1, size - 1, &rec, err,
                              sizeof(err));
        CHECK(rc == 0 || rc == -1);
    }

    if (rc == -1) {
        CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
    }

    if (rc != 0) {
        cef_record_release(&rec);
        return 0;
    }

    f1 = format(&rec, &n1);

    memset(&back, 0, sizeof(back));
    rc = cef_record_parse(f1, n1, &back, err, sizeof(err));
    CHECK(rc == 0);
    f2 = format(&back, &n2);
    CHECK(n1 == n2 && memcmp(f1, f2, n1) == 0);

    free(f1);
    free(f2);
    cef_record_release(&back);
    cef_record_release(&rec);

    return 0;
}
