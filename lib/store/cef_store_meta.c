/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * The profile store's "meta" database, decoded: the metadata record
 * (cef_store_meta_decode) and the stream offsets
 * (cef_store_meta_offsets_decode), which the reader reports and the
 * writer reads back before it changes them (docs/store.md).
 */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <msgpack.h>

#include "cef_store.h"


static int
cef_store_meta_int(const msgpack_object *o, int64_t *out)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > INT64_MAX) {
            return -1;
        }
        *out = (int64_t) o->via.u64;
        return 0;
    }

    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return 0;
    }

    return -1;
}


/*
 * The integer fields of the metadata record: a key the table does not
 * name must still hold an integer (a newer writer's field), and is skipped.
 */
typedef struct {
    const char  *name;
    size_t       off;
    size_t       size;      /* 4: uint32_t, 8: int64_t or uint64_t */
} cef_store_meta_field_t;

#define CEF_META_FIELD(f)                                                     \
    { #f, offsetof(cef_store_info_t, f), sizeof(((cef_store_info_t *) 0)->f) }

static const cef_store_meta_field_t  cef_store_meta_fields[] = {
    CEF_META_FIELD(format),
    CEF_META_FIELD(created_at),
    CEF_META_FIELD(loaded_at),
    CEF_META_FIELD(updated_at),
    CEF_META_FIELD(last_seq),
    CEF_META_FIELD(profiles),
    CEF_META_FIELD(keys),
    CEF_META_FIELD(next_number),
    CEF_META_FIELD(names),
    CEF_META_FIELD(strs),
    CEF_META_FIELD(key_bits),
    CEF_META_FIELD(id_bits),
    { NULL, 0, 0 }
};


/* Store iv into a field of size bytes, as the casts of C would. */

static void
cef_store_meta_set(void *field, size_t size, int64_t iv)
{
    uint32_t  u32;
    uint64_t  u64;

    if (size == sizeof(uint32_t)) {
        u32 = (uint32_t) iv;
        memcpy(field, &u32, sizeof(u32));

    } else {
        u64 = (uint64_t) iv;       /* int64_t fields: the same bytes */
        memcpy(field, &u64, sizeof(u64));
    }
}


/* A map key (a str: the callers checked) is name. */

static int
cef_store_meta_key(const msgpack_object *k, const char *name)
{
    size_t  n = strlen(name);

    return k->via.str.size == n && memcmp(k->via.str.ptr, name, n) == 0;
}


/*
 * Unpack a meta value: one msgpack map whose keys are all strings (with
 * exact, nothing may follow it).  0 with the map in u->data, or -1.
 */

static int
cef_store_meta_map(msgpack_unpacked *u, const void *data, size_t len,
    int exact)
{
    size_t    off = 0;
    uint32_t  i;

    if (msgpack_unpack_next(u, data, len, &off) != MSGPACK_UNPACK_SUCCESS
        || (exact && off != len) || u->data.type != MSGPACK_OBJECT_MAP)
    {
        return -1;
    }

    for (i = 0; i < u->data.via.map.size; i++) {
        if (u->data.via.map.ptr[i].key.type != MSGPACK_OBJECT_STR) {
            return -1;
        }
    }

    return 0;
}


int
cef_store_meta_decode(const void *data, size_t len, cef_store_info_t *info)
{
    int                            rc = -1;
    size_t                         n;
    int64_t                        iv;
    uint32_t                       i;
    msgpack_unpacked               u;
    const msgpack_object          *k, *v;
    const cef_store_meta_field_t  *f;

    memset(info, 0, sizeof(cef_store_info_t));
    msgpack_unpacked_init(&u);

    /* trailing bytes after the record are tolerated (as they always were) */
    if (cef_store_meta_map(&u, data, len, 0) != 0) {
        goto done;
    }

    for (i = 0; i < u.data.via.map.size; i++) {
        k = &u.data.via.map.ptr[i].key;
        v = &u.data.via.map.ptr[i].val;

        if (cef_store_meta_key(k, "snapshot_id")) {
            if (v->type != MSGPACK_OBJECT_STR) {
                goto done;
            }
            n = v->via.str.size;
            if (n >= sizeof(info->snapshot_id)) {
                n = sizeof(info->snapshot_id) - 1;
            }
            memcpy(info->snapshot_id, v->via.str.ptr, n);
            info->snapshot_id[n] = '\0';
            continue;
        }

        if (cef_store_meta_key(k, "secret_check")) {
            if (v->type != MSGPACK_OBJECT_BIN || v->via.bin.size != 8) {
                goto done;
            }
            memcpy(info->secret_check, v->via.bin.ptr, 8);
            continue;
        }

        if (cef_store_meta_int(v, &iv) != 0) {
            goto done;
        }

        for (f = cef_store_meta_fields; f->name; f++) {
            if (cef_store_meta_key(k, f->name)) {
                cef_store_meta_set((char *) info + f->off, f->size, iv);
                break;
            }
        }
    }

    rc = 0;

done:

    msgpack_unpacked_destroy(&u);
    return rc;
}


int
cef_store_meta_offsets_decode(const void *data, size_t len,
    cef_store_offsets_t *o)
{
    int                    rc = -1, topic = 0, offsets = 0;
    uint32_t               i, j;
    msgpack_unpacked       u;
    const msgpack_object  *k, *v, *pk, *pv;

    memset(o, 0, sizeof(cef_store_offsets_t));

    for (i = 0; i < CEF_STORE_PARTITIONS_MAX; i++) {
        o->next[i] = -1;
    }

    msgpack_unpacked_init(&u);

    if (cef_store_meta_map(&u, data, len, 1) != 0) {
        goto done;
    }

    for (i = 0; i < u.data.via.map.size; i++) {
        k = &u.data.via.map.ptr[i].key;
        v = &u.data.via.map.ptr[i].val;

        if (cef_store_meta_key(k, "topic")) {
            if (v->type != MSGPACK_OBJECT_STR || v->via.str.size == 0
                || v->via.str.size > CEF_STORE_TOPIC_MAX)
            {
                goto done;
            }
            memcpy(o->topic, v->via.str.ptr, v->via.str.size);
            o->topic[v->via.str.size] = '\0';
            topic = 1;

        } else if (cef_store_meta_key(k, "offsets")) {
            if (v->type != MSGPACK_OBJECT_MAP) {
                goto done;
            }

            for (j = 0; j < v->via.map.size; j++) {
                pk = &v->via.map.ptr[j].key;
                pv = &v->via.map.ptr[j].val;

                if (pk->type != MSGPACK_OBJECT_POSITIVE_INTEGER
                    || pk->via.u64 >= CEF_STORE_PARTITIONS_MAX
                    || pv->type != MSGPACK_OBJECT_POSITIVE_INTEGER
                    || pv->via.u64 > INT64_MAX
                    || o->next[pk->via.u64] != -1)
                {
                    goto done;
                }

                o->next[pk->via.u64] = (int64_t) pv->via.u64;

                if (pk->via.u64 >= o->partitions) {
                    o->partitions = (uint32_t) pk->via.u64 + 1;
                }
            }

            offsets = 1;
        }
    }

    rc = topic && offsets ? 0 : -1;

done:

    msgpack_unpacked_destroy(&u);
    return rc;
}
