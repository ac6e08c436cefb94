/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Offer templates: placeholders, defaults, HTML escaping, compile errors.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cef_template.h"
#include "cef_text.h"
#include "cef_persona.h"


static void
test_render(void **state)
{
    static const struct {
        const char  *src;
        const char  *want;
    } cases[] = {
        { "plain <b>html</b> & stays", "plain <b>html</b> & stays" },
        { "", "" },
        { "Hi {{ profile.first_name }}!", "Hi Ann!" },
        { "Hi {{profile.first_name}}!", "Hi Ann!" },
        { "{{ profile.first_name }}{{ profile.first_name }}", "AnnAnn" },
        { "Hi {{ profile.nick | default(\"friend\") }}", "Hi friend" },
        { "Hi {{ profile.nick }}.", "Hi ." },
        { "Hi {{ profile.first_name | default(\"friend\") }}", "Hi Ann" },
        { "<p>{{ profile.evil }}</p>",
          "<p>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; "
          "&#39;</p>" },
        { "{{ profile.nick | default(\"<b>&'\") }}", "&lt;b&gt;&amp;&#39;" },
        { "{{ profile.clv }} / {{ profile.score }}", "620 / 0.25" },
        { "{{ profile.n0 }} {{ profile.n9 }} {{ profile.n10 }}", "0 9 10" },
        { "{{ profile.neg }} {{ profile.negone }}", "-42 -1" },
        { "{{ profile.big }} {{ profile.negbig }}",
          "9007199254740992 -9007199254740992" },
        { "{{ profile.bigger }}", "9.00719925474099e+15" },
        { "{{ profile.vip }}", "true" },
        { "{{ profile.segments }}", "gold, a&lt;b" },
        { "{{ profile.interests | default(\"-\") }}", "-" },
        { "{{ profile.interests.shoes }}", "0.5" },
        { "{{ request.arg.q }}", "&quot;boots&quot;" },
        { "{{ var.geo | default('XX') }}", "XX" },
        { "a {{ time.hour }} b", "a 13 b" },
        { "single { braces } stay", "single { braces } stay" },
    };
    size_t              i, n;
    cef_expr_symtab_t  *st = cef_expr_symtab_create();
    cef_template_t     *t[sizeof(cases) / sizeof(cases[0])];
    cef_expr_eval_t    *ev;
    cef_persona_t      *p = cef_persona_create();
    cef_expr_ctx_t      ctx;
    cef_expr_error_t    err;
    cef_span_t          segs[] = { cef_span_lit("gold"), cef_span_lit("a<b") };
    cef_span_t          keys[] = { cef_span_lit("shoes") };
    double              nums[] = { 0.5 };
    char                buf[512];

    (void) state;

    cef_persona_set_str(p, "profile.first_name", "Ann", 3);
    cef_persona_set_str(p, "profile.evil",
                        "<script>alert(\"x\")</script> & '", 31);
    cef_persona_set_num(p, "profile.clv", 620);
    cef_persona_set_num(p, "profile.score", 0.25);
    cef_persona_set_num(p, "profile.n0", 0);
    cef_persona_set_num(p, "profile.n9", 9);
    cef_persona_set_num(p, "profile.n10", 10);
    cef_persona_set_num(p, "profile.neg", -42);
    cef_persona_set_num(p, "profile.negone", -1);
    cef_persona_set_num(p, "profile.big", 9007199254740992.0);
    cef_persona_set_num(p, "profile.negbig", -9007199254740992.0);
    cef_persona_set_num(p, "profile.bigger", 9007199254740994.0);
    cef_persona_set_bool(p, "profile.vip", 1);
    cef_persona_set_array(p, "profile.segments", segs, 2);
    cef_persona_set_map(p, "profile.interests", keys, nums, 1);
    cef_persona_set_str(p, "request.arg.q", "\"boots\"", 7);

    /* compile everything first: the scratch space needs the final table */

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        t[i] = cef_template_compile(st, cases[i].src, strlen(cases[i].src),
                                    &err);
        if (t[i] == NULL) {
            fail_msg("'%s': %s", cases[i].src, err.msg);
        }
    }

    memset(&ctx, 0, sizeof(ctx));
    ctx.lookup = cef_persona_lookup;
    ctx.data = p;
    ctx.now = 1795438800;
    ev = cef_expr_eval_create(st);
    cef_expr_eval_reset(ev, &ctx);

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        n = cef_template_render(t[i], ev, buf, sizeof(buf) - 1);
        assert_true(n < sizeof(buf));
        buf[n] = '\0';

        if (strcmp(buf, cases[i].want) != 0) {
            fail_msg("'%s':\n got  '%s'\n want '%s'", cases[i].src, buf,
                     cases[i].want);
        }

        cef_template_free(t[i]);
    }

    cef_expr_eval_free(ev);
    cef_persona_free(p);
    cef_expr_symtab_free(st);
}


static void
test_truncation_reports_length(void **state)
{
    cef_expr_symtab_t  *st = cef_expr_symtab_create();
    cef_template_t     *t;
    cef_expr_eval_t    *ev;
    cef_persona_t      *p = cef_persona_create();
    cef_expr_ctx_t      ctx;
    char                buf[8];
    size_t              n;

    (void) state;

    cef_persona_set_str(p, "profile.name", "<<<<", 4);
    t = cef_template_compile(st, "Hi {{ profile.name }}!", 22, NULL);
    assert_non_null(t);
    assert_false(cef_template_is_static(t));
    assert_int_equal(cef_template_placeholders(t), 1);

    memset(&ctx, 0, sizeof(ctx));
    ctx.lookup = cef_persona_lookup;
    ctx.data = p;
    ev = cef_expr_eval_create(st);
    cef_expr_eval_reset(ev, &ctx);

    memset(buf, 'Z', sizeof(buf));
    n = cef_template_render(t, ev, buf, 5);
    assert_int_equal(n, 3 + 16 + 1);
    assert_memory_equal(buf, "Hi &l", 5);
    assert_int_equal(buf[5], 'Z');       /* nothing past size */

    n = cef_template_render(t, ev, NULL, 0);
    assert_int_equal(n, 20);

    assert_int_equal(cef_template_escape("a&b", 3, NULL, 0), 7);

    cef_template_free(t);
    cef_expr_eval_free(ev);
    cef_persona_free(p);
    cef_expr_symtab_free(st);
}


static void
test_compile_errors(void **state)
{
    static const struct {
        const char  *src;
        size_t       offset;
        const char  *msg;
    } cases[] = {
        { "Hi {{ profile.name", 3, "unterminated placeholder" },
        { "Hi {{ }}", 5, "empty placeholder" },
        { "Hi {{ name }}", 6, "holds a path" },
        { "Hi {{ profil.name }}", 6, "did you mean 'profile'" },
        { "Hi {{ profile.a | upper }}", 18, "the only filter" },
        { "Hi {{ profile.a | defualt(\"x\") }}", 18, "did you mean" },
        { "Hi {{ profile.a | default(x) }}", 26, "quoted string" },
        { "Hi {{ profile.a | default(\"x\" }}", 30, "expected ')'" },
        { "Hi {{ profile.a profile.b }}", 16, "expected '|'" },
        { "Hi {{ profile.a | default(\"x\") y }}", 31, "expected '}}'" },
        { "Hi {{ profile.a > 1 }}", 16, "expected '|'" },
    };
    size_t              i;
    cef_expr_symtab_t  *st = cef_expr_symtab_create();
    cef_template_t     *t;
    cef_expr_error_t    err;

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&err, 0, sizeof(err));
        t = cef_template_compile(st, cases[i].src, strlen(cases[i].src), &err);

        if (t != NULL) {
            cef_template_free(t);
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


/* bytes that start no UTF-8 sequence become U+FFFD, one per byte */
static void
test_escape_not_utf8(void **state)
{
    static const struct {
        const char  *src;
        const char  *want;
    } cases[] = {
        { "J\xfcrgen", "J\xef\xbf\xbdrgen" },
        { "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8c\xb2",
          "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8c\xb2" },
        { "\x80<", "\xef\xbf\xbd&lt;" },
        { "a\xe2\x82", "a\xef\xbf\xbd\xef\xbf\xbd" },
        { "\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
        { "\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd" },
        { "\xf4\x90\x80\x80",
          "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
    };
    char    buf[64];
    size_t  i, n, len;

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        len = strlen(cases[i].src);
        n = cef_template_escape(cases[i].src, len, buf, sizeof(buf));
        assert_int_equal(n, strlen(cases[i].want));
        assert_memory_equal(buf, cases[i].want, n);
        assert_int_equal(cef_template_escape(cases[i].src, len, NULL, 0), n);
    }
}



/* The escaping's definition, a byte at a time: the reference below. */
static size_t
ref_escape(const char *src, size_t len, char *out)
{
    const uint8_t  *p = (const uint8_t *) src;
    const char     *ent;
    size_t          i, at = 0, l;

    for (i = 0; i < len; i += l) {
        l = 1;
        switch (src[i]) {
        case '&':  ent = "&amp;"; break;
        case '<':  ent = "&lt;"; break;
        case '>':  ent = "&gt;"; break;
        case '"':  ent = "&quot;"; break;
        case '\'': ent = "&#39;"; break;
        default:
            if (p[i] < 0x80) {
                out[at++] = src[i];
                continue;
            }
            l = cef_text_utf8_len(p + i, len - i);
            if (l) {
                memcpy(out + at, src + i, l);
                at += l;
                continue;
            }
            l = 1;
            ent = "\xef\xbf\xbd";
        }
        memcpy(out + at, ent, strlen(ent));
        at += strlen(ent);
    }

    return at;
}


/* Random text (ASCII, specials, valid and broken UTF-8) escapes as the
   byte-at-a-time definition does, into any buffer size. */
static void
test_escape_matches_definition(void **state)
{
    static const char  *pieces[] = {
        "a", "Z", " ", "&", "<", ">", "\"", "'", "\x01", "\x7f", "\\",
        "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\x80", "\xc3",
        "\xe2\x82", "\xed\xa0\x80", "\xc0\xaf", "\xf4\x90\x80\x80", "\xff",
        "friend", "caf\xc3\xa9"
    };
    char      src[128], want[1024], got[1024];
    size_t    len, n, wn, size;
    unsigned  seed = 22, round, k, pieces_n;

    (void) state;

    for (round = 0; round < 20000; round++) {
        len = 0;
        pieces_n = (unsigned) (rand_r(&seed) % 12);
        for (k = 0; k < pieces_n; k++) {
            const char  *pc = pieces[rand_r(&seed)
                                     % (sizeof(pieces) / sizeof(pieces[0]))];
            memcpy(src + len, pc, strlen(pc));
            len += strlen(pc);
        }
        if (len && rand_r(&seed) % 4 == 0) {
            len -= (size_t) rand_r(&seed) % len;   /* cut a sequence */
        }

        wn = ref_escape(src, len, want);
        n = cef_template_escape(src, len, got, sizeof(got));
        assert_int_equal(n, wn);
        assert_memory_equal(got, want, n);

        size = wn ? (size_t) rand_r(&seed) % wn : 0;
        memset(got, '#', sizeof(got));
        assert_int_equal(cef_template_escape(src, len, got, size), wn);
        assert_memory_equal(got, want, size);
        assert_true(got[size] == '#');
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_escape_not_utf8),
        cmocka_unit_test(test_escape_matches_definition),
        cmocka_unit_test(test_truncation_reports_length),
        cmocka_unit_test(test_compile_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
