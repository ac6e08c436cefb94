/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * libFuzzer target: the stored-profile decoder (cef_profile.h,
 * cef_value.h, cef_rules_visitor.h) on arbitrary bytes, as a reader of a
 * damaged or hostile store would see them.
 *
 * Byte 0 picks how many names and interned strings the dictionary holds
 * (so attribute and string ids run past its end); the rest is the stored
 * profile.  Every attribute is decoded and walked, looked up by name, by
 * id and through the rules' indexed visitor lookup; the bytes are also
 * decoded as a sequence of bare values.  Invariants: a profile that
 * validates never fails to iterate; for such a profile the indexed
 * lookup agrees with cef_profile_get() on presence and type when its
 * attribute ids ascend, as cef-sync writes them.  (With ids out of order
 * the two lookups may disagree — the binary search of the index and the
 * linear scan stop at different places — which is a damaged store giving
 * wrong but memory-safe answers.)
 */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cef_expr.h"
#include "cef_profile.h"
#include "cef_rules_visitor.h"
#include "fuzz_common.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


#define NNAMES  10

static const cef_span_t  names[NNAMES] = {
    cef_span_lit("first_name"), cef_span_lit("segments"),
    cef_span_lit("clv"), cef_span_lit("interests"), cef_span_lit("vip"),
    cef_span_lit("nps"), cef_span_lit("lifecycle"), cef_span_lit("a"),
    cef_span_lit(""), cef_span_lit("zz")
};

static const cef_span_t  strs[] = {
    cef_span_lit("vip"), cef_span_lit("newsletter"), cef_span_lit("active"),
    cef_span_lit("shoes"), cef_span_lit("")
};


static cef_expr_symtab_t  *st;
static const cef_ref_t    *refs[NNAMES + 1];


static void
init_refs(void)
{
    size_t             i;
    cef_expr_error_t   err;
    cef_expr_t        *e;
    char               path[64];

    st = cef_expr_symtab_create();
    CHECK(st != NULL);

    for (i = 0; i < NNAMES - 2; i++) {
        memcpy(path, "profile.", 8);
        memcpy(path + 8, names[i].data, names[i].len);
        e = cef_expr_compile_path(st, path, 8 + names[i].len, &err);
        CHECK(e != NULL);
        /* the reference stays in the table; the expression may go */
        cef_expr_free(e);
    }

    e = cef_expr_compile_path(st, "profile.unknown", 15, &err);
    CHECK(e != NULL);
    cef_expr_free(e);

    CHECK(cef_expr_symtab_count(st) == NNAMES - 1);
    for (i = 0; i < NNAMES - 1; i++) {
        refs[i] = cef_expr_symtab_ref(st, i);
    }
}


static void
walk_value(const cef_value_t *v)
{
    int         rc;
    size_t      pos;
    double      num;
    cef_span_t  s, k;
    char        buf[128];

    cef_expr_format_value(v, buf, sizeof(buf));
    CHECK(memchr(buf, '\0', sizeof(buf)) != NULL);

    if (v->type == CEF_VAL_STR_ARRAY) {
        pos = 0;
        while ((rc = cef_value_array_next(v, &pos, &s)) == 1) {
            CHECK(pos <= v->u.seq.len);
            CHECK(cef_value_array_contains(v, s) == 1);
        }
        (void) cef_value_array_contains(v, cef_span_lit("vip"));

    } else if (v->type == CEF_VAL_NUM_MAP) {
        pos = 0;
        while ((rc = cef_value_map_next(v, &pos, &k, &num)) == 1) {
            CHECK(pos <= v->u.seq.len);
        }
        (void) cef_value_map_get(v, cef_span_lit("shoes"), &num);
    }
}


/* 1 if the attribute ids strictly ascend (and every value decodes) */
static int
attrs_ascend(const cef_profile_t *p)
{
    size_t       pos = 0;
    uint64_t     a, prev = 0;
    int          first = 1;
    cef_value_t  v;

    while (pos < p->attrs_len) {
        if (cef_value_decode_uint(p->attrs, p->attrs_len, &pos, &a) != 0
            || cef_value_decode(p->attrs, p->attrs_len, &pos,
                                &p->dict->strs, &v) != 0
            || (!first && a <= prev))
        {
            return 0;
        }

        prev = a;
        first = 0;
    }

    return 1;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                   rc, valid, sorted, got, looked;
    size_t                pos, i;
    uint32_t              a, n;
    const uint8_t        *blob;
    cef_dict_t            dict;
    cef_profile_t         p;
    cef_span_t            name;
    cef_value_t           v, w;
    cef_rules_visitor_t   vis;

    if (st == NULL) {
        init_refs();
    }

    if (size < 1 || size > 65536) {
        return 0;
    }

    memset(&dict, 0, sizeof(dict));
    dict.names.s = names;
    dict.names.n = data[0] % (NNAMES + 1);
    dict.strs.s = strs;
    dict.strs.n = (data[0] >> 4) % (sizeof(strs) / sizeof(strs[0]) + 1);
    CHECK(cef_dict_index(&dict) == 0);

    blob = data + 1;
    size--;

    /* bare values, as cef_value_decode() meets them */

    pos = 0;
    for (i = 0; i < 64 && pos < size; i++) {
        if (cef_value_decode(blob, size, &pos, &dict.strs, &v) != 0) {
            break;
        }
        CHECK(pos <= size);
        walk_value(&v);
    }

    if (cef_profile_parse(blob, size, &dict, &p) != 0) {
        free(dict.names_hash);
        return 0;
    }

    CHECK(p.id.len <= CEF_PROFILE_ID_MAX);
    CHECK(p.attrs_len <= size);

    valid = cef_profile_validate(&p) == 0;
    sorted = attrs_ascend(&p);

    pos = 0;
    n = 0;
    while ((rc = cef_profile_next(&p, &pos, &name, &v)) == 1) {
        walk_value(&v);
        n++;
    }
    CHECK(rc == 0 || !valid);
    if (valid) {
        CHECK(n == p.nattrs);
    }

    for (a = 0; a < NNAMES + 2; a++) {
        if (cef_profile_get_attr(&p, a, &v) == 1) {
            walk_value(&v);
        }
    }

    cef_rules_visitor_init(&vis, &p, 0, cef_span_lit("customer"));

    for (i = 0; i < NNAMES - 1; i++) {
        got = cef_profile_get(&p, refs[i]->name, &v);
        looked = cef_rules_visitor_lookup(&vis, refs[i], &w);
        CHECK(looked == 0 || looked == 1);

        if (looked) {
            walk_value(&w);
        }

        if (valid && sorted) {
            CHECK(got == 0 || got == 1);
            CHECK(looked == got);
            if (got) {
                CHECK(v.type == w.type);
            }
        }

        (void) cef_rules_dict_find(&dict, refs[i]->name, refs[i]->hash);
        (void) cef_dict_name_id(&dict, refs[i]->name);
    }

    free(dict.names_hash);

    return 0;
}
