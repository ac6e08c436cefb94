/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_rules_visitor: profile.* and visitor.* from a stored profile.
 */

#include <stdint.h>
#include <string.h>

#include "cef_rules_visitor.h"


/*
 * cef_dict_name_id() with the name's hash already known (a rule's
 * references are hashed when the rule file is compiled);
 * tests/unit/test_rules_profile.c checks that both agree.
 */
int64_t
cef_rules_dict_find(const cef_dict_t *dict, cef_span_t name, uint32_t hash)
{
    if (dict == NULL || dict->names_hash == NULL) {
        return -1;
    }

    return cef_dict_probe(dict->names_hash, dict->names_mask, dict->names.s,
                          dict->names.n, hash, name);
}


/*
 * The dictionary id of a profile reference's attribute.  It is the same
 * decision after decision while the store keeps its dictionary, so the
 * id found last is kept in the reference (ref->hint, id + 1) and tried
 * first: names are unique in a dictionary, so if the id still names this
 * attribute it is the id; if not (another store generation, another
 * store with the same rule set, a hint written by another thread), the
 * dictionary is probed as before.  That saves the probe's hash table
 * (a cache line per attribute in a cold worker) and its collisions.
 */
static int64_t
cef_rules_visitor_attr_id(const cef_dict_t *dict, const cef_ref_t *ref)
{
    uint32_t           h;
    int64_t            attr;
    const cef_span_t  *e;

    if (dict == NULL) {
        return -1;
    }

    h = __atomic_load_n(&ref->hint, __ATOMIC_RELAXED);

    if (h != 0 && h <= dict->names.n) {
        e = &dict->names.s[h - 1];

        if (e->len == ref->name.len
            && (e->len == 0 || memcmp(e->data, ref->name.data, e->len) == 0))
        {
            return h - 1;
        }
    }

    attr = cef_rules_dict_find(dict, ref->name, ref->hash);

    if (attr >= 0 && attr < UINT32_MAX) {
        /* the reference is the rule set's, shared by every decision with
           it; only this hint is ever written */
        __atomic_store_n((uint32_t *) &ref->hint, (uint32_t) attr + 1,
                         __ATOMIC_RELAXED);
    }

    return attr;
}


void
cef_rules_visitor_init(cef_rules_visitor_t *vis,
    const cef_profile_t *profile, int visitor_new, cef_span_t key_type)
{
    vis->profile = profile;
    vis->visitor_new = visitor_new;
    vis->key_type = key_type;
    vis->nindex = 0;
    vis->indexed = 0;
    vis->partial = 0;
}


/*
 * One pass over the profile: where each attribute's value starts.  The
 * values are checked as cef_value_decode() checks them, so a profile
 * malformed anywhere in its first CEF_RULES_VISITOR_INDEX attributes is
 * as absent as it was when this pass decoded them all, and the lookups'
 * decoding cannot fail.
 */
static void
cef_rules_visitor_index(cef_rules_visitor_t *vis)
{
    const cef_profile_t  *p = vis->profile;
    const uint8_t        *a = p->attrs;
    const cef_strtab_t   *strs = &p->dict->strs;
    size_t                pos = 0, start, len = p->attrs_len;
    uint32_t              n = 0;
    uint64_t              attr;

    vis->partial = 0;
    vis->indexed = 1;
    memset(vis->at, 0, sizeof(vis->at));

    if (len > UINT32_MAX) {
        vis->indexed = 2;
        return;
    }

    while (pos < len) {
        if (n == CEF_RULES_VISITOR_INDEX) {
            vis->partial = 1;
            break;
        }

        /* attribute ids are small: one byte, a positive fixint, as a
           rule; cef_value_decode_uint() for the others */

        start = pos;

        if (a[pos] <= 0x7f) {
            attr = a[pos++];

        } else if (cef_value_decode_uint(a, len, &pos, &attr) != 0
                   || attr > UINT32_MAX)
        {
            vis->indexed = 2;
            break;
        }

        vis->attrs[n] = (uint32_t) attr;
        vis->offs[n] = (uint32_t) start;

        if (attr < CEF_RULES_VISITOR_INDEX && vis->at[attr] == 0) {
            vis->at[attr] = (uint8_t) (n + 1);      /* the first, as the
                                                       search finds */
        }

        if (cef_value_skip(a, len, &pos, strs) != 0) {
            vis->indexed = 2;
            break;
        }

        n++;
    }

    vis->nindex = n;
    vis->offs[n] = (uint32_t) pos;          /* entry n - 1's value ends */
}


/*
 * Entry k's value, between its attribute id and entry k + 1.  The index
 * pass read the id with cef_value_decode_uint(): a positive fixint or
 * 0xcc-0xcf and 1, 2, 4 or 8 bytes.
 */
static inline __attribute__((always_inline)) int
cef_rules_visitor_value(const cef_rules_visitor_t *vis, uint32_t k,
    cef_value_t *out)
{
    const cef_profile_t  *p = vis->profile;
    const uint8_t        *a = p->attrs;
    size_t                pos = vis->offs[k];

    pos += a[pos] <= 0x7f ? 1 : 1 + ((size_t) 1 << (a[pos] - 0xcc));

    return cef_value_decode_known(a, pos, vis->offs[k + 1], &p->dict->strs,
                                  out) == 0;
}


static int
cef_rules_visitor_attr(cef_rules_visitor_t *vis, uint32_t attr,
    cef_value_t *out)
{
    const cef_profile_t  *p = vis->profile;
    uint32_t              lo, hi, mid;

    if (!vis->indexed) {
        cef_rules_visitor_index(vis);
    }

    if (vis->indexed == 2) {
        return 0;
    }

    /* the dictionary numbers names from 0 as it meets them: the
       attributes of most stores are below 64, found without a search */

    if (attr < CEF_RULES_VISITOR_INDEX) {
        lo = vis->at[attr];

        if (lo) {
            return cef_rules_visitor_value(vis, lo - 1, out);
        }

        if (!vis->partial) {
            return 0;
        }
    }

    lo = 0;
    hi = vis->nindex;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        if (vis->attrs[mid] < attr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }

    if (lo < vis->nindex && vis->attrs[lo] == attr) {
        return cef_rules_visitor_value(vis, lo, out);
    }

    /* beyond the index: the profile's own (linear) lookup */

    if (vis->partial && (vis->nindex == 0
                         || attr > vis->attrs[vis->nindex - 1]))
    {
        return cef_profile_get_attr(p, attr, out) == 1;
    }

    return 0;
}


int
cef_rules_visitor_lookup(void *data, const cef_ref_t *ref, cef_value_t *out)
{
    cef_rules_visitor_t  *vis = data;
    int64_t               attr;

    switch (ref->kind) {

    case CEF_REF_PROFILE:
        if (vis->profile == NULL) {
            return 0;
        }

        attr = cef_rules_visitor_attr_id(vis->profile->dict, ref);
        if (attr < 0) {
            return 0;
        }

        return cef_rules_visitor_attr(vis, (uint32_t) attr, out);

    case CEF_REF_VISITOR_NEW:
        if (vis->visitor_new < 0) {
            return 0;
        }

        out->type = CEF_VAL_BOOL;
        out->u.b = vis->visitor_new != 0;
        return 1;

    case CEF_REF_VISITOR_KEY_TYPE:
        if (vis->key_type.len == 0) {
            return 0;
        }

        out->type = CEF_VAL_STR;
        out->u.s = vis->key_type;
        return 1;

    default:
        return 0;
    }
}
