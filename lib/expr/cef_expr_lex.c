/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_expr lexer: expression text to tokens.
 */

#include <stdlib.h>
#include <string.h>

#include "cef_expr_int.h"


static int
cef_is_ident_start(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}


static int
cef_is_ident(int c)
{
    return cef_is_ident_start(c) || (c >= '0' && c <= '9');
}


static int
cef_is_digit(int c)
{
    return c >= '0' && c <= '9';
}


void
cef_expr_lex_init(cef_expr_lex_t *lx, const char *src, size_t len,
    char *strbuf)
{
    lx->src = src;
    lx->len = len;
    lx->pos = 0;
    lx->strbuf = strbuf;
    lx->strpos = 0;
}


static void
cef_lex_error(cef_expr_lex_t *lx, cef_expr_tok_t *tok, size_t at,
    const char *msg)
{
    tok->type = CEF_TOK_ERROR;
    tok->start = at;
    tok->end = at + 1;
    tok->error = msg;
    lx->pos = lx->len;
}


/*
 * A path is NAME(.NAME)*.  After request.header., request.cookie. and
 * request.arg. the last segment may also contain '-' (header and cookie
 * names do), which elsewhere is the minus operator.
 */
static void
cef_lex_name(cef_expr_lex_t *lx, cef_expr_tok_t *tok)
{
    const char  *s = lx->src;
    size_t       p = lx->pos, start = lx->pos;
    int          dots = 0, dashes;

    while (p < lx->len && cef_is_ident(s[p])) {
        p++;
    }

    while (p + 1 < lx->len && s[p] == '.' && cef_is_ident(s[p + 1])) {
        dots++;
        p++;

        dashes = (p - start == 15
                  && memcmp(s + start, "request.header.", 15) == 0)
                 || (p - start == 15
                     && memcmp(s + start, "request.cookie.", 15) == 0)
                 || (p - start == 12
                     && memcmp(s + start, "request.arg.", 12) == 0);

        while (p < lx->len && (cef_is_ident(s[p]) || (dashes && s[p] == '-')))
        {
            p++;
        }
    }

    tok->type = dots ? CEF_TOK_PATH : CEF_TOK_IDENT;
    tok->start = start;
    tok->end = p;
    tok->text.data = s + start;
    tok->text.len = p - start;
    lx->pos = p;
}


static void
cef_lex_number(cef_expr_lex_t *lx, cef_expr_tok_t *tok)
{
    const char  *s = lx->src;
    size_t       p = lx->pos, start = lx->pos;
    char         buf[64];
    double       unit;

    while (p < lx->len && cef_is_digit(s[p])) {
        p++;
    }

    if (p + 1 < lx->len && s[p] == '.' && cef_is_digit(s[p + 1])) {
        p++;
        while (p < lx->len && cef_is_digit(s[p])) {
            p++;
        }
    }

    if (p < lx->len && (s[p] == 'e' || s[p] == 'E')) {
        size_t  q = p + 1;

        if (q < lx->len && (s[q] == '+' || s[q] == '-')) {
            q++;
        }

        if (q < lx->len && cef_is_digit(s[q])) {
            p = q;
            while (p < lx->len && cef_is_digit(s[p])) {
                p++;
            }
        }
    }

    if (p - start >= sizeof(buf)) {
        cef_lex_error(lx, tok, start, "number too long");
        return;
    }

    memcpy(buf, s + start, p - start);
    buf[p - start] = '\0';

    unit = 1;

    if (p < lx->len && cef_is_ident_start(s[p])) {
        switch (s[p]) {
        case 'w': unit = 7 * 86400; break;
        case 'd': unit = 86400; break;
        case 'h': unit = 3600; break;
        case 'm': unit = 60; break;
        case 's': unit = 1; break;
        default: unit = 0;
        }

        if (unit == 0 || (p + 1 < lx->len && cef_is_ident(s[p + 1]))) {
            cef_lex_error(lx, tok, p,
                          "invalid number suffix (durations are "
                          "NUMBER followed by w, d, h, m or s)");
            return;
        }

        p++;
    }

    tok->type = CEF_TOK_NUM;
    tok->start = start;
    tok->end = p;
    tok->num = strtod(buf, NULL) * unit;
    lx->pos = p;
}


static void
cef_lex_string(cef_expr_lex_t *lx, cef_expr_tok_t *tok)
{
    const char  *s = lx->src;
    size_t       p = lx->pos + 1, start = lx->pos;
    char         q = s[lx->pos], c;
    char        *out = lx->strbuf + lx->strpos;
    size_t       n = 0;

    for ( ;; ) {
        if (p >= lx->len) {
            cef_lex_error(lx, tok, start, "unterminated string");
            return;
        }

        c = s[p++];

        if (c == q) {
            break;
        }

        if (c == '\\') {
            if (p >= lx->len) {
                cef_lex_error(lx, tok, start, "unterminated string");
                return;
            }

            c = s[p++];

            switch (c) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case '\\': case '"': case '\'': case '/': break;
            default:
                cef_lex_error(lx, tok, p - 2,
                              "invalid escape in string (use \\\\, \\\", "
                              "\\', \\n or \\t)");
                return;
            }
        }

        out[n++] = c;
    }

    tok->type = CEF_TOK_STR;
    tok->start = start;
    tok->end = p;
    tok->text.data = out;
    tok->text.len = n;
    lx->strpos += n;
    lx->pos = p;
}


void
cef_expr_lex_next(cef_expr_lex_t *lx, cef_expr_tok_t *tok)
{
    const char  *s = lx->src;
    size_t       p;
    int          c;

    memset(tok, 0, sizeof(*tok));

    while (lx->pos < lx->len
           && (s[lx->pos] == ' ' || s[lx->pos] == '\t' || s[lx->pos] == '\n'
               || s[lx->pos] == '\r'))
    {
        lx->pos++;
    }

    p = lx->pos;
    tok->start = p;
    tok->end = p + 1;

    if (p >= lx->len) {
        tok->type = CEF_TOK_EOF;
        tok->end = p;
        return;
    }

    c = (unsigned char) s[p];

    if (cef_is_ident_start(c)) {
        cef_lex_name(lx, tok);
        return;
    }

    if (cef_is_digit(c)
        || (c == '.' && p + 1 < lx->len && cef_is_digit(s[p + 1])))
    {
        cef_lex_number(lx, tok);
        return;
    }

    if (c == '"' || c == '\'') {
        cef_lex_string(lx, tok);
        return;
    }

    lx->pos++;

    switch (c) {
    case '(': tok->type = CEF_TOK_LPAREN; return;
    case ')': tok->type = CEF_TOK_RPAREN; return;
    case '[': tok->type = CEF_TOK_LBRACK; return;
    case ']': tok->type = CEF_TOK_RBRACK; return;
    case ',': tok->type = CEF_TOK_COMMA; return;
    case '+': tok->type = CEF_TOK_PLUS; return;
    case '-': tok->type = CEF_TOK_MINUS; return;
    case '*': tok->type = CEF_TOK_STAR; return;
    case '/': tok->type = CEF_TOK_SLASH; return;
    case '|': tok->type = CEF_TOK_PIPE; return;
    case '=':
        if (p + 1 < lx->len && s[p + 1] == '=') {
            lx->pos++;
            tok->type = CEF_TOK_EQ;
            tok->end = p + 2;
            return;
        }
        cef_lex_error(lx, tok, p, "unexpected '=' (comparison is '==')");
        return;
    case '!':
        if (p + 1 < lx->len && s[p + 1] == '=') {
            lx->pos++;
            tok->type = CEF_TOK_NE;
            tok->end = p + 2;
            return;
        }
        cef_lex_error(lx, tok, p, "unexpected '!' (negation is 'not')");
        return;
    case '<':
    case '>':
        if (p + 1 < lx->len && s[p + 1] == '=') {
            lx->pos++;
            tok->type = (c == '<') ? CEF_TOK_LE : CEF_TOK_GE;
            tok->end = p + 2;
            return;
        }
        tok->type = (c == '<') ? CEF_TOK_LT : CEF_TOK_GT;
        return;
    case '&':
        cef_lex_error(lx, tok, p, "unexpected '&' (conjunction is 'and')");
        return;
    }

    cef_lex_error(lx, tok, p, "unexpected character");
}


const char *
cef_expr_lex_tok_name(cef_expr_tok_type_t type)
{
    static const char  *names[] = {
        "end of expression", "number", "string", "name", "path", "'('",
        "')'", "'['", "']'", "','", "'=='", "'!='", "'<'", "'<='", "'>'",
        "'>='", "'+'", "'-'", "'*'", "'/'", "'|'", "invalid token"
    };

    if ((size_t) type < sizeof(names) / sizeof(names[0])) {
        return names[type];
    }

    return "token";
}
