/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_template: placeholder templates for offer HTML.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cef_template.h"
#include "cef_expr_int.h"
#include "cef_text.h"


typedef struct {
    cef_span_t   lit;        /* literal text before the placeholder */
    cef_expr_t  *path;       /* NULL for the trailing literal part */
    cef_span_t   def;        /* default text (unescaped) */
    size_t       at;         /* offset of the path in the source */
} cef_tpl_part_t;


struct cef_template_s {
    cef_tpl_part_t  *parts;
    size_t           nparts;
    size_t           nholders;
    char            *text;     /* copy of the source plus defaults */
};


static void
cef_tpl_error(cef_expr_error_t *err, size_t off, const char *msg,
    const char *detail)
{
    if (err) {
        err->offset = off;
        snprintf(err->msg, sizeof(err->msg), "%s%s", msg, detail);
    }
}


static const char *
cef_tpl_find(const char *p, const char *end, const char *s)
{
    for ( ; p + 1 < end; p++) {
        if (p[0] == s[0] && p[1] == s[1]) {
            return p;
        }
    }

    return NULL;
}


/*
 * Parse the inside of {{ }}: PATH [ '|' default '(' STRING ')' ].
 * inner is NUL-terminated within t->text.
 */
static int
cef_tpl_placeholder(cef_expr_symtab_t *st, cef_tpl_part_t *part,
    const char *inner, size_t len, char *strbuf, size_t base,
    cef_expr_error_t *err)
{
    cef_expr_lex_t      lx;
    cef_expr_tok_t      tok;
    cef_expr_error_t    perr;
    size_t              pstart, pend;
    static const char  *filters[] = { "default", NULL };
    const char         *near;

    cef_expr_lex_init(&lx, inner, len, strbuf);
    cef_expr_lex_next(&lx, &tok);

    if (tok.type == CEF_TOK_EOF) {
        cef_tpl_error(err, base, "empty placeholder '{{ }}'", "");
        return -1;
    }

    if (tok.type != CEF_TOK_PATH) {
        if (tok.type == CEF_TOK_ERROR) {
            cef_tpl_error(err, base + tok.start, tok.error, "");
        } else {
            cef_tpl_error(err, base + tok.start, "a placeholder holds a path "
                          "such as profile.first_name, found ",
                          cef_expr_lex_tok_name(tok.type));
        }
        return -1;
    }

    pstart = tok.start;
    pend = tok.end;
    part->at = base + pstart;

    part->path = cef_expr_compile_path(st, inner + pstart, pend - pstart,
                                       &perr);
    if (part->path == NULL) {
        cef_tpl_error(err, base + pstart + perr.offset, perr.msg, "");
        return -1;
    }

    cef_expr_lex_next(&lx, &tok);

    if (tok.type == CEF_TOK_EOF) {
        return 0;
    }

    if (tok.type != CEF_TOK_PIPE) {
        cef_tpl_error(err, base + tok.start, "expected '|' or '}}' after the "
                      "path, found ", cef_expr_lex_tok_name(tok.type));
        return -1;
    }

    cef_expr_lex_next(&lx, &tok);

    if (tok.type != CEF_TOK_IDENT || tok.text.len != 7
        || memcmp(tok.text.data, "default", 7) != 0)
    {
        if (tok.type == CEF_TOK_IDENT
            && (near = cef_expr_nearest(tok.text.data, tok.text.len, filters)))
        {
            cef_tpl_error(err, base + tok.start, "unknown filter (did you "
                          "mean 'default'?)", "");
        } else {
            cef_tpl_error(err, base + tok.start, "the only filter is "
                          "default(\"text\")", "");
        }
        return -1;
    }

    cef_expr_lex_next(&lx, &tok);
    if (tok.type != CEF_TOK_LPAREN) {
        cef_tpl_error(err, base + tok.start, "expected '(' after default",
                      "");
        return -1;
    }

    cef_expr_lex_next(&lx, &tok);
    if (tok.type != CEF_TOK_STR) {
        cef_tpl_error(err, base + tok.start, tok.type == CEF_TOK_ERROR
                      ? tok.error : "default() takes a quoted string", "");
        return -1;
    }

    part->def = tok.text;

    cef_expr_lex_next(&lx, &tok);
    if (tok.type != CEF_TOK_RPAREN) {
        cef_tpl_error(err, base + tok.start, "expected ')' after the default "
                      "text", "");
        return -1;
    }

    cef_expr_lex_next(&lx, &tok);
    if (tok.type != CEF_TOK_EOF) {
        cef_tpl_error(err, base + tok.start, "expected '}}'", "");
        return -1;
    }

    return 0;
}


cef_template_t *
cef_template_compile(cef_expr_symtab_t *st, const char *src, size_t len,
    cef_expr_error_t *err)
{
    cef_template_t  *t;
    const char      *p, *end, *open, *close;
    char            *text, *strbuf;
    size_t           n, cap = 4;
    cef_tpl_part_t  *parts;

    t = calloc(1, sizeof(cef_template_t));
    if (t == NULL) {
        goto nomem;
    }

    /* the source (NUL-terminated placeholders are cut in place) + defaults */

    t->text = malloc(2 * len + 2);
    t->parts = calloc(cap, sizeof(cef_tpl_part_t));
    if (t->text == NULL || t->parts == NULL) {
        cef_template_free(t);
        goto nomem;
    }

    text = t->text;
    memcpy(text, src, len);
    text[len] = '\0';
    strbuf = text + len + 1;

    p = text;
    end = text + len;

    for ( ;; ) {
        if (t->nparts == cap) {
            cap *= 2;
            parts = realloc(t->parts, cap * sizeof(cef_tpl_part_t));
            if (parts == NULL) {
                cef_template_free(t);
                goto nomem;
            }
            t->parts = parts;
            memset(parts + t->nparts, 0, (cap - t->nparts) * sizeof(*parts));
        }

        open = cef_tpl_find(p, end, "{{");

        t->parts[t->nparts].lit.data = p;
        t->parts[t->nparts].lit.len = (size_t) ((open ? open : end) - p);

        if (open == NULL) {
            t->nparts++;
            break;
        }

        close = cef_tpl_find(open + 2, end, "}}");
        if (close == NULL) {
            cef_tpl_error(err, (size_t) (open - text), "unterminated "
                          "placeholder: '{{' without '}}'", "");
            t->nparts++;
            cef_template_free(t);
            return NULL;
        }

        n = (size_t) (close - open - 2);

        if (cef_tpl_placeholder(st, &t->parts[t->nparts], open + 2, n,
                                strbuf, (size_t) (open + 2 - text), err)
            != 0)
        {
            t->nparts++;
            cef_template_free(t);
            return NULL;
        }

        /* defaults are unescaped into strbuf; keep them apart */
        strbuf += n;

        t->nparts++;
        t->nholders++;
        p = close + 2;
    }

    return t;

nomem:
    cef_tpl_error(err, 0, "out of memory", "");
    return NULL;
}


typedef struct {
    cef_expr_ref_pt   fn;
    void             *data;
    size_t            at;
} cef_tpl_refs_t;


static void
cef_tpl_ref(void *data, uint32_t ref, size_t offset)
{
    cef_tpl_refs_t  *tr = data;

    tr->fn(tr->data, ref, tr->at + offset);
}


void
cef_template_refs(const cef_template_t *t, cef_expr_ref_pt fn, void *data)
{
    size_t          i;
    cef_tpl_refs_t  tr;

    tr.fn = fn;
    tr.data = data;

    for (i = 0; i < t->nparts; i++) {
        if (t->parts[i].path) {
            tr.at = t->parts[i].at;
            cef_expr_refs(t->parts[i].path, cef_tpl_ref, &tr);
        }
    }
}


void
cef_template_free(cef_template_t *t)
{
    size_t  i;

    if (t == NULL) {
        return;
    }

    for (i = 0; t->parts && i < t->nparts; i++) {
        cef_expr_free(t->parts[i].path);
    }

    free(t->parts);
    free(t->text);
    free(t);
}


int
cef_template_is_static(const cef_template_t *t)
{
    return t->nholders == 0;
}


size_t
cef_template_placeholders(const cef_template_t *t)
{
    return t->nholders;
}


/*
 * What cef_template_escape() does with a byte: 0 copies it (printable
 * ASCII and controls), 1 replaces it by an entity, 2 starts a UTF-8
 * sequence to check.  A name or a default of plain text goes through the
 * one-load-per-byte loop below and is copied in one piece (a switch per
 * byte before: the template loop of issue 22).
 */
static const uint8_t  cef_tpl_class[256] = {
    ['&'] = 1, ['<'] = 1, ['>'] = 1, ['"'] = 1, ['\''] = 1,
    [0x80] = 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2
};


size_t
cef_template_escape(const char *src, size_t len, char *buf, size_t size)
{
    size_t          i = 0, at = 0, run = 0, l, el;
    const char     *ent;
    const uint8_t  *p = (const uint8_t *) src;

    /* an absent default is (NULL, 0): NULL + 0 below would be undefined */
    if (len == 0) {
        return 0;
    }

    while (i < len) {
        if (cef_tpl_class[p[i]] == 0) {
            i++;
            continue;
        }

        if (p[i] >= 0x80) {
            l = cef_text_utf8_len(p + i, len - i);
            if (l) {
                i += l;
                continue;
            }

            /* the page and the decision API's JSON show the same text */
            ent = "\xef\xbf\xbd";    /* U+FFFD */
            el = 3;

        } else {
            switch (p[i]) {
            case '&':  ent = "&amp;"; el = 5; break;
            case '<':  ent = "&lt;"; el = 4; break;
            case '>':  ent = "&gt;"; el = 4; break;
            case '"':  ent = "&quot;"; el = 6; break;
            default:   ent = "&#39;"; el = 5; break;
            }
        }

        at = cef_text_put(buf, size, at, src + run, i - run);
        at = cef_text_put(buf, size, at, ent, el);
        run = ++i;
    }

    return cef_text_put(buf, size, at, src + run, len - run);
}


static size_t
cef_render_value(const cef_tpl_part_t *part, const cef_value_t *v, char *buf,
    size_t size, size_t at)
{
    char        num[64];
    size_t      pos = 0;
    uint64_t    u;
    cef_span_t  s;
    int         n, first = 1, rc;

    switch (v->type) {

    case CEF_VAL_STR:
        return at + cef_template_escape(v->u.s.data, v->u.s.len,
                                        at < size ? buf + at : NULL,
                                        at < size ? size - at : 0);

    case CEF_VAL_INT:
        /* by hand: placeholders are rendered per response */
        u = v->u.i < 0 ? 0 - (uint64_t) v->u.i : (uint64_t) v->u.i;
        n = (int) sizeof(num);

        do {
            num[--n] = (char) ('0' + u % 10);
            u /= 10;
        } while (u);

        if (v->u.i < 0) {
            num[--n] = '-';
        }

        return cef_text_put(buf, size, at, num + n,
                            sizeof(num) - (size_t) n);

    case CEF_VAL_FLOAT:
        if (!isfinite(v->u.f)) {
            break;
        }
        n = snprintf(num, sizeof(num), "%.15g", v->u.f);
        return cef_text_put(buf, size, at, num, (size_t) n);

    case CEF_VAL_BOOL:
        return cef_text_put(buf, size, at, v->u.b ? "true" : "false",
                            v->u.b ? 4 : 5);

    case CEF_VAL_STR_ARRAY:
        if (v->u.seq.n == 0) {
            break;
        }

        while ((rc = cef_value_array_next(v, &pos, &s)) == 1) {
            if (!first) {
                at = cef_text_put(buf, size, at, ", ", 2);
            }
            at += cef_template_escape(s.data, s.len,
                                      at < size ? buf + at : NULL,
                                      at < size ? size - at : 0);
            first = 0;
        }

        if (!first) {
            return at;
        }
        break;

    default:
        break;
    }

    return at + cef_template_escape(part->def.data, part->def.len,
                                    at < size ? buf + at : NULL,
                                    at < size ? size - at : 0);
}


size_t
cef_template_render(const cef_template_t *t, cef_expr_eval_t *ev, char *buf,
    size_t size)
{
    size_t        i, at = 0;
    cef_value_t   v;

    for (i = 0; i < t->nparts; i++) {
        at = cef_text_put(buf, size, at, t->parts[i].lit.data,
                          t->parts[i].lit.len);

        if (t->parts[i].path == NULL) {
            continue;
        }

        cef_expr_value(t->parts[i].path, ev, &v);
        at = cef_render_value(&t->parts[i], &v, buf, size, at);
    }

    return at;
}
