/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Experiment bucketing: shares over 100 000 synthetic visitors within one
 * percentage point of the weights, and every visitor's assignment unchanged
 * by adding a second experiment and by reordering rules.
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
#include "cef_visitor.h"


#define NOW       1795438800
#define VISITORS  100000


static cef_rules_t *
load(const char *yaml)
{
    cef_rules_t         *rs;
    cef_rules_errors_t   errs;
    char                 line[512];

    if (cef_rules_load_buffer("t.yaml", yaml, strlen(yaml), &rs, &errs)
        != 0)
    {
        cef_rules_error_format(&errs, 0, line, sizeof(line));
        fail_msg("%s", line);
    }

    cef_rules_errors_free(&errs);
    return rs;
}


/* visitor ids as the module makes them: 22 base64url characters */
static char *
visitors(void)
{
    char      *v;
    uint32_t   i;

    v = malloc((size_t) VISITORS * CEF_VISITOR_ID_LEN);
    assert_non_null(v);

    for (i = 0; i < VISITORS; i++) {
        assert_int_equal(cef_visitor_id_new(v + i * CEF_VISITOR_ID_LEN), 0);
    }

    return v;
}


typedef struct {
    uint8_t   arm;       /* index into the arm names, 255: control */
    uint16_t  bucket;
} assign_t;


static const char  *arm_names[] = { "a", "b", "c", NULL };


/* every visitor's assignment in slot 'hero' */
static void
assign(cef_rules_t *rs, const char *ids, assign_t *out)
{
    cef_expr_eval_t      *ev = cef_rules_eval_create(rs);
    cef_decision_t       *d = cef_decision_create(rs);
    cef_expr_ctx_t        ctx;
    cef_decision_input_t  in;
    uint32_t              i, k, hero;
    const char           *v;

    assert_non_null(ev);
    assert_non_null(d);

    for (hero = 0; strcmp(cef_rules_slot_name(rs, hero), "hero"); hero++) {
        /* void */
    }

    memset(&ctx, 0, sizeof(ctx));
    ctx.now = NOW;

    for (i = 0; i < VISITORS; i++) {
        in.visitor.data = ids + i * CEF_VISITOR_ID_LEN;
        in.visitor.len = CEF_VISITOR_ID_LEN;
        (void) cef_decision_make(rs, ev, &ctx, &in, d);

        v = d->slots[hero].variant;
        assert_non_null(v);

        if (strcmp(v, "control") == 0) {
            out[i].arm = 255;
        } else {
            for (k = 0; arm_names[k] && strcmp(arm_names[k], v); k++) {
                /* void */
            }
            assert_non_null(arm_names[k]);
            out[i].arm = (uint8_t) k;
        }

        assert_true(d->slots[hero].bucket < CEF_BUCKETS);
        out[i].bucket = (uint16_t) d->slots[hero].bucket;
    }

    cef_decision_free(d);
    cef_expr_eval_free(ev);
}


#define BASE                                                                 \
    "version: 1\n"                                                           \
    "offers:\n"                                                              \
    "  h1: {slot: hero, html: H1}\n"                                         \
    "  h2: {slot: hero, html: H2}\n"                                         \
    "  f1: {slot: footer, html: F1}\n"


static const char  *one =
    BASE
    "rules:\n"
    "  - {name: r1, show: h1, priority: 10}\n"
    "  - {name: r2, show: [h2, f1], priority: 5}\n"
    "slots:\n"
    "  hero:\n"
    "    holdout: 10%\n"
    "    experiment:\n"
    "      name: hero-q4\n"
    "      variants: {a: 20, b: 30, c: 50}\n";

/* a second experiment (another slot), another rule, rules reordered */
static const char  *two =
    BASE
    "  h3: {slot: hero, html: H3}\n"
    "rules:\n"
    "  - {name: r3, show: h3, priority: 1}\n"
    "  - {name: r2, show: [h2, f1], priority: 5}\n"
    "  - {name: r1, show: h1, priority: 10}\n"
    "slots:\n"
    "  footer:\n"
    "    holdout: 50%\n"
    "    experiment: {name: footer-test, variants: {x: 50, y: 50}}\n"
    "  hero:\n"
    "    holdout: 10%\n"
    "    experiment:\n"
    "      name: hero-q4\n"
    "      variants: {a: 20, b: 30, c: 50}\n";


static void
test_shares_and_stability(void **state)
{
    cef_rules_t  *rs1, *rs2;
    assign_t     *a1, *a2;
    char         *ids;
    uint32_t      i, n[4] = { 0, 0, 0, 0 };
    double        share, want[4] = { 0.9 * 20, 0.9 * 30, 0.9 * 50, 10 };

    (void) state;

    ids = visitors();
    a1 = calloc(VISITORS, sizeof(assign_t));
    a2 = calloc(VISITORS, sizeof(assign_t));
    assert_non_null(a1);
    assert_non_null(a2);

    rs1 = load(one);
    rs2 = load(two);

    assign(rs1, ids, a1);
    assign(rs2, ids, a2);

    for (i = 0; i < VISITORS; i++) {
        n[a1[i].arm == 255 ? 3 : a1[i].arm]++;

        /* nobody moved */
        assert_int_equal(a1[i].arm, a2[i].arm);
        assert_int_equal(a1[i].bucket, a2[i].bucket);
    }

    for (i = 0; i < 4; i++) {
        share = 100.0 * n[i] / VISITORS;
        printf("  arm %s: %.2f%% (weight %.1f%%)\n",
               i < 3 ? arm_names[i] : "control", share, want[i]);
        assert_true(share > want[i] - 1 && share < want[i] + 1);
    }

    cef_rules_free(rs1);
    cef_rules_free(rs2);
    free(a1);
    free(a2);
    free(ids);
}


static void
test_hash_is_fixed(void **state)
{
    uint32_t  i, n[10] = { 0 };
    char      id[32];

    (void) state;

    /* a visitor's bucket must not change between builds and edges */
    assert_int_equal(cef_bucket("hero-q4", 7, "AAAAAAAAAAAAAAAAAAAAAA", 22),
                     cef_bucket("hero-q4", 7, "AAAAAAAAAAAAAAAAAAAAAA", 22));
    assert_int_equal(cef_bucket_hash("", 0, "", 0), 0xb9034ad37056f5fbULL);
    assert_int_equal(cef_bucket("hero-q4", 7, "AAAAAAAAAAAAAAAAAAAAAA", 22),
                     7248);

    /* salts are independent: ("ab", "c") differs from ("a", "bc") */
    assert_int_not_equal(cef_bucket_hash("ab", 2, "c", 1),
                         cef_bucket_hash("a", 1, "bc", 2));

    /* sequential ids spread evenly over the buckets */
    for (i = 0; i < 100000; i++) {
        snprintf(id, sizeof(id), "visitor%u", i);
        n[cef_bucket("s", 1, id, strlen(id)) / 1000]++;
    }

    for (i = 0; i < 10; i++) {
        assert_true(n[i] > 9600 && n[i] < 10400);
    }
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shares_and_stability),
        cmocka_unit_test(test_hash_is_fixed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
