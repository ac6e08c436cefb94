/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * libFuzzer target: what cef-sync makes of an arbitrary snapshot or delta
 * stream, in two layers.  Byte 0 picks load or apply (bit 0); the rest is
 * the stream.
 *
 * Every input: the stream is read (cef_input.h) and the attribute values
 * of each record (attrs, set) that the writer accepts
 * (cef_encode_check_value()) go through the writer's encoder into a
 * stored profile (cef_encode.h), one encoder per stream so that
 * names and strings are interned across records as in a load.  The
 * profile is read back through the reader's decoder (cef_profile.h,
 * cef_value.h) with the encoder's dictionary.  Invariants: it validates;
 * its id, hints and attribute count are what was written; each attribute
 * (the last value given for a name) reads back by name and by id with the
 * same type and value: the same bytes, the same double (NaN as NaN, -0 as
 * -0), integers exactly, arrays and maps element by element and through
 * cef_value_array_contains() and cef_value_map_get().
 *
 * One input in CEF_FUZZ_STORE_EVERY (default 64; 1: every input, as
 * `make fuzz-smoke` runs it), chosen by a hash of the input so that a run
 * can be replayed: also a whole cef_writer_load() or cef_writer_apply() of
 * the stream into a store on tmpfs (/dev/shm).  The store is created once
 * and holds two known profiles; a load or apply that succeeded is undone
 * by loading them again.  Invariants: the result is OK or bad input,
 * never a store error (the streams are small, the map is large); after OK
 * the store verifies (cef_writer_verify()) and its counts equal the
 * writer's, and an apply never lowers the last seq; after bad input the
 * store is unchanged (same profiles, keys, index entries and last seq)
 * and there is a message.  At exit the target prints how many inputs took each
 * layer.
 */

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cef_input.h"
#include "cef_profile.h"
#include "cef_store.h"
#include "cef_encode.h"
#include "cef_writer.h"
#include "fuzz_common.h"
#include "fuzz_store_fixture.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static cef_writer_verify_result_t  base_v;
static uint64_t             base_seq;
static uint64_t             n_inputs, n_records, n_profiles, n_loads,
                            n_applies;


/* --- the stored-profile round trip ------------------------------------ */


static int
same_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}


static int
same_double(double a, double b)
{
    if (isnan(a) || isnan(b)) {
        return isnan(a) && isnan(b);
    }

    return a == b && signbit(a) == signbit(b);
}


/* a map value of the input as the reader returns it: a double */
static double
input_number(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return (double) o->via.u64;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return (double) o->via.i64;
    default:
        return o->via.f64;
    }
}


static void
check_same(const msgpack_object *in, const cef_value_t *v)
{
    uint32_t                  i, k;
    size_t                    pos;
    double                    num;
    cef_span_t                s, key;
    const msgpack_object     *e;
    const msgpack_object_kv  *kv;

    switch (in->type) {

    case MSGPACK_OBJECT_NIL:
        CHECK(v->type == CEF_VAL_NIL);
        break;

    case MSGPACK_OBJECT_BOOLEAN:
        CHECK(v->type == CEF_VAL_BOOL && !v->u.b == !in->via.boolean);
        break;

    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        CHECK(v->type == CEF_VAL_INT && v->u.i >= 0
              && (uint64_t) v->u.i == in->via.u64);
        break;

    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        CHECK(v->type == CEF_VAL_INT && v->u.i == in->via.i64);
        break;

    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        CHECK(v->type == CEF_VAL_FLOAT && same_double(v->u.f, in->via.f64));
        break;

    case MSGPACK_OBJECT_STR:
        CHECK(v->type == CEF_VAL_STR
              && same_bytes(v->u.s.data, v->u.s.len, in->via.str.ptr,
                            in->via.str.size));
        break;

    case MSGPACK_OBJECT_ARRAY:
        CHECK(v->type == CEF_VAL_STR_ARRAY
              && v->u.seq.n == in->via.array.size);
        pos = 0;
        for (i = 0; i < in->via.array.size; i++) {
            e = &in->via.array.ptr[i];
            CHECK(cef_value_array_next(v, &pos, &s) == 1);
            CHECK(same_bytes(s.data, s.len, e->via.str.ptr, e->via.str.size));
            s.data = e->via.str.ptr;
            s.len = e->via.str.size;
            CHECK(cef_value_array_contains(v, s) == 1);
        }
        CHECK(cef_value_array_next(v, &pos, &s) == 0);
        break;

    case MSGPACK_OBJECT_MAP:
        CHECK(v->type == CEF_VAL_NUM_MAP && v->u.seq.n == in->via.map.size);
        pos = 0;
        for (i = 0; i < in->via.map.size; i++) {
            kv = &in->via.map.ptr[i];
            CHECK(cef_value_map_next(v, &pos, &s, &num) == 1);
            CHECK(same_bytes(s.data, s.len, kv->key.via.str.ptr,
                             kv->key.via.str.size));
            CHECK(same_double(num, input_number(&kv->val)));

            /* map_get finds the first pair with the key */
            key.data = kv->key.via.str.ptr;
            key.len = kv->key.via.str.size;
            for (k = 0; k < i; k++) {
                if (same_bytes(key.data, key.len,
                               in->via.map.ptr[k].key.via.str.ptr,
                               in->via.map.ptr[k].key.via.str.size))
                {
                    break;
                }
            }
            CHECK(cef_value_map_get(v, key, &num) == 1);
            CHECK(same_double(num, input_number(&in->via.map.ptr[k].val)));
        }
        CHECK(cef_value_map_next(v, &pos, &s, &num) == 0);
        break;

    default:
        CHECK(0);
    }
}


/* 1 if a later pair of the map has the same (string) key */
static int
overridden(const msgpack_object *map, uint32_t i)
{
    uint32_t               j;
    const char            *why;
    const msgpack_object  *a, *b;

    a = &map->via.map.ptr[i].key;

    for (j = i + 1; j < map->via.map.size; j++) {
        b = &map->via.map.ptr[j].key;
        if (b->type == MSGPACK_OBJECT_STR
            && same_bytes(a->via.str.ptr, a->via.str.size, b->via.str.ptr,
                          b->via.str.size)
            && cef_encode_check_value(&map->via.map.ptr[j].val, &why) == 0)
        {
            return 1;
        }
    }

    return 0;
}


static void
roundtrip_values(cef_encode_t *enc, const msgpack_object *rec,
    const msgpack_object *map)
{
    int                    rc;
    uint32_t               i, n;
    size_t                 pos, idlen;
    const char            *id, *why;
    cef_span_t             name;
    cef_value_t            v;
    cef_dict_t             dict;
    cef_profile_t          p;
    const msgpack_object  *k, *val;
    static const uint16_t  hints[] = { 0, 1, 0xfffe, 0xffff };

    /* the record's id if it has a usable one, else a fixed one */
    id = "fuzz";
    idlen = 4;

    for (i = 0; i < rec->via.map.size; i++) {
        k = &rec->via.map.ptr[i].key;
        val = &rec->via.map.ptr[i].val;
        if (k->type == MSGPACK_OBJECT_STR && same_bytes(k->via.str.ptr,
                                                        k->via.str.size,
                                                        "id", 2)
            && val->type == MSGPACK_OBJECT_STR
            && val->via.str.size <= CEF_PROFILE_ID_MAX)
        {
            id = val->via.str.ptr;
            idlen = val->via.str.size;
        }
    }

    cef_encode_begin(enc);
    n = 0;

    for (i = 0; i < map->via.map.size; i++) {
        k = &map->via.map.ptr[i].key;
        val = &map->via.map.ptr[i].val;

        why = NULL;
        if (k->type != MSGPACK_OBJECT_STR
            || cef_encode_check_value(val, &why) != 0)
        {
            continue;
        }

        /* (a 16 KiB stream cannot name CEF_ENCODE_NAMES_MAX attributes) */
        CHECK(cef_encode_attr(enc, k->via.str.ptr, k->via.str.size, val)
              == 0);

        if (!overridden(map, i)) {
            n++;
        }
    }

    CHECK(cef_encode_profile(enc, hints, (uint32_t) (idlen % 5), id, idlen)
          == 0);
    n_profiles++;

    memset(&dict, 0, sizeof(dict));
    dict.names = enc->names.tab;
    dict.strs = enc->strs.tab;
    CHECK(cef_dict_index(&dict) == 0);

    CHECK(cef_profile_parse((const uint8_t *) enc->blob.data, enc->blob.size,
                            &dict, &p)
          == 0);
    CHECK(cef_profile_validate(&p) == 0);
    CHECK(same_bytes(p.id.data, p.id.len, id, idlen));
    CHECK(p.nhints == idlen % 5);
    for (i = 0; i < p.nhints; i++) {
        CHECK(((uint16_t) p.hints[2 * i] << 8 | p.hints[2 * i + 1])
              == hints[i]);
    }
    CHECK(p.nattrs == n);

    for (i = 0; i < map->via.map.size; i++) {
        k = &map->via.map.ptr[i].key;
        val = &map->via.map.ptr[i].val;

        if (k->type != MSGPACK_OBJECT_STR
            || cef_encode_check_value(val, &why) != 0 || overridden(map, i))
        {
            continue;
        }

        name.data = k->via.str.ptr;
        name.len = k->via.str.size;

        rc = cef_profile_get(&p, name, &v);
        CHECK(rc == 1);
        check_same(val, &v);

        CHECK(cef_profile_get_attr(&p,
                                   (uint32_t) cef_dict_name_id(&dict, name),
                                   &v)
              == 1);
        check_same(val, &v);
    }

    pos = 0;
    i = 0;
    while ((rc = cef_profile_next(&p, &pos, &name, &v)) == 1) {
        i++;
    }
    CHECK(rc == 0 && i == n);

    free(dict.names_hash);
}


static void
roundtrip(const uint8_t *data, size_t size)
{
    uint32_t               i;
    cef_input_t           *in;
    cef_encode_t          enc;
    const msgpack_object  *rec, *k, *v;
    char                   err[512];

    in = cef_input_open_mem(data, size);
    CHECK(in != NULL);
    CHECK(cef_encode_init(&enc) == 0);

    while (cef_input_next(in, &rec, err, sizeof(err)) == 1) {
        n_records++;
        CHECK(rec->type == MSGPACK_OBJECT_MAP);

        for (i = 0; i < rec->via.map.size; i++) {
            k = &rec->via.map.ptr[i].key;
            v = &rec->via.map.ptr[i].val;

            if (k->type == MSGPACK_OBJECT_STR
                && (same_bytes(k->via.str.ptr, k->via.str.size, "attrs", 5)
                    || same_bytes(k->via.str.ptr, k->via.str.size, "set", 3))
                && v->type == MSGPACK_OBJECT_MAP)
            {
                roundtrip_values(&enc, rec, v);
            }
        }
    }

    cef_encode_free(&enc);
    cef_input_close(in);
}


/* --- whole loads and applies ------------------------------------------ */


static void
verify(cef_writer_verify_result_t *v, uint64_t *last_seq)
{
    char                err[512];
    cef_store_t        *s;
    cef_store_info_t    info;

    memset(v, 0, sizeof(*v));
    CHECK(cef_writer_verify(dir, ident, NULL, NULL, v, err, sizeof(err))
          == CEF_WRITER_OK);
    CHECK(v->problems == 0);

    if (last_seq == NULL) {
        return;
    }

    CHECK(cef_store_open(&s, dir, err, sizeof(err)) == CEF_STORE_OK);
    CHECK(cef_store_begin(s) == CEF_STORE_OK);
    CHECK(cef_store_info(s, &info) == CEF_STORE_OK);
    CHECK(info.profiles == v->profiles);
    *last_seq = info.last_seq;
    cef_store_end(s);
    cef_store_close(s);
}


static void
check_base(void)
{
    uint64_t             seq;
    cef_writer_verify_result_t  v;

    verify(&v, &seq);
    CHECK(v.profiles == base_v.profiles && v.keys == base_v.keys
          && v.index_entries == base_v.index_entries);
    CHECK(seq == base_seq);
}


static void
whole(int apply, const uint8_t *data, size_t size)
{
    int                   rc;
    uint64_t              seq;
    cef_input_t          *in;
    cef_writer_conf_t     conf;
    cef_writer_result_t   res;
    cef_writer_verify_result_t   v;
    char                  err[1024];

    conf_init(&conf);
    in = cef_input_open_mem(data, size);
    CHECK(in != NULL);

    memset(&res, 0, sizeof(res));
    err[0] = '\0';
    rc = apply ? cef_writer_apply(&conf, in, &res, err, sizeof(err))
               : cef_writer_load(&conf, in, &res, err, sizeof(err));
    cef_input_close(in);

    if (apply) {
        n_applies++;
    } else {
        n_loads++;
    }

    if (rc == CEF_WRITER_OK) {
        verify(&v, apply ? &seq : NULL);
        CHECK(v.profiles == res.profiles);
        CHECK(v.keys == res.keys);
        if (apply) {
            CHECK(seq >= base_seq);
        }

        /* back to the two known profiles for the next input */
        load_base();
        check_base();
        return;
    }

    if (rc != CEF_WRITER_EINPUT) {
        fprintf(stderr, "store error: %s\n", err);
    }
    CHECK(rc == CEF_WRITER_EINPUT);
    CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');

    check_base();
}


/* --- set-up ----------------------------------------------------------- */


static void
report(void)
{
    fprintf(stderr, "fuzz_store: %llu inputs, %llu records, %llu profiles "
            "round-tripped, %llu whole loads, %llu whole applies "
            "(CEF_FUZZ_STORE_EVERY=%u)\n",
            (unsigned long long) n_inputs, (unsigned long long) n_records,
            (unsigned long long) n_profiles, (unsigned long long) n_loads,
            (unsigned long long) n_applies, every);

    fuzz_store_remove();
}


static void
init(void)
{
    fuzz_store_setup("store", report);
    verify(&base_v, &base_seq);
    CHECK(base_v.profiles == 2);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (dir[0] == '\0') {
        init();
    }

    if (size < 1 || size > 128 * 1024) {
        return 0;
    }

    n_inputs++;

    roundtrip(data + 1, size - 1);

    if (fuzz_store_chosen(data, size)) {
        whole(data[0] & 1, data + 1, size - 1);
    }

    return 0;
}
