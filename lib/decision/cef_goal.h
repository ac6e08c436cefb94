/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Part of lib/decision: what the folder may include, and what must not
 * include it, is said at the top of cef_decision.h.
 *
 * cef_goal: the record of a goal a visitor reached ($cef_goal,
 * docs/goals.md) and the judgements behind it — whether a value is
 * accepted, which arm of every experiment the visitor is in, and whether
 * a goal marked `once` was already reached today.  Plain C11, no nginx
 * types; written without allocating (it is made on the request path).
 *
 * A record is one compact JSON object on one line:
 *
 *   {"v":1,"t":1795449572,"goal":"purchase","value":59.9,
 *    "rules":"<sha-256 of the rule file>","key_type":"customer",
 *    "profile":"p-1","visitor":"b2JzZXJ2ZS12aXMtMDAwMQ",
 *    "arms":{"hero-q4":{"salt":"hero-q4","arm":"a"},
 *            "side":{"salt":"side","arm":"control"}}}
 *
 *   v          CEF_GOAL_VERSION
 *   t          unix seconds
 *   goal       the goal's name, declared in the rule set's goals:
 *   value      a finite number within the goal's bounds, else null (also
 *              for a goal without a value)
 *   rules      cef_rules_hash() of the rule set whose experiments are
 *              listed
 *   key_type, profile   how the visitor was recognised (null: anonymous)
 *   visitor    the visitor id, as in $cef_decision (null: none)
 *   arms       per experiment of the rule set (each name once, the first
 *              slot's), the arm the visitor is in: the same arm select
 *              puts them in, computed by the strategy's arm hook (one
 *              hash each, no rule evaluated)
 */

#ifndef CEF_GOAL_H
#define CEF_GOAL_H

#include <stddef.h>
#include <stdint.h>

#include "cef_decision.h"
#include "cef_value.h"
#include "cef_rules.h"
#include "cef_rules_goals.h"


#define CEF_GOAL_VERSION       1

/* The engine's plugin-state name for `once` (the cookie "cef_goals"). */
#define CEF_GOAL_STATE_NAME    "goals"
#define CEF_GOAL_STATE_MAX     400

/* Longest value text looked at; longer ones are invalid. */
#define CEF_GOAL_VALUE_MAX     32


typedef struct {
    const char  *experiment;
    const char  *salt;
    const char  *arm;
} cef_goal_arm_t;


/*
 * What a record is made of, worked out once per (rule set, goal) at
 * configuration time: the fixed text around the request's values, and
 * for every experiment each arm's member, escaped, so that a request only
 * copies them.
 */
typedef struct cef_goal_fmt_s  cef_goal_fmt_t;


/*
 * What an adaptive strategy's arm hook may read besides the bucket: the
 * plugin states the visitor sent (verified) and the published weights.
 * Any member may be NULL (then: no state, nothing published).
 */
typedef struct {
    int                     (*state)(void *data, const char *plugin,
                                 cef_span_t *out);
    cef_decision_weights_pt   weights;
    void                     *data;
} cef_goal_env_t;


/* One goal reached. */
typedef struct {
    int64_t                now;
    double                 value;
    unsigned               has_value:1;
    cef_span_t             key_type;    /* empty: null */
    cef_span_t             profile;
    cef_span_t             visitor;
    cef_span_t             bucket_by;   /* the id experiments bucket by:
                                           the visitor id, else the
                                           profile; empty: no arms */
    const cef_goal_env_t  *env;         /* NULL: none */
} cef_goal_event_t;


typedef enum {
    CEF_GOAL_VALUE_OK = 0,
    CEF_GOAL_VALUE_ABSENT,      /* empty text */
    CEF_GOAL_VALUE_INVALID      /* not a plain decimal number, or not
                                   finite, or outside the goal's bounds */
} cef_goal_value_rc_t;


/*
 * The value of a goal from text, e.g. a header "59.90": a plain decimal
 * number (an optional sign, digits with at most one '.', no exponent, no
 * hex, no "inf"/"nan", surrounding blanks ignored) within [g->min, g->max].
 *
 * @param[out] out   the number, when CEF_GOAL_VALUE_OK
 */
cef_goal_value_rc_t cef_goal_value(const cef_rules_goal_t *g, const char *s,
    size_t len, double *out);

/*
 * The visitor's arm in every experiment of rs, one entry per experiment
 * name, in slot order.  bucket_by is the id experiments bucket by (empty:
 * none — then no arms); now is the request's time.
 *
 * @param[out] out  room for cef_rules_goals_nexperiments(rs) entries
 * @return the number of entries filled.
 */
size_t cef_goal_arms(const cef_rules_t *rs, int64_t now, cef_span_t bucket_by,
    cef_goal_arm_t *out);

/* The same with the states and weights adaptive strategies read (a
   sticky bandit visitor's arm is the one in their state). */
size_t cef_goal_arms_env(const cef_rules_t *rs, int64_t now,
    cef_span_t bucket_by, const cef_goal_env_t *env, cef_goal_arm_t *out);

/*
 * `once`: 1 if the state (the verified cef_goals cookie's) says goal was
 * already reached on now's UTC day, else 0.  A state of an earlier day or
 * a malformed one reads as empty.
 */
int cef_goal_once_seen(cef_span_t state, int64_t now, const char *goal,
    size_t len);

/*
 * The state after reaching goal on now's UTC day:
 * "DAY.HHHHHHHH.HHHHHHHH..." (the day number, then a 32-bit hash per goal
 * reached that day), cookie-safe.  Earlier days are dropped.
 *
 * @param[out] buf   CEF_GOAL_STATE_MAX + 1 bytes
 * @return its length, or 0 if it would be longer than CEF_GOAL_STATE_MAX
 *         (more than 43 once-goals reached in one day: not kept).
 */
size_t cef_goal_once_add(cef_span_t state, int64_t now, const char *goal,
    size_t len, char *buf);

/* Seconds from now to the end of its UTC day (what the state lives). */
int64_t cef_goal_once_max_age(int64_t now);

/*
 * The record format of goal over rs (rs must outlive it).
 *
 * @return it, or NULL when out of memory.
 */
cef_goal_fmt_t *cef_goal_fmt_create(const cef_rules_t *rs, const char *goal);

void cef_goal_fmt_free(cef_goal_fmt_t *f);

/* An upper bound of cef_goal_format()'s length for ev, NUL excluded. */
size_t cef_goal_format_max(const cef_goal_fmt_t *f,
    const cef_goal_event_t *ev);

/*
 * Write the record of ev as one line of JSON (no newline), NUL-terminated,
 * truncated to size (size 0: just measure), with the visitor's arm in
 * every experiment (cef_goal_arms()).
 *
 * @return the length it needs, excluding the NUL.
 */
size_t cef_goal_format(const cef_goal_fmt_t *f, const cef_goal_event_t *ev,
    char *buf, size_t size);


#endif /* CEF_GOAL_H */
