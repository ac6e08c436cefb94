/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * The index of rules by their guards (lib/expr/cef_expr_index.c), which
 * lets a decision skip rules that cannot match: checked against the
 * definition on random rule sets whose conditions mix every guard form
 * with conjuncts that look like guards and are not (`== null`, `!=`,
 * `contains`, `not`, `or`), against visitors whose attributes have every
 * type (a string where an array is expected, an array where a string is,
 * maps, numbers, nothing).
 *
 *   1. every condition the index leaves out is false (cef_expr_match());
 *   2. cef_rules_decide() and cef_decision_make() choose what the
 *      definition (docs/rules.md, "The decision") chooses, with truths
 *      from cef_expr_match() on scratch space that never saw the index;
 *   3. a slot whose strategy wants every candidate (weighted) sees the
 *      definition's candidates, in its order;
 *
 * every fifth rule set has few guards, so that decisions without the
 * index (cef_rules_candidates() NULL) are checked the same way.
 *
 * Each visitor is also stored as cef-sync stores it (lib/writer's
 * encoder: interned names and strings) and decided again reading that
 * profile in place through cef_rules_visitor_lookup(), the lookup nginx
 * uses (attributes found by cef_value_skip(), decoded on use): the same
 * choices and candidates.  Some of the stored visitors carry 70 other
 * attributes first, so that attribute ids above 63 (searched, not looked
 * up directly) and profiles longer than the visitor's index (the rest
 * read by cef_profile_get_attr()) are decided too.  Every stored visitor
 * has a dictionary of its own, numbering the names as its attributes come,
 * so the id a reference kept from the previous visitor (cef_ref_t.hint)
 * often names another attribute here and must be checked, not trusted.
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

#include "cef_decision.h"
#include "cef_encode.h"
#include "cef_rules.h"
#include "cef_rules_visitor.h"
#include "cef_persona.h"


#define NOW       1795438800
#define IX_OFFERS 24
#define IX_SLOTS  4
#define IX_ATTRS  4
#define IX_KEYS   6
#define IX_ROUNDS 300
#define IX_VISITORS 4

static unsigned  seed = 22;

#define RND(n)  (seed = seed * 1103515245 + 12345, (int) ((seed >> 16) % (n)))


/*
 * Key names: short ones, and every third one longer than 8 bytes, so
 * that the index compares keys both ways (by word, and byte by byte).
 */
static const char  *key_names[] = { "k0", "k1", "k2_is_a_long_key", "k3",
                                    "k4", "k5_is_a_long_key" };

#define KN(k)  key_names[k]


/* one conjunct: guards, and look-alikes that are not guards (only those
   when few is set: an index with too few guards is not used) */
static size_t
conjunct(char *buf, size_t cap, int few)
{
    static const int  not_guards[] = { 6, 7, 8, 9, 10, 11, 13 };
    int  a = RND(IX_ATTRS), b = RND(IX_ATTRS), k = RND(IX_KEYS),
         j = RND(IX_KEYS);

    switch (few ? not_guards[RND(7)] : RND(14)) {
    case 0:  return (size_t) snprintf(buf, cap, "\"%s\" in profile.a%d", KN(k), a);
    case 1:  return (size_t) snprintf(buf, cap, "profile.a%d == \"%s\"", a, KN(k));
    case 2:  return (size_t) snprintf(buf, cap, "\"%s\" == profile.a%d", KN(k), a);
    case 3:  return (size_t) snprintf(buf, cap, "profile.a%d.%s >= 0.5", a, KN(k));
    case 4:  return (size_t) snprintf(buf, cap, "profile.a%d.%s == 1", a, KN(k));
    case 5:  return (size_t) snprintf(buf, cap, "profile.a%d.%s != 1", a, KN(k));
    case 6:  return (size_t) snprintf(buf, cap, "profile.a%d.%s == null", a,
                                      KN(k));
    case 7:  return (size_t) snprintf(buf, cap, "profile.a%d != \"%s\"", a, KN(k));
    case 8:  return (size_t) snprintf(buf, cap, "profile.a%d contains \"%s\"",
                                      a, KN(k));
    case 9:  return (size_t) snprintf(buf, cap, "not (\"%s\" in profile.a%d)",
                                      KN(k), a);
    case 10: return (size_t) snprintf(buf, cap, "(\"%s\" in profile.a%d or "
                                      "profile.a%d == \"%s\")", KN(k), a, b,
                                      KN(j));
    case 11: return (size_t) snprintf(buf, cap, "profile.n > %d", RND(6));
    case 12: return (size_t) snprintf(buf, cap, "0.5 < profile.a%d.%s", a, KN(k));
    default: return (size_t) snprintf(buf, cap, "\"%s\" not in profile.a%d",
                                      KN(k), a);
    }
}


static char *
make_rules(int nrules, int weighted, int few, size_t *len)
{
    size_t  cap = 4096 + (size_t) nrules * 512, n = 0;
    char   *y = malloc(cap);
    int     i, k, nc, o, o2;

    assert_non_null(y);

    n += (size_t) snprintf(y + n, cap - n, "version: 1\n");

    if (weighted) {
        n += (size_t) snprintf(y + n, cap - n, "slots:\n  s1:\n"
                               "    strategy: weighted\n");
    }

    n += (size_t) snprintf(y + n, cap - n, "offers:\n");

    for (i = 0; i < IX_OFFERS; i++) {
        n += (size_t) snprintf(y + n, cap - n,
                               "  o%d: {slot: s%d, html: x%s}\n", i,
                               i % IX_SLOTS,
                               RND(6) == 0 ? ", starts: 2027-01-01" : "");
    }

    n += (size_t) snprintf(y + n, cap - n, "rules:\n");

    for (i = 0; i < nrules; i++) {
        n += (size_t) snprintf(y + n, cap - n, "  - name: r%d\n"
                               "    priority: %d\n", i, RND(5));

        nc = RND(4);            /* 0: no when */

        if (nc) {
            n += (size_t) snprintf(y + n, cap - n, "    when: '");

            for (k = 0; k < nc; k++) {
                if (k) {
                    n += (size_t) snprintf(y + n, cap - n, " and ");
                }
                n += conjunct(y + n, cap - n, few && RND(4));
            }

            n += (size_t) snprintf(y + n, cap - n, "'\n");
        }

        o = RND(IX_OFFERS);
        o2 = RND(IX_OFFERS);

        if (RND(3) == 0 && o2 % IX_SLOTS != o % IX_SLOTS) {
            n += (size_t) snprintf(y + n, cap - n, "    show: [o%d, o%d]\n",
                                   o, o2);
        } else {
            n += (size_t) snprintf(y + n, cap - n, "    show: o%d\n", o);
        }
    }

    *len = n;
    return y;
}


/* a stored copy of a visitor: its attributes as msgpack, for the
   encoder (name, value) */
typedef struct {
    msgpack_sbuffer  sb[IX_ATTRS + 1];
    char             name[IX_ATTRS + 1][8];
    int              n;
} packed_t;


static msgpack_packer *
pack_begin(packed_t *pk, msgpack_packer *mp, const char *name)
{
    snprintf(pk->name[pk->n], sizeof(pk->name[0]), "%s", name);
    msgpack_sbuffer_init(&pk->sb[pk->n]);
    msgpack_packer_init(mp, &pk->sb[pk->n], msgpack_sbuffer_write);
    pk->n++;
    return mp;
}


/* a visitor whose attributes have any type, keys repeated at times; pk
   receives the same attributes packed */
static cef_persona_t *
make_visitor(packed_t *pk)
{
    cef_persona_t  *p = cef_persona_create();
    cef_span_t      keys[8];
    double          nums[8];
    static char     names[IX_KEYS][24];
    char            path[32], s[24];
    int             a, i, k, n;
    msgpack_packer  mp;
    static const double  scores[] = { 0, 0.5, 0.7, 1 };

    assert_non_null(p);
    pk->n = 0;

    for (i = 0; i < IX_KEYS; i++) {
        snprintf(names[i], sizeof(names[i]), "%s", KN(i));
    }

    for (a = 0; a < IX_ATTRS; a++) {
        snprintf(path, sizeof(path), "profile.a%d", a);
        n = RND(5);

        for (i = 0; i < n; i++) {
            k = RND(IX_KEYS);
            keys[i] = (cef_span_t) { names[k], strlen(names[k]) };
            nums[i] = scores[RND(4)];
        }

        switch (RND(6)) {
        case 0:
            break;                              /* missing */
        case 1:
            snprintf(s, sizeof(s), "%s", KN(RND(IX_KEYS)));
            assert_int_equal(cef_persona_set_str(p, path, s, strlen(s)), 0);
            pack_begin(pk, &mp, path + 8);
            msgpack_pack_str(&mp, strlen(s));
            msgpack_pack_str_body(&mp, s, strlen(s));
            break;
        case 2:
            i = RND(3);
            assert_int_equal(cef_persona_set_num(p, path, i), 0);
            msgpack_pack_int(pack_begin(pk, &mp, path + 8), i);
            break;
        case 3:
        case 4:
            assert_int_equal(cef_persona_set_array(p, path, keys,
                                                   (size_t) n), 0);
            msgpack_pack_array(pack_begin(pk, &mp, path + 8), (size_t) n);
            for (i = 0; i < n; i++) {
                msgpack_pack_str(&mp, keys[i].len);
                msgpack_pack_str_body(&mp, keys[i].data, keys[i].len);
            }
            break;
        default:
            assert_int_equal(cef_persona_set_map(p, path, keys, nums,
                                                 (size_t) n), 0);
            msgpack_pack_map(pack_begin(pk, &mp, path + 8), (size_t) n);
            for (i = 0; i < n; i++) {
                msgpack_pack_str(&mp, keys[i].len);
                msgpack_pack_str_body(&mp, keys[i].data, keys[i].len);
                msgpack_pack_double(&mp, nums[i]);
            }
        }
    }

    if (RND(4)) {
        i = RND(8);
        assert_int_equal(cef_persona_set_num(p, "profile.n", i), 0);
        msgpack_pack_int(pack_begin(pk, &mp, "n"), i);
    }

    return p;
}


/*
 * The visitor as cef-sync stores it: a fresh encoder (so a dictionary of
 * this profile's names only), filler attributes first when many is 1
 * (ids 0..69: the visitor's own above 63, the profile longer than the
 * visitor's index), or 150 (many 2) or 300 (many 3) names before the
 * visitor's in the dictionary only.
 */
typedef struct {
    cef_encode_t   enc;
    cef_dict_t     dict;
    cef_profile_t  profile;
} stored_t;


static void
store_visitor(stored_t *st, packed_t *pk, int many)
{
    msgpack_unpacked  u;
    msgpack_object    o;
    char              name[16];
    uint16_t          hint = 0;
    int               i;

    memset(st, 0, sizeof(*st));
    assert_int_equal(cef_encode_init(&st->enc), 0);
    cef_encode_begin(&st->enc);

    /* many 2, 3: 150 or 300 names in the dictionary before this
       profile's, none of them in it: its attribute ids are written in
       two or three bytes (0xcc, 0xcd) and found by the index's search */

    for (i = 0; many >= 2 && i < (many == 2 ? 150 : 300); i++) {
        snprintf(name, sizeof(name), "g%d", i);
        o.type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        o.via.u64 = (uint64_t) i;
        assert_int_equal(cef_encode_attr(&st->enc, name, strlen(name), &o),
                         0);
    }

    cef_encode_begin(&st->enc);

    for (i = 0; many == 1 && i < 70; i++) {
        snprintf(name, sizeof(name), "f%d", i);
        o.type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        o.via.u64 = (uint64_t) i;
        assert_int_equal(cef_encode_attr(&st->enc, name, strlen(name), &o),
                         0);
    }

    msgpack_unpacked_init(&u);

    for (i = 0; i < pk->n; i++) {
        assert_int_equal(msgpack_unpack_next(&u, pk->sb[i].data,
                                             pk->sb[i].size, NULL),
                         MSGPACK_UNPACK_SUCCESS);
        assert_int_equal(cef_encode_attr(&st->enc, pk->name[i],
                                         strlen(pk->name[i]), &u.data), 0);
        msgpack_sbuffer_destroy(&pk->sb[i]);
    }

    msgpack_unpacked_destroy(&u);

    assert_int_equal(cef_encode_profile(&st->enc, &hint, 1, "v", 1), 0);

    st->dict.names = st->enc.names.tab;
    st->dict.strs = st->enc.strs.tab;
    assert_int_equal(cef_dict_index(&st->dict), 0);
    assert_int_equal(cef_profile_parse((const uint8_t *) st->enc.blob.data,
                                       st->enc.blob.size, &st->dict,
                                       &st->profile), 0);
}


static void
stored_free(stored_t *st)
{
    free(st->dict.names_hash);
    cef_encode_free(&st->enc);
}


/* the definition's choice per slot (priority slots) and candidates of
   the weighted slot s1, from truths cef_expr_match() gives without the
   index */
typedef struct {
    uint32_t  offer[IX_SLOTS];
    uint32_t  rule[IX_SLOTS];
    uint32_t  cand_offer[CEF_DECISION_MAX_CANDIDATES];
    uint32_t  cand_rule[CEF_DECISION_MAX_CANDIDATES];
    uint32_t  ncands;
} want_t;


static void
definition(const cef_rules_t *rs, cef_expr_eval_t *plain, int weighted,
    want_t *w)
{
    const uint32_t     *order = cef_rules_order(rs);
    const cef_rule_t   *r;
    const cef_offer_t  *o;
    uint32_t            i, j, s;

    for (s = 0; s < IX_SLOTS; s++) {
        w->offer[s] = CEF_RULES_NONE;
        w->rule[s] = CEF_RULES_NONE;
    }
    w->ncands = 0;

    for (i = 0; i < cef_rules_nrules(rs); i++) {
        r = cef_rules_rule(rs, order[i]);

        if (r->when && !cef_expr_match(r->when, plain)) {
            continue;
        }

        for (j = 0; j < r->noffers; j++) {
            o = cef_rules_offer(rs, r->offers[j]);
            s = o->slot_id;

            if (!cef_rules_offer_active(o, NOW)) {
                continue;
            }

            if (weighted && s == 1) {
                if (w->ncands < CEF_DECISION_MAX_CANDIDATES) {
                    w->cand_offer[w->ncands] = r->offers[j];
                    w->cand_rule[w->ncands] = order[i];
                    w->ncands++;
                }
                continue;
            }

            if (w->offer[s] == CEF_RULES_NONE) {
                w->offer[s] = r->offers[j];
                w->rule[s] = order[i];
            }
        }
    }
}


static void
test_index_matches_definition(void **state)
{
    char                  *y, line[512];
    size_t                 len;
    int                    round, v, weighted, nrules;
    uint32_t               i, s, slot, nr;
    const uint64_t        *cand;
    const cef_rule_t      *r;
    const cef_plugin_cand_t *c;
    cef_rules_t           *rs;
    cef_rules_errors_t     errs;
    cef_expr_eval_t       *ev, *plain;
    cef_decision_t        *d;
    cef_persona_t         *p;
    cef_expr_ctx_t         ctx;
    cef_rules_choice_t     choices[IX_SLOTS];
    cef_decision_input_t   in;
    want_t                 w;
    packed_t               pk;
    stored_t               st;
    cef_rules_visitor_t    vis;
    cef_expr_ctx_t         sctx;
    uint64_t               skipped = 0, total = 0, stored = 0;
    int                    indexed = 0, unindexed = 0, many;

    (void) state;

    for (round = 0; round < IX_ROUNDS; round++) {
        weighted = round % 2;
        nrules = 20 + RND(180);                 /* one to four words */
        y = make_rules(nrules, weighted, round % 5 == 4, &len);

        if (cef_rules_load_buffer("ix.yaml", y, len, &rs, &errs) != 0) {
            cef_rules_error_format(&errs, 0, line, sizeof(line));
            fail_msg("round %d: %s", round, line);
        }
        cef_rules_errors_free(&errs);
        free(y);

        /* slot ids follow first appearance: s0..s3 in order */
        for (s = 0; s < IX_SLOTS; s++) {
            assert_int_equal(cef_rules_slot_name(rs, s)[1] - '0', s);
        }

        ev = cef_rules_eval_create(rs);
        plain = cef_rules_eval_create(rs);
        d = cef_decision_create(rs);
        assert_non_null(ev);
        assert_non_null(plain);
        assert_non_null(d);

        nr = cef_rules_nrules(rs);

        for (v = 0; v < IX_VISITORS; v++) {
            p = make_visitor(&pk);

            memset(&ctx, 0, sizeof(ctx));
            ctx.lookup = cef_persona_lookup;
            ctx.data = p;
            ctx.now = NOW;
            in.visitor = cef_span_lit("v");

            /* 1: what the index leaves out is false */

            cef_expr_eval_reset(ev, &ctx);
            cef_expr_eval_reset(plain, &ctx);
            cand = cef_rules_candidates(rs, ev);
            indexed += cand != NULL;
            unindexed += cand == NULL;

            for (i = 0; i < nr; i++) {
                r = cef_rules_rule(rs, cef_rules_order(rs)[i]);
                total++;

                if (cand == NULL || (cand[i / 64] >> (i % 64) & 1)) {
                    continue;
                }

                skipped++;

                if (r->when == NULL || cef_expr_match(r->when, plain)) {
                    fail_msg("round %d visitor %d: rule %s left out but "
                             "true: %s", round, v, r->name,
                             r->when ? cef_expr_source(r->when) : "(none)");
                }
            }

            /* 2, 3: the decisions */

            cef_expr_eval_reset(plain, &ctx);
            definition(rs, plain, weighted, &w);

            (void) cef_rules_decide(rs, ev, &ctx, choices);
            (void) cef_decision_make(rs, ev, &ctx, &in, d);

            for (s = 0; s < IX_SLOTS; s++) {
                if (!weighted && (choices[s].offer != w.offer[s]
                                  || choices[s].rule != w.rule[s]))
                {
                    fail_msg("round %d visitor %d slot s%u: decide %d/%d, "
                             "definition %d/%d", round, v, s,
                             (int) choices[s].offer, (int) choices[s].rule,
                             (int) w.offer[s], (int) w.rule[s]);
                }

                if (weighted && s == 1) {
                    continue;
                }

                if (d->choices[s].offer != w.offer[s]
                    || d->choices[s].rule != w.rule[s])
                {
                    fail_msg("round %d visitor %d slot s%u: decision %d/%d, "
                             "definition %d/%d", round, v, s,
                             (int) d->choices[s].offer,
                             (int) d->choices[s].rule, (int) w.offer[s],
                             (int) w.rule[s]);
                }
            }

            if (weighted) {
                slot = 1;
                c = cef_decision_candidates(d, slot);
                assert_int_equal(d->slots[slot].candidates, w.ncands);

                for (i = 0; i < w.ncands; i++) {
                    assert_int_equal(c[i].offer->index, w.cand_offer[i]);
                    assert_int_equal(c[i].rule, w.cand_rule[i]);
                }
            }

            /* 4: the same visitor stored, read in place as nginx reads
               it: the same decision */

            if (RND(3) == 0) {
                many = 1;                   /* fillers */
            } else {
                many = RND(3);              /* 0, or long ids: 2, 3 */
                many += many != 0;
            }
            store_visitor(&st, &pk, many);
            cef_rules_visitor_init(&vis, &st.profile, 0,
                                   cef_span_lit("customer"));
            memset(&sctx, 0, sizeof(sctx));
            sctx.lookup = cef_rules_visitor_lookup;
            sctx.data = &vis;
            sctx.now = NOW;

            (void) cef_decision_make(rs, ev, &sctx, &in, d);
            stored++;

            for (s = 0; s < IX_SLOTS; s++) {
                if (weighted && s == 1) {
                    continue;
                }

                if (d->choices[s].offer != w.offer[s]
                    || d->choices[s].rule != w.rule[s])
                {
                    fail_msg("round %d visitor %d slot s%u, stored: "
                             "decision %d/%d, definition %d/%d", round, v,
                             s, (int) d->choices[s].offer,
                             (int) d->choices[s].rule, (int) w.offer[s],
                             (int) w.rule[s]);
                }
            }

            if (weighted) {
                c = cef_decision_candidates(d, 1);
                assert_int_equal(d->slots[1].candidates, w.ncands);

                for (i = 0; i < w.ncands; i++) {
                    assert_int_equal(c[i].offer->index, w.cand_offer[i]);
                    assert_int_equal(c[i].rule, w.cand_rule[i]);
                }
            }

            stored_free(&st);
            cef_persona_free(p);
        }

        cef_decision_free(d);
        cef_expr_eval_free(ev);
        cef_expr_eval_free(plain);
        cef_rules_free(rs);
    }

    /* the index must have something to do: most rules are left out */

    print_message("  %llu of %llu rule evaluations left out by the index; "
                  "%d decisions with the index, %d without (too few "
                  "guards); %llu decided again from stored profiles\n",
                  (unsigned long long) skipped, (unsigned long long) total,
                  indexed, unindexed, (unsigned long long) stored);
    assert_true(skipped * 5 > total);
    assert_true(indexed > 0 && unindexed > 0);
}


/*
 * A value holding many guarded keys, each twice: every key counts once
 * whether it is told apart by the scan of the first keys found or by the
 * marks past them, so each rule `"kN" in profile.s` whose key is there is
 * a candidate (counted twice, it would not be: its count would pass its
 * single guard).
 */
static void
test_keys_repeated_in_a_long_value(void **state)
{
    char                 *y, line[512];
    size_t                cap = 65536, n = 0;
    int                   i, round;
    uint32_t              r;
    cef_rules_t          *rs;
    cef_rules_errors_t    errs;
    cef_expr_eval_t      *ev;
    cef_persona_t        *p;
    cef_expr_ctx_t        ctx;
    const uint64_t       *cand;
    cef_span_t            keys[80];
    static char           names[70][16];

    (void) state;

    y = malloc(cap);
    assert_non_null(y);

    n += (size_t) snprintf(y + n, cap - n, "version: 1\noffers:\n"
                           "  o: {slot: s, html: x}\nrules:\n");

    for (i = 0; i < 70; i++) {
        snprintf(names[i], sizeof(names[i]), "k%d", i);
        n += (size_t) snprintf(y + n, cap - n, "  - name: r%d\n"
                               "    when: '\"k%d\" in profile.s'\n"
                               "    show: o\n", i, i);
    }

    if (cef_rules_load_buffer("rep.yaml", y, n, &rs, &errs) != 0) {
        cef_rules_error_format(&errs, 0, line, sizeof(line));
        fail_msg("%s", line);
    }
    cef_rules_errors_free(&errs);
    free(y);

    ev = cef_rules_eval_create(rs);
    assert_non_null(ev);

    /* 40 keys, then the same 40 again (round 0); 20 keys, then the same
       20 again: all within the scan (round 1) */

    for (round = 0; round < 2; round++) {
        int  nk = round ? 20 : 40;

        for (i = 0; i < 2 * nk; i++) {
            keys[i] = (cef_span_t) { names[i % nk], strlen(names[i % nk]) };
        }

        p = cef_persona_create();
        assert_non_null(p);
        assert_int_equal(cef_persona_set_array(p, "profile.s", keys,
                                               (size_t) (2 * nk)), 0);

        memset(&ctx, 0, sizeof(ctx));
        ctx.lookup = cef_persona_lookup;
        ctx.data = p;
        ctx.now = NOW;

        cef_expr_eval_reset(ev, &ctx);
        cand = cef_rules_candidates(rs, ev);
        assert_non_null(cand);

        for (r = 0; r < 70; r++) {
            /* file order is plan order: all priorities are 0 */
            assert_int_equal((int) (cand[r / 64] >> (r % 64) & 1),
                             (int) r < nk);
        }

        cef_persona_free(p);
    }

    cef_expr_eval_free(ev);
    cef_rules_free(rs);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_index_matches_definition),
        cmocka_unit_test(test_keys_repeated_in_a_long_value),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
