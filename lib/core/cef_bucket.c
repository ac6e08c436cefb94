/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 */

#include "cef_bucket.h"


uint64_t
cef_bucket_hash(const char *salt, size_t slen, const char *id, size_t idlen)
{
    uint64_t  h;

    h = cef_bucket_fnv(CEF_BUCKET_FNV_OFFSET, salt, slen);
    h = cef_bucket_fnv(h, "", 1);                   /* the "\0" separator */
    h = cef_bucket_fnv(h, id, idlen);

    return cef_bucket_mix(h);
}


uint32_t
cef_bucket(const char *salt, size_t slen, const char *id, size_t idlen)
{
    uint64_t  h = cef_bucket_hash(salt, slen, id, idlen) >> 32;

    return (uint32_t) ((h * CEF_BUCKETS) >> 32);
}
