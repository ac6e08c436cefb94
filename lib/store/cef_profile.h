/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Part of lib/store (see cef_store.h for what the folder may include).
 *
 * cef_profile: one stored profile, read in place.  Plain C11, no nginx
 * types.
 *
 * A stored profile (the value of the store's "profiles" database) is
 *
 *   u8     format      CEF_PROFILE_FORMAT
 *   u8     nhints      number of key hints
 *   u16    hints[]     big-endian; the index buckets holding its keys
 *   u8     idlen
 *   char   id[idlen]   the profile id
 *   map                msgpack map: attribute id (uint) -> value, in
 *                      ascending attribute id order; values as described
 *                      in cef_value.h (cef_value_decode)
 *
 * Attribute ids and interned strings are resolved through a cef_dict_t,
 * the store's dictionary.
 */

#ifndef CEF_PROFILE_H
#define CEF_PROFILE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cef_value.h"


#define CEF_PROFILE_FORMAT     1
#define CEF_PROFILE_ID_MAX     255
#define CEF_PROFILE_HINTS_MAX  255


/*
 * The store's dictionary: attribute names and interned strings, by id.
 * names_hash is an open-addressing table of (name id + 1), 0 = empty,
 * names_mask + 1 slots.
 */
typedef struct {
    cef_strtab_t   names;
    cef_strtab_t   strs;
    uint32_t      *names_hash;
    uint32_t       names_mask;
} cef_dict_t;


/* A view of a stored profile: it points into the stored bytes. */
typedef struct {
    cef_span_t         id;
    const uint8_t     *hints;     /* nhints big-endian u16 */
    uint32_t           nhints;
    const uint8_t     *attrs;     /* the attribute map, after its header */
    size_t             attrs_len;
    uint32_t           nattrs;
    const cef_dict_t  *dict;
} cef_profile_t;


/*
 * Parse the envelope of a stored profile.  Attribute values are decoded
 * lazily by the functions below.
 *
 * @param[in]  blob  the stored bytes
 * @param[in]  len   their length
 * @param[in]  dict  the dictionary of the store the bytes come from
 * @param[out] p     the view; valid as long as blob and dict are
 * @return 0 on success, -1 if the envelope is malformed.
 */
int cef_profile_parse(const uint8_t *blob, size_t len, const cef_dict_t *dict,
    cef_profile_t *p);

/*
 * The next attribute, in attribute id order.
 *
 * @param[in]     p     a profile view
 * @param[in,out] pos   iteration state; start at 0
 * @param[out]    name  the attribute name
 * @param[out]    val   its value
 * @return 1 if an attribute was produced, 0 at the end, -1 if the profile is
 *         malformed (stop iterating).
 */
int cef_profile_next(const cef_profile_t *p, size_t *pos, cef_span_t *name,
    cef_value_t *val);

/*
 * Get an attribute by name.
 *
 * @return 1 and *val set if present, 0 if absent (or the name is unknown
 *         to the store), -1 if the profile is malformed.
 */
int cef_profile_get(const cef_profile_t *p, cef_span_t name,
    cef_value_t *val);

/*
 * Get an attribute by attribute id (see cef_dict_name_id(); ids are stable
 * for the life of a store generation).
 *
 * @return as cef_profile_get().
 */
int cef_profile_get_attr(const cef_profile_t *p, uint32_t attr,
    cef_value_t *val);

/*
 * Check that every attribute decodes and every id resolves.
 *
 * @return 0 if the profile is well formed, -1 if not.
 */
int cef_profile_validate(const cef_profile_t *p);

/*
 * The attribute id of a name.
 *
 * @return the id, or -1 if the dictionary has no such name.
 */
int64_t cef_dict_name_id(const cef_dict_t *dict, cef_span_t name);

/*
 * Rebuild dict->names_hash after dict->names changed.
 *
 * @return 0, or -1 if out of memory.
 */
int cef_dict_index(cef_dict_t *dict);

/* The hash cef_dict_t uses for names (FNV-1a, 32 bits). */
uint32_t cef_dict_hash(const char *s, size_t len);

/*
 * The index of a table of strings: the dictionary's names_hash, and the
 * writer's intern tables (lib/writer/cef_encode.c) use the same one.  It
 * has mask + 1 slots (a power of two) holding id + 1 of spans[id], 0 for
 * an empty slot, and a string is found by linear probing from
 * hash & mask, hash = cef_dict_hash(the string).
 *
 * cef_dict_probe returns the id of s, or -1 if the table does not hold
 * it (it stops after mask + 1 slots, and at an id beyond n, so a damaged
 * table cannot make it loop or read past spans).  cef_dict_slot_put puts
 * id into the first empty slot from hash; the caller keeps the table less
 * than full.
 */
static inline int64_t
cef_dict_probe(const uint32_t *table, uint32_t mask, const cef_span_t *spans,
    uint32_t n, uint32_t hash, cef_span_t s)
{
    uint32_t           slot, id, i;
    const cef_span_t  *e;

    /* inline: the rules look attributes up by name on every decision */

    for (slot = hash & mask, i = 0; i <= mask; slot = (slot + 1) & mask, i++)
    {
        id = table[slot];
        if (id == 0 || id > n) {
            return -1;
        }

        e = &spans[id - 1];

        if (e->len == s.len
            && (s.len == 0 || memcmp(e->data, s.data, s.len) == 0))
        {
            return id - 1;
        }
    }

    return -1;
}

void cef_dict_slot_put(uint32_t *table, uint32_t mask, uint32_t hash,
    uint32_t id);


#endif /* CEF_PROFILE_H */
