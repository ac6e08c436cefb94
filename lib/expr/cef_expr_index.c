/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_expr_index: which of many conditions can be true for this
 * evaluation's inputs, found without evaluating them (cef_expr.h).
 *
 * A condition whose top-level `and` chain holds a guard, a conjunct that
 * can only be true when a profile attribute's value has a given key,
 *
 *   "K" in profile.NAME              the array has K, or the map the key K
 *   profile.NAME == "K"              the string is K
 *   profile.NAME.K < <= > >= x       the map has the key K (a number is
 *   profile.NAME.K == != number        needed, and null is no number)
 *
 * is filed under (NAME, K), with every other guard of its chain (up to
 * CEF_INDEX_GUARDS); a condition without a guard is always a candidate.
 * The keys of a value are its string, its array's elements or its map's
 * keys.  Per evaluation the keys of the few guarded attributes are looked
 * up, each (NAME, K) found counts once for every condition filed under
 * it, and a condition is a candidate when all its guards counted: when
 * every guard's key is among the keys of its attribute's value.  That is
 * a superset of the conditions whose guards are true (an array holding "K"
 * also makes `profile.NAME == "K"` a candidate, which is then evaluated
 * and false), so nothing that could be true is left out, and a rule
 * `"gold" in profile.segments and profile.lifecycle == "new"` costs
 * nothing for a visitor in either segment or stage but not both.  Only
 * profile attributes are indexed: they are read in place anyway, while a
 * request header or an nginx variable would be looked up for nothing.
 */

#include <stdlib.h>
#include <string.h>

#include "cef_expr_int.h"


#define CEF_INDEX_GUARDS  255     /* guards counted per condition */
#define CEF_INDEX_MIN     64      /* guarded conditions that always pay */
#define CEF_INDEX_FOUND   32      /* keys of one value told apart by a
                                     scan, not by ev->ix_seen */


typedef struct {
    uint64_t     word;        /* cef_index_hash()'s word of the key */
    uint32_t     hash;
    uint32_t     ref;
    cef_span_t   key;
    uint32_t     first;       /* in postings */
    uint32_t     n;
} cef_index_entry_t;


/*
 * What a decision reads of an entry, 32 bytes on a 32-byte boundary (an
 * entry is never split across two cache lines), with up to 3 postings in
 * it: the common guard (a segment, a stage) that a few rules name costs
 * the slot's line and the entry's, not a third in postings.
 */
#define CEF_INDEX_INLINE  3

typedef struct {
    uint64_t     word;        /* as cef_index_entry_t's */
    uint32_t     ref;
    uint32_t     len;         /* the key's */
    uint32_t     n;           /* postings */
    uint32_t     post[CEF_INDEX_INLINE];  /* n <= CEF_INDEX_INLINE: the
                                             postings; else post[0] is
                                             the first's index in
                                             postings */
} cef_index_hot_t;

_Static_assert(sizeof(cef_index_hot_t) == 32, "two hot entries a line");


/* a slot of the hash table: the entry's hash beside it, so that a key
   no guard names (most of a visitor's keys) is told apart without
   reading an entry */
typedef struct {
    uint32_t     hash;
    uint32_t     entry;       /* entry + 1, 0: empty */
} cef_index_slot_t;


/* a key as the index compares it: its hash, and for a key of at most 8
   bytes a word that, with the length, is the key */
typedef struct {
    uint64_t     word;
    uint32_t     hash;
} cef_index_key_t;


struct cef_expr_index_s {
    uint32_t            nconds;
    uint32_t            words;
    uint64_t           *always;     /* conditions without a guard */
    uint8_t            *need;       /* per condition: its guards */
    cef_index_entry_t  *entries;    /* building, and long keys' bytes */
    cef_index_hot_t    *hot;        /* per entry: what a decision reads */
    uint32_t            nentries;
    cef_index_slot_t   *slots;      /* open addressing */
    uint32_t            mask;
    uint32_t           *postings;   /* condition positions, ascending */
    uint32_t           *sources;    /* refs with entries, each once */
    uint32_t            nsources;
    unsigned            off:1;      /* too few guarded: every condition */
};


/* one guard found in a condition */
typedef struct {
    uint32_t     cond;
    uint32_t     entry;
} cef_index_guard_t;


typedef struct {
    cef_expr_index_t   *ix;
    uint32_t            cap;        /* entries */
    cef_index_guard_t  *guards;
    uint32_t            nguards;
    uint32_t            gcap;
    uint32_t            nrefs;
} cef_index_build_t;


/*
 * The hash of (reference, key), computed once per key of the guarded
 * attributes in every decision: keys are short (segment names, stages,
 * map keys), so a word at a time, not FNV's byte at a time (a third of
 * the instructions for a 7-byte key).  Every byte counts: 8-byte words,
 * then the last 1 to 8 bytes as two overlapping 4-byte reads, or as the
 * first, middle and last byte.  That last word determines a key of at most
 * 8 bytes of a given length (every byte is in it at a place fixed by the
 * length), so such keys are compared as length and word, without
 * memcmp().  Only this file hashes with it.
 */
static inline cef_index_key_t
cef_index_hash(uint32_t ref, cef_span_t key)
{
    const unsigned char  *p = (const unsigned char *) key.data;
    size_t                n = key.len;
    uint64_t              h, w;
    uint32_t              lo, hi;
    cef_index_key_t       k;

    h = ((uint64_t) ref << 32 | n) ^ 0x9e3779b97f4a7c15ULL;

    while (n > 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }

    if (n >= 4) {
        memcpy(&lo, p, 4);
        memcpy(&hi, p + n - 4, 4);
        w = (uint64_t) hi << 32 | lo;

    } else if (n > 0) {
        w = (uint64_t) p[0] | (uint64_t) p[n / 2] << 8
            | (uint64_t) p[n - 1] << 16;

    } else {
        w = 0;
    }

    k.word = w;

    h = (h ^ w) * 0xff51afd7ed558ccdULL;
    h ^= h >> 29;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 32;

    k.hash = (uint32_t) h;

    return k;
}


static inline __attribute__((always_inline)) int64_t
cef_index_find(const cef_expr_index_t *ix, uint32_t ref, cef_span_t key,
    cef_index_key_t k)
{
    uint32_t                  s, e;
    const cef_index_entry_t  *en;

    if (ix->slots == NULL) {
        return -1;
    }

    for (s = k.hash & ix->mask; (e = ix->slots[s].entry) != 0;
         s = (s + 1) & ix->mask)
    {
        if (ix->slots[s].hash != k.hash) {
            continue;
        }

        en = &ix->entries[e - 1];

        if (en->word == k.word && en->ref == ref
            && en->key.len == key.len
            && (key.len <= 8
                || memcmp(en->key.data, key.data, key.len) == 0))
        {
            return e - 1;
        }
    }

    return -1;
}


/* cef_index_find() for a decision: the slots and the hot entries */
static inline __attribute__((always_inline)) int64_t
cef_index_lookup(const cef_expr_index_t *ix, uint32_t ref, cef_span_t key,
    cef_index_key_t k)
{
    uint32_t                s, e;
    const cef_index_hot_t  *h;

    for (s = k.hash & ix->mask; (e = ix->slots[s].entry) != 0;
         s = (s + 1) & ix->mask)
    {
        if (ix->slots[s].hash != k.hash) {
            continue;
        }

        h = &ix->hot[e - 1];

        if (h->word == k.word && h->ref == ref && h->len == key.len
            && (key.len <= 8
                || memcmp(ix->entries[e - 1].key.data, key.data, key.len)
                   == 0))
        {
            return e - 1;
        }
    }

    return -1;
}


/* the entry of (ref, key), added if new; -1: out of memory */
static int64_t
cef_index_entry(cef_index_build_t *b, uint32_t ref, cef_span_t key)
{
    cef_expr_index_t   *ix = b->ix;
    cef_index_entry_t  *en;
    cef_index_key_t     k = cef_index_hash(ref, key);
    uint32_t            h = k.hash, i, s, n;
    cef_index_slot_t   *slots;
    int64_t             found;

    found = cef_index_find(ix, ref, key, k);
    if (found >= 0) {
        return found;
    }

    if (ix->nentries == b->cap) {
        n = b->cap ? b->cap * 2 : 64;
        en = realloc(ix->entries, n * sizeof(cef_index_entry_t));
        if (en == NULL) {
            return -1;
        }
        ix->entries = en;
        b->cap = n;
    }

    if (ix->slots == NULL || (ix->nentries + 1) * 2 > ix->mask + 1) {
        n = ix->slots ? (ix->mask + 1) * 2 : 128;
        slots = calloc(n, sizeof(cef_index_slot_t));
        if (slots == NULL) {
            return -1;
        }

        for (i = 0; i < ix->nentries; i++) {
            for (s = ix->entries[i].hash & (n - 1); slots[s].entry;
                 s = (s + 1) & (n - 1))
            {
                /* void */
            }
            slots[s].hash = ix->entries[i].hash;
            slots[s].entry = i + 1;
        }

        free(ix->slots);
        ix->slots = slots;
        ix->mask = n - 1;
    }

    en = &ix->entries[ix->nentries];
    en->ref = ref;
    en->key = key;
    en->hash = h;
    en->word = k.word;
    en->first = 0;
    en->n = 0;

    for (s = h & ix->mask; ix->slots[s].entry; s = (s + 1) & ix->mask) {
        /* void */
    }
    ix->slots[s].hash = h;
    ix->slots[s].entry = ++ix->nentries;

    return ix->nentries - 1;
}


/* the profile reference of node i, or -1 */
static int64_t
cef_index_ref(const cef_expr_t *e, int32_t i, const cef_expr_symtab_t *st)
{
    const cef_node_t  *n;

    if (i < 0) {
        return -1;
    }

    n = CEF_NODE(e, i);

    if (n->op != CEF_OP_REF || n->u.ref.ref >= st->nrefs
        || st->refs[n->u.ref.ref]->kind != CEF_REF_PROFILE)
    {
        return -1;
    }

    return n->u.ref.ref;
}


/* a profile.NAME.KEY node i: its reference and key */
static int
cef_index_ref_key(const cef_expr_t *e, int32_t i, const cef_expr_symtab_t *st,
    uint32_t *ref, cef_span_t *key)
{
    const cef_node_t  *n;

    if (i < 0) {
        return 0;
    }

    n = CEF_NODE(e, i);

    if (n->op != CEF_OP_REF_KEY || n->u.ref.ref >= st->nrefs
        || st->refs[n->u.ref.ref]->kind != CEF_REF_PROFILE)
    {
        return 0;
    }

    *ref = n->u.ref.ref;
    *key = n->u.ref.key;
    return 1;
}


static int
cef_index_is(const cef_expr_t *e, int32_t i, cef_op_t op)
{
    return i >= 0 && CEF_NODE(e, i)->op == op;
}


/* the guard of conjunct i, if it is one: (ref, key) */
static int
cef_index_guard(const cef_expr_t *e, int32_t i, const cef_expr_symtab_t *st,
    uint32_t *ref, cef_span_t *key)
{
    const cef_node_t  *n = CEF_NODE(e, i);
    int64_t            r;

    switch ((cef_op_t) n->op) {

    case CEF_OP_IN:
        /* "K" in profile.NAME: true only for an array or map with K */
        r = cef_index_ref(e, n->b, st);
        if (r < 0 || !cef_index_is(e, n->a, CEF_OP_STR)) {
            return 0;
        }
        *ref = (uint32_t) r;
        *key = CEF_NODE(e, n->a)->u.str;
        return 1;

    case CEF_OP_EQ:
        /* profile.NAME == "K": true only for the string K */
        r = cef_index_ref(e, n->a, st);
        if (r >= 0 && cef_index_is(e, n->b, CEF_OP_STR)) {
            *ref = (uint32_t) r;
            *key = CEF_NODE(e, n->b)->u.str;
            return 1;
        }

        r = cef_index_ref(e, n->b, st);
        if (r >= 0 && cef_index_is(e, n->a, CEF_OP_STR)) {
            *ref = (uint32_t) r;
            *key = CEF_NODE(e, n->a)->u.str;
            return 1;
        }

        /* profile.NAME.K == number, below */
        /* fall through */

    case CEF_OP_NE:
        /* with a number (not null: `== null` is true when K is absent) */
        if (cef_index_is(e, n->b, CEF_OP_NUM)) {
            return cef_index_ref_key(e, n->a, st, ref, key);
        }
        if (cef_index_is(e, n->a, CEF_OP_NUM)) {
            return cef_index_ref_key(e, n->b, st, ref, key);
        }
        return 0;

    case CEF_OP_LT:
    case CEF_OP_LE:
    case CEF_OP_GT:
    case CEF_OP_GE:
        /* both sides must be numbers: profile.NAME.K is one only when the
           map has K */
        return cef_index_ref_key(e, n->a, st, ref, key)
               || cef_index_ref_key(e, n->b, st, ref, key);

    default:
        return 0;
    }
}


/* the guards of the top-level `and` chain under node i */
static int
cef_index_conjuncts(cef_index_build_t *b, const cef_expr_t *e, int32_t i,
    uint32_t cond, const cef_expr_symtab_t *st)
{
    const cef_node_t   *n = CEF_NODE(e, i);
    cef_index_guard_t  *g;
    cef_span_t          key;
    uint32_t            ref, cap, k;
    int64_t             en;

    if (n->op == CEF_OP_AND) {
        return cef_index_conjuncts(b, e, n->a, cond, st)
               || cef_index_conjuncts(b, e, n->b, cond, st);
    }

    if (!cef_index_guard(e, i, st, &ref, &key)) {
        return 0;
    }

    en = cef_index_entry(b, ref, key);
    if (en < 0) {
        return -1;
    }

    /* one guard per key and condition (`"a" in x and "a" in x`), at most
       CEF_INDEX_GUARDS: fewer guards only make more candidates */

    if (b->ix->need[cond] == CEF_INDEX_GUARDS) {
        return 0;
    }

    for (k = b->nguards; k > 0 && b->guards[k - 1].cond == cond; k--) {
        if (b->guards[k - 1].entry == (uint32_t) en) {
            return 0;
        }
    }

    if (b->nguards == b->gcap) {
        cap = b->gcap ? b->gcap * 2 : 64;
        g = realloc(b->guards, cap * sizeof(cef_index_guard_t));
        if (g == NULL) {
            return -1;
        }
        b->guards = g;
        b->gcap = cap;
    }

    b->guards[b->nguards].cond = cond;
    b->guards[b->nguards].entry = (uint32_t) en;
    b->nguards++;
    b->ix->need[cond]++;

    return 0;
}


/* the postings of every entry (in condition order) and the sources */
static int
cef_index_file(cef_index_build_t *b)
{
    cef_expr_index_t  *ix = b->ix;
    cef_index_guard_t *g;
    cef_index_entry_t *en;
    cef_index_hot_t   *h;
    uint32_t           i, pos, ref;
    uint8_t           *is_source;

    ix->postings = malloc((b->nguards + 1) * sizeof(uint32_t));
    ix->sources = malloc((b->nrefs + 1) * sizeof(uint32_t));
    is_source = calloc(b->nrefs + 1, 1);

    if (ix->postings == NULL || ix->sources == NULL || is_source == NULL) {
        free(is_source);
        return -1;
    }

    for (i = 0; i < b->nguards; i++) {
        g = &b->guards[i];
        ix->always[g->cond / 64] &= ~(1ULL << (g->cond % 64));
        ix->entries[g->entry].n++;
    }

    for (i = 0, pos = 0; i < ix->nentries; i++) {
        ix->entries[i].first = pos;
        pos += ix->entries[i].n;
        ix->entries[i].n = 0;
    }

    for (i = 0; i < b->nguards; i++) {
        g = &b->guards[i];
        ix->postings[ix->entries[g->entry].first
                     + ix->entries[g->entry].n++] = g->cond;

        ref = ix->entries[g->entry].ref;

        if (!is_source[ref]) {
            is_source[ref] = 1;
            ix->sources[ix->nsources++] = ref;
        }
    }

    free(is_source);

    /* the hot entries, on a cache line boundary (aligned_alloc() wants a
       multiple of the alignment) */

    ix->hot = aligned_alloc(64, ((size_t) ix->nentries
                                 * sizeof(cef_index_hot_t) + 63) / 64 * 64
                                + 64);
    if (ix->hot == NULL) {
        return -1;
    }

    for (i = 0; i < ix->nentries; i++) {
        en = &ix->entries[i];
        h = &ix->hot[i];
        memset(h, 0, sizeof(cef_index_hot_t));
        h->word = en->word;
        h->ref = en->ref;
        h->len = (uint32_t) en->key.len;
        h->n = en->n;

        if (en->n <= CEF_INDEX_INLINE) {
            memcpy(h->post, ix->postings + en->first,
                   en->n * sizeof(uint32_t));
        } else {
            h->post[0] = en->first;
        }
    }

    return 0;
}


cef_expr_index_t *
cef_expr_index_create(cef_expr_symtab_t *st, const cef_expr_t *const *conds,
    uint32_t n)
{
    cef_expr_index_t   *ix;
    cef_index_build_t   b;
    uint32_t            i, words = (n + 63) / 64;
    int                 rc = 0;

    ix = calloc(1, sizeof(cef_expr_index_t));
    if (ix == NULL) {
        return NULL;
    }

    memset(&b, 0, sizeof(b));
    b.ix = ix;
    b.nrefs = st->nrefs;

    ix->nconds = n;
    ix->words = words;
    ix->always = calloc(words + 1, sizeof(uint64_t));
    ix->need = calloc(n + 1, 1);

    if (ix->always == NULL || ix->need == NULL) {
        rc = -1;
    }

    for (i = 0; i < n && rc == 0; i++) {
        ix->always[i / 64] |= 1ULL << (i % 64);

        if (conds[i] != NULL) {
            rc = cef_index_conjuncts(&b, conds[i], conds[i]->root, i, st);
        }
    }

    if (rc == 0) {
        rc = cef_index_file(&b);
    }

    free(b.guards);

    if (rc != 0) {
        cef_expr_index_free(ix);
        return NULL;
    }

    /*
     * Looking the keys up costs about as much as evaluating a dozen
     * conditions (most comparisons are shared, and answered once): with
     * few guarded conditions, and most of them not, the index costs more
     * than it saves (make bench-rules' first workload: 20 of 100 guarded,
     * 10 % slower with the index).
     */

    ix->off = cef_expr_index_guarded(ix) < CEF_INDEX_MIN
              && cef_expr_index_guarded(ix) * 2 < n;

    if (st->cand_words < words) {
        st->cand_words = words;
    }

    if (st->cand_conds < n) {
        st->cand_conds = n;
    }

    if (st->cand_entries < ix->nentries) {
        st->cand_entries = ix->nentries;
    }

    return ix;
}


void
cef_expr_index_free(cef_expr_index_t *ix)
{
    if (ix == NULL) {
        return;
    }

    free(ix->always);
    free(ix->need);
    free(ix->entries);
    free(ix->hot);
    free(ix->slots);
    free(ix->postings);
    free(ix->sources);
    free(ix);
}


uint32_t
cef_expr_index_guarded(const cef_expr_index_t *ix)
{
    uint32_t  i, n = 0;

    for (i = 0; i < ix->nconds; i++) {
        n += ix->need[i] != 0;
    }

    return n;
}


/* cef_expr_eval_keys() callback: count the guards of (ref, key), once */
typedef struct {
    const cef_expr_index_t  *ix;
    cef_expr_eval_t         *ev;
    uint32_t                 ref;
    uint32_t                 ntouched;
    uint32_t                 nfound;    /* entries found for ref, or
                                           CEF_INDEX_FOUND + 1: ix_seen
                                           marks them */
    uint64_t                 bloom;     /* bit e % 64 of each found */
    uint32_t                 found[CEF_INDEX_FOUND];
} cef_index_walk_t;


static void
cef_index_key(void *data, cef_span_t key)
{
    cef_index_walk_t         *w = data;
    const cef_expr_index_t   *ix = w->ix;
    cef_expr_eval_t          *ev = w->ev;
    const cef_index_hot_t    *h;
    const uint32_t           *p, *end;
    uint8_t                  *count;
    uint32_t                 *touched, n, i;
    uint64_t                  bit;
    int64_t                   e;

    e = cef_index_lookup(ix, w->ref, key, cef_index_hash(w->ref, key));
    if (e < 0) {
        return;                 /* no guard */
    }

    /*
     * A key seen twice in one value (an array ["a", "a"]) counts once.
     * The few keys of a value that guards name are told apart by a scan
     * of those found so far, when a 64-bit filter of their entries says
     * it may be one of them: no per-entry mark in ev, which would be one
     * more cache line per key in a cold worker.  Past CEF_INDEX_FOUND
     * keys, ev->ix_seen marks them (those found so far first).
     */

    if (w->nfound <= CEF_INDEX_FOUND) {
        bit = 1ULL << (e & 63);

        if (w->bloom & bit) {
            for (i = 0; i < w->nfound; i++) {
                if (w->found[i] == (uint32_t) e) {
                    return;
                }
            }
        }

        w->bloom |= bit;

        if (w->nfound < CEF_INDEX_FOUND) {
            w->found[w->nfound++] = (uint32_t) e;
            goto count;
        }

        for (i = 0; i < CEF_INDEX_FOUND; i++) {
            ev->ix_seen[w->found[i]] = ev->ix_gen;
        }

        w->nfound = CEF_INDEX_FOUND + 1;
    }

    if (ev->ix_seen[e] == ev->ix_gen) {
        return;
    }

    ev->ix_seen[e] = ev->ix_gen;

count:

    h = &ix->hot[e];

    /* locals: a store through uint8_t * may alias anything */

    count = ev->ix_count;
    touched = ev->ix_touched;
    n = w->ntouched;
    p = h->n <= CEF_INDEX_INLINE ? h->post : ix->postings + h->post[0];

    for (end = p + h->n; p < end; p++) {
        touched[n] = *p;
        n += count[*p]++ == 0;
    }

    w->ntouched = n;
}


const uint64_t *
cef_expr_index_candidates(const cef_expr_index_t *ix, cef_expr_eval_t *ev)
{
    cef_index_walk_t  w;
    uint32_t          i, c, *touched;
    uint8_t          *count;
    const uint8_t    *need;
    uint64_t         *bits = ev->cand;

    if (ix->off || ix->words > ev->cand_words
        || ix->nconds > ev->cand_conds || ix->nentries > ev->cand_entries)
    {
        return NULL;            /* not worth it, or ev made before the
                                   index: no filter */
    }

    if (++ev->ix_gen == 0) {
        memset(ev->ix_seen, 0, ev->cand_entries * sizeof(uint32_t));
        ev->ix_gen = 1;
    }

    memcpy(bits, ix->always, ix->words * sizeof(uint64_t));

    w.ix = ix;
    w.ev = ev;
    w.ntouched = 0;

    for (i = 0; i < ix->nsources; i++) {
        w.ref = ix->sources[i];
        w.nfound = 0;
        w.bloom = 0;
        cef_expr_eval_keys(ev, w.ref, cef_index_key, &w);
    }

    /* a candidate: every guard counted; the counts start at 0 again */

    count = ev->ix_count;
    touched = ev->ix_touched;
    need = ix->need;

    for (i = 0; i < w.ntouched; i++) {
        c = touched[i];
        bits[c / 64] |= (uint64_t) (count[c] == need[c]) << (c % 64);
        count[c] = 0;
    }

    return bits;
}
