/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-sync consume: a Kafka message's value as one delta record.
 */

#include <stdio.h>
#include <string.h>

#include <msgpack.h>

#include "cef_input.h"
#include "cef_sync_decode.h"


int
cef_sync_decoder_init(cef_sync_decoder_t *d, int json)
{
    memset(d, 0, sizeof(cef_sync_decoder_t));
    d->json = json;
    msgpack_sbuffer_init(&d->sbuf);

    return msgpack_zone_init(&d->zone, 8192) ? 0 : -1;
}


void
cef_sync_decoder_free(cef_sync_decoder_t *d)
{
    msgpack_zone_destroy(&d->zone);
    msgpack_sbuffer_destroy(&d->sbuf);
}


int
cef_sync_decode(cef_sync_decoder_t *d, const void *data, size_t len,
    msgpack_object *rec, char *err, size_t errlen)
{
    size_t                  off = 0, raw = len;
    msgpack_unpack_return   rc;

    if (len > CEF_INPUT_RULES_MAX) {
        snprintf(err, errlen, "record is larger than %d bytes",
                 CEF_INPUT_RULES_MAX);
        return -1;
    }

    msgpack_zone_clear(&d->zone);

    if (d->json) {
        if (cef_input_json_record(data, len, &d->sbuf, err, errlen) != 0) {
            return -1;
        }

        data = d->sbuf.data;
        len = d->sbuf.size;

    } else if (len > 0 && *(const char *) data == '{') {
        snprintf(err, errlen, "malformed msgpack (the value looks like JSON: "
                 "--format json?)");
        return -1;

    } else if (cef_input_msgpack_check(data, len) != 0) {
        snprintf(err, errlen, "malformed msgpack (an array or map claims "
                 "more elements than the value has bytes, or nests too "
                 "deep)");
        return -1;
    }

    rc = msgpack_unpack(data, len, &off, &d->zone, rec);

    if (rc != MSGPACK_UNPACK_SUCCESS || off != len) {
        snprintf(err, errlen, "malformed msgpack");
        return -1;
    }

    if (rec->type != MSGPACK_OBJECT_MAP) {
        snprintf(err, errlen, "not a msgpack map");
        return -1;
    }

    /* only a rules record may be over 64 KiB (docs/formats.md) */
    if (!cef_input_size_ok(rec, raw)) {
        snprintf(err, errlen, "record is larger than %d bytes",
                 CEF_INPUT_RECORD_MAX);
        return -1;
    }

    return 0;
}
