/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * The bandit strategy (rules/plugins/bandit.c) through the real decision
 * loop: draws follow the published weights within tolerance over many
 * visitor ids, uniform until something is published, a kept arm survives
 * weight changes (the plugin-state cookie), only eligible arms are drawn
 * (renormalised; a kept arm not eligible is redrawn and stays kept), arms
 * matched by name (missing ones at the smallest weight), the goal
 * record's arm is the kept one, the decision record's additions round
 * trip, and every configuration error at its line and column.
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
#include "cef_goal.h"
#include "cef_record.h"
#include "cef_rules_goals.h"


#define NOON   1795438800          /* 2026-11-23T13:00:00Z */
#define NIGHT  (NOON - 12 * 3600)  /* 01:00Z */


static const char  *yaml =
    "version: 1\n"
    "offers:\n"
    "  ha: {slot: hero, html: A}\n"
    "  hb: {slot: hero, html: B}\n"
    "  hc: {slot: hero, html: C}\n"
    "rules:\n"
    "  - {name: day, when: 'time.hour >= 12', show: hc}\n"
    "  - {name: a, show: ha}\n"
    "  - {name: b, show: hb}\n"
    "slots:\n"
    "  hero:\n"
    "    strategy: bandit\n"
    "    goal: purchase\n"
    "    experiment: hero-bandit\n"
    "goals:\n"
    "  purchase: {min: 0, max: 1000}\n";


/* the provider: what a test publishes */
typedef struct {
    uint64_t     version;
    uint32_t     narms;
    cef_span_t   arms[4];
    uint32_t     bp[4];
    uint32_t     calls;
} pub_t;


static int
pub_weights(void *data, const char *experiment, const char *salt,
    cef_plugin_weights_t *out)
{
    pub_t  *p = data;

    p->calls++;

    if (p->version == 0 || strcmp(experiment, "hero-bandit") != 0
        || strcmp(salt, "hero-bandit") != 0)
    {
        return 0;
    }

    out->version = p->version;
    out->created_at = NOON;
    out->narms = p->narms;
    out->arms = p->arms;
    out->bp = p->bp;

    return 1;
}


static void
publish(pub_t *p, uint64_t version, uint32_t a, uint32_t b, uint32_t c)
{
    p->version = version;
    p->narms = 3;
    p->arms[0] = cef_span_lit("hc");      /* record order is not ours */
    p->arms[1] = cef_span_lit("ha");
    p->arms[2] = cef_span_lit("hb");
    p->bp[0] = c;
    p->bp[1] = a;
    p->bp[2] = b;
}


typedef struct {
    cef_rules_t      *rs;
    cef_expr_eval_t  *ev;
    cef_decision_t   *d;
    pub_t             pub;
    char              cookie[CEF_DECISION_STATE_MAX + 1];
} fx_t;


static cef_rules_t *
load(const char *y)
{
    cef_rules_t         *rs;
    cef_rules_errors_t   errs;
    char                 line[400];

    if (cef_rules_load_buffer("b.yaml", y, strlen(y), &rs, &errs) != 0) {
        cef_rules_error_format(&errs, 0, line, sizeof(line));
        fail_msg("%s", line);
    }

    cef_rules_errors_free(&errs);

    return rs;
}


static int
fx_setup(void **state)
{
    fx_t  *fx = calloc(1, sizeof(fx_t));

    fx->rs = load(yaml);
    fx->ev = cef_rules_eval_create(fx->rs);
    fx->d = cef_decision_create(fx->rs);
    cef_decision_set_weights(fx->d, pub_weights, &fx->pub);
    *state = fx;

    return 0;
}


static int
fx_teardown(void **state)
{
    fx_t  *fx = *state;

    cef_decision_free(fx->d);
    cef_expr_eval_free(fx->ev);
    cef_rules_free(fx->rs);
    free(fx);

    return 0;
}


/*
 * Decide for visitor id (empty: none) at now with the cookie state in
 * (NULL: none); the new state, if the plugin set one, into fx->cookie
 * ("" if not).  Returns the slot.
 */
static const cef_decision_slot_t *
decide(fx_t *fx, const char *id, int64_t now, const char *in)
{
    cef_expr_ctx_t        ctx;
    cef_decision_input_t  din;
    uint32_t              i;

    memset(&ctx, 0, sizeof(ctx));
    ctx.now = now;
    din.visitor.data = id;
    din.visitor.len = strlen(id);

    if (in) {
        cef_decision_set_state(fx->d, "bandit", (cef_span_t) { in,
                                                              strlen(in) });
    }

    cef_decision_make(fx->rs, fx->ev, &ctx, &din, fx->d);

    fx->cookie[0] = '\0';

    for (i = 0; i < fx->d->nstates; i++) {
        if (strcmp(fx->d->states[i].plugin, "bandit") == 0
            && fx->d->states[i].changed)
        {
            memcpy(fx->cookie, fx->d->states[i].out,
                   fx->d->states[i].out_len);
            fx->cookie[fx->d->states[i].out_len] = '\0';
        }
    }

    return &fx->d->slots[0];
}


static uint32_t
arm_index(const char *variant)
{
    assert_non_null(variant);
    return (uint32_t) (variant[1] - 'a');   /* "ha" 0, "hb" 1, "hc" 2 */
}


static void
test_uniform_without_weights(void **state)
{
    fx_t                       *fx = *state;
    const cef_decision_slot_t  *ds;
    uint32_t                    i, n[3] = { 0, 0, 0 };
    char                        id[32];

    for (i = 0; i < 6000; i++) {
        snprintf(id, sizeof(id), "visitor-%u", i);
        ds = decide(fx, id, NOON, NULL);

        assert_int_equal(ds->sticky, CEF_PLUGIN_STICKY_NO);
        assert_int_equal(ds->weights_version, 0);
        assert_int_equal(ds->nsplit, 3);
        assert_int_equal(ds->split[0] + ds->split[1] + ds->split[2], 10000);
        assert_true(ds->split[0] >= 3333 && ds->split[0] <= 3334);
        assert_string_equal(fx->d->slots[0].plugin, "bandit");
        assert_true(fx->cookie[0] != '\0');         /* the new assignment */
        n[arm_index(ds->variant)]++;
    }

    /* 2000 each; 4 sigma of a binomial(6000, 1/3) is ~146 */
    for (i = 0; i < 3; i++) {
        assert_true(n[i] > 1850 && n[i] < 2150);
    }

    assert_true(fx->pub.calls >= 6000);         /* asked on every request */
}


static void
test_draws_follow_weights(void **state)
{
    fx_t                       *fx = *state;
    const cef_decision_slot_t  *ds;
    uint32_t                    i, n[3] = { 0, 0, 0 };
    char                        id[32];

    publish(&fx->pub, 7, 1000, 2000, 7000);

    for (i = 0; i < 20000; i++) {
        snprintf(id, sizeof(id), "v%u", i);
        ds = decide(fx, id, NOON, NULL);
        assert_int_equal(ds->weights_version, 7);
        assert_int_equal(ds->split[0], 1000);      /* matched by name */
        assert_int_equal(ds->split[1], 2000);
        assert_int_equal(ds->split[2], 7000);
        n[arm_index(ds->variant)]++;
    }

    /* 10 / 20 / 70 % within 4 sigma (n = 20000: 0.0085, 0.0113, 0.013) */
    assert_true(n[0] > 1660 && n[0] < 2340);
    assert_true(n[1] > 3550 && n[1] < 4450);
    assert_true(n[2] > 13480 && n[2] < 14520);

    /* the same visitor without a cookie: the same arm while the weights
       stay (deterministic bucketing) */
    ds = decide(fx, "v42", NOON, NULL);
    i = arm_index(ds->variant);
    assert_int_equal(arm_index(decide(fx, "v42", NOON, NULL)->variant), i);
}


static void
test_sticky_across_weight_changes(void **state)
{
    fx_t                       *fx = *state;
    const cef_decision_slot_t  *ds;
    uint32_t                    i, first[400], moved = 0, n2[3] = { 0 };
    char                        id[32], cookies[400][CEF_DECISION_STATE_MAX + 1];

    publish(&fx->pub, 1, 3334, 3333, 3333);

    for (i = 0; i < 400; i++) {
        snprintf(id, sizeof(id), "s%u", i);
        ds = decide(fx, id, NOON, NULL);
        first[i] = arm_index(ds->variant);
        assert_int_equal(ds->sticky, CEF_PLUGIN_STICKY_NO);
        assert_int_equal(strlen(fx->cookie), 17);
        strcpy(cookies[i], fx->cookie);
    }

    /* the weights move hard towards hb */

    publish(&fx->pub, 2, 100, 9800, 100);

    for (i = 0; i < 400; i++) {
        snprintf(id, sizeof(id), "s%u", i);

        /* returning with the cookie: the same arm, nothing rewritten */
        ds = decide(fx, id, NOON, cookies[i]);
        assert_int_equal(arm_index(ds->variant), first[i]);
        assert_int_equal(ds->sticky, CEF_PLUGIN_STICKY_YES);
        assert_int_equal(ds->weights_version, 2);
        assert_string_equal(fx->cookie, "");

        /* the same visitor without the cookie follows the new weights */
        ds = decide(fx, id, NOON, NULL);
        moved += arm_index(ds->variant) != first[i];
        n2[arm_index(ds->variant)]++;
    }

    /* most cookieless visitors moved to hb; all the kept ones stayed */
    assert_true(n2[1] > 370);
    assert_true(moved > 200);

    /* a forged or foreign state is no assignment */
    ds = decide(fx, "s0", NOON, "zzzzzzzz.zzzzzzzz");
    assert_int_equal(ds->sticky, CEF_PLUGIN_STICKY_NO);
    ds = decide(fx, "s0", NOON, "0badcafe.00000001");
    assert_int_equal(ds->sticky, CEF_PLUGIN_STICKY_NO);
    /* ... and the new cookie keeps the foreign experiment's entry */
    assert_int_equal(strlen(fx->cookie), 35);
    assert_memory_equal(fx->cookie, "0badcafe.00000001~", 18);
}


static void
test_eligibility(void **state)
{
    fx_t                       *fx = *state;
    const cef_decision_slot_t  *ds;
    uint32_t                    i, n[3] = { 0, 0, 0 }, kept_c = 0;
    char                        id[32], cookie[CEF_DECISION_STATE_MAX + 1];

    publish(&fx->pub, 3, 2500, 2500, 5000);

    /* at night hc's rule does not match: ha and hb share 50/50 */

    for (i = 0; i < 8000; i++) {
        snprintf(id, sizeof(id), "e%u", i);
        ds = decide(fx, id, NIGHT, NULL);
        n[arm_index(ds->variant)]++;
        assert_int_equal(ds->split[2], 5000);      /* the live weights */
    }

    assert_int_equal(n[2], 0);
    assert_true(n[0] > 3800 && n[0] < 4200);

    /* kept on hc during the day; at night redrawn, the cookie unchanged */

    for (i = 0; i < 200; i++) {
        snprintf(id, sizeof(id), "k%u", i);
        ds = decide(fx, id, NOON, NULL);

        if (arm_index(ds->variant) != 2) {
            continue;
        }

        kept_c++;
        strcpy(cookie, fx->cookie);

        ds = decide(fx, id, NIGHT, cookie);
        assert_int_equal(ds->sticky, CEF_PLUGIN_STICKY_REDRAWN);
        assert_true(arm_index(ds->variant) < 2);
        assert_string_equal(fx->cookie, "");

        ds = decide(fx, id, NOON, cookie);
        assert_int_equal(ds->sticky, CEF_PLUGIN_STICKY_YES);
        assert_int_equal(arm_index(ds->variant), 2);
    }

    assert_true(kept_c > 50);
}


/* without a visitor id: a pseudo-random draw, still assigned and recorded
   (no bucket), every arm reached */
static void
test_without_visitor_id(void **state)
{
    fx_t                       *fx = *state;
    const cef_decision_slot_t  *ds;
    cef_record_slot_t           slots[1];
    uint32_t                    i, n[3] = { 0, 0, 0 };

    for (i = 0; i < 600; i++) {
        ds = decide(fx, "", NOON, NULL);
        assert_int_equal(ds->bucket, CEF_RULES_NONE);
        assert_int_equal(ds->sticky, CEF_PLUGIN_STICKY_NO);
        assert_true(fx->cookie[0] != '\0');
        n[arm_index(ds->variant)]++;
    }

    assert_true(n[0] > 120 && n[1] > 120 && n[2] > 120);

    cef_record_slots(slots, fx->rs, fx->d->slots);
    assert_string_equal(slots[0].experiment, "hero-bandit");
    assert_true(slots[0].adaptive);
    assert_int_equal(slots[0].bucket, CEF_RECORD_NONE);
}


static void
test_arms_by_name(void **state)
{
    fx_t                       *fx = *state;
    const cef_decision_slot_t  *ds;

    /* a record without hc and with an arm the slot lacks */
    fx->pub.version = 9;
    fx->pub.narms = 3;
    fx->pub.arms[0] = cef_span_lit("ha");
    fx->pub.arms[1] = cef_span_lit("gone");
    fx->pub.arms[2] = cef_span_lit("hb");
    fx->pub.bp[0] = 6000;
    fx->pub.bp[1] = 1000;
    fx->pub.bp[2] = 3000;

    ds = decide(fx, "x", NOON, NULL);

    /* hc gets the smallest weight (3000), then 6000:3000:3000 -> 10000 */
    assert_int_equal(ds->weights_version, 9);
    assert_int_equal(ds->split[0], 5000);
    assert_int_equal(ds->split[1], 2500);
    assert_int_equal(ds->split[2], 2500);

    /* unpublished again: uniform, version 0 */
    fx->pub.version = 0;
    ds = decide(fx, "x", NOON, NULL);
    assert_int_equal(ds->weights_version, 0);
    assert_int_equal(ds->split[1], 3333);
}


/* $cef_goal's arm: the kept one from the cookie, else the draw over the
   current weights, which is the decision's for a cookieless visitor */
typedef struct {
    const char  *state;
    pub_t       *pub;
} env_data_t;


static int
env_state(void *data, const char *plugin, cef_span_t *out)
{
    env_data_t  *e = data;

    if (e->state == NULL || strcmp(plugin, "bandit") != 0) {
        return 0;
    }

    out->data = e->state;
    out->len = strlen(e->state);

    return 1;
}


static int
env_weights(void *data, const char *experiment, const char *salt,
    cef_plugin_weights_t *out)
{
    return pub_weights(((env_data_t *) data)->pub, experiment, salt, out);
}


static void
test_goal_arms(void **state)
{
    fx_t                       *fx = *state;
    const cef_decision_slot_t  *ds;
    cef_goal_arm_t              arms[2];
    cef_goal_env_t              env;
    env_data_t                  ed;
    uint32_t                    i, kept;
    char                        id[32], cookie[CEF_DECISION_STATE_MAX + 1];

    env.state = env_state;
    env.weights = env_weights;
    env.data = &ed;
    ed.pub = &fx->pub;

    publish(&fx->pub, 4, 2000, 3000, 5000);

    for (i = 0; i < 300; i++) {
        snprintf(id, sizeof(id), "g%u", i);
        ds = decide(fx, id, NOON, NULL);
        strcpy(cookie, fx->cookie);
        kept = arm_index(ds->variant);

        /* cookieless: the same draw as the decision's */
        ed.state = NULL;
        assert_int_equal(cef_goal_arms_env(fx->rs, NOON,
                                           (cef_span_t) { id, strlen(id) },
                                           &env, arms), 1);
        assert_string_equal(arms[0].experiment, "hero-bandit");
        assert_string_equal(arms[0].arm, ds->variant);

        /* after the weights changed, the cookie's arm */
        publish(&fx->pub, 5, 9000, 500, 500);
        ed.state = cookie;
        assert_int_equal(cef_goal_arms_env(fx->rs, NOON,
                                           (cef_span_t) { id, strlen(id) },
                                           &env, arms), 1);
        assert_int_equal(arm_index(arms[0].arm), kept);
        publish(&fx->pub, 4, 2000, 3000, 5000);
    }
}


static void
test_record(void **state)
{
    fx_t                       *fx = *state;
    cef_record_slot_t           slots[1];
    cef_record_t                rec, back;
    char                        buf[2048], err[160];

    publish(&fx->pub, 12, 1000, 2000, 7000);
    (void) decide(fx, "r1", NOON, NULL);

    cef_record_slots(slots, fx->rs, fx->d->slots);
    assert_string_equal(slots[0].experiment, "hero-bandit");
    assert_true(slots[0].adaptive);
    assert_int_equal(slots[0].weights_version, 12);
    assert_int_equal(slots[0].sticky, CEF_PLUGIN_STICKY_NO);

    memset(&rec, 0, sizeof(rec));
    rec.version = CEF_RECORD_VERSION;
    rec.now = NOON;
    rec.rules = "abc";
    rec.slots = slots;
    rec.nslots = 1;

    cef_record_format(&rec, buf, sizeof(buf));
    assert_non_null(strstr(buf, "\"split\":{\"ha\":1000,\"hb\":2000,"
                                "\"hc\":7000},\"weights_version\":12,"
                                "\"sticky\":false"));

    assert_int_equal(cef_record_parse(buf, strlen(buf), &back, err,
                                      sizeof(err)), 0);
    assert_int_equal(back.slots[0].weights_version, 12);
    assert_int_equal(back.slots[0].sticky, CEF_PLUGIN_STICKY_NO);
    assert_int_equal(back.slots[0].split[2], 7000);
    cef_record_release(&back);

    /* redrawn */
    slots[0].sticky = CEF_PLUGIN_STICKY_REDRAWN;
    cef_record_format(&rec, buf, sizeof(buf));
    assert_non_null(strstr(buf, "\"sticky\":false,\"redrawn\":true"));
    assert_int_equal(cef_record_parse(buf, strlen(buf), &back, err,
                                      sizeof(err)), 0);
    assert_int_equal(back.slots[0].sticky, CEF_PLUGIN_STICKY_REDRAWN);
    cef_record_release(&back);

    /* malformed additions are refused */
    assert_int_equal(cef_record_parse("{\"v\":1,\"t\":1,\"rules\":\"a\","
        "\"slots\":{\"h\":{\"offer\":null,\"rule\":null,\"plugin\":\"bandit\","
        "\"variant\":\"-\",\"weights_version\":-1,\"sticky\":true}}}", 110,
        &back, err, sizeof(err)), -1);
    cef_record_release(&back);
}


static void
expect_error(const char *slot, const char *want)
{
    char                 y[1024], line[400];
    cef_rules_t         *rs;
    cef_rules_errors_t   errs;

    snprintf(y, sizeof(y), "version: 1\n"
             "offers: {a: {slot: s, html: A}, b: {slot: s, html: B}, "
             "o: {slot: t, html: O}}\n"
             "rules: [{name: r, show: [a, o]}, {name: r2, show: b}]\n"
             "goals: {buy: {}, order: {min: 0, max: 10}}\n"
             "slots:\n"
             "  s:\n"
             "    strategy: bandit\n"
             "%s", slot);

    if (cef_rules_load_buffer("b.yaml", y, strlen(y), &rs, &errs) == 0) {
        cef_rules_free(rs);
        fail_msg("accepted: %s", slot);
    }

    cef_rules_error_format(&errs, 0, line, sizeof(line));
    cef_rules_errors_free(&errs);

    if (strstr(line, want) == NULL) {
        fail_msg("'%s' lacks '%s'", line, want);
    }
}


static void
test_config_errors(void **state)
{
    (void) state;

    expect_error("    arms: [a, b]\n", "needs goal:");
    expect_error("    goal: buyy\n", "b.yaml:8:11: ");
    expect_error("    goal: buyy\n", "goal 'buyy' is not declared");
    expect_error("    goal: buy\n    metric: value\n",
                 "b.yaml:9:13: ");
    expect_error("    goal: buy\n    metric: value\n",
                 "metric: value needs a goal with a value");
    expect_error("    goal: buy\n    metric: clicks\n",
                 "metric must be conversion or value, not 'clicks'");
    expect_error("    goal: buy\n    arms: [a, o]\n",
                 "arms: no offer 'o' in slot 's'");
    expect_error("    goal: buy\n    arms: [a, a]\n", "listed twice");
    expect_error("    goal: buy\n    arms: [a]\n", "at least two arms");
    expect_error("    goal: buy\n    arm: [a, b]\n",
                 "unknown key 'arm'");
    expect_error("    goal: buy\n    salt: {x: 1}\n",
                 "salt: must be a non-empty text");
}


/* metric: value with a valued goal, defaults: experiment = slot name */
static void
test_config_ok(void **state)
{
    cef_rules_t                   *rs;
    const cef_rules_experiment_t  *x;

    (void) state;

    rs = load("version: 1\n"
              "offers: {a: {slot: s, html: A}, b: {slot: s, html: B}}\n"
              "rules: [{name: r, show: a}, {name: r2, show: b}]\n"
              "goals: {order: {min: 0, max: 10}}\n"
              "slots: {s: {strategy: bandit, goal: order, metric: value}}\n");

    x = cef_rules_goals_slot_experiment(rs, 0);
    assert_non_null(x);
    assert_string_equal(x->name, "s");
    assert_string_equal(x->salt, "s");
    assert_int_equal(x->narms, 2);
    assert_int_equal(x->split[0] + x->split[1], 10000);

    cef_rules_free(rs);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_uniform_without_weights,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_draws_follow_weights,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_sticky_across_weight_changes,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_eligibility,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_without_visitor_id,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_arms_by_name,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_goal_arms,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_record,
                                        fx_setup, fx_teardown),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_config_ok),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
