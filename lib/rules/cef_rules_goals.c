/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_rules_goals: the goals: section of a rule file and the experiments
 * the slots' strategies run (cef_rules_goals.h).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cef_rules_int.h"


static const char  *cef_goal_keys[] = {
    "min", "max", "description", NULL
};


int
cef_rules_goals_name_ok(const char *s, size_t len)
{
    size_t  i;

    if (len == 0 || len > CEF_RULES_GOAL_NAME_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')
              || s[i] == '_' || s[i] == '-'))
        {
            return 0;
        }
    }

    return 1;
}


/* One goal: NAME: {min: N, max: N} or NAME: {} (or NAME: with no value). */
static void
cef_goal_load(cef_loader_t *ld, cef_rules_goal_t *g, yaml_node_t *v)
{
    yaml_node_pair_t  *pair;
    yaml_node_t       *k2, *v2, *min = NULL, *max = NULL;
    const char        *kw;
    unsigned           seen = 0;
    char               where[96];

    snprintf(where, sizeof(where), "goal '%s'", g->name);

    if (v->type == YAML_SCALAR_NODE && v->data.scalar.length == 0
        && v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
    {
        return;                                /* "signup:" */
    }

    if (v->type != YAML_MAPPING_NODE) {
        cef_rules_load_error(ld, v, "goal '%s' must be a mapping (min: and "
                             "max: for a goal with a value, else {}), not %s",
                             g->name, cef_rules_yaml_kind(v));
        return;
    }

    for (pair = v->data.mapping.pairs.start;
         pair < v->data.mapping.pairs.top; pair++)
    {
        k2 = cef_rules_yaml_node(ld, pair->key);
        v2 = cef_rules_yaml_node(ld, pair->value);

        kw = cef_rules_yaml_key(ld, k2, cef_goal_keys, where);

        if (kw == NULL || cef_rules_yaml_dup_key(ld, k2, cef_goal_keys, kw,
                                                 &seen)) {
            continue;
        }

        if (strcmp(kw, "min") == 0) {
            if (cef_rules_yaml_want_number(ld, v2, "min", &g->min) == 0) {
                min = v2;
            }

        } else if (strcmp(kw, "max") == 0) {
            if (cef_rules_yaml_want_number(ld, v2, "max", &g->max) == 0) {
                max = v2;
            }

        } else {
            (void) cef_rules_yaml_want_string(ld, v2, "description");
        }
    }

    if ((seen & 3) == 0) {
        return;                                /* no value */
    }

    if ((seen & 3) != 3) {
        cef_rules_load_error(ld, v, "goal '%s' has %s but no %s (a goal with "
                             "a value needs both bounds)", g->name,
                             (seen & 1) ? "min:" : "max:",
                             (seen & 1) ? "max:" : "min:");
        return;
    }

    if (min && max && g->min > g->max) {
        cef_rules_load_error(ld, max, "goal '%s': max: %g is below min: %g",
                             g->name, g->max, g->min);
        return;
    }

    g->has_value = (min && max);
}


void
cef_rules_goals_load(cef_loader_t *ld)
{
    cef_rules_t       *rs = ld->rs;
    yaml_node_pair_t  *pair;
    yaml_node_t       *k, *v;
    cef_rules_goal_t  *g;
    const char        *name;
    size_t             n;
    uint32_t           i;

    if (ld->goals == NULL) {
        return;
    }

    if (ld->goals->type != YAML_MAPPING_NODE) {
        if (ld->goals->type == YAML_SCALAR_NODE
            && ld->goals->data.scalar.length == 0)
        {
            return;                            /* "goals:" with none */
        }

        cef_rules_load_error(ld, ld->goals, "goals: must map goal names to "
                             "their bounds, e.g. {purchase: {min: 0, max: "
                             "10000}, signup: {}}, not %s",
                             cef_rules_yaml_kind(ld->goals));
        return;
    }

    n = (size_t) (ld->goals->data.mapping.pairs.top
                  - ld->goals->data.mapping.pairs.start);

    rs->goals = calloc(n + 1, sizeof(cef_rules_goal_t));
    if (rs->goals == NULL) {
        cef_rules_load_error(ld, ld->goals, "out of memory");
        return;
    }

    for (pair = ld->goals->data.mapping.pairs.start;
         pair < ld->goals->data.mapping.pairs.top; pair++)
    {
        k = cef_rules_yaml_node(ld, pair->key);
        v = cef_rules_yaml_node(ld, pair->value);

        if (k->type != YAML_SCALAR_NODE) {
            cef_rules_load_error(ld, k, "goal names must be plain names, "
                                 "not %s", cef_rules_yaml_kind(k));
            continue;
        }

        name = cef_rules_yaml_scalar(k);

        if (!cef_rules_goals_name_ok(name, k->data.scalar.length)) {
            cef_rules_load_error(ld, k, "invalid goal name '%s' (1 to 64 "
                                 "lowercase letters, digits, '_' and '-')",
                                 name);
            continue;
        }

        for (i = 0; i < rs->ngoals; i++) {
            if (strcmp(rs->goals[i].name, name) == 0) {
                break;
            }
        }

        if (i < rs->ngoals) {
            cef_rules_load_error(ld, k, "duplicate goal '%s'", name);
            continue;
        }

        g = &rs->goals[rs->ngoals];
        g->name = cef_rules_load_strdup(name);
        if (g->name == NULL) {
            cef_rules_load_error(ld, k, "out of memory");
            return;
        }

        rs->ngoals++;
        g->line = k->start_mark.line + 1;
        g->col = k->start_mark.column + 1;

        cef_goal_load(ld, g, v);
    }
}


/*
 * Ask every slot's strategy which experiment it runs (the experiment hook,
 * ABI 2; a strategy without it runs none).
 */
void
cef_rules_goals_experiments(cef_loader_t *ld)
{
    cef_rules_t              *rs = ld->rs;
    cef_rules_experiment_t   *x;
    cef_plugin_experiment_t   pe;
    const cef_plugin_inst_t  *si;
    uint32_t                  i, j, sum;

    if (rs->strategy == NULL || ld->errs->n) {
        return;
    }

    rs->exps = calloc(rs->nslots + 1, sizeof(cef_rules_experiment_t));
    rs->slot_exp = malloc((rs->nslots + 1) * sizeof(uint32_t));
    if (rs->exps == NULL || rs->slot_exp == NULL) {
        cef_rules_load_error_at(ld, 0, 0, "out of memory");
        return;
    }

    for (i = 0; i < rs->nslots; i++) {
        rs->slot_exp[i] = CEF_RULES_NONE;
        si = &rs->strategy[i];

        if (si->p == NULL || si->state == NULL || si->p->experiment == NULL
            || si->p->arm == NULL)
        {
            continue;
        }

        memset(&pe, 0, sizeof(pe));

        if (si->p->experiment(si->state, &pe) != 1) {
            continue;
        }

        /* a plugin's description is checked once, here, not per request */

        for (sum = 0, j = 0; j < pe.narms && pe.arms && pe.split; j++) {
            sum += pe.split[j];
        }

        if (pe.name == NULL || pe.salt == NULL || pe.narms == 0
            || pe.narms > CEF_PLUGIN_MAX_ARMS || pe.arms == NULL
            || pe.split == NULL || sum != CEF_PLUGIN_BUCKETS)
        {
            cef_rules_load_error_at(ld, 0, 0, "slot '%s': strategy '%s' "
                                    "describes an invalid experiment",
                                    rs->slots[i], si->p->name);
            continue;
        }

        x = &rs->exps[rs->nexps];
        x->name = pe.name;
        x->salt = pe.salt;
        x->slot = i;
        x->narms = pe.narms;
        x->arms = pe.arms;
        x->split = pe.split;
        x->plugin = si->p;
        x->state = si->state;
        x->first = 1;

        for (j = 0; j < rs->nexps; j++) {
            if (strcmp(rs->exps[j].name, x->name) == 0) {
                x->first = 0;
                break;
            }
        }

        rs->slot_exp[i] = rs->nexps++;
    }
}


void
cef_rules_goals_free(cef_rules_t *rs)
{
    uint32_t  i;

    for (i = 0; i < rs->ngoals; i++) {
        free((char *) rs->goals[i].name);
    }

    free(rs->goals);
    free(rs->exps);
    free(rs->slot_exp);
}


uint32_t
cef_rules_goals_count(const cef_rules_t *rs)
{
    return rs->ngoals;
}


const cef_rules_goal_t *
cef_rules_goals_get(const cef_rules_t *rs, uint32_t i)
{
    return &rs->goals[i];
}


const cef_rules_goal_t *
cef_rules_goals_find(const cef_rules_t *rs, const char *name, size_t len)
{
    uint32_t  i;

    for (i = 0; i < rs->ngoals; i++) {
        if (strlen(rs->goals[i].name) == len
            && memcmp(rs->goals[i].name, name, len) == 0)
        {
            return &rs->goals[i];
        }
    }

    return NULL;
}


uint32_t
cef_rules_goals_nexperiments(const cef_rules_t *rs)
{
    return rs->nexps;
}


const cef_rules_experiment_t *
cef_rules_goals_experiment(const cef_rules_t *rs, uint32_t i)
{
    return &rs->exps[i];
}


const cef_rules_experiment_t *
cef_rules_goals_slot_experiment(const cef_rules_t *rs, uint32_t slot)
{
    if (rs->slot_exp == NULL || rs->slot_exp[slot] == CEF_RULES_NONE) {
        return NULL;
    }

    return &rs->exps[rs->slot_exp[slot]];
}
