/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Table-driven tests of the expression language: lexer, parser, type
 * checker, evaluator (every operator, null and type mismatches), explain,
 * robustness against hostile profile values.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <msgpack.h>

#include "cef_expr.h"
#include "cef_expr_int.h"
#include "cef_persona.h"


#define NOW  1795438800          /* 2026-11-23T13:00:00Z, a Monday */


static cef_persona_t *
make_persona(void)
{
    cef_persona_t  *p = cef_persona_create();
    cef_span_t      segs[] = { cef_span_lit("gold"),
                               cef_span_lit("newsletter") };
    cef_span_t      keys[] = { cef_span_lit("shoes"),
                               cef_span_lit("jackets") };
    double          nums[] = { 0.9, 2 };
    cef_value_t     bad;

    assert_non_null(p);
    assert_int_equal(cef_persona_set_num(p, "profile.clv", 620), 0);
    cef_persona_set_num(p, "profile.churn_risk", 0.8);
    cef_persona_set_str(p, "profile.first_name", "Ann", 3);
    cef_persona_set_str(p, "profile.upper", "HeLLo", 5);
    cef_persona_set_str(p, "profile.empty", "", 0);
    cef_persona_set_array(p, "profile.segments", segs, 2);
    cef_persona_set_array(p, "profile.no_segments", NULL, 0);
    cef_persona_set_map(p, "profile.interests", keys, nums, 2);
    cef_persona_set_num(p, "profile.last_purchase_at", NOW - 40 * 86400);
    cef_persona_set_str(p, "profile.signup", "2026-11-01", 10);
    cef_persona_set_str(p, "profile.signup_bad", "2026-13-01", 10);
    cef_persona_set_bool(p, "profile.vip", 1);
    cef_persona_set_num(p, "profile.zero", 0);

    /* malformed encodings: claims 3 elements, holds garbage */
    memset(&bad, 0, sizeof(bad));
    bad.type = CEF_VAL_STR_ARRAY;
    bad.u.seq.raw = (const uint8_t *) "\xc1\xc1\xff";
    bad.u.seq.len = 3;
    bad.u.seq.n = 3;
    cef_persona_set(p, "profile.bad_array", &bad);
    bad.type = CEF_VAL_NUM_MAP;
    bad.u.seq.raw = (const uint8_t *) "\xa5sh";    /* truncated str */
    cef_persona_set(p, "profile.bad_map", &bad);
    bad.type = (cef_value_type_t) 99;
    cef_persona_set(p, "profile.bad_type", &bad);

    cef_persona_set_str(p, "request.path", "/products/boots", 15);
    cef_persona_set_str(p, "request.method", "GET", 3);
    cef_persona_set_str(p, "request.host", "shop.example", 12);
    cef_persona_set_str(p, "request.arg.utm_campaign", "winter", 6);
    cef_persona_set_str(p, "request.cookie.sid", "abc", 3);
    cef_persona_set_str(p, "request.header.User-Agent", "Mozilla/5.0", 11);
    cef_persona_set_str(p, "var.geo", "DE", 2);
    cef_persona_set_bool(p, "visitor.new", 0);
    cef_persona_set_str(p, "visitor.key_type", "email", 5);

    return p;
}


typedef struct {
    cef_expr_symtab_t  *st;
    cef_persona_t      *p;
    cef_expr_ctx_t      ctx;
} fixture_t;


static int
setup(void **state)
{
    fixture_t  *f = calloc(1, sizeof(fixture_t));

    f->st = cef_expr_symtab_create();
    f->p = make_persona();
    f->ctx.lookup = cef_persona_lookup;
    f->ctx.data = f->p;
    f->ctx.now = NOW;
    f->ctx.utc_offset = 3600;
    *state = f;

    return 0;
}


static int
teardown(void **state)
{
    fixture_t  *f = *state;

    cef_expr_symtab_free(f->st);
    cef_persona_free(f->p);
    free(f);

    return 0;
}


/* compile, make scratch space, evaluate; -1 if it does not compile */
static int
eval(fixture_t *f, const char *src)
{
    cef_expr_t        *e;
    cef_expr_eval_t   *ev;
    cef_expr_error_t   err;
    int                m;

    e = cef_expr_compile(f->st, src, strlen(src), &err);
    if (e == NULL) {
        print_message("compile error in '%s' at %zu: %s\n", src, err.offset,
                      err.msg);
        return -1;
    }

    ev = cef_expr_eval_create(f->st);
    cef_expr_eval_reset(ev, &f->ctx);
    m = cef_expr_match(e, ev);
    cef_expr_eval_free(ev);
    cef_expr_free(e);

    return m;
}


/* --- lexer ---------------------------------------------------------------- */

static void
test_lexer(void **state)
{
    static const struct {
        const char           *src;
        cef_expr_tok_type_t   types[8];
        double                num;   /* of the first token, if a number */
        const char           *text;  /* of the first token, if text */
    } cases[] = {
        { "", { CEF_TOK_EOF }, 0, NULL },
        { "  42 ", { CEF_TOK_NUM, CEF_TOK_EOF }, 42, NULL },
        { "0.75", { CEF_TOK_NUM, CEF_TOK_EOF }, 0.75, NULL },
        { "1e3", { CEF_TOK_NUM, CEF_TOK_EOF }, 1000, NULL },
        { "30d", { CEF_TOK_NUM, CEF_TOK_EOF }, 30 * 86400, NULL },
        { "12h", { CEF_TOK_NUM, CEF_TOK_EOF }, 12 * 3600, NULL },
        { "15m", { CEF_TOK_NUM, CEF_TOK_EOF }, 15 * 60, NULL },
        { "2w", { CEF_TOK_NUM, CEF_TOK_EOF }, 14 * 86400, NULL },
        { "45s", { CEF_TOK_NUM, CEF_TOK_EOF }, 45, NULL },
        { "30x", { CEF_TOK_ERROR }, 0, NULL },
        { "30days", { CEF_TOK_ERROR }, 0, NULL },
        { "\"a\\\"b\"", { CEF_TOK_STR, CEF_TOK_EOF }, 0, "a\"b" },
        { "'it\\'s'", { CEF_TOK_STR, CEF_TOK_EOF }, 0, "it's" },
        { "\"tab\\t\"", { CEF_TOK_STR, CEF_TOK_EOF }, 0, "tab\t" },
        { "\"open", { CEF_TOK_ERROR }, 0, NULL },
        { "\"bad\\q\"", { CEF_TOK_ERROR }, 0, NULL },
        { "profile.clv", { CEF_TOK_PATH, CEF_TOK_EOF }, 0, "profile.clv" },
        { "request.header.user-agent",
          { CEF_TOK_PATH, CEF_TOK_EOF }, 0, "request.header.user-agent" },
        { "profile.a-1",
          { CEF_TOK_PATH, CEF_TOK_MINUS, CEF_TOK_NUM, CEF_TOK_EOF }, 0,
          "profile.a" },
        { "and", { CEF_TOK_IDENT, CEF_TOK_EOF }, 0, "and" },
        { "( ) [ ] , + - * / |",
          { CEF_TOK_LPAREN, CEF_TOK_RPAREN, CEF_TOK_LBRACK, CEF_TOK_RBRACK,
            CEF_TOK_COMMA, CEF_TOK_PLUS, CEF_TOK_MINUS, CEF_TOK_STAR }, 0,
          NULL },
        { "== != < <= > >=",
          { CEF_TOK_EQ, CEF_TOK_NE, CEF_TOK_LT, CEF_TOK_LE, CEF_TOK_GT,
            CEF_TOK_GE, CEF_TOK_EOF }, 0, NULL },
        { "=", { CEF_TOK_ERROR }, 0, NULL },
        { "!", { CEF_TOK_ERROR }, 0, NULL },
        { "&&", { CEF_TOK_ERROR }, 0, NULL },
        { "@", { CEF_TOK_ERROR }, 0, NULL },
    };
    size_t          i, j;
    cef_expr_lex_t  lx;
    cef_expr_tok_t  tok;
    char            buf[64];

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cef_expr_lex_init(&lx, cases[i].src, strlen(cases[i].src), buf);

        for (j = 0; j < 8; j++) {
            cef_expr_lex_next(&lx, &tok);

            if (tok.type != cases[i].types[j]) {
                fail_msg("'%s' token %zu: got %s, want %s", cases[i].src, j,
                         cef_expr_lex_tok_name(tok.type),
                         cef_expr_lex_tok_name(cases[i].types[j]));
            }

            if (j == 0 && tok.type == CEF_TOK_NUM) {
                assert_true(tok.num == cases[i].num);
            }

            if (j == 0 && cases[i].text) {
                assert_int_equal(tok.text.len, strlen(cases[i].text));
                assert_memory_equal(tok.text.data, cases[i].text,
                                    tok.text.len);
            }

            if (tok.type == CEF_TOK_EOF || tok.type == CEF_TOK_ERROR) {
                break;
            }
        }
    }
}


/* --- parser and type checker: what is rejected, where, and why ------------ */

static void
test_compile_errors(void **state)
{
    static const struct {
        const char  *src;
        size_t       offset;
        const char  *msg;
    } cases[] = {
        { "", 0, "empty expression" },
        { "profile.clv >", 13, "expected a value" },
        { "profile.clv > > 3", 14, "expected a value" },
        { "(profile.clv > 3", 16, "expected ')'" },
        { "profile.clv > 3)", 15, "unexpected ')'" },
        { "profile.clv > 3 profile.x", 16, "missing 'and' or 'or'" },
        { "1 < 2 < 3", 6, "cannot be chained" },
        { "profile.clv > \"abc\"", 14, "needs numbers, not a string" },
        { "request.path > 3", 0, "needs numbers, not a string" },
        { "request.path == 3", 13, "compares a string with a number" },
        { "true == 1", 5, "compares a boolean with a number" },
        { "profile.segments == [\"a\"]", 17, "cannot compare an array" },
        { "1 and true", 2, "needs booleans, not a number" },
        { "not \"x\"", 4, "'not' needs a boolean" },
        { "\"a\" + 1", 4, "'+' needs numbers" },
        { "-\"a\"", 1, "'-' needs a number" },
        { "\"x\" in \"xyz\"", 7, "right side of 'in'" },
        { "[1] in profile.segments", 0, "left side of 'in'" },
        { "1 starts_with \"a\"", 0, "needs strings, not a number" },
        { "request.path contains 1", 22, "needs a string on the right" },
        { "request.path matches profile.re", 21, "must be a string literal" },
        { "request.path matches \"(unclosed\"", 21, "invalid regex" },
        { "request.path matches \"[z-a]\"", 21, "invalid regex" },
        { "profil.clv > 1", 0, "did you mean 'profile'" },
        { "foo.bar > 1", 0, "unknown path root 'foo'" },
        { "request.pth == \"/\"", 8, "did you mean 'path'" },
        { "request.arg == \"x\"", 0, "needs a name" },
        { "request.path.x == \"x\"", 13, "too many parts" },
        { "visitor.neww", 8, "did you mean 'new'" },
        { "time.hours > 3", 5, "did you mean 'hour'" },
        { "profile.a.b.c > 1", 12, "profile.NAME.KEY" },
        { "var == \"x\"", 0, "not a value" },
        { "gold in profile.segments", 0, "strings need quotes" },
        { "dayz_since(profile.x) > 1", 0, "did you mean 'days_since'" },
        { "len() > 1", 4, "takes one argument" },
        { "len(profile.a, profile.b) > 1", 13, "takes one argument" },
        { "len(3) > 1", 4, "len() cannot take a number" },
        { "lower(3) == \"x\"", 6, "lower() cannot take a number" },
        { "days_since(true) > 1", 11, "cannot take a boolean" },
        { "[1, 2", 5, "expected ',' or ']'" },
        { "and", 0, "expected a value, found 'and'" },
        { "profile.x not profile.y", 10, "missing 'and' or 'or'" },
        { "profile.x = 1", 10, "comparison is '=='" },
        { "profile.x > 3 && true", 14, "conjunction is 'and'" },
        { "30days > 1", 2, "invalid number suffix" },
    };
    size_t              i;
    cef_expr_t         *e;
    cef_expr_error_t    err;
    cef_expr_symtab_t  *st = cef_expr_symtab_create();

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&err, 0, sizeof(err));
        e = cef_expr_compile(st, cases[i].src, strlen(cases[i].src), &err);

        if (e != NULL) {
            cef_expr_free(e);
            fail_msg("'%s' compiled", cases[i].src);
        }

        if (strstr(err.msg, cases[i].msg) == NULL
            || err.offset != cases[i].offset)
        {
            fail_msg("'%s': got %zu '%s', want %zu '%s'", cases[i].src,
                     err.offset, err.msg, cases[i].offset, cases[i].msg);
        }
    }

    cef_expr_symtab_free(st);
}


static void
test_nesting_limit(void **state)
{
    char                src[512];
    cef_expr_error_t    err;
    cef_expr_symtab_t  *st = cef_expr_symtab_create();
    size_t              i;

    (void) state;

    for (i = 0; i < 200; i++) {
        src[i] = '(';
    }
    strcpy(src + 200, "true");

    assert_null(cef_expr_compile(st, src, strlen(src), &err));
    assert_non_null(strstr(err.msg, "nested too deeply"));

    for (i = 0; i < 200; i++) {
        src[2 * i] = 'n';
    }
    memset(src, 0, sizeof(src));
    for (i = 0; i < 100; i++) {
        memcpy(src + 4 * i, "not ", 4);
    }
    strcat(src, "true");
    assert_null(cef_expr_compile(st, src, strlen(src), &err));
    assert_non_null(strstr(err.msg, "nested too deeply"));

    cef_expr_symtab_free(st);
}


/* --- evaluation: every operator, null and mismatch cases ----------------- */

static void
test_eval(void **state)
{
    static const struct {
        const char  *src;
        int          want;
    } cases[] = {
        /* literals */
        { "true", 1 },
        { "false", 0 },
        { "(true)", 1 },

        /* == and != */
        { "profile.clv == 620", 1 },
        { "profile.clv == 620.0", 1 },
        { "profile.clv != 620", 0 },
        { "profile.clv != 621", 1 },
        { "profile.first_name == \"Ann\"", 1 },
        { "profile.first_name == \"ann\"", 0 },
        { "profile.first_name != \"Bob\"", 1 },
        { "profile.vip == true", 1 },
        { "profile.vip != false", 1 },
        { "request.method == \"GET\"", 1 },
        { "request.host == \"shop.example\"", 1 },
        { "request.path == \"/products/boots\"", 1 },
        { "request.arg.utm_campaign == \"winter\"", 1 },
        { "request.cookie.sid == \"abc\"", 1 },
        { "request.header.user-agent == \"Mozilla/5.0\"", 1 },
        { "request.header.User-Agent == \"Mozilla/5.0\"", 1 },
        { "var.geo == \"DE\"", 1 },
        { "visitor.new == false", 1 },
        { "visitor.key_type == \"email\"", 1 },

        /* null: every comparison is false, == null / != null test absence */
        { "profile.missing == 1", 0 },
        { "profile.missing != 1", 0 },
        { "profile.missing == \"x\"", 0 },
        { "profile.missing < 1", 0 },
        { "profile.missing >= 0", 0 },
        { "profile.missing == null", 1 },
        { "profile.missing != null", 0 },
        { "null == profile.missing", 1 },
        { "profile.clv == null", 0 },
        { "profile.clv != null", 1 },
        { "null == null", 1 },
        { "request.arg.missing == \"x\"", 0 },
        { "request.arg.missing != \"x\"", 0 },
        { "var.missing == null", 1 },

        /* type mismatches at run time are false, never errors */
        { "profile.first_name == 1", 0 },
        { "profile.first_name != 1", 0 },
        { "profile.first_name > 1", 0 },
        { "profile.clv == \"620\"", 0 },
        { "profile.clv != \"620\"", 0 },
        { "profile.vip == 1", 0 },
        { "profile.segments == \"gold\"", 0 },
        { "profile.segments > 1", 0 },
        { "profile.bad_type == null", 1 },

        /* ordering */
        { "profile.clv > 500", 1 },
        { "profile.clv > 620", 0 },
        { "profile.clv >= 620", 1 },
        { "profile.clv < 621", 1 },
        { "profile.clv <= 620", 1 },
        { "profile.clv <= 619.5", 0 },
        { "profile.churn_risk >= 0.7", 1 },
        { "-1 < 0", 1 },
        { "time.hour == 14", 1 },
        { "time.weekday == 1", 1 },
        { "time.now == 1795438800", 1 },
        { "time.hour >= 9 and time.hour < 18", 1 },

        /* and, or, not (null and non-booleans are not true) */
        { "true and true", 1 },
        { "true and false", 0 },
        { "false or true", 1 },
        { "false or false", 0 },
        { "not false", 1 },
        { "not true", 0 },
        { "not (profile.clv > 1000)", 1 },
        { "not profile.missing", 0 },
        { "not not profile.missing", 0 },
        { "not profile.vip", 0 },
        { "profile.missing or true", 1 },
        { "profile.missing and true", 0 },
        { "profile.first_name or true", 1 },
        { "not profile.first_name", 0 },
        { "not profile.missing == null", 0 },
        { "true or false and false", 1 },
        { "(true or false) and false", 0 },
        { "visitor.new", 0 },
        { "not visitor.new", 1 },

        /* in */
        { "\"gold\" in profile.segments", 1 },
        { "\"silver\" in profile.segments", 0 },
        { "\"shoes\" in profile.interests", 1 },
        { "\"hats\" in profile.interests", 0 },
        { "var.geo in [\"DE\", \"AT\", \"CH\"]", 1 },
        { "var.geo in [\"FR\"]", 0 },
        { "var.geo not in [\"FR\"]", 1 },
        { "var.geo not in [\"DE\"]", 0 },
        { "profile.clv in [100, 620]", 1 },
        { "profile.clv in [\"620\"]", 0 },
        { "\"x\" in []", 0 },
        { "profile.missing in profile.segments", 0 },
        { "\"gold\" in profile.missing", 0 },
        { "\"gold\" in profile.first_name", 0 },
        { "\"gold\" in profile.no_segments", 0 },
        { "profile.clv in profile.segments", 0 },

        /* contains, starts_with, ends_with */
        { "request.path contains \"boots\"", 1 },
        { "request.path contains \"shoes\"", 0 },
        { "request.path contains \"\"", 1 },
        { "profile.segments contains \"gold\"", 1 },
        { "profile.segments contains \"go\"", 0 },
        { "profile.interests contains \"jackets\"", 1 },
        { "[\"a\", \"b\"] contains \"b\"", 1 },
        { "profile.missing contains \"x\"", 0 },
        { "profile.clv contains \"6\"", 0 },
        { "request.path starts_with \"/products/\"", 1 },
        { "request.path starts_with \"/cart\"", 0 },
        { "request.path ends_with \"boots\"", 1 },
        { "request.path ends_with \"/products/boots/\"", 0 },
        { "profile.empty starts_with \"\"", 1 },
        { "profile.missing starts_with \"/\"", 0 },
        { "profile.clv ends_with \"0\"", 0 },

        /* matches */
        { "request.path matches \"^/products/[a-z]+$\"", 1 },
        { "request.path matches \"^/cart\"", 0 },
        { "request.header.user-agent matches \"(?i)mozilla\"", 1 },
        { "profile.missing matches \".*\"", 0 },
        { "profile.clv matches \".*\"", 0 },

        /* arithmetic */
        { "1 + 2 == 3", 1 },
        { "5 - 7 == -2", 1 },
        { "2 * 3 + 1 == 7", 1 },
        { "2 * (3 + 1) == 8", 1 },
        { "7 / 2 == 3.5", 1 },
        { "8 - 2 - 1 == 5", 1 },
        { "profile.clv / 2 > 300", 1 },
        { "profile.clv * profile.churn_risk > 400", 1 },
        { "profile.clv / profile.zero > 1", 0 },
        { "profile.clv / profile.zero == null", 1 },
        { "profile.clv + profile.missing == null", 1 },
        { "profile.first_name + 1 == null", 1 },
        { "-profile.clv == -620", 1 },
        { "-profile.first_name == null", 1 },
        { "time.now - profile.last_purchase_at > 30d", 1 },
        { "time.now - profile.last_purchase_at > 60d", 0 },
        { "12h == 43200", 1 },
        { "15m == 900", 1 },

        /* profile.NAME.KEY */
        { "profile.interests.shoes > 0.5", 1 },
        { "profile.interests.jackets == 2", 1 },
        { "profile.interests.hats > 0", 0 },
        { "profile.interests.hats == null", 1 },
        { "profile.first_name.x == null", 1 },
        { "profile.missing.x == null", 1 },

        /* functions */
        { "days_since(profile.last_purchase_at) == 40", 1 },
        { "hours_since(profile.last_purchase_at) == 960", 1 },
        { "days_since(profile.signup) > 22", 1 },
        { "days_since(profile.signup) < 23", 1 },
        { "days_since(profile.signup_bad) == null", 1 },
        { "days_since(profile.missing) > 0", 0 },
        { "days_since(profile.missing) == null", 1 },
        { "days_since(profile.vip) == null", 1 },
        { "days_since(\"2026-11-22T13:00:00Z\") == 1", 1 },
        { "hours_since(\"2026-11-23T14:00:00+02:00\") == 1", 1 },
        { "len(profile.first_name) == 3", 1 },
        { "len(profile.segments) == 2", 1 },
        { "len(profile.interests) == 2", 1 },
        { "len([1, 2, 3]) == 3", 1 },
        { "len(profile.no_segments) == 0", 1 },
        { "len(profile.missing) == null", 1 },
        { "len(profile.clv) == null", 1 },
        { "lower(profile.upper) == \"hello\"", 1 },
        { "lower(request.header.user-agent) contains \"mozilla\"", 1 },
        { "lower(profile.missing) == null", 1 },
        { "lower(profile.clv) == null", 1 },

        /* malformed encodings: the value is unusable, never a crash */
        { "\"gold\" in profile.bad_array", 0 },
        { "profile.bad_array contains \"x\"", 0 },
        { "\"sh\" in profile.bad_map", 0 },
        { "profile.bad_map.sh > 0", 0 },
        { "len(profile.bad_array) == 3", 1 },
    };
    size_t      i;
    int         got;
    fixture_t  *f = *state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        got = eval(f, cases[i].src);

        if (got != cases[i].want) {
            fail_msg("'%s': got %d, want %d", cases[i].src, got,
                     cases[i].want);
        }
    }
}


static void
test_values(void **state)
{
    static const struct {
        const char  *src;
        const char  *want;
    } cases[] = {
        { "1 + 2", "3" },
        { "7 / 2", "3.5" },
        { "profile.first_name", "\"Ann\"" },
        { "lower(profile.upper)", "\"hello\"" },
        { "profile.missing", "null" },
        { "profile.segments", "[\"gold\", \"newsletter\"]" },
        { "profile.interests", "{\"shoes\": 0.9, \"jackets\": 2}" },
        { "profile.clv > 1", "true" },
        { "not profile.missing", "null" },
        { "time.hour", "14" },
        { "30d", "2592000" },
    };
    size_t             i;
    fixture_t         *f = *state;
    cef_expr_t        *e;
    cef_expr_eval_t   *ev;
    cef_value_t        v;
    char               buf[256];

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        e = cef_expr_compile(f->st, cases[i].src, strlen(cases[i].src), NULL);
        assert_non_null(e);
        ev = cef_expr_eval_create(f->st);
        cef_expr_eval_reset(ev, &f->ctx);
        cef_expr_value(e, ev, &v);
        cef_expr_format_value(&v, buf, sizeof(buf));

        if (strcmp(buf, cases[i].want) != 0) {
            fail_msg("'%s': got %s, want %s", cases[i].src, buf,
                     cases[i].want);
        }

        cef_expr_eval_free(ev);
        cef_expr_free(e);
    }
}


static void
test_weekday_and_offset(void **state)
{
    fixture_t  *f = *state;

    /* Monday 13:00 UTC is Tuesday 01:00 at UTC+12, Monday 00:00 at -13 */
    f->ctx.utc_offset = 12 * 3600;
    assert_int_equal(eval(f, "time.weekday == 2 and time.hour == 1"), 1);
    f->ctx.utc_offset = -13 * 3600;
    assert_int_equal(eval(f, "time.weekday == 1 and time.hour == 0"), 1);
    f->ctx.now = -1;       /* 1969-12-31 23:59:59, a Wednesday */
    f->ctx.utc_offset = 0;
    assert_int_equal(eval(f, "time.weekday == 3 and time.hour == 23"), 1);
}


/* --- references ----------------------------------------------------------- */

static int   lookups;

static int
counting_lookup(void *data, const cef_ref_t *ref, cef_value_t *out)
{
    lookups++;
    return cef_persona_lookup(data, ref, out);
}


static void
test_refs_are_resolved_once(void **state)
{
    fixture_t         *f = *state;
    cef_expr_t        *a, *b;
    cef_expr_eval_t   *ev;
    const cef_ref_t   *ref;
    uint32_t           i, n;
    int                found = 0;

    const char        *sa = "profile.clv > 1 and profile.clv < 1000 and "
                            "request.header.X-Test == null";

    a = cef_expr_compile(f->st, sa, strlen(sa), NULL);
    b = cef_expr_compile(f->st, "profile.clv == 620", 18, NULL);
    assert_non_null(a);
    assert_non_null(b);

    n = cef_expr_symtab_count(f->st);
    assert_int_equal(n, 2);

    for (i = 0; i < n; i++) {
        ref = cef_expr_symtab_ref(f->st, i);
        assert_int_equal(ref->id, i);
        assert_int_equal(ref->hash, cef_expr_hash(ref->name.data,
                                                  ref->name.len));

        if (ref->kind == CEF_REF_REQUEST_HEADER) {
            assert_string_equal(ref->name.data, "x-test");
            assert_string_equal(ref->path.data, "request.header.x-test");
            found++;
        }

        if (ref->kind == CEF_REF_PROFILE) {
            assert_string_equal(ref->name.data, "clv");
            found++;
        }
    }

    assert_int_equal(found, 2);

    f->ctx.lookup = counting_lookup;
    lookups = 0;
    ev = cef_expr_eval_create(f->st);
    cef_expr_eval_reset(ev, &f->ctx);
    assert_int_equal(cef_expr_match(a, ev), 1);
    assert_int_equal(cef_expr_match(b, ev), 1);
    assert_int_equal(lookups, 2);          /* cached per evaluation */
    cef_expr_eval_reset(ev, &f->ctx);
    assert_int_equal(cef_expr_match(b, ev), 1);
    assert_int_equal(lookups, 3);

    cef_expr_eval_free(ev);
    cef_expr_free(a);
    cef_expr_free(b);
}


static void
test_explain(void **state)
{
    static const struct {
        const char  *src;
        int          want;
        const char  *text;
    } cases[] = {
        { "profile.churn_risk >= 0.7 and profile.clv >= 1000", 0,
          "profile.clv >= 1000 is false (profile.clv is 620)" },
        { "profile.clv >= 500", 1, "profile.clv >= 500 is true" },
        { "profile.missing > 1 or var.geo == \"FR\"", 0,
          "profile.missing > 1 is false (profile.missing is null); and "
          "var.geo == \"FR\" is false (var.geo is \"DE\")" },
        { "\"silver\" in profile.segments", 0,
          "\"silver\" in profile.segments is false (profile.segments is "
          "[\"gold\", \"newsletter\"])" },
        { "not profile.vip", 0, "profile.vip is true" },
        { "days_since(profile.last_purchase_at) < 30", 0,
          "days_since(profile.last_purchase_at) < 30 is false "
          "(days_since(profile.last_purchase_at) is 40)" },
    };
    size_t             i;
    fixture_t         *f = *state;
    cef_expr_t        *e;
    cef_expr_eval_t   *ev;
    char               buf[512];
    int                m;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        e = cef_expr_compile(f->st, cases[i].src, strlen(cases[i].src), NULL);
        assert_non_null(e);
        ev = cef_expr_eval_create(f->st);
        cef_expr_eval_reset(ev, &f->ctx);
        m = cef_expr_explain(e, ev, buf, sizeof(buf));
        assert_int_equal(m, cases[i].want);

        if (strcmp(buf, cases[i].text) != 0) {
            fail_msg("'%s':\n got  %s\n want %s", cases[i].src, buf,
                     cases[i].text);
        }

        cef_expr_eval_free(ev);
        cef_expr_free(e);
    }
}


/* --- hostile profile content ---------------------------------------------- */

static void
test_huge_and_random_values(void **state)
{
    fixture_t         *f = *state;
    cef_span_t        *items;
    char             (*names)[16];
    size_t             i, n = 100000;
    uint8_t            raw[64];
    cef_value_t        v;
    unsigned           seed = 12345;
    int                round, j;

    items = calloc(n, sizeof(cef_span_t));
    names = calloc(n, 16);

    for (i = 0; i < n; i++) {
        items[i].len = (size_t) snprintf(names[i], 16, "seg%zu", i);
        items[i].data = names[i];
    }

    cef_persona_set_array(f->p, "profile.huge", items, n);
    assert_int_equal(eval(f, "\"seg99999\" in profile.huge"), 1);
    assert_int_equal(eval(f, "\"seg100000\" in profile.huge"), 0);
    assert_int_equal(eval(f, "len(profile.huge) == 100000"), 1);

    free(items);
    free(names);

    /* maps whose values are deeply nested maps and arrays, arrays of
       non-strings: well-formed msgpack of the wrong shape */
    {
        msgpack_sbuffer  sb;
        msgpack_packer   pk;
        int              d;

        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_str(&pk, 1);
        msgpack_pack_str_body(&pk, "k", 1);
        for (d = 0; d < 5000; d++) {
            msgpack_pack_map(&pk, 1);
            msgpack_pack_str(&pk, 1);
            msgpack_pack_str_body(&pk, "k", 1);
        }
        msgpack_pack_nil(&pk);

        memset(&v, 0, sizeof(v));
        v.type = CEF_VAL_NUM_MAP;
        v.u.seq.raw = (const uint8_t *) sb.data;
        v.u.seq.len = sb.size;
        v.u.seq.n = 1;
        cef_persona_set(f->p, "profile.deep", &v);
        v.type = CEF_VAL_STR_ARRAY;
        v.u.seq.n = 2;          /* "k", then the nested maps */
        cef_persona_set(f->p, "profile.deep_array", &v);
        msgpack_sbuffer_destroy(&sb);

        assert_int_equal(eval(f, "profile.deep.k > 0"), 0);
        assert_int_equal(eval(f, "profile.deep.k == null"), 1);
        assert_int_equal(eval(f, "\"x\" in profile.deep"), 0);
        assert_int_equal(eval(f, "\"k\" in profile.deep_array"), 1);
        assert_int_equal(eval(f, "\"zz\" in profile.deep_array"), 0);
        assert_int_equal(eval(f, "profile.deep_array contains \"zz\""), 0);
    }

    /* random bytes posing as arrays and maps with random counts */

    for (round = 0; round < 2000; round++) {
        for (j = 0; j < (int) sizeof(raw); j++) {
            seed = seed * 1103515245 + 12345;
            raw[j] = (uint8_t) (seed >> 16);
        }

        memset(&v, 0, sizeof(v));
        v.type = round % 2 ? CEF_VAL_STR_ARRAY : CEF_VAL_NUM_MAP;
        v.u.seq.raw = raw;
        v.u.seq.len = (size_t) (seed % sizeof(raw));
        v.u.seq.n = seed % 3 ? (seed >> 8) % 50 : UINT32_MAX;
        cef_persona_set(f->p, "profile.rnd", &v);

        (void) eval(f, "\"a\" in profile.rnd or profile.rnd contains \"b\" "
                    "or profile.rnd.k > 1 or len(profile.rnd) > 1");
    }
}


/* --- the per-evaluation cache of decoded arrays and maps ------------------ */

/* a second visitor: everything the fixture's persona has, different */
static cef_persona_t *
make_other_persona(void)
{
    cef_persona_t  *p = cef_persona_create();
    cef_span_t      segs[] = { cef_span_lit("silver") };
    cef_span_t      keys[] = { cef_span_lit("shoes"), cef_span_lit("hats") };
    double          nums[] = { 0.1, 5 };

    assert_non_null(p);
    cef_persona_set_array(p, "profile.segments", segs, 1);
    cef_persona_set_map(p, "profile.interests", keys, nums, 2);
    cef_persona_set_num(p, "profile.clv", 10);

    return p;
}


static void
test_cache_many_readers(void **state)
{
    static const struct {
        const char  *src;
        int          want;
    } cases[] = {
        { "\"gold\" in profile.segments", 1 },
        { "\"newsletter\" in profile.segments", 1 },
        { "\"silver\" in profile.segments", 0 },
        { "\"gol\" in profile.segments", 0 },
        { "\"golden\" in profile.segments", 0 },
        { "\"\" in profile.segments", 0 },
        { "profile.segments contains \"gold\"", 1 },
        { "\"gold\" not in profile.segments", 0 },
        { "\"shoes\" in profile.interests", 1 },
        { "\"hats\" in profile.interests", 0 },
        { "profile.interests contains \"jackets\"", 1 },
        { "profile.interests.shoes > 0.5", 1 },
        { "profile.interests.shoes == 0.9", 1 },
        { "profile.interests.jackets == 2", 1 },
        { "profile.interests.hats == null", 1 },
        { "profile.interests.shoes > 0.5 and \"gold\" in profile.segments",
          1 },
        /* wrong types: an array read as a map and the other way round,
           scalars read as either */
        { "profile.segments.gold == null", 1 },
        { "profile.segments.gold > 0", 0 },
        { "\"gold\" in profile.first_name", 0 },
        { "\"x\" in profile.clv", 0 },
        { "profile.clv.x == null", 1 },
        { "profile.first_name.Ann == null", 1 },
        { "profile.vip.x == null", 1 },
        { "1 in profile.segments", 0 },
        { "profile.clv in profile.interests", 0 },
        { "len(profile.segments) == 2", 1 },
        { "len(profile.interests) == 2", 1 },
    };
    fixture_t         *f = *state;
    cef_expr_t        *e[sizeof(cases) / sizeof(cases[0])];
    cef_expr_eval_t   *ev;
    size_t             i, round;
    uint32_t           used;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        e[i] = cef_expr_compile(f->st, cases[i].src, strlen(cases[i].src),
                                NULL);
        assert_non_null(e[i]);
    }

    f->ctx.lookup = counting_lookup;
    ev = cef_expr_eval_create(f->st);
    assert_non_null(ev);

    for (round = 0; round < 3; round++) {
        lookups = 0;
        cef_expr_eval_reset(ev, &f->ctx);

        /* every expression twice: the second pass reads only the cache */

        for (i = 0; i < 2 * sizeof(cases) / sizeof(cases[0]); i++) {
            size_t  k = i % (sizeof(cases) / sizeof(cases[0]));

            if (cef_expr_match(e[k], ev) != cases[k].want) {
                fail_msg("round %zu: '%s': got %d, want %d", round,
                         cases[k].src, !cases[k].want, cases[k].want);
            }
        }

        /* segments, interests, first_name, clv, vip: one lookup each */
        assert_int_equal(lookups, 5);

        /* each array and map decoded once: 2 segments + 2 interests */
        assert_int_equal(ev->nelems, 4);

        used = ev->nelems;
        assert_int_equal(cef_expr_match(e[0], ev), 1);
        assert_int_equal(ev->nelems, used);
    }

    cef_expr_eval_free(ev);

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cef_expr_free(e[i]);
    }
}


/*
 * One scratch space, visitor after visitor: nothing cached for one
 * visitor may answer for the next.  Also across the wrap of the
 * generation counter, when tags from 2^32 evaluations ago would look
 * current unless they are cleared.
 */
static void
test_cache_reset_between_visitors(void **state)
{
    static const struct {
        const char  *src;
        int          first;     /* the fixture's persona */
        int          other;     /* make_other_persona() */
    } cases[] = {
        { "\"gold\" in profile.segments", 1, 0 },
        { "\"silver\" in profile.segments", 0, 1 },
        { "profile.segments contains \"newsletter\"", 1, 0 },
        { "\"hats\" in profile.interests", 0, 1 },
        { "\"jackets\" in profile.interests", 1, 0 },
        { "profile.interests.shoes > 0.5", 1, 0 },
        { "profile.interests.shoes < 0.5", 0, 1 },
        { "profile.interests.hats == 5", 0, 1 },
        { "profile.interests.jackets == null", 0, 1 },
        { "profile.clv > 100", 1, 0 },
        { "len(profile.segments) == 1", 0, 1 },
        { "profile.first_name == null", 0, 1 },
    };
    fixture_t         *f = *state;
    cef_persona_t     *other;
    cef_expr_ctx_t     ctx2;
    cef_expr_t        *e[sizeof(cases) / sizeof(cases[0])];
    cef_expr_eval_t   *ev;
    size_t             i, round;
    int                want, got;

    other = make_other_persona();
    ctx2 = f->ctx;
    ctx2.data = other;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        e[i] = cef_expr_compile(f->st, cases[i].src, strlen(cases[i].src),
                                NULL);
        assert_non_null(e[i]);
    }

    ev = cef_expr_eval_create(f->st);
    assert_non_null(ev);

    for (round = 0; round < 8; round++) {
        if (round == 4) {
            /* the next reset makes generation 1; tags of generation 1
               are left over from the last round's evaluation */
            ev->gen = 0;
        }

        if (round == 5) {
            /* and this one wraps the counter back to 1 */
            ev->gen = UINT32_MAX;
        }

        cef_expr_eval_reset(ev, round % 2 ? &ctx2 : &f->ctx);

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            want = round % 2 ? cases[i].other : cases[i].first;
            got = cef_expr_match(e[i], ev);

            if (got != want) {
                fail_msg("round %zu (%s visitor): '%s': got %d, want %d",
                         round, round % 2 ? "other" : "first",
                         cases[i].src, got, want);
            }
        }
    }

    cef_expr_eval_free(ev);

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cef_expr_free(e[i]);
    }

    cef_persona_free(other);
}


/*
 * Comparisons that several expressions make are evaluated once per
 * evaluation and shared; each evaluation (each visitor) starts afresh.
 */
static void
test_shared_comparisons(void **state)
{
    static const struct {
        const char  *src;
        int          first;     /* the fixture's persona */
        int          other;     /* make_other_persona() */
    } cases[] = {
        { "\"gold\" in profile.segments", 1, 0 },
        { "\"gold\" in profile.segments and profile.clv > 100", 1, 0 },
        { "not (\"gold\" in profile.segments) or profile.clv > 1000", 0, 1 },
        { "profile.clv > 100 or \"gold\"  in  profile.segments", 1, 0 },
        { "\"silver\" in profile.segments", 0, 1 },
        { "profile.interests.shoes < 0.5 and \"silver\" in profile.segments",
          0, 1 },
        { "request.path matches \"^/products/\"", 1, 1 },
        { "request.path matches \"^/products/\" and profile.clv < 100", 0,
          1 },
        { "request.path matches \"^/products/\" and \"gold\" in "
          "profile.segments", 1, 0 },
        { "profile.first_name == \"Ann\"", 1, 0 },
        { "profile.first_name == \"Ann\" or profile.first_name == null", 1,
          1 },
        { "profile.first_name != \"Ann\"", 0, 0 },
        { "[\"a\", \"b\"] contains \"b\"", 1, 1 },
        { "[\"a\", \"b\"] contains \"c\"", 0, 0 },
        { "1 + 2 == 3", 1, 1 },
        { "1 + 2 == 3.5", 0, 0 },
    };
    fixture_t         *f = *state;
    cef_persona_t     *other;
    cef_expr_ctx_t     ctx2;
    cef_expr_t        *e[sizeof(cases) / sizeof(cases[0])];
    cef_expr_eval_t   *ev;
    size_t             i, round;
    int                want, got;

    other = make_other_persona();
    cef_persona_set_str(other, "request.path", "/products/x", 11);
    ctx2 = f->ctx;
    ctx2.data = other;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        e[i] = cef_expr_compile(f->st, cases[i].src, strlen(cases[i].src),
                                NULL);
        assert_non_null(e[i]);
    }

    /* in gold, in silver, the regex, == "Ann", != "Ann", == null,
       contains "b", contains "c", == 3, == 3.5, interests.shoes < 0.5
       (a map entry is a step more than a reference); profile.clv
       compared with a number is cheaper to redo */
    assert_int_equal(f->st->nmemos, 11);

    ev = cef_expr_eval_create(f->st);
    assert_non_null(ev);

    for (round = 0; round < 6; round++) {
        cef_expr_eval_reset(ev, round % 2 ? &ctx2 : &f->ctx);

        /* forwards, then backwards: whichever expression comes first
           computes a shared comparison */

        for (i = 0; i < 2 * sizeof(cases) / sizeof(cases[0]); i++) {
            size_t  k = i < sizeof(cases) / sizeof(cases[0])
                        ? i : 2 * sizeof(cases) / sizeof(cases[0]) - 1 - i;

            want = round % 2 ? cases[k].other : cases[k].first;
            got = cef_expr_match(e[k], ev);

            if (got != want) {
                fail_msg("round %zu: '%s': got %d, want %d", round,
                         cases[k].src, got, want);
            }
        }
    }

    cef_expr_eval_free(ev);

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cef_expr_free(e[i]);
    }

    cef_persona_free(other);
}


/* arrays and maps larger than what is decoded into the cache */
static void
test_cache_huge_values(void **state)
{
    static const struct {
        const char  *src;
        int          want;
    } cases[] = {
        { "\"s0\" in profile.big_a", 1 },
        { "\"s511\" in profile.big_a", 1 },
        { "\"s512\" in profile.big_a", 1 },
        { "\"s2999\" in profile.big_a", 1 },
        { "\"s3000\" in profile.big_a", 0 },
        { "\"s0\" in profile.big_b", 1 },
        { "\"s2999\" in profile.big_b", 1 },
        { "\"s3000\" in profile.big_b", 0 },
        { "\"s2999\" in profile.big_c", 1 },
        { "\"s2999\" in profile.big_d", 1 },
        { "\"s2999\" in profile.big_e", 1 },
        { "\"s2999\" in profile.big_map", 1 },
        { "profile.big_map.s0 == 0", 1 },
        { "profile.big_map.s2999 == 2999", 1 },
        { "profile.big_map.s3000 == null", 1 },
        { "\"gold\" in profile.segments", 1 },
        { "profile.interests.jackets == 2", 1 },
        { "len(profile.big_a) == 3000", 1 },
    };
    static const char  *arrays[] = { "profile.big_a", "profile.big_b",
                                     "profile.big_c", "profile.big_d",
                                     "profile.big_e" };
    fixture_t         *f = *state;
    cef_span_t        *items;
    double            *nums;
    char             (*names)[16];
    size_t             i, n = 3000, round;
    cef_expr_t        *e[sizeof(cases) / sizeof(cases[0])];
    cef_expr_eval_t   *ev;

    items = calloc(n, sizeof(cef_span_t));
    nums = calloc(n, sizeof(double));
    names = calloc(n, 16);

    for (i = 0; i < n; i++) {
        items[i].len = (size_t) snprintf(names[i], 16, "s%zu", i);
        items[i].data = names[i];
        nums[i] = (double) i;
    }

    /* five arrays of 3000: together more than the cache holds */
    for (i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++) {
        assert_int_equal(cef_persona_set_array(f->p, arrays[i], items, n),
                         0);
    }
    assert_int_equal(cef_persona_set_map(f->p, "profile.big_map", items,
                                         nums, n), 0);

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        e[i] = cef_expr_compile(f->st, cases[i].src, strlen(cases[i].src),
                                NULL);
        assert_non_null(e[i]);
    }

    ev = cef_expr_eval_create(f->st);

    for (round = 0; round < 2; round++) {
        cef_expr_eval_reset(ev, &f->ctx);

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            if (cef_expr_match(e[i], ev) != cases[i].want) {
                fail_msg("'%s': want %d", cases[i].src, cases[i].want);
            }
        }

        assert_true(ev->nelems <= CEF_EXPR_ELEMS);
    }

    cef_expr_eval_free(ev);

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cef_expr_free(e[i]);
    }

    free(items);
    free(nums);
    free(names);
}


/*
 * `matches` on what a visitor sends: catastrophic backtracking stops at
 * the match limit and the comparison is false; ordinary regexes over long
 * subjects are unaffected.  Each case runs JIT-compiled and interpreted.
 */
static void
test_regex_limits(void **state)
{
    static const struct {
        const char  *re;
        const char  *unit;       /* the subject: unit * times + tail */
        int          times;
        const char  *tail;
        int          want;
        int          limited;    /* a limit stopped it */
    } cases[] = {
        /* the first branch backtracks 2^N ways before the second matches:
           2^20 steps are within PCRE2's default limit (10 000 000), so
           without ours this would be true */
        { "^(a+)+b|a+c", "a", 20, "c", 0, 1 },
        { "^(a+)+b|a+c", "a", 5, "c", 1, 0 },
        { "^(\\\\w+\\\\s?)*$", "word ", 200, "!", 0, 1 },
        { "^(\\\\w+\\\\s?)*$", "word ", 200, "", 1, 0 },
        /* the JIT's stack is too small for 3000 repeats: the
           interpreter answers, and stops at the depth limit */
        { "(?:a|b)*c", "ab", 3000, "c", 1, 0 },
        { "(?:a|b)*c", "ab", 20000, "c", 0, 1 },
        { "^/(sale|outlet)/", "x", 8000, "", 0, 0 },
        { "(?i)MOZILLA", "Mozilla/5.0 ", 100, "", 1, 0 },
    };
    fixture_t         *f = *state;
    cef_expr_t        *e;
    cef_expr_eval_t   *ev;
    char              *subject, src[128];
    size_t             i, len, ul;
    uint32_t           k;
    uint64_t           before;
    int                t, jit, got;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ul = strlen(cases[i].unit);
        len = ul * (size_t) cases[i].times + strlen(cases[i].tail);
        subject = malloc(len + 1);
        assert_non_null(subject);

        for (t = 0; t < cases[i].times; t++) {
            memcpy(subject + ul * (size_t) t, cases[i].unit, ul);
        }
        memcpy(subject + ul * (size_t) cases[i].times, cases[i].tail,
               strlen(cases[i].tail) + 1);

        assert_int_equal(cef_persona_set_str(f->p, "request.arg.q", subject,
                                             len), 0);

        snprintf(src, sizeof(src), "request.arg.q matches \"%s\"",
                 cases[i].re);
        e = cef_expr_compile(f->st, src, strlen(src), NULL);
        assert_non_null(e);
        ev = cef_expr_eval_create(f->st);
        assert_non_null(ev);

        for (jit = 1; jit >= 0; jit--) {
            for (k = 0; k < e->nnodes; k++) {
                if (e->nodes[k].op == CEF_OP_MATCHES && !jit) {
                    e->nodes[k].jit = 0;      /* the interpreter */
                }
            }

            before = ev->limited;
            cef_expr_eval_reset(ev, &f->ctx);
            got = cef_expr_match(e, ev);

            if (got != cases[i].want
                || (ev->limited != before) != cases[i].limited)
            {
                fail_msg("%s on %zu bytes (%s): got %d%s, want %d%s",
                         cases[i].re, len, jit ? "jit" : "interpreter", got,
                         ev->limited != before ? " (limited)" : "",
                         cases[i].want, cases[i].limited ? " (limited)" : "");
            }
        }

        cef_expr_eval_free(ev);
        cef_expr_free(e);
        free(subject);
    }
}


/* random token soup: compile errors or valid expressions, never a crash */
static void
test_fuzz_compile(void **state)
{
    static const char  *toks[] = {
        "profile.clv", "profile.segments", "profile.interests.shoes",
        "request.path", "request.header.x-a", "var.geo", "visitor.new",
        "time.hour", "1", "0.5", "30d", "\"gold\"", "'x'", "true", "null",
        "and", "or", "not", "in", "contains", "starts_with", "ends_with",
        "matches", "==", "!=", "<", ">=", "+", "-", "*", "/", "(", ")",
        "[", "]", ",", "len(", "lower(", "days_since(", "\"(\"", "\"",
        "=", "@", "|", "profile.", "foo.bar", "9e999", "\"\\q\""
    };
    fixture_t         *f = *state;
    char               src[512], buf[512];
    unsigned           seed = 42;
    int                i, j, n, compiled = 0;
    size_t             len;
    cef_expr_t        *e;
    cef_expr_eval_t   *ev;
    cef_value_t        v;
    cef_expr_error_t   err;

    for (i = 0; i < 20000; i++) {
        seed = seed * 1103515245 + 12345;
        n = 1 + (int) ((seed >> 16) % 12);
        len = 0;
        src[0] = '\0';

        for (j = 0; j < n; j++) {
            seed = seed * 1103515245 + 12345;
            len += (size_t) snprintf(src + len, sizeof(src) - len, "%s ",
                                     toks[(seed >> 16) % (sizeof(toks)
                                                          / sizeof(toks[0]))]);
        }

        e = cef_expr_compile(f->st, src, len, &err);
        if (e == NULL) {
            assert_true(err.offset <= len);
            assert_true(err.msg[0] != '\0');
            continue;
        }

        compiled++;
        ev = cef_expr_eval_create(f->st);
        cef_expr_eval_reset(ev, &f->ctx);
        (void) cef_expr_match(e, ev);
        cef_expr_value(e, ev, &v);
        (void) cef_expr_explain(e, ev, buf, sizeof(buf));
        cef_expr_eval_free(ev);
        cef_expr_free(e);
    }

    assert_true(compiled > 100);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lexer),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_nesting_limit),
        cmocka_unit_test_setup_teardown(test_eval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_weekday_and_offset, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_refs_are_resolved_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_explain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_and_random_values, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fuzz_compile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_many_readers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cache_reset_between_visitors,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_huge_values, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_regex_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_comparisons, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
