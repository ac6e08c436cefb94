/*
 * Copyright (C) ngx_cef_module developers
 *
 * lib/rules internals: the compiled rule set, shared by the loader
 * (cef_rules_load.c), cef_rules.c and lib/decision's loop
 * (cef_decision.c), the one reader outside the folder.
 */

#ifndef CEF_RULES_INT_H
#define CEF_RULES_INT_H

#include "cef_rules.h"
#include "cef_plugins.h"


/* A plugin bound to a rule set: per slot (strategy) or per rule set. */
typedef struct {
    const cef_plugin_t *p;
    void               *state;
    uint8_t             all;        /* strategy wants every candidate */
    uint8_t             set;        /* named under slots: */
} cef_plugin_inst_t;


/* The decision's view of the rules: compact, in priority order. */
typedef struct {
    const cef_expr_t   *when;
    uint32_t            rule;
    uint32_t            first;      /* index in plan_offers */
    uint32_t            n;
    uint32_t            simple;     /* one offer, no schedule: the common
                                       case, decided from slot and offer
                                       without reading plan_offers */
    uint32_t            slot;       /* simple: its slot and offer */
    uint32_t            offer;
} cef_plan_rule_t;


typedef struct {
    int64_t             starts;
    int64_t             ends;
    uint32_t            slot;
    uint32_t            offer;
} cef_plan_offer_t;


struct cef_rules_s {
    cef_offer_t        *offers;
    uint32_t            noffers;
    cef_rule_t         *rules;
    uint32_t            nrules;
    uint32_t           *order;      /* rule indexes by priority, file order */
    char              **slots;
    uint32_t            nslots;
    uint32_t           *rule_offers; /* backing store of cef_rule_t.offers */
    cef_plan_rule_t    *plan;
    cef_plan_offer_t   *plan_offers;
    cef_expr_symtab_t  *st;
    uint32_t           *ref_pos;    /* per reference: line, col of its
                                       first use; 0, 0 if none */
    uint32_t            nref_pos;   /* references with room in ref_pos */
    char                hash[65];

    cef_plugin_offer_t *poffers;    /* the offers as plugins see them */
    cef_plugin_inst_t  *strategy;   /* per slot */
    cef_plugin_inst_t  *active;     /* plugins with per-decision hooks */
    uint32_t            nactive;
    cef_expr_t        **pexprs;     /* compiled for plugins */
    uint32_t            npexprs;
    unsigned            plugged:1;  /* anything but plain priority */
};


/* Build rs->plan from rs->order; 0, or -1 when out of memory. */
int cef_rules_plan(cef_rules_t *rs);


#endif /* CEF_RULES_INT_H */
