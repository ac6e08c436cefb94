/*
 * Copyright (C) ngx_cef_module developers
 */

#include "cef_bucket.h"


uint64_t
cef_bucket_hash(const char *salt, size_t slen, const char *id, size_t idlen)
{
    size_t    i;
    uint64_t  h = 0xcbf29ce484222325ULL;

    for (i = 0; i < slen; i++) {
        h ^= (uint8_t) salt[i];
        h *= 0x100000001b3ULL;
    }

    h ^= 0;
    h *= 0x100000001b3ULL;

    for (i = 0; i < idlen; i++) {
        h ^= (uint8_t) id[i];
        h *= 0x100000001b3ULL;
    }

    /* MurmurHash3's finaliser: every input bit affects every output bit */

    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;

    return h;
}


uint32_t
cef_bucket(const char *salt, size_t slen, const char *id, size_t idlen)
{
    uint64_t  h = cef_bucket_hash(salt, slen, id, idlen) >> 32;

    return (uint32_t) ((h * CEF_BUCKETS) >> 32);
}
