/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_expr symbol table: the references (profile.NAME, request.NAME,
 * var.NAME, ...) every expression of one rule set shares, their dense ids,
 * the map keys of profile.NAME.KEY, and the memo ids of comparisons that
 * several expressions repeat.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cef_expr_int.h"


cef_expr_symtab_t *
cef_expr_symtab_create(void)
{
    cef_expr_symtab_t  *st;

    st = calloc(1, sizeof(cef_expr_symtab_t));
    if (st == NULL) {
        return NULL;
    }

    st->nslots = 64;
    st->slots = calloc(st->nslots, sizeof(uint32_t));
    if (st->slots == NULL) {
        free(st);
        return NULL;
    }

    return st;
}


void
cef_expr_symtab_set_funcs(cef_expr_symtab_t *st,
    cef_expr_func_lookup_pt lookup, void *data)
{
    st->func_lookup = lookup;
    st->func_data = data;
}


void
cef_expr_symtab_free(cef_expr_symtab_t *st)
{
    uint32_t  i;

    if (st == NULL) {
        return;
    }

    for (i = 0; i < st->nrefs; i++) {
        free(st->refs[i]);
    }

    for (i = 0; i < st->nkeys; i++) {
        free(st->keys[i]);
    }

    for (i = 0; i < st->nmemos; i++) {
        free((char *) st->memos[i].data);
    }

    free(st->memos);
    free(st->memo_slots);

    free(st->refs);
    free(st->slots);
    free(st->keys);
    free(st->key_slots);
    free(st);
}


uint32_t
cef_expr_symtab_count(const cef_expr_symtab_t *st)
{
    return st->nrefs;
}


const cef_ref_t *
cef_expr_symtab_ref(const cef_expr_symtab_t *st, uint32_t id)
{
    return st->refs[id];
}


/*
 * The table's three indexes (references by path, map keys, memo forms)
 * are one kind: open addressing with linear probing over cef_expr_hash(),
 * id + 1 per slot (0: empty), a power-of-two number of slots kept at most
 * half full.  What differs is where an id's key is kept.
 */

typedef cef_span_t (*cef_index_key_pt)(const cef_expr_symtab_t *st,
    uint32_t id);


static cef_span_t
cef_ref_key(const cef_expr_symtab_t *st, uint32_t id)
{
    return st->refs[id]->path;
}


static cef_span_t
cef_map_key(const cef_expr_symtab_t *st, uint32_t id)
{
    cef_span_t  k;

    k.data = st->keys[id];
    k.len = strlen(st->keys[id]);

    return k;
}


static cef_span_t
cef_memo_key(const cef_expr_symtab_t *st, uint32_t id)
{
    return st->memos[id];
}


/* The id of key p (-1: absent); *slot: where it is, or where it goes. */
static int64_t
cef_index_find(const cef_expr_symtab_t *st, const uint32_t *slots,
    uint32_t nslots, cef_index_key_pt key, const char *p, size_t len,
    uint32_t *slot)
{
    uint32_t    h;
    cef_span_t  k;

    h = cef_expr_hash(p, len) & (nslots - 1);

    while (slots[h]) {
        k = key(st, slots[h] - 1);

        if (k.len == len && memcmp(k.data, p, len) == 0) {
            *slot = h;
            return slots[h] - 1;
        }

        h = (h + 1) & (nslots - 1);
    }

    *slot = h;
    return -1;
}


/* n slots (a power of two) indexing ids 0 .. count - 1; NULL: no memory. */
static uint32_t *
cef_index_build(const cef_expr_symtab_t *st, uint32_t n, uint32_t count,
    cef_index_key_pt key)
{
    uint32_t    i, h, *slots;
    cef_span_t  k;

    slots = calloc(n, sizeof(uint32_t));
    if (slots == NULL) {
        return NULL;
    }

    for (i = 0; i < count; i++) {
        k = key(st, i);
        h = cef_expr_hash(k.data, k.len) & (n - 1);

        while (slots[h]) {
            h = (h + 1) & (n - 1);
        }

        slots[h] = i + 1;
    }

    return slots;
}


static int
cef_symtab_grow(cef_expr_symtab_t *st)
{
    uint32_t  n, *slots;

    n = st->nslots * 2;
    slots = cef_index_build(st, n, st->nrefs, cef_ref_key);
    if (slots == NULL) {
        return -1;
    }

    free(st->slots);
    st->slots = slots;
    st->nslots = n;

    return 0;
}


/*
 * Find or add the reference for a normalized path; name is the tail of
 * path that the caller looks up (empty for fixed references).
 */
const cef_ref_t *
cef_expr_symtab_add(cef_expr_symtab_t *st, cef_ref_kind_t kind,
    const char *path, size_t plen, size_t name_off)
{
    uint32_t    h, id;
    int64_t     found;
    cef_ref_t  *ref, **refs;
    char       *p;

    found = cef_index_find(st, st->slots, st->nslots, cef_ref_key, path, plen,
                           &h);
    if (found >= 0) {
        return st->refs[found];
    }

    if (st->nrefs == st->cap) {
        id = st->cap ? st->cap * 2 : 16;
        refs = realloc(st->refs, id * sizeof(cef_ref_t *));
        if (refs == NULL) {
            return NULL;
        }

        st->refs = refs;
        st->cap = id;
    }

    ref = malloc(sizeof(cef_ref_t) + plen + 1);
    if (ref == NULL) {
        return NULL;
    }

    p = (char *) (ref + 1);
    memcpy(p, path, plen);
    p[plen] = '\0';

    ref->kind = kind;
    ref->id = st->nrefs;
    ref->path.data = p;
    ref->path.len = plen;
    ref->name.data = p + name_off;
    ref->name.len = plen - name_off;
    ref->hash = cef_expr_hash(ref->name.data, ref->name.len);
    ref->hint = 0;

    st->refs[st->nrefs++] = ref;
    st->slots[h] = ref->id + 1;

    if (st->nrefs * 2 > st->nslots && cef_symtab_grow(st) != 0) {
        return NULL;
    }

    return ref;
}


/*
 * The dense id of the map entry KEY of reference ref (profile.NAME.KEY),
 * or -1 when out of memory.
 */
int64_t
cef_expr_symtab_key(cef_expr_symtab_t *st, uint32_t ref, const char *key,
    size_t len)
{
    char       buf[16], *k, **keys;
    size_t     blen, klen;
    int64_t    found;
    uint32_t   h, n, *slots;

    blen = (size_t) snprintf(buf, sizeof(buf), "%u:", ref);
    klen = blen + len;

    if (st->nkeys * 2 >= st->key_nslots) {
        n = st->key_nslots ? st->key_nslots * 2 : 16;
        slots = cef_index_build(st, n, st->nkeys, cef_map_key);
        if (slots == NULL) {
            return -1;
        }

        free(st->key_slots);
        st->key_slots = slots;
        st->key_nslots = n;
    }

    k = malloc(klen + 1);
    if (k == NULL) {
        return -1;
    }

    memcpy(k, buf, blen);
    memcpy(k + blen, key, len);
    k[klen] = '\0';

    found = cef_index_find(st, st->key_slots, st->key_nslots, cef_map_key, k,
                           klen, &h);
    if (found >= 0) {
        free(k);
        return found;
    }

    if (st->nkeys == st->keys_cap) {
        n = st->keys_cap ? st->keys_cap * 2 : 16;
        keys = realloc(st->keys, n * sizeof(char *));
        if (keys == NULL) {
            free(k);
            return -1;
        }

        st->keys = keys;
        st->keys_cap = n;
    }

    st->keys[st->nkeys] = k;
    st->key_slots[h] = st->nkeys + 1;

    return st->nkeys++;
}


/*
 * Comparisons shared between expressions.  Within one evaluation every
 * comparison is a pure function of the inputs (references are read once,
 * time is fixed, plugin functions are pure by contract), so equal
 * comparisons need to be evaluated once: each gets a memo id from its
 * canonical form (operator, literal values, reference and key ids,
 * recursively), and the evaluator keeps its result for the evaluation.
 * Rule files repeat comparisons ("vip" in profile.segments,
 * profile.lifecycle == "new") across many rules.
 */

typedef struct {
    char      *p;
    size_t     len;
    size_t     cap;
    int        failed;
} cef_keybuf_t;


static void
cef_kb_put(cef_keybuf_t *kb, const void *p, size_t n)
{
    char    *q;
    size_t   cap;

    if (kb->failed) {
        return;
    }

    if (kb->len + n > kb->cap) {
        cap = kb->cap ? kb->cap * 2 : 256;
        while (cap < kb->len + n) {
            cap *= 2;
        }

        q = realloc(kb->p, cap);
        if (q == NULL) {
            kb->failed = 1;
            return;
        }

        kb->p = q;
        kb->cap = cap;
    }

    memcpy(kb->p + kb->len, p, n);
    kb->len += n;
}


static void
cef_memo_form(const cef_expr_t *e, int32_t i, cef_keybuf_t *kb)
{
    const cef_node_t  *n = &e->nodes[i];
    uint32_t           u;
    int32_t            c;
    uint8_t            b[2];

    b[0] = n->op;
    b[1] = '(';
    cef_kb_put(kb, b, 2);

    switch ((cef_op_t) n->op) {
    case CEF_OP_BOOL:
        cef_kb_put(kb, &n->u.b, sizeof(n->u.b));
        break;
    case CEF_OP_NUM:
        cef_kb_put(kb, &n->u.num, sizeof(n->u.num));
        break;
    case CEF_OP_STR:
        u = (uint32_t) n->u.str.len;
        cef_kb_put(kb, &u, sizeof(u));
        cef_kb_put(kb, n->u.str.data, n->u.str.len);
        break;
    case CEF_OP_REF:
        cef_kb_put(kb, &n->u.ref.ref, sizeof(uint32_t));
        break;
    case CEF_OP_REF_KEY:
        cef_kb_put(kb, &n->u.ref.key_id, sizeof(uint32_t));
        break;
    case CEF_OP_CALL:
        cef_kb_put(kb, &n->u.fn, sizeof(n->u.fn));
        break;
    default:
        break;
    }

    if (n->op == CEF_OP_LIST || n->op == CEF_OP_CALL) {
        for (c = n->a; c >= 0; c = e->nodes[c].next) {
            cef_memo_form(e, c, kb);
        }

    } else {
        if (n->a >= 0) {
            cef_memo_form(e, n->a, kb);
        }

        if (n->b >= 0) {
            cef_memo_form(e, n->b, kb);
        }
    }

    b[0] = ')';
    cef_kb_put(kb, b, 1);
}


/* The memo id of a canonical form, or -1 when out of memory. */
static int64_t
cef_symtab_memo(cef_expr_symtab_t *st, const char *form, size_t len)
{
    char        *k;
    int64_t      found;
    uint32_t     h, n, *slots;
    cef_span_t  *memos;

    if (st->nmemos * 2 >= st->memo_nslots) {
        n = st->memo_nslots ? st->memo_nslots * 2 : 64;
        slots = cef_index_build(st, n, st->nmemos, cef_memo_key);
        if (slots == NULL) {
            return -1;
        }

        free(st->memo_slots);
        st->memo_slots = slots;
        st->memo_nslots = n;
    }

    found = cef_index_find(st, st->memo_slots, st->memo_nslots, cef_memo_key,
                           form, len, &h);
    if (found >= 0) {
        return found;
    }

    if (st->nmemos == st->memos_cap) {
        n = st->memos_cap ? st->memos_cap * 2 : 32;
        memos = realloc(st->memos, n * sizeof(cef_span_t));
        if (memos == NULL) {
            return -1;
        }

        st->memos = memos;
        st->memos_cap = n;
    }

    k = malloc(len ? len : 1);
    if (k == NULL) {
        return -1;
    }

    memcpy(k, form, len);
    st->memos[st->nmemos].data = k;
    st->memos[st->nmemos].len = len;
    st->memo_slots[h] = st->nmemos + 1;

    return st->nmemos++;
}


static int
cef_is_leaf(const cef_node_t *n)
{
    return n->op == CEF_OP_REF || n->op == CEF_OP_NUM;
}


/*
 * Give the comparisons of e their memo ids; those between a reference and
 * a number (or two) are cheaper to redo than to look up, and keep none.
 */
int
cef_expr_symtab_memoise(cef_expr_symtab_t *st, cef_expr_t *e)
{
    uint32_t       i;
    int64_t        id;
    cef_node_t    *n;
    cef_keybuf_t   kb;

    memset(&kb, 0, sizeof(kb));

    for (i = 0; i < e->nnodes; i++) {
        n = &e->nodes[i];

        if (n->op < CEF_OP_EQ || n->op > CEF_OP_MATCHES) {
            continue;
        }

        if (n->op >= CEF_OP_LT && n->op <= CEF_OP_GE
            && cef_is_leaf(&e->nodes[n->a]) && cef_is_leaf(&e->nodes[n->b]))
        {
            continue;
        }

        kb.len = 0;
        cef_memo_form(e, (int32_t) i, &kb);

        if (kb.failed) {
            free(kb.p);
            return -1;
        }

        id = cef_symtab_memo(st, kb.p, kb.len);
        if (id < 0) {
            free(kb.p);
            return -1;
        }

        n->memo = (uint32_t) id + 1;
    }

    free(kb.p);
    return 0;
}
