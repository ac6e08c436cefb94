/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * lib/rules, rule files: cef_rules.h (load, compile, the plain priority
 * decision), cef_rules_visitor.h (profile.* and visitor.* inputs from the
 * store), cef_persona.h (inputs held in memory, for the tool and tests);
 * cef_rules_int.h holds the compiled rule set's internals, read by the
 * loader and by lib/decision's loop only.  lib/rules may include lib/core,
 * lib/plugin, lib/expr and lib/store; lib/core, lib/plugin, lib/expr,
 * lib/html, lib/identity and lib/store must not include it.
 *
 * cef_rules: rule files (YAML offers and rules, docs/rules.md), compiled
 * once into a read-only rule set, and the per-slot decision.  Plain C11,
 * no nginx types.
 *
 * A rule set is immutable after loading: one compiled set can be shared by
 * any number of threads or forked processes, each with its own
 * cef_expr_eval_t (cef_rules_eval_create()).
 */

#ifndef CEF_RULES_H
#define CEF_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "cef_expr.h"
#include "cef_template.h"


#define CEF_RULES_MAX_FILE    (16 * 1024 * 1024)
#define CEF_RULES_MAX_ERRORS  100
#define CEF_RULES_MAX_DEPTH   64      /* YAML collections nested */
#define CEF_RULES_NONE        UINT32_MAX


typedef struct cef_rules_s  cef_rules_t;
typedef struct cef_plugins_s  cef_plugins_t;    /* cef_plugins.h */


typedef struct {
    const char      *name;      /* offer id, the key under offers: */
    const char      *slot;      /* slot name */
    uint32_t         slot_id;   /* index in cef_rules_slot_name() */
    double           value;     /* expected margin; 0 if not given */
    double           cost;      /* cost per redemption; 0 if not given */
    const char      *campaign;  /* NULL if not given */
    int64_t          starts;    /* unix time; INT64_MIN if not given */
    int64_t          ends;      /* exclusive; INT64_MAX if not given */
    cef_template_t  *html;
    uint32_t         line;      /* position of the offer's key */
    uint32_t         col;
} cef_offer_t;


typedef struct {
    const char      *name;
    cef_expr_t      *when;      /* NULL: the rule always matches */
    int64_t          priority;  /* higher wins; 0 if not given */
    const uint32_t  *offers;    /* offer indexes, at most one per slot */
    uint32_t         noffers;
    uint32_t         line;      /* position of the rule's first key */
    uint32_t         col;
} cef_rule_t;


/* One problem found while loading; line and col are 1-based, 0 if none. */
typedef struct {
    uint32_t  line;
    uint32_t  col;
    char      msg[320];
} cef_rules_error_t;


typedef struct {
    char               *file;   /* the name errors are reported under */
    cef_rules_error_t  *v;
    size_t              n;
} cef_rules_errors_t;


/* The choice for one slot. */
typedef struct {
    uint32_t  offer;     /* offer index, or CEF_RULES_NONE */
    uint32_t  rule;      /* the rule that chose it */
} cef_rules_choice_t;


/*
 * Load and compile a rule file.
 *
 * @param[in]  path   the file: a regular file (anything else, a FIFO
 *                    above all, is refused without waiting on it) of at
 *                    most CEF_RULES_MAX_FILE bytes
 * @param[out] rs     the rule set on success
 * @param[out] errs   on failure, every problem found (up to
 *                    CEF_RULES_MAX_ERRORS) with its line and column;
 *                    release with cef_rules_errors_free() in any case.
 *                    Problems reported: unreadable, oversized or not
 *                    regular file, invalid YAML, a second YAML document,
 *                    nesting deeper than CEF_RULES_MAX_DEPTH, an alias to
 *                    a collection, unknown keys (with the nearest valid
 *                    key), wrong value types, missing slot/html/name/show,
 *                    duplicate offer or rule names, rules showing unknown
 *                    offers or two offers for one slot, expression syntax
 *                    and type errors, invalid regexes, invalid templates,
 *                    bad dates, ends before starts, an unsupported version;
 *                    slots: and plugins: problems are reported alongside
 *                    the others, not only once they are fixed.
 *                    Compiling takes time linear in the file's size.
 * @return 0 on success, -1 on failure (*rs is NULL).
 */
int cef_rules_load_file(const char *path, cef_rules_t **rs,
    cef_rules_errors_t *errs);

/*
 * As cef_rules_load_file() for a file already in memory; name is what
 * errors are reported under.
 */
int cef_rules_load_buffer(const char *name, const char *buf, size_t len,
    cef_rules_t **rs, cef_rules_errors_t *errs);

/*
 * As cef_rules_load_file(), compiling `slots:` and `plugins:` sections and
 * plugin offer keys against a plugin set (cef_plugins.h); NULL means
 * the built-in plugins.  The set must outlive the rule set.  Problems
 * also reported: unknown slots, strategies or plugins (with the nearest
 * name), and every configuration a plugin rejects, at its position.
 */
int cef_rules_load_file_with(const char *path, const cef_plugins_t *ps,
    cef_rules_t **rs, cef_rules_errors_t *errs);
int cef_rules_load_buffer_with(const char *name, const char *buf, size_t len,
    const cef_plugins_t *ps, cef_rules_t **rs, cef_rules_errors_t *errs);

/*
 * Format error i as "FILE:LINE:COL: message" (or "FILE: message" when it
 * has no position) into buf, NUL-terminated.
 */
void cef_rules_error_format(const cef_rules_errors_t *errs, size_t i,
    char *buf, size_t size);

/* Release what a load stored in errs.  The struct itself is the caller's. */
void cef_rules_errors_free(cef_rules_errors_t *errs);

/* Free a rule set.  NULL is accepted. */
void cef_rules_free(cef_rules_t *rs);


/* Hex SHA-256 of the file's bytes (64 characters, NUL-terminated). */
const char *cef_rules_hash(const cef_rules_t *rs);

uint32_t cef_rules_noffers(const cef_rules_t *rs);
const cef_offer_t *cef_rules_offer(const cef_rules_t *rs, uint32_t i);

/* Rules in file order. */
uint32_t cef_rules_nrules(const cef_rules_t *rs);
const cef_rule_t *cef_rules_rule(const cef_rules_t *rs, uint32_t i);

/*
 * Rule indexes (cef_rules_nrules() of them) in the order decisions try
 * them: highest priority first, ties in file order.  Decided once, when
 * the file is loaded (the only priority comparator); explain and replay
 * walk this order rather than sorting again.
 */
const uint32_t *cef_rules_order(const cef_rules_t *rs);

/* Slots in order of first appearance among the offers. */
uint32_t cef_rules_nslots(const cef_rules_t *rs);
const char *cef_rules_slot_name(const cef_rules_t *rs, uint32_t i);

/* The symbol table of every path the rule set uses (see cef_expr.h). */
const cef_expr_symtab_t *cef_rules_symtab(const cef_rules_t *rs);

/*
 * Where a reference (an id of cef_rules_symtab()) is first written in the
 * rule file: for problems found after loading, such as a var.NAME that
 * names no nginx variable, reported as FILE:LINE:COL like load errors.
 *
 * @param[out] line, col  1-based, as in cef_rules_error_t
 * @return 1, or 0 if the reference is not written in a when: or an html:
 *         (a path a plugin compiled from its configuration).
 */
int cef_rules_ref_position(const cef_rules_t *rs, uint32_t ref,
    uint32_t *line, uint32_t *col);

/* 1 if the offer's schedule includes time now (unix seconds). */
int cef_rules_offer_active(const cef_offer_t *offer, int64_t now);


/*
 * Evaluation scratch space for this rule set: see cef_expr_eval_create().
 */
cef_expr_eval_t *cef_rules_eval_create(const cef_rules_t *rs);

/* The strategy plugin's name of a slot ("priority" unless configured). */
const char *cef_rules_slot_strategy(const cef_rules_t *rs, uint32_t slot);

/* 1 if the rule set uses anything but the priority strategy. */
int cef_rules_plugged(const cef_rules_t *rs);

/*
 * Choose an offer per slot: for each slot, the matching rule with the
 * highest priority (ties: file order) that shows an offer for the slot
 * whose schedule includes ctx->now.  Rules are tried in that order and
 * evaluation stops as soon as every slot is decided; a rule is not
 * evaluated at all when every slot it could fill is already decided.
 *
 * @param[in]  ev       scratch space from cef_rules_eval_create(); it is
 *                      reset to ctx, so templates can be rendered with it
 *                      afterwards
 * @param[in]  ctx      the inputs
 * @param[out] choices  cef_rules_nslots() entries, indexed by slot id;
 *                      offer is CEF_RULES_NONE for undecided slots
 * Plugins are not consulted: this is the plain priority decision.  Rule
 * sets with `slots:`/`plugins:` are decided by cef_decision_make()
 * (cef_decision.h).
 *
 * @return the number of slots decided.
 */
uint32_t cef_rules_decide(const cef_rules_t *rs, cef_expr_eval_t *ev,
    const cef_expr_ctx_t *ctx, cef_rules_choice_t *choices);


#endif /* CEF_RULES_H */
