/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * lib/rules internals: the compiled rule set, shared by the loader
 * (cef_rules_load.c), cef_rules.c and lib/decision's loop
 * (cef_decision.c), the one reader outside the folder; then the loader's
 * own internals (its state, and what cef_rules_load.c, cef_rules_yaml.c,
 * cef_rules_offers.c, cef_rules_plugins.c and cef_rules_goals.c export to
 * one another, each under its file's prefix), which lib/decision does not
 * use.
 */

#ifndef CEF_RULES_INT_H
#define CEF_RULES_INT_H

#include <yaml.h>                 /* the loader's part, below */

#include "cef_rules.h"
#include "cef_rules_goals.h"
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
    cef_expr_index_t   *index;      /* the plan's when:s by their guards */
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

    cef_rules_goal_t   *goals;      /* goals: (cef_rules_goals.c) */
    uint32_t            ngoals;
    cef_rules_experiment_t *exps;   /* the slots' experiments */
    uint32_t            nexps;
    uint32_t           *slot_exp;   /* per slot: index in exps, or
                                       CEF_RULES_NONE */
};


/* Build rs->plan and rs->index from rs->order; 0, or -1 when out of
   memory. */
int cef_rules_plan(cef_rules_t *rs);

/*
 * The first rule of the plan from pr on that is a candidate (cand from
 * cef_rules_candidates(); NULL: every one): pr itself, or past it; the
 * plan's end when none is left.  Inline and always given a constant NULL
 * or a bitset: without an index the walk is the plain pointer walk it was
 * before the index (an indexed walk, i = 0..n with &plan[i], was 4.5 %
 * more instructions on the old bench-rules workload).
 */
static inline __attribute__((always_inline)) const cef_plan_rule_t *
cef_rules_from(const cef_rules_t *rs, const uint64_t *cand,
    const cef_plan_rule_t *pr)
{
    uint32_t  i, n = rs->nrules;
    uint64_t  b;

    if (cand == NULL) {
        return pr;
    }

    i = (uint32_t) (pr - rs->plan);

    while (i < n) {
        b = cand[i / 64] >> (i % 64);

        if (b) {
            return rs->plan + i + (uint32_t) __builtin_ctzll(b);
        }

        i = (i | 63) + 1;
    }

    return rs->plan + n;
}


/*
 * The loader (cef_rules_load.c, cef_rules_yaml.c, cef_rules_offers.c,
 * cef_rules_plugins.c) and nothing else: lib/decision never uses it.
 */

typedef struct {
    const char  **keys;
    uint32_t     *vals;
    uint32_t      n;
    uint32_t      cap;      /* power of two */
} cef_names_t;


typedef struct {
    const char          *buf;
    size_t               len;
    yaml_document_t      doc;          /* nodes only: cef_rules_yaml.c */
    struct {                             /* the document's memory */
        void            *blocks;         /* newest first, each starts with
                                            a pointer to the previous */
        char            *next;
        size_t           left;
    }                    mem;
    cef_rules_errors_t  *errs;
    cef_rules_t         *rs;
    cef_names_t          offer_names;
    cef_names_t          rule_names;
    cef_names_t          slot_names;
    const char         **offer_list;   /* NULL-terminated, for hints */
    int                  full;
    int                  doc_ok;       /* the root is a mapping */

    const cef_plugins_t *ps;
    const char          *offer_keys[32];  /* base keys + plugins' keys */
    yaml_node_t         *slots;
    yaml_node_t         *plugins;
    yaml_node_t         *goals;
    struct {
        uint32_t         offer;
        yaml_node_t     *key;
        yaml_node_t     *val;
    }                   *extra;          /* plugin keys of offers */
    uint32_t             nextra;
    uint32_t            *slot_rule;      /* cef_rule_show() */
    uint32_t            *slot_offer;
    void               **allocs;         /* cef_conf_t arrays */
    uint32_t             nallocs;

    struct {                             /* cef_value_index() */
        yaml_node_t     *node;
        size_t           verbatim;       /* quoted, plain: bytes of the
                                            value written as is */
        size_t           indent;         /* literal: the content's indent */
        size_t          *nl;             /* literal: offsets of newlines */
        size_t           nnl;
    }                    pos;
} cef_loader_t;


#define cef_rules_load_error(ld, node, ...)                                  \
    cef_rules_load_error_at(ld, (node)->start_mark.line + 1,                 \
                            (node)->start_mark.column + 1, __VA_ARGS__)


/* cef_rules_load.c: errors at a line and column (cef_rules_load_error: at
   a node), arrays that grow by doubling, strdup, the string -> index
   tables */
void cef_rules_load_error_at(cef_loader_t *ld, size_t line, size_t col,
    const char *fmt, ...);
void *cef_rules_load_grow(void *v, size_t n, size_t size);
char *cef_rules_load_strdup(const char *s);
int cef_rules_load_names_find(const cef_names_t *t, const char *key,
    uint32_t *val);
int cef_rules_load_names_add(cef_names_t *t, const char *key, uint32_t val);
void cef_rules_load_names_free(cef_names_t *t);

/* cef_rules_yaml.c: the document built from libyaml's events (nesting
   capped), typed reads of its nodes and keys with hints, and the line and
   column of an offset inside a scalar */
int cef_rules_yaml_load(cef_loader_t *ld, yaml_parser_t *parser);
void cef_rules_yaml_free(cef_loader_t *ld);
yaml_node_t *cef_rules_yaml_node(cef_loader_t *ld, int id);
const char *cef_rules_yaml_scalar(yaml_node_t *n);
const char *cef_rules_yaml_kind(yaml_node_t *n);
const char *cef_rules_yaml_known(yaml_node_t *key,
    const char *const *valid);
const char *cef_rules_yaml_key(cef_loader_t *ld, yaml_node_t *key,
    const char *const *valid, const char *where);
int cef_rules_yaml_dup_key(cef_loader_t *ld, yaml_node_t *key,
    const char *const *valid, const char *k, unsigned *seen);
const char *cef_rules_yaml_want_string(cef_loader_t *ld, yaml_node_t *v,
    const char *what);
int cef_rules_yaml_want_number(cef_loader_t *ld, yaml_node_t *v,
    const char *what, double *out);
/* cef_rules_yaml_ref_site()'s data: the scalar an expression is written in */
typedef struct {
    cef_loader_t  *ld;
    yaml_node_t   *n;
} cef_ref_site_t;

void cef_rules_yaml_ref_site(void *data, uint32_t ref, size_t offset);
void cef_rules_yaml_value_err(cef_loader_t *ld, yaml_node_t *n, size_t off,
    const char *what, const char *msg);

/* cef_rules_offers.c: the offers: section (offer keys: ours, without the
   plugins' own) */
extern const char  *cef_rules_offers_keys[];
void cef_rules_offers_load(cef_loader_t *ld, yaml_node_t *offers);

/* cef_rules_plugins.c: the slots: and plugins: sections */
void cef_rules_plugins_load(cef_loader_t *ld);

/* cef_rules_goals.c: the goals: section, then (once the slots' strategies
   are configured) the experiments they run; and freeing both */
void cef_rules_goals_load(cef_loader_t *ld);
void cef_rules_goals_experiments(cef_loader_t *ld);
void cef_rules_goals_free(cef_rules_t *rs);


#endif /* CEF_RULES_INT_H */
