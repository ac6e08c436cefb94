/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Part of lib/rules: what the folder may include, and what must not
 * include it, is said at the top of cef_rules.h.
 *
 * cef_rules_visitor: rule inputs from a stored profile (cef_profile.h) and
 * what is known of the visitor: the lookup for profile.* and visitor.*
 * paths.  Reads the profile in place, copies nothing, allocates nothing.
 *
 * Attribute names are not hashed per request: a reference's hash
 * (cef_ref_t.hash, FNV-1a) is the store dictionary's hash
 * (cef_dict_hash()), so the dictionary is probed with the hash computed
 * when the rules were compiled, and only when the id the reference kept
 * from the last decision (cef_ref_t.hint) no longer names its attribute.
 */

#ifndef CEF_RULES_VISITOR_H
#define CEF_RULES_VISITOR_H

#include "cef_expr.h"
#include "cef_profile.h"


#define CEF_RULES_VISITOR_INDEX  64


typedef struct {
    const cef_profile_t  *profile;      /* NULL: no profile */
    int                   visitor_new;  /* 1, 0, or -1 if unknown (null) */
    cef_span_t            key_type;     /* empty if not recognised (null) */

    /*
     * Where the first CEF_RULES_VISITOR_INDEX attributes start, found by
     * the first profile lookup in one pass over the profile that steps
     * over the values (cef_value_skip(): checked, not decoded), so that a
     * lookup decodes only the value it asks for: a rule set reading 8 of
     * a profile's 18 attributes decodes those 8, and no interned string
     * of the others is read from the dictionary.  Zeroed (or set up by
     * cef_rules_visitor_init()) before the first lookup; stale once
     * profile changes: call cef_rules_visitor_init() again.
     */
    uint32_t              nindex;       /* entries, once built */
    uint8_t               indexed;      /* 0: not built yet; 2: malformed */
    uint8_t               partial;      /* more attributes than entries */
    uint32_t              attrs[CEF_RULES_VISITOR_INDEX];  /* ascending */
    uint32_t              offs[CEF_RULES_VISITOR_INDEX + 1];
                                        /* where entry n's attribute id
                                           starts in attrs, and entry
                                           nindex - 1's value ends: a
                                           value is decoded between the
                                           two without checking its
                                           elements again */
    uint8_t               at[CEF_RULES_VISITOR_INDEX];     /* attribute
                                           id < 64: 1 + its entry, 0 */
} cef_rules_visitor_t;


/*
 * Set up a visitor for lookups.
 *
 * @param[in] profile      the stored profile, or NULL
 * @param[in] visitor_new  1, 0, or -1 (unknown)
 * @param[in] key_type     the key type the visitor was recognised by, or
 *                         an empty span
 */
void cef_rules_visitor_init(cef_rules_visitor_t *vis,
    const cef_profile_t *profile, int visitor_new, cef_span_t key_type);


/*
 * A cef_expr_ctx_t lookup: data is a cef_rules_visitor_t.  Answers
 * CEF_REF_PROFILE (the attribute of that name in the profile),
 * CEF_REF_VISITOR_NEW and CEF_REF_VISITOR_KEY_TYPE; returns 0 (null) for
 * every other reference, for a missing attribute, and for a malformed
 * profile.
 */
int cef_rules_visitor_lookup(void *data, const cef_ref_t *ref,
    cef_value_t *out);

/*
 * The attribute id of a name in a dictionary, by a precomputed hash.
 *
 * @param[in] hash  cef_dict_hash(name) (== cef_expr_hash(name))
 * @return the id, or -1 if the dictionary has no such name.
 */
int64_t cef_rules_dict_find(const cef_dict_t *dict, cef_span_t name,
    uint32_t hash);


#endif /* CEF_RULES_VISITOR_H */
