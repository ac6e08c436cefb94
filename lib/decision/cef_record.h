/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Part of lib/decision: what the folder may include, and what must not
 * include it, is said at the top of cef_decision.h.
 *
 * cef_record: the replayable record of one decision
 * ($cef_decision, docs/observability.md), written and read.  Plain C11, no
 * nginx types.
 *
 * A record is one compact JSON object on one line:
 *
 *   {"v":1,"t":1763913600,"tz":3600,"rules":"<sha-256 of the rule file>",
 *    "snapshot":"snap-1","seq":42,"key_type":"customer","profile":"p-gold",
 *    "visitor":"a0Zx...","ph":"9f3a01c2d4e5b6a7",
 *    "in":{"request.path":"/shoes","request.arg.utm":null,
 *          "visitor.new":false,"time.hour":14},
 *    "state":{"freqcap":"..."},
 *    "slots":{"hero":{"offer":"gold-hero","rule":"gold","plugin":"priority",
 *                     "variant":"treatment"},
 *             "side":{"offer":null,"rule":null,"plugin":"experiment",
 *                     "variant":"control","bucket":720,"would":"winback",
 *                     "would_rule":"churn"}}}
 *
 *   v          record format version (CEF_RECORD_VERSION)
 *   t, tz      the decision's time (unix seconds, what time.now saw) and
 *              the UTC offset in seconds that time.hour/weekday used
 *   rules      cef_rules_hash() of the rule set that decided
 *   snapshot, seq   the store's snapshot id and last applied delta
 *              sequence at the decision (null without a store)
 *   key_type, profile   how the visitor was recognised (null: anonymous)
 *   visitor    the visitor id experiments bucketed by (null: none)
 *   ph         cef_record_profile_digest() of the stored profile (null
 *              without one); tells a replay whether the profile changed
 *              without putting the profile's values into the log
 *   in         the value of every request.*, var.*, visitor.* and time.*
 *              path the rule set references, null when absent; profile.*
 *              is read from the store at replay
 *   state      the verified per-visitor state of rule plugins (caps)
 *   slots      per slot of the rule set: the offer shown, the rule and
 *              strategy plugin that decided, the variant ("control",
 *              "treatment", an arm, or "-" when nothing is shown outside an
 *              experiment); bucket, would (the offer a control visitor would
 *              have seen) and would_rule only when set; "failed":true when
 *              the strategy failed; for a slot whose strategy bucketed the
 *              visitor (an experiment or holdout), "experiment" (its name),
 *              "salt" (what it bucketed with) and "split" (each arm's
 *              configured share of all visitors in basis points, summing
 *              to 10000, e.g. {"control":1000,"a":4500,"b":4500});
 *              for an adaptive strategy (bandit) "split" is the live
 *              weights the visitor was drawn with, "weights_version" the
 *              published version (0: uniform, none yet), "sticky" whether
 *              the visitor kept an earlier arm, and "redrawn":true when
 *              the kept arm was not eligible and another was drawn
 *
 * Strings are JSON-escaped; bytes that are not valid UTF-8 are written as
 * U+FFFD (the record stays valid JSON; such a value may not replay).
 */

#ifndef CEF_RECORD_H
#define CEF_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "cef_decision.h"
#include "cef_expr.h"
#include "cef_profile.h"
#include "cef_rules.h"


#define CEF_RECORD_VERSION  1
#define CEF_RECORD_NONE     UINT32_MAX


/* One slot.  NULL strings are null (none). */
typedef struct {
    const char  *slot;
    const char  *offer;
    const char  *rule;
    const char  *plugin;
    const char  *variant;       /* never NULL in a made or parsed record */
    const char  *would;
    const char  *would_rule;
    uint32_t     bucket;        /* or CEF_RECORD_NONE */
    unsigned     failed:1;

    /* bucketed slots only (else NULL, 0) */
    const char          *experiment;
    const char          *salt;
    uint32_t             nsplit;
    const char *const   *split_arms;
    const uint32_t      *split;     /* basis points per arm */

    /* adaptive strategies (bandit) only (else 0): */
    uint32_t             sticky;    /* CEF_PLUGIN_STICKY_* */
    uint64_t             weights_version;
    unsigned             adaptive:1;    /* sticky and weights_version
                                           are set */
} cef_record_slot_t;


/* One input: a path as written in rules and its value (CEF_VAL_NIL: null).
 * Only nil, bool, int, float and string values are written. */
typedef struct {
    const char   *path;
    cef_value_t   v;
} cef_record_input_t;


typedef struct {
    const char   *plugin;
    cef_span_t    state;
} cef_record_state_t;


typedef struct {
    uint32_t             version;
    int64_t              now;
    int32_t              utc_offset;
    const char          *rules;        /* hex hash */
    const char          *snapshot;     /* NULL: no store */
    uint64_t             seq;
    cef_span_t           key_type;     /* empty: null */
    cef_span_t           profile;
    cef_span_t           visitor;
    uint64_t             digest;
    unsigned             has_digest:1;

    const cef_record_input_t  *inputs;
    size_t                     ninputs;
    const cef_record_state_t  *states;
    size_t                     nstates;
    const cef_record_slot_t   *slots;
    size_t                     nslots;

    void                *own;          /* what a parsed record holds */
} cef_record_t;


/*
 * The variant of a decided slot as logs name it: the experiment's arm
 * ("control" for a holdout), else "treatment" when an offer is shown, else
 * "-".
 */
const char *cef_record_variant(const cef_decision_slot_t *ds);

/*
 * Fill out[0 .. nslots-1] from a decision's slots over rs (names point
 * into rs and into the plugins' static strings).
 */
void cef_record_slots(cef_record_slot_t *out, const cef_rules_t *rs,
    const cef_decision_slot_t *ds);

/*
 * 1 if a decision is worth a record: some slot shows an offer, or has an
 * experiment variant (control visitors are recorded with what they would
 * have seen); 0 for a plain default decision.
 */
int cef_record_wanted(const cef_decision_slot_t *ds, uint32_t nslots);

/*
 * The value of a time.* reference at now with utc_offset, as cef_expr
 * computes it (time.hour 0-23, time.weekday 1 = Monday .. 7, time.now).
 *
 * @return 1 and *out set for a CEF_REF_TIME_* kind, else 0.
 */
int cef_record_time_value(cef_ref_kind_t kind, int64_t now,
    int32_t utc_offset, cef_value_t *out);

/*
 * A digest of a stored profile's attributes (names and decoded values),
 * independent of their order and of the store's dictionary numbering, so
 * that the same profile in another snapshot has the same digest.
 *
 * @return 0 and *out set, or -1 if the profile is malformed.
 */
int cef_record_profile_digest(const cef_profile_t *p, uint64_t *out);

/*
 * Write rec as one line of JSON (no newline), NUL-terminated, truncated to
 * size (size 0: just measure).
 *
 * @return the length it needs, excluding the NUL.
 */
size_t cef_record_format(const cef_record_t *rec, char *buf, size_t size);

/*
 * Parse a record.  rec's strings point into memory it owns: release it
 * with cef_record_release() (also after a failure).
 *
 * @return 0, or -1 (not JSON, not a record, an unknown version, a field of
 *         the wrong type) with a message in err.
 */
int cef_record_parse(const char *text, size_t len, cef_record_t *rec,
    char *err, size_t errlen);

/*
 * The record in one line of an impression log: the line itself if it is a
 * record, or its "decision" member, either a JSON string holding the
 * record (log_format escape=json, docs/observability.md) or the record
 * object itself (escape=none).
 *
 * @return 0 (parsed, release rec), 1 (the line has an empty decision or is
 *         blank: nothing to replay), -1 (malformed, message in err).
 */
int cef_record_from_log_line(const char *line, size_t len, cef_record_t *rec,
    char *err, size_t errlen);

void cef_record_release(cef_record_t *rec);


#endif /* CEF_RECORD_H */
