/*
 * Copyright (C) ngx_cef_module developers
 *
 * cef_store_verify(): a consistency check of a whole store (cef-sync
 * verify).
 */

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "cef_store_encode.h"
#include "cef_store_writer.h"


typedef struct {
    void      (*report)(void *data, const char *msg);
    void       *data;
    uint64_t    problems;
} cef_verify_t;


static void
cef_verify_problem(cef_verify_t *v, const char *fmt, ...)
{
    char     msg[512];
    va_list  ap;

    v->problems++;

    if (v->report && v->problems <= 100) {
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        v->report(v->data, msg);
    }
}


static int
cef_verify_dict(MDB_txn *txn, MDB_dbi dbi, cef_intern_t *t, uint32_t want,
    const char *what, cef_verify_t *v)
{
    int          rc;
    uint32_t     id;
    MDB_val      k, d;
    MDB_cursor  *cur;

    rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != 0) {
        return rc;
    }

    for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT))
    {
        memcpy(&id, k.mv_data, sizeof(id));

        if (k.mv_size != sizeof(id) || id != t->n) {
            cef_verify_problem(v, "%s dictionary: unexpected entry", what);
            continue;
        }

        /* duplicates are not an error for a reader; keep ids aligned */
        if (cef_intern_find(t, d.mv_data, d.mv_size) >= 0) {
            cef_verify_problem(v, "%s dictionary: entry %u is a duplicate",
                               what, id);
        }

        if (cef_intern_add(t, d.mv_data, d.mv_size) < 0) {
            cef_verify_problem(v, "%s dictionary: cannot hold entry %u",
                               what, id);
            break;
        }
    }

    mdb_cursor_close(cur);

    if (t->n != want) {
        cef_verify_problem(v, "%s dictionary has %u entries, the metadata "
                           "says %u", what, t->n, want);
    }

    return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}


int
cef_store_verify(const char *dir, cef_identity_t *ident,
    void (*report)(void *data, const char *msg), void *data,
    cef_verify_result_t *res, char *err, size_t errlen)
{
    int               rc, ret = CEF_WRITER_ESTORE;
    char              path[PATH_MAX];
    uint8_t           h[CEF_IDENTITY_HASH_LEN], item[CEF_STORE_ITEM_LEN],
                     *unhinted = NULL;
    uint16_t          b;
    uint32_t          number, i, n;
    uint64_t          gen;
    MDB_env          *env = NULL;
    MDB_txn          *txn = NULL;
    MDB_cursor       *cur = NULL, *icur = NULL;
    MDB_dbi           meta, prof, index, names, strs;
    MDB_val           k, d, k2, d2;
    cef_verify_t      v;
    cef_encoder_t     enc;
    cef_dict_t        dict;
    cef_profile_t     p;
    cef_store_info_t  info;

    memset(res, 0, sizeof(cef_verify_result_t));
    memset(&v, 0, sizeof(v));
    v.report = report;
    v.data = data;

    if (cef_encoder_init(&enc) != 0) {
        snprintf(err, errlen, "out of memory");
        return CEF_WRITER_ESTORE;
    }

    /* make the tables hold anything the store holds */
    enc.names.max = UINT32_MAX;
    enc.strs.max = UINT32_MAX;

    if (cef_store_current(dir, path, sizeof(path), &gen) != 0) {
        snprintf(err, errlen, "no profile store in \"%s\"", dir);
        goto done;
    }

    if ((rc = mdb_env_create(&env)) != 0
        || (rc = mdb_env_set_maxdbs(env, 8)) != 0
        || (rc = mdb_env_open(env, path, MDB_RDONLY, 0644)) != 0
        || (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0
        || (rc = mdb_dbi_open(txn, CEF_STORE_DB_META, 0, &meta)) != 0
        || (rc = mdb_dbi_open(txn, CEF_STORE_DB_PROF, MDB_INTEGERKEY,
                              &prof)) != 0
        || (rc = mdb_dbi_open(txn, CEF_STORE_DB_INDEX,
                              MDB_DUPSORT|MDB_DUPFIXED, &index)) != 0
        || (rc = mdb_dbi_open(txn, CEF_STORE_DB_NAMES, MDB_INTEGERKEY,
                              &names)) != 0
        || (rc = mdb_dbi_open(txn, CEF_STORE_DB_STRS, MDB_INTEGERKEY,
                              &strs)) != 0)
    {
        snprintf(err, errlen, "cannot open \"%s\": %s", path,
                 mdb_strerror(rc));
        goto done;
    }

    k.mv_data = (void *) "meta";
    k.mv_size = 4;

    if (mdb_get(txn, meta, &k, &d) != 0
        || cef_store_meta_decode(d.mv_data, d.mv_size, &info) != 0
        || info.format != CEF_STORE_FORMAT)
    {
        snprintf(err, errlen, "\"%s\": missing or malformed metadata", path);
        goto done;
    }

    if (ident) {
        if (cef_identity_fingerprint(ident, h) != 0
            || memcmp(h, info.secret_check, 8) != 0)
        {
            snprintf(err, errlen, "the secret is not the one the store was "
                     "loaded with");
            goto done;
        }
    }

    if ((rc = cef_verify_dict(txn, names, &enc.names, info.names, "names",
                              &v)) != 0
        || (rc = cef_verify_dict(txn, strs, &enc.strs, info.strs, "strings",
                                 &v)) != 0)
    {
        snprintf(err, errlen, "reading the dictionary: %s", mdb_strerror(rc));
        goto done;
    }

    memset(&dict, 0, sizeof(dict));
    dict.names = enc.names.tab;
    dict.strs = enc.strs.tab;

    if (cef_dict_index(&dict) != 0) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }

    unhinted = calloc((size_t) info.next_number + 1, 1);

    if (unhinted == NULL
        || (rc = mdb_cursor_open(txn, prof, &cur)) != 0
        || (rc = mdb_cursor_open(txn, index, &icur)) != 0)
    {
        snprintf(err, errlen, "cannot read the store");
        free(dict.names_hash);
        goto done;
    }

    /* every profile decodes; its id entry exists */

    for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT))
    {
        res->profiles++;
        memcpy(&number, k.mv_data, sizeof(number));

        if (k.mv_size != sizeof(number) || number >= info.next_number) {
            cef_verify_problem(&v, "profile number %u is out of range",
                               number);
            continue;
        }

        if (cef_profile_parse(d.mv_data, d.mv_size, &dict, &p) != 0
            || cef_profile_validate(&p) != 0)
        {
            cef_verify_problem(&v, "profile %u does not decode", number);
            continue;
        }

        if (ident == NULL) {
            continue;
        }

        cef_identity_hash(ident, "", 0, p.id.data, p.id.len, h);
        memcpy(item, h + CEF_STORE_BUCKET_LEN,
               CEF_IDENTITY_HASH_LEN - CEF_STORE_BUCKET_LEN);
        memcpy(item + CEF_IDENTITY_HASH_LEN - CEF_STORE_BUCKET_LEN, &number,
               sizeof(number));

        k2.mv_data = h;
        k2.mv_size = CEF_STORE_BUCKET_LEN;
        d2.mv_data = item;
        d2.mv_size = CEF_STORE_ITEM_LEN;

        if (mdb_cursor_get(icur, &k2, &d2, MDB_GET_BOTH) != 0) {
            cef_verify_problem(&v, "profile \"%.*s\" (%u) has no id entry",
                               (int) p.id.len, p.id.data, number);
        }
    }

    /* every index entry points to a profile that lists its bucket */

    for (rc = mdb_cursor_get(icur, &k, &d, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(icur, &k, &d, MDB_NEXT))
    {
        res->index_entries++;

        if (k.mv_size != CEF_STORE_BUCKET_LEN
            || d.mv_size != CEF_STORE_ITEM_LEN)
        {
            cef_verify_problem(&v, "malformed index entry");
            continue;
        }

        memcpy(&number, (uint8_t *) d.mv_data + CEF_IDENTITY_HASH_LEN
                        - CEF_STORE_BUCKET_LEN, sizeof(number));

        k2.mv_data = &number;
        k2.mv_size = sizeof(number);

        if (mdb_get(txn, prof, &k2, &d2) != 0
            || cef_profile_parse(d2.mv_data, d2.mv_size, &dict, &p) != 0)
        {
            cef_verify_problem(&v, "an index entry (bucket %02x%02x) points "
                               "to profile %u, which does not exist",
                               ((uint8_t *) k.mv_data)[0],
                               ((uint8_t *) k.mv_data)[1], number);
            continue;
        }

        b = (uint16_t) ((((uint8_t *) k.mv_data)[0] << 8)
                        | ((uint8_t *) k.mv_data)[1]);

        for (i = 0, n = 0; i < p.nhints; i++) {
            if (((p.hints[2 * i] << 8) | p.hints[2 * i + 1]) == b) {
                n = 1;
                break;
            }
        }

        if (!n && number < info.next_number) {
            /* only the profile's own id entry may be outside its hints */
            if (++unhinted[number] > 1) {
                cef_verify_problem(&v, "profile %u has a key outside its "
                                   "hints (it would survive a delete)",
                                   number);
            }
        }
    }

    res->keys = res->index_entries >= res->profiles
                ? res->index_entries - res->profiles : 0;

    if (res->profiles != info.profiles) {
        cef_verify_problem(&v, "%llu profiles, the metadata says %llu",
                           (unsigned long long) res->profiles,
                           (unsigned long long) info.profiles);
    }

    if (res->keys != info.keys) {
        cef_verify_problem(&v, "%llu keys, the metadata says %llu",
                           (unsigned long long) res->keys,
                           (unsigned long long) info.keys);
    }

    free(dict.names_hash);

    res->problems = v.problems;
    ret = v.problems ? CEF_WRITER_ESTORE : CEF_WRITER_OK;

    if (v.problems) {
        snprintf(err, errlen, "%llu problem(s) found",
                 (unsigned long long) v.problems);
    }

done:

    free(unhinted);

    if (cur) {
        mdb_cursor_close(cur);
    }

    if (icur) {
        mdb_cursor_close(icur);
    }

    if (txn) {
        mdb_txn_abort(txn);
    }

    if (env) {
        mdb_env_close(env);
    }

    cef_encoder_free(&enc);
    return ret;
}
