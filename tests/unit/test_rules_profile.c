/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Rules against a stored profile: the dictionary probe by precomputed hash
 * agrees with cef_dict_name_id(), and decisions read profile.* and
 * visitor.* in place.
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

#include "cef_rules.h"
#include "cef_rules_visitor.h"


#define NNAMES  300


typedef struct {
    cef_dict_t       dict;
    cef_span_t       names[NNAMES];
    char             buf[NNAMES][16];
    msgpack_sbuffer  blob;
    cef_profile_t    profile;
} fixture_t;


/* names: attr0 .. attr296, then clv, segments, first_name */
static int
setup(void **state)
{
    fixture_t        *f = calloc(1, sizeof(fixture_t));
    msgpack_packer    pk;
    size_t            i;
    static const char *real[] = { "clv", "segments", "first_name" };

    for (i = 0; i < NNAMES; i++) {
        if (i >= NNAMES - 3) {
            strcpy(f->buf[i], real[i - (NNAMES - 3)]);
        } else {
            snprintf(f->buf[i], sizeof(f->buf[i]), "attr%zu", i);
        }
        f->names[i].data = f->buf[i];
        f->names[i].len = strlen(f->buf[i]);
    }

    f->dict.names.s = f->names;
    f->dict.names.n = NNAMES;
    assert_int_equal(cef_dict_index(&f->dict), 0);

    /* format 1, no hints, id "p1", map {attr5: 1, clv: 620,
       segments: ["gold"], first_name: "Ann"} in attribute id order */

    msgpack_sbuffer_init(&f->blob);
    msgpack_packer_init(&pk, &f->blob, msgpack_sbuffer_write);
    msgpack_sbuffer_write(&f->blob, "\x01\x00\x02p1", 5);
    msgpack_pack_map(&pk, 4);
    msgpack_pack_uint32(&pk, 5);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_uint32(&pk, NNAMES - 3);
    msgpack_pack_int(&pk, 620);
    msgpack_pack_uint32(&pk, NNAMES - 2);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_str(&pk, 4);
    msgpack_pack_str_body(&pk, "gold", 4);
    msgpack_pack_uint32(&pk, NNAMES - 1);
    msgpack_pack_str(&pk, 3);
    msgpack_pack_str_body(&pk, "Ann", 3);

    assert_int_equal(cef_profile_parse((const uint8_t *) f->blob.data,
                                       f->blob.size, &f->dict, &f->profile),
                     0);

    *state = f;
    return 0;
}


static int
teardown(void **state)
{
    fixture_t  *f = *state;

    free(f->dict.names_hash);
    msgpack_sbuffer_destroy(&f->blob);
    free(f);

    return 0;
}


static void
test_probe_agrees_with_the_dictionary(void **state)
{
    fixture_t   *f = *state;
    size_t       i;
    char         name[32];
    cef_span_t   s;

    for (i = 0; i < NNAMES + 200; i++) {
        if (i < NNAMES) {
            s = f->names[i];
        } else {
            snprintf(name, sizeof(name), "absent%zu", i);
            s.data = name;
            s.len = strlen(name);
        }

        assert_int_equal(cef_rules_dict_find(&f->dict, s,
                                             cef_expr_hash(s.data, s.len)),
                         cef_dict_name_id(&f->dict, s));
        assert_int_equal(cef_expr_hash(s.data, s.len),
                         cef_dict_hash(s.data, s.len));
    }

    assert_int_equal(cef_rules_dict_find(NULL, s, 0), -1);
}


static void
test_decide_from_a_stored_profile(void **state)
{
    static const char  *yaml =
        "version: 1\n"
        "offers:\n"
        "  vip: {slot: hero, html: 'Hi {{ profile.first_name }}'}\n"
        "  gold: {slot: hero, html: G}\n"
        "  new: {slot: hero, html: N}\n"
        "  email: {slot: side, html: E}\n"
        "rules:\n"
        "  - name: vip\n"
        "    when: profile.clv > 1000\n"
        "    show: vip\n"
        "    priority: 10\n"
        "  - name: gold\n"
        "    when: '\"gold\" in profile.segments and profile.nothing == null "
        "and profile.attr5 == 1'\n"
        "    show: gold\n"
        "  - name: new\n"
        "    when: visitor.new\n"
        "    show: new\n"
        "    priority: 20\n"
        "  - name: by email\n"
        "    when: visitor.key_type == \"email\"\n"
        "    show: email\n";
    fixture_t            *f = *state;
    cef_rules_t          *rs;
    cef_rules_errors_t    errs;
    cef_expr_eval_t      *ev;
    cef_expr_ctx_t        ctx;
    cef_rules_choice_t    c[2];
    cef_rules_visitor_t   vis;
    char                  html[64];
    size_t                n;

    assert_int_equal(cef_rules_load_buffer("p.yaml", yaml, strlen(yaml), &rs,
                                           &errs), 0);
    cef_rules_errors_free(&errs);
    ev = cef_rules_eval_create(rs);

    cef_rules_visitor_init(&vis, &f->profile, -1, (cef_span_t) { NULL, 0 });

    memset(&ctx, 0, sizeof(ctx));
    ctx.lookup = cef_rules_visitor_lookup;
    ctx.data = &vis;

    cef_rules_decide(rs, ev, &ctx, c);
    assert_string_equal(cef_rules_offer(rs, c[0].offer)->name, "gold");
    assert_int_equal(c[1].offer, CEF_RULES_NONE);

    vis.visitor_new = 1;
    vis.key_type = (cef_span_t) cef_span_lit("email");
    cef_rules_decide(rs, ev, &ctx, c);
    assert_string_equal(cef_rules_offer(rs, c[0].offer)->name, "new");
    assert_string_equal(cef_rules_offer(rs, c[1].offer)->name, "email");

    /* without a profile nothing matches; with it, templates read it too */
    vis.visitor_new = 0;
    vis.key_type.len = 0;
    vis.profile = NULL;
    cef_rules_decide(rs, ev, &ctx, c);
    assert_int_equal(c[0].offer, CEF_RULES_NONE);

    vis.profile = &f->profile;
    cef_rules_decide(rs, ev, &ctx, c);
    n = cef_template_render(cef_rules_offer(rs, 0)->html, ev, html,
                            sizeof(html));
    assert_int_equal(n, 6);
    assert_memory_equal(html, "Hi Ann", 6);

    cef_expr_eval_free(ev);
    cef_rules_free(rs);
}


static void
test_malformed_profile_is_null(void **state)
{
    fixture_t            *f = *state;
    cef_rules_visitor_t   vis;
    cef_profile_t         bad = f->profile;
    cef_value_t           v;
    cef_ref_t             ref;

    bad.attrs_len = 3;          /* cut in the middle of the first value */
    cef_rules_visitor_init(&vis, &bad, -1, (cef_span_t) { NULL, 0 });

    memset(&ref, 0, sizeof(ref));
    ref.kind = CEF_REF_PROFILE;
    ref.name = (cef_span_t) cef_span_lit("first_name");
    ref.hash = cef_expr_hash(ref.name.data, ref.name.len);

    assert_int_equal(cef_rules_visitor_lookup(&vis, &ref, &v), 0);

    cef_rules_visitor_init(&vis, &f->profile, -1, (cef_span_t) { NULL, 0 });
    assert_int_equal(cef_rules_visitor_lookup(&vis, &ref, &v), 1);
    assert_int_equal(v.type, CEF_VAL_STR);

    ref.kind = CEF_REF_REQUEST_PATH;
    assert_int_equal(cef_rules_visitor_lookup(&vis, &ref, &v), 0);
}


/* more attributes than the index holds: every one still found */
static void
test_big_profile(void **state)
{
    fixture_t            *f = *state;
    msgpack_sbuffer       sb;
    msgpack_packer        pk;
    cef_profile_t         prof;
    cef_rules_visitor_t   vis;
    cef_value_t           v, w;
    cef_ref_t             ref;
    uint32_t              i;

    (void) f;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_sbuffer_write(&sb, "\x01\x00\x02" "p2", 5);
    msgpack_pack_map(&pk, 150);

    for (i = 0; i < 150; i++) {       /* every other id: gaps too */
        msgpack_pack_uint32(&pk, 2 * i);
        msgpack_pack_int(&pk, (int) i);
    }

    assert_int_equal(cef_profile_parse((const uint8_t *) sb.data, sb.size,
                                       &f->dict, &prof), 0);
    cef_rules_visitor_init(&vis, &prof, -1, (cef_span_t) { NULL, 0 });

    memset(&ref, 0, sizeof(ref));
    ref.kind = CEF_REF_PROFILE;

    for (i = 0; i < NNAMES; i++) {
        ref.name = f->names[i];
        ref.hash = cef_expr_hash(ref.name.data, ref.name.len);

        memset(&v, 0, sizeof(v));
        memset(&w, 0, sizeof(w));
        assert_int_equal(cef_rules_visitor_lookup(&vis, &ref, &v),
                         cef_profile_get(&prof, f->names[i], &w) == 1);

        if (i % 2 == 0 && i < 300) {
            assert_int_equal(v.type, CEF_VAL_INT);
            assert_int_equal(v.u.i, i / 2);
        }
    }

    assert_int_equal(vis.nindex, CEF_RULES_VISITOR_INDEX);
    assert_int_equal(vis.partial, 1);

    msgpack_sbuffer_destroy(&sb);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_probe_agrees_with_the_dictionary,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_decide_from_a_stored_profile,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_profile_is_null,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_profile, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
