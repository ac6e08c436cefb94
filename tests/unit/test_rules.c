/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Rule files: every load error with its line and column, and the per-slot
 * decision (priorities, ties, schedules, several slots, early stop).
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "cef_decision.h"
#include "cef_rules.h"
#include "cef_persona.h"


#define NOW  1795438800          /* 2026-11-23T13:00:00Z */


static const char  *good =
    "version: 1\n"
    "offers:\n"
    "  winback10:\n"
    "    slot: hero\n"
    "    html: '<div>We miss you, {{ profile.first_name | "
    "default(\"friend\") }}!</div>'\n"
    "    value: 25\n"
    "    cost: 10\n"
    "    campaign: winback\n"
    "    starts: 2026-11-01\n"
    "    ends: 2026-12-31\n"
    "  gold-perks:\n"
    "    slot: hero\n"
    "    html: '<div>Gold members ship free</div>'\n"
    "  expired:\n"
    "    slot: hero\n"
    "    html: old\n"
    "    starts: 2026-01-01\n"
    "    ends: 2026-01-31\n"
    "  later:\n"
    "    slot: hero\n"
    "    html: later\n"
    "    starts: 2026-11-23T13:00:01Z\n"
    "    ends: 2026-11-24\n"
    "  banner-a:\n"
    "    slot: banner\n"
    "    html: A\n"
    "  banner-b:\n"
    "    slot: banner\n"
    "    html: B\n"
    "rules:\n"
    "  - name: expired first\n"
    "    when: 'true'\n"
    "    show: expired\n"
    "    priority: 1000\n"
    "  - name: later first\n"
    "    show: later\n"
    "    priority: 1000\n"
    "  - name: win back high-value churners\n"
    "    when: profile.churn_risk >= 0.7 and profile.clv >= 500\n"
    "    show: winback10\n"
    "    priority: 90\n"
    "  - name: gold tier\n"
    "    when: '\"gold\" in profile.segments'\n"
    "    show: [gold-perks, banner-a]\n"
    "  - name: banner tie loses on file order\n"
    "    show: banner-b\n";


typedef struct {
    cef_rules_t      *rs;
    cef_persona_t    *p;
    cef_expr_ctx_t    ctx;
    cef_expr_eval_t  *ev;
} fixture_t;


static int
setup(void **state)
{
    fixture_t           *f = calloc(1, sizeof(fixture_t));
    cef_rules_errors_t   errs;
    char                 line[512];
    size_t               i;

    if (cef_rules_load_buffer("good.yaml", good, strlen(good), &f->rs, &errs)
        != 0)
    {
        for (i = 0; i < errs.n; i++) {
            cef_rules_error_format(&errs, i, line, sizeof(line));
            print_message("%s\n", line);
        }
        cef_rules_errors_free(&errs);
        return -1;
    }

    cef_rules_errors_free(&errs);
    f->p = cef_persona_create();
    f->ctx.lookup = cef_persona_lookup;
    f->ctx.data = f->p;
    f->ctx.now = NOW;
    f->ev = cef_rules_eval_create(f->rs);
    *state = f;

    return 0;
}


static int
teardown(void **state)
{
    fixture_t  *f = *state;

    cef_expr_eval_free(f->ev);
    cef_persona_free(f->p);
    cef_rules_free(f->rs);
    free(f);

    return 0;
}


static const char *
chosen(fixture_t *f, const char *slot)
{
    cef_rules_choice_t  c[8];
    uint32_t            i, n = cef_rules_nslots(f->rs);

    assert_true(n <= 8);
    cef_rules_decide(f->rs, f->ev, &f->ctx, c);

    for (i = 0; i < n; i++) {
        if (strcmp(cef_rules_slot_name(f->rs, i), slot) == 0) {
            return c[i].offer == CEF_RULES_NONE
                   ? "-" : cef_rules_offer(f->rs, c[i].offer)->name;
        }
    }

    return "no such slot";
}


static void
test_loaded_structure(void **state)
{
    fixture_t          *f = *state;
    const cef_offer_t  *o;
    const cef_rule_t   *r;

    assert_int_equal(cef_rules_noffers(f->rs), 6);
    assert_int_equal(cef_rules_nrules(f->rs), 5);
    assert_int_equal(cef_rules_nslots(f->rs), 2);
    assert_string_equal(cef_rules_slot_name(f->rs, 0), "hero");
    assert_string_equal(cef_rules_slot_name(f->rs, 1), "banner");
    assert_int_equal(strlen(cef_rules_hash(f->rs)), 64);

    o = cef_rules_offer(f->rs, 0);
    assert_string_equal(o->name, "winback10");
    assert_string_equal(o->slot, "hero");
    assert_string_equal(o->campaign, "winback");
    assert_true(o->value == 25 && o->cost == 10);
    assert_int_equal(o->starts, 1793491200);             /* 2026-11-01 */
    assert_int_equal(o->ends, 1798761600);       /* 2027-01-01: exclusive */
    assert_int_equal(o->line, 3);
    assert_int_equal(o->col, 3);

    r = cef_rules_rule(f->rs, 3);
    assert_string_equal(r->name, "gold tier");
    assert_int_equal(r->priority, 0);
    assert_int_equal(r->noffers, 2);
    assert_null(cef_rules_rule(f->rs, 4)->when);
}


static void
test_decide(void **state)
{
    fixture_t   *f = *state;
    cef_span_t   gold[] = { cef_span_lit("gold") };

    /* nobody: the rule without when: fills the banner, hero stays empty */
    assert_string_equal(chosen(f, "hero"), "-");
    assert_string_equal(chosen(f, "banner"), "banner-b");

    /* gold: priority 0 both; file order picks gold tier's banner-a */
    cef_persona_set_array(f->p, "profile.segments", gold, 1);
    assert_string_equal(chosen(f, "hero"), "gold-perks");
    assert_string_equal(chosen(f, "banner"), "banner-a");

    /* a churner outranks gold for the hero, not for the banner */
    cef_persona_set_num(f->p, "profile.churn_risk", 0.9);
    cef_persona_set_num(f->p, "profile.clv", 800);
    assert_string_equal(chosen(f, "hero"), "winback10");
    assert_string_equal(chosen(f, "banner"), "banner-a");

    /* the schedule: before winback10 starts, gold wins again */
    f->ctx.now = 1793491200 - 1;
    assert_string_equal(chosen(f, "hero"), "gold-perks");
    f->ctx.now = 1793491200;
    assert_string_equal(chosen(f, "hero"), "winback10");
    f->ctx.now = 1798761600 - 1;
    assert_string_equal(chosen(f, "hero"), "winback10");
    f->ctx.now = 1798761600;
    assert_string_equal(chosen(f, "hero"), "gold-perks");

    /* 'later' starts one second after NOW and outranks everything */
    f->ctx.now = NOW + 1;
    assert_string_equal(chosen(f, "hero"), "later");
}


static int   lookups;

static int
counting_lookup(void *data, const cef_ref_t *ref, cef_value_t *out)
{
    lookups++;
    return cef_persona_lookup(data, ref, out);
}


static void
test_stops_when_slots_are_decided(void **state)
{
    fixture_t  *f = *state;
    cef_span_t  gold[] = { cef_span_lit("gold") };

    cef_persona_set_num(f->p, "profile.churn_risk", 0.9);
    cef_persona_set_num(f->p, "profile.clv", 800);
    cef_persona_set_array(f->p, "profile.segments", gold, 1);
    f->ctx.lookup = counting_lookup;

    /* winback decides the hero; gold tier is still evaluated for the
       banner, and the last rule is never reached */
    lookups = 0;
    assert_string_equal(chosen(f, "banner"), "banner-a");
    assert_int_equal(lookups, 3);

    /* with the churner gone the winback rule fails at churn_risk */
    cef_persona_set_num(f->p, "profile.churn_risk", 0.1);
    lookups = 0;
    assert_string_equal(chosen(f, "hero"), "gold-perks");
    assert_int_equal(lookups, 2);
}


static void
test_render_offer(void **state)
{
    fixture_t           *f = *state;
    cef_rules_choice_t   c[2];
    char                 buf[128];
    size_t               n;

    cef_persona_set_num(f->p, "profile.churn_risk", 0.9);
    cef_persona_set_num(f->p, "profile.clv", 800);
    cef_rules_decide(f->rs, f->ev, &f->ctx, c);
    n = cef_template_render(cef_rules_offer(f->rs, c[0].offer)->html, f->ev,
                            buf, sizeof(buf));
    assert_true(n < sizeof(buf));
    buf[n] = '\0';
    assert_string_equal(buf, "<div>We miss you, friend!</div>");

    cef_persona_set_str(f->p, "profile.first_name", "<Jo>", 4);
    cef_rules_decide(f->rs, f->ev, &f->ctx, c);
    n = cef_template_render(cef_rules_offer(f->rs, c[0].offer)->html, f->ev,
                            buf, sizeof(buf));
    buf[n] = '\0';
    assert_string_equal(buf, "<div>We miss you, &lt;Jo&gt;!</div>");
}


/* --- bad input ------------------------------------------------------------ */

#define OFFER  "offers:\n  a:\n    slot: hero\n    html: A\n"

static void
test_load_errors(void **state)
{
    static const struct {
        const char  *yaml;
        const char  *want;     /* "LINE:COL: message substring" */
    } cases[] = {
        { "", "1:1: empty rule file" },
        { "version: 1\noffers: [\n", "3:1: invalid YAML" },
        { "version: 1\n  bad: indent\n", "2:6: invalid YAML" },
        { "- 1\n", "1:1: a rule file is a mapping" },
        { "offers: {}\n", "1:1: missing 'version: 1'" },
        { "version: 2\n", "1:10: unsupported version" },
        { "version: 1\nofers: {}\n", "2:1: unknown key 'ofers' in the rule "
          "file (did you mean 'offers'?)" },
        { "version: 1\nversion: 1\n", "2:1: duplicate key 'version'" },
        { "version: 1\noffers: []\n", "2:9: offers must be a mapping" },
        { "version: 1\noffers:\n  a: 1\n", "3:6: offer 'a' must be a "
          "mapping" },
        { "version: 1\noffers:\n  a:\n    html: A\n",
          "3:3: offer 'a' has no slot" },
        { "version: 1\noffers:\n  a:\n    slot: hero\n",
          "3:3: offer 'a' has no html" },
        { "version: 1\noffers:\n  a:\n    slot: hero\n    html: A\n"
          "    slott: x\n", "6:5: unknown key 'slott' in offer 'a' (did you "
          "mean 'slot'?)" },
        { "version: 1\noffers:\n  a:\n    slot: hero\n    html: A\n"
          "    zzzzzz: x\n", "6:5: unknown key 'zzzzzz' in offer 'a'\0" },
        { "version: 1\noffers:\n  a:\n    slot: [x]\n    html: A\n",
          "4:11: slot must be a string" },
        { "version: 1\noffers:\n  a:\n    slot: 'my slot'\n    html: A\n",
          "4:11: invalid slot name" },
        { "version: 1\noffers:\n  a:\n    slot: hero\n    html: A\n"
          "  a:\n    slot: hero\n    html: B\n",
          "6:3: duplicate offer name 'a'" },
        { "version: 1\noffers:\n  a:\n    slot: hero\n    html: A\n"
          "    value: lots\n", "6:12: value must be a number, not 'lots'" },
        { "version: 1\noffers:\n  a:\n    slot: hero\n    html: A\n"
          "    starts: 2026-02-30\n", "6:13: bad date '2026-02-30'" },
        { "version: 1\noffers:\n  a:\n    slot: hero\n    html: A\n"
          "    ends: tomorrow\n", "6:11: bad date 'tomorrow'" },
        { "version: 1\noffers:\n  a:\n    slot: hero\n    html: A\n"
          "    starts: 2026-12-01\n    ends: 2026-11-01\n",
          "7:11: offer 'a' ends before it starts" },
        { "version: 1\noffers:\n  a:\n    slot: hero\n"
          "    html: 'Hi {{ profil.name }}'\n",
          "5:18: in html: unknown path root 'profil'" },
        { "version: 1\noffers:\n  a:\n    slot: hero\n"
          "    html: |\n      <p>\n      Hi {{ nope }}\n",
          "7:13: in html: a placeholder holds a path" },
        { "version: 1\n" OFFER "rules: {}\n", "6:8: rules must be a list" },
        { "version: 1\n" OFFER "rules:\n  - show: a\n",
          "7:5: rule #1 has no name" },
        { "version: 1\n" OFFER "rules:\n  - name: r\n",
          "7:5: rule 'r' has no show:" },
        { "version: 1\n" OFFER "rules:\n  - name: r\n    show: b\n",
          "8:11: rule 'r' shows unknown offer 'b' (did you mean 'a'?)" },
        { "version: 1\n" OFFER "rules:\n  - name: r\n    show: [a, a]\n",
          "8:15: rule 'r' shows offer 'a' twice" },
        { "version: 1\n" OFFER "  b:\n    slot: hero\n    html: B\n"
          "rules:\n  - name: r\n    show: [a, b]\n",
          "11:15: rule 'r' shows two offers for slot 'hero'" },
        { "version: 1\n" OFFER "rules:\n  - name: r\n    show: a\n"
          "  - name: r\n    show: a\n", "9:11: duplicate rule name 'r'" },
        { "version: 1\n" OFFER "rules:\n  - name: r\n    show: a\n"
          "    priorty: 3\n", "9:5: unknown key 'priorty' in rule #1 (did "
          "you mean 'priority'?)" },
        { "version: 1\n" OFFER "rules:\n  - name: r\n    show: a\n"
          "    priority: 1.5\n", "9:15: priority must be a whole number" },
        { "version: 1\n" OFFER "rules:\n  - name: r\n    show: a\n"
          "    when: profile.clv >\n", "9:24: in when: expected a value" },
        { "version: 1\n" OFFER "rules:\n  - name: r\n    show: a\n"
          "    when: profile.clv > \"abc\"\n",
          "9:25: in when: type error: '>' needs numbers, not a string" },
        { "version: 1\n" OFFER "rules:\n  - name: r\n    show: a\n"
          "    when: 'request.path matches \"(\"'\n",
          "9:33: in when: invalid regex" },
        { "version: 1\n" OFFER "rules:\n  - name: r\n    show: a\n"
          "    when: >-\n      profile.x ==\n", "9:11: in when: expected" },
        { "version: 1\n" OFFER "rules:\n  - name: r\n    show: a\n"
          "    when: |\n      profile.x == 1 and\n      pro.y\n",
          "11:7: in when: unknown path root 'pro'" },
        { "version: 1\n" OFFER "rules:\n  - 42\n", "7:5: a rule must be a "
          "mapping" },
        { "version: 1\n" OFFER "rules:\n  - name: r\n    show: a\n"
          "    when: profile.clv + 1\n", "9:11: in when: type error: a "
          "condition must be true or false, not a number" },
        { "version: 1\n" OFFER "rules:\n  - name: r\n    show: a\n"
          "    when: '\"yes\"'\n", "9:12: in when: type error: a "
          "condition must be true or false, not a string" },
    };
    size_t              i, j;
    cef_rules_t        *rs;
    cef_rules_errors_t  errs;
    char                line[512];
    int                 found;

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (cef_rules_load_buffer("t.yaml", cases[i].yaml,
                                  strlen(cases[i].yaml), &rs, &errs) == 0)
        {
            cef_rules_free(rs);
            fail_msg("case %zu loaded:\n%s", i, cases[i].yaml);
        }

        assert_null(rs);
        found = 0;

        for (j = 0; j < errs.n; j++) {
            cef_rules_error_format(&errs, j, line, sizeof(line));

            if (strncmp(line, "t.yaml:", 7) == 0
                && strstr(line + 7, cases[i].want) == line + 7)
            {
                found = 1;
            }
        }

        if (!found) {
            for (j = 0; j < errs.n; j++) {
                cef_rules_error_format(&errs, j, line, sizeof(line));
                print_message("  %s\n", line);
            }
            fail_msg("case %zu: no error 't.yaml:%s'", i, cases[i].want);
        }

        cef_rules_errors_free(&errs);
    }
}


static void
test_every_problem_is_reported(void **state)
{
    const char  *yaml =
        "version: 1\n"
        "offers:\n"
        "  a:\n"
        "    html: A\n"
        "rules:\n"
        "  - name: r1\n"
        "    show: x\n"
        "  - name: r2\n"
        "    show: a\n"
        "    when: 1 +\n";
    cef_rules_t        *rs;
    cef_rules_errors_t  errs;

    (void) state;

    assert_int_equal(cef_rules_load_buffer("t.yaml", yaml, strlen(yaml), &rs,
                                           &errs), -1);
    assert_int_equal(errs.n, 3);
    assert_int_equal(errs.v[0].line, 3);
    assert_int_equal(errs.v[1].line, 7);
    assert_int_equal(errs.v[2].line, 10);
    cef_rules_errors_free(&errs);
}


/* The messages of a failed load, one "LINE:COL: message" per line. */
static char *
load_messages(const char *yaml, size_t len)
{
    cef_rules_t         *rs;
    cef_rules_errors_t   errs;
    char                *out;
    size_t               i, at = 0, cap = 16384;

    out = calloc(1, cap);
    assert_non_null(out);

    if (cef_rules_load_buffer("t.yaml", yaml, len, &rs, &errs) == 0) {
        cef_rules_free(rs);
    }

    for (i = 0; i < errs.n && at < cap; i++) {
        at += (size_t) snprintf(out + at, cap - at, "%u:%u: %s\n",
                                errs.v[i].line, errs.v[i].col, errs.v[i].msg);
    }

    cef_rules_errors_free(&errs);

    return out;
}


/* issue 16: problems of offers, slots: and plugins: in one run */
static void
test_independent_problems_are_all_reported(void **state)
{
    const char  *yaml =
        "version: 1\n"
        "offers:\n"
        "  a:\n"
        "    slot: hero\n"
        "    html: '<b>A</b>'\n"
        "    campaign: winback\n"
        "    starts: 2026-12-01\n"
        "    ends: 2026-11-01\n"
        "rules:\n"
        "  - {name: r, show: a}\n"
        "slots:\n"
        "  hero:\n"
        "    holdout: 120%\n"
        "plugins:\n"
        "  freqcap:\n"
        "    caps:\n"
        "      - {campaign: nosuch, max: 3, per: 7d}\n";
    char  *m;

    (void) state;

    m = load_messages(yaml, strlen(yaml));
    assert_string_equal(m,
        "8:11: offer 'a' ends before it starts\n"
        "13:14: experiment: holdout must be a percentage from 0% to 100%, "
        "not '120%'\n"
        "17:20: freqcap: no offer has campaign 'nosuch'\n");
    free(m);
}


/* issue 16: a plugin's message is prefixed with its name once */
static void
test_plugin_messages_have_one_prefix(void **state)
{
    const char  *yaml =
        "version: 1\n"
        "offers:\n"
        "  a: {slot: hero, html: x}\n"
        "rules:\n"
        "  - {name: r, show: a}\n"
        "slots:\n"
        "  hero:\n"
        "    experiment: {name: e, variants: 3}\n"
        "  side:\n"
        "    strategy: experiment\n";
    char  *m;

    (void) state;

    m = load_messages(yaml, strlen(yaml));
    assert_string_equal(m,
        "8:37: experiment: variants: must map arm names to weights, "
        "e.g. {a: 50, b: 50}\n"
        "9:3: no offer uses slot 'side'\n");
    free(m);

    yaml = "version: 1\n"
           "offers:\n"
           "  a: {slot: hero, html: x}\n"
           "rules:\n"
           "  - {name: r, show: a}\n"
           "slots:\n"
           "  hero: {strategy: experiment}\n";
    m = load_messages(yaml, strlen(yaml));
    assert_null(strstr(m, "experiment: experiment:"));
    assert_non_null(strstr(m, "7:9: experiment: needs holdout: or "
                           "experiment:"));
    free(m);
}


/* issue 16: a second YAML document is refused, not silently dropped */
static void
test_second_document_is_refused(void **state)
{
    static const struct {
        const char  *yaml;
        const char  *want;
    } cases[] = {
        { "version: 1\noffers:\n  a: {slot: hero, html: x}\nrules:\n"
          "  - {name: r, show: a}\n---\nrules:\n  - {name: s, show: a}\n",
          "6:1: a rule file holds one YAML document; a second one starts "
          "here\n" },
        { "---\nversion: 1\n...\n---\nversion: 1\n",
          "4:1: a rule file holds one YAML document; a second one starts "
          "here\n" },
        { "version: 1\n---\n",
          "2:1: a rule file holds one YAML document; a second one starts "
          "here\n" },
        { "---\nversion: 1\n...\n", "" },
    };
    size_t  i;
    char   *m;

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        m = load_messages(cases[i].yaml, strlen(cases[i].yaml));
        if (strcmp(m, cases[i].want) != 0) {
            print_message("case %zu: got '%s'\n", i, m);
        }
        assert_string_equal(m, cases[i].want);
        free(m);
    }
}


static char *
nested(const char *head, const char *open, const char *mid,
    const char *close, const char *tail, size_t depth, size_t *len)
{
    size_t  cap, at = 0, i;
    char   *buf;

    cap = strlen(head) + strlen(mid) + strlen(tail)
          + depth * (strlen(open) + strlen(close)) + 1;
    buf = malloc(cap);
    assert_non_null(buf);

    at += (size_t) snprintf(buf + at, cap - at, "%s", head);
    for (i = 0; i < depth; i++) {
        at += (size_t) snprintf(buf + at, cap - at, "%s", open);
    }
    at += (size_t) snprintf(buf + at, cap - at, "%s", mid);
    for (i = 0; i < depth; i++) {
        at += (size_t) snprintf(buf + at, cap - at, "%s", close);
    }
    at += (size_t) snprintf(buf + at, cap - at, "%s", tail);

    *len = at;
    return buf;
}


#define NEST_HEAD                                                            \
    "version: 1\noffers:\n  a: {slot: hero, html: x, campaign: c}\n"         \
    "rules:\n  - {name: r, show: a}\nplugins:\n  freqcap:\n    caps: "

/*
 * issue 16: nesting is capped with a clear error at the level that is too
 * deep (100 000 levels took 19 s in libyaml's scanner, and a recursive
 * walk of them could overflow the stack); an alias cannot make a cycle or
 * an exponential tree.
 */
static void
test_nesting_is_capped(void **state)
{
    char    *y, *m;
    size_t   len;

    (void) state;

    y = nested(NEST_HEAD, "[", "x", "]", "\n", 100000, &len);
    m = load_messages(y, len);
    assert_string_equal(m, "8:72: nested deeper than 64 levels\n");
    free(m);
    free(y);

    y = nested(NEST_HEAD, "{a: ", "x", "}", "\n", 100000, &len);
    m = load_messages(y, len);
    assert_string_equal(m, "8:255: nested deeper than 64 levels\n");
    free(m);
    free(y);

    y = nested(NEST_HEAD "\n      ", "- ", "x", "", "\n", 100000, &len);
    m = load_messages(y, len);
    assert_string_equal(m, "9:129: nested deeper than 64 levels\n");
    free(m);
    free(y);

    /* 64 levels are fine as YAML (and then wrong for freqcap) */
    y = nested(NEST_HEAD, "[", "x", "]", "\n", 58, &len);
    m = load_messages(y, len);
    assert_string_equal(m, "8:12: freqcap: a cap is a mapping {campaign: "
                        "NAME, max: N, per: 7d}\n");
    free(m);
    free(y);

    y = "version: 1\noffers:\n  a: {slot: hero, html: x, campaign: c}\n"
        "rules:\n  - {name: r, show: a}\nplugins:\n  freqcap: &x\n"
        "    caps: *x\n";
    m = load_messages(y, strlen(y));
    assert_string_equal(m, "8:11: an alias may only stand for a scalar, "
                        "not a mapping\n");
    free(m);

    y = "version: 1\n"
        "offers:\n"
        "  a: {slot: hero, html: &h '<b>A</b>'}\n"
        "  b: {slot: side, html: *h}\n"
        "rules:\n  - {name: r, show: [a, b]}\n";
    m = load_messages(y, strlen(y));
    assert_string_equal(m, "");
    free(m);

    y = "version: 1\nrules: *nope\n";
    m = load_messages(y, strlen(y));
    assert_string_equal(m, "2:8: undefined alias 'nope'\n");
    free(m);
}


/*
 * The document's nodes live in the loader's arena (cef_rules_yaml.c): many
 * blocks of it, a value larger than a block, a list closed before more
 * keys of its mapping, and a mapping inside a list inside a mapping are
 * read back as written; unknown keys still name their offer and rule.
 */
static void
test_document_arena(void **state)
{
    cef_rules_t         *rs;
    cef_rules_errors_t   errs;
    const cef_offer_t   *o;
    const cef_rule_t    *r;
    cef_expr_eval_t     *ev;
    char                *y, *m, *big, *out;
    size_t               at = 0, cap = 8 << 20, i, bigl = 200000, n;
    const uint32_t       nrules = 3000;

    (void) state;

    y = malloc(cap);
    big = malloc(bigl + 1);
    assert_non_null(y);
    assert_non_null(big);

    for (i = 0; i < bigl; i++) {
        big[i] = (char) ('a' + i % 26);
    }
    big[bigl] = '\0';

    at += (size_t) snprintf(y + at, cap - at, "version: 1\noffers:\n"
                            "  big: {slot: s0, html: '%s'}\n", big);

    for (i = 0; i < nrules; i++) {
        at += (size_t) snprintf(y + at, cap - at,
                                "  o%zu:\n    slot: s%zu\n    html: \"<b>%zu"
                                "</b>\"\n    value: %zu\n", i, i % 3 + 1, i,
                                i);
    }

    at += (size_t) snprintf(y + at, cap - at, "rules:\n");

    for (i = 0; i < nrules; i++) {
        at += (size_t) snprintf(y + at, cap - at,
                                "  - name: r%zu\n    show: [o%zu]\n"
                                "    when: profile.n == %zu\n"
                                "    priority: %zu\n", i, i, i, i % 7);
    }

    at += (size_t) snprintf(y + at, cap - at,
                            "  - {name: last, show: [big], priority: -1}\n");
    assert_true(at < cap);

    assert_int_equal(cef_rules_load_buffer("t.yaml", y, at, &rs, &errs), 0);
    cef_rules_errors_free(&errs);

    assert_int_equal(cef_rules_noffers(rs), nrules + 1);
    assert_int_equal(cef_rules_nrules(rs), nrules + 1);

    o = cef_rules_offer(rs, 0);
    assert_string_equal(o->name, "big");
    ev = cef_rules_eval_create(rs);
    assert_non_null(ev);
    out = malloc(bigl + 1);
    assert_non_null(out);
    n = cef_template_render(o->html, ev, out, bigl + 1);
    assert_int_equal(n, bigl);
    assert_memory_equal(out, big, bigl);

    for (i = 0; i < nrules; i++) {
        o = cef_rules_offer(rs, (uint32_t) i + 1);
        r = cef_rules_rule(rs, (uint32_t) i);
        assert_int_equal(o->value, (double) i);
        assert_string_equal(o->slot, i % 3 == 0 ? "s1"
                            : i % 3 == 1 ? "s2" : "s3");
        assert_int_equal(r->priority, (int64_t) (i % 7));
        assert_int_equal(r->noffers, 1);
        assert_int_equal(r->offers[0], i + 1);
        assert_non_null(r->when);
        assert_int_equal(r->line, 4 * i + 3 + 4 * nrules + 2);
    }

    r = cef_rules_rule(rs, nrules);
    assert_string_equal(r->name, "last");
    assert_int_equal(r->priority, -1);

    free(out);
    cef_expr_eval_free(ev);
    cef_rules_free(rs);
    free(big);
    free(y);

    y = "version: 1\n"
        "offers:\n"
        "  a: {slot: hero, html: x, colour: red}\n"
        "rules:\n"
        "  - {show: [a], when: 'true', priorty: 2}\n"
        "  - {name: n, show: [a], prio: 2}\n";
    m = load_messages(y, strlen(y));
    assert_string_equal(m, "3:28: unknown key 'colour' in offer 'a'\n"
                        "5:31: unknown key 'priorty' in rule #1 (did you "
                        "mean 'priority'?)\n"
                        "5:5: rule #1 has no name\n"
                        "6:26: unknown key 'prio' in rule #2\n");
    free(m);
}


/* issue 16: a FIFO (or a device) as a rule path is refused at once */
static void
test_fifo_is_refused(void **state)
{
    const char          *tmp = getenv("CEF_TEST_TMP");
    char                 path[1024], line[1200];
    cef_rules_t         *rs;
    cef_rules_errors_t   errs;

    (void) state;

    if (tmp == NULL) {
        tmp = "/tmp";
    }

    mkdir(tmp, 0755);
    snprintf(path, sizeof(path), "%s/test_rules_fifo.%d", tmp, (int) getpid());
    unlink(path);
    assert_int_equal(mkfifo(path, 0600), 0);

    alarm(20);                      /* a hang fails the test, not the suite */
    assert_int_equal(cef_rules_load_file(path, &rs, &errs), -1);
    alarm(0);
    unlink(path);

    cef_rules_error_format(&errs, 0, line, sizeof(line));
    assert_non_null(strstr(line, ": not a regular file"));
    cef_rules_errors_free(&errs);

    assert_int_equal(cef_rules_load_file("/dev/null", &rs, &errs), -1);
    cef_rules_error_format(&errs, 0, line, sizeof(line));
    assert_string_equal(line, "/dev/null: not a regular file");
    cef_rules_errors_free(&errs);
}


static void
test_file_limits(void **state)
{
    const char          *tmp = getenv("CEF_TEST_TMP");
    char                 path[1024], line[1200];
    FILE                *fp;
    cef_rules_t         *rs;
    cef_rules_errors_t   errs;

    (void) state;

    if (tmp == NULL) {
        tmp = "/tmp";
    }

    mkdir(tmp, 0755);
    snprintf(path, sizeof(path), "%s/test_rules_big.yaml", tmp);

    fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(ftruncate(fileno(fp), CEF_RULES_MAX_FILE + 1), 0);
    fclose(fp);

    assert_int_equal(cef_rules_load_file(path, &rs, &errs), -1);
    assert_int_equal(errs.n, 1);
    cef_rules_error_format(&errs, 0, line, sizeof(line));
    assert_non_null(strstr(line, ":1:1: file is larger than 16 MiB"));
    cef_rules_errors_free(&errs);

    /* exactly at the limit is read (and then fails as YAML, not size) */
    fp = fopen(path, "w");
    assert_int_equal(ftruncate(fileno(fp), CEF_RULES_MAX_FILE), 0);
    fclose(fp);
    assert_int_equal(cef_rules_load_file(path, &rs, &errs), -1);
    assert_null(strstr(errs.v[0].msg, "16 MiB"));
    cef_rules_errors_free(&errs);
    unlink(path);

    snprintf(path, sizeof(path), "%s/test_rules_missing.yaml", tmp);
    assert_int_equal(cef_rules_load_file(path, &rs, &errs), -1);
    cef_rules_error_format(&errs, 0, line, sizeof(line));
    assert_non_null(strstr(line, "test_rules_missing.yaml: cannot open: "));
    cef_rules_errors_free(&errs);
}


static void
test_many_rules(void **state)
{
    size_t               cap = 4 << 20, len = 0, i;
    char                *buf = malloc(cap);
    cef_rules_t         *rs;
    cef_rules_errors_t   errs;

    (void) state;

    len += (size_t) snprintf(buf + len, cap - len, "version: 1\noffers:\n");
    for (i = 0; i < 2000; i++) {
        len += (size_t) snprintf(buf + len, cap - len,
                                 "  o%zu:\n    slot: s%zu\n    html: x\n", i,
                                 i % 10);
    }
    len += (size_t) snprintf(buf + len, cap - len, "rules:\n");
    for (i = 0; i < 5000; i++) {
        len += (size_t) snprintf(buf + len, cap - len,
                                 "  - name: r%zu\n    when: profile.a%zu > %zu"
                                 " and 'x' in profile.segs\n    show: o%zu\n"
                                 "    priority: %zu\n", i, i % 50, i,
                                 i % 2000, i % 7);
    }

    assert_int_equal(cef_rules_load_buffer("big", buf, len, &rs, &errs), 0);
    assert_int_equal(cef_rules_nrules(rs), 5000);
    assert_int_equal(cef_expr_symtab_count(cef_rules_symtab(rs)), 51);
    cef_rules_errors_free(&errs);
    cef_rules_free(rs);
    free(buf);
}


/* Where each path is first written, for problems found after loading. */
static void
test_ref_positions(void **state)
{
    static const char  *y =
        "version: 1\n"
        "offers:\n"
        "  a:\n"
        "    slot: hero\n"
        "    html: '<p>{{ var.zz }} {{ profile.first_name }}</p>'\n"
        "rules:\n"
        "  - name: one\n"
        "    when: var.geo == \"DE\" and profile.clv > 1\n"
        "    show: a\n"
        "  - name: two\n"
        "    when: |\n"
        "      profile.clv > 2 and\n"
        "        var.zz == \"x\"\n"
        "    show: a\n"
        "slots:\n"
        "  hero:\n"
        "    strategy: value\n"
        "    p: profile.only_in_plugin\n";
    static const struct {
        const char  *path;
        uint32_t     line, col;    /* 0: no position */
    } cases[] = {
        { "var.zz", 5, 18 },
        { "profile.first_name", 5, 31 },
        { "var.geo", 8, 11 },
        { "profile.clv", 8, 31 },
        { "profile.only_in_plugin", 0, 0 },
    };
    cef_rules_t               *rs;
    cef_rules_errors_t         errs;
    const cef_expr_symtab_t   *st;
    const cef_ref_t           *ref;
    uint32_t                   i, k, line, col;
    int                        found;

    (void) state;

    assert_int_equal(cef_rules_load_buffer("t.yaml", y, strlen(y), &rs,
                                           &errs), 0);
    cef_rules_errors_free(&errs);
    st = cef_rules_symtab(rs);

    for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        found = 0;

        for (i = 0; i < cef_expr_symtab_count(st); i++) {
            ref = cef_expr_symtab_ref(st, i);

            if (strcmp(ref->path.data, cases[k].path) != 0) {
                continue;
            }

            found = 1;
            line = col = 0;

            if (cef_rules_ref_position(rs, i, &line, &col)
                != (cases[k].line != 0)
                || line != cases[k].line || col != cases[k].col)
            {
                fail_msg("%s: at %u:%u, want %u:%u", cases[k].path, line,
                         col, cases[k].line, cases[k].col);
            }
        }

        if (!found) {
            fail_msg("%s: no such reference", cases[k].path);
        }
    }

    assert_int_equal(cef_rules_ref_position(rs, 10000, &line, &col), 0);
    cef_rules_free(rs);
}


/*
 * Random rule sets decided three ways: cef_rules_decide(), the plugin
 * loop cef_decision_make() with the default strategy, and the definition
 * (docs/rules.md, "The decision") written out naively here.  Conditions
 * are comparisons of profile.vN with 1, repeated across rules, so that
 * shared comparisons and skipped rules are exercised.
 */
#define DT_OFFERS  12
#define DT_RULES   40
#define DT_SLOTS   4
#define DT_VARS    6

static void
test_decide_matches_definition(void **state)
{
    char                  *y;
    size_t                 len, cap = 65536;
    unsigned               seed = 7;
    int                    round, i, j, k, nshow, op[DT_RULES];
    int                    var[DT_RULES][2];
    int                    show[DT_RULES][2], prio[DT_RULES], sched[DT_OFFERS];
    int                    vals[DT_VARS], truth, order[DT_RULES], tmp;
    uint32_t               want[DT_SLOTS], s, slot_of[DT_OFFERS];
    cef_rules_t           *rs;
    cef_rules_errors_t     errs;
    cef_expr_eval_t       *ev;
    cef_decision_t        *d;
    cef_persona_t         *p;
    cef_expr_ctx_t         ctx;
    cef_rules_choice_t     choices[DT_SLOTS];
    cef_decision_input_t   in;
    char                   path[32], line[512];

    (void) state;

#define RND(n)  (seed = seed * 1103515245 + 12345, (int) ((seed >> 16) % (n)))

    y = malloc(cap);
    assert_non_null(y);

    for (round = 0; round < 300; round++) {
        len = (size_t) snprintf(y, cap, "version: 1\noffers:\n");

        for (i = 0; i < DT_OFFERS; i++) {
            slot_of[i] = (uint32_t) (i % DT_SLOTS);
            sched[i] = RND(4) == 0;     /* a schedule excluding NOW */
            len += (size_t) snprintf(y + len, cap - len,
                                     "  o%d: {slot: s%d, html: x%s}\n", i,
                                     i % DT_SLOTS,
                                     sched[i] ? ", starts: 2027-01-01" : "");
        }

        len += (size_t) snprintf(y + len, cap - len, "rules:\n");

        for (i = 0; i < DT_RULES; i++) {
            var[i][0] = RND(DT_VARS);
            var[i][1] = RND(DT_VARS);
            op[i] = RND(4);             /* none, one, and, or */
            prio[i] = RND(5);
            nshow = 1 + (RND(3) == 0);
            show[i][0] = RND(DT_OFFERS);
            show[i][1] = -1;

            if (nshow == 2) {
                show[i][1] = RND(DT_OFFERS);
                if (slot_of[show[i][1]] == slot_of[show[i][0]]) {
                    show[i][1] = -1;
                }
            }

            len += (size_t) snprintf(y + len, cap - len,
                                     "  - name: r%d\n    priority: %d\n", i,
                                     prio[i]);

            if (op[i] == 1) {
                len += (size_t) snprintf(y + len, cap - len,
                                         "    when: profile.v%d == 1\n",
                                         var[i][0]);
            } else if (op[i] >= 2) {
                len += (size_t) snprintf(y + len, cap - len,
                                         "    when: profile.v%d == 1 %s "
                                         "\"x\" in profile.seg%d\n",
                                         var[i][0], op[i] == 2 ? "and" : "or",
                                         var[i][1]);
            }

            if (show[i][1] >= 0) {
                len += (size_t) snprintf(y + len, cap - len,
                                         "    show: [o%d, o%d]\n", show[i][0],
                                         show[i][1]);
            } else {
                len += (size_t) snprintf(y + len, cap - len,
                                         "    show: o%d\n", show[i][0]);
            }
        }

        if (cef_rules_load_buffer("d.yaml", y, len, &rs, &errs) != 0) {
            cef_rules_error_format(&errs, 0, line, sizeof(line));
            fail_msg("round %d: %s", round, line);
        }
        cef_rules_errors_free(&errs);

        /* the visitor: profile.vN == 1 and "x" in profile.segN */

        p = cef_persona_create();
        for (i = 0; i < DT_VARS; i++) {
            cef_span_t  x = cef_span_lit("x"), z = cef_span_lit("z");

            vals[i] = RND(3) == 0;
            snprintf(path, sizeof(path), "profile.v%d", i);
            cef_persona_set_num(p, path, vals[i] ? 1 : 0);
            snprintf(path, sizeof(path), "profile.seg%d", i);
            cef_persona_set_array(p, path, (i + round) % 2 ? &x : &z, 1);
        }

        /* the definition: by priority, then file order; a rule fills each
           still open slot of its offers in schedule */

        for (i = 0; i < DT_RULES; i++) {
            order[i] = i;
        }
        for (i = 1; i < DT_RULES; i++) {
            for (j = i; j > 0 && prio[order[j - 1]] < prio[order[j]]; j--) {
                tmp = order[j];
                order[j] = order[j - 1];
                order[j - 1] = tmp;
            }
        }

        for (s = 0; s < DT_SLOTS; s++) {
            want[s] = CEF_RULES_NONE;
        }

        for (k = 0; k < DT_RULES; k++) {
            i = order[k];
            truth = op[i] == 0 ? 1
                    : op[i] == 1 ? vals[var[i][0]]
                    : op[i] == 2 ? vals[var[i][0]] && (var[i][1] + round) % 2
                    : vals[var[i][0]] || (var[i][1] + round) % 2;

            if (!truth) {
                continue;
            }

            for (j = 0; j < 2; j++) {
                if (show[i][j] >= 0 && !sched[show[i][j]]
                    && want[slot_of[show[i][j]]] == CEF_RULES_NONE)
                {
                    want[slot_of[show[i][j]]] = (uint32_t) show[i][j];
                }
            }
        }

        memset(&ctx, 0, sizeof(ctx));
        ctx.lookup = cef_persona_lookup;
        ctx.data = p;
        ctx.now = NOW;
        in.visitor = cef_span_lit("v");

        ev = cef_rules_eval_create(rs);
        d = cef_decision_create(rs);
        assert_non_null(ev);
        assert_non_null(d);

        (void) cef_rules_decide(rs, ev, &ctx, choices);
        (void) cef_decision_make(rs, ev, &ctx, &in, d);

        for (s = 0; s < DT_SLOTS; s++) {
            uint32_t  o = cef_rules_slot_name(rs, s)[1] - '0';
            uint32_t  got = choices[s].offer, got2 = d->choices[s].offer;

            /* slot ids follow first appearance: s0..s3 in order */
            assert_int_equal(o, s);

            if (got != CEF_RULES_NONE) {
                got = (uint32_t) atoi(cef_rules_offer(rs, got)->name + 1);
            }
            if (got2 != CEF_RULES_NONE) {
                got2 = (uint32_t) atoi(cef_rules_offer(rs, got2)->name + 1);
            }

            if (got != want[s] || got2 != want[s]) {
                fail_msg("round %d slot s%u: decide %d, decision %d, "
                         "definition %d", round, s, (int) got, (int) got2,
                         (int) want[s]);
            }
        }

        cef_decision_free(d);
        cef_expr_eval_free(ev);
        cef_persona_free(p);
        cef_rules_free(rs);
    }

#undef RND

    free(y);
}


/* mutated and truncated copies of a good file: errors, never a crash */
static void
test_fuzz_loader(void **state)
{
    size_t               len = strlen(good), i, k, cut;
    char                *buf = malloc(len + 1);
    unsigned             seed = 7;
    cef_rules_t         *rs;
    cef_rules_errors_t   errs;
    static const char    bytes[] = "\"':{}[]-#|>&*!\n \t\\xA0";

    (void) state;

    for (i = 0; i < 3000; i++) {
        memcpy(buf, good, len + 1);

        for (k = 0; k < 1 + i % 4; k++) {
            seed = seed * 1103515245 + 12345;
            buf[(seed >> 8) % len] = bytes[(seed >> 20) % (sizeof(bytes) - 1)];
        }

        seed = seed * 1103515245 + 12345;
        cut = i % 3 ? len : (seed >> 8) % len;

        if (cef_rules_load_buffer("f.yaml", buf, cut, &rs, &errs) == 0) {
            cef_rules_free(rs);
        } else {
            assert_true(errs.n > 0);
        }

        cef_rules_errors_free(&errs);
    }

    free(buf);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_loaded_structure, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_decide, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stops_when_slots_are_decided,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_offer, setup, teardown),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_every_problem_is_reported),
        cmocka_unit_test(test_independent_problems_are_all_reported),
        cmocka_unit_test(test_plugin_messages_have_one_prefix),
        cmocka_unit_test(test_second_document_is_refused),
        cmocka_unit_test(test_nesting_is_capped),
        cmocka_unit_test(test_document_arena),
        cmocka_unit_test(test_fifo_is_refused),
        cmocka_unit_test(test_file_limits),
        cmocka_unit_test(test_many_rules),
        cmocka_unit_test(test_ref_positions),
        cmocka_unit_test(test_decide_matches_definition),
        cmocka_unit_test(test_fuzz_loader),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
