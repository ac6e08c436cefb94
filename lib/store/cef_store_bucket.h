/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Part of lib/store (see cef_store.h for what the folder may include).
 *
 * cef_store_bucket: the layout of the store's two hash indexes ("index":
 * identity keys, "ids": profile ids).  Plain C11, no nginx types.
 *
 * An index maps 16-byte hashes to profile numbers.  Hashes are grouped in
 * 2^bits buckets by their first `bits` bits (16 <= bits <= 24, chosen at
 * load time so that a bucket holds about a dozen entries).  One LMDB record
 * per bucket:
 *
 *   key    CEF_STORE_BUCKET_KEY_LEN bytes, the bucket number, big-endian
 *   value  sorted items of (rest + 4) bytes: bytes 2 .. 2+rest of the hash,
 *          then the profile number (uint32_t, host order)
 *
 * Packing a bucket into one record costs LMDB's per-record overhead once
 * per dozen entries instead of once per entry, and a lookup is one
 * mdb_get() and a binary search.  "index" keeps rest = 14 (the whole
 * 16-byte key).  "ids" keeps rest = 6 (8 bytes of the hash): equal
 * truncated hashes are allowed there, since a lookup by id compares the id
 * stored in the profile.
 */

#ifndef CEF_STORE_BUCKET_H
#define CEF_STORE_BUCKET_H

#include <stddef.h>
#include <stdint.h>


#define CEF_STORE_BUCKET_KEY_LEN    3
#define CEF_STORE_BUCKET_BITS_MIN   16
#define CEF_STORE_BUCKET_BITS_MAX   24
#define CEF_STORE_BUCKET_REST_KEYS  14
#define CEF_STORE_BUCKET_REST_IDS   6


typedef struct {
    unsigned  bits;      /* bucket bits */
    size_t    rest;      /* hash bytes kept in an item, after the first 2 */
} cef_store_bucket_cfg_t;


/* The bucket number of a hash. */
uint32_t cef_store_bucket_of(const cef_store_bucket_cfg_t *c,
    const uint8_t *hash);

/* The LMDB key of a bucket number. */
void cef_store_bucket_key(uint32_t bucket,
    uint8_t key[CEF_STORE_BUCKET_KEY_LEN]);

/* Bytes per item. */
size_t cef_store_bucket_item_len(const cef_store_bucket_cfg_t *c);

/*
 * Binary search of a bucket value for a hash.
 *
 * @param[in]  c     the index layout
 * @param[in]  val   the bucket's value
 * @param[in]  len   its length (a multiple of the item length)
 * @param[in]  hash  the 16-byte hash
 * @param[out] pos   index of the first item whose stored hash bytes are
 *                   >= the hash's (the insertion point)
 * @return 1 if the item at *pos matches the hash, else 0.
 */
int cef_store_bucket_search(const cef_store_bucket_cfg_t *c, const uint8_t *val,
    size_t len, const uint8_t *hash, size_t *pos);

/* The profile number of item i. */
uint32_t cef_store_bucket_number(const cef_store_bucket_cfg_t *c,
    const uint8_t *val, size_t i);

/* 1 if item i holds the hash's stored bytes. */
int cef_store_bucket_match(const cef_store_bucket_cfg_t *c,
    const uint8_t *val, size_t i, const uint8_t *hash);

/*
 * Bucket bits for an index of n entries: about 12 entries per bucket.
 */
unsigned cef_store_bucket_bits_for(uint64_t n, unsigned per_bucket);


#endif /* CEF_STORE_BUCKET_H */
