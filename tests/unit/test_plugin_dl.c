/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * External plugins: the example margin_rank.so (strategy, offer key,
 * expression function) loaded with dlopen, and every refusal: missing
 * file, missing entry symbol, wrong ABI version, name clash, wrong name.
 * The shared objects are built by mk/plugins.mk.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cef_decision.h"
#include "cef_plugins.h"
#include "cef_persona.h"


#define SO(name)  "build/plugins/" name ".so"
#define FIX(name) "build/plugins/test/" name ".so"

#define WINTER  1795438800          /* 2026-11-23: autumn... */
#define DEC     1796212800          /* 2026-12-02: winter */


static const char  *yaml =
    "version: 1\n"
    "offers:\n"
    "  boots: {slot: hero, html: B, value: 80, cost: 20, margin: 70}\n"
    "  scarf: {slot: hero, html: S, value: 100, cost: 20}\n"
    "  cheap: {slot: hero, html: C, value: 5, cost: 1}\n"
    "rules:\n"
    "  - {name: cold, when: 'season() == \"winter\"', show: boots}\n"
    "  - {name: any, show: scarf}\n"
    "  - {name: low, show: cheap}\n"
    "slots:\n"
    "  hero:\n"
    "    strategy: margin_rank\n"
    "    min_margin: 10\n"
    "    boost: profile.boost\n";


static void
test_margin_rank(void **state)
{
    cef_plugins_t        *ps;
    cef_rules_t          *rs;
    cef_rules_errors_t    errs;
    cef_expr_eval_t      *ev;
    cef_decision_t       *d;
    cef_persona_t        *p;
    cef_expr_ctx_t        ctx;
    cef_decision_input_t  in;
    char                  err[512];

    (void) state;

    ps = cef_plugins_create();
    assert_int_equal(cef_plugins_load(ps, "margin_rank", SO("margin_rank"),
                                      err, sizeof(err)), 0);
    assert_non_null(cef_plugins_find(ps, "margin_rank"));
    assert_non_null(cef_plugins_func(ps, "season", 6));

    /* unknown without the plugin: strategy, offer key and function */
    assert_int_equal(cef_rules_load_buffer("t.yaml", yaml, strlen(yaml), &rs,
                                           &errs), -1);
    cef_rules_error_format(&errs, 0, err, sizeof(err));
    assert_string_equal(err, "t.yaml:3:53: unknown key 'margin' in offer "
                        "'boots'");
    cef_rules_error_format(&errs, 1, err, sizeof(err));
    assert_string_equal(err, "t.yaml:7:25: in when: unknown function "
                        "'season'");
    cef_rules_errors_free(&errs);

    assert_int_equal(cef_rules_load_buffer_with("t.yaml", yaml, strlen(yaml),
                                                ps, &rs, &errs), 0);
    cef_rules_errors_free(&errs);

    ev = cef_rules_eval_create(rs);
    d = cef_decision_create(rs);
    p = cef_persona_create();
    memset(&ctx, 0, sizeof(ctx));
    ctx.lookup = cef_persona_lookup;
    ctx.data = p;
    in.visitor = cef_span_lit("v");

    /* autumn: scarf (margin 80) beats cheap (4, under min_margin) */
    ctx.now = WINTER;
    cef_decision_make(rs, ev, &ctx, &in, d);
    assert_string_equal(cef_rules_offer(rs, d->slots[0].offer)->name,
                        "scarf");
    assert_string_equal(d->slots[0].plugin, "margin_rank");
    assert_int_equal(d->slots[0].candidates, 2);

    /* winter: boots match too, margin 70 < 80: still scarf */
    ctx.now = DEC;
    cef_decision_make(rs, ev, &ctx, &in, d);
    assert_int_equal(d->slots[0].candidates, 3);
    assert_string_equal(cef_rules_offer(rs, d->slots[0].offer)->name,
                        "scarf");

    /* a boost lifts everyone; a negative one drops all below 10 */
    assert_int_equal(cef_persona_set_num(p, "profile.boost", -75), 0);
    cef_decision_make(rs, ev, &ctx, &in, d);
    assert_int_equal(d->slots[0].offer, CEF_RULES_NONE);
    assert_int_equal(cef_persona_set_num(p, "profile.boost", -65), 0);
    cef_decision_make(rs, ev, &ctx, &in, d);
    assert_string_equal(cef_rules_offer(rs, d->slots[0].offer)->name,
                        "scarf");

    cef_persona_free(p);
    cef_decision_free(d);
    cef_expr_eval_free(ev);
    cef_rules_free(rs);

    /* the plugin rejecting its configuration */
    {
        const char *bad = "version: 1\n"
                          "offers: {x: {slot: s, html: X}}\n"
                          "rules: [{name: r, show: x}]\n"
                          "slots:\n"
                          "  s: {strategy: margin_rank, min_margin: lots}\n";

        assert_int_equal(cef_rules_load_buffer_with("t.yaml", bad,
                             strlen(bad), ps, &rs, &errs), -1);
        cef_rules_error_format(&errs, 0, err, sizeof(err));
        assert_string_equal(err, "t.yaml:5:42: margin_rank: min_margin must "
                            "be a number, not 'lots'");
        cef_rules_errors_free(&errs);
    }

    cef_plugins_free(ps);
}


static void
test_refusals(void **state)
{
    cef_plugins_t  *ps;
    char            err[512];

    (void) state;

    ps = cef_plugins_create();

    assert_int_equal(cef_plugins_load(ps, "x", "build/plugins/nope.so", err,
                                      sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot load \"build/plugins/nope.so\": "));

    assert_int_equal(cef_plugins_load(ps, "no_entry", FIX("no_entry"), err,
                                      sizeof(err)), -1);
    assert_string_equal(err, "\"" FIX("no_entry") "\" has no "
                        "cef_plugin_entry() entry point");

    assert_int_equal(cef_plugins_load(ps, "bad_abi", FIX("bad_abi"), err,
                                      sizeof(err)), -1);
    assert_string_equal(err, "plugin \"bad_abi\" was built for ABI version 3, "
                        "this module has versions 1 to 2");

    assert_int_equal(cef_plugins_load(ps, "weighted", FIX("clash"), err,
                                      sizeof(err)), -1);
    assert_string_equal(err, "a plugin named \"weighted\" is already loaded");

    assert_int_equal(cef_plugins_load(ps, "mine", FIX("clash"), err,
                                      sizeof(err)), -1);
    assert_string_equal(err, "the plugin is named \"weighted\", not \"mine\"");

    assert_int_equal(cef_plugins_load(ps, "margin", SO("margin_rank"), err,
                                      sizeof(err)), -1);
    assert_string_equal(err, "the plugin is named \"margin_rank\", not "
                        "\"margin\"");

    assert_int_equal(cef_plugins_load(ps, "margin_rank", SO("margin_rank"),
                                      err, sizeof(err)), 0);
    assert_int_equal(cef_plugins_load(ps, "margin_rank", SO("margin_rank"),
                                      err, sizeof(err)), -1);
    assert_string_equal(err, "a plugin named \"margin_rank\" is already "
                        "loaded");

    assert_int_equal(cef_plugins_count(ps), 8);
    cef_plugins_free(ps);
}


/*
 * A plugin built against ABI version 1 (tests/rules/plugins/abi1/: the
 * header as released) loads and decides; the engine reads its descriptor
 * only as far as version 1 had it (AddressSanitizer would report a read
 * past its end) and sees the version 2 hooks as absent.
 */
static void
test_abi_v1(void **state)
{
    cef_plugins_t        *ps;
    cef_rules_t          *rs;
    cef_rules_errors_t    errs;
    cef_expr_eval_t      *ev;
    cef_decision_t       *d;
    cef_expr_ctx_t        ctx;
    cef_decision_input_t  in;
    const cef_plugin_t   *p;
    char                  err[512];
    const char           *y = "version: 1\n"
                              "offers: {x: {slot: s, html: X}}\n"
                              "rules: [{name: r, show: x}]\n"
                              "slots: {s: {strategy: abi_one}}\n";

    (void) state;

    ps = cef_plugins_create();
    assert_int_equal(cef_plugins_load(ps, "abi_one", FIX("abi_v1"), err,
                                      sizeof(err)), 0);
    p = cef_plugins_find(ps, "abi_one");
    assert_non_null(p);
    assert_int_equal(p->abi_version, 1);
    assert_null(p->experiment);
    assert_null(p->arm);

    assert_int_equal(cef_rules_load_buffer_with("t.yaml", y, strlen(y), ps,
                                                &rs, &errs), 0);
    cef_rules_errors_free(&errs);

    ev = cef_rules_eval_create(rs);
    d = cef_decision_create(rs);
    memset(&ctx, 0, sizeof(ctx));
    in.visitor = cef_span_lit("v");
    cef_decision_make(rs, ev, &ctx, &in, d);
    assert_int_equal(d->slots[0].offer, 0);
    assert_string_equal(d->slots[0].variant, "v1");

    cef_decision_free(d);
    cef_expr_eval_free(ev);
    cef_rules_free(rs);
    cef_plugins_free(ps);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_margin_rank),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_abi_v1),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
