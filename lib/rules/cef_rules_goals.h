/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Part of lib/rules: what the folder may include, and what must not
 * include it, is said at the top of cef_rules.h.
 *
 * cef_rules_goals: what a rule set says about measuring it — the goals a
 * visitor can reach (the rule file's goals: section, docs/goals.md) and the
 * experiments its slots run (described by their strategy plugins'
 * experiment hook, cef_plugin.h).  Both are compiled with the rule set and
 * read-only afterwards; the goal record ($cef_goal, cef_goal.h) and the
 * impression record ($cef_decision, cef_record.h) read them.  Plain C11,
 * no nginx types.
 *
 *     goals:
 *       purchase: {min: 0, max: 100000}   # carries a value within bounds
 *       signup: {}                        # carries no value
 */

#ifndef CEF_RULES_GOALS_H
#define CEF_RULES_GOALS_H

#include <stddef.h>
#include <stdint.h>

#include "cef_plugin.h"
#include "cef_rules.h"


#define CEF_RULES_GOAL_NAME_MAX  64     /* [a-z0-9_-]{1,64} */


typedef struct {
    const char          *name;
    double               min;       /* with has_value: the accepted value */
    double               max;       /* range, inclusive, finite */
    unsigned             has_value:1;   /* min: and max: were given */
    uint32_t             line;      /* position of the goal's name */
    uint32_t             col;
} cef_rules_goal_t;


/* An experiment a slot runs, as its strategy described it. */
typedef struct {
    const char          *name;      /* the experiment's name */
    const char          *salt;
    uint32_t             slot;      /* the slot id that runs it */
    uint32_t             narms;
    const char *const   *arms;      /* arm names ("control" first for a
                                       holdout) */
    const uint32_t      *split;     /* per arm: basis points of all
                                       visitors, summing to 10000 */
    const cef_plugin_t  *plugin;    /* its strategy, with an arm hook */
    const void          *state;     /* the slot's state, for arm */
    unsigned             first:1;   /* the first slot of the rule set with
                                       this experiment name: goal records
                                       list each name once */
} cef_rules_experiment_t;


/* Goals in file order. */
uint32_t cef_rules_goals_count(const cef_rules_t *rs);
const cef_rules_goal_t *cef_rules_goals_get(const cef_rules_t *rs,
    uint32_t i);

/*
 * The goal of a name.
 *
 * @return it, or NULL if the rule set declares no such goal.
 */
const cef_rules_goal_t *cef_rules_goals_find(const cef_rules_t *rs,
    const char *name, size_t len);

/* 1 if s is a valid goal name: [a-z0-9_-]{1,64}. */
int cef_rules_goals_name_ok(const char *s, size_t len);

/* Experiments in slot order (at most one per slot). */
uint32_t cef_rules_goals_nexperiments(const cef_rules_t *rs);
const cef_rules_experiment_t *cef_rules_goals_experiment(const cef_rules_t *rs,
    uint32_t i);

/* The experiment slot runs, or NULL. */
const cef_rules_experiment_t *cef_rules_goals_slot_experiment(
    const cef_rules_t *rs, uint32_t slot);


#endif /* CEF_RULES_GOALS_H */
