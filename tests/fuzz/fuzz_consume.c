/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * libFuzzer target: what cef-sync consume makes of Kafka messages, in two
 * layers (tools/cef-sync/decode.c, then the store's stream session).
 *
 * Input: byte 0 holds flags (bit 0: the values are JSON, not msgpack; bit
 * 1: the batch is committed, not abandoned); then up to 8 messages, each
 * a 2-byte big-endian length and that many bytes (cut at the end of the
 * input).  Length 0 is a tombstone whose key is the next byte's count of
 * bytes.
 *
 * Every message: cef_sync_decode().  Invariants: a decoded record is a
 * map; a refusal has a message.  msgpack values: a value is decoded
 * exactly when the structure check (cef_input_msgpack_check()) passes it
 * and msgpack-c then reads all of it as one map; a decoded record packed,
 * read back and packed again gives the same bytes.  JSON values: the
 * record has as many entries as the object.
 *
 * One input in CEF_FUZZ_STORE_EVERY (default 64; 1: every input, as
 * `make fuzz-smoke` runs it), chosen by a hash of the input: the messages
 * also go through a stream session (cef_writer_stream_open(), _record(),
 * _erase(), then _commit() with offsets or _close() without) on a store on
 * tmpfs holding two known profiles.  Invariants: every record or tombstone
 * is applied or refused as bad input, never a store error; when nothing
 * was applied, or the batch was abandoned, the store is as it was (same
 * counts, same profile bytes); after a commit the store verifies, its
 * counts are what the commit reported, and a new session reads back the
 * offsets committed.  At exit the target prints how many inputs took each
 * layer.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cef_input.h"
#include "cef_store.h"
#include "cef_writer.h"
#include "cef_sync_decode.h"
#include "fuzz_common.h"
#include "fuzz_store_fixture.h"


#define FUZZ_MESSAGES  8


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


typedef struct {
    const uint8_t  *p;
    size_t          len;
    int             tombstone;
} message_t;


static const char  *base_keys[] = { "ann@example.com", "bob@example.com" };


static cef_writer_verify_result_t  base_v;
static uint8_t             *base_blob[2];
static size_t               base_len[2];
static cef_sync_decoder_t   dec[2];
static uint64_t             n_inputs, n_messages, n_decoded, n_sessions,
                            n_applied, n_commits;


/* --- decoding ----------------------------------------------------------- */


static void
check_msgpack(cef_sync_decoder_t *d, const message_t *m, int decoded,
    const msgpack_object *rec)
{
    size_t                 off;
    msgpack_zone           zone;
    msgpack_object         obj;
    msgpack_packer         pk;
    msgpack_sbuffer        again;
    msgpack_unpack_return  rc;

    CHECK(msgpack_zone_init(&zone, 2048));

    /* what the structure check lets through, msgpack-c reads (within the
     * fuzzer's memory limit) and the decoder takes if it is one map */
    if (m->len <= CEF_INPUT_RECORD_MAX
        && (m->len == 0 || m->p[0] != '{')
        && cef_input_msgpack_check(m->p, m->len) == 0)
    {
        off = 0;
        rc = msgpack_unpack((const char *) m->p, m->len, &off, &zone, &obj);
        CHECK(decoded == (rc == MSGPACK_UNPACK_SUCCESS && off == m->len
                          && obj.type == MSGPACK_OBJECT_MAP));
        msgpack_zone_clear(&zone);

    } else {
        CHECK(!decoded);
    }

    /* packed again, read back and packed once more: the same bytes (NaN
     * keeps msgpack_object_equal() from comparing objects) */
    if (decoded) {
        msgpack_sbuffer_init(&again);
        msgpack_sbuffer_clear(&d->sbuf);
        msgpack_packer_init(&pk, &d->sbuf, msgpack_sbuffer_write);
        CHECK(msgpack_pack_object(&pk, *rec) == 0);

        off = 0;
        rc = msgpack_unpack(d->sbuf.data, d->sbuf.size, &off, &zone, &obj);
        CHECK(rc == MSGPACK_UNPACK_SUCCESS && off == d->sbuf.size);

        msgpack_packer_init(&pk, &again, msgpack_sbuffer_write);
        CHECK(msgpack_pack_object(&pk, obj) == 0);
        CHECK(again.size == d->sbuf.size
              && memcmp(again.data, d->sbuf.data, again.size) == 0);
        msgpack_sbuffer_destroy(&again);
    }

    msgpack_zone_destroy(&zone);
}


static void
check_json(const message_t *m, int decoded, const msgpack_object *rec)
{
    json_t        *j;
    json_error_t   jerr;

    if (!decoded) {
        return;
    }

    j = json_loadb((const char *) m->p, m->len, JSON_REJECT_DUPLICATES,
                   &jerr);
    CHECK(j != NULL && json_is_object(j));
    CHECK(rec->via.map.size == json_object_size(j));
    json_decref(j);
}


static int
decode(int json, const message_t *m, msgpack_object *rec)
{
    int                  decoded;
    char                 err[1024];
    cef_sync_decoder_t  *d = &dec[json];

    err[0] = '\0';
    decoded = cef_sync_decode(d, m->p, m->len, rec, err, sizeof(err)) == 0;
    n_decoded += decoded;

    if (!decoded) {
        CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
        return 0;
    }

    CHECK(rec->type == MSGPACK_OBJECT_MAP);

    if (json) {
        check_json(m, decoded, rec);
    } else {
        check_msgpack(d, m, decoded, rec);
    }

    return 1;
}


/* --- the stream session ------------------------------------------------- */


static void
verify(cef_writer_verify_result_t *v)
{
    char  err[512];

    memset(v, 0, sizeof(*v));
    CHECK(cef_writer_verify(dir, ident, NULL, NULL, v, err, sizeof(err))
          == CEF_WRITER_OK);
    CHECK(v->problems == 0);
}


/* a profile's id, hints and attribute bytes, one after the other */
static size_t
profile_bytes(const cef_profile_t *p, uint8_t *out, size_t size)
{
    size_t  n, h;

    h = 2 * (size_t) p->nhints;
    n = p->id.len + h + p->attrs_len;
    CHECK(n <= size);

    memcpy(out, p->id.data, p->id.len);
    memcpy(out + p->id.len, p->hints, h);
    memcpy(out + p->id.len + h, p->attrs, p->attrs_len);

    return n;
}


/*
 * The bytes of each known profile, looked up by its key: into base_blob
 * (keep), or compared with it.
 */
static void
base_profiles(int keep)
{
    int             i;
    size_t          n;
    char            err[512];
    uint8_t         buf[4096];
    cef_store_t    *s;
    cef_profile_t   p;

    CHECK(cef_store_open(&s, dir, err, sizeof(err)) == CEF_STORE_OK);
    CHECK(cef_store_begin(s) == CEF_STORE_OK);

    for (i = 0; i < 2; i++) {
        CHECK(cef_store_lookup_key(s, ident, "email", 5, base_keys[i],
                                   strlen(base_keys[i]), &p)
              == CEF_STORE_OK);
        n = profile_bytes(&p, buf, sizeof(buf));

        if (keep) {
            base_len[i] = n;
            base_blob[i] = malloc(n);
            CHECK(base_blob[i] != NULL);
            memcpy(base_blob[i], buf, n);

        } else {
            CHECK(n == base_len[i] && memcmp(buf, base_blob[i], n) == 0);
        }
    }

    cef_store_end(s);
    cef_store_close(s);
}


static void
check_base(void)
{
    cef_writer_verify_result_t  v;

    verify(&v);
    CHECK(v.profiles == base_v.profiles && v.keys == base_v.keys
          && v.index_entries == base_v.index_entries);
    base_profiles(0);
}


static void
session(int json, int commit, const message_t *msgs, size_t n)
{
    int                   rc;
    size_t                i, applied;
    char                  err[1024];
    msgpack_object        rec;
    cef_writer_stream_t   *st;
    cef_store_offsets_t   offs, back;
    cef_writer_conf_t     conf;
    cef_writer_result_t   res;
    cef_writer_verify_result_t   v;

    n_sessions++;
    conf_init(&conf);
    CHECK(cef_writer_stream_open(&st, &conf, &offs, err, sizeof(err))
          == CEF_WRITER_OK);

    memset(&res, 0, sizeof(res));
    applied = 0;

    for (i = 0; i < n; i++) {
        err[0] = '\0';

        if (msgs[i].tombstone) {
            rc = cef_writer_stream_erase(st, (const char *) msgs[i].p,
                                        msgs[i].len, &res, err, sizeof(err));

        } else if (decode(json, &msgs[i], &rec)) {
            rc = cef_writer_stream_record(st, &rec, &res, err, sizeof(err));

        } else {
            continue;
        }

        if (rc != CEF_WRITER_OK && rc != CEF_WRITER_EINPUT) {
            fprintf(stderr, "fuzz_consume: store error: %s\n", err);
            abort();
        }

        if (rc == CEF_WRITER_EINPUT) {
            CHECK(err[0] != '\0');
        }

        applied += rc == CEF_WRITER_OK;
    }

    n_applied += applied;

    if (!commit) {
        cef_writer_stream_close(st);
        check_base();
        return;
    }

    memset(&offs, 0, sizeof(offs));
    strcpy(offs.topic, "fuzz");
    offs.partitions = 2;
    offs.next[0] = -1;                  /* a partition not read yet */
    offs.next[1] = (int64_t) n;

    CHECK(cef_writer_stream_commit(st, &offs, &res, err, sizeof(err))
          == CEF_WRITER_OK);
    cef_writer_stream_close(st);
    n_commits++;

    verify(&v);
    CHECK(v.profiles == res.profiles && v.keys == res.keys);

    CHECK(cef_writer_stream_open(&st, &conf, &back, err, sizeof(err))
          == CEF_WRITER_OK);
    cef_writer_stream_close(st);
    CHECK(strcmp(back.topic, "fuzz") == 0 && back.partitions == 2
          && back.next[0] == -1 && back.next[1] == (int64_t) n);

    if (applied == 0) {
        check_base();
    }

    /* back to the two known profiles, without offsets, for the next input */
    load_base();
}


/* --- set-up ------------------------------------------------------------- */


static void
report(void)
{
    fprintf(stderr, "fuzz_consume: %llu inputs, %llu messages (%llu "
            "decoded), %llu stream sessions (%llu committed), %llu records "
            "applied (CEF_FUZZ_STORE_EVERY=%u)\n",
            (unsigned long long) n_inputs, (unsigned long long) n_messages,
            (unsigned long long) n_decoded, (unsigned long long) n_sessions,
            (unsigned long long) n_commits, (unsigned long long) n_applied,
            every);

    fuzz_store_remove();
}


static void
init(void)
{
    CHECK(cef_sync_decoder_init(&dec[0], 0) == 0);
    CHECK(cef_sync_decoder_init(&dec[1], 1) == 0);

    fuzz_store_setup("consume", report);
    verify(&base_v);
    CHECK(base_v.profiles == 2);
    base_profiles(1);
}


static size_t
split(const uint8_t *p, size_t len, message_t *msgs)
{
    size_t  n, pos, want;

    n = 0;
    pos = 0;

    while (n < FUZZ_MESSAGES && pos + 2 <= len) {
        want = (size_t) p[pos] << 8 | p[pos + 1];
        pos += 2;

        msgs[n].tombstone = want == 0;
        if (want == 0) {
            want = pos < len ? p[pos++] : 0;
        }

        msgs[n].p = p + pos;
        msgs[n].len = want < len - pos ? want : len - pos;
        pos += msgs[n].len;
        n++;
    }

    return n;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int             json;
    size_t          i, n;
    message_t       msgs[FUZZ_MESSAGES];
    msgpack_object  rec;

    if (dir[0] == '\0') {
        init();
    }

    if (size < 1 || size > 256 * 1024) {
        return 0;
    }

    n_inputs++;
    json = data[0] & 1;
    n = split(data + 1, size - 1, msgs);
    n_messages += n;

    if (fuzz_store_chosen(data, size)) {
        session(json, data[0] & 2, msgs, n);
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (!msgs[i].tombstone) {
            (void) decode(json, &msgs[i], &rec);
        }
    }

    return 0;
}
