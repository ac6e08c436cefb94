/*
 * Copyright (C) ngx_cef_module developers
 *
 * cef_rules internals shared by the loader and the decision code.
 */

#ifndef CEF_RULES_INT_H
#define CEF_RULES_INT_H

#include "cef_rules.h"


struct cef_rules_s {
    cef_offer_t        *offers;
    uint32_t            noffers;
    cef_rule_t         *rules;
    uint32_t            nrules;
    uint32_t           *order;      /* rule indexes by priority, file order */
    char              **slots;
    uint32_t            nslots;
    uint32_t           *rule_offers; /* backing store of cef_rule_t.offers */
    cef_expr_symtab_t  *st;
    char                hash[65];
};


#endif /* CEF_RULES_INT_H */
