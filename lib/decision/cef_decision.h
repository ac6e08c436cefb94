/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * lib/decision, one request's decision: cef_decision.h (the loop with its
 * rule plugins, plugin state, the log line), cef_outcome.h (what became of
 * each offer, for explain and replay), cef_record.h (the replayable
 * record); cef_decision_int.h holds the decision's scratch space and
 * nothing outside the folder includes it.  lib/decision may include
 * lib/core, lib/plugin, lib/expr, lib/rules, lib/identity and lib/store
 * (and lib/rules' cef_rules_int.h: the loop walks the compiled plan); no
 * other folder of lib/ may include it, only the glue and the tools.
 *
 * cef_decision: one decision for one request over a compiled rule set,
 * with its rule plugins (lib/plugin/cef_plugin.h): per slot the offer
 * shown (or none), the rule and the strategy plugin that decided, the
 * experiment variant and bucket, and for holdout (control) visitors the
 * offer they would have seen; per decision the rule set's content hash.
 * Everything needed to log a decision and replay it.  Plain C11, no nginx
 * types.
 *
 * A cef_decision_t is scratch space for one rule set, reused decision after
 * decision: one per thread (an nginx worker needs one per rule set).  What
 * it holds is valid until the next cef_decision_make() with it.
 */

#ifndef CEF_DECISION_H
#define CEF_DECISION_H

#include <stddef.h>
#include <stdint.h>

#include "cef_plugin.h"
#include "cef_rules.h"
#include "cef_sign.h"


/* Candidates kept per slot for strategies that want all of them. */
#define CEF_DECISION_MAX_CANDIDATES  64

/* Longest plugin state (before signing). */
#define CEF_DECISION_STATE_MAX       400


typedef struct {
    uint32_t     offer;        /* shown: offer index, or CEF_RULES_NONE */
    uint32_t     rule;         /* the rule of offer, or CEF_RULES_NONE */
    uint32_t     would_have;   /* control: the offer the visitor would have
                                  seen, else CEF_RULES_NONE */
    uint32_t     would_have_rule;
    uint32_t     bucket;       /* experiment bucket, or CEF_RULES_NONE */
    uint32_t     candidates;   /* matching candidates the strategy saw */
    const char  *plugin;       /* the strategy that decided ("priority") */
    const char  *variant;      /* "control", "treatment", an arm, or NULL
                                  (no experiment on the slot) */
    unsigned     failed:1;     /* the strategy failed: default content */

    /* adaptive strategies (bandit): what select reported */
    uint32_t     sticky;       /* CEF_PLUGIN_STICKY_*, or CEF_RULES_NONE
                                  (not adaptive) */
    uint64_t     weights_version;   /* 0: uniform, none published */
    uint32_t     nsplit;       /* the live split: the slot experiment's
                                  arms, or 0 (the configured split) */
    uint32_t     split[CEF_PLUGIN_MAX_ARMS];
} cef_decision_slot_t;


/* Per-plugin state in and out (signed cookies in nginx). */
typedef struct {
    const char  *plugin;       /* plugin name */
    cef_span_t   in;           /* verified state from the request, or
                                  empty */
    char         out[CEF_DECISION_STATE_MAX];
    size_t       out_len;
    int64_t      max_age;
    unsigned     changed:1;    /* out is to be sent */
} cef_decision_state_t;


typedef struct cef_decision_s  cef_decision_t;

struct cef_decision_s {
    const cef_rules_t     *rs;
    const char            *hash;      /* cef_rules_hash() */
    uint32_t               nslots;
    cef_decision_slot_t   *slots;     /* nslots, by slot id */
    cef_rules_choice_t    *choices;   /* nslots: the offers shown */
    uint32_t               nstates;
    cef_decision_state_t  *states;    /* one per active plugin that may keep
                                         state */
    uint32_t               errors;    /* plugin hooks that failed */
    char                   error[160];/* the first failure, for the log */

    /* the decision loop's scratch space is private: cef_decision_int.h */
};


/* Inputs that do not come through cef_expr_ctx_t. */
typedef struct {
    cef_span_t   visitor;     /* visitor id for bucketing; empty: unknown */
} cef_decision_input_t;


/*
 * Scratch space for decisions over rs.
 *
 * @return it, or NULL when out of memory.
 */
cef_decision_t *cef_decision_create(const cef_rules_t *rs);

void cef_decision_free(cef_decision_t *d);

/*
 * Set the state a plugin kept for this visitor (already verified: see
 * cef_decision_state_verify()) before cef_decision_make().  Unknown or
 * stateless plugins are ignored.  Cleared by cef_decision_make() after
 * use (p must stay valid until then).
 */
void cef_decision_set_state(cef_decision_t *d, const char *plugin,
    cef_span_t in);

/*
 * Decide.  Plugins' begin hooks block offers, rules are evaluated in
 * priority order as in cef_rules_decide() (a slot whose strategy wants
 * every candidate stays open until the last rule; rules whose guards show
 * they cannot match are skipped, cef_rules_candidates()), each slot's
 * strategy picks, and the end hooks see what is shown.
 *
 * @param[in]     ev   from cef_rules_eval_create(rs); reset to ctx, so
 *                     templates can be rendered with it afterwards
 * @param[in,out] d    from cef_decision_create(rs)
 * @return the number of slots showing an offer.  Never fails: a failing
 *         plugin costs its slot its offer (d->errors, d->error).
 */
uint32_t cef_decision_make(const cef_rules_t *rs, cef_expr_eval_t *ev,
    const cef_expr_ctx_t *ctx, const cef_decision_input_t *in,
    cef_decision_t *d);

/*
 * The candidates slot's strategy saw in the last cef_decision_make() with
 * d (from cef_decision_create(), not a view built by hand), in decision
 * order: d->slots[slot].candidates of them.
 */
const cef_plugin_cand_t *cef_decision_candidates(const cef_decision_t *d,
    uint32_t slot);

/*
 * The provider of published weights (cef_plugin_req_t.weights): the glue
 * reads them from the store; tools and tests may give their own.  Same
 * contract as cef_plugin_req_t.weights.  Without one (NULL, the default)
 * nothing is published and adaptive strategies stay uniform.
 */
typedef int (*cef_decision_weights_pt)(void *data, const char *experiment,
    const char *salt, cef_plugin_weights_t *out);

void cef_decision_set_weights(cef_decision_t *d, cef_decision_weights_pt fn,
    void *data);

/*
 * Verify a plugin state cookie "STATE.SIG" (cef_sign_verify_state(): a
 * signature of its own purpose, never a signed key's or a link token's).
 *
 * @param[out] out   STATE, pointing into value
 * @return 0 if genuine, -1 otherwise (tampered, malformed, other plugin's).
 */
int cef_decision_state_verify(cef_signer_t *s, const char *plugin,
    cef_span_t value, cef_span_t *out);

/*
 * Sign a plugin state for a cookie: "STATE.SIG".
 *
 * @param[out] buf   at least len + 1 + CEF_SIGN_SIG_LEN bytes
 * @return the length written, or 0 on an OpenSSL failure (or a plugin
 *         name longer than CEF_SIGN_MAX_TYPE).
 */
size_t cef_decision_state_sign(cef_signer_t *s, const char *plugin,
    const char *state, size_t len, char *buf);

/*
 * One log line: "rules=HASH hero=OFFER/RULE/priority
 * side=-/-/experiment:control:4711:would=OFFER ..." (docs/plugins.md),
 * NUL-terminated, truncated to size.
 *
 * @return the length it needs (excluding the NUL).
 */
size_t cef_decision_format(const cef_decision_t *d, char *buf, size_t size);


#endif /* CEF_DECISION_H */
