/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Frequency caps: the (N+1)-th impression in the window is suppressed, the
 * window expires, and the state round-trips through its signed form; a
 * tampered state counts as no impressions.
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


#define NOW  1795438800


static const char  *yaml =
    "version: 1\n"
    "offers:\n"
    "  wb: {slot: hero, html: WB, campaign: winback}\n"
    "  wb-side: {slot: side, html: WS, campaign: winback}\n"
    "  generic: {slot: hero, html: G}\n"
    "  fl: {slot: side, html: FL, campaign: flash}\n"
    "rules:\n"
    "  - {name: winback, show: [wb, wb-side], priority: 10}\n"
    "  - {name: flash, show: fl, priority: 5}\n"
    "  - {name: fallback, show: generic}\n"
    "plugins:\n"
    "  freqcap:\n"
    "    caps:\n"
    "      - {campaign: winback, max: 3, per: 1d}\n"
    "      - {campaign: flash, max: 1, per: 1h}\n";


typedef struct {
    cef_rules_t      *rs;
    cef_expr_eval_t  *ev;
    cef_decision_t   *d;
    cef_signer_t     *signer;
    cef_expr_ctx_t    ctx;
    char              cookie[600];    /* what the browser keeps */
    size_t            cookie_len;
} fx_t;


static void
fx_init(fx_t *fx)
{
    cef_rules_errors_t  errs;
    cef_span_t          secret = cef_span_lit("s3cret-s3cret-s3cret");

    memset(fx, 0, sizeof(*fx));
    assert_int_equal(cef_rules_load_buffer("t.yaml", yaml, strlen(yaml),
                                           &fx->rs, &errs), 0);
    cef_rules_errors_free(&errs);
    fx->ev = cef_rules_eval_create(fx->rs);
    fx->d = cef_decision_create(fx->rs);
    fx->signer = cef_signer_create(&secret, 1, NULL, 0);
    assert_non_null(fx->signer);
    assert_int_equal(fx->d->nstates, 1);
    assert_string_equal(fx->d->states[0].plugin, "freqcap");
    fx->ctx.now = NOW;
}


static void
fx_free(fx_t *fx)
{
    cef_signer_free(fx->signer);
    cef_decision_free(fx->d);
    cef_expr_eval_free(fx->ev);
    cef_rules_free(fx->rs);
}


/* one request: the cookie in, the decision, the cookie out; hero's offer */
static const char *
request(fx_t *fx)
{
    cef_decision_input_t   in;
    cef_decision_state_t  *st = &fx->d->states[0];
    cef_span_t             c, v;

    in.visitor = cef_span_lit("visitor-1");
    c.data = fx->cookie;
    c.len = fx->cookie_len;

    if (c.len && cef_decision_state_verify(fx->signer, "freqcap", c, &v)
                 == 0)
    {
        cef_decision_set_state(fx->d, "freqcap", v);
    }

    (void) cef_decision_make(fx->rs, fx->ev, &fx->ctx, &in, fx->d);

    if (st->changed) {
        assert_int_equal(st->max_age, 86400);
        fx->cookie_len = cef_decision_state_sign(fx->signer, "freqcap",
                                                 st->out, st->out_len,
                                                 fx->cookie);
        assert_true(fx->cookie_len > 0);
    }

    return fx->d->slots[0].offer == CEF_RULES_NONE
           ? "-" : cef_rules_offer(fx->rs, fx->d->slots[0].offer)->name;
}


static const char *
side(fx_t *fx)
{
    return fx->d->slots[1].offer == CEF_RULES_NONE
           ? "-" : cef_rules_offer(fx->rs, fx->d->slots[1].offer)->name;
}


static void
test_cap_and_window(void **state)
{
    fx_t  fx;

    (void) state;

    fx_init(&fx);

    /* three impressions of winback (two slots on one page count once) */
    assert_string_equal(request(&fx), "wb");
    assert_string_equal(side(&fx), "wb-side");
    assert_memory_equal(fx.cookie, "winback:1:1795438800.", 21);

    fx.ctx.now += 600;
    assert_string_equal(request(&fx), "wb");
    fx.ctx.now += 600;
    assert_string_equal(request(&fx), "wb");
    assert_memory_equal(fx.cookie, "winback:3:1795438800.", 21);

    /* the fourth is suppressed: the next rules fill both slots */
    fx.ctx.now += 600;
    assert_string_equal(request(&fx), "generic");
    assert_string_equal(side(&fx), "fl");
    assert_memory_equal(fx.cookie, "winback:3:1795438800~flash:1:1795440600.",
                        40);

    /* flash is capped at 1 per hour, winback still capped: nothing */
    fx.ctx.now += 60;
    assert_string_equal(request(&fx), "generic");
    assert_string_equal(side(&fx), "-");

    /* an hour later flash is back */
    fx.ctx.now = 1795440600 + 3600;
    assert_string_equal(request(&fx), "generic");
    assert_string_equal(side(&fx), "fl");

    /* the winback window (1 day from the first impression) expires */
    fx.ctx.now = NOW + 86400 - 1;
    assert_string_equal(request(&fx), "generic");
    assert_string_equal(side(&fx), "fl");           /* flash again */
    fx.ctx.now = NOW + 86400;
    assert_string_equal(request(&fx), "wb");
    assert_memory_equal(fx.cookie, "winback:1:1795525200~", 21);

    fx_free(&fx);
}


static void
test_tampered(void **state)
{
    fx_t        fx;
    cef_span_t  v;
    char       *dot;

    (void) state;

    fx_init(&fx);

    /* a forged "max out flash" cookie: verification fails */
    memcpy(fx.cookie, "winback:3:1795438800.AAAAAAAAAAAAAAAAAAAAAA", 43);
    fx.cookie_len = 43;
    assert_string_equal(request(&fx), "wb");      /* no impressions */

    /* a genuine cookie, edited: the count is lowered */
    fx.ctx.now += 1;
    assert_string_equal(request(&fx), "wb");
    fx.ctx.now += 1;
    assert_string_equal(request(&fx), "wb");
    fx.ctx.now += 1;
    assert_string_equal(request(&fx), "generic"); /* capped */
    fx.cookie[8] = '1';
    assert_int_equal(cef_decision_state_verify(fx.signer, "freqcap",
                         (cef_span_t) { fx.cookie, fx.cookie_len }, &v), -1);

    /* the edited cookie reads as no impressions, exactly like a deleted
     * one: a client can drop its state but never forge one */
    assert_string_equal(request(&fx), "wb");

    /* another plugin's state does not verify as freqcap's */
    fx.cookie_len = cef_decision_state_sign(fx.signer, "other",
                                            "winback:0:0", 11, fx.cookie);
    assert_int_equal(cef_decision_state_verify(fx.signer, "freqcap",
                         (cef_span_t) { fx.cookie, fx.cookie_len }, &v), -1);

    /* a window in the future (clock skew, forgery) counts nothing */
    fx.cookie_len = cef_decision_state_sign(fx.signer, "freqcap",
                                            "winback:9:1895438800", 20,
                                            fx.cookie);
    assert_string_equal(request(&fx), "wb");

    /* malformed but signed: ignored from the bad part on */
    fx.cookie_len = cef_decision_state_sign(fx.signer, "freqcap",
                                            "winback:x:1", 11, fx.cookie);
    assert_string_equal(request(&fx), "wb");
    dot = memchr(fx.cookie, '.', fx.cookie_len);
    assert_non_null(dot);

    fx_free(&fx);
}


/* The state written back, byte for byte, from the state read. */
static void
test_state_written(void **state)
{
    static const struct {
        const char  *in;        /* signed state in, "" for none */
        int64_t      now;
        const char  *hero;
        const char  *out;       /* "" if unchanged */
    } cases[] = {
        { "", NOW, "wb", "winback:1:1795438800" },
        { "", 0, "wb", "winback:1:0" },
        { "", 9, "wb", "winback:1:9" },
        { "", 10, "wb", "winback:1:10" },
        { "", -86399, "wb", "winback:1:-86399" },
        { "winback:1:1795438700", NOW, "wb", "winback:2:1795438700" },
        { "winback:9:1795438700", NOW, "generic",
          "winback:9:1795438700~flash:1:1795438800" },
        { "winback:99999999:1795438700~flash:1:1795438790", NOW,
          "generic", "" },
        { "flash:1:1795438799", NOW, "wb",
          "winback:1:1795438800~flash:1:1795438799" },
        { "winback:2:1795352400", NOW, "wb", "winback:1:1795438800" },
    };
    fx_t                   fx;
    size_t                 i;
    cef_decision_state_t  *st;
    char                   out[CEF_DECISION_STATE_MAX + 1];

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fx_init(&fx);
        st = &fx.d->states[0];
        fx.ctx.now = cases[i].now;
        fx.cookie_len = 0;

        if (cases[i].in[0]) {
            fx.cookie_len = cef_decision_state_sign(fx.signer, "freqcap",
                                                    cases[i].in,
                                                    strlen(cases[i].in),
                                                    fx.cookie);
            assert_true(fx.cookie_len > 0);
        }

        assert_string_equal(request(&fx), cases[i].hero);

        memcpy(out, st->out, st->out_len);
        out[st->changed ? st->out_len : 0] = '\0';

        if (strcmp(out, cases[i].out) != 0) {
            fail_msg("case %zu: state '%s' at %lld: wrote '%s', want '%s'",
                     i, cases[i].in, (long long) cases[i].now, out,
                     cases[i].out);
        }

        fx_free(&fx);
    }
}


/* A state that would not fit keeps the caps that fit, in order. */
static void
test_state_full(void **state)
{
    char                   y[2048], camp[3][151], want[400];
    size_t                 i;
    cef_rules_t           *rs;
    cef_rules_errors_t     errs;
    cef_expr_eval_t       *ev;
    cef_decision_t        *d;
    cef_expr_ctx_t         ctx;
    cef_decision_input_t   in;

    (void) state;

    for (i = 0; i < 3; i++) {
        memset(camp[i], 'a' + (int) i, 150);
        camp[i][150] = '\0';
    }

    snprintf(y, sizeof(y),
             "version: 1\n"
             "offers:\n"
             "  x1: {slot: s1, html: X, campaign: %s}\n"
             "  x2: {slot: s2, html: X, campaign: %s}\n"
             "  x3: {slot: s3, html: X, campaign: %s}\n"
             "rules: [{name: r, show: [x1, x2, x3]}]\n"
             "plugins:\n"
             "  freqcap:\n"
             "    caps:\n"
             "      - {campaign: %s, max: 3, per: 1d}\n"
             "      - {campaign: %s, max: 3, per: 1d}\n"
             "      - {campaign: %s, max: 3, per: 1d}\n",
             camp[0], camp[1], camp[2], camp[0], camp[1], camp[2]);

    assert_int_equal(cef_rules_load_buffer("t.yaml", y, strlen(y), &rs,
                                           &errs), 0);
    cef_rules_errors_free(&errs);
    ev = cef_rules_eval_create(rs);
    d = cef_decision_create(rs);
    memset(&ctx, 0, sizeof(ctx));
    ctx.now = NOW;
    in.visitor = cef_span_lit("v");

    assert_int_equal(cef_decision_make(rs, ev, &ctx, &in, d), 3);
    assert_true(d->states[0].changed);

    /* two entries of 163 bytes fit in 400, the third does not */
    snprintf(want, sizeof(want), "%s:1:%d~%s:1:%d", camp[0], NOW, camp[1],
             NOW);
    assert_int_equal(d->states[0].out_len, strlen(want));
    assert_memory_equal(d->states[0].out, want, strlen(want));

    cef_decision_free(d);
    cef_expr_eval_free(ev);
    cef_rules_free(rs);
}


static void
test_config(void **state)
{
    cef_rules_t         *rs;
    cef_rules_errors_t   errs;
    char                 line[512];
    const char          *bad =
        "version: 1\n"
        "offers:\n"
        "  wb: {slot: hero, html: WB, campaign: winback}\n"
        "rules: [{name: r, show: wb}]\n"
        "plugins:\n"
        "  freqcap:\n"
        "    caps:\n"
        "      - {campaign: winback, max: 3, per: 7x}\n";

    (void) state;

    assert_int_equal(cef_rules_load_buffer("t.yaml", bad, strlen(bad), &rs,
                                           &errs), -1);
    cef_rules_error_format(&errs, 0, line, sizeof(line));
    assert_string_equal(line, "t.yaml:8:42: freqcap: per: must be a duration "
                        "such as 30m, 12h, 7d or 2w");
    cef_rules_errors_free(&errs);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cap_and_window),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_state_written),
        cmocka_unit_test(test_state_full),
        cmocka_unit_test(test_config),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
