/*
 * Copyright (C) ngx_cef_module developers
 *
 * cef_rules_profile: profile.* and visitor.* from a stored profile.
 */

#include <string.h>

#include "cef_rules_profile.h"


/*
 * The same probe as cef_dict_name_id() (linear probing of (id + 1) in
 * names_hash), minus hashing the name; tests/unit/test_rules_profile.c
 * checks that both agree.
 */
int64_t
cef_rules_dict_find(const cef_dict_t *dict, cef_span_t name, uint32_t hash)
{
    uint32_t           slot, id, n;
    const cef_span_t  *s;

    if (dict == NULL || dict->names_hash == NULL) {
        return -1;
    }

    for (slot = hash & dict->names_mask, n = 0;
         n <= dict->names_mask;
         slot = (slot + 1) & dict->names_mask, n++)
    {
        id = dict->names_hash[slot];
        if (id == 0 || id > dict->names.n) {
            return -1;
        }

        s = &dict->names.s[id - 1];

        if (s->len == name.len
            && (name.len == 0 || memcmp(s->data, name.data, name.len) == 0))
        {
            return id - 1;
        }
    }

    return -1;
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

        attr = cef_rules_dict_find(vis->profile->dict, ref->name, ref->hash);
        if (attr < 0) {
            return 0;
        }

        return cef_profile_get_attr(vis->profile, (uint32_t) attr, out) == 1;

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
