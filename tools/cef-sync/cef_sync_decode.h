/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-sync consume: a Kafka message's value as one delta record
 * (docs/sync.md).  No librdkafka here, so that tests/fuzz/fuzz_consume.c
 * can drive it.
 */

#ifndef CEF_SYNC_DECODE_H
#define CEF_SYNC_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>


typedef struct {
    int              json;     /* values are JSON objects, not msgpack */
    msgpack_zone     zone;     /* the last record decoded */
    msgpack_sbuffer  sbuf;     /* JSON: the value packed as msgpack */
} cef_sync_decoder_t;


/* @return 0, or -1 (out of memory). */
int cef_sync_decoder_init(cef_sync_decoder_t *d, int json);
void cef_sync_decoder_free(cef_sync_decoder_t *d);

/*
 * Decode one message value into *rec, valid until the next call.
 *
 * @return 0 with *rec a map, or -1 with the reason in err (a malformed or
 *         over-large value, a value that is not a map or object).
 */
int cef_sync_decode(cef_sync_decoder_t *d, const void *data, size_t len,
    msgpack_object *rec, char *err, size_t errlen);

#endif /* CEF_SYNC_DECODE_H */
