/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Goals: the rule file's goals: section (every error at its line and
 * column), the experiments the slots describe (names, salts, splits), and
 * the goal record (lib/decision/cef_goal.h) — values, arms that agree with
 * the decision's variants visitor for visitor, once per day, the JSON.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "cef_decision.h"
#include "cef_plugins.h"
#include "cef_goal.h"
#include "cef_record.h"
#include "cef_rules_goals.h"
#include "cef_persona.h"


#define NOW  1795438800          /* 2026-11-23T13:00:00Z */


static const char  *yaml =
    "version: 1\n"
    "offers:\n"
    "  h1: {slot: hero, html: H1}\n"
    "  h2: {slot: hero, html: H2}\n"
    "  s1: {slot: side, html: S1}\n"
    "  f1: {slot: foot, html: F1}\n"
    "  b1: {slot: band, html: B1}\n"
    "rules:\n"
    "  - {name: all, show: [h1, s1, f1, b1]}\n"
    "  - {name: alt, show: h2}\n"
    "slots:\n"
    "  hero:\n"
    "    holdout: 10%\n"
    "    experiment:\n"
    "      name: hero-q4\n"
    "      variants: {a: 50, b: {weight: 50, offers: [h2]}}\n"
    "  side: {holdout: 20%}\n"
    "  foot: {strategy: weighted, weights: {f1: 1}}\n"
    "  band:\n"
    "    salt: band-v2\n"
    "    experiment: {name: hero-q4, variants: {x: 100}}\n"
    "goals:\n"
    "  purchase: {min: 0, max: 100000, description: an order}\n"
    "  signup: {}\n"
    "  newsletter:\n";


static cef_rules_t *
load(const char *y)
{
    cef_rules_t         *rs;
    cef_rules_errors_t   errs;
    char                 line[400];

    if (cef_rules_load_buffer("g.yaml", y, strlen(y), &rs, &errs) != 0) {
        cef_rules_error_format(&errs, 0, line, sizeof(line));
        fail_msg("%s", line);
    }

    cef_rules_errors_free(&errs);

    return rs;
}


static void
test_goals_section(void **state)
{
    cef_rules_t             *rs = load(yaml);
    const cef_rules_goal_t  *g;

    (void) state;

    assert_int_equal(cef_rules_goals_count(rs), 3);

    g = cef_rules_goals_find(rs, "purchase", 8);
    assert_non_null(g);
    assert_true(g->has_value);
    assert_true(g->min == 0 && g->max == 100000);
    assert_int_equal(g->line, 23);
    assert_int_equal(g->col, 3);

    g = cef_rules_goals_find(rs, "signup", 6);
    assert_non_null(g);
    assert_false(g->has_value);

    assert_non_null(cef_rules_goals_find(rs, "newsletter", 10));
    assert_null(cef_rules_goals_find(rs, "purchas", 7));
    assert_null(cef_rules_goals_find(rs, "purchases", 9));

    cef_rules_free(rs);
}


static void
expect_error(const char *goals, const char *want)
{
    char                 y[1024], line[400];
    cef_rules_t         *rs;
    cef_rules_errors_t   errs;

    snprintf(y, sizeof(y), "version: 1\n"
             "offers: {x: {slot: s, html: X}}\n"
             "rules: [{name: r, show: x}]\n"
             "%s", goals);

    if (cef_rules_load_buffer("g.yaml", y, strlen(y), &rs, &errs) == 0) {
        fail_msg("loaded: %s", goals);
    }

    assert_true(errs.n >= 1);
    cef_rules_error_format(&errs, 0, line, sizeof(line));
    assert_string_equal(line, want);
    cef_rules_errors_free(&errs);
}


static void
test_goals_errors(void **state)
{
    (void) state;

    expect_error("goals: [purchase]\n",
                 "g.yaml:4:8: goals: must map goal names to their bounds, "
                 "e.g. {purchase: {min: 0, max: 10000}, signup: {}}, not a "
                 "list");
    expect_error("goals:\n  Purchase: {}\n",
                 "g.yaml:5:3: invalid goal name 'Purchase' (1 to 64 "
                 "lowercase letters, digits, '_' and '-')");
    expect_error("goals:\n  a b: {}\n",
                 "g.yaml:5:3: invalid goal name 'a b' (1 to 64 lowercase "
                 "letters, digits, '_' and '-')");
    expect_error("goals:\n  "
                 "x12345678901234567890123456789012345678901234567890123456789"
                 "01234: {}\n",
                 "g.yaml:5:3: invalid goal name 'x12345678901234567890123456"
                 "78901234567890123456789012345678901234' (1 to 64 lowercase "
                 "letters, digits, '_' and '-')");
    expect_error("goals:\n  buy: {}\n  buy: {}\n",
                 "g.yaml:6:3: duplicate goal 'buy'");
    expect_error("goals:\n  buy: {min: 0}\n",
                 "g.yaml:5:8: goal 'buy' has min: but no max: (a goal with "
                 "a value needs both bounds)");
    expect_error("goals:\n  buy: {max: 9}\n",
                 "g.yaml:5:8: goal 'buy' has max: but no min: (a goal with "
                 "a value needs both bounds)");
    expect_error("goals:\n  buy: {min: 10, max: 9}\n",
                 "g.yaml:5:23: goal 'buy': max: 9 is below min: 10");
    expect_error("goals:\n  buy: {min: lots, max: 9}\n",
                 "g.yaml:5:14: min must be a number, not 'lots'");
    expect_error("goals:\n  buy: {min: 0, max: .inf}\n",
                 "g.yaml:5:22: max must be a number, not '.inf'");
    expect_error("goals:\n  buy: {mx: 9}\n",
                 "g.yaml:5:9: unknown key 'mx' in goal 'buy' (did you mean "
                 "'max'?)");
    expect_error("goals:\n  buy: 5\n",
                 "g.yaml:5:8: goal 'buy' must be a mapping (min: and max: "
                 "for a goal with a value, else {}), not a scalar");
    expect_error("gaols: {}\n",
                 "g.yaml:4:1: unknown key 'gaols' in the rule file (did you "
                 "mean 'goals'?)");
}


static void
test_experiments(void **state)
{
    cef_rules_t                   *rs = load(yaml);
    const cef_rules_experiment_t  *x;

    (void) state;

    /* hero, side and band; foot's weighted strategy runs none */
    assert_int_equal(cef_rules_goals_nexperiments(rs), 3);

    x = cef_rules_goals_slot_experiment(rs, 0);
    assert_non_null(x);
    assert_string_equal(x->name, "hero-q4");
    assert_string_equal(x->salt, "hero-q4");
    assert_int_equal(x->narms, 3);
    assert_string_equal(x->arms[0], "control");
    assert_string_equal(x->arms[1], "a");
    assert_string_equal(x->arms[2], "b");
    assert_int_equal(x->split[0], 1000);
    assert_int_equal(x->split[1], 4500);
    assert_int_equal(x->split[2], 4500);
    assert_true(x->first);

    /* a holdout alone: control and treatment; named after the slot */
    x = cef_rules_goals_slot_experiment(rs, 1);
    assert_string_equal(x->name, "side");
    assert_string_equal(x->salt, "side");
    assert_int_equal(x->narms, 2);
    assert_string_equal(x->arms[0], "control");
    assert_string_equal(x->arms[1], "treatment");
    assert_int_equal(x->split[0], 2000);
    assert_int_equal(x->split[1], 8000);

    assert_null(cef_rules_goals_slot_experiment(rs, 2));

    /* no holdout: no control arm; the same name again is not first */
    x = cef_rules_goals_slot_experiment(rs, 3);
    assert_string_equal(x->name, "hero-q4");
    assert_string_equal(x->salt, "band-v2");
    assert_int_equal(x->narms, 1);
    assert_string_equal(x->arms[0], "x");
    assert_int_equal(x->split[0], 10000);
    assert_false(x->first);

    cef_rules_free(rs);
}


/* the impression record's slots carry the experiment of bucketed slots */
static void
test_impression_record_split(void **state)
{
    cef_rules_t          *rs = load(yaml);
    cef_expr_eval_t      *ev = cef_rules_eval_create(rs);
    cef_decision_t       *d = cef_decision_create(rs);
    cef_expr_ctx_t        ctx;
    cef_decision_input_t  in;
    cef_record_slot_t     slots[4];

    (void) state;

    memset(&ctx, 0, sizeof(ctx));
    ctx.now = NOW;
    in.visitor = cef_span_lit("visitor-1");
    cef_decision_make(rs, ev, &ctx, &in, d);

    cef_record_slots(slots, rs, d->slots);
    assert_string_equal(slots[0].experiment, "hero-q4");
    assert_string_equal(slots[0].salt, "hero-q4");
    assert_int_equal(slots[0].nsplit, 3);
    assert_string_equal(slots[1].experiment, "side");
    assert_null(slots[2].experiment);               /* weighted */

    /* without a visitor id nobody is bucketed: no experiment recorded */
    in.visitor = cef_span_lit("");
    cef_decision_make(rs, ev, &ctx, &in, d);
    cef_record_slots(slots, rs, d->slots);
    assert_null(slots[0].experiment);
    assert_null(slots[1].experiment);

    cef_decision_free(d);
    cef_expr_eval_free(ev);
    cef_rules_free(rs);
}


/*
 * For 2000 visitors: the arm a goal record gives for each experiment is
 * the variant the decision put the visitor in.
 */
static void
test_arms_agree_with_decisions(void **state)
{
    cef_rules_t          *rs = load(yaml);
    cef_expr_eval_t      *ev = cef_rules_eval_create(rs);
    cef_decision_t       *d = cef_decision_create(rs);
    cef_expr_ctx_t        ctx;
    cef_decision_input_t  in;
    cef_goal_arm_t        arms[4];
    size_t                n;
    uint32_t              i, counts[3] = { 0, 0, 0 };
    char                  id[32];

    (void) state;

    memset(&ctx, 0, sizeof(ctx));
    ctx.now = NOW;

    for (i = 0; i < 2000; i++) {
        snprintf(id, sizeof(id), "vis-%05u", i);
        in.visitor.data = id;
        in.visitor.len = strlen(id);
        cef_decision_make(rs, ev, &ctx, &in, d);

        n = cef_goal_arms(rs, NOW, in.visitor, arms);

        /* hero-q4 once (hero's; band repeats the name), side */
        assert_int_equal(n, 2);
        assert_string_equal(arms[0].experiment, "hero-q4");
        assert_string_equal(arms[0].salt, "hero-q4");
        assert_string_equal(arms[0].arm, d->slots[0].variant);
        assert_string_equal(arms[1].experiment, "side");
        assert_string_equal(arms[1].arm, d->slots[1].variant);

        counts[strcmp(arms[0].arm, "control") == 0 ? 0
               : strcmp(arms[0].arm, "a") == 0 ? 1 : 2]++;
    }

    /* 10 / 45 / 45 %, roughly: every arm is reached */
    assert_true(counts[0] > 120 && counts[0] < 290);
    assert_true(counts[1] > 750 && counts[2] > 750);

    /* no visitor id: no arms */
    assert_int_equal(cef_goal_arms(rs, NOW, cef_span_lit(""), arms), 0);

    cef_decision_free(d);
    cef_expr_eval_free(ev);
    cef_rules_free(rs);
}


static void
test_values(void **state)
{
    cef_rules_goal_t  g = { "purchase", 0, 1000, 1, 1, 1 };
    cef_rules_goal_t  none = { "signup", 0, 0, 0, 1, 1 };
    double            v;
    size_t            i;

    static const struct {
        const char  *s;
        int          rc;
        double       v;
    } cases[] = {
        { "59.90", CEF_GOAL_VALUE_OK, 59.9 },
        { " 12 ", CEF_GOAL_VALUE_OK, 12 },
        { "0", CEF_GOAL_VALUE_OK, 0 },
        { "-0", CEF_GOAL_VALUE_OK, 0 },
        { "+7.", CEF_GOAL_VALUE_OK, 7 },
        { ".5", CEF_GOAL_VALUE_OK, 0.5 },
        { "1000", CEF_GOAL_VALUE_OK, 1000 },
        { "", CEF_GOAL_VALUE_ABSENT, 0 },
        { "  ", CEF_GOAL_VALUE_ABSENT, 0 },
        { "1000.01", CEF_GOAL_VALUE_INVALID, 0 },
        { "-1", CEF_GOAL_VALUE_INVALID, 0 },
        { "1e3", CEF_GOAL_VALUE_INVALID, 0 },
        { "0x10", CEF_GOAL_VALUE_INVALID, 0 },
        { "inf", CEF_GOAL_VALUE_INVALID, 0 },
        { "nan", CEF_GOAL_VALUE_INVALID, 0 },
        { "1,5", CEF_GOAL_VALUE_INVALID, 0 },
        { "1.2.3", CEF_GOAL_VALUE_INVALID, 0 },
        { ".", CEF_GOAL_VALUE_INVALID, 0 },
        { "-", CEF_GOAL_VALUE_INVALID, 0 },
        { "12 EUR", CEF_GOAL_VALUE_INVALID, 0 },
        { "00000000000000000000000000000000012", CEF_GOAL_VALUE_INVALID, 0 },
    };

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        v = -99;
        assert_int_equal(cef_goal_value(&g, cases[i].s, strlen(cases[i].s),
                                        &v), cases[i].rc);
        if (cases[i].rc == CEF_GOAL_VALUE_OK) {
            assert_true(v == cases[i].v);
        }
    }

    /* a goal declared without bounds accepts no value */
    assert_int_equal(cef_goal_value(&none, "5", 1, &v),
                     CEF_GOAL_VALUE_INVALID);
}


static void
test_once(void **state)
{
    char        buf[CEF_GOAL_STATE_MAX + 1], name[16];
    size_t      n;
    int         i;
    cef_span_t  st = cef_span_lit("");
    int64_t     day = NOW / 86400;

    (void) state;

    assert_false(cef_goal_once_seen(st, NOW, "purchase", 8));

    n = cef_goal_once_add(st, NOW, "purchase", 8, buf);
    assert_int_equal(n, 5 + 9);
    assert_int_equal(strlen(buf), n);
    st.data = buf;
    st.len = n;
    assert_true(cef_goal_once_seen(st, NOW, "purchase", 8));
    assert_true(cef_goal_once_seen(st, (day + 1) * 86400 - 1, "purchase", 8));
    assert_false(cef_goal_once_seen(st, NOW, "signup", 6));
    assert_false(cef_goal_once_seen(st, NOW, "purchas", 7));

    /* the next UTC day starts afresh, and drops the old entries */
    assert_false(cef_goal_once_seen(st, (day + 1) * 86400, "purchase", 8));

    /* cookie-safe: digits, '.', lowercase hex */
    for (i = 0; buf[i]; i++) {
        assert_true((buf[i] >= '0' && buf[i] <= '9') || buf[i] == '.'
                    || (buf[i] >= 'a' && buf[i] <= 'f'));
    }

    /* garbage and other days read as empty */
    assert_false(cef_goal_once_seen(cef_span_lit("xyz"), NOW, "purchase", 8));
    assert_false(cef_goal_once_seen(cef_span_lit("20415"), NOW, "a", 1));

    /* 43 goals fit in a day, the 44th is not kept */
    st.len = 0;
    for (i = 0; i < 44; i++) {
        char tmp[CEF_GOAL_STATE_MAX + 1];

        snprintf(name, sizeof(name), "g%d", i);
        n = cef_goal_once_add(st, NOW, name, strlen(name), tmp);
        if (i < 43) {
            assert_true(n > 0);
            memcpy(buf, tmp, n + 1);
            st.data = buf;
            st.len = n;
        } else {
            assert_int_equal(n, 0);
        }
    }

    for (i = 0; i < 43; i++) {
        snprintf(name, sizeof(name), "g%d", i);
        assert_true(cef_goal_once_seen(st, NOW, name, strlen(name)));
    }

    assert_int_equal(cef_goal_once_max_age(day * 86400), 86400);
    assert_int_equal(cef_goal_once_max_age(NOW), (day + 1) * 86400 - NOW);
}


static void
test_format(void **state)
{
    cef_rules_t       *rs;
    cef_goal_fmt_t    *f;
    cef_goal_event_t   ev;
    cef_goal_arm_t     arms[4];
    char               buf[1024], want[1024];
    size_t             n, i;
    json_t            *j;
    json_error_t       jerr;
    const char        *y =
        "version: 1\n"
        "offers: {h: {slot: hero, html: H}, s: {slot: side, html: S}}\n"
        "rules: [{name: r, show: [h, s]}]\n"
        "slots:\n"
        "  hero:\n"
        "    holdout: 10%\n"
        "    experiment: {name: 'hero \"q4\"', variants: {a: 50, b: 50}}\n"
        "  side: {holdout: 30%}\n"
        "goals:\n"
        "  purchase: {min: 0, max: 100000}\n";

    (void) state;

    rs = load(y);
    f = cef_goal_fmt_create(rs, "purchase");
    assert_non_null(f);

    memset(&ev, 0, sizeof(ev));
    ev.now = 1795449572;
    ev.value = 59.9;
    ev.has_value = 1;
    ev.key_type = cef_span_lit("customer");
    ev.profile = cef_span_lit("p-1\n");
    ev.visitor = cef_span_lit("b2JzZXJ2ZS12aXMtMDAwMQ");
    ev.bucket_by = ev.visitor;

    n = cef_goal_format(f, &ev, buf, sizeof(buf));
    assert_int_equal(n, strlen(buf));
    assert_true(n <= cef_goal_format_max(f, &ev));

    /* the arms are those cef_goal_arms() gives, names escaped */
    assert_int_equal(cef_goal_arms(rs, ev.now, ev.bucket_by, arms), 2);
    snprintf(want, sizeof(want),
             "{\"v\":1,\"t\":1795449572,\"goal\":\"purchase\",\"value\":59.9,"
             "\"rules\":\"%s\",\"key_type\":\"customer\",\"profile\":"
             "\"p-1\\n\",\"visitor\":\"b2JzZXJ2ZS12aXMtMDAwMQ\",\"arms\":"
             "{\"hero \\\"q4\\\"\":{\"salt\":\"hero \\\"q4\\\"\",\"arm\":\"%s\"},"
             "\"side\":{\"salt\":\"side\",\"arm\":\"%s\"}}}",
             cef_rules_hash(rs), arms[0].arm, arms[1].arm);
    assert_string_equal(buf, want);

    j = json_loadb(buf, n, 0, &jerr);
    assert_non_null(j);
    json_decref(j);

    /* measuring, and truncating, agree */
    assert_int_equal(cef_goal_format(f, &ev, NULL, 0), n);
    assert_int_equal(cef_goal_format(f, &ev, buf, 10), n);
    assert_string_equal(buf, "{\"v\":1,\"t");

    /* anonymous, no value, no id to bucket by: no arms */
    memset(&ev, 0, sizeof(ev));
    ev.now = 5;
    n = cef_goal_format(f, &ev, buf, sizeof(buf));
    snprintf(want, sizeof(want),
             "{\"v\":1,\"t\":5,\"goal\":\"purchase\",\"value\":null,\"rules\":"
             "\"%s\",\"key_type\":null,\"profile\":null,\"visitor\":null,"
             "\"arms\":{}}", cef_rules_hash(rs));
    assert_string_equal(buf, want);

    /* shortest round-trip numbers; control bytes within the bound */
    ev.has_value = 1;
    ev.value = 0.1 + 0.2;
    (void) cef_goal_format(f, &ev, buf, sizeof(buf));
    assert_non_null(strstr(buf, "\"value\":0.30000000000000004,"));
    ev.value = 100000;
    (void) cef_goal_format(f, &ev, buf, sizeof(buf));
    assert_non_null(strstr(buf, "\"value\":100000,"));
    ev.value = -1.7976931348623157e308;
    ev.profile = cef_span_lit("\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c"
                              "\x0e\x0f\xff\xfe");
    ev.visitor = cef_span_lit("v");
    ev.bucket_by = ev.visitor;
    n = cef_goal_format(f, &ev, buf, sizeof(buf));
    assert_true(n <= cef_goal_format_max(f, &ev));
    assert_int_equal(n, strlen(buf));

    /* a visitor's record is the same every time (deterministic arms) */
    for (i = 0; i < 3; i++) {
        assert_int_equal(cef_goal_format(f, &ev, want, sizeof(want)), n);
        assert_string_equal(want, buf);
    }

    cef_goal_fmt_free(f);
    cef_rules_free(rs);
}


/* --- a third-party strategy with the ABI 2 hooks -------------------------- */

static const char *const  coin_arms[] = { "heads", "tails" };
static const uint32_t     coin_split[] = { 5000, 5000 };
static const uint32_t     coin_bad_split[] = { 5000, 4000 };


static int
coin_configure(const cef_plugin_rules_t *rules, uint32_t slot,
    const cef_conf_t *conf, void **state, cef_plugin_error_t *err)
{
    (void) rules;
    (void) slot;
    (void) err;

    /* the state says whether to describe a broken split */
    *state = (void *) (cef_conf_get(conf, "broken") ? coin_bad_split
                                                    : coin_split);
    return CEF_PLUGIN_OK;
}


static int
coin_select(void *state, const cef_plugin_req_t *req,
    const cef_plugin_cand_t *cands, uint32_t n, cef_plugin_pick_t *pick)
{
    uint32_t  b = req->bucket(req, "coin", 4);

    (void) state;
    (void) cands;
    (void) n;

    pick->pick = 0;
    pick->bucket = b;
    pick->variant = b == CEF_PLUGIN_NONE ? NULL : coin_arms[b % 2];

    return CEF_PLUGIN_OK;
}


static int
coin_experiment(const void *state, cef_plugin_experiment_t *out)
{
    out->name = "coin";
    out->salt = "coin";
    out->narms = 2;
    out->arms = coin_arms;
    out->split = state;

    return 1;
}


/* agrees with select; bucket 7 and up to 99 says "no arm" (out of range) */
static uint32_t
coin_arm(const void *state, const cef_plugin_req_t *req)
{
    uint32_t  b = req->bucket(req, "coin", 4);

    (void) state;

    if (b == CEF_PLUGIN_NONE) {
        return CEF_PLUGIN_NONE;
    }

    return b % 100 == 7 ? 99 : b % 2;
}


static const cef_plugin_t  coin_plugin = {
    CEF_PLUGIN_ABI_VERSION, "coin", "a fair coin per visitor", 0, NULL,
    NULL, 0, coin_configure, NULL, coin_select, NULL, NULL, NULL, NULL,
    coin_experiment, coin_arm
};


static void
test_third_party_experiment(void **state)
{
    cef_plugins_t        *ps;
    cef_rules_t          *rs;
    cef_rules_errors_t    errs;
    cef_expr_eval_t      *ev;
    cef_decision_t       *d;
    cef_expr_ctx_t        ctx;
    cef_decision_input_t  in;
    cef_goal_arm_t        arms[2];
    cef_record_slot_t     slots[1];
    char                  err[400], id[32];
    uint32_t              i, none = 0;
    size_t                n;
    const char           *good =
        "version: 1\n"
        "offers: {x: {slot: s, html: X}}\n"
        "rules: [{name: r, show: x}]\n"
        "slots: {s: {strategy: coin}}\n"
        "goals: {signup: {}}\n";
    const char           *bad =
        "version: 1\n"
        "offers: {x: {slot: s, html: X}}\n"
        "rules: [{name: r, show: x}]\n"
        "slots: {s: {strategy: coin, broken: yes}}\n";

    (void) state;

    ps = cef_plugins_create();
    assert_int_equal(cef_plugins_add(ps, &coin_plugin, "coin", err,
                                     sizeof(err)), 0);

    /* a description whose shares do not sum to 10000 is refused */
    assert_int_equal(cef_rules_load_buffer_with("c.yaml", bad, strlen(bad),
                                                ps, &rs, &errs), -1);
    cef_rules_error_format(&errs, 0, err, sizeof(err));
    assert_string_equal(err, "c.yaml: slot 's': strategy 'coin' describes an "
                        "invalid experiment");
    cef_rules_errors_free(&errs);

    assert_int_equal(cef_rules_load_buffer_with("c.yaml", good, strlen(good),
                                                ps, &rs, &errs), 0);
    cef_rules_errors_free(&errs);

    ev = cef_rules_eval_create(rs);
    d = cef_decision_create(rs);
    memset(&ctx, 0, sizeof(ctx));
    ctx.now = NOW;

    for (i = 0; i < 500; i++) {
        snprintf(id, sizeof(id), "coin-%04u", i);
        in.visitor.data = id;
        in.visitor.len = strlen(id);
        cef_decision_make(rs, ev, &ctx, &in, d);

        cef_record_slots(slots, rs, d->slots);
        assert_string_equal(slots[0].experiment, "coin");
        assert_int_equal(slots[0].nsplit, 2);

        n = cef_goal_arms(rs, NOW, in.visitor, arms);

        if (d->slots[0].bucket % 100 == 7) {
            assert_int_equal(n, 0);          /* out of range: no arm */
            none++;
            continue;
        }

        assert_int_equal(n, 1);
        assert_string_equal(arms[0].experiment, "coin");
        assert_string_equal(arms[0].arm, d->slots[0].variant);
    }

    assert_true(none > 0);

    cef_decision_free(d);
    cef_expr_eval_free(ev);
    cef_rules_free(rs);
    cef_plugins_free(ps);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_goals_section),
        cmocka_unit_test(test_goals_errors),
        cmocka_unit_test(test_experiments),
        cmocka_unit_test(test_impression_record_split),
        cmocka_unit_test(test_arms_agree_with_decisions),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_once),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_third_party_experiment),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
