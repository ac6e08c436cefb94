/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Folder lib/plugin: the rule plugin ABI and the engine's host of it.  It
 * includes only lib/core; lib/expr, lib/rules, lib/decision, the glue, the
 * tools and plugins include it.  It never includes anything above it, so a
 * plugin can be built from this folder and lib/core alone.
 *
 * cef_plugin.h — the rule plugin ABI.  The ONE header a rule plugin
 * includes; everything a plugin may use is declared here (and in
 * cef_value.h, which it includes).  A plugin never calls a function of the
 * engine by name: the engine hands it the services it may use as function
 * pointers (cef_plugin_rules_t at configuration time, cef_plugin_req_t at
 * request time), so a plugin shared object has no undefined symbols into
 * the module and can be built without it.
 *
 * ABI version
 * -----------
 * CEF_PLUGIN_ABI_VERSION changes whenever a struct below changes layout or
 * meaning.  A plugin sets cef_plugin_t.abi_version to the value it was
 * compiled with.  Structs are only ever extended at the end, and only with
 * a version bump, so the engine also accepts every older version from
 * CEF_PLUGIN_ABI_OLDEST on: it reads only the fields that version had and
 * takes the later ones as NULL.  Version 2 added the experiment and arm
 * hooks at the end of cef_plugin_t (and, for adaptive strategies, the
 * goal and weights services at the end of cef_plugin_rules_t and
 * cef_plugin_req_t and the live split at the end of cef_plugin_pick_t:
 * structs the engine allocates, so an older plugin never sees them); a
 * version 1 plugin loads unchanged.
 * Any other version is refused (nginx -t fails: 'plugin "NAME" was built
 * for ABI version N, this module has versions 1 to 2').
 *
 * Process and thread model
 * ------------------------
 * nginx workers are single-threaded processes forked from the master after
 * the configuration was read.  Therefore:
 *   - configuration time: the configure hooks run in the nginx master (or
 *     in cef-rules) while the configuration is read (also on every reload,
 *     and for `nginx -t`): configure once per rule file (with conf NULL
 *     when the file does not mention the plugin), slot_configure once per
 *     slot naming the plugin as its strategy (then experiment, if set).
 *     State created there is inherited read-only by every worker through
 *     fork(); never open sockets or files that must not be shared across
 *     fork here.
 *   - lifetimes: a state lives as long as its rule set; free/slot_free run
 *     when the rule set is released (in the master, after a reload has
 *     replaced the configuration; a worker may simply exit without them).
 *     The plugin's shared object stays loaded at least as long.
 *   - request time: select, arm, begin and end, and expression functions,
 *     run in a worker, one request at a time, with no locking needed; they
 *     must not block (no I/O), must not keep pointers into a
 *     cef_plugin_req_t or into cef_value_t arguments after returning, and
 *     should not allocate (there is nothing to free them with per
 *     request).  Writes to configuration state at request time are
 *     per-worker and invisible to other workers.
 *   - a plugin must not crash the worker: anything unexpected is reported
 *     by returning CEF_PLUGIN_ERROR.  The engine then serves the default
 *     content for the slot (no offer) and logs the failure (rate-limited).
 *
 * Entry point (external plugins)
 * ------------------------------
 * A shared object loaded by `cef_plugin NAME PATH;` exports one function,
 *
 *     const cef_plugin_t *cef_plugin_entry(void);
 *
 * (CEF_PLUGIN_ENTRY_SYMBOL), returning a descriptor with static storage
 * duration.  NAME in the directive must equal cef_plugin_t.name.  Built-in
 * plugins (the files in rules/plugins/) are the same descriptors, linked in.
 *
 * Rule file configuration
 * -----------------------
 *     plugins:               # per rule set: cef_plugin_t.configure
 *       freqcap:
 *         caps: [{campaign: winback, max: 3, per: 7d}]
 *     slots:                 # per slot: cef_plugin_t.slot_configure
 *       hero:
 *         strategy: weighted # the plugin that selects for this slot
 *         weights: {a: 3, b: 1}
 * The mapping under a plugin's name (less `strategy:` for slots) is handed
 * to the hook as a cef_conf_t tree; line and column of every node are
 * kept so that a rejected value is reported as FILE:LINE:COL.
 */

#ifndef CEF_PLUGIN_H
#define CEF_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cef_value.h"


#ifdef __cplusplus
extern "C" {
#endif


#define CEF_PLUGIN_ABI_VERSION   2
#define CEF_PLUGIN_ABI_OLDEST    1
#define CEF_PLUGIN_ENTRY_SYMBOL  "cef_plugin_entry"

/* Return codes of hooks. */
#define CEF_PLUGIN_OK        0    /* done */
#define CEF_PLUGIN_ERROR    -1    /* failed: see the hook */
#define CEF_PLUGIN_FIRST_ONLY  1  /* slot_configure only: configured, and
                                     this slot's select needs only the
                                     first candidate (see slot_configure) */

/* "no offer", "no bucket" */
#define CEF_PLUGIN_NONE      UINT32_MAX
#define CEF_PLUGIN_BUCKETS   10000

/* cef_plugin_t.flags */
#define CEF_PLUGIN_ALL_CANDIDATES  0x1   /* select wants every matching
                                            candidate, not only the first */

#define CEF_PLUGIN_MAX_ARGS  4


/* --- configuration (rule file) ------------------------------------------- */

typedef enum {
    CEF_CONF_SCALAR = 1,
    CEF_CONF_MAP,
    CEF_CONF_LIST
} cef_conf_type_t;


/*
 * A node of the YAML configuration given to a plugin.  Read-only; valid for
 * the duration of the configure hook only (copy what you keep).
 */
typedef struct cef_conf_s  cef_conf_t;

struct cef_conf_s {
    cef_conf_type_t    type;
    const char        *key;     /* a map member: its key; else NULL */
    const char        *value;   /* CEF_CONF_SCALAR: the text, NUL-terminated;
                                   else NULL */
    const cef_conf_t  *items;   /* CEF_CONF_MAP: members (each has key);
                                   CEF_CONF_LIST: items; else NULL */
    uint32_t           n;       /* number of items */
    uint32_t           line;    /* 1-based position of the value */
    uint32_t           col;
};


/* The member of a map with the given key, or NULL. */
static inline const cef_conf_t *
cef_conf_get(const cef_conf_t *map, const char *key)
{
    uint32_t  i;

    if (map == NULL || map->type != CEF_CONF_MAP) {
        return NULL;
    }

    for (i = 0; i < map->n; i++) {
        if (strcmp(map->items[i].key, key) == 0) {
            return &map->items[i];
        }
    }

    return NULL;
}


/* A scalar as a finite number: 0, or -1 if it is not one. */
static inline int
cef_conf_number(const cef_conf_t *c, double *out)
{
    char  *end;

    if (c == NULL || c->type != CEF_CONF_SCALAR || c->value[0] == '\0') {
        return -1;
    }

    *out = strtod(c->value, &end);

    return (*end == '\0' && *out == *out && *out - *out == 0) ? 0 : -1;
}


/* A message for a configuration that a plugin rejects. */
typedef struct {
    const cef_conf_t  *at;        /* the offending node (NULL: the section) */
    char               msg[256];  /* lowercase, names the bad value */
} cef_plugin_error_t;


/* An offer of the rule set, as plugins see it.  Valid while the rule set
 * lives (config time and every request that uses it). */
typedef struct {
    const char        *name;
    const char        *slot;
    const char        *campaign;  /* NULL if none */
    uint32_t           index;     /* offer index in the rule set */
    uint32_t           slot_id;
    double             value;     /* value: of the offer, 0 if not given */
    double             cost;      /* cost: of the offer, 0 if not given */
    int64_t            starts;    /* unix time, INT64_MIN if not given */
    int64_t            ends;      /* exclusive, INT64_MAX if not given */
    const cef_conf_t  *extra;     /* map of the offer keys declared in some
                                     plugin's offer_keys, or NULL; config
                                     time only */
} cef_plugin_offer_t;


/*
 * The rule set being compiled, and the compile-time services.  Given to
 * configure and slot_configure; valid during that call only, except for
 * offers and slots, which live as long as the rule set.
 */
typedef struct cef_plugin_rules_s  cef_plugin_rules_t;

struct cef_plugin_rules_s {
    const char                *file;
    uint32_t                   noffers;
    const cef_plugin_offer_t  *offers;
    uint32_t                   nslots;
    const char *const         *slots;

    /*
     * Compile an expression of the rule language (docs/rules.md), e.g. the
     * text "profile.propensity", for evaluation at request time with
     * cef_plugin_req_t.eval.
     *
     * @param[in]  rules  this struct
     * @param[in]  src    the expression, NUL-terminated
     * @param[out] id     a handle for eval
     * @param[out] err    a message on failure
     * @return CEF_PLUGIN_OK, or CEF_PLUGIN_ERROR (syntax, type or unknown
     *         path; err says which).
     */
    int                      (*compile)(const cef_plugin_rules_t *rules,
                                  const char *src, uint32_t *id,
                                  char *err, size_t errlen);
    void                      *host;    /* the engine's; do not touch */

    /* --- ABI 2 ----------------------------------------------------------- */

    /*
     * Is name a goal declared in the rule file's goals: section
     * (docs/goals.md)?  For strategies that learn from a goal (bandit).
     *
     * @param[out] has_value  1 if the goal carries a value (min:/max:)
     * @return 1 declared, 0 not.
     */
    int                      (*goal)(const cef_plugin_rules_t *rules,
                                  const char *name, int *has_value);
};


/* --- request time -------------------------------------------------------- */

typedef struct cef_plugin_req_s  cef_plugin_req_t;


/*
 * The live weights of an adaptive experiment (ABI 2): what the engine
 * found published for (experiment, salt) -- a weights record written by
 * `cef-report bandit` and stored by cef-sync (docs/formats.md, "Weights
 * records").  Valid during the hook call only.
 */
typedef struct {
    uint64_t            version;     /* the record's version (>= 1) */
    int64_t             created_at;  /* unix seconds */
    uint32_t            narms;
    const cef_span_t   *arms;        /* arm (offer) names, record order */
    const uint32_t     *bp;          /* each arm's basis points of new
                                        visitors; they sum to
                                        CEF_PLUGIN_BUCKETS */
} cef_plugin_weights_t;

/*
 * One decision (one request).  Valid during the hook call only.
 */
struct cef_plugin_req_s {
    int64_t       now;          /* unix time, seconds */
    int32_t       utc_offset;   /* seconds east of UTC (time.hour) */
    cef_span_t    visitor;      /* the visitor id; empty if unknown */

    /*
     * The visitor's bucket for a salt (an experiment's name or salt):
     * a number in 0 .. CEF_PLUGIN_BUCKETS - 1, the same for the same
     * (salt, visitor) on every request, edge and reload, and independent
     * between salts.  CEF_PLUGIN_NONE when the visitor id is unknown.
     */
    uint32_t    (*bucket)(const cef_plugin_req_t *req, const char *salt,
                    size_t len);

    /*
     * Evaluate an expression compiled at configuration time against this
     * request's profile view and request.  Strings in *out are valid until
     * the hook returns.
     *
     * @return 1 if a value was produced, 0 if it is null.
     */
    int         (*eval)(const cef_plugin_req_t *req, uint32_t id,
                    cef_value_t *out);

    /*
     * The calling plugin's per-visitor state: bytes it stored with
     * state_set on an earlier response, returned only if the signature
     * (HMAC-SHA256 with the signing secret) verifies.  A tampered, foreign
     * or absent state reads as empty.
     *
     * @return 1 and *out set, or 0 (no state).
     */
    int         (*state_get)(const cef_plugin_req_t *req, cef_span_t *out);

    /*
     * Replace the calling plugin's state on the response (a signed cookie
     * named "cef_" NAME).  Only from end.  p is copied; at most 400 bytes
     * of cookie-safe characters (letters, digits, "-_.:~").
     *
     * @param[in] max_age  seconds the state is kept by the browser
     * @return CEF_PLUGIN_OK, or CEF_PLUGIN_ERROR (too long, bad characters,
     *         no signing secret configured: the state is not kept).
     */
    int         (*state_set)(const cef_plugin_req_t *req, const char *p,
                    size_t len, int64_t max_age);

    /*
     * Read a number map value (CEF_VAL_NUM_MAP, e.g. interest scores):
     * the number under key.  Arrays and maps stay encoded in the store's
     * format, so plugins read them through these two calls only.
     *
     * @return 1 and *out set, or 0 if absent (or not a number map).
     */
    int         (*map_get)(const cef_value_t *map, const char *key,
                    size_t len, double *out);

    /* 1 if a string array value (e.g. segments) contains s, else 0. */
    int         (*array_has)(const cef_value_t *array, const char *s,
                    size_t len);

    void         *host;    /* the engine's; do not touch */
    const void   *plugin;  /* the engine's; do not touch */

    /* --- ABI 2 ----------------------------------------------------------- */

    /*
     * The weights published for (experiment, salt), as the store holds
     * them now: a new version is seen at the next request, without a
     * reload.  Cheap enough to ask on every request (the engine keeps
     * what it decoded until something is published); a plugin that
     * derives something per version keeps it with out->version.  In the
     * arm hook too.
     *
     * @return 1 and *out set, or 0 (none published, or no store: treat
     *         the arms as uniform).
     */
    int         (*weights)(const cef_plugin_req_t *req,
                    const char *experiment, const char *salt,
                    cef_plugin_weights_t *out);
};


/* A matching candidate for a slot: its rule matched and it is not blocked. */
typedef struct {
    const cef_plugin_offer_t  *offer;
    uint32_t                   rule;     /* rule index in the file */
    int64_t                    priority; /* the rule's */
} cef_plugin_cand_t;


/* What select decided. */
typedef struct {
    uint32_t      pick;        /* index into cands, or CEF_PLUGIN_NONE */
    uint32_t      would_have;  /* the candidate a control visitor would
                                  have seen, or CEF_PLUGIN_NONE */
    uint32_t      bucket;      /* bucket used, or CEF_PLUGIN_NONE */
    const char   *variant;     /* "control", "treatment", an arm name, or
                                  NULL (no experiment); must outlive the
                                  rule set (static or slot state) */

    /* ABI 2, adaptive strategies only (preset to NULL, 0, NONE): */
    const uint32_t *split;     /* the live share of each of the
                                  experiment's arms (the experiment hook's
                                  order) in basis points, or NULL (the
                                  configured split); read before the next
                                  select of the slot */
    uint64_t      weights_version;  /* the weights used (0: uniform, none
                                       published yet) */
    uint32_t      sticky;      /* CEF_PLUGIN_STICKY_*, or CEF_PLUGIN_NONE
                                  (not adaptive) */
} cef_plugin_pick_t;

/* cef_plugin_pick_t.sticky */
#define CEF_PLUGIN_STICKY_NO       0   /* drawn on this request */
#define CEF_PLUGIN_STICKY_YES      1   /* the arm the visitor kept */
#define CEF_PLUGIN_STICKY_REDRAWN  2   /* the kept arm was not eligible:
                                          drawn among the eligible ones
                                          (the kept arm stays kept) */


/*
 * The experiment a slot runs, as its strategy describes it (the experiment
 * hook, ABI 2): what the impression record ($cef_decision's "experiment",
 * "salt", "split") and the goal record ($cef_goal's "arms") say about it.
 * Every pointer must live as long as the slot's state.
 */
typedef struct {
    const char          *name;    /* the experiment's name: what reports
                                     call it */
    const char          *salt;    /* what req->bucket is asked with */
    uint32_t             narms;   /* 1 .. CEF_PLUGIN_MAX_ARMS */
    const char *const   *arms;    /* arm names, as select reports them in
                                     pick->variant ("control" for a
                                     holdout) */
    const uint32_t      *split;   /* each arm's configured share of all
                                     visitors, in basis points (buckets):
                                     they sum to CEF_PLUGIN_BUCKETS */
} cef_plugin_experiment_t;

#define CEF_PLUGIN_MAX_ARMS  33


/* --- expression functions ------------------------------------------------ */

/*
 * A function callable from rule expressions, e.g. `season() == "winter"`.
 * Argument types are checked at compile time when known; at run time a
 * null or mistyped argument makes the call null without calling fn.
 */
typedef struct cef_plugin_func_s {
    const char        *name;      /* [a-z_][a-z0-9_]*, unique */
    uint32_t           nargs;     /* 0 .. CEF_PLUGIN_MAX_ARGS */
    cef_value_type_t   args[CEF_PLUGIN_MAX_ARGS];
                                  /* CEF_VAL_BOOL, CEF_VAL_FLOAT (any
                                     number), CEF_VAL_STR, or CEF_VAL_NIL
                                     (anything, null included) */
    cef_value_type_t   ret;       /* CEF_VAL_BOOL, CEF_VAL_FLOAT or
                                     CEF_VAL_STR */

    /*
     * @param[in]  args  nargs values (numbers as CEF_VAL_INT or FLOAT)
     * @param[in]  now   the request's time, unix seconds
     * @param[out] out   the result; a string must be static or point into
     *                   args
     * @return 1, or 0 for null.  Pure: no side effects, no allocation.
     */
    int              (*fn)(const cef_value_t *args, uint32_t nargs,
                         int64_t now, cef_value_t *out);
} cef_plugin_func_t;


/* --- the descriptor ------------------------------------------------------ */

typedef struct {
    uint32_t                  abi_version;  /* CEF_PLUGIN_ABI_VERSION */
    const char               *name;         /* [a-z_][a-z0-9_]*, unique */
    const char               *description;
    uint32_t                  flags;        /* CEF_PLUGIN_ALL_CANDIDATES */

    /* Extra offer keys this plugin reads (cef_plugin_offer_t.extra),
     * NULL-terminated; NULL if none. */
    const char *const        *offer_keys;

    /* Expression functions, or NULL. */
    const cef_plugin_func_t  *funcs;
    uint32_t                  nfuncs;

    /*
     * Strategy: configure one slot (`slots: SLOT: strategy: NAME`).
     * Optional even for a strategy (no configuration then accepted).
     *
     * @param[in]  rules  the rule set being compiled
     * @param[in]  slot   the slot id (rules->slots[slot])
     * @param[in]  conf   the slot's mapping less `strategy:`
     * @param[out] state  per-slot state given to select; freed with
     *                    slot_free
     * @param[out] err    on CEF_PLUGIN_ERROR: where and why
     * @return CEF_PLUGIN_OK or CEF_PLUGIN_ERROR (the rule file is rejected).
     *         A state set before an error is still freed with slot_free
     *         (likewise configure's with free), so a plugin may set it
     *         first and fail half-way.
     *         A plugin with CEF_PLUGIN_ALL_CANDIDATES may instead return
     *         CEF_PLUGIN_FIRST_ONLY when this slot's configuration needs
     *         only the first (highest-priority) candidate: select then
     *         gets at most one, and the engine stops evaluating the slot's
     *         rules at its first match, as for a plugin without the flag
     *         (the experiment plugin does this for a holdout or arms that
     *         reserve no offers).  Engines before this return code reject
     *         it as an error, so nginx -t says so rather than deciding
     *         differently.
     */
    int                     (*slot_configure)(const cef_plugin_rules_t *rules,
                                 uint32_t slot, const cef_conf_t *conf,
                                 void **state, cef_plugin_error_t *err);
    void                    (*slot_free)(void *state);

    /*
     * Strategy: choose among the candidates of a slot.  NULL: not a
     * strategy.  cands are in rule priority order (highest first, ties in
     * file order); without CEF_PLUGIN_ALL_CANDIDATES only the first.
     * Called only when n > 0.  pick is preset to "none".
     *
     * @return CEF_PLUGIN_OK, or CEF_PLUGIN_ERROR (the slot gets no offer,
     *         logged).  A pick >= n is treated as an error.
     */
    int                     (*select)(void *state, const cef_plugin_req_t *req,
                                 const cef_plugin_cand_t *cands, uint32_t n,
                                 cef_plugin_pick_t *pick);

    /*
     * Per rule set: configure from `plugins: NAME:`, or with conf NULL when
     * the rule file does not mention the plugin.  Set *state to NULL to
     * stay inactive (begin and end are then not called for that rule
     * set).  Same return contract as slot_configure.
     */
    int                     (*configure)(const cef_plugin_rules_t *rules,
                                 const cef_conf_t *conf, void **state,
                                 cef_plugin_error_t *err);
    void                    (*free)(void *state);

    /*
     * Per decision, before any rule is evaluated: set blocked[i] = 1 for
     * every offer i (0 .. noffers - 1) that must not be shown on this
     * request (capped, out of hours).  Blocked offers are never
     * candidates.
     *
     * @return CEF_PLUGIN_OK, or CEF_PLUGIN_ERROR (logged; blocks set so
     *         far are kept).
     */
    int                     (*begin)(void *state, const cef_plugin_req_t *req,
                                 uint8_t *blocked);

    /*
     * Per decision, after every slot was decided: shown[s] is the offer
     * index shown in slot s, or CEF_PLUGIN_NONE (holdout visitors see
     * none).  The place to record impressions (state_set).
     */
    void                    (*end)(void *state, const cef_plugin_req_t *req,
                                 const uint32_t *shown, uint32_t nslots);

    /* --- ABI 2 ----------------------------------------------------------- */

    /*
     * Strategy, optional: the experiment this slot runs, if any.  Called
     * once per slot at configuration time, after slot_configure succeeded.
     *
     * @param[in]  state  the slot's state from slot_configure
     * @param[out] out    the experiment (pointers into state)
     * @return 1 if the slot buckets visitors (out is set), 0 if it does
     *         not (arm is then never called for it).
     */
    int                     (*experiment)(const void *state,
                                 cef_plugin_experiment_t *out);

    /*
     * Strategy, optional, with experiment: the visitor's arm in the slot's
     * experiment without deciding anything — no rule is evaluated and no
     * candidate exists (a goal is being recorded, $cef_goal).  Only
     * req->now, req->visitor, req->bucket, req->state_get (the state the
     * visitor sent) and req->weights may be used: eval yields null.
     * Must agree with select: a visitor
     * select puts in arm i (pick->variant == arms[i]) is in arm i here.
     * Must not write to the state.
     *
     * @return an index into the experiment's arms, or CEF_PLUGIN_NONE
     *         (the visitor id is unknown: nobody is bucketed).
     */
    uint32_t                (*arm)(const void *state,
                                 const cef_plugin_req_t *req);
} cef_plugin_t;


/* The entry point of an external plugin. */
typedef const cef_plugin_t *(*cef_plugin_entry_pt)(void);


#ifdef __cplusplus
}
#endif

#endif /* CEF_PLUGIN_H */
