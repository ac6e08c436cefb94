/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_rules: the compiled rule set and the per-slot decision.
 */

#include <stdlib.h>
#include <string.h>

#include "cef_rules_int.h"


void
cef_rules_free(cef_rules_t *rs)
{
    uint32_t  i;

    if (rs == NULL) {
        return;
    }

    for (i = 0; rs->offers && i < rs->noffers; i++) {
        free((char *) rs->offers[i].name);
        free((char *) rs->offers[i].campaign);
        cef_template_free(rs->offers[i].html);
    }

    for (i = 0; rs->rules && i < rs->nrules; i++) {
        free((char *) rs->rules[i].name);
        cef_expr_free(rs->rules[i].when);
    }

    for (i = 0; i < rs->nslots; i++) {
        free(rs->slots[i]);
    }

    for (i = 0; rs->strategy && i < rs->nslots; i++) {
        if (rs->strategy[i].state && rs->strategy[i].p->slot_free) {
            rs->strategy[i].p->slot_free(rs->strategy[i].state);
        }
    }

    for (i = 0; i < rs->nactive; i++) {
        if (rs->active[i].p->free) {
            rs->active[i].p->free(rs->active[i].state);
        }
    }

    for (i = 0; i < rs->npexprs; i++) {
        cef_expr_free(rs->pexprs[i]);
    }

    cef_rules_goals_free(rs);
    free(rs->strategy);
    free(rs->active);
    free(rs->pexprs);
    free(rs->poffers);
    free(rs->slots);
    free(rs->offers);
    free(rs->rules);
    free(rs->rule_offers);
    free(rs->order);
    free(rs->plan);
    free(rs->plan_offers);
    cef_expr_index_free(rs->index);
    free(rs->ref_pos);
    cef_expr_symtab_free(rs->st);
    free(rs);
}


const char *
cef_rules_hash(const cef_rules_t *rs)
{
    return rs->hash;
}


uint32_t
cef_rules_noffers(const cef_rules_t *rs)
{
    return rs->noffers;
}


const cef_offer_t *
cef_rules_offer(const cef_rules_t *rs, uint32_t i)
{
    return &rs->offers[i];
}


uint32_t
cef_rules_nrules(const cef_rules_t *rs)
{
    return rs->nrules;
}


const uint32_t *
cef_rules_order(const cef_rules_t *rs)
{
    return rs->order;
}


const cef_rule_t *
cef_rules_rule(const cef_rules_t *rs, uint32_t i)
{
    return &rs->rules[i];
}


uint32_t
cef_rules_nslots(const cef_rules_t *rs)
{
    return rs->nslots;
}


const char *
cef_rules_slot_name(const cef_rules_t *rs, uint32_t i)
{
    return rs->slots[i];
}


const cef_expr_symtab_t *
cef_rules_symtab(const cef_rules_t *rs)
{
    return rs->st;
}


int
cef_rules_ref_position(const cef_rules_t *rs, uint32_t ref, uint32_t *line,
    uint32_t *col)
{
    if (ref >= rs->nref_pos || rs->ref_pos[2 * ref] == 0) {
        return 0;
    }

    *line = rs->ref_pos[2 * ref];
    *col = rs->ref_pos[2 * ref + 1];

    return 1;
}


const char *
cef_rules_slot_strategy(const cef_rules_t *rs, uint32_t slot)
{
    return rs->strategy ? rs->strategy[slot].p->name : "priority";
}


int
cef_rules_plugged(const cef_rules_t *rs)
{
    return rs->plugged;
}


int
cef_rules_offer_active(const cef_offer_t *offer, int64_t now)
{
    return now >= offer->starts && now < offer->ends;
}


cef_expr_eval_t *
cef_rules_eval_create(const cef_rules_t *rs)
{
    return cef_expr_eval_create(rs->st);
}


int
cef_rules_plan(cef_rules_t *rs)
{
    uint32_t           i, j, k, n = 0;
    const cef_rule_t  *r;
    const cef_offer_t *o;
    const cef_expr_t **conds;

    for (i = 0; i < rs->nrules; i++) {
        n += rs->rules[i].noffers;
    }

    rs->plan = calloc(rs->nrules + 1, sizeof(cef_plan_rule_t));
    rs->plan_offers = calloc(n + 1, sizeof(cef_plan_offer_t));
    if (rs->plan == NULL || rs->plan_offers == NULL) {
        return -1;
    }

    for (i = 0, k = 0; i < rs->nrules; i++) {
        r = &rs->rules[rs->order[i]];
        rs->plan[i].when = r->when;
        rs->plan[i].rule = rs->order[i];
        rs->plan[i].first = k;
        rs->plan[i].n = r->noffers;

        for (j = 0; j < r->noffers; j++, k++) {
            o = &rs->offers[r->offers[j]];
            rs->plan_offers[k].starts = o->starts;
            rs->plan_offers[k].ends = o->ends;
            rs->plan_offers[k].slot = o->slot_id;
            rs->plan_offers[k].offer = r->offers[j];
        }

        if (r->noffers == 1) {
            o = &rs->offers[r->offers[0]];
            rs->plan[i].simple = o->starts == INT64_MIN
                                 && o->ends == INT64_MAX;
            rs->plan[i].slot = o->slot_id;
            rs->plan[i].offer = r->offers[0];
        }
    }

    conds = malloc((rs->nrules + 1) * sizeof(cef_expr_t *));
    if (conds == NULL) {
        return -1;
    }

    for (i = 0; i < rs->nrules; i++) {
        conds[i] = rs->plan[i].when;
    }

    rs->index = cef_expr_index_create(rs->st, conds, rs->nrules);
    free(conds);

    return rs->index ? 0 : -1;
}


const uint64_t *
cef_rules_candidates(const cef_rules_t *rs, cef_expr_eval_t *ev)
{
    return cef_expr_index_candidates(rs->index, ev);
}


/*
 * The rules from the plan that may match (cand; NULL: every one) until
 * every slot is decided.  Inlined twice, so that without an index the
 * walk is a plain pointer walk.
 */
static inline __attribute__((always_inline)) uint32_t
cef_rules_walk(const cef_rules_t *rs, cef_expr_eval_t *ev,
    const uint64_t *cand, int64_t now, cef_rules_choice_t *choices)
{
    const cef_plan_rule_t   *pr, *end = rs->plan + rs->nrules;
    const cef_plan_offer_t  *po, *pe, *offers = rs->plan_offers;
    uint32_t                 decided = 0, nslots = rs->nslots;

    for (pr = cef_rules_from(rs, cand, rs->plan);
         pr < end && decided < nslots;
         pr = cef_rules_from(rs, cand, pr + 1))
    {
        if (pr->simple) {
            if (choices[pr->slot].offer != CEF_RULES_NONE
                || (pr->when && !cef_expr_match(pr->when, ev)))
            {
                continue;
            }

            choices[pr->slot].offer = pr->offer;
            choices[pr->slot].rule = pr->rule;
            decided++;
            continue;
        }

        po = offers + pr->first;
        pe = po + pr->n;

        /* skip rules that could not fill any open slot */

        for ( /* void */ ; po < pe; po++) {
            if (choices[po->slot].offer == CEF_RULES_NONE
                && now >= po->starts && now < po->ends)
            {
                break;
            }
        }

        if (po == pe || (pr->when && !cef_expr_match(pr->when, ev))) {
            continue;
        }

        for ( /* void */ ; po < pe; po++) {
            if (choices[po->slot].offer == CEF_RULES_NONE
                && now >= po->starts && now < po->ends)
            {
                choices[po->slot].offer = po->offer;
                choices[po->slot].rule = pr->rule;
                decided++;
            }
        }
    }

    return decided;
}


uint32_t
cef_rules_decide(const cef_rules_t *rs, cef_expr_eval_t *ev,
    const cef_expr_ctx_t *ctx, cef_rules_choice_t *choices)
{
    const uint64_t  *cand;
    uint32_t         i;

    cef_expr_eval_reset(ev, ctx);

    for (i = 0; i < rs->nslots; i++) {
        choices[i].offer = CEF_RULES_NONE;
        choices[i].rule = CEF_RULES_NONE;
    }

    /* the rules that may match, in plan order: the others are false */

    cand = cef_rules_candidates(rs, ev);

    return cand ? cef_rules_walk(rs, ev, cand, ctx->now, choices)
                : cef_rules_walk(rs, ev, NULL, ctx->now, choices);
}
