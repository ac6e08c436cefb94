/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_writer_verify(): a consistency check of a whole store (cef-sync
 * verify).
 */

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "cef_store_bucket.h"
#include "cef_encode.h"
#include "cef_store_group.h"
#include "cef_store_rules.h"
#include "cef_store_weights.h"
#include "cef_writer.h"


typedef struct {
    void      (*report)(void *data, const char *msg);
    void       *data;
    uint64_t    problems;
} cef_verify_t;


static void
cef_verify_problem(cef_verify_t *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void cef_verify_published(MDB_txn *txn, MDB_dbi meta,
    cef_verify_t *v);


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
cef_verify_dict(MDB_txn *txn, MDB_dbi dbi, cef_encode_intern_t *t,
    uint32_t want, const char *what, cef_verify_t *v)
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
        if (cef_encode_intern_find(t, d.mv_data, d.mv_size) >= 0) {
            cef_verify_problem(v, "%s dictionary: entry %u is a duplicate",
                               what, id);
        }

        if (cef_encode_intern_add(t, d.mv_data, d.mv_size) < 0) {
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


/* A stored profile by number: 0 found, else -1. */

static int
cef_verify_get(MDB_txn *txn, MDB_dbi prof, uint32_t number,
    const uint8_t **p, size_t *len)
{
    uint32_t  group;
    MDB_val   k, d;

    group = cef_store_group_of(number);
    k.mv_data = &group;
    k.mv_size = sizeof(group);

    if (mdb_get(txn, prof, &k, &d) != 0
        || cef_store_group_slot(d.mv_data, d.mv_size, number, p, len) != 0
        || *len == 0)
    {
        return -1;
    }

    return 0;
}


/* Check one index ("index" or "ids"); count its entries. */

static int
cef_verify_index(MDB_txn *txn, MDB_dbi dbi, MDB_dbi prof,
    const cef_store_bucket_cfg_t *c, const cef_dict_t *dict, int keys,
    cef_verify_t *v, uint64_t *count)
{
    int            rc, hinted;
    size_t         i, il, n, plen;
    const uint8_t *blob;
    uint8_t        h[CEF_IDENTITY_HASH_LEN];
    uint16_t       hint;
    uint32_t       b, number, j;
    const uint8_t *val;
    MDB_val        k, d;
    MDB_cursor    *cur;
    cef_profile_t  p;
    const char    *what = keys ? "index" : "ids";

    il = cef_store_bucket_item_len(c);

    rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != 0) {
        return rc;
    }

    for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT))
    {
        if (k.mv_size != CEF_STORE_BUCKET_KEY_LEN || d.mv_size == 0
            || d.mv_size % il != 0)
        {
            cef_verify_problem(v, "%s: malformed bucket record", what);
            continue;
        }

        b = ((uint32_t) ((uint8_t *) k.mv_data)[0] << 16)
            | ((uint32_t) ((uint8_t *) k.mv_data)[1] << 8)
            | ((uint8_t *) k.mv_data)[2];
        hint = (uint16_t) (b >> (c->bits - 16));
        val = d.mv_data;
        n = d.mv_size / il;

        for (i = 0; i < n; i++) {
            (*count)++;

            h[0] = (uint8_t) (hint >> 8);
            h[1] = (uint8_t) hint;
            memcpy(h + 2, val + i * il, c->rest);
            memset(h + 2 + c->rest, 0, sizeof(h) - 2 - c->rest);

            if (cef_store_bucket_of(c, h) != b
                || (i > 0 && memcmp(val + (i - 1) * il, val + i * il, c->rest)
                             > (keys ? -1 : 0)))
            {
                cef_verify_problem(v, "%s: bucket %06x is not sorted or "
                                   "holds a foreign entry", what, b);
            }

            number = cef_store_bucket_number(c, val, i);

            if (cef_verify_get(txn, prof, number, &blob, &plen) != 0
                || cef_profile_parse(blob, plen, dict, &p) != 0)
            {
                cef_verify_problem(v, "%s: an entry in bucket %06x points to "
                                   "profile %u, which does not exist", what,
                                   b, number);
                continue;
            }

            if (!keys) {
                continue;
            }

            for (j = 0, hinted = 0; j < p.nhints; j++) {
                if (((p.hints[2 * j] << 8) | p.hints[2 * j + 1]) == hint) {
                    hinted = 1;
                    break;
                }
            }

            if (!hinted) {
                cef_verify_problem(v, "profile %u has a key outside its "
                                   "hints (it would survive a delete)",
                                   number);
            }
        }
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : rc;
}


int
cef_writer_verify(const char *dir, cef_identity_t *ident,
    void (*report)(void *data, const char *msg), void *data,
    cef_writer_verify_result_t *res, char *err, size_t errlen)
{
    int               rc, ret = CEF_WRITER_ESTORE, found;
    char              path[PATH_MAX];
    size_t            pos, n;
    uint8_t           h[CEF_IDENTITY_HASH_LEN], key[CEF_STORE_BUCKET_KEY_LEN];
    size_t            plen;
    uint32_t          number, group, slot;
    uint64_t          gen, nids = 0;
    const uint8_t    *blob;
    MDB_env          *env = NULL;
    MDB_txn          *txn = NULL;
    MDB_cursor       *cur = NULL;
    MDB_dbi           meta, prof, index, ids, names, strs;
    MDB_val           k, d, k2, d2;
    cef_verify_t      v;
    cef_encode_t     enc;
    cef_dict_t        dict;
    cef_profile_t     p;
    cef_store_info_t  info;
    cef_store_bucket_cfg_t  kcfg, icfg;

    memset(res, 0, sizeof(cef_writer_verify_result_t));
    memset(&v, 0, sizeof(v));
    memset(&dict, 0, sizeof(dict));
    v.report = report;
    v.data = data;

    if (cef_encode_init(&enc) != 0) {
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
        || (rc = mdb_dbi_open(txn, CEF_STORE_DB_INDEX, 0, &index)) != 0
        || (rc = mdb_dbi_open(txn, CEF_STORE_DB_IDS, 0, &ids)) != 0
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
        || info.format != CEF_STORE_FORMAT
        || info.key_bits < CEF_STORE_BUCKET_BITS_MIN
        || info.key_bits > CEF_STORE_BUCKET_BITS_MAX
        || info.id_bits < CEF_STORE_BUCKET_BITS_MIN
        || info.id_bits > CEF_STORE_BUCKET_BITS_MAX)
    {
        snprintf(err, errlen, "\"%s\": missing or malformed metadata", path);
        goto done;
    }

    kcfg.bits = info.key_bits;
    kcfg.rest = CEF_STORE_BUCKET_REST_KEYS;
    icfg.bits = info.id_bits;
    icfg.rest = CEF_STORE_BUCKET_REST_IDS;

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

    /* the stream offsets, if any, decode (cef-sync consume reads them) */

    k.mv_data = (void *) CEF_STORE_META_KAFKA;
    k.mv_size = sizeof(CEF_STORE_META_KAFKA) - 1;

    if (mdb_get(txn, meta, &k, &d) == 0) {
        cef_store_offsets_t  *o = malloc(sizeof(cef_store_offsets_t));

        if (o && cef_store_meta_offsets_decode(d.mv_data, d.mv_size, o) != 0) {
            cef_verify_problem(&v, "the stream offsets (meta \"%s\") are "
                               "malformed", CEF_STORE_META_KAFKA);
        }

        free(o);
    }

    cef_verify_published(txn, meta, &v);

    dict.names = enc.names.tab;
    dict.strs = enc.strs.tab;

    if (cef_dict_index(&dict) != 0
        || (rc = mdb_cursor_open(txn, prof, &cur)) != 0)
    {
        snprintf(err, errlen, "cannot read the store");
        goto done;
    }

    /* every profile decodes; its id entry exists */

    for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT))
    {
        memcpy(&group, k.mv_data, sizeof(group));

        for (slot = 0; slot < CEF_STORE_GROUP_SLOTS; slot++) {
            number = (group << CEF_STORE_GROUP_SHIFT) + slot;

            if (k.mv_size != sizeof(group)
                || cef_store_group_slot(d.mv_data, d.mv_size, number, &blob,
                                        &plen)
                   != 0)
            {
                cef_verify_problem(&v, "profile group %u is malformed", group);
                break;
            }

            if (plen == 0) {
                continue;
            }

            res->profiles++;

            if (number >= info.next_number) {
                cef_verify_problem(&v, "profile number %u is out of range",
                                   number);
                continue;
            }

            if (cef_profile_parse(blob, plen, &dict, &p) != 0
                || cef_profile_validate(&p) != 0)
            {
                cef_verify_problem(&v, "profile %u does not decode", number);
                continue;
            }

            if (ident == NULL) {
                continue;
            }

            cef_identity_hash(ident, "", 0, p.id.data, p.id.len, h);
            cef_store_bucket_key(cef_store_bucket_of(&icfg, h), key);
            k2.mv_data = key;
            k2.mv_size = CEF_STORE_BUCKET_KEY_LEN;
            found = 0;

            if (mdb_get(txn, ids, &k2, &d2) == 0) {
                cef_store_bucket_search(&icfg, d2.mv_data, d2.mv_size, h, &pos);
                n = d2.mv_size / cef_store_bucket_item_len(&icfg);

                for ( ; pos < n
                        && cef_store_bucket_match(&icfg, d2.mv_data, pos, h);
                     pos++)
                {
                    if (cef_store_bucket_number(&icfg, d2.mv_data, pos)
                        == number)
                    {
                        found = 1;
                    }
                }
            }

            if (!found) {
                cef_verify_problem(&v, "profile \"%.*s\" (%u) has no id entry",
                                   (int) p.id.len, p.id.data, number);
            }
        }
    }

    if ((rc = cef_verify_index(txn, index, prof, &kcfg, &dict, 1, &v,
                               &res->keys)) != 0
        || (rc = cef_verify_index(txn, ids, prof, &icfg, &dict, 0, &v,
                                  &nids)) != 0)
    {
        snprintf(err, errlen, "reading an index: %s", mdb_strerror(rc));
        goto done;
    }

    res->index_entries = res->keys + nids;

    if (nids != res->profiles) {
        cef_verify_problem(&v, "%llu id entries for %llu profiles",
                           (unsigned long long) nids,
                           (unsigned long long) res->profiles);
    }

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

    res->problems = v.problems;
    ret = v.problems ? CEF_WRITER_ESTORE : CEF_WRITER_OK;

    if (v.problems) {
        snprintf(err, errlen, "%llu problem(s) found",
                 (unsigned long long) v.problems);
    }

done:

    free(dict.names_hash);

    if (cur) {
        mdb_cursor_close(cur);
    }

    if (txn) {
        mdb_txn_abort(txn);
    }

    if (env) {
        mdb_env_close(env);
    }

    cef_encode_free(&enc);
    return ret;
}


/*
 * Published records (docs/store.md): every weights and rule-set record
 * decodes, and every kept version of a rule set has its source.
 */

static void
cef_verify_published(MDB_txn *txn, MDB_dbi meta, cef_verify_t *v)
{
    int                        rc;
    char                       key[3 + CEF_STORE_RULES_NAME_MAX + 32];
    uint32_t                   i;
    MDB_val                    k, d, sk, sd;
    MDB_cursor                *cur;
    cef_store_rules_t          r;
    cef_store_weights_t        w;
    cef_store_rules_version_t  rv;

    if (mdb_cursor_open(txn, meta, &cur) != 0) {
        cef_verify_problem(v, "cannot read the published records");
        return;
    }

    for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT))
    {
        if (k.mv_size > 2 && memcmp(k.mv_data, CEF_STORE_META_WEIGHTS, 2) == 0
            && cef_store_weights_decode(k.mv_data, k.mv_size, d.mv_data,
                                        d.mv_size, &w) != 0)
        {
            cef_verify_problem(v, "published weights \"%.*s\" are "
                               "malformed", (int) k.mv_size - 2,
                               (const char *) k.mv_data + 2);
            continue;
        }

        if (k.mv_size <= 2 || memcmp(k.mv_data, CEF_STORE_META_RULES, 2) != 0)
        {
            continue;
        }

        if (cef_store_rules_decode(k.mv_data, k.mv_size, d.mv_data,
                                   d.mv_size, &r) != 0)
        {
            cef_verify_problem(v, "rule set \"%.*s\" is malformed",
                               (int) k.mv_size - 2,
                               (const char *) k.mv_data + 2);
            continue;
        }

        for (i = 0; i < r.nhistory; i++) {
            (void) cef_store_rules_at(&r, i, &rv);
            sk.mv_data = key;
            sk.mv_size = cef_store_rules_source_key(key, r.name.data,
                                                    r.name.len, rv.sha256);
            if (mdb_get(txn, meta, &sk, &sd) != 0) {
                cef_verify_problem(v, "rule set \"%.*s\": version %s has "
                                   "no source", (int) r.name.len,
                                   r.name.data, rv.hex);
            }
        }
    }

    mdb_cursor_close(cur);
}
