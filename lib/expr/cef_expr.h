/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * lib/expr, the expression language of rule files: cef_expr.h (compile,
 * evaluate, explain) and cef_template.h (offer HTML); cef_expr_int.h holds
 * the folder's internals (lexer, nodes, evaluator) and nothing outside the
 * folder includes it.  lib/expr may include lib/core and lib/plugin (rule
 * plugins add functions to the language); lib/core, lib/plugin, lib/html,
 * lib/identity and lib/store must not include it.
 *
 * cef_expr: the expression language of rule files (`when:` conditions and
 * `{{ path }}` placeholders).  Plain C11, no nginx types.
 *
 * An expression is compiled once (at configuration time) into a compact
 * node array whose paths are resolved to references in a symbol table;
 * evaluation walks that array, never parses, never hashes a name and never
 * allocates.  The language and its semantics are documented in
 * docs/rules.md; in short:
 *
 *   - a missing attribute is null;
 *   - every comparison involving null (except `== null` / `!= null`) or
 *     values of mismatched types is false, never an error;
 *   - `not` flips booleans only (`not null` is null, which is not true);
 *   - type errors that can be seen at compile time are compile errors.
 *
 * Values are read from the caller through one callback, cef_expr_ctx_t's
 * lookup, which receives a pre-resolved reference (kind, dense id,
 * pre-computed hash of the name) so that a profile view can find an
 * attribute without hashing strings per request.
 */

#ifndef CEF_EXPR_H
#define CEF_EXPR_H

#include <stddef.h>
#include <stdint.h>

#include "cef_value.h"


/*
 * Limits of one `matches` (PCRE2 match context): backtracking steps
 * (match limit), nesting depth of backtracking (depth limit, the
 * interpreter only) and KiB of backtracking memory (heap limit, the
 * interpreter only); the JIT also stops where its 32 KiB stack ends.  A
 * regex and a (visitor-controlled) subject that hit a limit make the
 * comparison false (docs/rules.md), in microseconds, never a hang.
 */
#define CEF_EXPR_MATCH_LIMIT  100000
#define CEF_EXPR_DEPTH_LIMIT  10000
#define CEF_EXPR_HEAP_LIMIT   2048


/* What a path in an expression refers to. */
typedef enum {
    CEF_REF_PROFILE = 0,       /* profile.NAME (and profile.NAME.KEY) */
    CEF_REF_REQUEST_PATH,      /* request.path */
    CEF_REF_REQUEST_METHOD,    /* request.method */
    CEF_REF_REQUEST_HOST,      /* request.host */
    CEF_REF_REQUEST_ARG,       /* request.arg.NAME */
    CEF_REF_REQUEST_COOKIE,    /* request.cookie.NAME */
    CEF_REF_REQUEST_HEADER,    /* request.header.NAME (name lowercased) */
    CEF_REF_VAR,               /* var.NAME: any nginx variable */
    CEF_REF_VISITOR_NEW,       /* visitor.new */
    CEF_REF_VISITOR_KEY_TYPE,  /* visitor.key_type */
    CEF_REF_TIME_HOUR,         /* time.hour: computed from ctx->now */
    CEF_REF_TIME_WEEKDAY,      /* time.weekday: computed from ctx->now */
    CEF_REF_TIME_NOW           /* time.now: computed from ctx->now */
} cef_ref_kind_t;


/*
 * A resolved path.  References are unique per (kind, name) within a symbol
 * table and numbered densely from 0, so a caller can keep per-reference
 * data (an nginx variable index, a cached attribute slot) in an array
 * indexed by id.
 */
typedef struct {
    cef_ref_kind_t  kind;
    uint32_t        id;     /* dense index in the symbol table */
    uint32_t        hash;   /* cef_expr_hash() of name */
    uint32_t        hint;   /* 0 when compiled; then the lookup's own: what
                               it learnt of the reference in an earlier
                               evaluation (lib/rules' visitor: the store
                               dictionary's id of the attribute, + 1).
                               It may be stale or written by another
                               thread, so a lookup checks it before use and
                               reads and writes it with __atomic_load_n()
                               and __atomic_store_n(), __ATOMIC_RELAXED */
    cef_span_t      name;   /* NAME for profile/arg/cookie/header/var, else
                               empty; NUL-terminated */
    cef_span_t      path;   /* the whole path as written, NUL-terminated,
                               e.g. "profile.clv" */
} cef_ref_t;


typedef struct cef_expr_symtab_s  cef_expr_symtab_t;

/*
 * Where the compiler finds functions beyond the built-in ones (rule plugin
 * functions, cef_plugin.h): the function of a name, or NULL.  The returned
 * descriptor must outlive every expression compiled with it.
 */
struct cef_plugin_func_s;
typedef const struct cef_plugin_func_s *(*cef_expr_func_lookup_pt)(
    void *data, const char *name, size_t len);
typedef struct cef_expr_s         cef_expr_t;
typedef struct cef_expr_eval_s    cef_expr_eval_t;


/*
 * Where evaluation reads its inputs.
 *
 * lookup is called at most once per reference and evaluation (results are
 * cached in the cef_expr_eval_t until the next cef_expr_eval_reset()).  It
 * stores the value of ref in *out and returns 1, or returns 0 if the value
 * is absent (null).  Values may point into memory owned by the caller that
 * must stay valid until the next cef_expr_eval_reset().  Any value type is
 * accepted for any reference: wrong types simply make comparisons false.
 * References of kind CEF_REF_TIME_* are never looked up.
 */
typedef struct {
    int       (*lookup)(void *data, const cef_ref_t *ref, cef_value_t *out);
    void       *data;
    int64_t     now;          /* unix time, seconds */
    int32_t     utc_offset;   /* seconds east of UTC, for time.hour and
                                 time.weekday */
} cef_expr_ctx_t;


/* A compile error: a byte offset into the expression text and a message. */
typedef struct {
    size_t  offset;
    char    msg[256];
} cef_expr_error_t;


/* The hash stored in cef_ref_t.hash: 32-bit FNV-1a over the bytes. */
uint32_t cef_expr_hash(const char *p, size_t len);

/*
 * The candidate nearest to word by edit distance, for "did you mean"
 * hints; NULL if none is close enough (distance at most 2, or a third of
 * the word's length when that is larger).
 *
 * @param[in] cands   NULL-terminated array of candidates
 */
const char *cef_expr_nearest(const char *word, size_t len,
    const char *const *cands);


/*
 * Parse an ISO 8601 date or date-time: YYYY-MM-DD (midnight UTC),
 * YYYY-MM-DDTHH:MM[:SS] (UTC) or the same followed by Z or +HH:MM/-HH:MM.
 * A space may replace the T.
 *
 * @param[out] out   unix time in seconds
 * @return 0, or -1 if s is not such a date or the date does not exist
 *         (2026-02-30).
 */
int cef_expr_parse_time(const char *s, size_t len, int64_t *out);


/*
 * Create an empty symbol table.  Expressions compiled against it add their
 * references to it; it must outlive them.
 *
 * @return the table, or NULL when out of memory.
 */
cef_expr_symtab_t *cef_expr_symtab_create(void);

/* Let expressions compiled against st call the functions lookup finds. */
void cef_expr_symtab_set_funcs(cef_expr_symtab_t *st,
    cef_expr_func_lookup_pt lookup, void *data);

/* Free a symbol table.  NULL is accepted. */
void cef_expr_symtab_free(cef_expr_symtab_t *st);

/* The number of references in the table (ids are 0 .. count - 1). */
uint32_t cef_expr_symtab_count(const cef_expr_symtab_t *st);

/* The reference with the given id; id must be < cef_expr_symtab_count(). */
const cef_ref_t *cef_expr_symtab_ref(const cef_expr_symtab_t *st,
    uint32_t id);


/*
 * Compile an expression.
 *
 * @param[in]  st    symbol table receiving the expression's references
 * @param[in]  src   the expression text (need not be NUL-terminated)
 * @param[in]  len   its length in bytes
 * @param[out] err   on failure: byte offset of the offending token and a
 *                   message (may be NULL)
 * @return the compiled expression, or NULL on a syntax error, a type error,
 *         an invalid regex, an unknown path or function, or when out of
 *         memory (err says which).
 */
cef_expr_t *cef_expr_compile(cef_expr_symtab_t *st, const char *src,
    size_t len, cef_expr_error_t *err);

/*
 * Compile a condition (a rule's when:): as cef_expr_compile(), and also a
 * type error unless the expression can be a boolean (`5`, `"x"` and
 * `profile.clv + 1` are errors; `profile.vip` is accepted).
 */
cef_expr_t *cef_expr_compile_condition(cef_expr_symtab_t *st,
    const char *src, size_t len, cef_expr_error_t *err);

/*
 * Compile a single path such as `profile.first_name` (a template
 * placeholder).  Same contract as cef_expr_compile(); anything but a path
 * is an error.
 */
cef_expr_t *cef_expr_compile_path(cef_expr_symtab_t *st, const char *src,
    size_t len, cef_expr_error_t *err);

/* Free a compiled expression.  NULL is accepted. */
void cef_expr_free(cef_expr_t *e);

/* The source text the expression was compiled from (NUL-terminated). */
const char *cef_expr_source(const cef_expr_t *e);

/*
 * Visit the paths of an expression (for messages about a reference found
 * after compiling, e.g. an unknown nginx variable): fn is called once per
 * path as written, with the reference id and the byte offset of the path
 * in the source text, in no particular order.
 */
typedef void (*cef_expr_ref_pt)(void *data, uint32_t ref, size_t offset);

void cef_expr_refs(const cef_expr_t *e, cef_expr_ref_pt fn, void *data);


/*
 * Create evaluation scratch space for expressions of one symbol table: a
 * per-reference value cache, arrays and maps decoded once per evaluation
 * (CEF_EXPR_ELEMS elements in all), a cache of profile.NAME.KEY values
 * and of the results of comparisons that several expressions share,
 * PCRE2 match data with the CEF_EXPR_*_LIMITs, and a small string buffer.
 * It allocates nothing after this call; cef_expr_eval_reset() invalidates
 * the caches by bumping a generation counter.  One per thread (an nginx
 * worker needs one); never shared concurrently.  Create it after the
 * last expression was compiled against st: references added later read
 * as null, and later map keys and comparisons go without the caches.
 *
 * @return the scratch space, or NULL when out of memory.
 */
cef_expr_eval_t *cef_expr_eval_create(const cef_expr_symtab_t *st);

/* Free evaluation scratch space.  NULL is accepted. */
void cef_expr_eval_free(cef_expr_eval_t *ev);

/*
 * Start evaluating against new inputs: forget cached lookups and remember
 * ctx (which must stay valid until the next reset).
 */
void cef_expr_eval_reset(cef_expr_eval_t *ev, const cef_expr_ctx_t *ctx);

/*
 * Evaluate a condition.
 *
 * @return 1 if the expression evaluates to true, 0 otherwise (false, null,
 *         any other value).  Never fails.
 */
int cef_expr_match(const cef_expr_t *e, cef_expr_eval_t *ev);

/*
 * Evaluate an expression to a value.  CEF_VAL_NIL is returned for null.
 * Numbers come back as CEF_VAL_FLOAT, or CEF_VAL_INT when integral and
 * within ±2^53.  Strings may point into ev's scratch buffer and are valid
 * until the next evaluation with ev.
 */
void cef_expr_value(const cef_expr_t *e, cef_expr_eval_t *ev,
    cef_value_t *out);

/*
 * Explain the result of a condition in words: for a false `and`, the
 * first operand that was not true; for a comparison, its source text and
 * the actual values, e.g. `profile.clv >= 500 is false (profile.clv is
 * 320)`.
 *
 * @param[out] buf   receives a NUL-terminated text, truncated to size
 * @return 1 if the expression is true, else 0 (as cef_expr_match()).
 */
int cef_expr_explain(const cef_expr_t *e, cef_expr_eval_t *ev, char *buf,
    size_t size);

/*
 * An index of many conditions (the `when:`s of a rule set, in the order
 * they are tried) by their guards: conjuncts of the top-level `and` that
 * can only be true when a profile attribute's value has a given key
 * (`"gold" in profile.segments`, `profile.lifecycle == "new"`,
 * `profile.interests.shoes >= 0.8`).  One evaluation's candidates are then
 * found from the keys of the few attributes the guards read, without
 * evaluating any condition: the cost of a rule that cannot match is
 * nearly nothing.
 */
typedef struct cef_expr_index_s  cef_expr_index_t;

/*
 * Index n conditions (conds[i] may be NULL: always true).  Every
 * condition must be compiled against st; evaluation scratch space for st
 * made after this call has room for the candidates.
 *
 * @return the index, or NULL when out of memory.
 */
cef_expr_index_t *cef_expr_index_create(cef_expr_symtab_t *st,
    const cef_expr_t *const *conds, uint32_t n);

/* Free an index.  NULL is accepted. */
void cef_expr_index_free(cef_expr_index_t *ix);

/* How many of the conditions are filed under a guard (the rest are
   candidates in every evaluation). */
uint32_t cef_expr_index_guarded(const cef_expr_index_t *ix);

/*
 * The candidates of this evaluation (after cef_expr_eval_reset()): bit
 * i % 64 of word i / 64 is set for every condition i that may be true;
 * every condition whose bit is clear is false (cef_expr_match() would
 * return 0).  Reads the profile attributes the guards name through ev's
 * cache, as evaluation would.
 *
 * @return (n + 63) / 64 words, valid until the next call with ev; or
 *         NULL: every condition is a candidate (fewer than 64 conditions
 *         and fewer than half of them have a guard, so looking keys up
 *         would cost more than it saves; or ev was made before the
 *         index).
 */
const uint64_t *cef_expr_index_candidates(const cef_expr_index_t *ix,
    cef_expr_eval_t *ev);


/*
 * Format a value for humans (explain output, test diffs): strings quoted,
 * arrays and maps decoded.  Always NUL-terminates buf if size > 0.
 */
void cef_expr_format_value(const cef_value_t *v, char *buf, size_t size);


#endif /* CEF_EXPR_H */
