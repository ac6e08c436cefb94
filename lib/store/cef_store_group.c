/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 */

#include <string.h>

#include "cef_store_group.h"


uint32_t
cef_store_group_of(uint32_t number)
{
    return number >> CEF_STORE_GROUP_SHIFT;
}


int
cef_store_group_slot(const uint8_t *val, size_t len, uint32_t number,
    const uint8_t **p, size_t *plen)
{
    size_t    off, l, i, slot;

    if (len < CEF_STORE_GROUP_HEAD) {
        return -1;
    }

    slot = number & (CEF_STORE_GROUP_SLOTS - 1);
    off = CEF_STORE_GROUP_HEAD;

    for (i = 0; i < slot; i++) {
        off += (size_t) val[2 * i] | ((size_t) val[2 * i + 1] << 8);
    }

    l = (size_t) val[2 * slot] | ((size_t) val[2 * slot + 1] << 8);

    if (off > len || len - off < l) {
        return -1;
    }

    *p = val + off;
    *plen = l;

    return 0;
}


size_t
cef_store_group_build(uint8_t *out, const uint8_t *const *p, const size_t *lens)
{
    size_t  i, off;

    off = CEF_STORE_GROUP_HEAD;

    for (i = 0; i < CEF_STORE_GROUP_SLOTS; i++) {
        out[2 * i] = (uint8_t) lens[i];
        out[2 * i + 1] = (uint8_t) (lens[i] >> 8);

        if (lens[i]) {
            memcpy(out + off, p[i], lens[i]);
            off += lens[i];
        }
    }

    return off;
}
