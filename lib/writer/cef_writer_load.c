/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * The profile store's writer: full loads (cef_writer_load), a snapshot
 * into a new generation whose indexes are built sorted, switched in
 * atomically (docs/store.md).
 */

#include "cef_writer_int.h"


static int
cef_w_load_entry(cef_writer_t *w, const uint8_t *h, uint32_t number,
    int is_id)
{
    size_t          ncap, *n, *cap;
    cef_ientry_t  **a, *e;

    a = is_id ? &w->idents : &w->ents;
    n = is_id ? &w->nidents : &w->nents;
    cap = is_id ? &w->icap : &w->cap;

    if (*n == *cap) {
        ncap = *cap ? *cap * 2 : 65536;
        e = realloc(*a, ncap * sizeof(cef_ientry_t));
        if (e == NULL) {
            cef_w_err(w, "out of memory");
            return CEF_WRITER_ESTORE;
        }
        *a = e;
        *cap = ncap;
    }

    e = &(*a)[(*n)++];
    memcpy(e->h, h, CEF_HASH_LEN);
    e->number = number;

    return CEF_WRITER_OK;
}


int
cef_w_grow(cef_writer_t *w, uint8_t **buf, size_t *cap, size_t need)
{
    uint8_t  *p;

    if (need <= *cap) {
        return 0;
    }

    p = realloc(*buf, need);
    if (p == NULL) {
        cef_w_err(w, "out of memory");
        return -1;
    }

    *buf = p;
    *cap = need;
    return 0;
}


/* Write the group being filled by a load (MDB_APPEND). */

static int
cef_w_load_group_flush(cef_writer_t *w, uint32_t group)
{
    int             rc;
    size_t          i, off;
    MDB_val         k, v;
    const uint8_t  *p[CEF_STORE_GROUP_SLOTS];

    for (i = 0, off = 0; i < CEF_STORE_GROUP_SLOTS; i++) {
        p[i] = w->lg + off;
        off += w->lg_lens[i];
    }

    if (cef_w_grow(w, &w->gbuf, &w->gbuf_cap, CEF_STORE_GROUP_HEAD + off)
        != 0)
    {
        return CEF_WRITER_ESTORE;
    }

    k.mv_data = &group;
    k.mv_size = sizeof(group);
    v.mv_data = w->gbuf;
    v.mv_size = cef_store_group_build(w->gbuf, p, w->lg_lens);

    rc = mdb_put(w->txn, w->prof, &k, &v, MDB_APPEND);
    if (rc != 0) {
        return cef_w_lmdb(w, "writing profiles", rc);
    }

    w->lg_len = 0;
    memset(w->lg_lens, 0, sizeof(w->lg_lens));

    return CEF_WRITER_OK;
}


static int
cef_w_load_group_add(cef_writer_t *w, uint32_t number, const uint8_t *blob,
    size_t len)
{
    if (len > CEF_STORE_GROUP_MAX) {
        return cef_w_bad(w, "the profile takes more than %d bytes encoded",
                         CEF_STORE_GROUP_MAX);
    }

    if (cef_w_grow(w, &w->lg, &w->lg_cap, w->lg_len + len) != 0) {
        return CEF_WRITER_ESTORE;
    }

    memcpy(w->lg + w->lg_len, blob, len);
    w->lg_len += len;
    w->lg_lens[number & (CEF_STORE_GROUP_SLOTS - 1)] = len;

    if ((number & (CEF_STORE_GROUP_SLOTS - 1)) == CEF_STORE_GROUP_SLOTS - 1) {
        return cef_w_load_group_flush(w, cef_store_group_of(number));
    }

    return CEF_WRITER_OK;
}


/*
 * In the reading thread: validate a profile record and hash its id and keys
 * into scratch, so that the writing thread only encodes and writes.
 */

typedef struct {
    int                    profile;   /* 1: a validated profile record */
    const msgpack_object  *id, *keys, *attrs;
    uint8_t                idh[CEF_HASH_LEN];
    uint8_t                keyh[CEF_WRITER_KEYS_MAX][CEF_HASH_LEN];
} cef_w_pre_t;

typedef struct {
    cef_writer_t       w;
    cef_writer_conf_t  conf;
} cef_w_hook_t;


static int
cef_w_load_hook(void *data, const msgpack_object *rec, uint64_t record,
    uint64_t offset, void *scratch, char *err, size_t errlen)
{
    static const char *const  fields[] = { "id", "keys", "attrs", NULL };

    uint32_t               i;
    cef_w_pre_t           *pre = scratch;
    cef_w_hook_t          *hk = data;
    cef_writer_t          *w = &hk->w;
    const msgpack_object  *id, *keys, *attrs, *t, *v;

    pre->profile = 0;

    if (record == 1 || cef_w_field(rec, "end") != NULL
        || cef_w_field(rec, "op") != NULL)
    {
        return 0;       /* header, trailer, published records: the writer's */
    }

    w->err = err;
    w->errlen = errlen;
    w->rec_no = record;
    w->rec_off = offset;

    if (cef_w_check_fields(w, rec, fields) != 0
        || cef_w_check_id(w, rec, "id", &id) != 0
        || cef_w_check_keys(w, rec, "keys", 1, &keys) != 0
        || cef_w_check_attrs(w, rec, "attrs", 1, &attrs) != 0
        || cef_w_hash(w, "", 0, id->via.str.ptr, id->via.str.size,
                      pre->idh) != 0)
    {
        return -1;
    }

    for (i = 0; i < keys->via.array.size; i++) {
        t = &keys->via.array.ptr[i].via.array.ptr[0];
        v = &keys->via.array.ptr[i].via.array.ptr[1];

        if (cef_w_hash(w, t->via.str.ptr, t->via.str.size, v->via.str.ptr,
                       v->via.str.size, pre->keyh[i]) != 0)
        {
            return -1;
        }
    }

    pre->id = id;
    pre->keys = keys;
    pre->attrs = attrs;
    pre->profile = 1;

    return 0;
}


static int
cef_w_load_profile(cef_writer_t *w, const msgpack_object *rec,
    const cef_w_pre_t *pre)
{
    static const char *const  fields[] = { "id", "keys", "attrs", NULL };

    int                    rc;
    uint8_t                h[CEF_HASH_LEN];
    uint16_t               hints[CEF_WRITER_KEYS_MAX];
    uint32_t               i, nhints, number;
    uint64_t              *o;
    const msgpack_object  *id, *keys, *attrs, *t, *val;

    /* the reading thread may have validated and hashed it already */

    if (pre) {
        id = pre->id;
        keys = pre->keys;
        attrs = pre->attrs;

    } else if ((rc = cef_w_check_fields(w, rec, fields)) != 0
               || (rc = cef_w_check_id(w, rec, "id", &id)) != 0
               || (rc = cef_w_check_keys(w, rec, "keys", 1, &keys)) != 0
               || (rc = cef_w_check_attrs(w, rec, "attrs", 1, &attrs)) != 0)
    {
        return rc;
    }

    if (w->info.next_number == UINT32_MAX) {
        return cef_w_bad(w, "too many profiles");
    }

    number = w->info.next_number++;

    if (number >= w->noffsets) {
        w->noffsets = w->noffsets ? w->noffsets * 2 : 65536;
        o = realloc(w->offsets, w->noffsets * sizeof(uint64_t));
        if (o == NULL) {
            cef_w_err(w, "out of memory");
            return CEF_WRITER_ESTORE;
        }
        w->offsets = o;
    }

    w->offsets[number] = w->rec_off;

    if (pre) {
        memcpy(h, pre->idh, CEF_HASH_LEN);
    } else if ((rc = cef_w_hash(w, "", 0, id->via.str.ptr, id->via.str.size,
                                h)) != 0)
    {
        return rc;
    }

    if ((rc = cef_w_load_entry(w, h, number, 1)) != 0) {
        return rc;
    }

    nhints = 0;

    for (i = 0; i < keys->via.array.size; i++) {
        t = &keys->via.array.ptr[i].via.array.ptr[0];
        val = &keys->via.array.ptr[i].via.array.ptr[1];

        if (pre) {
            memcpy(h, pre->keyh[i], CEF_HASH_LEN);
        } else if ((rc = cef_w_hash(w, t->via.str.ptr, t->via.str.size,
                                    val->via.str.ptr, val->via.str.size, h))
                   != 0)
        {
            return rc;
        }

        if ((rc = cef_w_load_entry(w, h, number, 0)) != 0) {
            return rc;
        }

        cef_w_add_hint(hints, &nhints, cef_w_bucket(h));
    }

    cef_encode_begin(&w->enc);

    rc = cef_w_encode_attrs(w, attrs);
    if (rc != 0) {
        return rc;
    }

    if (cef_encode_profile(&w->enc, hints, nhints, id->via.str.ptr,
                           id->via.str.size) != 0)
    {
        cef_w_err(w, "out of memory");
        return CEF_WRITER_ESTORE;
    }

    if ((rc = cef_w_check_room(w, nhints)) != 0) {
        return rc;
    }

    rc = cef_w_load_group_add(w, number, (uint8_t *) w->enc.blob.data,
                              w->enc.blob.size);
    if (rc != 0) {
        return rc;
    }

    w->info.profiles++;

    if (w->info.profiles % CEF_LOAD_TXN_PROFILES == 0) {
        if ((rc = cef_w_txn_commit(w)) != 0
            || (rc = cef_w_txn_begin(w, 0)) != 0)
        {
            return rc;
        }
    }

    return CEF_WRITER_OK;
}


static int
cef_w_ientry_cmp(const void *a, const void *b)
{
    int                  c;
    const cef_ientry_t  *x = a, *y = b;

    c = memcmp(x->h, y->h, CEF_HASH_LEN);
    if (c) {
        return c;
    }

    return x->number < y->number ? -1 : x->number > y->number;
}


static uint32_t
cef_w_prefix(const uint8_t *h, unsigned bits)
{
    uint32_t  v;

    v = ((uint32_t) h[0] << 24) | ((uint32_t) h[1] << 16)
        | ((uint32_t) h[2] << 8) | h[3];

    return v >> (32 - bits);
}


/*
 * Counting sort on the first bits of the hash (about one entry per group
 * for uniformly random hashes), then an insertion sort inside each group.
 */

static int
cef_w_sort_entries(cef_writer_t *w, cef_ientry_t **ents, size_t nents)
{
    size_t         i, j, b, nb, *start;
    unsigned       bits;
    cef_ientry_t  *out, *in = *ents, t;

    for (bits = 8; bits < 22 && ((size_t) 1 << bits) < nents; bits++) {
        /* void */
    }

    nb = (size_t) 1 << bits;
    start = calloc(nb + 1, sizeof(size_t));
    out = malloc((nents ? nents : 1) * sizeof(cef_ientry_t));

    if (start == NULL || out == NULL) {
        free(start);
        free(out);
        cef_w_err(w, "out of memory");
        return CEF_WRITER_ESTORE;
    }

    for (i = 0; i < nents; i++) {
        start[cef_w_prefix(in[i].h, bits) + 1]++;
    }

    for (b = 1; b <= nb; b++) {
        start[b] += start[b - 1];
    }

    for (i = 0; i < nents; i++) {
        out[start[cef_w_prefix(in[i].h, bits)]++] = in[i];
    }

    /* start[b] is now the end of group b */

    for (b = 0; b < nb; b++) {
        for (i = (b ? start[b - 1] : 0) + 1; i < start[b]; i++) {
            t = out[i];
            for (j = i; j > (b ? start[b - 1] : 0)
                        && cef_w_ientry_cmp(&out[j - 1], &t) > 0; j--)
            {
                out[j] = out[j - 1];
            }
            out[j] = t;
        }
    }

    free(start);
    free(in);
    *ents = out;

    return CEF_WRITER_OK;
}


/* Sorted entries in, one LMDB record per bucket out (MDB_APPEND). */

static int
cef_w_write_buckets(cef_writer_t *w, MDB_dbi dbi,
    const cef_store_bucket_cfg_t *c, const cef_ientry_t *ents, size_t nents)
{
    int        rc;
    size_t     i, j, il, len, written = 0;
    uint8_t    key[CEF_STORE_BUCKET_KEY_LEN], *p;
    uint32_t   b;
    MDB_val    k, v;

    il = cef_store_bucket_item_len(c);

    for (i = 0; i < nents; i = j) {
        b = cef_store_bucket_of(c, ents[i].h);

        for (j = i; j < nents && cef_store_bucket_of(c, ents[j].h) == b; j++) {
            /* void */
        }

        len = (j - i) * il;

        if (len > w->bval_cap) {
            p = realloc(w->bval, len);
            if (p == NULL) {
                cef_w_err(w, "out of memory");
                return CEF_WRITER_ESTORE;
            }
            w->bval = p;
            w->bval_cap = len;
        }

        for (p = w->bval; i < j; i++, p += il) {
            memcpy(p, ents[i].h + 2, c->rest);
            memcpy(p + c->rest, &ents[i].number, sizeof(uint32_t));
        }

        cef_store_bucket_key(b, key);
        k.mv_data = key;
        k.mv_size = CEF_STORE_BUCKET_KEY_LEN;
        v.mv_data = w->bval;
        v.mv_size = len;

        rc = mdb_put(w->txn, dbi, &k, &v, MDB_APPEND);
        if (rc != 0) {
            return cef_w_lmdb(w, "writing an index", rc);
        }

        written += j - i;
        if (written >= CEF_LOAD_TXN_ENTRIES) {
            written = 0;
            if ((rc = cef_w_txn_commit(w)) != 0
                || (rc = cef_w_txn_begin(w, 0)) != 0)
            {
                return rc;
            }
        }
    }

    return CEF_WRITER_OK;
}


/* Remove duplicates inside one profile; report them across profiles. */

static int
cef_w_dedupe(cef_writer_t *w, cef_ientry_t *ents, size_t *nents,
    const char *what)
{
    size_t         i, m;
    cef_ientry_t  *first;

    for (i = 0, m = 0; i < *nents; i++) {
        if (m > 0 && memcmp(ents[i].h, ents[m - 1].h, CEF_HASH_LEN) == 0) {
            if (ents[i].number == ents[m - 1].number) {
                continue;
            }

            first = &ents[m - 1];
            while (first > ents
                   && memcmp(first[-1].h, ents[i].h, CEF_HASH_LEN) == 0)
            {
                first--;
            }

            cef_w_err(w, "record %llu (byte %llu): %s also belongs to the "
                      "profile of record %llu (byte %llu)",
                      (unsigned long long) ents[i].number + 2,
                      (unsigned long long) w->offsets[ents[i].number], what,
                      (unsigned long long) first->number + 2,
                      (unsigned long long) w->offsets[first->number]);
            return CEF_WRITER_EINPUT;
        }

        ents[m++] = ents[i];
    }

    *nents = m;
    return CEF_WRITER_OK;
}


static int
cef_w_load_index(cef_writer_t *w)
{
    int  rc;

    if ((rc = cef_w_sort_entries(w, &w->ents, w->nents)) != 0
        || (rc = cef_w_sort_entries(w, &w->idents, w->nidents)) != 0
        || (rc = cef_w_dedupe(w, w->ents, &w->nents, "a key")) != 0
        || (rc = cef_w_dedupe(w, w->idents, &w->nidents, "the profile id"))
           != 0)
    {
        return rc;
    }

    w->info.keys = w->nents;
    w->info.key_bits = cef_store_bucket_bits_for(w->nents, 32);
    w->info.id_bits = cef_store_bucket_bits_for(w->nidents, 48);
    w->kcfg.bits = w->info.key_bits;
    w->kcfg.rest = CEF_STORE_BUCKET_REST_KEYS;
    w->icfg.bits = w->info.id_bits;
    w->icfg.rest = CEF_STORE_BUCKET_REST_IDS;

    if ((rc = cef_w_write_buckets(w, w->index, &w->kcfg, w->ents, w->nents))
        != 0
        || (rc = cef_w_write_buckets(w, w->ids, &w->icfg, w->idents,
                                     w->nidents)) != 0)
    {
        return rc;
    }

    return CEF_WRITER_OK;
}


/* CEF_STORE_TIMING=1 in the environment: phase times on stderr. */

static void
cef_w_phase(const char *what)
{
    static struct timespec  t0;
    struct timespec         now;

    if (getenv("CEF_STORE_TIMING") == NULL) {
        return;
    }

    clock_gettime(CLOCK_MONOTONIC, &now);

    if (what) {
        fprintf(stderr, "cef-store: %-8s %.3fs\n", what,
                (now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) / 1e9);
    }

    t0 = now;
}


void
cef_w_progress(cef_writer_t *w, uint64_t records, int done)
{
    if (w->conf->progress && (done || records % 4096 == 0)) {
        w->conf->progress(w->conf->data, w->in, records, done);
    }
}


/*
 * The next record of the input, counted in *records and noted in w for
 * error messages: 1, 0 at the end of the input, -1 if the input failed
 * (w->err says why).
 */

int
cef_w_next_record(cef_writer_t *w, const msgpack_object **rec,
    uint64_t *records)
{
    int  rc;

    rc = cef_input_next(w->in, rec, w->err, w->errlen);

    if (rc <= 0) {
        return rc < 0 ? -1 : 0;
    }

    (*records)++;
    w->rec_no = cef_input_record(w->in);
    w->rec_off = cef_input_offset(w->in);

    return 1;
}


/*
 * A published record in a snapshot ({"op":"weights"|"rules",...}, without
 * "seq"): stored with the version rules, on top of what the previous
 * generation had (carried over before the stream is read).
 */

static int
cef_w_load_published(cef_writer_t *w, const msgpack_object *rec,
    const msgpack_object *op, cef_writer_result_t *res)
{
    int        rc;
    cef_pub_t  pub;

    if (op->type != MSGPACK_OBJECT_STR
        || !(cef_w_key_is(op, "weights") || cef_w_key_is(op, "rules")))
    {
        return cef_w_bad(w, "a snapshot holds profiles, \"weights\" and "
                         "\"rules\" records; not op \"%.*s\"",
                         op->type == MSGPACK_OBJECT_STR
                         ? (int) op->via.str.size : 1,
                         op->type == MSGPACK_OBJECT_STR
                         ? op->via.str.ptr : "?");
    }

    if (cef_w_field(rec, "seq") != NULL) {
        return cef_w_bad(w, "unknown field \"seq\" (a snapshot's records "
                         "have none)");
    }

    if ((rc = cef_w_publish_check(w, rec, op, &pub)) != 0) {
        return rc;
    }

    rc = cef_w_publish_apply(w, &pub, res);

    return rc == CEF_WRITER_EINPUT ? rc : rc ? CEF_WRITER_ESTORE : 0;
}


static int
cef_w_load_stream(cef_writer_t *w, cef_writer_result_t *res)
{
    int                    rc, trailer = 0;
    int64_t                count;
    uint64_t               records = 0;
    const msgpack_object  *rec, *end, *op;
    const cef_w_pre_t     *pre;
    static const char *const  tfields[] = { "end", "count", NULL };

    for ( ;; ) {
        rc = cef_w_next_record(w, &rec, &records);

        if (rc < 0) {
            return CEF_WRITER_EINPUT;
        }

        if (rc == 0) {
            break;
        }

        cef_w_progress(w, records, 0);

        if (records == 1) {
            rc = cef_w_check_header(w, rec, "snapshot");
            if (rc != 0) {
                return rc;
            }
            continue;
        }

        if (trailer) {
            return cef_w_bad(w, "data after the trailer");
        }

        pre = cef_input_scratch(w->in);

        if (pre && pre->profile) {
            rc = cef_w_load_profile(w, rec, pre);
            if (rc != 0) {
                return rc;
            }
            continue;
        }

        op = cef_w_field(rec, "op");

        if (op != NULL) {
            rc = cef_w_load_published(w, rec, op, res);
            if (rc != 0) {
                return rc;
            }
            continue;
        }

        end = cef_w_field(rec, "end");

        if (end != NULL) {
            if ((rc = cef_w_check_fields(w, rec, tfields)) != 0) {
                return rc;
            }

            if (end->type != MSGPACK_OBJECT_BOOLEAN || !end->via.boolean) {
                return cef_w_bad(w, "field \"end\" must be true");
            }

            if ((rc = cef_w_int_field(w, rec, "count", &count)) != 0) {
                return rc;
            }

            if (count < 0 || (uint64_t) count != w->info.profiles) {
                return cef_w_bad(w, "count mismatch: the trailer says %lld "
                                 "profiles, the stream has %llu",
                                 (long long) count,
                                 (unsigned long long) w->info.profiles);
            }

            trailer = 1;
            continue;
        }

        rc = cef_w_load_profile(w, rec, NULL);
        if (rc != 0) {
            return rc;
        }
    }

    res->records = records;
    cef_w_progress(w, records, 1);

    if (records == 0) {
        cef_w_err(w, "empty input: expected a snapshot header");
        return CEF_WRITER_EINPUT;
    }

    if (w->lg_len > 0) {
        rc = cef_w_load_group_flush(w,
                 cef_store_group_of(w->info.next_number - 1));
        if (rc != 0) {
            return rc;
        }
    }

    if (!trailer) {
        cef_w_err(w, "truncated snapshot: no trailer {\"end\":true,...} after "
                  "record %llu (byte %llu)",
                  (unsigned long long) records,
                  (unsigned long long) w->rec_off);
        return CEF_WRITER_EINPUT;
    }

    return CEF_WRITER_OK;
}


static int
cef_w_switch(cef_writer_t *w, uint64_t gen, const char *oldpath)
{
    int   e;
    char  name[64], path[PATH_MAX], link[PATH_MAX], tmplink[PATH_MAX];

    snprintf(name, sizeof(name), "gen-%llu", (unsigned long long) gen);

    if (cef_w_path(w, path, name) != 0
        || cef_w_path(w, link, CEF_STORE_CURRENT) != 0
        || cef_w_path(w, tmplink, CEF_STORE_CURRENT ".tmp") != 0)
    {
        return CEF_WRITER_ESTORE;
    }

    if (cef_w_fsync_dir(w->tmp) != 0 || rename(w->tmp, path) != 0) {
        e = errno;
        cef_w_err(w, "cannot move \"%s\" to \"%s\": %s%s", w->tmp, path,
                  strerror(e), cef_w_write_hint(e));
        return CEF_WRITER_ESTORE;
    }

    w->tmp[0] = '\0';
    unlink(tmplink);

    if (symlink(name, tmplink) != 0
        || cef_w_fsync_dir(w->conf->dir) != 0
        || rename(tmplink, link) != 0)
    {
        e = errno;
        cef_w_err(w, "cannot switch \"%s\" to \"%s\": %s%s", link, name,
                  strerror(e), cef_w_write_hint(e));
        unlink(tmplink);
        cef_w_rmtree(path);
        return CEF_WRITER_ESTORE;
    }

    /*
     * Switched: readers may be on the new generation already, so it
     * stays; so does the old one, which a crash could bring back.
     */

    if (cef_w_fsync_dir(w->conf->dir) != 0) {
        cef_w_err(w, "switched \"%s\" to \"%s\", but cannot sync \"%s\": "
                  "%s", link, name, w->conf->dir, strerror(errno));
        return CEF_WRITER_ESTORE;
    }

    /* readers still using the old generation keep their open files */

    if (oldpath[0]) {
        cef_w_rmtree(oldpath);
    }

    return CEF_WRITER_OK;
}


int
cef_writer_load(const cef_writer_conf_t *conf, cef_input_t *in,
    cef_writer_result_t *res, char *err, size_t errlen)
{
    int           rc;
    char          old[PATH_MAX], name[64];
    uint64_t      gen;
    struct stat   st;
    cef_w_hook_t  hook;
    cef_writer_t  w;

    cef_w_init(&w, conf, in, err, errlen);
    memset(res, 0, sizeof(cef_writer_result_t));
    hook.conf.ident = NULL;
    err[0] = '\0';

    rc = cef_w_lock(&w, 1);
    if (rc != 0) {
        goto failed;
    }

    cef_w_cleanup(&w);

    old[0] = '\0';
    gen = 0;
    if (cef_store_current(conf->dir, old, sizeof(old), &gen) != 0) {
        old[0] = '\0';
        gen = 0;
    }

    gen++;
    snprintf(name, sizeof(name), "tmp-%llu-%ld", (unsigned long long) gen,
             (long) getpid());

    if (cef_w_path(&w, w.tmp, name) != 0) {
        rc = CEF_WRITER_ESTORE;
        goto failed;
    }

    if (mkdir(w.tmp, 0755) != 0) {
        cef_w_err(&w, "cannot create \"%s\": %s%s", w.tmp, strerror(errno),
                  cef_w_write_hint(errno));
        w.tmp[0] = '\0';
        rc = CEF_WRITER_ESTORE;
        goto failed;
    }

    if (cef_encode_init(&w.enc) != 0) {
        cef_w_err(&w, "out of memory");
        rc = CEF_WRITER_ESTORE;
        goto failed;
    }

    w.enc_init = 1;

    /*
     * The lock file, created here, fixes the reader table's size for the
     * generation's life: room for many nginx workers and tools.
     */

    rc = cef_w_reserve_lock(&w, w.tmp, CEF_W_LOCK_SIZE, 0664);
    if (rc != 0) {
        goto failed;
    }

    if ((rc = mdb_env_create(&w.env)) != 0
        || (rc = mdb_env_set_maxdbs(w.env, 8)) != 0
        || (rc = mdb_env_set_maxreaders(w.env, CEF_STORE_MAX_READERS)) != 0
        || (rc = mdb_env_set_mapsize(w.env, conf->map_size
                                     ? conf->map_size
                                     : CEF_WRITER_MAP_SIZE_DEFAULT)) != 0
        || (rc = mdb_env_open(w.env, w.tmp, MDB_NOSYNC, 0664)) != 0)
    {
        rc = cef_w_lmdb(&w, rc == ENOMEM ? "creating the new generation "
                        "(a --map-size larger than the address space?)"
                        : "creating the new generation", rc);
        goto failed;
    }

    /* in case this LMDB's reader table is larger than CEF_W_LOCK_SIZE */

    rc = cef_w_reserve_lock(&w, w.tmp, 0, 0664);
    if (rc != 0) {
        goto failed;
    }

    rc = cef_w_share(&w, w.tmp);
    if (rc != CEF_WRITER_OK) {
        goto failed;
    }

    rc = cef_w_txn_begin(&w, MDB_CREATE);
    if (rc != 0) {
        goto failed;
    }

    w.info.format = CEF_STORE_FORMAT;
    w.info.next_number = 0;

    /* weights and rule sets outlive profile snapshots: keep them */

    rc = cef_w_publish_carry(&w, old, &res->carried);
    if (rc != 0) {
        goto failed;
    }

    /*
     * Parse, validate and hash ahead in a second thread (with its own
     * keyed context); unthreaded if that cannot be set up.
     */

    hook.conf = *conf;
    hook.conf.ident = cef_identity_dup(conf->ident);
    cef_w_init(&hook.w, &hook.conf, NULL, NULL, 0);

    if (hook.conf.ident == NULL
        || cef_input_start_thread(in, cef_w_load_hook, &hook,
                                  sizeof(cef_w_pre_t))
           != 0)
    {
        (void) cef_input_start_thread(in, NULL, NULL, 0);
    }

    if (cef_identity_fingerprint(conf->ident, w.info.secret_check) != 0) {
        cef_w_err(&w, "HMAC-SHA256 failed (OpenSSL)");
        rc = CEF_WRITER_ESTORE;
        goto failed;
    }

    cef_w_phase(NULL);

    rc = cef_w_load_stream(&w, res);
    if (rc != 0) {
        goto failed;
    }

    cef_w_phase("stream");

    rc = cef_w_load_index(&w);
    if (rc != 0) {
        goto failed;
    }

    cef_w_phase("index");

    w.info.loaded_at = time(NULL);
    w.info.updated_at = w.info.loaded_at;

    if (w.koffs && (rc = cef_w_put_offsets(&w, w.koffs)) != 0) {
        goto failed;
    }

    if ((rc = cef_w_put_meta(&w)) != 0 || (rc = cef_w_txn_commit(&w)) != 0) {
        goto failed;
    }

    cef_w_phase("commit");

    rc = mdb_env_sync(w.env, 1);
    if (rc != 0) {
        rc = cef_w_lmdb(&w, "syncing the new generation", rc);
        goto failed;
    }

    cef_w_phase("sync");

    mdb_env_close(w.env);
    w.env = NULL;

    rc = cef_w_switch(&w, gen, old);
    if (rc != 0) {
        goto failed;
    }

    cef_w_phase("switch");

    res->profiles = w.info.profiles;
    res->keys = w.info.keys;
    res->generation = gen;

    snprintf(name, sizeof(name), "gen-%llu/data.mdb",
             (unsigned long long) gen);
    if (cef_w_path(&w, old, name) == 0 && stat(old, &st) == 0) {
        res->data_bytes = (uint64_t) st.st_size;
    }

    cef_input_stop_thread(in);
    cef_identity_free(hook.conf.ident);
    cef_w_close(&w);
    return CEF_WRITER_OK;

failed:

    /* the reading thread uses hook: stop it before leaving */
    cef_input_stop_thread(in);
    cef_identity_free(hook.conf.ident);

    if (w.txn) {
        mdb_txn_abort(w.txn);
        w.txn = NULL;
    }

    if (w.env) {
        mdb_env_close(w.env);
        w.env = NULL;
    }

    if (w.tmp[0]) {
        cef_w_rmtree(w.tmp);
    }

    cef_w_close(&w);
    return rc;
}
