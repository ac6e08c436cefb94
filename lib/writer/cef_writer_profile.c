/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * The profile store's writer: one stored profile updated in place, its
 * group record, its entries in the "index" and "ids" buckets, its stored
 * form decoded and encoded again (deltas and streams; docs/store.md).
 */

#include "cef_writer_int.h"


/* A stored profile: 0 found, 1 absent, -1 error. */

static int
cef_w_prof_get(cef_writer_t *w, uint32_t number, const uint8_t **p,
    size_t *len)
{
    int       rc;
    uint32_t  group;
    MDB_val   k, v;

    group = cef_store_group_of(number);
    k.mv_data = &group;
    k.mv_size = sizeof(group);

    rc = mdb_get(w->txn, w->prof, &k, &v);
    if (rc == MDB_NOTFOUND) {
        return 1;
    }

    if (rc != 0) {
        cef_w_lmdb(w, "reading a profile", rc);
        return -1;
    }

    if (cef_store_group_slot(v.mv_data, v.mv_size, number, p, len) != 0) {
        cef_w_err(w, "stored profile group %u is malformed", group);
        return -1;
    }

    return *len ? 0 : 1;
}


/* Replace a profile (blob) or remove it (blob NULL). */

int
cef_w_prof_put(cef_writer_t *w, uint32_t number, const uint8_t *blob,
    size_t blen)
{
    int             rc;
    size_t          i, total;
    uint32_t        group;
    MDB_val         k, v;
    const uint8_t  *p[CEF_STORE_GROUP_SLOTS];
    size_t          lens[CEF_STORE_GROUP_SLOTS];

    if (blen > CEF_STORE_GROUP_MAX) {
        cef_w_err(w, "the profile takes more than %d bytes encoded",
                  CEF_STORE_GROUP_MAX);
        return -1;
    }

    group = cef_store_group_of(number);
    k.mv_data = &group;
    k.mv_size = sizeof(group);

    rc = mdb_get(w->txn, w->prof, &k, &v);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        cef_w_lmdb(w, "reading a profile", rc);
        return -1;
    }

    total = 0;

    for (i = 0; i < CEF_STORE_GROUP_SLOTS; i++) {
        if ((number & (CEF_STORE_GROUP_SLOTS - 1)) == i) {
            p[i] = blob;
            lens[i] = blob ? blen : 0;

        } else if (rc == MDB_NOTFOUND) {
            p[i] = NULL;
            lens[i] = 0;

        } else if (cef_store_group_slot(v.mv_data, v.mv_size,
                                  (group << CEF_STORE_GROUP_SHIFT) + i, &p[i],
                                  &lens[i]) != 0)
        {
            cef_w_err(w, "stored profile group %u is malformed", group);
            return -1;
        }

        total += lens[i];
    }

    if (total == 0) {
        if (rc == MDB_NOTFOUND) {
            return 0;
        }

        rc = mdb_del(w->txn, w->prof, &k, NULL);
        if (rc != 0) {
            cef_w_lmdb(w, "deleting a profile", rc);
            return -1;
        }

        return 0;
    }

    /* the slots point into the map: build a copy before writing */
    if (cef_w_grow(w, &w->gbuf, &w->gbuf_cap, CEF_STORE_GROUP_HEAD + total)
        != 0)
    {
        return -1;
    }

    v.mv_data = w->gbuf;
    v.mv_size = cef_store_group_build(w->gbuf, p, lens);

    rc = mdb_put(w->txn, w->prof, &k, &v, 0);
    if (rc != 0) {
        cef_w_lmdb(w, "writing a profile", rc);
        return -1;
    }

    return 0;
}


/* Copy a bucket's value into w->bval; *len = 0 if the bucket is absent. */

static int
cef_w_bucket_get(cef_writer_t *w, MDB_dbi dbi, uint32_t b, size_t extra,
    size_t *len)
{
    int       rc;
    uint8_t   key[CEF_STORE_BUCKET_KEY_LEN], *p;
    MDB_val   k, v;

    cef_store_bucket_key(b, key);
    k.mv_data = key;
    k.mv_size = CEF_STORE_BUCKET_KEY_LEN;

    rc = mdb_get(w->txn, dbi, &k, &v);

    if (rc == MDB_NOTFOUND) {
        v.mv_size = 0;

    } else if (rc != 0) {
        cef_w_lmdb(w, "reading an index", rc);
        return -1;
    }

    if (v.mv_size + extra > w->bval_cap) {
        p = realloc(w->bval, v.mv_size + extra);
        if (p == NULL) {
            cef_w_err(w, "out of memory");
            return -1;
        }
        w->bval = p;
        w->bval_cap = v.mv_size + extra;
    }

    if (v.mv_size) {
        memcpy(w->bval, v.mv_data, v.mv_size);
    }

    *len = v.mv_size;
    return 0;
}


/*
 * The bucket of key h in dbi (items of c's layout) into w->bval: *b its
 * number, *len its bytes; with room for one more item if insert.
 */

static int
cef_w_bucket_of_key(cef_writer_t *w, MDB_dbi dbi,
    const cef_store_bucket_cfg_t *c, const uint8_t *h, int insert,
    uint32_t *b, size_t *len)
{
    *b = cef_store_bucket_of(c, h);

    return cef_w_bucket_get(w, dbi, *b,
                            insert ? cef_store_bucket_item_len(c) : 0, len);
}


static int
cef_w_bucket_put(cef_writer_t *w, MDB_dbi dbi, uint32_t b, size_t len)
{
    int      rc;
    uint8_t  key[CEF_STORE_BUCKET_KEY_LEN];
    MDB_val  k, v;

    cef_store_bucket_key(b, key);
    k.mv_data = key;
    k.mv_size = CEF_STORE_BUCKET_KEY_LEN;
    v.mv_data = w->bval;
    v.mv_size = len;

    rc = len ? mdb_put(w->txn, dbi, &k, &v, 0) : mdb_del(w->txn, dbi, &k, NULL);

    if (rc != 0) {
        cef_w_lmdb(w, "writing an index", rc);
        return -1;
    }

    return 0;
}


/*
 * The bucket b of dbi is in w->bval (len bytes, items of c's length):
 * remove its item at pos and write the bucket back (0 or -1).
 */

static int
cef_w_bucket_remove(cef_writer_t *w, MDB_dbi dbi,
    const cef_store_bucket_cfg_t *c, uint32_t b, size_t len, size_t pos)
{
    size_t  il = cef_store_bucket_item_len(c);

    memmove(w->bval + pos * il, w->bval + (pos + 1) * il,
            len - (pos + 1) * il);

    return cef_w_bucket_put(w, dbi, b, len - il);
}


/*
 * Write the item of key h -> number at pos of the bucket in w->bval; with
 * insert, move the items from pos on (*len bytes) one place up first, and
 * count the new item in *len (w->bval has room: cef_w_bucket_get's extra).
 */

static void
cef_w_bucket_set(cef_writer_t *w, const cef_store_bucket_cfg_t *c,
    size_t *len, size_t pos, int insert, const uint8_t *h, uint32_t number)
{
    size_t    il = cef_store_bucket_item_len(c);
    uint8_t  *item = w->bval + pos * il;

    if (insert) {
        memmove(item + il, item, *len - pos * il);
        *len += il;
    }

    memcpy(item, h + 2, c->rest);
    memcpy(item + c->rest, &number, sizeof(uint32_t));
}


/* Remove a key if it points at number: 0 removed, 1 not there, -1 error. */

int
cef_w_index_del(cef_writer_t *w, const uint8_t *h, uint32_t number)
{
    size_t    len, pos;
    uint32_t  b;

    if (cef_w_bucket_of_key(w, w->index, &w->kcfg, h, 0, &b, &len) != 0) {
        return -1;
    }

    if (!cef_store_bucket_search(&w->kcfg, w->bval, len, h, &pos)
        || cef_store_bucket_number(&w->kcfg, w->bval, pos) != number)
    {
        return 1;
    }

    return cef_w_bucket_remove(w, w->index, &w->kcfg, b, len, pos);
}


/*
 * Point a key at a profile.  Returns 0 if the key is new, 1 if it already
 * pointed at this profile, 2 if it was moved from another one, -1 on error.
 */

int
cef_w_index_put(cef_writer_t *w, const uint8_t *h, uint32_t number)
{
    int       moved = 0;
    size_t    len, pos;
    uint32_t  b;

    if (cef_w_bucket_of_key(w, w->index, &w->kcfg, h, 1, &b, &len) != 0) {
        return -1;
    }

    if (cef_store_bucket_search(&w->kcfg, w->bval, len, h, &pos)) {
        if (cef_store_bucket_number(&w->kcfg, w->bval, pos) == number) {
            return 1;
        }
        moved = 1;
    }

    cef_w_bucket_set(w, &w->kcfg, &len, pos, !moved, h, number);

    if (cef_w_bucket_put(w, w->index, b, len) != 0) {
        return -1;
    }

    return moved ? 2 : 0;
}


int
cef_w_ids_put(cef_writer_t *w, const uint8_t *h, uint32_t number)
{
    size_t    len, pos;
    uint32_t  b;

    if (cef_w_bucket_of_key(w, w->ids, &w->icfg, h, 1, &b, &len) != 0) {
        return -1;
    }

    cef_store_bucket_search(&w->icfg, w->bval, len, h, &pos);
    cef_w_bucket_set(w, &w->icfg, &len, pos, 1, h, number);

    return cef_w_bucket_put(w, w->ids, b, len);
}


int
cef_w_ids_del(cef_writer_t *w, const uint8_t *h, uint32_t number)
{
    size_t    len, pos, il;
    uint32_t  b;

    if (cef_w_bucket_of_key(w, w->ids, &w->icfg, h, 0, &b, &len) != 0) {
        return -1;
    }

    il = cef_store_bucket_item_len(&w->icfg);

    cef_store_bucket_search(&w->icfg, w->bval, len, h, &pos);

    for ( ; pos < len / il && cef_store_bucket_match(&w->icfg, w->bval, pos, h);
         pos++)
    {
        if (cef_store_bucket_number(&w->icfg, w->bval, pos) == number) {
            return cef_w_bucket_remove(w, w->ids, &w->icfg, b, len, pos);
        }
    }

    return 0;
}




static int
cef_w_hashes_add(cef_hashes_t *hs, const uint8_t *h)
{
    uint32_t   ncap;
    uint8_t   *p;

    if (hs->n == hs->cap) {
        ncap = hs->cap ? hs->cap * 2 : 16;
        p = realloc(hs->h, (size_t) ncap * CEF_HASH_LEN);
        if (p == NULL) {
            return -1;
        }
        hs->h = p;
        hs->cap = ncap;
    }

    memcpy(hs->h + (size_t) hs->n * CEF_HASH_LEN, h, CEF_HASH_LEN);
    hs->n++;

    return 0;
}


/* Append to hs the keys under a hint (16 bits) that point at number. */

static int
cef_w_index_collect(cef_writer_t *w, uint16_t hint, uint32_t number,
    cef_hashes_t *hs)
{
    size_t    len, i, il;
    uint8_t   h[CEF_HASH_LEN];
    uint32_t  b, first, last;

    il = cef_store_bucket_item_len(&w->kcfg);
    first = (uint32_t) hint << (w->kcfg.bits - 16);
    last = first + ((uint32_t) 1 << (w->kcfg.bits - 16));

    for (b = first; b < last; b++) {
        if (cef_w_bucket_get(w, w->index, b, 0, &len) != 0) {
            return -1;
        }

        for (i = 0; i < len / il; i++) {
            if (cef_store_bucket_number(&w->kcfg, w->bval, i) != number) {
                continue;
            }

            h[0] = (uint8_t) (hint >> 8);
            h[1] = (uint8_t) hint;
            memcpy(h + 2, w->bval + i * il, w->kcfg.rest);

            if (cef_w_hashes_add(hs, h) != 0) {
                cef_w_err(w, "out of memory");
                return -1;
            }
        }
    }

    return 0;
}


/* All the keys of a profile, found through its hints. */

int
cef_w_profile_keys(cef_writer_t *w, const cef_stored_t *st, uint32_t number,
    cef_hashes_t *hs)
{
    uint32_t  i;

    hs->n = 0;

    for (i = 0; i < st->nhints; i++) {
        if (cef_w_index_collect(w, st->hints[i], number, hs) != 0) {
            return -1;
        }
    }

    return 0;
}


static int
cef_w_load_stored(cef_writer_t *w, uint32_t number, cef_stored_t *st)
{
    int             rc;
    size_t          len;
    uint32_t        i;
    const uint8_t  *blob;
    cef_dict_t      dict;
    cef_profile_t   prof;

    rc = cef_w_prof_get(w, number, &blob, &len);
    if (rc != 0) {
        if (rc > 0) {
            cef_w_err(w, "profile %u is missing", number);
        }
        return -1;
    }

    if (cef_w_grow(w, &w->scratch, &w->scratch_cap, len) != 0) {
        return -1;
    }

    memcpy(w->scratch, blob, len);

    memset(&dict, 0, sizeof(dict));
    dict.names = w->enc.names.tab;
    dict.strs = w->enc.strs.tab;

    if (cef_profile_parse(w->scratch, len, &dict, &prof) != 0) {
        cef_w_err(w, "stored profile %u is malformed", number);
        return -1;
    }

    st->nhints = prof.nhints;
    for (i = 0; i < prof.nhints; i++) {
        st->hints[i] = (uint16_t) ((prof.hints[2 * i] << 8)
                                   | prof.hints[2 * i + 1]);
    }

    memcpy(st->id, prof.id.data, prof.id.len);
    st->idlen = prof.id.len;
    st->attrs = (uint8_t *) prof.attrs;
    st->attrs_len = prof.attrs_len;

    return 0;
}


/* Start encoding a profile from its stored attributes. */

int
cef_w_begin_stored(cef_writer_t *w, const cef_stored_t *st, uint32_t number)
{
    size_t       pos = 0, start;
    uint64_t     attr;
    cef_value_t  v;

    cef_encode_begin(&w->enc);

    while (pos < st->attrs_len) {
        if (cef_value_decode_uint(st->attrs, st->attrs_len, &pos, &attr) != 0)
        {
            goto malformed;
        }

        start = pos;

        if (cef_value_decode(st->attrs, st->attrs_len, &pos,
                             &w->enc.strs.tab, &v) != 0)
        {
            goto malformed;
        }

        if (cef_encode_attr_raw(&w->enc, (uint32_t) attr, st->attrs + start,
                                pos - start) != 0)
        {
            cef_w_err(w, "out of memory");
            return -1;
        }
    }

    return 0;

malformed:

    cef_w_err(w, "stored profile %u is malformed", number);
    return -1;
}


int
cef_w_encode(cef_writer_t *w, const uint16_t *hints, uint32_t nhints,
    const char *id, size_t idlen)
{
    if (cef_encode_profile(&w->enc, hints, nhints, id, idlen) != 0) {
        cef_w_err(w, "out of memory");
        return -1;
    }

    return 0;
}


int
cef_w_put_profile(cef_writer_t *w, uint32_t number, const uint16_t *hints,
    uint32_t nhints, const char *id, size_t idlen)
{
    if (cef_w_encode(w, hints, nhints, id, idlen) != 0) {
        return -1;
    }

    return cef_w_prof_put(w, number, (uint8_t *) w->enc.blob.data,
                          w->enc.blob.size);
}


/* Find a profile by id: 0 found, 1 not found, -1 error. */

int
cef_w_find(cef_writer_t *w, const msgpack_object *id, uint8_t *idh,
    uint32_t *number, cef_stored_t *st)
{
    size_t    len, pos, il, n, i;
    uint32_t  b, cand[16];

    if (cef_w_hash(w, "", 0, id->via.str.ptr, id->via.str.size, idh) != 0) {
        return -1;
    }

    if (cef_w_bucket_of_key(w, w->ids, &w->icfg, idh, 0, &b, &len) != 0) {
        return -1;
    }

    il = cef_store_bucket_item_len(&w->icfg);
    cef_store_bucket_search(&w->icfg, w->bval, len, idh, &pos);

    /* candidates first: loading a profile does not touch w->bval, but be
       independent of that */

    for (n = 0; pos < len / il && n < 16
                && cef_store_bucket_match(&w->icfg, w->bval, pos, idh); pos++)
    {
        cand[n++] = cef_store_bucket_number(&w->icfg, w->bval, pos);
    }

    for (i = 0; i < n; i++) {
        if (cef_w_load_stored(w, cand[i], st) != 0) {
            return -1;
        }

        if (st->idlen == id->via.str.size
            && memcmp(st->id, id->via.str.ptr, st->idlen) == 0)
        {
            *number = cand[i];
            return 0;
        }
    }

    return 1;
}


/* Keep at most CEF_PROFILE_HINTS_MAX hints: drop the stale ones. */

int
cef_w_prune_hints(cef_writer_t *w, uint16_t *hints, uint32_t *n,
    uint32_t number)
{
    uint32_t      i, m = 0;
    cef_hashes_t  hs = { NULL, 0, 0 };

    for (i = 0; i < *n; i++) {
        hs.n = 0;
        if (cef_w_index_collect(w, hints[i], number, &hs) != 0) {
            free(hs.h);
            return -1;
        }
        if (hs.n) {
            hints[m++] = hints[i];
        }
    }

    free(hs.h);
    *n = m;

    if (m > CEF_PROFILE_HINTS_MAX) {
        cef_w_err(w, "a profile has keys in more than %d index buckets",
                  CEF_PROFILE_HINTS_MAX);
        return -1;
    }

    return 0;
}


/*
 * Limits a delta record can reach only against the stored state, checked
 * before the record writes anything so that a stream can refuse it alone
 * (cef_writer_stream_record()): a profile's room (cef_w_check_room()) and
 * the hint buckets its keys fill, at most CEF_PROFILE_HINTS_MAX.  They
 * return CEF_WRITER_EINPUT with the message set.
 */

/* The hint buckets the keys in hs fill, at most limit + 1. */

static uint32_t
cef_w_count_buckets(const cef_hashes_t *hs, uint32_t limit)
{
    uint16_t  seen[CEF_PROFILE_HINTS_MAX + 1];
    uint32_t  i, n = 0;

    for (i = 0; i < hs->n && n <= limit; i++) {
        cef_w_add_hint(seen, &n, cef_w_bucket(hs->h + (size_t) i
                                                      * CEF_HASH_LEN));
    }

    return n;
}


/* Remove from hs the keys equal to h (as the index stores them). */

static void
cef_w_hashes_remove(cef_writer_t *w, cef_hashes_t *hs, const uint8_t *h)
{
    size_t    len = 2 + w->kcfg.rest;
    uint32_t  i;

    for (i = 0; i < hs->n; i++) {
        if (memcmp(hs->h + (size_t) i * CEF_HASH_LEN, h, len) == 0) {
            memmove(hs->h + (size_t) i * CEF_HASH_LEN,
                    hs->h + (size_t) (i + 1) * CEF_HASH_LEN,
                    (size_t) (hs->n - i - 1) * CEF_HASH_LEN);
            hs->n--;
            i--;
        }
    }
}


/*
 * An op that may take a profile past CEF_PROFILE_HINTS_MAX buckets (keys,
 * merge): count the buckets its keys fill afterwards, before anything is
 * written.  Its keys now, less the remove list, plus the add list and the
 * keys in more (a merged profile's).
 */

int
cef_w_keys_fit(cef_writer_t *w, const cef_stored_t *st, uint32_t number,
    const msgpack_object *remove, const msgpack_object *add,
    const cef_hashes_t *more)
{
    int           rc = CEF_WRITER_OK;
    uint8_t       h[CEF_HASH_LEN];
    uint32_t      i;
    cef_hashes_t  hs = { NULL, 0, 0 };

    if (cef_w_profile_keys(w, st, number, &hs) != 0) {
        rc = -1;
        goto done;
    }

    for (i = 0; remove && i < remove->via.array.size; i++) {
        if (cef_w_hash_pair(w, &remove->via.array.ptr[i], h) != 0) {
            rc = -1;
            goto done;
        }
        cef_w_hashes_remove(w, &hs, h);
    }

    for (i = 0; add && i < add->via.array.size; i++) {
        if (cef_w_hash_pair(w, &add->via.array.ptr[i], h) != 0) {
            rc = -1;
            goto done;
        }
        if (cef_w_hashes_add(&hs, h) != 0) {
            goto oom;
        }
    }

    for (i = 0; more && i < more->n; i++) {
        if (cef_w_hashes_add(&hs, more->h + (size_t) i * CEF_HASH_LEN) != 0) {
            goto oom;
        }
    }

    if (cef_w_count_buckets(&hs, CEF_PROFILE_HINTS_MAX)
        > CEF_PROFILE_HINTS_MAX)
    {
        rc = cef_w_bad(w, "the profile's keys would fill more than %d "
                       "index buckets (too many keys)",
                       CEF_PROFILE_HINTS_MAX);
    }

done:

    free(hs.h);
    return rc;

oom:

    free(hs.h);
    cef_w_err(w, "out of memory");
    return -1;
}
