/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_expr parser: recursive descent over the lexer's tokens, path
 * resolution against the symbol table, plugin functions, and type
 * checking.  The output is e's node array; cef_expr.c allocates and
 * memoises, cef_expr_eval.c evaluates.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cef_expr_int.h"


#define CEF_EXPR_MAX_DEPTH  64


typedef struct {
    cef_expr_lex_t      lx;
    cef_expr_tok_t      tok;
    cef_expr_t         *e;
    uint32_t            cap;
    cef_expr_symtab_t  *st;
    cef_expr_error_t   *err;
    int                 depth;
    int                 failed;
} cef_parser_t;


static const char  *cef_type_names[] = {
    "any value", "null", "a boolean", "a number", "a string", "an array",
    "a map"
};


static void
cef_perror(cef_parser_t *ps, size_t offset, const char *fmt, ...)
{
    va_list  args;

    if (ps->failed) {
        return;
    }

    ps->failed = 1;

    if (ps->err) {
        ps->err->offset = offset;
        va_start(args, fmt);
        vsnprintf(ps->err->msg, sizeof(ps->err->msg), fmt, args);
        va_end(args);
    }
}


/* One level deeper into the expression: 0, or -1 past CEF_EXPR_MAX_DEPTH. */
static int
cef_deeper(cef_parser_t *ps, size_t at)
{
    if (++ps->depth > CEF_EXPR_MAX_DEPTH) {
        cef_perror(ps, at, "expression nested too deeply");
        return -1;
    }

    return 0;
}


static void
cef_advance(cef_parser_t *ps)
{
    cef_expr_lex_next(&ps->lx, &ps->tok);

    if (ps->tok.type == CEF_TOK_ERROR) {
        cef_perror(ps, ps->tok.start, "%s", ps->tok.error);
    }
}


static int
cef_tok_is(cef_parser_t *ps, const char *kw)
{
    size_t  n = strlen(kw);

    return ps->tok.type == CEF_TOK_IDENT && ps->tok.text.len == n
           && memcmp(ps->tok.text.data, kw, n) == 0;
}


static int32_t
cef_node(cef_parser_t *ps, cef_op_t op, cef_stype_t type, size_t start,
    size_t end)
{
    cef_node_t  *n;
    uint32_t     cap;

    if (ps->failed) {
        return -1;
    }

    if (ps->e->nnodes >= CEF_EXPR_MAX_NODES) {
        cef_perror(ps, start, "expression too complex (more than %d "
                   "terms)", CEF_EXPR_MAX_NODES);
        return -1;
    }

    if (ps->e->nnodes == ps->cap) {
        cap = ps->cap ? ps->cap * 2 : 8;
        n = realloc(ps->e->nodes, cap * sizeof(cef_node_t));
        if (n == NULL) {
            cef_perror(ps, start, "out of memory");
            return -1;
        }

        ps->e->nodes = n;
        ps->cap = cap;
    }

    n = &ps->e->nodes[ps->e->nnodes];
    memset(n, 0, sizeof(cef_node_t));
    n->op = op;
    n->type = type;
    n->a = -1;
    n->b = -1;
    n->next = -1;
    n->start = (uint32_t) start;
    n->end = (uint32_t) end;

    return (int32_t) ps->e->nnodes++;
}


#define N(i)  (&ps->e->nodes[i])


static int32_t cef_parse_or(cef_parser_t *ps);


static const char  *cef_roots[] = {
    "profile", "request", "var", "visitor", "time", NULL
};
static const char  *cef_request_fields[] = {
    "path", "method", "host", "arg", "cookie", "header", NULL
};
static const char  *cef_visitor_fields[] = { "new", "key_type", NULL };
static const char  *cef_time_fields[] = { "hour", "weekday", "now", NULL };
static const char  *cef_functions[] = {
    "days_since", "hours_since", "len", "lower", NULL
};


static int
cef_seg_is(const char *p, size_t len, const char *s)
{
    return strlen(s) == len && memcmp(p, s, len) == 0;
}


static void
cef_unknown(cef_parser_t *ps, size_t at, const char *what, const char *p,
    size_t len, const char *const *cands)
{
    const char  *near;

    near = cef_expr_nearest(p, len, cands);

    if (near) {
        cef_perror(ps, at, "unknown %s '%.*s' (did you mean '%s'?)", what,
                   (int) len, p, near);

    } else {
        cef_perror(ps, at, "unknown %s '%.*s'", what, (int) len, p);
    }
}


static int32_t
cef_parse_path(cef_parser_t *ps)
{
    const char       *p = ps->tok.text.data, *seg[4];
    size_t            len = ps->tok.text.len, segl[4], nseg = 0, i, start;
    size_t            off[4];
    char              norm[512];
    cef_ref_kind_t    kind;
    cef_stype_t       type;
    const cef_ref_t  *ref;
    int32_t           n;
    int64_t           kid;
    int               have_key = 0;

    start = ps->tok.start;

    for (i = 0; i <= len; ) {
        size_t  j = i;

        while (j < len && p[j] != '.') {
            j++;
        }

        if (nseg == 4) {
            cef_perror(ps, start + i, "path '%.*s' has too many parts",
                       (int) len, p);
            return -1;
        }

        seg[nseg] = p + i;
        segl[nseg] = j - i;
        off[nseg] = start + i;
        nseg++;
        i = j + 1;
    }

    if (len >= sizeof(norm)) {
        cef_perror(ps, start, "path too long");
        return -1;
    }

    type = CEF_T_STR;

    if (cef_seg_is(seg[0], segl[0], "profile")) {
        if (nseg > 3) {
            cef_perror(ps, off[3], "profile paths are profile.NAME or "
                       "profile.NAME.KEY");
            return -1;
        }

        kind = CEF_REF_PROFILE;
        type = CEF_T_ANY;
        have_key = (nseg == 3);

    } else if (cef_seg_is(seg[0], segl[0], "request")) {
        if (nseg < 2) {
            goto incomplete;
        }

        if (cef_seg_is(seg[1], segl[1], "path")) {
            kind = CEF_REF_REQUEST_PATH;
        } else if (cef_seg_is(seg[1], segl[1], "method")) {
            kind = CEF_REF_REQUEST_METHOD;
        } else if (cef_seg_is(seg[1], segl[1], "host")) {
            kind = CEF_REF_REQUEST_HOST;
        } else if (cef_seg_is(seg[1], segl[1], "arg")) {
            kind = CEF_REF_REQUEST_ARG;
        } else if (cef_seg_is(seg[1], segl[1], "cookie")) {
            kind = CEF_REF_REQUEST_COOKIE;
        } else if (cef_seg_is(seg[1], segl[1], "header")) {
            kind = CEF_REF_REQUEST_HEADER;
        } else {
            cef_unknown(ps, off[1], "request field", seg[1], segl[1],
                        cef_request_fields);
            return -1;
        }

        if (kind >= CEF_REF_REQUEST_ARG) {
            if (nseg != 3) {
                cef_perror(ps, start, "'%.*s' needs a name: "
                           "request.%.*s.NAME", (int) len, p,
                           (int) segl[1], seg[1]);
                return -1;
            }

        } else if (nseg != 2) {
            goto too_long;
        }

    } else if (cef_seg_is(seg[0], segl[0], "var")) {
        if (nseg != 2) {
            goto incomplete;
        }

        kind = CEF_REF_VAR;

    } else if (cef_seg_is(seg[0], segl[0], "visitor")) {
        if (nseg != 2) {
            goto incomplete;
        }

        if (cef_seg_is(seg[1], segl[1], "new")) {
            kind = CEF_REF_VISITOR_NEW;
            type = CEF_T_BOOL;
        } else if (cef_seg_is(seg[1], segl[1], "key_type")) {
            kind = CEF_REF_VISITOR_KEY_TYPE;
        } else {
            cef_unknown(ps, off[1], "visitor field", seg[1], segl[1],
                        cef_visitor_fields);
            return -1;
        }

    } else if (cef_seg_is(seg[0], segl[0], "time")) {
        if (nseg != 2) {
            goto incomplete;
        }

        type = CEF_T_NUM;

        if (cef_seg_is(seg[1], segl[1], "hour")) {
            kind = CEF_REF_TIME_HOUR;
        } else if (cef_seg_is(seg[1], segl[1], "weekday")) {
            kind = CEF_REF_TIME_WEEKDAY;
        } else if (cef_seg_is(seg[1], segl[1], "now")) {
            kind = CEF_REF_TIME_NOW;
        } else {
            cef_unknown(ps, off[1], "time field", seg[1], segl[1],
                        cef_time_fields);
            return -1;
        }

    } else {
        cef_unknown(ps, start, "path root", seg[0], segl[0], cef_roots);
        if (ps->err && strlen(ps->err->msg) < 150) {
            strcat(ps->err->msg, "; paths start with profile., request., "
                   "var., visitor. or time.");
        }
        return -1;
    }

    /* the referenced part: everything but a profile map key */

    i = have_key ? (size_t) (seg[2] - p) - 1 : len;
    memcpy(norm, p, i);

    if (kind == CEF_REF_REQUEST_HEADER) {
        size_t  k;

        for (k = 0; k < i; k++) {
            if (norm[k] >= 'A' && norm[k] <= 'Z') {
                norm[k] |= 0x20;
            }
        }
    }

    ref = cef_expr_symtab_add(ps->st, kind, norm, i,
                              kind == CEF_REF_PROFILE || kind == CEF_REF_VAR
                              ? (size_t) (seg[1] - p)
                              : kind >= CEF_REF_REQUEST_ARG
                                && kind <= CEF_REF_REQUEST_HEADER
                              ? (size_t) (seg[2] - p) : i);
    if (ref == NULL) {
        cef_perror(ps, start, "out of memory");
        return -1;
    }

    n = cef_node(ps, have_key ? CEF_OP_REF_KEY : CEF_OP_REF,
                 have_key ? CEF_T_NUM : type, ps->tok.start, ps->tok.end);
    if (n < 0) {
        return -1;
    }

    N(n)->u.ref.ref = ref->id;

    if (have_key) {
        N(n)->u.ref.key.data = seg[2];
        N(n)->u.ref.key.len = segl[2];

        kid = cef_expr_symtab_key(ps->st, ref->id, seg[2], segl[2]);
        if (kid < 0) {
            cef_perror(ps, start, "out of memory");
            return -1;
        }

        N(n)->u.ref.key_id = (uint32_t) kid;
    }

    cef_advance(ps);
    return n;

incomplete:
    cef_perror(ps, start, "incomplete path '%.*s'", (int) len, p);
    return -1;

too_long:
    cef_perror(ps, off[2], "path '%.*s' has too many parts", (int) len, p);
    return -1;
}


static int
cef_type_ok(cef_stype_t t, cef_stype_t a, cef_stype_t b)
{
    return t == CEF_T_ANY || t == a || t == b;
}


static cef_stype_t
cef_plugin_stype(cef_value_type_t t)
{
    switch (t) {
    case CEF_VAL_BOOL:   return CEF_T_BOOL;
    case CEF_VAL_INT:
    case CEF_VAL_FLOAT:  return CEF_T_NUM;
    case CEF_VAL_STR:    return CEF_T_STR;
    default:             return CEF_T_ANY;
    }
}


/* name(arg, ...) of a plugin function */
static int32_t
cef_parse_plugin_call(cef_parser_t *ps, const cef_plugin_func_t *fn)
{
    const char   *name = ps->tok.text.data;
    size_t        len = ps->tok.text.len, start = ps->tok.start;
    cef_stype_t   want, at;
    int32_t       n, arg, last = -1;
    uint32_t      nargs = 0;

    n = cef_node(ps, CEF_OP_CALL, cef_plugin_stype(fn->ret), start, start);
    if (n < 0) {
        return -1;
    }

    N(n)->u.fn = fn;

    cef_advance(ps);    /* name */
    cef_advance(ps);    /* ( */

    while (ps->tok.type != CEF_TOK_RPAREN) {
        if (nargs == fn->nargs) {
            cef_perror(ps, ps->tok.start, "%.*s() takes %u argument%s",
                       (int) len, name, fn->nargs, fn->nargs == 1 ? "" : "s");
            return -1;
        }

        arg = cef_parse_or(ps);
        if (arg < 0) {
            return -1;
        }

        want = cef_plugin_stype(fn->args[nargs]);
        at = N(arg)->type;

        if (fn->args[nargs] != CEF_VAL_NIL && at != CEF_T_ANY
            && at != CEF_T_NULL && at != want)
        {
            cef_perror(ps, N(arg)->start, "type error: argument %u of "
                       "%.*s() cannot be %s", nargs + 1, (int) len, name,
                       cef_type_names[at]);
            return -1;
        }

        if (last < 0) {
            N(n)->a = arg;
        } else {
            N(last)->next = arg;
        }

        last = arg;
        nargs++;

        if (ps->tok.type == CEF_TOK_COMMA) {
            cef_advance(ps);
            continue;
        }

        if (ps->tok.type != CEF_TOK_RPAREN) {
            cef_perror(ps, ps->tok.start, "expected ',' or ')' in the "
                       "arguments of %.*s(), found %s", (int) len, name,
                       cef_expr_lex_tok_name(ps->tok.type));
            return -1;
        }
    }

    if (nargs != fn->nargs) {
        cef_perror(ps, ps->tok.start, "%.*s() takes %u argument%s",
                   (int) len, name, fn->nargs, fn->nargs == 1 ? "" : "s");
        return -1;
    }

    N(n)->end = (uint32_t) ps->tok.end;
    cef_advance(ps);

    return n;
}


static int32_t
cef_parse_call(cef_parser_t *ps)
{
    const char   *name = ps->tok.text.data;
    size_t        len = ps->tok.text.len, start = ps->tok.start;
    cef_op_t      op;
    cef_stype_t   rtype, at;
    int32_t       arg, n;
    const cef_plugin_func_t  *fn;

    if (cef_seg_is(name, len, "days_since")) {
        op = CEF_OP_DAYS_SINCE;
    } else if (cef_seg_is(name, len, "hours_since")) {
        op = CEF_OP_HOURS_SINCE;
    } else if (cef_seg_is(name, len, "len")) {
        op = CEF_OP_LEN;
    } else if (cef_seg_is(name, len, "lower")) {
        op = CEF_OP_LOWER;
    } else {
        fn = ps->st->func_lookup
             ? ps->st->func_lookup(ps->st->func_data, name, len) : NULL;

        if (fn) {
            return cef_parse_plugin_call(ps, fn);
        }

        cef_unknown(ps, start, "function", name, len, cef_functions);
        return -1;
    }

    cef_advance(ps);    /* name */
    cef_advance(ps);    /* ( */

    if (ps->tok.type == CEF_TOK_RPAREN) {
        cef_perror(ps, ps->tok.start, "%.*s() takes one argument",
                   (int) len, name);
        return -1;
    }

    arg = cef_parse_or(ps);
    if (arg < 0) {
        return -1;
    }

    if (ps->tok.type == CEF_TOK_COMMA) {
        cef_perror(ps, ps->tok.start, "%.*s() takes one argument",
                   (int) len, name);
        return -1;
    }

    if (ps->tok.type != CEF_TOK_RPAREN) {
        cef_perror(ps, ps->tok.start, "expected ')' after the argument of "
                   "%.*s(), found %s", (int) len, name,
                   cef_expr_lex_tok_name(ps->tok.type));
        return -1;
    }

    at = N(arg)->type;

    switch (op) {
    case CEF_OP_DAYS_SINCE:
    case CEF_OP_HOURS_SINCE:
        rtype = CEF_T_NUM;
        if (!cef_type_ok(at, CEF_T_NUM, CEF_T_STR)) {
            goto type_error;
        }
        break;
    case CEF_OP_LEN:
        rtype = CEF_T_NUM;
        if (!cef_type_ok(at, CEF_T_STR, CEF_T_ARRAY) && at != CEF_T_MAP) {
            goto type_error;
        }
        break;
    default:
        rtype = CEF_T_STR;
        if (!cef_type_ok(at, CEF_T_STR, CEF_T_STR)) {
            goto type_error;
        }
    }

    n = cef_node(ps, op, rtype, start, ps->tok.end);
    if (n < 0) {
        return -1;
    }

    N(n)->a = arg;
    cef_advance(ps);
    return n;

type_error:
    cef_perror(ps, N(arg)->start, "type error: %.*s() cannot take %s",
               (int) len, name, cef_type_names[at]);
    return -1;
}


static int32_t
cef_parse_list(cef_parser_t *ps)
{
    size_t   start = ps->tok.start;
    int32_t  n, el, last = -1;

    n = cef_node(ps, CEF_OP_LIST, CEF_T_ARRAY, start, start + 1);
    if (n < 0) {
        return -1;
    }

    cef_advance(ps);

    while (ps->tok.type != CEF_TOK_RBRACK) {
        el = cef_parse_or(ps);
        if (el < 0) {
            return -1;
        }

        if (N(el)->type == CEF_T_ARRAY || N(el)->type == CEF_T_MAP) {
            cef_perror(ps, N(el)->start, "type error: list elements "
                       "cannot be %s", cef_type_names[N(el)->type]);
            return -1;
        }

        if (last < 0) {
            N(n)->a = el;
        } else {
            N(last)->next = el;
        }

        last = el;

        if (ps->tok.type == CEF_TOK_COMMA) {
            cef_advance(ps);
            continue;
        }

        if (ps->tok.type != CEF_TOK_RBRACK) {
            cef_perror(ps, ps->tok.start, "expected ',' or ']' in list, "
                       "found %s", cef_expr_lex_tok_name(ps->tok.type));
            return -1;
        }
    }

    N(n)->end = (uint32_t) ps->tok.end;
    cef_advance(ps);
    return n;
}


static int32_t
cef_parse_primary(cef_parser_t *ps)
{
    int32_t   n;
    size_t    start = ps->tok.start;

    if (ps->failed) {
        return -1;
    }

    if (cef_deeper(ps, start) != 0) {
        return -1;
    }

    switch (ps->tok.type) {

    case CEF_TOK_NUM:
        n = cef_node(ps, CEF_OP_NUM, CEF_T_NUM, start, ps->tok.end);
        if (n >= 0) {
            N(n)->u.num = ps->tok.num;
            cef_advance(ps);
        }
        break;

    case CEF_TOK_STR:
        n = cef_node(ps, CEF_OP_STR, CEF_T_STR, start, ps->tok.end);
        if (n >= 0) {
            N(n)->u.str = ps->tok.text;
            cef_advance(ps);
        }
        break;

    case CEF_TOK_PATH:
        n = cef_parse_path(ps);
        break;

    case CEF_TOK_LPAREN:
        cef_advance(ps);
        n = cef_parse_or(ps);
        if (n < 0) {
            break;
        }

        if (ps->tok.type != CEF_TOK_RPAREN) {
            cef_perror(ps, ps->tok.start, "expected ')', found %s",
                       cef_expr_lex_tok_name(ps->tok.type));
            n = -1;
            break;
        }

        cef_advance(ps);
        break;

    case CEF_TOK_LBRACK:
        n = cef_parse_list(ps);
        break;

    case CEF_TOK_IDENT:
        if (cef_tok_is(ps, "true") || cef_tok_is(ps, "false")) {
            n = cef_node(ps, CEF_OP_BOOL, CEF_T_BOOL, start, ps->tok.end);
            if (n >= 0) {
                N(n)->u.b = cef_tok_is(ps, "true");
                cef_advance(ps);
            }
            break;
        }

        if (cef_tok_is(ps, "null")) {
            n = cef_node(ps, CEF_OP_NULL, CEF_T_NULL, start, ps->tok.end);
            if (n >= 0) {
                cef_advance(ps);
            }
            break;
        }

        if (ps->lx.pos < ps->lx.len && ps->lx.src[ps->lx.pos] == '(') {
            n = cef_parse_call(ps);
            break;
        }

        if (cef_tok_is(ps, "and") || cef_tok_is(ps, "or")
            || cef_tok_is(ps, "in") || cef_tok_is(ps, "contains")
            || cef_tok_is(ps, "matches") || cef_tok_is(ps, "starts_with")
            || cef_tok_is(ps, "ends_with"))
        {
            cef_perror(ps, start, "expected a value, found '%.*s'",
                       (int) ps->tok.text.len, ps->tok.text.data);
            n = -1;
            break;
        }

        if (cef_expr_nearest(ps->tok.text.data, ps->tok.text.len, cef_roots))
        {
            cef_perror(ps, start, "'%.*s' is not a value; paths look like "
                       "profile.NAME, request.path, var.NAME, visitor.new "
                       "or time.hour", (int) ps->tok.text.len,
                       ps->tok.text.data);
        } else {
            cef_perror(ps, start, "unknown name '%.*s' (strings need "
                       "quotes; paths start with profile., request., var., "
                       "visitor. or time.)", (int) ps->tok.text.len,
                       ps->tok.text.data);
        }
        n = -1;
        break;

    case CEF_TOK_ERROR:
        n = -1;
        break;

    default:
        cef_perror(ps, start, "expected a value, found %s",
                   cef_expr_lex_tok_name(ps->tok.type));
        n = -1;
    }

    ps->depth--;
    return n;
}


static int32_t
cef_parse_unary(cef_parser_t *ps)
{
    size_t   start = ps->tok.start;
    int32_t  a, n;

    if (ps->tok.type != CEF_TOK_MINUS) {
        return cef_parse_primary(ps);
    }

    if (cef_deeper(ps, start) != 0) {
        return -1;
    }

    cef_advance(ps);
    a = cef_parse_unary(ps);
    ps->depth--;

    if (a < 0) {
        return -1;
    }

    if (!cef_type_ok(N(a)->type, CEF_T_NUM, CEF_T_NUM)) {
        cef_perror(ps, N(a)->start, "type error: '-' needs a number, not %s",
                   cef_type_names[N(a)->type]);
        return -1;
    }

    if (N(a)->op == CEF_OP_NUM) {
        N(a)->u.num = -N(a)->u.num;
        N(a)->start = (uint32_t) start;
        return a;
    }

    n = cef_node(ps, CEF_OP_NEG, CEF_T_NUM, start, N(a)->end);
    if (n >= 0) {
        N(n)->a = a;
    }

    return n;
}


static int32_t
cef_binary(cef_parser_t *ps, cef_op_t op, cef_stype_t type, int32_t a,
    int32_t b)
{
    int32_t  n;

    n = cef_node(ps, op, type, N(a)->start, N(b)->end);
    if (n >= 0) {
        N(n)->a = a;
        N(n)->b = b;
    }

    return n;
}


static int32_t
cef_parse_arith(cef_parser_t *ps, int level)
{
    int32_t      a, b;
    cef_op_t     op;
    size_t       at;
    const char  *sym;

    a = level ? cef_parse_unary(ps) : cef_parse_arith(ps, 1);

    for ( ;; ) {
        if (a < 0) {
            return -1;
        }

        switch (ps->tok.type) {
        case CEF_TOK_PLUS:  op = CEF_OP_ADD; sym = "+"; break;
        case CEF_TOK_MINUS: op = CEF_OP_SUB; sym = "-"; break;
        case CEF_TOK_STAR:  op = CEF_OP_MUL; sym = "*"; break;
        case CEF_TOK_SLASH: op = CEF_OP_DIV; sym = "/"; break;
        default:
            return a;
        }

        if ((level == 0) != (op == CEF_OP_ADD || op == CEF_OP_SUB)) {
            return a;
        }

        at = ps->tok.start;
        cef_advance(ps);
        b = level ? cef_parse_unary(ps) : cef_parse_arith(ps, 1);
        if (b < 0) {
            return -1;
        }

        if (!cef_type_ok(N(a)->type, CEF_T_NUM, CEF_T_NUM)
            || !cef_type_ok(N(b)->type, CEF_T_NUM, CEF_T_NUM))
        {
            cef_perror(ps, at, "type error: '%s' needs numbers, not %s", sym,
                       cef_type_names[N(a)->type != CEF_T_NUM
                                      && N(a)->type != CEF_T_ANY
                                      ? N(a)->type : N(b)->type]);
            return -1;
        }

        a = cef_binary(ps, op, CEF_T_NUM, a, b);
    }
}


static int
cef_cmp_op(cef_parser_t *ps, cef_op_t *op)
{
    switch (ps->tok.type) {
    case CEF_TOK_EQ: *op = CEF_OP_EQ; return 1;
    case CEF_TOK_NE: *op = CEF_OP_NE; return 1;
    case CEF_TOK_LT: *op = CEF_OP_LT; return 1;
    case CEF_TOK_LE: *op = CEF_OP_LE; return 1;
    case CEF_TOK_GT: *op = CEF_OP_GT; return 1;
    case CEF_TOK_GE: *op = CEF_OP_GE; return 1;
    default: break;
    }

    if (cef_tok_is(ps, "in")) {
        *op = CEF_OP_IN;
    } else if (cef_tok_is(ps, "contains")) {
        *op = CEF_OP_CONTAINS;
    } else if (cef_tok_is(ps, "starts_with")) {
        *op = CEF_OP_STARTS_WITH;
    } else if (cef_tok_is(ps, "ends_with")) {
        *op = CEF_OP_ENDS_WITH;
    } else if (cef_tok_is(ps, "matches")) {
        *op = CEF_OP_MATCHES;
    } else {
        return 0;
    }

    return 1;
}


static int
cef_compile_regex(cef_parser_t *ps, int32_t n, int32_t pat)
{
    int          rc;
    PCRE2_SIZE   erroff;
    PCRE2_UCHAR  msg[160];
    pcre2_code  *re;

    if (N(pat)->op != CEF_OP_STR) {
        cef_perror(ps, N(pat)->start, "the pattern of 'matches' must be a "
                   "string literal");
        return -1;
    }

    re = pcre2_compile((PCRE2_SPTR) N(pat)->u.str.data, N(pat)->u.str.len,
                       PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &rc, &erroff,
                       NULL);
    if (re == NULL) {
        pcre2_get_error_message(rc, msg, sizeof(msg));
        cef_perror(ps, N(pat)->start, "invalid regex: %s at pattern offset "
                   "%zu", (char *) msg, (size_t) erroff);
        return -1;
    }

    N(n)->jit = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0;
    N(n)->u.re = re;
    return 0;
}


static int32_t
cef_parse_cmp(cef_parser_t *ps)
{
    int32_t       a, b, n;
    cef_op_t         op;
    cef_stype_t      ta, tb;
    size_t           at;
    const char      *sym;
    int              negate = 0;
    cef_expr_lex_t   save_lx;
    cef_expr_tok_t   save_tok;

    a = cef_parse_arith(ps, 0);
    if (a < 0) {
        return -1;
    }

    at = ps->tok.start;

    /* "x not in y" */

    if (cef_tok_is(ps, "not")) {
        save_lx = ps->lx;
        save_tok = ps->tok;
        cef_advance(ps);

        if (cef_tok_is(ps, "in")) {
            negate = 1;

        } else {
            ps->lx = save_lx;
            ps->tok = save_tok;
            ps->failed = 0;
            return a;
        }
    }

    if (!cef_cmp_op(ps, &op)) {
        return a;
    }

    sym = ps->tok.type == CEF_TOK_IDENT
          ? NULL : cef_expr_lex_tok_name(ps->tok.type);
    cef_advance(ps);

    b = cef_parse_arith(ps, 0);
    if (b < 0) {
        return -1;
    }

    ta = N(a)->type;
    tb = N(b)->type;

    switch (op) {

    case CEF_OP_EQ:
    case CEF_OP_NE:
        if (ta == CEF_T_NULL || tb == CEF_T_NULL) {
            break;
        }

        if (ta == CEF_T_ARRAY || ta == CEF_T_MAP || tb == CEF_T_ARRAY
            || tb == CEF_T_MAP)
        {
            cef_perror(ps, at, "type error: %s cannot compare %s (use 'in' "
                       "or 'contains')", sym,
                       cef_type_names[ta == CEF_T_ARRAY || ta == CEF_T_MAP
                                      ? ta : tb]);
            return -1;
        }

        if (ta != CEF_T_ANY && tb != CEF_T_ANY && ta != tb) {
            cef_perror(ps, at, "type error: %s compares %s with %s, which is "
                       "never true", sym, cef_type_names[ta],
                       cef_type_names[tb]);
            return -1;
        }
        break;

    case CEF_OP_LT:
    case CEF_OP_LE:
    case CEF_OP_GT:
    case CEF_OP_GE:
        if (!cef_type_ok(ta, CEF_T_NUM, CEF_T_NUM)
            || !cef_type_ok(tb, CEF_T_NUM, CEF_T_NUM))
        {
            cef_perror(ps, cef_type_ok(ta, CEF_T_NUM, CEF_T_NUM)
                           ? N(b)->start : N(a)->start,
                       "type error: %s needs numbers, not %s", sym,
                       cef_type_names[cef_type_ok(ta, CEF_T_NUM, CEF_T_NUM)
                                      ? tb : ta]);
            return -1;
        }
        break;

    case CEF_OP_IN:
        if (!cef_type_ok(ta, CEF_T_STR, CEF_T_NUM)) {
            cef_perror(ps, N(a)->start, "type error: the left side of 'in' "
                       "must be a string or number, not %s",
                       cef_type_names[ta]);
            return -1;
        }

        if (!cef_type_ok(tb, CEF_T_ARRAY, CEF_T_MAP)) {
            cef_perror(ps, N(b)->start, "type error: the right side of 'in' "
                       "must be an array or a map, not %s",
                       cef_type_names[tb]);
            return -1;
        }
        break;

    case CEF_OP_CONTAINS:
        if (!cef_type_ok(ta, CEF_T_STR, CEF_T_ARRAY) && ta != CEF_T_MAP) {
            cef_perror(ps, N(a)->start, "type error: 'contains' needs a "
                       "string, array or map on the left, not %s",
                       cef_type_names[ta]);
            return -1;
        }

        if (!cef_type_ok(tb, CEF_T_STR, CEF_T_NUM)
            || (ta == CEF_T_STR && tb == CEF_T_NUM))
        {
            cef_perror(ps, N(b)->start, "type error: 'contains' needs a "
                       "string on the right, not %s", cef_type_names[tb]);
            return -1;
        }
        break;

    case CEF_OP_STARTS_WITH:
    case CEF_OP_ENDS_WITH:
    case CEF_OP_MATCHES:
        if (!cef_type_ok(ta, CEF_T_STR, CEF_T_STR)
            || !cef_type_ok(tb, CEF_T_STR, CEF_T_STR))
        {
            cef_perror(ps, cef_type_ok(ta, CEF_T_STR, CEF_T_STR)
                           ? N(b)->start : N(a)->start,
                       "type error: '%s' needs strings, not %s",
                       op == CEF_OP_MATCHES ? "matches"
                       : op == CEF_OP_STARTS_WITH ? "starts_with"
                       : "ends_with",
                       cef_type_names[cef_type_ok(ta, CEF_T_STR, CEF_T_STR)
                                      ? tb : ta]);
            return -1;
        }
        break;

    default:
        break;
    }

    n = cef_binary(ps, op, CEF_T_BOOL, a, b);
    if (n < 0) {
        return -1;
    }

    if (op == CEF_OP_MATCHES && cef_compile_regex(ps, n, b) != 0) {
        return -1;
    }

    if (cef_cmp_op(ps, &op) || cef_tok_is(ps, "not")) {
        cef_perror(ps, ps->tok.start, "comparisons cannot be chained; use "
                   "'and'");
        return -1;
    }

    if (negate) {
        a = n;
        n = cef_node(ps, CEF_OP_NOT, CEF_T_BOOL, N(a)->start, N(a)->end);
        if (n >= 0) {
            N(n)->a = a;
        }
    }

    return n;
}


static int32_t
cef_parse_not(cef_parser_t *ps)
{
    size_t   start = ps->tok.start;
    int32_t  a, n;

    if (!cef_tok_is(ps, "not")) {
        return cef_parse_cmp(ps);
    }

    if (cef_deeper(ps, start) != 0) {
        return -1;
    }

    cef_advance(ps);
    a = cef_parse_not(ps);
    ps->depth--;

    if (a < 0) {
        return -1;
    }

    if (!cef_type_ok(N(a)->type, CEF_T_BOOL, CEF_T_BOOL)) {
        cef_perror(ps, N(a)->start, "type error: 'not' needs a boolean, "
                   "not %s", cef_type_names[N(a)->type]);
        return -1;
    }

    n = cef_node(ps, CEF_OP_NOT, CEF_T_BOOL, start, N(a)->end);
    if (n >= 0) {
        N(n)->a = a;
    }

    return n;
}


static int32_t
cef_parse_logic(cef_parser_t *ps, int is_or)
{
    int32_t      a, b;
    size_t       at;
    const char  *kw = is_or ? "or" : "and";

    a = is_or ? cef_parse_logic(ps, 0) : cef_parse_not(ps);

    while (a >= 0 && cef_tok_is(ps, kw)) {
        at = ps->tok.start;
        cef_advance(ps);

        b = is_or ? cef_parse_logic(ps, 0) : cef_parse_not(ps);
        if (b < 0) {
            return -1;
        }

        if (!cef_type_ok(N(a)->type, CEF_T_BOOL, CEF_T_BOOL)
            || !cef_type_ok(N(b)->type, CEF_T_BOOL, CEF_T_BOOL))
        {
            cef_perror(ps, at, "type error: '%s' needs booleans, not %s", kw,
                       cef_type_names[cef_type_ok(N(a)->type, CEF_T_BOOL,
                                                  CEF_T_BOOL)
                                      ? N(b)->type : N(a)->type]);
            return -1;
        }

        a = cef_binary(ps, is_or ? CEF_OP_OR : CEF_OP_AND, CEF_T_BOOL, a, b);
    }

    return a;
}


static int32_t
cef_parse_or(cef_parser_t *ps)
{
    int32_t  n;

    if (cef_deeper(ps, ps->tok.start) != 0) {
        return -1;
    }

    n = cef_parse_logic(ps, 1);
    ps->depth--;

    return n;
}


/*
 * Parse e->src (len bytes; e->strbuf as large) into e's nodes, as an
 * expression, a condition or a path (CEF_COMPILE_*): 0, or -1 with err
 * set.  The caller frees e either way.
 */
int
cef_expr_parse(cef_expr_symtab_t *st, cef_expr_t *e, size_t len,
    cef_expr_error_t *err, int what)
{
    cef_parser_t  ps;

    memset(&ps, 0, sizeof(ps));
    ps.e = e;
    ps.st = st;
    ps.err = err;
    cef_expr_lex_init(&ps.lx, e->src, len, e->strbuf);
    cef_advance(&ps);

    if (!ps.failed && ps.tok.type == CEF_TOK_EOF) {
        cef_perror(&ps, 0, "empty expression");
    }

    if (what == CEF_COMPILE_PATH) {
        if (!ps.failed && ps.tok.type != CEF_TOK_PATH) {
            cef_perror(&ps, ps.tok.start, "expected a path such as "
                       "profile.first_name, found %s",
                       cef_expr_lex_tok_name(ps.tok.type));
        }

        e->root = ps.failed ? -1 : cef_parse_path(&ps);

    } else {
        e->root = ps.failed ? -1 : cef_parse_or(&ps);
    }

    if (!ps.failed && ps.tok.type != CEF_TOK_EOF) {
        if (ps.tok.type == CEF_TOK_IDENT || ps.tok.type == CEF_TOK_PATH) {
            cef_perror(&ps, ps.tok.start, "unexpected '%.*s' (missing "
                       "'and' or 'or'?)", (int) ps.tok.text.len,
                       ps.tok.text.data);
        } else {
            cef_perror(&ps, ps.tok.start, "unexpected %s",
                       cef_expr_lex_tok_name(ps.tok.type));
        }
    }

    if (what == CEF_COMPILE_COND && !ps.failed && e->root >= 0
        && e->nodes[e->root].type != CEF_T_BOOL
        && e->nodes[e->root].type != CEF_T_ANY)
    {
        cef_perror(&ps, 0, "type error: a condition must be true or false, "
                   "not %s", cef_type_names[e->nodes[e->root].type]);
    }

    if (ps.failed || e->root < 0) {
        if (!ps.failed) {
            cef_perror(&ps, 0, "invalid expression");
        }
        return -1;
    }

    return 0;
}
