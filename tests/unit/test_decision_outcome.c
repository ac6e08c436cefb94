/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_outcome: what became of each offer of each rule in a decision, and
 * its words (the ones the glue's explain, `cef-rules explain` and
 * `cef-rules replay` print).
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
#include "cef_outcome.h"
#include "cef_persona.h"


#define NOW  1795438800          /* 2026-11-23T13:00:00Z, a Monday */


typedef struct {
    cef_rules_t      *rs;
    cef_persona_t    *p;
    cef_expr_ctx_t    ctx;
    cef_expr_eval_t  *ev;
    cef_decision_t   *d;
} fx_t;


static void
fx_decide(fx_t *fx, const char *yaml, int64_t now)
{
    cef_rules_errors_t    errs;
    cef_decision_input_t  in;
    char                  line[512];

    memset(fx, 0, sizeof(*fx));

    if (cef_rules_load_buffer("t.yaml", yaml, strlen(yaml), &fx->rs, &errs)
        != 0)
    {
        cef_rules_error_format(&errs, 0, line, sizeof(line));
        fail_msg("load failed: %s", line);
    }

    cef_rules_errors_free(&errs);

    fx->p = cef_persona_create();
    fx->ev = cef_rules_eval_create(fx->rs);
    fx->d = cef_decision_create(fx->rs);
    assert_non_null(fx->p);
    assert_non_null(fx->ev);
    assert_non_null(fx->d);

    fx->ctx.lookup = cef_persona_lookup;
    fx->ctx.data = fx->p;
    fx->ctx.now = now;

    in.visitor.data = "";
    in.visitor.len = 0;

    (void) cef_decision_make(fx->rs, fx->ev, &fx->ctx, &in, fx->d);
}


static void
fx_free(fx_t *fx)
{
    cef_decision_free(fx->d);
    cef_expr_eval_free(fx->ev);
    cef_persona_free(fx->p);
    cef_rules_free(fx->rs);
}


/* the words for offer k of rule (by name), matched as its when: says */
static const char *
outcome(fx_t *fx, const char *rule, uint32_t k)
{
    static char        buf[256];
    size_t             n;
    uint32_t           i, offer;
    int                m;
    const cef_rule_t  *r = NULL;

    for (i = 0; i < cef_rules_nrules(fx->rs); i++) {
        r = cef_rules_rule(fx->rs, i);
        if (strcmp(r->name, rule) == 0) {
            break;
        }
    }

    assert_true(i < cef_rules_nrules(fx->rs));
    assert_true(k < r->noffers);

    offer = r->offers[k];
    m = r->when ? cef_expr_match(r->when, fx->ev) : 1;

    n = cef_outcome_format(fx->d, offer,
                           cef_outcome_offer(fx->d, i, offer, m),
                           buf, sizeof(buf));
    assert_int_equal(n, strlen(buf));
    return buf;
}


static void
test_priority(void **state)
{
    fx_t  fx;

    (void) state;

    fx_decide(&fx,
              "version: 1\n"
              "offers:\n"
              "  a: {slot: hero, html: A}\n"
              "  b: {slot: hero, html: B}\n"
              "  c: {slot: hero, html: C}\n"
              "  s: {slot: side, html: S}\n"
              "  x: {slot: side, html: X, starts: 2027-01-01}\n"
              "  y: {slot: side, html: Y, starts: 2026-01-01, "
              "ends: 2026-02-01}\n"
              "rules:\n"
              "  - {name: never, show: a, priority: 40, when: 'false'}\n"
              "  - {name: ra, show: a, priority: 30}\n"
              "  - {name: rb, show: b, priority: 20}\n"
              "  - {name: rc, show: [c, s], priority: 10}\n"
              "  - {name: later, show: x, priority: 50}\n"
              "  - {name: earlier, show: y, priority: 60}\n",
              NOW);

    assert_string_equal(outcome(&fx, "never", 0), "rule not matched");
    assert_string_equal(outcome(&fx, "ra", 0), "chosen");
    assert_string_equal(outcome(&fx, "rb", 0), "slot taken by rule 'ra'");
    assert_string_equal(outcome(&fx, "rc", 0), "slot taken by rule 'ra'");
    assert_string_equal(outcome(&fx, "rc", 1), "chosen");
    assert_string_equal(outcome(&fx, "later", 0),
                        "not scheduled now (starts 2027-01-01T00:00:00Z)");
    /* a bare date in ends: includes that day, so ends at the next */
    assert_string_equal(outcome(&fx, "earlier", 0),
                        "not scheduled now (starts 2026-01-01T00:00:00Z, "
                        "ends 2026-02-02T00:00:00Z)");
    fx_free(&fx);
}


static void
test_strategy_and_plugins(void **state)
{
    fx_t  fx;

    (void) state;

    /* weighted sees every candidate: the others were not chosen, not
     * taken; without a visitor id it shows the heaviest */

    fx_decide(&fx,
              "version: 1\n"
              "offers:\n"
              "  a: {slot: hero, html: A}\n"
              "  b: {slot: hero, html: B}\n"
              "  lunch: {slot: side, html: L, hours: 11-12}\n"
              "  any: {slot: side, html: N}\n"
              "slots:\n"
              "  hero: {strategy: weighted, weights: {a: 1, b: 5}}\n"
              "rules:\n"
              "  - {name: ra, show: a, priority: 30}\n"
              "  - {name: rb, show: b, priority: 20}\n"
              "  - {name: l, show: lunch, priority: 2}\n"
              "  - {name: n, show: any, priority: 1}\n",
              NOW);

    assert_string_equal(outcome(&fx, "ra", 0), "not chosen");
    assert_string_equal(outcome(&fx, "rb", 0), "chosen");
    assert_string_equal(outcome(&fx, "l", 0),
                        "blocked by a plugin (frequency cap or hours)");
    assert_string_equal(outcome(&fx, "n", 0), "chosen");
    fx_free(&fx);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_priority),
        cmocka_unit_test(test_strategy_and_plugins),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
