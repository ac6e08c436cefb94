/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * The profile store's writer: delta records (upsert, patch, delete, keys,
 * merge) applied in batches to the current generation (cef_writer_apply;
 * docs/store.md, docs/formats.md).
 */

#include "cef_writer_int.h"


/*
 * The stored profile a delta names: 0 found, 1 not in the store (counted
 * in res->missing: the delta is skipped), -1 on error.
 */

static int
cef_w_find_named(cef_writer_t *w, const msgpack_object *id, uint8_t *idh,
    uint32_t *number, cef_stored_t *st, cef_writer_result_t *res)
{
    int  rc;

    rc = cef_w_find(w, id, idh, number, st);

    if (rc > 0) {
        res->missing++;
    }

    return rc;
}


/*
 * Take every key of profile number out of the key index (the keys are
 * collected in hs, which the caller frees): 0, or -1 on error.
 */

static int
cef_w_unindex_keys(cef_writer_t *w, const cef_stored_t *st, uint32_t number,
    cef_hashes_t *hs)
{
    uint32_t  i;

    if (cef_w_profile_keys(w, st, number, hs) != 0) {
        return -1;
    }

    for (i = 0; i < hs->n; i++) {
        if (cef_w_index_del(w, hs->h + (size_t) i * CEF_HASH_LEN, number) < 0)
        {
            return -1;
        }
        w->info.keys--;
    }

    return 0;
}


static int
cef_w_op_upsert(cef_writer_t *w, cef_delta_t *d, cef_writer_result_t *res)
{
    int            rc;
    uint8_t        idh[CEF_HASH_LEN], h[CEF_WRITER_KEYS_MAX][CEF_HASH_LEN];
    uint16_t       hints[CEF_WRITER_KEYS_MAX];
    uint32_t       i, nkeys, nhints, number;
    cef_stored_t   st;
    cef_hashes_t   hs = { NULL, 0, 0 };

    (void) res;

    rc = cef_w_find(w, d->id, idh, &number, &st);
    if (rc < 0) {
        return -1;
    }

    /* the new profile first: nothing is written if it is too large */

    nkeys = d->keys->via.array.size;
    nhints = 0;

    for (i = 0; i < nkeys; i++) {
        if (cef_w_hash_pair(w, &d->keys->via.array.ptr[i], h[i]) != 0) {
            return -1;
        }

        cef_w_add_hint(hints, &nhints, cef_w_bucket(h[i]));
    }

    cef_encode_begin(&w->enc);

    if (cef_w_encode_attrs(w, d->attrs) != 0
        || cef_w_encode(w, hints, nhints, d->id->via.str.ptr,
                        d->id->via.str.size) != 0)
    {
        return -1;
    }

    if (cef_w_check_room(w, nhints) != CEF_WRITER_OK) {
        return CEF_WRITER_EINPUT;
    }

    if (rc == 0) {
        if (cef_w_unindex_keys(w, &st, number, &hs) != 0) {
            goto failed;
        }

    } else {
        if (w->info.next_number == UINT32_MAX) {
            cef_w_err(w, "too many profiles");
            return -1;
        }

        number = w->info.next_number++;

        if (cef_w_ids_put(w, idh, number) != 0) {
            goto failed;
        }

        w->info.profiles++;
    }

    for (i = 0; i < nkeys; i++) {
        rc = cef_w_index_put(w, h[i], number);
        if (rc < 0) {
            goto failed;
        }

        if (rc == 0) {
            w->info.keys++;
        }
    }

    if (cef_w_prof_put(w, number, (uint8_t *) w->enc.blob.data,
                       w->enc.blob.size) != 0)
    {
        goto failed;
    }

    free(hs.h);
    return 0;

failed:

    free(hs.h);
    return -1;
}


static int
cef_w_op_patch(cef_writer_t *w, cef_delta_t *d, cef_writer_result_t *res)
{
    int                    rc;
    int64_t                attr;
    uint8_t                idh[CEF_HASH_LEN];
    uint32_t               i, number;
    cef_stored_t           st;
    const msgpack_object  *n;

    rc = cef_w_find_named(w, d->id, idh, &number, &st, res);
    if (rc != 0) {
        return rc < 0 ? -1 : 0;
    }

    if (cef_w_begin_stored(w, &st, number) != 0
        || cef_w_encode_attrs(w, d->set) != 0)
    {
        return -1;
    }

    for (i = 0; d->unset && i < d->unset->via.array.size; i++) {
        n = &d->unset->via.array.ptr[i];
        attr = cef_encode_intern_find(&w->enc.names, n->via.str.ptr,
                                      n->via.str.size);
        if (attr >= 0) {
            cef_encode_unset(&w->enc, (uint32_t) attr);
        }
    }

    if (cef_w_encode(w, st.hints, st.nhints, st.id, st.idlen) != 0) {
        return -1;
    }

    if (cef_w_check_room(w, st.nhints) != CEF_WRITER_OK) {
        return CEF_WRITER_EINPUT;
    }

    return cef_w_prof_put(w, number, (uint8_t *) w->enc.blob.data,
                          w->enc.blob.size);
}


int
cef_w_op_delete(cef_writer_t *w, cef_delta_t *d, cef_writer_result_t *res)
{
    int            rc;
    uint8_t        idh[CEF_HASH_LEN];
    uint32_t       number;
    cef_stored_t   st;
    cef_hashes_t   hs = { NULL, 0, 0 };

    rc = cef_w_find_named(w, d->id, idh, &number, &st, res);
    if (rc != 0) {
        return rc < 0 ? -1 : 0;
    }

    if (cef_w_unindex_keys(w, &st, number, &hs) != 0) {
        goto failed;
    }

    if (cef_w_ids_del(w, idh, number) != 0) {
        goto failed;
    }

    if (cef_w_prof_put(w, number, NULL, 0) != 0) {
        goto failed;
    }

    w->info.profiles--;
    free(hs.h);
    return 0;

failed:

    free(hs.h);
    return -1;
}


static int
cef_w_op_keys(cef_writer_t *w, cef_delta_t *d, cef_writer_result_t *res)
{
    int                    rc;
    uint8_t                idh[CEF_HASH_LEN], h[CEF_HASH_LEN];
    uint16_t               hints[CEF_PROFILE_HINTS_MAX + CEF_WRITER_KEYS_MAX];
    uint32_t               i, nhints, nadd, number;
    cef_stored_t           st;

    rc = cef_w_find_named(w, d->id, idh, &number, &st, res);
    if (rc != 0) {
        return rc < 0 ? -1 : 0;
    }

    nhints = st.nhints;
    memcpy(hints, st.hints, nhints * sizeof(uint16_t));

    nadd = d->add ? d->add->via.array.size : 0;

    if (nhints + nadd > CEF_PROFILE_HINTS_MAX) {
        rc = cef_w_keys_fit(w, &st, number, d->remove, d->add, NULL);
        if (rc != CEF_WRITER_OK) {
            return rc;
        }
    }

    for (i = 0; d->remove && i < d->remove->via.array.size; i++) {
        if (cef_w_hash_pair(w, &d->remove->via.array.ptr[i], h) != 0) {
            return -1;
        }

        rc = cef_w_index_del(w, h, number);
        if (rc < 0) {
            return -1;
        }

        if (rc == 0) {
            w->info.keys--;
        }
    }

    for (i = 0; d->add && i < d->add->via.array.size; i++) {
        if (cef_w_hash_pair(w, &d->add->via.array.ptr[i], h) != 0) {
            return -1;
        }

        rc = cef_w_index_put(w, h, number);
        if (rc < 0) {
            return -1;
        }

        if (rc == 0) {
            w->info.keys++;
        }

        cef_w_add_hint(hints, &nhints, cef_w_bucket(h));
    }

    if (nhints > CEF_PROFILE_HINTS_MAX
        && cef_w_prune_hints(w, hints, &nhints, number) != 0)
    {
        return -1;
    }

    if (cef_w_begin_stored(w, &st, number) != 0) {
        return -1;
    }

    return cef_w_put_profile(w, number, hints, nhints, st.id, st.idlen);
}


static int
cef_w_op_merge(cef_writer_t *w, cef_delta_t *d, cef_writer_result_t *res)
{
    int            rc;
    uint8_t        fidh[CEF_HASH_LEN], iidh[CEF_HASH_LEN], *h;
    uint16_t       hints[CEF_PROFILE_HINTS_MAX * 2];
    uint32_t       i, nhints, from, into;
    cef_stored_t   fst, ist;
    cef_hashes_t   hs = { NULL, 0, 0 };

    rc = cef_w_find_named(w, d->from, fidh, &from, &fst, res);
    if (rc != 0) {
        return rc < 0 ? -1 : 0;
    }

    if (cef_w_profile_keys(w, &fst, from, &hs) != 0) {
        goto failed;
    }

    /* loading "into" reuses the scratch buffer: fst.attrs is gone */

    rc = cef_w_find_named(w, d->into, iidh, &into, &ist, res);
    if (rc != 0) {
        free(hs.h);
        return rc < 0 ? -1 : 0;
    }

    nhints = ist.nhints;
    memcpy(hints, ist.hints, nhints * sizeof(uint16_t));

    if (nhints + hs.n > CEF_PROFILE_HINTS_MAX) {
        rc = cef_w_keys_fit(w, &ist, into, NULL, NULL, &hs);
        if (rc != CEF_WRITER_OK) {
            free(hs.h);
            return rc;
        }
    }

    for (i = 0; i < hs.n; i++) {
        h = hs.h + (size_t) i * CEF_HASH_LEN;

        if (cef_w_index_del(w, h, from) < 0 || cef_w_index_put(w, h, into) < 0)
        {
            goto failed;
        }

        if (nhints == CEF_PROFILE_HINTS_MAX * 2
            && cef_w_prune_hints(w, hints, &nhints, into) != 0)
        {
            goto failed;
        }

        cef_w_add_hint(hints, &nhints, cef_w_bucket(h));
    }

    if (cef_w_ids_del(w, fidh, from) != 0) {
        goto failed;
    }

    if (cef_w_prof_put(w, from, NULL, 0) != 0) {
        goto failed;
    }

    w->info.profiles--;

    if (nhints > CEF_PROFILE_HINTS_MAX
        && cef_w_prune_hints(w, hints, &nhints, into) != 0)
    {
        goto failed;
    }

    if (cef_w_begin_stored(w, &ist, into) != 0
        || cef_w_put_profile(w, into, hints, nhints, ist.id, ist.idlen) != 0)
    {
        goto failed;
    }

    free(hs.h);
    return 0;

failed:

    free(hs.h);
    return -1;
}


int
cef_w_delta_record(cef_writer_t *w, const msgpack_object *rec, int dry,
    cef_writer_result_t *res)
{
    static const char *const  f_upsert[] = { "seq", "op", "id", "keys",
                                             "attrs", NULL };
    static const char *const  f_patch[] = { "seq", "op", "id", "set",
                                            "unset", NULL };
    static const char *const  f_delete[] = { "seq", "op", "id", NULL };
    static const char *const  f_keys[] = { "seq", "op", "id", "add",
                                           "remove", NULL };
    static const char *const  f_merge[] = { "seq", "op", "from", "into",
                                            NULL };

    int                    rc;
    int64_t                seq;
    cef_pub_t              pub;
    cef_delta_t            d;
    const msgpack_object  *op;

    memset(&d, 0, sizeof(d));
    memset(&pub, 0, sizeof(pub));

    /* in a stream, seq is optional and only checked: offsets order records */

    if (w->stream && cef_w_field(rec, "seq") == NULL) {
        seq = 0;

    } else {
        rc = cef_w_int_field(w, rec, "seq", &seq);
        if (rc != 0) {
            return rc;
        }

        if (seq <= 0) {
            return cef_w_bad(w, "seq must be a positive integer");
        }
    }

    if (w->stream) {
        /* void */

    } else if ((uint64_t) seq <= w->stream_seq) {
        return cef_w_bad(w, "seq %lld is not greater than the previous "
                         "record's seq %llu (sequences must increase)",
                         (long long) seq, (unsigned long long) w->stream_seq);
    }

    if (!w->stream) {
        w->stream_seq = (uint64_t) seq;
    }

    op = cef_w_field(rec, "op");
    if (op == NULL || op->type != MSGPACK_OBJECT_STR) {
        return cef_w_bad(w, "field \"op\" must be a string");
    }

    if (cef_w_key_is(op, "upsert")) {
        if ((rc = cef_w_check_fields(w, rec, f_upsert)) != 0
            || (rc = cef_w_check_id(w, rec, "id", &d.id)) != 0
            || (rc = cef_w_check_keys(w, rec, "keys", 1, &d.keys)) != 0
            || (rc = cef_w_check_attrs(w, rec, "attrs", 1, &d.attrs)) != 0)
        {
            return rc;
        }

    } else if (cef_w_key_is(op, "patch")) {
        if ((rc = cef_w_check_fields(w, rec, f_patch)) != 0
            || (rc = cef_w_check_id(w, rec, "id", &d.id)) != 0
            || (rc = cef_w_check_attrs(w, rec, "set", 0, &d.set)) != 0
            || (rc = cef_w_check_names(w, rec, "unset", &d.unset)) != 0)
        {
            return rc;
        }

    } else if (cef_w_key_is(op, "delete")) {
        if ((rc = cef_w_check_fields(w, rec, f_delete)) != 0
            || (rc = cef_w_check_id(w, rec, "id", &d.id)) != 0)
        {
            return rc;
        }

    } else if (cef_w_key_is(op, "keys")) {
        if ((rc = cef_w_check_fields(w, rec, f_keys)) != 0
            || (rc = cef_w_check_id(w, rec, "id", &d.id)) != 0
            || (rc = cef_w_check_keys(w, rec, "add", 0, &d.add)) != 0
            || (rc = cef_w_check_keys(w, rec, "remove", 0, &d.remove)) != 0)
        {
            return rc;
        }

    } else if (cef_w_key_is(op, "merge")) {
        if ((rc = cef_w_check_fields(w, rec, f_merge)) != 0
            || (rc = cef_w_check_id(w, rec, "from", &d.from)) != 0
            || (rc = cef_w_check_id(w, rec, "into", &d.into)) != 0)
        {
            return rc;
        }

        if (d.from->via.str.size == d.into->via.str.size
            && memcmp(d.from->via.str.ptr, d.into->via.str.ptr,
                      d.from->via.str.size) == 0)
        {
            return cef_w_bad(w, "merge: \"from\" and \"into\" are the same "
                             "profile");
        }

    } else if (cef_w_key_is(op, "weights") || cef_w_key_is(op, "rules")) {
        if ((rc = cef_w_publish_check(w, rec, op, &pub)) != 0) {
            return rc;
        }

    } else {
        return cef_w_bad(w, "unknown op \"%.*s\"", (int) op->via.str.size,
                         op->via.str.ptr);
    }

    if (dry) {
        return CEF_WRITER_OK;
    }

    if (!w->stream && (uint64_t) seq <= w->info.last_seq) {
        res->skipped++;
        return CEF_WRITER_OK;
    }

    if (w->txn == NULL) {
        rc = cef_w_txn_begin(w, 0);
        if (rc != 0) {
            return rc;
        }
    }

    switch (op->via.str.ptr[0]) {
    case 'u': rc = cef_w_op_upsert(w, &d, res); break;
    case 'p': rc = cef_w_op_patch(w, &d, res); break;
    case 'd': rc = cef_w_op_delete(w, &d, res); break;
    case 'k': rc = cef_w_op_keys(w, &d, res); break;
    case 'w':
    case 'r': rc = cef_w_publish_apply(w, &pub, res); break;
    default:  rc = cef_w_op_merge(w, &d, res); break;
    }

    if (rc == CEF_WRITER_EINPUT) {
        /*
         * Over a limit of the stored state, found before the record wrote
         * anything: a stream refuses it alone; an apply stops (its earlier
         * batches are committed, so that is not "nothing changed").
         */
        return w->stream ? CEF_WRITER_EINPUT : CEF_WRITER_ESTORE;
    }

    if (rc != 0) {
        /* the message is set; name the record if it does not */
        if (strncmp(w->err, "record ", 7) != 0) {
            char  msg[512];

            snprintf(msg, sizeof(msg), "%s", w->err);
            cef_w_bad(w, "%s", msg);
        }
        return CEF_WRITER_ESTORE;
    }

    res->applied++;
    w->in_batch++;

    if (!w->stream) {
        w->batch_seq = (uint64_t) seq;
    }

    return CEF_WRITER_OK;
}


static int
cef_w_batch_commit(cef_writer_t *w, cef_writer_result_t *res)
{
    int  rc;

    if (w->txn == NULL) {
        return CEF_WRITER_OK;
    }

    w->info.last_seq = w->batch_seq;
    w->info.updated_at = time(NULL);

    if ((rc = cef_w_put_meta(w)) != 0 || (rc = cef_w_txn_commit(w)) != 0) {
        return rc;
    }

    w->in_batch = 0;
    res->batches++;

    return CEF_WRITER_OK;
}


static int
cef_w_apply_pass(cef_writer_t *w, int dry, cef_writer_result_t *res)
{
    int                    rc;
    uint64_t               records = 0;
    uint32_t               batch;
    const msgpack_object  *rec;

    batch = w->conf->batch ? w->conf->batch : 10000;
    w->stream_seq = 0;

    for ( ;; ) {
        if (!dry && w->in_batch > 0 && w->conf->idle_ms > 0
            && cef_input_wait(w->in, w->conf->idle_ms) == 0)
        {
            rc = cef_w_batch_commit(w, res);
            if (rc != 0) {
                return rc;
            }
        }

        rc = cef_w_next_record(w, &rec, &records);

        if (rc < 0) {
            return CEF_WRITER_EINPUT;
        }

        if (rc == 0) {
            break;
        }

        if (!dry) {
            cef_w_progress(w, records, 0);
        }

        if (records == 1) {
            rc = cef_w_check_header(w, rec, "delta");
        } else {
            rc = cef_w_delta_record(w, rec, dry, res);
        }

        if (rc != 0) {
            return rc;
        }

        if (!dry && w->in_batch >= batch) {
            rc = cef_w_batch_commit(w, res);
            if (rc != 0) {
                return rc;
            }
        }
    }

    if (records == 0) {
        cef_w_err(w, "empty input: expected a delta header");
        return CEF_WRITER_EINPUT;
    }

    if (!dry) {
        res->records = records;
        cef_w_progress(w, records, 1);
        return cef_w_batch_commit(w, res);
    }

    return CEF_WRITER_OK;
}


static int
cef_w_load_dict(cef_writer_t *w, MDB_dbi dbi, cef_encode_intern_t *t)
{
    int          rc;
    uint32_t     id;
    MDB_val      k, v;
    MDB_cursor  *cur;

    rc = mdb_cursor_open(w->txn, dbi, &cur);
    if (rc != 0) {
        return cef_w_lmdb(w, "reading the dictionary", rc);
    }

    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);

    while (rc == 0) {
        memcpy(&id, k.mv_data, sizeof(id));

        if (k.mv_size != sizeof(id) || id != t->n
            || cef_encode_intern_add(t, v.mv_data, v.mv_size) != id)
        {
            mdb_cursor_close(cur);
            cef_w_err(w, "the store's dictionary is corrupt (entry %u)", id);
            return CEF_WRITER_ESTORE;
        }

        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }

    mdb_cursor_close(cur);

    if (rc != MDB_NOTFOUND) {
        return cef_w_lmdb(w, "reading the dictionary", rc);
    }

    t->written = t->n;
    return CEF_WRITER_OK;
}


/*
 * Take the write lock and open the current generation for deltas: the
 * metadata, the secret check, the dictionaries.  Leaves w->txn open.
 */

int
cef_w_open_current(cef_writer_t *w, char *path, size_t size, uint64_t *gen)
{
    int           rc;
    uint8_t       fp[8];
    MDB_val       k, v;
    MDB_envinfo   ei;

    if (cef_store_current(w->conf->dir, path, size, gen) != 0) {
        cef_w_err(w, "no profile store in \"%s\" (create one with "
                  "cef-sync load)", w->conf->dir);
        return CEF_WRITER_ESTORE;
    }

    rc = cef_w_lock(w, 0);
    if (rc != 0) {
        return rc;
    }

    cef_w_cleanup(w);

    /* a load may have switched generations while we waited for the lock */

    if (cef_store_current(w->conf->dir, path, size, gen) != 0) {
        cef_w_err(w, "no profile store in \"%s\"", w->conf->dir);
        return CEF_WRITER_ESTORE;
    }

    if (cef_encode_init(&w->enc) != 0) {
        cef_w_err(w, "out of memory");
        return CEF_WRITER_ESTORE;
    }

    w->enc_init = 1;

    if ((rc = mdb_env_create(&w->env)) != 0
        || (rc = mdb_env_set_maxdbs(w->env, 8)) != 0
        || (rc = mdb_env_open(w->env, path, 0, 0644)) != 0)
    {
        return cef_w_lmdb(w, "opening the store", rc);
    }

    /* generations made before lock.mdb was allocated in full */

    rc = cef_w_reserve_lock(w, path, 0, 0644);
    if (rc != 0) {
        return rc;
    }

    if (cef_w_share(w, path) != CEF_WRITER_OK) {
        return CEF_WRITER_ESTORE;
    }

    mdb_env_info(w->env, &ei);

    if (w->conf->map_size > ei.me_mapsize) {
        rc = mdb_env_set_mapsize(w->env, w->conf->map_size);
        if (rc != 0) {
            return cef_w_lmdb(w, rc == ENOMEM ? "growing the map (a --map-size "
                              "larger than the address space?)"
                              : "growing the map", rc);
        }
    }

    rc = cef_w_txn_begin(w, 0);
    if (rc != 0) {
        return rc;
    }

    k.mv_data = (void *) "meta";
    k.mv_size = 4;

    rc = mdb_get(w->txn, w->meta, &k, &v);
    if (rc != 0) {
        return cef_w_lmdb(w, "reading the metadata", rc);
    }

    if (cef_store_meta_decode(v.mv_data, v.mv_size, &w->info) != 0
        || w->info.format != CEF_STORE_FORMAT)
    {
        cef_w_err(w, "\"%s\": unsupported or malformed store metadata", path);
        return CEF_WRITER_ESTORE;
    }

    if (cef_identity_fingerprint(w->conf->ident, fp) != 0
        || memcmp(fp, w->info.secret_check, 8) != 0)
    {
        cef_w_err(w, "the secret is not the one the store was loaded with");
        return CEF_WRITER_EINPUT;
    }

    if ((rc = cef_w_load_dict(w, w->names, &w->enc.names)) != 0
        || (rc = cef_w_load_dict(w, w->strs, &w->enc.strs)) != 0)
    {
        return rc;
    }

    w->kcfg.bits = w->info.key_bits;
    w->kcfg.rest = CEF_STORE_BUCKET_REST_KEYS;
    w->icfg.bits = w->info.id_bits;
    w->icfg.rest = CEF_STORE_BUCKET_REST_IDS;

    if (w->info.key_bits < CEF_STORE_BUCKET_BITS_MIN
        || w->info.key_bits > CEF_STORE_BUCKET_BITS_MAX
        || w->info.id_bits < CEF_STORE_BUCKET_BITS_MIN
        || w->info.id_bits > CEF_STORE_BUCKET_BITS_MAX)
    {
        cef_w_err(w, "the store's metadata has a bad index layout");
        return CEF_WRITER_ESTORE;
    }

    if (w->enc.names.n != w->info.names || w->enc.strs.n != w->info.strs) {
        cef_w_err(w, "the store's dictionary does not match its metadata");
        return CEF_WRITER_ESTORE;
    }

    return CEF_WRITER_OK;
}


int
cef_writer_apply(const cef_writer_conf_t *conf, cef_input_t *in,
    cef_writer_result_t *res, char *err, size_t errlen)
{
    int           rc;
    char          path[PATH_MAX];
    uint64_t      gen = 0;
    struct stat   st;
    cef_writer_t  w;

    cef_w_init(&w, conf, in, err, errlen);
    memset(res, 0, sizeof(cef_writer_result_t));
    path[0] = '\0';
    err[0] = '\0';

    rc = cef_w_open_current(&w, path, sizeof(path), &gen);
    if (rc != 0) {
        goto done;
    }

    mdb_txn_abort(w.txn);
    w.txn = NULL;

    if (cef_input_seekable(in)) {
        rc = cef_w_apply_pass(&w, 1, res);
        if (rc != 0) {
            goto done;
        }

        if (cef_input_rewind(in) != 0) {
            cef_w_err(&w, "cannot rewind the input: %s", strerror(errno));
            rc = CEF_WRITER_ESTORE;
            goto done;
        }
    }

    rc = cef_w_apply_pass(&w, 0, res);

done:

    res->profiles = w.info.profiles;
    res->keys = w.info.keys;
    res->last_seq = w.info.last_seq;
    res->generation = gen;

    if (rc == 0 && (size_t) snprintf(path + strlen(path),
                                     sizeof(path) - strlen(path),
                                     "/data.mdb") < sizeof(path)
        && stat(path, &st) == 0)
    {
        res->data_bytes = (uint64_t) st.st_size;
    }

    cef_w_close(&w);
    return rc;
}
