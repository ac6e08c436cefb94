/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef_expr evaluator: walks a compiled node array against the values the
 * caller's lookup callback provides.  Never fails and never allocates:
 * anything unexpected (a missing attribute, a wrong type, a malformed
 * array) becomes null, and comparisons with null are false.
 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cef_expr_int.h"


static void cef_eval_node(const cef_expr_t *e, int32_t i, cef_expr_eval_t *ev,
    cef_val_t *out);


/* --- dates ---------------------------------------------------------------- */

static int64_t
cef_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t   era;
    unsigned  yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned) (y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + (int64_t) doe - 719468;
}


static int
cef_digits(const char *s, size_t n, int *out)
{
    size_t  i;
    int     v = 0;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }

    *out = v;
    return 0;
}


int
cef_expr_parse_time(const char *s, size_t len, int64_t *out)
{
    static const int  mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
                                  30, 31 };
    int   y, m, d, hh = 0, mm = 0, ss = 0, oh, om, leap, sign;
    size_t  p;

    if (len < 10 || cef_digits(s, 4, &y) || s[4] != '-'
        || cef_digits(s + 5, 2, &m) || s[7] != '-'
        || cef_digits(s + 8, 2, &d))
    {
        return -1;
    }

    leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    if (m < 1 || m > 12 || d < 1
        || d > mdays[m - 1] + (m == 2 && leap))
    {
        return -1;
    }

    p = 10;
    sign = 0;
    oh = om = 0;

    if (p < len) {
        if ((s[p] != 'T' && s[p] != ' ') || len < p + 6
            || cef_digits(s + p + 1, 2, &hh) || s[p + 3] != ':'
            || cef_digits(s + p + 4, 2, &mm))
        {
            return -1;
        }

        p += 6;

        if (p < len && s[p] == ':') {
            if (len < p + 3 || cef_digits(s + p + 1, 2, &ss)) {
                return -1;
            }
            p += 3;
        }

        if (hh > 23 || mm > 59 || ss > 60) {
            return -1;
        }

        if (p < len && s[p] == 'Z') {
            p++;

        } else if (p < len && (s[p] == '+' || s[p] == '-')) {
            sign = s[p] == '+' ? 1 : -1;

            if (len < p + 6 || cef_digits(s + p + 1, 2, &oh)
                || s[p + 3] != ':' || cef_digits(s + p + 4, 2, &om)
                || oh > 23 || om > 59)
            {
                return -1;
            }

            p += 6;
        }

        if (p != len) {
            return -1;
        }
    }

    *out = cef_days_from_civil(y, (unsigned) m, (unsigned) d) * 86400
           + hh * 3600 + mm * 60 + ss - sign * (oh * 3600 + om * 60);

    return 0;
}


/* --- scratch space -------------------------------------------------------- */

_Static_assert(sizeof(cef_refval_t) <= 32, "two values to a cache line");
_Static_assert(sizeof(cef_refseq_t) <= 64, "a sequence on one cache line");


/* n zeroed bytes on a cache line boundary (aligned_alloc() wants a
   multiple of the alignment) */
static void *
cef_eval_alloc(size_t n)
{
    void  *p;

    n = (n + 63) & ~(size_t) 63;

    p = aligned_alloc(64, n);
    if (p) {
        memset(p, 0, n);
    }

    return p;
}


cef_expr_eval_t *
cef_expr_eval_create(const cef_expr_symtab_t *st)
{
    cef_expr_eval_t  *ev;
    uint32_t          n = st->nrefs ? st->nrefs : 1;
    uint32_t          nk = st->nkeys ? st->nkeys : 1;
    uint32_t          nm = st->nmemos ? st->nmemos : 1;

    ev = calloc(1, sizeof(cef_expr_eval_t));
    if (ev == NULL) {
        return NULL;
    }

    ev->st = st;
    ev->nrefs = st->nrefs;
    ev->nkeys = st->nkeys;
    ev->vals = cef_eval_alloc((size_t) n * sizeof(cef_refval_t));
    ev->seqs = cef_eval_alloc((size_t) n * sizeof(cef_refseq_t));
    ev->elems = calloc(CEF_EXPR_ELEMS, sizeof(cef_elem_t));
    ev->key_seen = calloc(nk, sizeof(uint32_t));
    ev->key_val = calloc(nk, sizeof(cef_val_t));
    ev->nmemos = st->nmemos;
    ev->memo_seen = calloc(nm, sizeof(uint32_t));
    ev->memo_val = calloc(nm, 1);
    ev->cand_words = st->cand_words;
    ev->cand_conds = st->cand_conds;
    ev->cand_entries = st->cand_entries;
    ev->cand = calloc(st->cand_words + 1, sizeof(uint64_t));
    ev->ix_count = calloc(st->cand_conds + 1, 1);
    ev->ix_touched = calloc(st->cand_conds + 1, sizeof(uint32_t));
    ev->ix_seen = calloc(st->cand_entries + 1, sizeof(uint32_t));
    ev->md = pcre2_match_data_create(1, NULL);
    ev->mctx = pcre2_match_context_create(NULL);

    if (ev->vals == NULL || ev->seqs == NULL || ev->elems == NULL || ev->key_seen == NULL
        || ev->key_val == NULL || ev->memo_seen == NULL
        || ev->memo_val == NULL || ev->cand == NULL || ev->ix_count == NULL
        || ev->ix_touched == NULL || ev->ix_seen == NULL || ev->md == NULL
        || ev->mctx == NULL)
    {
        cef_expr_eval_free(ev);
        return NULL;
    }

    /* `matches` runs on what visitors send (arguments, headers, cookies):
       a pathological regex and subject must cost microseconds, not the
       worker */

    (void) pcre2_set_match_limit(ev->mctx, CEF_EXPR_MATCH_LIMIT);
    (void) pcre2_set_depth_limit(ev->mctx, CEF_EXPR_DEPTH_LIMIT);
    (void) pcre2_set_heap_limit(ev->mctx, CEF_EXPR_HEAP_LIMIT);

    ev->gen = 1;
    return ev;
}


void
cef_expr_eval_free(cef_expr_eval_t *ev)
{
    if (ev == NULL) {
        return;
    }

    if (ev->md) {
        pcre2_match_data_free(ev->md);
    }

    if (ev->mctx) {
        pcre2_match_context_free(ev->mctx);
    }

    free(ev->vals);
    free(ev->seqs);
    free(ev->elems);
    free(ev->key_seen);
    free(ev->key_val);
    free(ev->memo_seen);
    free(ev->memo_val);
    free(ev->cand);
    free(ev->ix_count);
    free(ev->ix_touched);
    free(ev->ix_seen);
    free(ev);
}


/*
 * A new evaluation: everything cached belongs to the previous generation
 * and is ignored from now on, without clearing it.  Only when the counter
 * wraps are the tags cleared (once in 2^32 evaluations), so that a tag
 * left from 2^32 evaluations ago cannot pass for a current one.
 */
void
cef_expr_eval_reset(cef_expr_eval_t *ev, const cef_expr_ctx_t *ctx)
{
    uint32_t  i;

    ev->ctx = ctx;
    ev->tm_done = 0;
    ev->scratch_used = 0;
    ev->nelems = 0;

    if (++ev->gen == 0) {
        memset(ev->key_seen, 0, ev->nkeys * sizeof(uint32_t));
        memset(ev->memo_seen, 0, ev->nmemos * sizeof(uint32_t));

        for (i = 0; i < ev->nrefs; i++) {
            ev->vals[i].gen = 0;
            ev->seqs[i].seq.gen = 0;
        }

        ev->gen = 1;
    }
}


/* --- values --------------------------------------------------------------- */

/* v must stay where it is while out is in use (arrays, maps) */
static void
cef_val_from_value(const cef_value_t *v, cef_val_t *out)
{
    switch (v->type) {
    case CEF_VAL_BOOL:
        out->t = CEF_V_BOOL;
        out->u.b = v->u.b != 0;
        return;
    case CEF_VAL_INT:
        out->t = CEF_V_NUM;
        out->u.num = (double) v->u.i;
        return;
    case CEF_VAL_FLOAT:
        if (isnan(v->u.f)) {
            break;
        }
        out->t = CEF_V_NUM;
        out->u.num = v->u.f;
        return;
    case CEF_VAL_STR:
        if (v->u.s.data == NULL && v->u.s.len) {
            break;
        }
        out->t = CEF_V_STR;
        out->u.s = v->u.s;
        return;
    case CEF_VAL_STR_ARRAY:
    case CEF_VAL_NUM_MAP:
        if (v->u.seq.raw == NULL && v->u.seq.len) {
            break;
        }
        out->t = v->type == CEF_VAL_STR_ARRAY ? CEF_V_ARRAY : CEF_V_MAP;
        out->u.v = v;
        return;
    default:
        break;
    }

    out->t = CEF_V_NULL;
}


/*
 * The cef_value_t of an evaluated value (numbers as CEF_VAL_FLOAT; a list
 * literal or null as CEF_VAL_NIL).  Arrays and maps are the profile's own
 * cef_value_t, copied.
 */
void
cef_expr_eval_to_value(const cef_val_t *v, cef_value_t *out)
{
    switch (v->t) {
    case CEF_V_BOOL:
        out->type = CEF_VAL_BOOL;
        out->u.b = v->u.b;
        return;
    case CEF_V_NUM:
        out->type = CEF_VAL_FLOAT;
        out->u.f = v->u.num;
        return;
    case CEF_V_STR:
        out->type = CEF_VAL_STR;
        out->u.s = v->u.s;
        return;
    case CEF_V_ARRAY:
    case CEF_V_MAP:
        *out = *v->u.v;
        return;
    default:
        out->type = CEF_VAL_NIL;
    }
}


static void
cef_time_fields(cef_expr_eval_t *ev)
{
    int64_t  t, days, secs;

    t = ev->ctx->now + ev->ctx->utc_offset;
    days = t / 86400;
    secs = t % 86400;

    if (secs < 0) {
        secs += 86400;
        days--;
    }

    ev->hour = (int) (secs / 3600);
    ev->weekday = (int) (((days % 7) + 7 + 3) % 7) + 1;    /* 1 = Monday */
    ev->tm_done = 1;
}


static void
cef_load_ref(cef_expr_eval_t *ev, uint32_t id, cef_val_t *out)
{
    const cef_ref_t  *ref;
    cef_value_t       v, *src;
    cef_refval_t     *rv;

    if (id >= ev->nrefs || ev->ctx == NULL) {
        out->t = CEF_V_NULL;
        return;
    }

    rv = &ev->vals[id];

    if (rv->gen == ev->gen) {
        *out = rv->val;
        return;
    }

    ref = ev->st->refs[id];

    switch (ref->kind) {
    case CEF_REF_TIME_HOUR:
    case CEF_REF_TIME_WEEKDAY:
        if (!ev->tm_done) {
            cef_time_fields(ev);
        }
        out->t = CEF_V_NUM;
        out->u.num = ref->kind == CEF_REF_TIME_HOUR ? ev->hour : ev->weekday;
        break;

    case CEF_REF_TIME_NOW:
        out->t = CEF_V_NUM;
        out->u.num = (double) ev->ctx->now;
        break;

    default:
        v.type = CEF_VAL_NIL;

        if (ev->ctx->lookup
            && ev->ctx->lookup(ev->ctx->data, ref, &v) == 1)
        {
            src = &v;

            if (v.type == CEF_VAL_STR_ARRAY || v.type == CEF_VAL_NUM_MAP) {
                ev->seqs[id].raw = v;       /* out points there */
                src = &ev->seqs[id].raw;
            }

            cef_val_from_value(src, out);

            out->ref = id;

        } else {
            out->t = CEF_V_NULL;
        }
    }

    rv->val = *out;
    rv->gen = ev->gen;
}


/*
 * The value of node i: leaves (numbers, strings, cached references)
 * inline, everything else through cef_eval_node().
 */
static inline void
cef_operand(const cef_expr_t *e, int32_t i, cef_expr_eval_t *ev,
    cef_val_t *out)
{
    const cef_node_t  *n = CEF_NODE(e, i);
    uint32_t           id;

    switch ((cef_op_t) n->op) {

    case CEF_OP_NUM:
        out->t = CEF_V_NUM;
        out->u.num = n->u.num;
        return;

    case CEF_OP_STR:
        out->t = CEF_V_STR;
        out->u.s = n->u.str;
        return;

    case CEF_OP_REF:
        id = n->u.ref.ref;

        if (id < ev->nrefs && ev->vals[id].gen == ev->gen) {
            *out = ev->vals[id].val;
            return;
        }

        cef_load_ref(ev, id, out);
        return;

    default:
        cef_eval_node(e, i, ev, out);
    }
}


void
cef_expr_eval_node(const cef_expr_t *e, int32_t i, cef_expr_eval_t *ev,
    cef_val_t *out)
{
    cef_operand(e, i, ev, out);
}


/* Substring search; memmem() is a GNU extension nginx builds don't see. */
static int
cef_find(cef_span_t hay, cef_span_t needle)
{
    const char  *p, *end;

    p = hay.data;
    end = hay.data + hay.len - needle.len + 1;

    while (p < end) {
        p = memchr(p, needle.data[0], (size_t) (end - p));
        if (p == NULL) {
            return 0;
        }

        if (memcmp(p, needle.data, needle.len) == 0) {
            return 1;
        }

        p++;
    }

    return 0;
}


/*
 * The elements of an array or map reference (v: CEF_V_ARRAY or CEF_V_MAP),
 * decoded on first use in this evaluation: every later `in`, `contains`
 * and profile.NAME.KEY reads the decoded spans instead of the encoding.
 * Decoding stops at a malformed element (the elements before it stay
 * usable, as with the iterators) and after CEF_EXPR_SEQ_MAX elements or
 * when elems is full (the rest is then read from the encoding).  Inlined
 * into both callers, as it was into its one caller before the index.
 */
static inline __attribute__((always_inline)) const cef_seq_t *
cef_seq(cef_expr_eval_t *ev, const cef_val_t *v)
{
    cef_seq_t          *q = &ev->seqs[v->ref].seq;
    const cef_value_t  *cv = v->u.v;
    cef_elem_t         *e;
    size_t              pos = 0;
    uint32_t            max;
    int                 rc;

    if (q->gen == ev->gen) {
        return q;
    }

    q->gen = ev->gen;
    q->first = ev->nelems;
    q->n = 0;
    q->more = 0;

    max = CEF_EXPR_ELEMS - ev->nelems;
    if (max > CEF_EXPR_SEQ_MAX) {
        max = CEF_EXPR_SEQ_MAX;
    }

    e = ev->elems + ev->nelems;

    for ( ;; ) {
        if (q->n == max) {
            q->more = pos < cv->u.seq.len;
            q->rest = pos;
            break;
        }

        rc = cv->type == CEF_VAL_STR_ARRAY
             ? cef_value_array_next(cv, &pos, &e[q->n].s)
             : cef_value_map_next(cv, &pos, &e[q->n].s, &e[q->n].num);

        if (rc != 1) {
            break;
        }

        q->n++;
    }

    ev->nelems += q->n;

    return q;
}


static inline int
cef_span_eq(cef_span_t a, cef_span_t b)
{
    /* interned strings of one dictionary are one span each: equal
       pointers settle it without comparing bytes */

    return a.len == b.len
           && (a.data == b.data || a.len == 0
               || memcmp(a.data, b.data, a.len) == 0);
}


/* 1 (and *num for maps) if the array or map v has the string s. */
static int
cef_seq_find(cef_expr_eval_t *ev, const cef_val_t *v, cef_span_t s,
    double *num)
{
    const cef_seq_t   *q;
    const cef_elem_t  *e, *end;
    size_t             pos;
    cef_span_t         k;
    double             d;

    q = cef_seq(ev, v);
    e = ev->elems + q->first;

    for (end = e + q->n; e < end; e++) {
        if (e->s.len == s.len
            && (s.len == 0 || (e->s.data[0] == s.data[0]
                               && memcmp(e->s.data, s.data, s.len) == 0)))
        {
            if (num) {
                *num = e->num;
            }
            return 1;
        }
    }

    if (!q->more) {
        return 0;
    }

    pos = q->rest;

    if (v->t == CEF_V_ARRAY) {
        while (cef_value_array_next(v->u.v, &pos, &k) == 1) {
            if (cef_span_eq(k, s)) {
                return 1;
            }
        }

        return 0;
    }

    while (cef_value_map_next(v->u.v, &pos, &k, &d) == 1) {
        if (cef_span_eq(k, s)) {
            if (num) {
                *num = d;
            }
            return 1;
        }
    }

    return 0;
}


void
cef_expr_eval_keys(cef_expr_eval_t *ev, uint32_t id,
    void (*fn)(void *data, cef_span_t key), void *data)
{
    const cef_seq_t   *q;
    const cef_elem_t  *e, *end;
    cef_val_t          v;
    cef_span_t         k;
    size_t             pos;
    double             d;

    cef_load_ref(ev, id, &v);

    if (v.t == CEF_V_STR) {
        fn(data, v.u.s);
        return;
    }

    if (v.t != CEF_V_ARRAY && v.t != CEF_V_MAP) {
        return;
    }

    /* the elements cef_seq_find() compares, in the same two parts */

    q = cef_seq(ev, &v);
    e = ev->elems + q->first;

    for (end = e + q->n; e < end; e++) {
        fn(data, e->s);
    }

    if (!q->more) {
        return;
    }

    pos = q->rest;

    if (v.t == CEF_V_ARRAY) {
        while (cef_value_array_next(v.u.v, &pos, &k) == 1) {
            fn(data, k);
        }
        return;
    }

    while (cef_value_map_next(v.u.v, &pos, &k, &d) == 1) {
        fn(data, k);
    }
}


/* Equality of two non-null values of the same scalar type. */
static int
cef_val_eq(const cef_val_t *a, const cef_val_t *b)
{
    if (a->t != b->t) {
        return 0;
    }

    switch (a->t) {
    case CEF_V_BOOL:
        return a->u.b == b->u.b;
    case CEF_V_NUM:
        return a->u.num == b->u.num;
    case CEF_V_STR:
        return cef_span_eq(a->u.s, b->u.s);
    default:
        return 0;
    }
}


static int
cef_list_has(const cef_expr_t *e, int32_t el, cef_expr_eval_t *ev,
    const cef_val_t *x)
{
    cef_val_t  v;

    for ( ; el >= 0; el = CEF_NODE(e, el)->next) {
        cef_operand(e, el, ev, &v);

        if (cef_val_eq(x, &v)) {
            return 1;
        }
    }

    return 0;
}


static int
cef_contains(const cef_expr_t *e, cef_expr_eval_t *ev, const cef_val_t *hay,
    const cef_val_t *x)
{
    switch (hay->t) {

    case CEF_V_STR:
        if (x->t != CEF_V_STR || x->u.s.len > hay->u.s.len) {
            return 0;
        }

        if (x->u.s.len == 0) {
            return 1;
        }

        return cef_find(hay->u.s, x->u.s);

    case CEF_V_ARRAY:
    case CEF_V_MAP:
        return x->t == CEF_V_STR && cef_seq_find(ev, hay, x->u.s, NULL);

    case CEF_V_LIST:
        return cef_list_has(e, CEF_NODE(e, hay->u.list)->a, ev, x);

    default:
        return 0;
    }
}


static double
cef_since(cef_expr_eval_t *ev, const cef_val_t *t, int *ok)
{
    int64_t  ts;

    *ok = 1;

    if (t->t == CEF_V_NUM) {
        return (double) ev->ctx->now - t->u.num;
    }

    if (t->t == CEF_V_STR && cef_expr_parse_time(t->u.s.data, t->u.s.len, &ts)
                             == 0)
    {
        return (double) (ev->ctx->now - ts);
    }

    *ok = 0;
    return 0;
}


/* a < b, a <= b, a > b or a >= b, by op (one of CEF_OP_LT ... CEF_OP_GE) */
static inline int
cef_num_cmp(cef_op_t op, double a, double b)
{
    switch (op) {
    case CEF_OP_LT: return a < b;
    case CEF_OP_LE: return a <= b;
    case CEF_OP_GT: return a > b;
    default:        return a >= b;
    }
}


static void
cef_set_num(cef_val_t *out, double d)
{
    if (isfinite(d)) {
        out->t = CEF_V_NUM;
        out->u.num = d;

    } else {
        out->t = CEF_V_NULL;
    }
}


static void
cef_set_bool(cef_val_t *out, int b)
{
    out->t = CEF_V_BOOL;
    out->u.b = b;
}


/* A plugin function: arguments as cef_value_t, checked, then the call. */
static void
cef_eval_call(const cef_expr_t *e, const cef_node_t *n, cef_expr_eval_t *ev,
    cef_val_t *out)
{
    const cef_plugin_func_t  *fn = n->u.fn;
    cef_value_t               args[CEF_PLUGIN_MAX_ARGS], r;
    cef_val_t                 v;
    uint32_t                  k = 0;
    int32_t                   i;

    out->t = CEF_V_NULL;

    for (i = n->a; i >= 0 && k < CEF_PLUGIN_MAX_ARGS;
         i = CEF_NODE(e, i)->next, k++)
    {
        cef_operand(e, i, ev, &v);
        cef_expr_eval_to_value(&v, &args[k]);

        if (fn->args[k] != CEF_VAL_NIL
            && !(args[k].type == fn->args[k]
                 || (fn->args[k] == CEF_VAL_FLOAT
                     && args[k].type == CEF_VAL_INT)))
        {
            return;              /* null or mistyped: the call is null */
        }
    }

    if (!fn->fn(args, k, ev->ctx->now, &r)) {
        return;
    }

    switch (r.type) {
    case CEF_VAL_BOOL:
        cef_set_bool(out, r.u.b != 0);
        return;
    case CEF_VAL_INT:
        cef_set_num(out, (double) r.u.i);
        return;
    case CEF_VAL_FLOAT:
        cef_set_num(out, r.u.f);
        return;
    case CEF_VAL_STR:
        out->t = CEF_V_STR;
        out->u.s = r.u.s;
        return;
    default:
        return;
    }
}


/* Any node but a leaf (cef_operand() answers those). */
static void
cef_eval_node(const cef_expr_t *e, int32_t i, cef_expr_eval_t *ev,
    cef_val_t *out)
{
    const cef_node_t  *n = CEF_NODE(e, i);
    cef_val_t          a, b;
    double             d;
    size_t             k;
    char              *p;
    int                ok, rc;

    switch ((cef_op_t) n->op) {

    case CEF_OP_NULL:
        out->t = CEF_V_NULL;
        return;

    case CEF_OP_BOOL:
        cef_set_bool(out, n->u.b);
        return;

    case CEF_OP_LIST:
        out->t = CEF_V_LIST;
        out->u.list = i;
        return;

    case CEF_OP_REF_KEY:
        k = n->u.ref.key_id;

        if (k < ev->nkeys && ev->key_seen[k] == ev->gen) {
            *out = ev->key_val[k];
            return;
        }

        cef_load_ref(ev, n->u.ref.ref, &a);

        if (a.t == CEF_V_MAP && cef_seq_find(ev, &a, n->u.ref.key, &d)) {
            cef_set_num(out, d);
        } else {
            out->t = CEF_V_NULL;
        }

        if (k < ev->nkeys) {
            ev->key_val[k] = *out;
            ev->key_seen[k] = ev->gen;
        }
        return;

    case CEF_OP_NOT:
        cef_operand(e, n->a, ev, &a);

        if (a.t == CEF_V_BOOL) {
            cef_set_bool(out, !a.u.b);
        } else {
            out->t = CEF_V_NULL;
        }
        return;

    case CEF_OP_NEG:
        cef_operand(e, n->a, ev, &a);

        if (a.t == CEF_V_NUM) {
            cef_set_num(out, -a.u.num);
        } else {
            out->t = CEF_V_NULL;
        }
        return;

    case CEF_OP_AND:
        cef_operand(e, n->a, ev, &a);

        if (!cef_expr_eval_true(&a)) {
            cef_set_bool(out, 0);
            return;
        }

        cef_operand(e, n->b, ev, &b);
        cef_set_bool(out, cef_expr_eval_true(&b));
        return;

    case CEF_OP_OR:
        cef_operand(e, n->a, ev, &a);

        if (cef_expr_eval_true(&a)) {
            cef_set_bool(out, 1);
            return;
        }

        cef_operand(e, n->b, ev, &b);
        cef_set_bool(out, cef_expr_eval_true(&b));
        return;

    case CEF_OP_CALL:
        cef_eval_call(e, n, ev, out);
        return;

    default:
        break;
    }

    /* binary operators and functions */

    cef_operand(e, n->a, ev, &a);

    switch ((cef_op_t) n->op) {

    case CEF_OP_EQ:
    case CEF_OP_NE:
        cef_operand(e, n->b, ev, &b);

        if (CEF_NODE(e, n->a)->op == CEF_OP_NULL
            || CEF_NODE(e, n->b)->op == CEF_OP_NULL)
        {
            ok = (a.t == CEF_V_NULL && b.t == CEF_V_NULL);
            cef_set_bool(out, n->op == CEF_OP_EQ ? ok : !ok);
            return;
        }

        if (a.t == CEF_V_NULL || b.t == CEF_V_NULL || a.t != b.t
            || a.t > CEF_V_STR)
        {
            cef_set_bool(out, 0);
            return;
        }

        ok = cef_val_eq(&a, &b);
        cef_set_bool(out, n->op == CEF_OP_EQ ? ok : !ok);
        return;

    case CEF_OP_LT:
    case CEF_OP_LE:
    case CEF_OP_GT:
    case CEF_OP_GE:
        cef_operand(e, n->b, ev, &b);

        if (a.t != CEF_V_NUM || b.t != CEF_V_NUM) {
            cef_set_bool(out, 0);
            return;
        }

        cef_set_bool(out, cef_num_cmp((cef_op_t) n->op, a.u.num, b.u.num));
        return;

    case CEF_OP_IN:
        if (a.t != CEF_V_STR && a.t != CEF_V_NUM) {
            cef_set_bool(out, 0);
            return;
        }

        cef_operand(e, n->b, ev, &b);
        cef_set_bool(out, b.t != CEF_V_STR && cef_contains(e, ev, &b, &a));
        return;

    case CEF_OP_CONTAINS:
        cef_operand(e, n->b, ev, &b);
        cef_set_bool(out, cef_contains(e, ev, &a, &b));
        return;

    case CEF_OP_STARTS_WITH:
    case CEF_OP_ENDS_WITH:
        cef_operand(e, n->b, ev, &b);

        if (a.t != CEF_V_STR || b.t != CEF_V_STR || b.u.s.len > a.u.s.len) {
            cef_set_bool(out, 0);
            return;
        }

        if (b.u.s.len == 0) {
            cef_set_bool(out, 1);
            return;
        }

        cef_set_bool(out, memcmp(n->op == CEF_OP_STARTS_WITH
                                 ? a.u.s.data
                                 : a.u.s.data + a.u.s.len - b.u.s.len,
                                 b.u.s.data, b.u.s.len) == 0);
        return;

    case CEF_OP_MATCHES:
        if (a.t != CEF_V_STR || n->u.re == NULL) {
            cef_set_bool(out, 0);
            return;
        }

        /* the JIT entry skips pcre2_match()'s checks: the subject is a
           valid span and PCRE2_MATCH_INVALID_UTF copes with any bytes */

        rc = PCRE2_ERROR_JIT_STACKLIMIT;

        if (n->jit) {
            rc = pcre2_jit_match(n->u.re,
                                 (PCRE2_SPTR) (a.u.s.len ? a.u.s.data : ""),
                                 a.u.s.len, 0, 0, ev->md, ev->mctx);
        }

        /* not JIT-compiled, or the JIT's 32 KiB stack was too small for a
           long subject: the interpreter, within the depth and heap
           limits */

        if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
            rc = pcre2_match(n->u.re,
                             (PCRE2_SPTR) (a.u.s.len ? a.u.s.data : ""),
                             a.u.s.len, 0, PCRE2_NO_JIT, ev->md, ev->mctx);
        }

        /* a limit reached is no match, like any other failure */

        if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT
            || rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT)
        {
            ev->limited++;
        }

        cef_set_bool(out, rc >= 0);
        return;

    case CEF_OP_ADD:
    case CEF_OP_SUB:
    case CEF_OP_MUL:
    case CEF_OP_DIV:
        cef_operand(e, n->b, ev, &b);

        if (a.t != CEF_V_NUM || b.t != CEF_V_NUM) {
            out->t = CEF_V_NULL;
            return;
        }

        switch ((cef_op_t) n->op) {
        case CEF_OP_ADD: d = a.u.num + b.u.num; break;
        case CEF_OP_SUB: d = a.u.num - b.u.num; break;
        case CEF_OP_MUL: d = a.u.num * b.u.num; break;
        default:
            if (b.u.num == 0) {
                out->t = CEF_V_NULL;
                return;
            }
            d = a.u.num / b.u.num;
        }

        cef_set_num(out, d);
        return;

    case CEF_OP_DAYS_SINCE:
    case CEF_OP_HOURS_SINCE:
        d = cef_since(ev, &a, &ok);

        if (!ok) {
            out->t = CEF_V_NULL;
            return;
        }

        cef_set_num(out, d / (n->op == CEF_OP_DAYS_SINCE ? 86400 : 3600));
        return;

    case CEF_OP_LEN:
        switch (a.t) {
        case CEF_V_STR:
            cef_set_num(out, (double) a.u.s.len);
            return;
        case CEF_V_ARRAY:
        case CEF_V_MAP:
            cef_set_num(out, (double) a.u.v->u.seq.n);
            return;
        case CEF_V_LIST:
            k = 0;

            for (i = CEF_NODE(e, a.u.list)->a; i >= 0;
                 i = CEF_NODE(e, i)->next)
            {
                k++;
            }
            cef_set_num(out, (double) k);
            return;
        default:
            out->t = CEF_V_NULL;
            return;
        }

    case CEF_OP_LOWER:
        if (a.t != CEF_V_STR
            || a.u.s.len > CEF_EXPR_SCRATCH - ev->scratch_used)
        {
            out->t = CEF_V_NULL;
            return;
        }

        p = ev->scratch + ev->scratch_used;

        for (k = 0; k < a.u.s.len; k++) {
            p[k] = a.u.s.data[k];
            if (p[k] >= 'A' && p[k] <= 'Z') {
                p[k] |= 0x20;
            }
        }

        ev->scratch_used += a.u.s.len;
        out->t = CEF_V_STR;
        out->u.s.data = p;
        out->u.s.len = a.u.s.len;
        return;

    default:
        out->t = CEF_V_NULL;
        return;
    }
}


static int cef_test_node(const cef_expr_t *e, const cef_node_t *n,
    int32_t i, cef_expr_eval_t *ev);


/*
 * "Is node i true?", the question a condition asks: and/or and numeric
 * comparisons are answered without building values; everything else
 * goes through cef_operand().  A memoised comparison (cef_expr_symtab.c) is
 * answered from the evaluation's memo after its first evaluation.
 */
static int
cef_test(const cef_expr_t *e, int32_t i, cef_expr_eval_t *ev)
{
    const cef_node_t  *n = CEF_NODE(e, i);
    uint32_t           m;
    int                r;

    m = n->memo - 1;

    if (m < ev->nmemos) {
        if (ev->memo_seen[m] == ev->gen) {
            return ev->memo_val[m];
        }

        r = cef_test_node(e, n, i, ev);
        ev->memo_val[m] = (uint8_t) r;
        ev->memo_seen[m] = ev->gen;
        return r;
    }

    return cef_test_node(e, n, i, ev);
}


static int
cef_test_node(const cef_expr_t *e, const cef_node_t *n, int32_t i,
    cef_expr_eval_t *ev)
{
    cef_val_t  a, b;

    switch ((cef_op_t) n->op) {

    case CEF_OP_AND:
        return cef_test(e, n->a, ev) && cef_test(e, n->b, ev);

    case CEF_OP_OR:
        return cef_test(e, n->a, ev) || cef_test(e, n->b, ev);

    case CEF_OP_LT:
    case CEF_OP_LE:
    case CEF_OP_GT:
    case CEF_OP_GE:
        cef_operand(e, n->a, ev, &a);
        if (a.t != CEF_V_NUM) {
            return 0;
        }

        cef_operand(e, n->b, ev, &b);
        if (b.t != CEF_V_NUM) {
            return 0;
        }

        return cef_num_cmp((cef_op_t) n->op, a.u.num, b.u.num);

    case CEF_OP_NUM:
    case CEF_OP_STR:
    case CEF_OP_REF:
        cef_operand(e, i, ev, &a);
        return cef_expr_eval_true(&a);

    default:
        cef_eval_node(e, i, ev, &a);
        return cef_expr_eval_true(&a);
    }
}


int
cef_expr_match(const cef_expr_t *e, cef_expr_eval_t *ev)
{
    ev->scratch_used = 0;

    return cef_test(e, e->root, ev);
}


void
cef_expr_value(const cef_expr_t *e, cef_expr_eval_t *ev, cef_value_t *out)
{
    cef_val_t  v;

    ev->scratch_used = 0;
    cef_operand(e, e->root, ev, &v);
    cef_expr_eval_to_value(&v, out);

    /* a whole number that a double holds exactly is an integer */

    if (out->type == CEF_VAL_FLOAT && out->u.f == floor(out->u.f)
        && fabs(out->u.f) <= 9007199254740992.0)
    {
        out->type = CEF_VAL_INT;
        out->u.i = (int64_t) v.u.num;
    }
}
