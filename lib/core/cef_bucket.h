/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Folder lib/core: the vocabulary every other folder speaks (values and
 * spans, base64url, experiment bucketing, text checks, the version).  It
 * includes nothing of ours; every folder, the glue and the tools may
 * include it.
 *
 * cef_bucket: deterministic experiment bucketing.  A visitor's bucket for a
 * salt (an experiment's name or its explicit salt) is
 *
 *     h      = fmix64(FNV-1a-64(salt "\0" visitor_id))
 *     bucket = ((h >> 32) * 10000) >> 32            (0 .. 9999)
 *
 * so it depends on nothing but the two strings: the same on every request,
 * edge, reload and rule file edit, and independent between salts (adding
 * an experiment or a rule never moves anyone in another experiment).  Not
 * keyed: visitor ids are random, unguessable 128-bit values already.
 * About 20 ns for a 22-character id.  Plain C11, no nginx types.
 */

#ifndef CEF_BUCKET_H
#define CEF_BUCKET_H

#include <stddef.h>
#include <stdint.h>


#define CEF_BUCKETS  10000

#define CEF_BUCKET_FNV_OFFSET  0xcbf29ce484222325ULL
#define CEF_BUCKET_FNV_PRIME   0x100000001b3ULL


/*
 * The two halves of the hash above, for any other 64-bit digest that wants
 * the same mixing (the decision record's profile digest): FNV-1a-64 over
 * len bytes, continuing from h (start from CEF_BUCKET_FNV_OFFSET), and
 * MurmurHash3's 64-bit finaliser, after which every input bit affects every
 * output bit.  Inline: they sit on the per-request path.
 */
static inline uint64_t
cef_bucket_fnv(uint64_t h, const void *data, size_t len)
{
    const uint8_t  *p = data;
    size_t          i;

    for (i = 0; i < len; i++) {
        h ^= p[i];
        h *= CEF_BUCKET_FNV_PRIME;
    }

    return h;
}


static inline uint64_t
cef_bucket_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;

    return h;
}


/* The 64-bit hash above (exposed for sticky choices and tests). */
uint64_t cef_bucket_hash(const char *salt, size_t slen, const char *id,
    size_t idlen);

/*
 * The bucket of a visitor for a salt.
 *
 * @return 0 .. CEF_BUCKETS - 1.  An empty id still yields a bucket; callers
 *         check for a known visitor first.
 */
uint32_t cef_bucket(const char *salt, size_t slen, const char *id,
    size_t idlen);


#endif /* CEF_BUCKET_H */
