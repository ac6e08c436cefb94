/*
 * Copyright (C) ngx_cef_module developers
 *
 * cef-sync consume: a Kafka message's value as one delta record.
 */

#include <stdio.h>
#include <string.h>

#include <jansson.h>
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


static uint64_t
cef_sync_be(const uint8_t *p, size_t n)
{
    uint64_t  v = 0;

    while (n--) {
        v = (v << 8) | *p++;
    }

    return v;
}


/* the end offset of the value at pos, or 0 (cef_sync_msgpack_check()) */

static size_t
cef_sync_mp_value(const uint8_t *p, size_t len, size_t pos, int depth)
{
    uint8_t   c;
    uint64_t  n, i, skip = 0;
    size_t    hl = 0;

    if (pos >= len || depth > CEF_SYNC_DECODE_DEPTH) {
        return 0;
    }

    c = p[pos];

#define CEF_BE(off, bytes)                                                   \
    (pos + 1 + (off) + (bytes) > len ? (uint64_t) -1                         \
     : cef_sync_be(p + pos + 1 + (off), bytes))

    if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
        return pos + 1;
    }

    if ((c >= 0x80 && c <= 0x9f) || c == 0xdc || c == 0xdd || c == 0xde
        || c == 0xdf)
    {
        if (c <= 0x8f) {
            n = 2 * (uint64_t) (c & 0x0f); hl = 1;
        } else if (c <= 0x9f) {
            n = c & 0x0f; hl = 1;
        } else if (c == 0xdc) {
            n = CEF_BE(0, 2); hl = 3;
        } else if (c == 0xdd) {
            n = CEF_BE(0, 4); hl = 5;
        } else if (c == 0xde) {
            n = CEF_BE(0, 2); n = n == (uint64_t) -1 ? n : 2 * n; hl = 3;
        } else {
            n = CEF_BE(0, 4); n = n == (uint64_t) -1 ? n : 2 * n; hl = 5;
        }

        /* every element takes at least one byte */
        if (n == (uint64_t) -1 || n > len - pos) {
            return 0;
        }

        pos += hl;
        for (i = 0; i < n; i++) {
            pos = cef_sync_mp_value(p, len, pos, depth + 1);
            if (pos == 0) {
                return 0;
            }
        }

        return pos;
    }

    if (c >= 0xa0 && c <= 0xbf) {
        hl = 1; skip = c & 0x1f;
    } else if (c == 0xd9 || c == 0xc4) {
        hl = 2; skip = CEF_BE(0, 1);
    } else if (c == 0xda || c == 0xc5) {
        hl = 3; skip = CEF_BE(0, 2);
    } else if (c == 0xdb || c == 0xc6) {
        hl = 5; skip = CEF_BE(0, 4);
    } else if (c == 0xc7) {
        hl = 3; skip = CEF_BE(0, 1);
    } else if (c == 0xc8) {
        hl = 4; skip = CEF_BE(0, 2);
    } else if (c == 0xc9) {
        hl = 6; skip = CEF_BE(0, 4);
    } else if (c >= 0xd4 && c <= 0xd8) {
        hl = 2; skip = (uint64_t) 1 << (c - 0xd4);
    } else if (c == 0xca) {
        hl = 1; skip = 4;
    } else if (c == 0xcb) {
        hl = 1; skip = 8;
    } else if (c >= 0xcc && c <= 0xcf) {
        hl = 1; skip = (uint64_t) 1 << (c - 0xcc);
    } else if (c >= 0xd0 && c <= 0xd3) {
        hl = 1; skip = (uint64_t) 1 << (c - 0xd0);
    } else {
        return 0;   /* 0xc1 */
    }

#undef CEF_BE

    if (skip == (uint64_t) -1 || hl > len - pos || skip > len - pos - hl) {
        return 0;
    }

    return pos + hl + (size_t) skip;
}


size_t
cef_sync_msgpack_check(const uint8_t *p, size_t len)
{
    return cef_sync_mp_value(p, len, 0, 0);
}


int
cef_sync_decode(cef_sync_decoder_t *d, const void *data, size_t len,
    msgpack_object *rec, char *err, size_t errlen)
{
    size_t                  off = 0;
    json_t                 *j;
    json_error_t            jerr;
    msgpack_packer          pk;
    msgpack_unpack_return   rc;

    if (len > CEF_INPUT_RECORD_MAX) {
        snprintf(err, errlen, "record is larger than %d bytes",
                 CEF_INPUT_RECORD_MAX);
        return -1;
    }

    msgpack_zone_clear(&d->zone);

    if (d->json) {
        j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
        if (j == NULL) {
            snprintf(err, errlen, "malformed JSON at column %d: %s",
                     jerr.column, jerr.text);
            return -1;
        }

        if (!json_is_object(j)) {
            json_decref(j);
            snprintf(err, errlen, "not a JSON object");
            return -1;
        }

        msgpack_sbuffer_clear(&d->sbuf);
        msgpack_packer_init(&pk, &d->sbuf, msgpack_sbuffer_write);

        if (cef_input_json_pack(&pk, j) != 0) {
            json_decref(j);
            snprintf(err, errlen, "out of memory");
            return -1;
        }

        json_decref(j);
        data = d->sbuf.data;
        len = d->sbuf.size;

    } else if (len > 0 && *(const char *) data == '{') {
        snprintf(err, errlen, "malformed msgpack (the value looks like JSON: "
                 "--format json?)");
        return -1;

    } else if (cef_sync_msgpack_check(data, len) != len) {
        snprintf(err, errlen, "malformed msgpack");
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

    return 0;
}
