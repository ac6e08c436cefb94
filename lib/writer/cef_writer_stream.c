/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * The profile store's writer: stream sessions (cef-sync consume), records
 * applied one at a time and committed with the stream offsets they reached
 * (cef_writer_stream_*; docs/store.md).
 */

#include "cef_writer_int.h"


struct cef_writer_stream_s {
    cef_writer_t       w;
    cef_writer_conf_t  conf;
    char               path[PATH_MAX];
    char               err[1024];
    int                broken;
};


int
cef_writer_stream_open(cef_writer_stream_t **sp, const cef_writer_conf_t *conf,
    cef_store_offsets_t *offs, char *err, size_t errlen)
{
    int                  rc;
    uint32_t             i;
    uint64_t             gen;
    MDB_val              k, v;
    cef_writer_stream_t  *s;

    *sp = NULL;
    err[0] = '\0';

    memset(offs, 0, sizeof(cef_store_offsets_t));
    for (i = 0; i < CEF_STORE_PARTITIONS_MAX; i++) {
        offs->next[i] = -1;
    }

    s = calloc(1, sizeof(cef_writer_stream_t));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return CEF_WRITER_ESTORE;
    }

    s->conf = *conf;
    cef_w_init(&s->w, &s->conf, NULL, err, errlen);
    s->w.stream = 1;

    rc = cef_w_open_current(&s->w, s->path, sizeof(s->path), &gen);
    if (rc != 0) {
        goto failed;
    }

    k.mv_data = (void *) CEF_STORE_META_KAFKA;
    k.mv_size = sizeof(CEF_STORE_META_KAFKA) - 1;

    rc = mdb_get(s->w.txn, s->w.meta, &k, &v);

    if (rc == 0) {
        if (cef_store_meta_offsets_decode(v.mv_data, v.mv_size, offs) != 0) {
            cef_w_err(&s->w, "the store's stream offsets are malformed");
            rc = CEF_WRITER_ESTORE;
            goto failed;
        }

    } else if (rc != MDB_NOTFOUND) {
        rc = cef_w_lmdb(&s->w, "reading the stream offsets", rc);
        goto failed;
    }

    mdb_txn_abort(s->w.txn);
    s->w.txn = NULL;
    s->w.err = s->err;
    s->w.errlen = sizeof(s->err);

    *sp = s;
    return CEF_WRITER_OK;

failed:

    cef_w_close(&s->w);
    free(s);
    return rc;
}


static void
cef_stream_use_err(cef_writer_stream_t *s, char *err, size_t errlen)
{
    err[0] = '\0';
    s->w.err = err;
    s->w.errlen = errlen;
    s->w.rec_no = 0;
    s->w.rec_off = 0;
}


int
cef_writer_stream_record(cef_writer_stream_t *s, const msgpack_object *rec,
    cef_writer_result_t *res, char *err, size_t errlen)
{
    int  rc;

    cef_stream_use_err(s, err, errlen);

    if (s->broken) {
        snprintf(err, errlen, "the batch was abandoned after a store error");
        return CEF_WRITER_ESTORE;
    }

    if (rec->type != MSGPACK_OBJECT_MAP) {
        snprintf(err, errlen, "a record must be a map");
        return CEF_WRITER_EINPUT;
    }

    rc = cef_w_delta_record(&s->w, rec, 0, res);

    if (rc == CEF_WRITER_ESTORE) {
        s->broken = 1;
    }

    return rc;
}


int
cef_writer_stream_erase(cef_writer_stream_t *s, const char *id, size_t len,
    cef_writer_result_t *res, char *err, size_t errlen)
{
    int             rc;
    cef_delta_t     d;
    msgpack_object  o;

    cef_stream_use_err(s, err, errlen);

    if (s->broken) {
        snprintf(err, errlen, "the batch was abandoned after a store error");
        return CEF_WRITER_ESTORE;
    }

    if (len == 0 || len > CEF_PROFILE_ID_MAX) {
        snprintf(err, errlen, "a tombstone's key (the profile id) must be 1 "
                 "to %d bytes long", CEF_PROFILE_ID_MAX);
        return CEF_WRITER_EINPUT;
    }

    if (s->w.txn == NULL && (rc = cef_w_txn_begin(&s->w, 0)) != 0) {
        s->broken = 1;
        return rc;
    }

    memset(&d, 0, sizeof(d));
    memset(&o, 0, sizeof(o));
    o.type = MSGPACK_OBJECT_STR;
    o.via.str.ptr = id;
    o.via.str.size = (uint32_t) len;
    d.id = &o;

    if (cef_w_op_delete(&s->w, &d, res) != 0) {
        s->broken = 1;
        return CEF_WRITER_ESTORE;
    }

    res->applied++;
    s->w.in_batch++;

    return CEF_WRITER_OK;
}


int
cef_writer_stream_commit(cef_writer_stream_t *s,
    const cef_store_offsets_t *offs, cef_writer_result_t *res, char *err,
    size_t errlen)
{
    int  rc;

    cef_stream_use_err(s, err, errlen);

    if (s->broken) {
        snprintf(err, errlen, "the batch was abandoned after a store error");
        return CEF_WRITER_ESTORE;
    }

    if (s->w.txn == NULL && (rc = cef_w_txn_begin(&s->w, 0)) != 0) {
        s->broken = 1;
        return rc;
    }

    /* the age readers report ($cef_store_age, metrics) starts again here */
    s->w.info.updated_at = time(NULL);

    /* offsets as a session without any opens them: none to store */
    if (offs && offs->topic[0] == '\0') {
        offs = NULL;
    }

    if ((offs && (rc = cef_w_put_offsets(&s->w, offs)) != 0)
        || (rc = cef_w_put_meta(&s->w)) != 0
        || (rc = cef_w_txn_commit(&s->w)) != 0)
    {
        s->broken = 1;
        return rc;
    }

    s->w.in_batch = 0;
    res->batches++;
    res->profiles = s->w.info.profiles;
    res->keys = s->w.info.keys;

    return CEF_WRITER_OK;
}


void
cef_writer_stream_close(cef_writer_stream_t *s)
{
    if (s == NULL) {
        return;
    }

    s->w.err = s->err;
    s->w.errlen = sizeof(s->err);
    cef_w_close(&s->w);
    free(s);
}
