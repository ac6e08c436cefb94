/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_expr explain: why a condition is false, in words ("profile.visits
 * is 2 (profile.visits is 2)" ...), and the one text form of a value that
 * cef-rules and the glue's explain print.  Evaluates through the
 * evaluator (cef_expr_eval.c); formats only.
 */

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cef_expr_int.h"


typedef struct {
    char    *buf;
    size_t   size;
    size_t   len;
} cef_sbuf_t;


static void
cef_sb_printf(cef_sbuf_t *sb, const char *fmt, ...)
{
    va_list  args;
    int      n;

    if (sb->len + 1 >= sb->size) {
        return;
    }

    va_start(args, fmt);
    n = vsnprintf(sb->buf + sb->len, sb->size - sb->len, fmt, args);
    va_end(args);

    if (n > 0) {
        sb->len += (size_t) n;
        if (sb->len >= sb->size) {
            sb->len = sb->size - 1;
        }
    }
}


static void
cef_sb_str(cef_sbuf_t *sb, cef_span_t s, size_t max)
{
    size_t  i;
    int     c;

    cef_sb_printf(sb, "\"");

    for (i = 0; i < s.len && i < max; i++) {
        c = (unsigned char) s.data[i];

        if (c == '"' || c == '\\') {
            cef_sb_printf(sb, "\\%c", c);
        } else if (c < 0x20 || c == 0x7f) {
            cef_sb_printf(sb, "\\x%02x", c);
        } else {
            cef_sb_printf(sb, "%c", c);
        }
    }

    cef_sb_printf(sb, i < s.len ? "...\"" : "\"");
}


static void
cef_sb_num(cef_sbuf_t *sb, double d)
{
    if (d == floor(d) && fabs(d) < 1e15) {
        cef_sb_printf(sb, "%.0f", d);
    } else {
        cef_sb_printf(sb, "%g", d);
    }
}


static void
cef_sb_value(cef_sbuf_t *sb, const cef_value_t *v)
{
    size_t      pos = 0;
    cef_span_t  s;
    double      d;
    int         rc, first = 1, count = 0;

    switch (v->type) {
    case CEF_VAL_NIL:
        cef_sb_printf(sb, "null");
        return;
    case CEF_VAL_BOOL:
        cef_sb_printf(sb, v->u.b ? "true" : "false");
        return;
    case CEF_VAL_INT:
        cef_sb_printf(sb, "%lld", (long long) v->u.i);
        return;
    case CEF_VAL_FLOAT:
        cef_sb_num(sb, v->u.f);
        return;
    case CEF_VAL_STR:
        cef_sb_str(sb, v->u.s, 80);
        return;
    case CEF_VAL_STR_ARRAY:
        cef_sb_printf(sb, "[");
        while ((rc = cef_value_array_next(v, &pos, &s)) == 1) {
            if (++count > 20) {
                cef_sb_printf(sb, ", ...");
                break;
            }
            cef_sb_printf(sb, first ? "" : ", ");
            cef_sb_str(sb, s, 40);
            first = 0;
        }
        cef_sb_printf(sb, rc < 0 ? " <malformed>]" : "]");
        return;
    case CEF_VAL_NUM_MAP:
        cef_sb_printf(sb, "{");
        while ((rc = cef_value_map_next(v, &pos, &s, &d)) == 1) {
            if (++count > 20) {
                cef_sb_printf(sb, ", ...");
                break;
            }
            cef_sb_printf(sb, first ? "" : ", ");
            cef_sb_str(sb, s, 40);
            cef_sb_printf(sb, ": ");
            cef_sb_num(sb, d);
            first = 0;
        }
        cef_sb_printf(sb, rc < 0 ? " <malformed>}" : "}");
        return;
    default:
        cef_sb_printf(sb, "<unknown type>");
    }
}


void
cef_expr_format_value(const cef_value_t *v, char *buf, size_t size)
{
    cef_sbuf_t  sb = { buf, size, 0 };

    if (size == 0) {
        return;
    }

    buf[0] = '\0';
    cef_sb_value(&sb, v);
}


static void
cef_sb_val(cef_sbuf_t *sb, const cef_expr_t *e, const cef_val_t *v)
{
    cef_value_t  cv;

    if (v->t == CEF_V_LIST) {
        cef_sb_printf(sb, "%.*s", (int) (CEF_NODE(e, v->u.list)->end
                                         - CEF_NODE(e, v->u.list)->start),
                      e->src + CEF_NODE(e, v->u.list)->start);
        return;
    }

    cef_expr_eval_to_value(v, &cv);
    cef_sb_value(sb, &cv);
}


static int
cef_is_literal(const cef_expr_t *e, int32_t i)
{
    cef_op_t  op = (cef_op_t) CEF_NODE(e, i)->op;

    return op <= CEF_OP_LIST;
}


static void
cef_sb_src(cef_sbuf_t *sb, const cef_expr_t *e, int32_t i)
{
    const cef_node_t  *n = CEF_NODE(e, i);

    cef_sb_printf(sb, "%.*s", (int) (n->end - n->start), e->src + n->start);
}


static void
cef_sb_operand(cef_sbuf_t *sb, const cef_expr_t *e, int32_t i,
    cef_expr_eval_t *ev, int *first)
{
    cef_val_t  v;

    if (i < 0 || cef_is_literal(e, i)) {
        return;
    }

    cef_expr_eval_node(e, i, ev, &v);
    cef_sb_printf(sb, *first ? " (" : ", ");
    cef_sb_src(sb, e, i);
    cef_sb_printf(sb, " is ");
    cef_sb_val(sb, e, &v);
    *first = 0;
}


static void
cef_explain(cef_sbuf_t *sb, const cef_expr_t *e, int32_t i,
    cef_expr_eval_t *ev)
{
    const cef_node_t  *n = CEF_NODE(e, i);
    cef_val_t          v;
    int                first = 1;

    switch ((cef_op_t) n->op) {

    case CEF_OP_AND:
        cef_expr_eval_node(e, n->a, ev, &v);
        cef_explain(sb, e, cef_expr_eval_true(&v) ? n->b : n->a, ev);
        return;

    case CEF_OP_OR:
        cef_explain(sb, e, n->a, ev);
        cef_sb_printf(sb, "; and ");
        cef_explain(sb, e, n->b, ev);
        return;

    case CEF_OP_NOT:
        cef_expr_eval_node(e, n->a, ev, &v);

        if (v.t == CEF_V_BOOL) {
            cef_sb_src(sb, e, n->a);
            cef_sb_printf(sb, " is true");
        } else {
            cef_sb_src(sb, e, i);
            cef_sb_printf(sb, " is null");
            cef_sb_operand(sb, e, n->a, ev, &first);
            if (!first) {
                cef_sb_printf(sb, ")");
            }
        }
        return;

    default:
        break;
    }

    cef_expr_eval_node(e, i, ev, &v);
    cef_sb_src(sb, e, i);
    cef_sb_printf(sb, " is ");
    cef_sb_val(sb, e, &v);

    if (n->op >= CEF_OP_EQ) {
        cef_sb_operand(sb, e, n->a, ev, &first);
        cef_sb_operand(sb, e, n->b, ev, &first);

        if (!first) {
            cef_sb_printf(sb, ")");
        }
    }
}


int
cef_expr_explain(const cef_expr_t *e, cef_expr_eval_t *ev, char *buf,
    size_t size)
{
    cef_sbuf_t  sb = { buf, size, 0 };
    int         m;

    if (size) {
        buf[0] = '\0';
    }

    m = cef_expr_match(e, ev);

    if (m) {
        cef_sb_src(&sb, e, e->root);
        cef_sb_printf(&sb, " is true");

    } else {
        cef_explain(&sb, e, e->root, ev);
    }

    return m;
}
