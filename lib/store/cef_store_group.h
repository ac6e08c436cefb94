/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Part of lib/store (see cef_store.h for what the folder may include).
 *
 * cef_store_group: how the "profiles" database packs stored profiles.
 * Plain C11, no nginx types.
 *
 * Profiles are stored CEF_STORE_GROUP_SLOTS to an LMDB record: key = profile
 * number >> CEF_STORE_GROUP_SHIFT (uint32_t, MDB_INTEGERKEY), value =
 *
 *   u16    len[CEF_STORE_GROUP_SLOTS]    little-endian; 0 = empty slot
 *   bytes  the slots' stored profiles, back to back
 *
 * Fewer, larger records make a lookup's binary search inside an LMDB page
 * shorter (fewer cache misses) and spread LMDB's per-record overhead over
 * four profiles.  A stored profile is at most 65535 bytes.
 */

#ifndef CEF_STORE_GROUP_H
#define CEF_STORE_GROUP_H

#include <stddef.h>
#include <stdint.h>


#define CEF_STORE_GROUP_SHIFT   2
#define CEF_STORE_GROUP_SLOTS   (1 << CEF_STORE_GROUP_SHIFT)
#define CEF_STORE_GROUP_HEAD    (2 * CEF_STORE_GROUP_SLOTS)
#define CEF_STORE_GROUP_MAX     65535


/* The LMDB key of a profile's group. */
uint32_t cef_store_group_of(uint32_t number);

/*
 * Find a profile in a group value.
 *
 * @param[in]  val     the group's value
 * @param[in]  len     its length
 * @param[in]  number  the profile number
 * @param[out] p       the stored profile
 * @param[out] plen    its length; 0 if the slot is empty
 * @return 0, or -1 if the value is malformed.
 */
int cef_store_group_slot(const uint8_t *val, size_t len, uint32_t number,
    const uint8_t **p, size_t *plen);

/*
 * Build a group value.
 *
 * @param[out] out   CEF_STORE_GROUP_HEAD + the sum of lens bytes
 * @param[in]  p     the slots' stored profiles (NULL if empty)
 * @param[in]  lens  their lengths (0 if empty), each <= CEF_STORE_GROUP_MAX
 * @return the value's length.
 */
size_t cef_store_group_build(uint8_t *out, const uint8_t *const *p,
    const size_t *lens);


#endif /* CEF_STORE_GROUP_H */
