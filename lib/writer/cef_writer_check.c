/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * The profile store's writer: record validation (the fields of snapshot
 * and delta records, their ids, keys and attributes, headers and stream
 * offsets) and hashing keys into index buckets (docs/formats.md).
 */

#include "cef_writer_int.h"


int
cef_w_key_is(const msgpack_object *k, const char *name)
{
    size_t  n = strlen(name);

    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n
           && memcmp(k->via.str.ptr, name, n) == 0;
}


const msgpack_object *
cef_w_field(const msgpack_object *rec, const char *name)
{
    uint32_t  i;

    for (i = 0; i < rec->via.map.size; i++) {
        if (cef_w_key_is(&rec->via.map.ptr[i].key, name)) {
            return &rec->via.map.ptr[i].val;
        }
    }

    return NULL;
}


/* Every field must be one of the names in the NULL-terminated list. */

int
cef_w_check_fields(cef_writer_t *w, const msgpack_object *rec,
    const char *const *allowed)
{
    uint32_t                 i, j;
    const char *const       *a;
    const msgpack_object    *k;

    for (i = 0; i < rec->via.map.size; i++) {
        k = &rec->via.map.ptr[i].key;

        if (k->type != MSGPACK_OBJECT_STR) {
            return cef_w_bad(w, "field names must be strings");
        }

        for (a = allowed; *a; a++) {
            if (cef_w_key_is(k, *a)) {
                break;
            }
        }

        if (*a == NULL) {
            return cef_w_bad(w, "unknown field \"%.*s\"",
                             (int) k->via.str.size, k->via.str.ptr);
        }

        for (j = 0; j < i; j++) {
            if (cef_w_key_is(&rec->via.map.ptr[j].key, *a)) {
                return cef_w_bad(w, "field \"%s\" appears twice", *a);
            }
        }
    }

    return CEF_WRITER_OK;
}


int
cef_w_check_id(cef_writer_t *w, const msgpack_object *rec, const char *name,
    const msgpack_object **out)
{
    const msgpack_object  *v;

    v = cef_w_field(rec, name);

    if (v == NULL) {
        return cef_w_bad(w, "field \"%s\" is missing", name);
    }

    if (v->type != MSGPACK_OBJECT_STR) {
        return cef_w_bad(w, "field \"%s\" must be a string", name);
    }

    if (v->via.str.size == 0 || v->via.str.size > CEF_PROFILE_ID_MAX) {
        return cef_w_bad(w, "field \"%s\" must be 1 to %d bytes long", name,
                         CEF_PROFILE_ID_MAX);
    }

    *out = v;
    return CEF_WRITER_OK;
}


int
cef_w_check_keys(cef_writer_t *w, const msgpack_object *rec,
    const char *name, int required, const msgpack_object **out)
{
    uint32_t               i;
    const msgpack_object  *v, *k;

    v = cef_w_field(rec, name);
    *out = v;

    if (v == NULL) {
        return required ? cef_w_bad(w, "field \"%s\" is missing", name)
                        : CEF_WRITER_OK;
    }

    if (v->type != MSGPACK_OBJECT_ARRAY) {
        return cef_w_bad(w, "field \"%s\" must be an array of [TYPE, VALUE]",
                         name);
    }

    if (v->via.array.size > CEF_WRITER_KEYS_MAX) {
        return cef_w_bad(w, "field \"%s\" has %u keys, more than %d", name,
                         v->via.array.size, CEF_WRITER_KEYS_MAX);
    }

    for (i = 0; i < v->via.array.size; i++) {
        k = &v->via.array.ptr[i];

        if (k->type != MSGPACK_OBJECT_ARRAY || k->via.array.size != 2
            || k->via.array.ptr[0].type != MSGPACK_OBJECT_STR
            || k->via.array.ptr[1].type != MSGPACK_OBJECT_STR)
        {
            return cef_w_bad(w, "%s[%u] must be an array of two strings "
                             "[TYPE, VALUE]", name, i);
        }

        if (k->via.array.ptr[0].via.str.size == 0
            || memchr(k->via.array.ptr[0].via.str.ptr, ':',
                      k->via.array.ptr[0].via.str.size))
        {
            return cef_w_bad(w, "%s[%u]: the key type must be non-empty and "
                             "without ':'", name, i);
        }

        if (k->via.array.ptr[1].via.str.size == 0) {
            return cef_w_bad(w, "%s[%u]: the key value is empty", name, i);
        }
    }

    return CEF_WRITER_OK;
}


int
cef_w_check_attrs(cef_writer_t *w, const msgpack_object *rec,
    const char *name, int required, const msgpack_object **out)
{
    uint32_t               i, j;
    const char            *why;
    const msgpack_object  *v, *k;

    v = cef_w_field(rec, name);
    *out = v;

    if (v == NULL) {
        return required ? cef_w_bad(w, "field \"%s\" is missing", name)
                        : CEF_WRITER_OK;
    }

    if (v->type != MSGPACK_OBJECT_MAP) {
        return cef_w_bad(w, "field \"%s\" must be a map", name);
    }

    for (i = 0; i < v->via.map.size; i++) {
        k = &v->via.map.ptr[i].key;

        if (k->type != MSGPACK_OBJECT_STR || k->via.str.size == 0
            || k->via.str.size > 255)
        {
            return cef_w_bad(w, "%s: attribute names must be strings of 1 to "
                             "255 bytes", name);
        }

        if (cef_encode_check_value(&v->via.map.ptr[i].val, &why) != 0) {
            return cef_w_bad(w, "%s.%.*s: %s", name, (int) k->via.str.size,
                             k->via.str.ptr, why);
        }

        for (j = 0; j < i; j++) {
            if (v->via.map.ptr[j].key.via.str.size == k->via.str.size
                && memcmp(v->via.map.ptr[j].key.via.str.ptr, k->via.str.ptr,
                          k->via.str.size) == 0)
            {
                return cef_w_bad(w, "%s.%.*s appears twice", name,
                                 (int) k->via.str.size, k->via.str.ptr);
            }
        }
    }

    return CEF_WRITER_OK;
}


int
cef_w_check_names(cef_writer_t *w, const msgpack_object *rec,
    const char *name, const msgpack_object **out)
{
    uint32_t               i;
    const msgpack_object  *v;

    v = cef_w_field(rec, name);
    *out = v;

    if (v == NULL) {
        return CEF_WRITER_OK;
    }

    if (v->type != MSGPACK_OBJECT_ARRAY) {
        return cef_w_bad(w, "field \"%s\" must be an array of strings", name);
    }

    for (i = 0; i < v->via.array.size; i++) {
        if (v->via.array.ptr[i].type != MSGPACK_OBJECT_STR) {
            return cef_w_bad(w, "%s[%u] must be a string", name, i);
        }
    }

    return CEF_WRITER_OK;
}


int
cef_w_int_field(cef_writer_t *w, const msgpack_object *rec, const char *name,
    int64_t *out)
{
    const msgpack_object  *v;

    v = cef_w_field(rec, name);

    if (v == NULL) {
        return cef_w_bad(w, "field \"%s\" is missing", name);
    }

    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT64_MAX)
    {
        *out = (int64_t) v->via.u64;
        return CEF_WRITER_OK;
    }

    if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = v->via.i64;
        return CEF_WRITER_OK;
    }

    return cef_w_bad(w, "field \"%s\" must be an integer", name);
}


/*
 * A snapshot header's "kafka": {"topic": T, "offsets": {"0": N, ...}}: the
 * next offset to read in each partition once the snapshot is loaded.
 */

static int
cef_w_check_kafka(cef_writer_t *w, const msgpack_object *k)
{
    static const char *const  fields[] = { "topic", "offsets", NULL };

    int                    rc;
    char                   num[16], *end;
    uint32_t               i;
    unsigned long          p;
    const msgpack_object  *t, *offs, *pk, *pv;
    cef_store_offsets_t   *o;

    if (k->type != MSGPACK_OBJECT_MAP) {
        return cef_w_bad(w, "field \"kafka\" must be a map {\"topic\": T, "
                         "\"offsets\": {PARTITION: OFFSET, ...}}");
    }

    if ((rc = cef_w_check_fields(w, k, fields)) != 0) {
        return rc;
    }

    t = cef_w_field(k, "topic");
    offs = cef_w_field(k, "offsets");

    if (t == NULL || t->type != MSGPACK_OBJECT_STR || t->via.str.size == 0
        || t->via.str.size > CEF_STORE_TOPIC_MAX)
    {
        return cef_w_bad(w, "kafka.topic must be a string of 1 to %d bytes",
                         CEF_STORE_TOPIC_MAX);
    }

    if (offs == NULL || offs->type != MSGPACK_OBJECT_MAP) {
        return cef_w_bad(w, "kafka.offsets must be a map {PARTITION: "
                         "OFFSET, ...}");
    }

    o = malloc(sizeof(cef_store_offsets_t));
    if (o == NULL) {
        cef_w_err(w, "out of memory");
        return CEF_WRITER_ESTORE;
    }

    free(w->koffs);
    w->koffs = o;
    memset(o, 0, sizeof(cef_store_offsets_t));
    memcpy(o->topic, t->via.str.ptr, t->via.str.size);

    for (i = 0; i < CEF_STORE_PARTITIONS_MAX; i++) {
        o->next[i] = -1;
    }

    for (i = 0; i < offs->via.map.size; i++) {
        pk = &offs->via.map.ptr[i].key;
        pv = &offs->via.map.ptr[i].val;

        /* partitions are JSON object keys: decimal strings */

        if (pk->type == MSGPACK_OBJECT_STR && pk->via.str.size > 0
            && pk->via.str.size < sizeof(num)
            && pk->via.str.ptr[0] >= '0' && pk->via.str.ptr[0] <= '9')
        {
            memcpy(num, pk->via.str.ptr, pk->via.str.size);
            num[pk->via.str.size] = '\0';
            p = strtoul(num, &end, 10);
            if (*end != '\0') {
                p = ULONG_MAX;
            }

        } else if (pk->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            p = pk->via.u64 < ULONG_MAX ? (unsigned long) pk->via.u64
                                        : ULONG_MAX;

        } else {
            p = ULONG_MAX;
        }

        if (p >= CEF_STORE_PARTITIONS_MAX) {
            return cef_w_bad(w, "kafka.offsets: a partition must be a number "
                             "from 0 to %d", CEF_STORE_PARTITIONS_MAX - 1);
        }

        if (pv->type != MSGPACK_OBJECT_POSITIVE_INTEGER
            || pv->via.u64 > INT64_MAX)
        {
            return cef_w_bad(w, "kafka.offsets.%lu must be a non-negative "
                             "integer", p);
        }

        if (o->next[p] != -1) {
            return cef_w_bad(w, "kafka.offsets.%lu appears twice", p);
        }

        o->next[p] = (int64_t) pv->via.u64;
        if (p >= o->partitions) {
            o->partitions = (uint32_t) p + 1;
        }
    }

    return CEF_WRITER_OK;
}


/* Store stream offsets in the open transaction ("meta" key "kafka"). */

int
cef_w_put_offsets(cef_writer_t *w, const cef_store_offsets_t *o)
{
    int              rc;
    size_t           n;
    uint32_t         i, count = 0;
    MDB_val          k, v;
    msgpack_sbuffer  sb;
    msgpack_packer   pk;

    for (i = 0; i < o->partitions; i++) {
        count += o->next[i] >= 0;
    }

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

    n = strlen(o->topic);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str(&pk, 5);
    msgpack_pack_str_body(&pk, "topic", 5);
    msgpack_pack_str(&pk, n);
    msgpack_pack_str_body(&pk, o->topic, n);
    msgpack_pack_str(&pk, 7);
    msgpack_pack_str_body(&pk, "offsets", 7);
    msgpack_pack_map(&pk, count);

    for (i = 0; i < o->partitions; i++) {
        if (o->next[i] >= 0) {
            msgpack_pack_uint32(&pk, i);
            msgpack_pack_uint64(&pk, (uint64_t) o->next[i]);
        }
    }

    if (sb.data == NULL) {
        cef_w_err(w, "out of memory");
        return CEF_WRITER_ESTORE;
    }

    k.mv_data = (void *) CEF_STORE_META_KAFKA;
    k.mv_size = sizeof(CEF_STORE_META_KAFKA) - 1;
    v.mv_data = sb.data;
    v.mv_size = sb.size;

    rc = mdb_put(w->txn, w->meta, &k, &v, 0);
    msgpack_sbuffer_destroy(&sb);

    if (rc != 0) {
        return cef_w_lmdb(w, "writing the stream offsets", rc);
    }

    return CEF_WRITER_OK;
}


int
cef_w_check_header(cef_writer_t *w, const msgpack_object *rec,
    const char *kind)
{
    static const char *const  snap[] = { "cef", "version", "id",
                                         "created_at", "kafka", NULL };
    static const char *const  delta[] = { "cef", "version", NULL };

    int                    rc;
    int64_t                version, created;
    const msgpack_object  *v;

    v = cef_w_field(rec, "cef");

    if (v == NULL || !cef_w_key_is(v, kind)) {
        return cef_w_bad(w, "expected a %s header {\"cef\":\"%s\", ...}", kind,
                         kind);
    }

    rc = cef_w_check_fields(w, rec, kind[0] == 's' ? snap : delta);
    if (rc != 0) {
        return rc;
    }

    rc = cef_w_int_field(w, rec, "version", &version);
    if (rc != 0) {
        return rc;
    }

    if (version != 1) {
        return cef_w_bad(w, "unsupported %s version %lld", kind,
                         (long long) version);
    }

    if (kind[0] != 's') {
        return CEF_WRITER_OK;
    }

    v = cef_w_field(rec, "id");
    if (v == NULL || v->type != MSGPACK_OBJECT_STR) {
        return cef_w_bad(w, "field \"id\" must be a string");
    }

    if (v->via.str.size >= sizeof(w->info.snapshot_id)) {
        return cef_w_bad(w, "snapshot id longer than %zu bytes",
                         sizeof(w->info.snapshot_id) - 1);
    }

    rc = cef_w_int_field(w, rec, "created_at", &created);
    if (rc != 0) {
        return rc;
    }

    memcpy(w->info.snapshot_id, v->via.str.ptr, v->via.str.size);
    w->info.snapshot_id[v->via.str.size] = '\0';
    w->info.created_at = created;

    v = cef_w_field(rec, "kafka");

    return v ? cef_w_check_kafka(w, v) : CEF_WRITER_OK;
}


int
cef_w_hash(cef_writer_t *w, const char *type, size_t tlen, const char *value,
    size_t vlen, uint8_t *out)
{
    if (cef_identity_hash(w->conf->ident, type, tlen, value, vlen, out) != 0)
    {
        cef_w_err(w, "HMAC-SHA256 failed (OpenSSL)");
        return CEF_WRITER_ESTORE;
    }

    return CEF_WRITER_OK;
}


/* A profile's hint for a key: the first 16 bits of its hash. */

uint16_t
cef_w_bucket(const uint8_t *h)
{
    return (uint16_t) ((h[0] << 8) | h[1]);
}


void
cef_w_add_hint(uint16_t *hints, uint32_t *n, uint16_t b)
{
    uint32_t  i;

    for (i = 0; i < *n; i++) {
        if (hints[i] == b) {
            return;
        }
    }

    hints[(*n)++] = b;
}


/* The hash of a [TYPE, VALUE] key the record check has passed. */

int
cef_w_hash_pair(cef_writer_t *w, const msgpack_object *pair, uint8_t *h)
{
    const msgpack_object  *t, *v;

    t = &pair->via.array.ptr[0];
    v = &pair->via.array.ptr[1];

    return cef_w_hash(w, t->via.str.ptr, t->via.str.size, v->via.str.ptr,
                      v->via.str.size, h);
}


/*
 * The profile just encoded (w->enc.blob, with nhints hints) must leave room
 * for CEF_PROFILE_HINTS_MAX hints, so that no later keys or merge op can
 * take it past CEF_STORE_GROUP_MAX.  Returns CEF_WRITER_EINPUT with the
 * message.
 */

int
cef_w_check_room(cef_writer_t *w, uint32_t nhints)
{
    size_t  n;

    n = w->enc.blob.size - 2 * (size_t) nhints + 2 * CEF_PROFILE_HINTS_MAX;

    if (n > CEF_STORE_GROUP_MAX) {
        return cef_w_bad(w, "the profile would take %zu bytes encoded, "
                         "more than %d", w->enc.blob.size,
                         CEF_STORE_GROUP_MAX - 2 * CEF_PROFILE_HINTS_MAX);
    }

    return CEF_WRITER_OK;
}


int
cef_w_encode_attrs(cef_writer_t *w, const msgpack_object *attrs)
{
    uint32_t               i;
    const msgpack_object  *k;

    if (attrs == NULL) {
        return CEF_WRITER_OK;
    }

    for (i = 0; i < attrs->via.map.size; i++) {
        k = &attrs->via.map.ptr[i].key;

        if (cef_encode_attr(&w->enc, k->via.str.ptr, k->via.str.size,
                            &attrs->via.map.ptr[i].val) != 0)
        {
            return cef_w_bad(w, "cannot encode attribute \"%.*s\" (out of "
                             "memory, or more than %d attribute names)",
                             (int) k->via.str.size, k->via.str.ptr,
                             CEF_ENCODE_NAMES_MAX);
        }
    }

    return CEF_WRITER_OK;
}
