/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 */

#include <string.h>

#include "cef_store_bucket.h"


uint32_t
cef_store_bucket_of(const cef_store_bucket_cfg_t *c, const uint8_t *hash)
{
    uint32_t  v;

    v = ((uint32_t) hash[0] << 16) | ((uint32_t) hash[1] << 8) | hash[2];

    return v >> (24 - c->bits);
}


void
cef_store_bucket_key(uint32_t bucket, uint8_t key[CEF_STORE_BUCKET_KEY_LEN])
{
    key[0] = (uint8_t) (bucket >> 16);
    key[1] = (uint8_t) (bucket >> 8);
    key[2] = (uint8_t) bucket;
}


size_t
cef_store_bucket_item_len(const cef_store_bucket_cfg_t *c)
{
    return c->rest + sizeof(uint32_t);
}


int
cef_store_bucket_search(const cef_store_bucket_cfg_t *c, const uint8_t *val,
    size_t len, const uint8_t *hash, size_t *pos)
{
    size_t    n, il, i;
    uint64_t  v;

    il = cef_store_bucket_item_len(c);
    n = len / il;

    if (n == 0) {
        *pos = 0;
        return 0;
    }

    /*
     * Hashes are uniform: the 16 bits after the bucket's prefix predict
     * where the item sits (interpolation), so a lookup reads one or two
     * cache lines of the bucket instead of a binary search's log2(n).
     */

    v = ((uint64_t) hash[0] << 56) | ((uint64_t) hash[1] << 48)
        | ((uint64_t) hash[2] << 40) | ((uint64_t) hash[3] << 32)
        | ((uint64_t) hash[4] << 24) | ((uint64_t) hash[5] << 16)
        | ((uint64_t) hash[6] << 8) | hash[7];
    i = (size_t) ((((v << c->bits) >> 48) * n) >> 16);

    if (memcmp(val + i * il, hash + 2, c->rest) < 0) {
        do {
            i++;
        } while (i < n && memcmp(val + i * il, hash + 2, c->rest) < 0);

    } else {
        while (i > 0 && memcmp(val + (i - 1) * il, hash + 2, c->rest) >= 0) {
            i--;
        }
    }

    *pos = i;

    return i < n && memcmp(val + i * il, hash + 2, c->rest) == 0;
}


uint32_t
cef_store_bucket_number(const cef_store_bucket_cfg_t *c, const uint8_t *val,
    size_t i)
{
    uint32_t  n;

    memcpy(&n, val + i * cef_store_bucket_item_len(c) + c->rest, sizeof(n));
    return n;
}


int
cef_store_bucket_match(const cef_store_bucket_cfg_t *c, const uint8_t *val,
    size_t i, const uint8_t *hash)
{
    return memcmp(val + i * cef_store_bucket_item_len(c), hash + 2, c->rest)
           == 0;
}


unsigned
cef_store_bucket_bits_for(uint64_t n, unsigned per_bucket)
{
    unsigned  bits = CEF_STORE_BUCKET_BITS_MIN;

    while (bits < CEF_STORE_BUCKET_BITS_MAX
           && (n / per_bucket) > ((uint64_t) 1 << bits))
    {
        bits++;
    }

    return bits;
}
