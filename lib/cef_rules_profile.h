/*
 * Copyright (C) ngx_cef_module developers
 *
 * cef_rules_profile: rule inputs from a stored profile (cef_profile.h) and
 * what is known of the visitor: the lookup for profile.* and visitor.*
 * paths.  Reads the profile in place, copies nothing, allocates nothing.
 *
 * Attribute names are not hashed per request: a reference's hash
 * (cef_ref_t.hash, FNV-1a) is the store dictionary's hash
 * (cef_dict_hash()), so the dictionary is probed with the hash computed
 * when the rules were compiled.
 */

#ifndef CEF_RULES_PROFILE_H
#define CEF_RULES_PROFILE_H

#include "cef_expr.h"
#include "cef_profile.h"


typedef struct {
    const cef_profile_t  *profile;      /* NULL: no profile */
    int                   visitor_new;  /* 1, 0, or -1 if unknown (null) */
    cef_span_t            key_type;     /* empty if not recognised (null) */
} cef_rules_visitor_t;


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


#endif /* CEF_RULES_PROFILE_H */
