/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * lib/expr internals, shared by the lexer (cef_expr_lex.c: cef_expr_lex_*),
 * the compiler (cef_expr.c: allocation; cef_expr_parse.c: the grammar,
 * cef_expr_parse; cef_expr_symtab.c: references and memo ids,
 * cef_expr_symtab_*), the evaluator (cef_expr_eval.c: cef_expr_eval_*),
 * explain (cef_expr_explain.c), the index of conditions by their guards
 * (cef_expr_index.c) and the templates (cef_template.c).  Each
 * file exports only names that carry its own prefix.  Nothing outside
 * lib/expr includes this: the folder's API is cef_expr.h and
 * cef_template.h.
 */

#ifndef CEF_EXPR_INT_H
#define CEF_EXPR_INT_H

#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "cef_expr.h"
#include "cef_plugin.h"


/* --- lexer (cef_expr_lex.c) ----------------------------------------------- */

typedef enum {
    CEF_TOK_EOF = 0,
    CEF_TOK_NUM,          /* number or duration (in seconds) */
    CEF_TOK_STR,          /* string literal, unescaped into the buffer */
    CEF_TOK_IDENT,        /* a name without dots: keyword or function */
    CEF_TOK_PATH,         /* dotted name */
    CEF_TOK_LPAREN,
    CEF_TOK_RPAREN,
    CEF_TOK_LBRACK,
    CEF_TOK_RBRACK,
    CEF_TOK_COMMA,
    CEF_TOK_EQ,
    CEF_TOK_NE,
    CEF_TOK_LT,
    CEF_TOK_LE,
    CEF_TOK_GT,
    CEF_TOK_GE,
    CEF_TOK_PLUS,
    CEF_TOK_MINUS,
    CEF_TOK_STAR,
    CEF_TOK_SLASH,
    CEF_TOK_PIPE,
    CEF_TOK_ERROR
} cef_expr_tok_type_t;


typedef struct {
    cef_expr_tok_type_t  type;
    size_t               start;  /* byte offset in the source */
    size_t               end;
    double               num;    /* CEF_TOK_NUM */
    cef_span_t           text;   /* IDENT, PATH: source text; STR:
                                    unescaped */
    const char          *error;  /* CEF_TOK_ERROR: static message */
} cef_expr_tok_t;


typedef struct {
    const char     *src;      /* NUL-terminated */
    size_t          len;
    size_t          pos;
    char           *strbuf;   /* unescaped strings, at least len bytes */
    size_t          strpos;
} cef_expr_lex_t;


void cef_expr_lex_init(cef_expr_lex_t *lx, const char *src, size_t len,
    char *strbuf);
void cef_expr_lex_next(cef_expr_lex_t *lx, cef_expr_tok_t *tok);
const char *cef_expr_lex_tok_name(cef_expr_tok_type_t type);


/* --- compiled form -------------------------------------------------------- */

typedef enum {
    CEF_T_ANY = 0,     /* unknown until run time (profile attributes) */
    CEF_T_NULL,
    CEF_T_BOOL,
    CEF_T_NUM,
    CEF_T_STR,
    CEF_T_ARRAY,       /* string array or literal list */
    CEF_T_MAP
} cef_stype_t;


typedef enum {
    CEF_OP_NULL = 0,
    CEF_OP_BOOL,
    CEF_OP_NUM,
    CEF_OP_STR,
    CEF_OP_LIST,         /* a = first element, elements chained by next */
    CEF_OP_REF,          /* ref */
    CEF_OP_REF_KEY,      /* ref, key: profile.NAME.KEY */
    CEF_OP_NOT,
    CEF_OP_NEG,
    CEF_OP_AND,
    CEF_OP_OR,
    CEF_OP_EQ,
    CEF_OP_NE,
    CEF_OP_LT,
    CEF_OP_LE,
    CEF_OP_GT,
    CEF_OP_GE,
    CEF_OP_IN,
    CEF_OP_CONTAINS,
    CEF_OP_STARTS_WITH,
    CEF_OP_ENDS_WITH,
    CEF_OP_MATCHES,      /* a matches re */
    CEF_OP_ADD,
    CEF_OP_SUB,
    CEF_OP_MUL,
    CEF_OP_DIV,
    CEF_OP_DAYS_SINCE,   /* a = argument */
    CEF_OP_HOURS_SINCE,
    CEF_OP_LEN,
    CEF_OP_LOWER,
    CEF_OP_CALL          /* a plugin function: a = first argument, arguments
                            chained by next, u.fn */
} cef_op_t;


typedef struct {
    uint8_t          op;
    uint8_t          type;     /* cef_stype_t */
    uint8_t          jit;      /* CEF_OP_MATCHES: the regex is JIT-compiled */
    uint32_t         memo;     /* comparisons: 1 + the id of the result
                                  in the symbol table's memos, shared by
                                  equal comparisons of every expression;
                                  0: not memoised (cheap) */
    int32_t          a;        /* operand node indexes, -1 if none */
    int32_t          b;
    int32_t          next;     /* next list element, -1 at the end */
    uint32_t         start;    /* source span, for errors and explain */
    uint32_t         end;
    union {
        int          b;
        double       num;
        cef_span_t   str;
        struct {
            uint32_t    ref;
            uint32_t    key_id;   /* CEF_OP_REF_KEY: dense id of (ref,
                                     key) in the symbol table's keys */
            cef_span_t  key;
        } ref;
        pcre2_code  *re;
        const cef_plugin_func_t  *fn;
    } u;
} cef_node_t;


struct cef_expr_s {
    cef_node_t   *nodes;
    uint32_t      nnodes;
    int32_t       root;
    char         *src;        /* NUL-terminated copy of the source */
    char         *strbuf;     /* unescaped string literals */
};


struct cef_expr_symtab_s {
    cef_ref_t   **refs;
    uint32_t      nrefs;
    uint32_t      cap;
    uint32_t     *slots;      /* open addressing: id + 1, 0 = empty */
    uint32_t      nslots;     /* power of two */
    cef_expr_func_lookup_pt  func_lookup;   /* plugin functions */
    void                    *func_data;

    /* distinct profile.NAME.KEY paths, numbered densely from 0, so that
       each is looked up in its map at most once per evaluation */
    char        **keys;       /* "ID:KEY", NUL-terminated */
    uint32_t      nkeys;
    uint32_t      keys_cap;
    uint32_t     *key_slots;  /* open addressing: key id + 1, 0 = empty */
    uint32_t      key_nslots; /* power of two, or 0 */

    /* distinct comparisons (canonical forms), so that a comparison that
       several rules make is evaluated once per evaluation */
    cef_span_t   *memos;      /* canonical forms, malloc'd */
    uint32_t      nmemos;
    uint32_t      memos_cap;
    uint32_t     *memo_slots; /* open addressing: memo id + 1, 0 = empty */
    uint32_t      memo_nslots;

    /* the largest cef_expr_index_t's: words of its bitset, conditions,
       (attribute, key) entries */
    uint32_t      cand_words;
    uint32_t      cand_conds;
    uint32_t      cand_entries;
};


/* Internal run-time values. */
typedef enum {
    CEF_V_NULL = 0,
    CEF_V_BOOL,
    CEF_V_NUM,
    CEF_V_STR,
    CEF_V_ARRAY,      /* msgpack string array (cef_value_t) */
    CEF_V_MAP,        /* msgpack number map (cef_value_t) */
    CEF_V_LIST        /* literal list: node index of the first element */
} cef_vtype_t;


typedef struct {
    cef_vtype_t  t;
    uint32_t     ref;        /* CEF_V_ARRAY, CEF_V_MAP: the reference id */
    union {
        int          b;
        double       num;
        cef_span_t   s;
        const cef_value_t  *v;   /* CEF_V_ARRAY, CEF_V_MAP: in the cache */
        int32_t      list;   /* the CEF_OP_LIST node */
    } u;
} cef_val_t;


#define CEF_NODE(e, i)  (&(e)->nodes[i])


/* the truth of an evaluated value: only true is true (null is not) */
static inline int
cef_expr_eval_true(const cef_val_t *v)
{
    return v->t == CEF_V_BOOL && v->u.b;
}


#define CEF_EXPR_SCRATCH  4096
#define CEF_EXPR_MAX_NODES  4096

/*
 * Arrays and maps are decoded at most once per evaluation into elems:
 * at most CEF_EXPR_SEQ_MAX elements of one value, CEF_EXPR_ELEMS in all.
 * Elements beyond that are read from the encoding where decoding stopped.
 */
#define CEF_EXPR_ELEMS    2048
#define CEF_EXPR_SEQ_MAX  512


/* A decoded array element, or a map key and its value. */
typedef struct {
    cef_span_t   s;
    double       num;
} cef_elem_t;


/* What is decoded of an array or map reference in this evaluation. */
typedef struct {
    uint32_t     gen;        /* evaluation it belongs to */
    uint32_t     first;      /* index in cef_expr_eval_t.elems */
    uint32_t     n;          /* elements decoded */
    uint32_t     more;       /* 1: more elements from byte offset rest */
    size_t       rest;
} cef_seq_t;


/*
 * A reference's value in this evaluation: the tag a test checks and the
 * value it reads on one line (32 bytes, two to a 64-byte line; separate
 * tag and value arrays were two cache lines per reference).
 */
typedef struct {
    uint32_t     gen;        /* evaluation the value belongs to */
    cef_val_t    val;
} cef_refval_t;


/*
 * An array or map reference: the value the lookup returned (val.u.v
 * points here) and what is decoded of its elements, one 64-byte line.
 * Scalars never touch it.
 */
typedef struct {
    cef_value_t  raw;
    cef_seq_t    seq;
} cef_refseq_t;


struct cef_expr_eval_s {
    const cef_expr_symtab_t  *st;
    const cef_expr_ctx_t  *ctx;
    uint32_t               nrefs;
    uint32_t               gen;
    cef_refval_t          *vals;     /* per reference, 64-aligned */
    cef_refseq_t          *seqs;     /* per reference, 64-aligned */
    cef_elem_t            *elems;    /* CEF_EXPR_ELEMS */
    uint32_t               nelems;   /* used in this evaluation */
    uint32_t               nkeys;
    uint32_t              *key_seen; /* gen when key_val was set */
    cef_val_t             *key_val;  /* per profile.NAME.KEY */
    uint32_t               nmemos;
    uint32_t              *memo_seen;/* gen when memo_val was set */
    uint8_t               *memo_val; /* per memoised comparison: 0, 1 */
    uint64_t              *cand;     /* cef_expr_index_candidates() */
    uint32_t               cand_words;
    uint32_t               cand_conds;
    uint32_t               cand_entries;
    uint8_t               *ix_count; /* per condition: guards counted */
    uint32_t              *ix_touched; /* conditions counted */
    uint32_t              *ix_seen;  /* per entry: ix_gen when counted */
    uint32_t               ix_gen;
    pcre2_match_data      *md;
    pcre2_match_context   *mctx;     /* the CEF_EXPR_*_LIMITs */
    uint64_t               limited;  /* matches stopped by a limit */
    int                    tm_done;
    int                    hour;
    int                    weekday;
    size_t                 scratch_used;
    char                   scratch[CEF_EXPR_SCRATCH];
};



/* cef_expr_eval.c, for cef_expr_explain.c: the value of any node i of e,
   and the cef_value_t of a value (numbers as CEF_VAL_FLOAT); for
   cef_expr_index.c: fn once per key of reference id's value (its string,
   its array's elements, its map's keys; nothing for other values), as
   `in`, `==` and profile.NAME.KEY see them */
void cef_expr_eval_node(const cef_expr_t *e, int32_t i, cef_expr_eval_t *ev,
    cef_val_t *out);
void cef_expr_eval_to_value(const cef_val_t *v, cef_value_t *out);
void cef_expr_eval_keys(cef_expr_eval_t *ev, uint32_t id,
    void (*fn)(void *data, cef_span_t key), void *data);



/* cef_expr_symtab.c, for the parser: the reference of a normalized path
   (found or added; name_off: where the looked-up name starts), the dense
   id of profile.NAME.KEY's KEY (-1: out of memory); for cef_expr.c: the
   memo ids of e's comparisons (-1: out of memory) */
const cef_ref_t *cef_expr_symtab_add(cef_expr_symtab_t *st,
    cef_ref_kind_t kind, const char *path, size_t plen, size_t name_off);
int64_t cef_expr_symtab_key(cef_expr_symtab_t *st, uint32_t ref,
    const char *key, size_t len);
int cef_expr_symtab_memoise(cef_expr_symtab_t *st, cef_expr_t *e);


/* cef_expr_parse.c: what cef_expr_parse() parses e->src as */
#define CEF_COMPILE_EXPR   0
#define CEF_COMPILE_PATH   1
#define CEF_COMPILE_COND   2

int cef_expr_parse(cef_expr_symtab_t *st, cef_expr_t *e, size_t len,
    cef_expr_error_t *err, int what);


#endif /* CEF_EXPR_INT_H */
