/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Rule plugins: configuration errors at their line and column, and each
 * built-in strategy (priority, weighted, value, experiment) and
 * per-decision plugin (schedule) through cef_decision_make().
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cef_bucket.h"
#include "cef_decision.h"
#include "cef_plugins.h"
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
fx_load(fx_t *fx, const char *yaml)
{
    cef_rules_errors_t  errs;
    char                line[512];

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
    fx->ctx.now = NOW;
}


static void
fx_free(fx_t *fx)
{
    cef_decision_free(fx->d);
    cef_expr_eval_free(fx->ev);
    cef_persona_free(fx->p);
    cef_rules_free(fx->rs);
}


/* the offer shown in slot 0 for a visitor, or "-" */
static const char *
fx_decide(fx_t *fx, const char *visitor, uint32_t slot)
{
    cef_decision_input_t  in;

    in.visitor.data = visitor ? visitor : "";
    in.visitor.len = visitor ? strlen(visitor) : 0;

    (void) cef_decision_make(fx->rs, fx->ev, &fx->ctx, &in, fx->d);

    return fx->d->slots[slot].offer == CEF_RULES_NONE
           ? "-" : cef_rules_offer(fx->rs, fx->d->slots[slot].offer)->name;
}


/* the first load error, formatted; "" if the file loads */
static const char *
load_error(const char *yaml)
{
    static char         line[512];
    cef_rules_t        *rs;
    cef_rules_errors_t  errs;

    line[0] = '\0';

    if (cef_rules_load_buffer("t.yaml", yaml, strlen(yaml), &rs, &errs)
        != 0)
    {
        assert_true(errs.n > 0);
        cef_rules_error_format(&errs, 0, line, sizeof(line));
    } else {
        cef_rules_free(rs);
    }

    cef_rules_errors_free(&errs);

    return line;
}


#define OFFERS                                                               \
    "version: 1\n"                                                           \
    "offers:\n"                                                              \
    "  a: {slot: hero, html: A, value: 100, cost: 10, campaign: winback}\n"  \
    "  b: {slot: hero, html: B, value: 40, cost: 1}\n"                       \
    "  c: {slot: hero, html: C, value: 10, cost: 50}\n"                      \
    "  s: {slot: side, html: S}\n"                                           \
    "rules:\n"                                                               \
    "  - {name: ra, show: a, priority: 30}\n"                                \
    "  - {name: rb, show: b, priority: 20}\n"                                \
    "  - {name: rc, show: [c, s], priority: 10}\n"


static void
test_config_errors(void **state)
{
    (void) state;

    assert_string_equal(load_error(OFFERS "slots:\n  hero:\n"
                                   "    experiment: {name: x, variants: "
                                   "{a: 50, b: 40}}\n"),
                        "t.yaml:13:37: experiment: variant weights must sum "
                        "to 100, not 90");

    assert_string_equal(load_error(OFFERS "slots:\n  hero:\n"
                                   "    holdout: 120%\n"),
                        "t.yaml:13:14: experiment: holdout must be a "
                        "percentage from 0% to 100%, not '120%'");

    assert_string_equal(load_error(OFFERS "slots:\n  hero:\n"
                                   "    holdout: -1\n"),
                        "t.yaml:13:14: experiment: holdout must be a "
                        "percentage from 0% to 100%, not '-1'");

    assert_string_equal(load_error(OFFERS "slots:\n  hero:\n"
                                   "    strategy: wieghted\n"),
                        "t.yaml:13:15: unknown strategy 'wieghted' (did you "
                        "mean 'weighted'?)");

    assert_string_equal(load_error(OFFERS "slots:\n  hero:\n"
                                   "    strategy: value\n"
                                   "    p: profile.propensity +\n"),
                        "t.yaml:14:8: value: p: in expression "
                        "'profile.propensity +' at offset 20: expected a "
                        "value, found end of expression");

    assert_string_equal(load_error(OFFERS "slots:\n  hero:\n"
                                   "    strategy: weighted\n"
                                   "    weights: {a: 1, s: 2}\n"),
                        "t.yaml:14:24: weighted: weights: no offer 's' in "
                        "slot 'hero'");

    assert_string_equal(load_error(OFFERS "slots:\n  heor:\n"
                                   "    strategy: weighted\n"),
                        "t.yaml:12:3: no offer uses slot 'heor' (did you "
                        "mean 'hero'?)");

    assert_string_equal(load_error(OFFERS "plugins:\n  freqcap:\n"
                                   "    caps: [{campaign: winbak, max: 3, "
                                   "per: 7d}]\n"),
                        "t.yaml:13:23: freqcap: no offer has campaign "
                        "'winbak'");

    assert_string_equal(load_error(OFFERS "plugins:\n  freqcap:\n"
                                   "    caps: [{campaign: winback, max: 0, "
                                   "per: 7d}]\n"),
                        "t.yaml:13:37: freqcap: max: must be a whole number "
                        "of impressions from 1 to 1000000");

    assert_string_equal(load_error(OFFERS "plugins:\n  freqcapp: {}\n"),
                        "t.yaml:12:3: unknown plugin 'freqcapp' (did you "
                        "mean 'freqcap'?)");

    assert_string_equal(load_error(OFFERS "slots:\n  hero:\n"
                                   "    strategy: priority\n"
                                   "    weights: {a: 1}\n"),
                        "t.yaml:14:14: priority: strategy 'priority' takes "
                        "no configuration ('weights')");

    /* a plain rule file is untouched by all this */
    assert_string_equal(load_error(OFFERS), "");
}


static void
test_priority_default(void **state)
{
    fx_t  fx;

    (void) state;

    fx_load(&fx, OFFERS);
    assert_false(cef_rules_plugged(fx.rs));
    assert_string_equal(fx_decide(&fx, "v1", 0), "a");
    assert_string_equal(fx.d->slots[0].plugin, "priority");
    assert_null(fx.d->slots[0].variant);
    assert_int_equal(fx.d->slots[0].candidates, 1);
    assert_string_equal(fx_decide(&fx, "v1", 1), "s");
    assert_string_equal(cef_rules_slot_strategy(fx.rs, 0), "priority");
    fx_free(&fx);
}


static void
test_weighted(void **state)
{
    fx_t        fx;
    uint32_t    i, na = 0, nb = 0, nc = 0;
    const char *o, *again;
    char        id[32];

    (void) state;

    fx_load(&fx, OFFERS "slots:\n  hero:\n    strategy: weighted\n"
                 "    weights: {a: 6, b: 3, c: 1}\n");
    assert_true(cef_rules_plugged(fx.rs));

    for (i = 0; i < 20000; i++) {
        snprintf(id, sizeof(id), "visitor-%u", i);
        o = fx_decide(&fx, id, 0);
        assert_int_equal(fx.d->slots[0].candidates, 3);
        na += strcmp(o, "a") == 0;
        nb += strcmp(o, "b") == 0;
        nc += strcmp(o, "c") == 0;

        if (i % 1000 == 0) {
            again = fx_decide(&fx, id, 0);
            assert_string_equal(o, again);     /* sticky */
        }
    }

    assert_int_equal(na + nb + nc, 20000);
    assert_true(na > 11400 && na < 12600);
    assert_true(nb > 5500 && nb < 6500);
    assert_true(nc > 1700 && nc < 2300);

    /* no visitor id: the heaviest */
    assert_string_equal(fx_decide(&fx, NULL, 0), "a");
    fx_free(&fx);
}


static void
test_value(void **state)
{
    fx_t        fx;
    cef_span_t  keys[2] = { cef_span_lit("b"), cef_span_lit("winback") };
    double      nums[2] = { 0.9, 0.05 };

    (void) state;

    fx_load(&fx, OFFERS "slots:\n  hero:\n    strategy: value\n"
                 "    p: profile.propensity\n");

    /* no propensity: nothing */
    assert_string_equal(fx_decide(&fx, "v", 0), "-");

    /* p = 0.5: a 40, b 19, c -45 */
    assert_int_equal(cef_persona_set_num(fx.p, "profile.propensity", 0.5), 0);
    assert_string_equal(fx_decide(&fx, "v", 0), "a");
    assert_string_equal(fx.d->slots[0].plugin, "value");

    /* p = 0.05: a -5, b 1, c -49.5 */
    assert_int_equal(cef_persona_set_num(fx.p, "profile.propensity", 0.05),
                     0);
    assert_string_equal(fx_decide(&fx, "v", 0), "b");

    /* p = 0.01: a -9, b -0.6, c: all negative, nothing */
    assert_int_equal(cef_persona_set_num(fx.p, "profile.propensity", 0.01),
                     0);
    assert_string_equal(fx_decide(&fx, "v", 0), "-");

    /* per offer (by name, else campaign): a 0.05*100-10 = -5, b 35 */
    assert_int_equal(cef_persona_set_map(fx.p, "profile.propensity", keys,
                                         nums, 2), 0);
    assert_string_equal(fx_decide(&fx, "v", 0), "b");
    fx_free(&fx);
}


static void
test_experiment_holdout(void **state)
{
    fx_t        fx;
    uint32_t    i, control = 0, treat = 0, b;
    const char *o;
    char        id[32];

    (void) state;

    fx_load(&fx, OFFERS "slots:\n  hero:\n    holdout: 10%\n");

    for (i = 0; i < 20000; i++) {
        snprintf(id, sizeof(id), "v%u", i);
        o = fx_decide(&fx, id, 0);
        b = fx.d->slots[0].bucket;
        assert_true(b < 10000);
        assert_string_equal(fx.d->slots[0].plugin, "experiment");

        if (b < 1000) {
            control++;
            assert_string_equal(o, "-");
            assert_string_equal(fx.d->slots[0].variant, "control");
            assert_string_equal(cef_rules_offer(fx.rs,
                                    fx.d->slots[0].would_have)->name, "a");
            assert_string_equal(cef_rules_rule(fx.rs,
                                    fx.d->slots[0].would_have_rule)->name,
                                "ra");
        } else {
            treat++;
            assert_string_equal(o, "a");
            assert_string_equal(fx.d->slots[0].variant, "treatment");
            assert_int_equal(fx.d->slots[0].would_have, CEF_RULES_NONE);
        }

        /* the other slot is not part of it */
        assert_string_equal(cef_rules_offer(fx.rs, fx.d->slots[1].offer)->name,
                            "s");
    }

    assert_true(control > 1800 && control < 2200);
    assert_int_equal(control + treat, 20000);

    /* no visitor id: not bucketed, default behaviour */
    assert_string_equal(fx_decide(&fx, NULL, 0), "a");
    assert_null(fx.d->slots[0].variant);
    fx_free(&fx);
}


static void
test_experiment_arms(void **state)
{
    fx_t        fx;
    uint32_t    i, na = 0, nb = 0;
    const char *o, *v;
    char        id[32];

    (void) state;

    /* arm b may show c (only b may); rule ra (a) only for nobody */
    fx_load(&fx,
            "version: 1\n"
            "offers:\n"
            "  a: {slot: hero, html: A}\n"
            "  c: {slot: hero, html: C}\n"
            "rules:\n"
            "  - {name: rc, show: c, priority: 30}\n"
            "  - {name: ra, show: a, priority: 20}\n"
            "slots:\n"
            "  hero:\n"
            "    experiment:\n"
            "      name: hero-q4\n"
            "      variants: {a: 50, b: {weight: 50, offers: [c]}}\n");

    for (i = 0; i < 10000; i++) {
        snprintf(id, sizeof(id), "v%u", i);
        o = fx_decide(&fx, id, 0);
        v = fx.d->slots[0].variant;
        assert_non_null(v);

        if (strcmp(v, "a") == 0) {
            na++;
            assert_string_equal(o, "a");
        } else {
            nb++;
            assert_string_equal(v, "b");
            assert_string_equal(o, "c");
        }

        assert_int_equal(fx.d->slots[0].bucket,
                         cef_bucket("hero-q4", 7, id, strlen(id)));
    }

    assert_true(na > 4800 && na < 5200);
    assert_int_equal(na + nb, 10000);
    fx_free(&fx);
}


/*
 * How many rules a slot costs: a strategy that wants every candidate keeps
 * its slot open to the last rule; a holdout, or arms that reserve no
 * offer, need only the first match (the would-have offer of control is
 * that same first match), so the lower rules of the slot are never
 * evaluated.  Seen through the lookups: rule rb alone reads profile.y.
 */

static int  read_y;

static int
noting_lookup(void *data, const cef_ref_t *ref, cef_value_t *out)
{
    if (strcmp(ref->path.data, "profile.y") == 0) {
        read_y++;
    }

    return cef_persona_lookup(data, ref, out);
}


static void
test_candidates_wanted(void **state)
{
    static const struct {
        const char  *slots;
        int          reads_y;       /* rb evaluated */
        uint32_t     candidates;    /* for a treated visitor */
        const char  *variant;       /* "control": check the would-have */
    } cases[] = {
        { "", 0, 1, NULL },
        { "  hero: {holdout: 50%}\n", 0, 1, "" },
        { "  hero: {holdout: 0%}\n", 0, 1, "" },
        { "  hero: {holdout: 100%}\n", 0, 1, "control" },
        { "  hero:\n    experiment: {name: x, variants: {p: 50, q: 50}}\n",
          0, 1, "" },
        { "  hero:\n    holdout: 10%\n"
          "    experiment: {name: x, variants: {p: 50, q: 50}}\n", 0, 1,
          "" },
        { "  hero:\n    experiment:\n      name: x\n"
          "      variants: {p: 50, q: {weight: 50, offers: [b]}}\n", 1, 2,
          "" },
        { "  hero: {strategy: weighted}\n", 1, 2, NULL },
        { "  hero: {strategy: priority}\n", 0, 1, NULL },
    };
    fx_t         fx;
    size_t       i;
    char         yaml[1024];
    const char  *o;

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(yaml, sizeof(yaml),
                 "version: 1\n"
                 "offers:\n"
                 "  a: {slot: hero, html: A}\n"
                 "  b: {slot: hero, html: B}\n"
                 "  s: {slot: side, html: S}\n"
                 "rules:\n"
                 "  - {name: ra, when: profile.x == 1, show: a, "
                 "priority: 30}\n"
                 "  - {name: rb, when: profile.y == 1, show: b, "
                 "priority: 20}\n"
                 "  - {name: rs, when: profile.z == 1, show: s, "
                 "priority: 10}\n"
                 "%s%s", cases[i].slots[0] ? "slots:\n" : "",
                 cases[i].slots);

        fx_load(&fx, yaml);
        fx.ctx.lookup = noting_lookup;
        assert_int_equal(cef_persona_set_num(fx.p, "profile.x", 1), 0);
        assert_int_equal(cef_persona_set_num(fx.p, "profile.y", 1), 0);
        assert_int_equal(cef_persona_set_num(fx.p, "profile.z", 1), 0);

        read_y = 0;
        o = fx_decide(&fx, "visitor-1", 0);

        if (read_y != cases[i].reads_y
            || fx.d->slots[0].candidates != cases[i].candidates)
        {
            fail_msg("case %zu (%s): rb evaluated %d times, %u candidates; "
                     "want %d, %u", i, cases[i].slots, read_y,
                     fx.d->slots[0].candidates, cases[i].reads_y,
                     cases[i].candidates);
        }

        /* what is shown is the same either way */

        if (cases[i].variant && strcmp(cases[i].variant, "control") == 0) {
            assert_string_equal(o, "-");
            assert_string_equal(fx.d->slots[0].variant, "control");
            assert_string_equal(cef_rules_offer(fx.rs,
                                    fx.d->slots[0].would_have)->name, "a");
            assert_string_equal(cef_rules_rule(fx.rs,
                                    fx.d->slots[0].would_have_rule)->name,
                                "ra");
        } else if (strstr(cases[i].slots, "weighted") == NULL) {
            if (strcmp(o, "a") != 0) {
                assert_string_equal(fx.d->slots[0].variant, "control");
            }
        }

        assert_string_equal(fx_decide(&fx, "visitor-1", 1), "s");
        fx_free(&fx);
    }
}


/* A strategy that misbehaves: an out-of-range pick, or an error. */

static int
bad_select(void *st, const cef_plugin_req_t *req,
    const cef_plugin_cand_t *cands, uint32_t n, cef_plugin_pick_t *pick)
{
    (void) st;
    (void) cands;

    if (req->visitor.len && req->visitor.data[0] == 'e') {
        return CEF_PLUGIN_ERROR;
    }

    pick->pick = n;
    return CEF_PLUGIN_OK;
}


static const cef_plugin_t  bad_plugin = {
    CEF_PLUGIN_ABI_VERSION, "bad", "misbehaves", 0, NULL, NULL, 0,
    NULL, NULL, bad_select, NULL, NULL, NULL, NULL,
    NULL, NULL
};


static void
test_failing_strategy(void **state)
{
    cef_plugins_t        *ps;
    cef_rules_t          *rs;
    cef_rules_errors_t    errs;
    cef_expr_eval_t      *ev;
    cef_decision_t       *d;
    cef_expr_ctx_t        ctx;
    cef_decision_input_t  in;
    char                  err[256];
    const char           *y = OFFERS "slots:\n  hero: {strategy: bad}\n";

    (void) state;

    ps = cef_plugins_create();
    assert_non_null(ps);
    assert_int_equal(cef_plugins_add(ps, &bad_plugin, "bad", err,
                                     sizeof(err)), 0);

    /* a name clash, a wrong name */
    assert_int_equal(cef_plugins_add(ps, &bad_plugin, "bad", err,
                                     sizeof(err)), -1);
    assert_string_equal(err, "a plugin named \"bad\" is already loaded");
    assert_int_equal(cef_plugins_add(ps, &bad_plugin, "good", err,
                                     sizeof(err)), -1);
    assert_string_equal(err, "the plugin is named \"bad\", not \"good\"");

    /* unknown to the built-in set */
    assert_string_equal(load_error(y), "t.yaml:12:20: unknown strategy 'bad' "
                        "(strategies: priority, weighted, value, experiment, "
                        "bandit)");

    assert_int_equal(cef_rules_load_buffer_with("t.yaml", y, strlen(y), ps,
                                                &rs, &errs), 0);
    cef_rules_errors_free(&errs);

    ev = cef_rules_eval_create(rs);
    d = cef_decision_create(rs);
    memset(&ctx, 0, sizeof(ctx));
    ctx.now = NOW;
    in.visitor = cef_span_lit("v1");

    assert_int_equal(cef_decision_make(rs, ev, &ctx, &in, d), 1);
    assert_int_equal(d->slots[0].offer, CEF_RULES_NONE);
    assert_true(d->slots[0].failed);
    assert_int_equal(d->errors, 1);
    assert_string_equal(d->error, "rule plugin \"bad\" failed in select");
    assert_int_equal(d->slots[1].offer, 3);      /* the other slot: fine */

    in.visitor = cef_span_lit("e1");
    assert_int_equal(cef_decision_make(rs, ev, &ctx, &in, d), 1);
    assert_true(d->slots[0].failed);

    cef_decision_free(d);
    cef_expr_eval_free(ev);
    cef_rules_free(rs);
    cef_plugins_free(ps);
}


static void
test_schedule_hours(void **state)
{
    fx_t  fx;

    (void) state;

    fx_load(&fx,
            "version: 1\n"
            "offers:\n"
            "  lunch: {slot: hero, html: L, hours: 11-14}\n"
            "  night: {slot: hero, html: N, hours: [22-6]}\n"
            "  any: {slot: hero, html: A}\n"
            "rules:\n"
            "  - {name: l, show: lunch, priority: 3}\n"
            "  - {name: n, show: night, priority: 2}\n"
            "  - {name: a, show: any, priority: 1}\n");

    fx.ctx.now = NOW - 3600;                     /* 12:00 UTC */
    assert_string_equal(fx_decide(&fx, "v", 0), "lunch");
    fx.ctx.now = NOW + 3600;                     /* 14:00 */
    assert_string_equal(fx_decide(&fx, "v", 0), "any");
    fx.ctx.now = NOW + 11 * 3600;                /* 00:00 */
    assert_string_equal(fx_decide(&fx, "v", 0), "night");
    fx.ctx.utc_offset = 3 * 3600;                /* 03:00 local */
    assert_string_equal(fx_decide(&fx, "v", 0), "night");
    fx.ctx.utc_offset = 7 * 3600;                /* 07:00 local */
    assert_string_equal(fx_decide(&fx, "v", 0), "any");
    fx_free(&fx);

    assert_string_equal(load_error("version: 1\noffers:\n"
                                   "  x: {slot: s, html: X, hours: 9-25}\n"
                                   "rules: [{name: r, show: x}]\n"),
                        "t.yaml:3:32: schedule: bad hours '9-25' of offer "
                        "'x' (use e.g. 9-17, 22-6 or 12)");
    assert_string_equal(load_error("version: 1\noffers:\n"
                                   "  x: {slot: s, html: X, hour: 9-12}\n"
                                   "rules: [{name: r, show: x}]\n"),
                        "t.yaml:3:25: unknown key 'hour' in offer 'x' (did "
                        "you mean 'hours'?)");
}


static void
test_decision_log_line(void **state)
{
    fx_t    fx;
    char    line[512];
    size_t  n;

    (void) state;

    fx_load(&fx, OFFERS "slots:\n  hero: {holdout: 100%}\n");
    (void) fx_decide(&fx, "v1", 0);
    n = cef_decision_format(fx.d, line, sizeof(line));
    assert_int_equal(n, strlen(line));
    assert_non_null(strstr(line, " hero=-/-/experiment:control:"));
    assert_non_null(strstr(line, ":would=a side=s/rc/priority"));
    assert_memory_equal(line, "rules=", 6);
    assert_memory_equal(line + 6, cef_rules_hash(fx.rs), 12);

    /* truncation still tells the length needed */
    assert_int_equal(cef_decision_format(fx.d, line, 10), n);
    assert_int_equal(strlen(line), 9);
    fx_free(&fx);
}


/* Expression functions from a plugin. */

static int
fn_twice(const cef_value_t *args, uint32_t nargs, int64_t now,
    cef_value_t *out)
{
    (void) nargs;
    (void) now;

    out->type = CEF_VAL_FLOAT;
    out->u.f = 2 * (args[0].type == CEF_VAL_INT ? (double) args[0].u.i
                                                : args[0].u.f);
    return 1;
}


static int
fn_pick(const cef_value_t *args, uint32_t nargs, int64_t now,
    cef_value_t *out)
{
    (void) now;
    (void) nargs;

    *out = args[0].u.b ? args[1] : args[2];
    return 1;
}


static const cef_plugin_func_t  test_funcs[] = {
    { "twice", 1, { CEF_VAL_FLOAT }, CEF_VAL_FLOAT, fn_twice },
    { "pick", 3, { CEF_VAL_BOOL, CEF_VAL_STR, CEF_VAL_STR }, CEF_VAL_STR,
      fn_pick },
};

static const cef_plugin_t  func_plugin = {
    CEF_PLUGIN_ABI_VERSION, "funcs", "functions", 0, NULL, test_funcs, 2,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, NULL
};

static const cef_plugin_func_t  len_func[] = {
    { "len", 1, { CEF_VAL_NIL }, CEF_VAL_FLOAT, fn_twice },
};

static const cef_plugin_t  len_plugin = {
    CEF_PLUGIN_ABI_VERSION, "lenny", "redefines len()", 0, NULL, len_func,
    1, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, NULL
};


static const char *
func_error(cef_plugins_t *ps, const char *when)
{
    static char          line[512];
    char                 yaml[512];
    cef_rules_t         *rs;
    cef_rules_errors_t   errs;

    snprintf(yaml, sizeof(yaml), "version: 1\noffers: {x: {slot: s, html: "
             "X}}\nrules:\n  - {name: r, show: x, when: '%s'}\n", when);
    line[0] = '\0';

    if (cef_rules_load_buffer_with("t.yaml", yaml, strlen(yaml), ps, &rs,
                                   &errs)
        == 0)
    {
        cef_rules_free(rs);
    } else {
        cef_rules_error_format(&errs, 0, line, sizeof(line));
    }

    cef_rules_errors_free(&errs);
    return line;
}


/* The log line as it was defined with snprintf(), to compare with. */
static size_t
ref_format(const cef_decision_t *d, char *buf, size_t size)
{
    const cef_decision_slot_t  *ds;
    size_t                      len = 0;
    uint32_t                    s;
    int                         n;

#define REF_PUT(...)                                                         \
    n = snprintf(len < size ? buf + len : NULL, len < size ? size - len : 0, \
                 __VA_ARGS__);                                               \
    len += n > 0 ? (size_t) n : 0

    if (size) {
        buf[0] = '\0';
    }

    REF_PUT("rules=%.12s", d->hash);

    for (s = 0; s < d->nslots; s++) {
        ds = &d->slots[s];

        REF_PUT(" %s=%s/%s/%s", cef_rules_slot_name(d->rs, s),
                ds->offer == CEF_RULES_NONE
                ? "-" : cef_rules_offer(d->rs, ds->offer)->name,
                ds->rule == CEF_RULES_NONE
                ? "-" : cef_rules_rule(d->rs, ds->rule)->name,
                ds->plugin);

        if (ds->variant) {
            REF_PUT(":%s", ds->variant);
        }
        if (ds->bucket != CEF_RULES_NONE) {
            REF_PUT(":%u", ds->bucket);
        }
        if (ds->would_have != CEF_RULES_NONE) {
            REF_PUT(":would=%s", cef_rules_offer(d->rs, ds->would_have)->name);
        }
        if (ds->failed) {
            REF_PUT(":failed");
        }
    }

#undef REF_PUT

    return len;
}


/* cef_decision_format() against that definition, whole and truncated */
static void
test_decision_log_line_exact(void **state)
{
    static const char  *slots[] = {
        "",
        "slots:\n  hero: {holdout: 100%}\n",
        "slots:\n  hero: {holdout: 30%}\n",
        "slots:\n  hero:\n    holdout: 20%\n"
        "    experiment: {name: e, variants: {p: 50, q: 50}}\n",
        "slots:\n  hero: {strategy: weighted}\n",
        "slots:\n  hero: {strategy: bad}\n",
    };
    static const char  *visitors[] = { "v1", "v2", "e-fails", "v0", NULL,
                                       "x-123456789" };
    fx_t                fx;
    cef_plugins_t      *ps;
    cef_rules_errors_t  errs;
    char                yaml[1024], want[512], got[512];
    size_t              i, j, k, n, m;
    char                err[256];

    (void) state;

    ps = cef_plugins_create();
    assert_non_null(ps);
    assert_int_equal(cef_plugins_add(ps, &bad_plugin, "bad", err,
                                     sizeof(err)), 0);

    for (i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
        snprintf(yaml, sizeof(yaml), "%s%s", OFFERS, slots[i]);
        memset(&fx, 0, sizeof(fx));
        assert_int_equal(cef_rules_load_buffer_with("t.yaml", yaml,
                                                    strlen(yaml), ps,
                                                    &fx.rs, &errs), 0);
        cef_rules_errors_free(&errs);
        fx.p = cef_persona_create();
        fx.ev = cef_rules_eval_create(fx.rs);
        fx.d = cef_decision_create(fx.rs);
        fx.ctx.lookup = cef_persona_lookup;
        fx.ctx.data = fx.p;
        fx.ctx.now = NOW;

        for (j = 0; j < sizeof(visitors) / sizeof(visitors[0]); j++) {
            (void) fx_decide(&fx, visitors[j], 0);

            n = ref_format(fx.d, want, sizeof(want));
            assert_true(n < sizeof(want));
            assert_int_equal(cef_decision_format(fx.d, got, sizeof(got)), n);
            assert_string_equal(got, want);
            assert_int_equal(cef_decision_format(fx.d, NULL, 0), n);

            for (k = 1; k <= n + 1; k++) {
                memset(got, 'X', sizeof(got));
                m = cef_decision_format(fx.d, got, k);
                assert_int_equal(m, n);
                assert_int_equal(strlen(got), k - 1 < n ? k - 1 : n);
                assert_memory_equal(got, want, strlen(got));
                assert_int_equal(got[k], 'X');     /* nothing past size */
            }
        }

        fx_free(&fx);
    }

    cef_plugins_free(ps);
}


static void
test_expression_functions(void **state)
{
    cef_plugins_t        *ps;
    cef_rules_t          *rs;
    cef_rules_errors_t    errs;
    cef_expr_eval_t      *ev;
    cef_decision_t       *d;
    cef_persona_t        *p;
    cef_expr_ctx_t        ctx;
    cef_decision_input_t  in;
    char                  err[256];
    const char           *y = "version: 1\n"
                              "offers:\n"
                              "  big: {slot: s, html: 'B {{ profile.n }}'}\n"
                              "  yes: {slot: t, html: Y}\n"
                              "rules:\n"
                              "  - {name: r, show: big, when: "
                              "'twice(profile.n) > 10'}\n"
                              "  - {name: q, show: yes, when: "
                              "'pick(profile.n > 1, \"a\", \"b\") == "
                              "\"a\"'}\n";

    (void) state;

    ps = cef_plugins_create();
    assert_int_equal(cef_plugins_add(ps, &func_plugin, NULL, err,
                                     sizeof(err)), 0);
    assert_int_equal(cef_plugins_add(ps, &len_plugin, NULL, err,
                                     sizeof(err)), -1);
    assert_string_equal(err, "plugin \"lenny\": function len() is built into "
                        "the rule language");

    assert_string_equal(func_error(ps, "twice() > 1"),
                        "t.yaml:4:37: in when: twice() takes 1 argument");
    assert_string_equal(func_error(ps, "twice(1, 2) > 1"),
                        "t.yaml:4:40: in when: twice() takes 1 argument");
    assert_string_equal(func_error(ps, "twice(\"x\") > 1"),
                        "t.yaml:4:37: in when: type error: argument 1 of "
                        "twice() cannot be a string");
    assert_string_equal(func_error(ps, "twice(2) == \"4\""),
                        "t.yaml:4:40: in when: type error: '==' compares "
                        "a number with a string, which is never true");
    assert_string_equal(func_error(ps, "twice(2) > 1"), "");
    assert_string_equal(func_error(NULL, "twice(2) > 1"),
                        "t.yaml:4:31: in when: unknown function 'twice'");

    assert_int_equal(cef_rules_load_buffer_with("t.yaml", y, strlen(y), ps,
                                                &rs, &errs), 0);
    cef_rules_errors_free(&errs);

    ev = cef_rules_eval_create(rs);
    d = cef_decision_create(rs);
    p = cef_persona_create();
    memset(&ctx, 0, sizeof(ctx));
    ctx.lookup = cef_persona_lookup;
    ctx.data = p;
    in.visitor = cef_span_lit("");

    assert_int_equal(cef_decision_make(rs, ev, &ctx, &in, d), 0);

    assert_int_equal(cef_persona_set_num(p, "profile.n", 6), 0);
    assert_int_equal(cef_decision_make(rs, ev, &ctx, &in, d), 2);

    assert_int_equal(cef_persona_set_num(p, "profile.n", 5), 0);
    assert_int_equal(cef_decision_make(rs, ev, &ctx, &in, d), 1);

    /* a mistyped value at run time: the call is null, nothing matches */
    assert_int_equal(cef_persona_set_str(p, "profile.n", "6", 1), 0);
    assert_int_equal(cef_decision_make(rs, ev, &ctx, &in, d), 0);

    cef_persona_free(p);
    cef_decision_free(d);
    cef_expr_eval_free(ev);
    cef_rules_free(rs);
    cef_plugins_free(ps);
}


/* Mutated rule files with every plugin section: no crash, no leak, and a
 * rule set that loads decides. */
static void
test_fuzz_plugin_sections(void **state)
{
    static const char   *yaml =
        "version: 1\n"
        "offers:\n"
        "  a: {slot: hero, html: A, value: 100, cost: 10, campaign: winback}\n"
        "  b: {slot: hero, html: B, value: 40, cost: 1}\n"
        "  c: {slot: hero, html: C, value: 10, cost: 50}\n"
        "  s: {slot: side, html: S}\n"
        "  l: {slot: side, html: L, hours: 9-17}\n"
        "rules:\n"
        "  - {name: ra, show: a, priority: 30}\n"
        "  - {name: rb, show: b, priority: 20}\n"
        "  - {name: rc, show: [c, s], priority: 10}\n"
        "  - {name: lunch, show: l, priority: 1}\n"
        "slots:\n"
        "  hero:\n"
        "    holdout: 12.5%\n"
        "    experiment:\n"
        "      name: hero-q4\n"
        "      variants: {x: 40, y: {weight: 60, offers: [b, c]}}\n"
        "  side:\n"
        "    strategy: weighted\n"
        "    weights: {s: 2, l: 1}\n"
        "plugins:\n"
        "  freqcap:\n"
        "    caps: [{campaign: winback, max: 2, per: 1h}]\n";
    static const char    bytes[] = "\"':{}[]-#|>&*!\n \t%0x9";
    size_t               len, i, k, cut;
    char                *buf;
    unsigned             seed = 11;
    cef_rules_t         *rs;
    cef_rules_errors_t   errs;
    cef_expr_eval_t      *ev;
    cef_decision_t       *d;
    cef_expr_ctx_t        ctx;
    cef_decision_input_t  in;
    size_t                loaded = 0;

    (void) state;

    assert_string_equal(load_error(yaml), "");

    len = strlen(yaml);
    buf = malloc(len + 1);
    assert_non_null(buf);
    memset(&ctx, 0, sizeof(ctx));
    ctx.now = NOW;
    in.visitor = cef_span_lit("fuzz-visitor");

    for (i = 0; i < 3000; i++) {
        memcpy(buf, yaml, len + 1);

        for (k = 0; k < 1 + i % 3; k++) {
            seed = seed * 1103515245 + 12345;
            buf[(seed >> 8) % len] = bytes[(seed >> 20) % (sizeof(bytes) - 1)];
        }

        seed = seed * 1103515245 + 12345;
        cut = i % 4 ? len : (seed >> 8) % len;

        if (cef_rules_load_buffer("f.yaml", buf, cut, &rs, &errs) == 0) {
            ev = cef_rules_eval_create(rs);
            d = cef_decision_create(rs);
            assert_non_null(ev);
            assert_non_null(d);
            (void) cef_decision_make(rs, ev, &ctx, &in, d);
            cef_decision_free(d);
            cef_expr_eval_free(ev);
            cef_rules_free(rs);
            loaded++;
        } else {
            assert_true(errs.n > 0);
        }

        cef_rules_errors_free(&errs);
    }

    printf("  %zu of 3000 mutated files loaded and decided\n", loaded);
    assert_true(loaded > 50);        /* the mutations also hit the decision */

    free(buf);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_priority_default),
        cmocka_unit_test(test_weighted),
        cmocka_unit_test(test_value),
        cmocka_unit_test(test_experiment_holdout),
        cmocka_unit_test(test_experiment_arms),
        cmocka_unit_test(test_candidates_wanted),
        cmocka_unit_test(test_failing_strategy),
        cmocka_unit_test(test_schedule_hours),
        cmocka_unit_test(test_decision_log_line),
        cmocka_unit_test(test_decision_log_line_exact),
        cmocka_unit_test(test_expression_functions),
        cmocka_unit_test(test_fuzz_plugin_sections),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
