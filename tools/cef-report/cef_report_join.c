/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Exposures and conversions (cef_report_join.h).
 *
 * Memory: one uthash entry per distinct visitor id (the id is stored once,
 * in an arena), one 24-byte first exposure per visitor per experiment
 * (chained from the visitor, so the join walks only the experiments a
 * converting visitor saw), one 32-byte event per goal record.  1M visitors
 * in 3 experiments with 1M goal records: ~250 MB (make bench-report).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cef_report_join_int.h"


#define ARENA_CHUNK  (1024 * 1024)

#define GROW(arr, cap, need)                                                \
    cef_report_parse_grow((void **) &(arr), &(cap), (need), sizeof(*(arr)))


static void *
arena_alloc(cef_report_join_t *j, size_t size)
{
    chunk_t  *c = j->arena;
    size_t    cap;
    void     *p;

    size = (size + 7) & ~(size_t) 7;
    if (c == NULL || c->cap - c->used < size) {
        cap = size > ARENA_CHUNK ? size : ARENA_CHUNK;
        c = malloc(sizeof(chunk_t) + cap);
        if (c == NULL) {
            return NULL;
        }
        c->next = j->arena;
        c->used = 0;
        c->cap = cap;
        j->arena = c;
    }
    p = c->data + c->used;
    c->used += size;
    return p;
}


cef_report_join_t *
cef_report_join_new(void)
{
    return calloc(1, sizeof(cef_report_join_t));
}


void
cef_report_join_free(cef_report_join_t *j)
{
    chunk_t  *c, *next;
    size_t    i, k;

    if (j == NULL) {
        return;
    }
    HASH_CLEAR(hh, j->visitors);
    HASH_CLEAR(hh, j->exps_by_key);
    HASH_CLEAR(hh, j->goals_by_name);
    for (i = 0; i < j->nexps; i++) {
        for (k = 0; k < j->exps[i]->narms; k++) {
            free(j->exps[i]->arms[k]);
        }
        for (k = 0; k < j->exps[i]->nvers; k++) {
            free(j->exps[i]->vers[k].arm);
            free(j->exps[i]->vers[k].bp);
        }
        free(j->exps[i]->vers);
        free(j->exps[i]->arms);
        free(j->exps[i]->weight);
        free(j->exps[i]->key);
        free(j->exps[i]->slot);
        free(j->exps[i]);
    }
    for (i = 0; i < j->ngoals; i++) {
        free(j->goals[i]->name);
        free(j->goals[i]);
    }
    for (c = j->arena; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    free(j->exps);
    free(j->goals);
    free(j->x);
    free(j->ev);
    free(j->key);
    free(j);
}


static visitor_t *
visitor_get(cef_report_join_t *j, const char *id)
{
    visitor_t  *v;
    size_t      len = strlen(id);

    HASH_FIND(hh, j->visitors, id, len, v);
    if (v != NULL) {
        return v;
    }
    v = arena_alloc(j, sizeof(visitor_t) + len + 1);
    if (v == NULL) {
        return NULL;
    }
    memset(v, 0, sizeof(visitor_t));
    memcpy(v->id, id, len + 1);
    v->head = NONE;
    HASH_ADD_KEYPTR(hh, j->visitors, v->id, len, v);
    j->st.visitors++;
    return v;
}


static int
arm_add(exp_t *e, const char *name, double weight)
{
    char  *copy;

    if (GROW(e->arms, e->cap, e->narms + 1) != 0
        || (copy = strdup(name)) == NULL)
    {
        return -1;
    }
    e->weight = realloc(e->weight, e->cap * sizeof(double));
    if (e->weight == NULL) {
        free(copy);
        return -1;
    }
    e->arms[e->narms] = copy;
    e->weight[e->narms++] = weight;
    return 0;
}


/* the arm's index, added (weight unknown) if the split did not name it */
static uint32_t
arm_index(exp_t *e, const char *name)
{
    size_t  i;

    for (i = 0; i < e->narms; i++) {
        if (strcmp(e->arms[i], name) == 0) {
            return (uint32_t) i;
        }
    }
    if (arm_add(e, name, -1) != 0) {
        return NONE;
    }
    return (uint32_t) (e->narms - 1);
}


/*
 * The index of weights version `version` in e, made if new; its split
 * (names[i], bp[i], n of them) is taken from the first record that has
 * one.  NONE: out of memory.
 */
static uint32_t
ver_get(exp_t *e, uint64_t version, const char *const *names,
    const double *bp, size_t n)
{
    ver_t   *v = NULL;
    size_t   i;

    if (e->last_ver < e->nvers && e->vers[e->last_ver].version == version) {
        v = &e->vers[e->last_ver];
    }
    for (i = 0; v == NULL && i < e->nvers; i++) {
        if (e->vers[i].version == version) {
            v = &e->vers[i];
            e->last_ver = i;
        }
    }
    if (v == NULL) {
        if (GROW(e->vers, e->vers_cap, e->nvers + 1) != 0) {
            return NONE;
        }
        v = &e->vers[e->nvers];
        memset(v, 0, sizeof(ver_t));
        v->version = version;
        e->last_ver = e->nvers++;
    }
    if (v->n == 0 && n > 0) {
        v->arm = malloc(n * sizeof(uint32_t));
        v->bp = malloc(n * sizeof(double));
        if (v->arm == NULL || v->bp == NULL) {
            free(v->arm);
            free(v->bp);
            v->arm = NULL;
            v->bp = NULL;
            return NONE;
        }
        for (i = 0; i < n; i++) {
            if ((v->arm[i] = arm_index(e, names[i])) == NONE) {
                return NONE;    /* v->n stays 0: freed with e */
            }
            v->bp[i] = bp[i];
        }
        v->n = n;
    }
    return (uint32_t) e->last_ver;
}


/* the experiment (rules, name, salt), made (without arms) if new */
static exp_t *
exp_get(cef_report_join_t *j, const char *rules, const char *name,
    const char *salt, const char *slot, int *made)
{
    exp_t   *e;
    size_t   lr = strlen(rules), ln = strlen(name);
    size_t   ls = strlen(salt), len = lr + ln + ls + 2;

    *made = 0;
    if (GROW(j->key, j->key_cap, len + 1) != 0) {
        return NULL;
    }
    memcpy(j->key, rules, lr + 1);
    memcpy(j->key + lr + 1, name, ln + 1);
    memcpy(j->key + lr + ln + 2, salt, ls + 1);

    HASH_FIND(hh, j->exps_by_key, j->key, len, e);
    if (e != NULL) {
        return e;
    }

    e = calloc(1, sizeof(exp_t));
    if (e == NULL || (e->key = malloc(len + 1)) == NULL
        || (e->slot = strdup(slot)) == NULL
        || GROW(j->exps, j->exps_cap, j->nexps + 1) != 0)
    {
        if (e != NULL) {
            free(e->key);
            free(e->slot);
        }
        free(e);
        return NULL;
    }
    memcpy(e->key, j->key, len + 1);
    e->keylen = len;
    e->rules = e->key;
    e->name = e->key + lr + 1;
    e->salt = e->key + lr + ln + 2;
    e->id = (uint32_t) j->nexps;
    j->exps[j->nexps++] = e;
    HASH_ADD_KEYPTR(hh, j->exps_by_key, e->key, len, e);
    j->st.experiments++;
    *made = 1;
    return e;
}


static goal_t *
goal_get(cef_report_join_t *j, const char *name)
{
    goal_t  *g;
    size_t   len = strlen(name);

    HASH_FIND(hh, j->goals_by_name, name, len, g);
    if (g != NULL) {
        return g;
    }
    g = calloc(1, sizeof(goal_t));
    if (g == NULL || (g->name = strdup(name)) == NULL
        || GROW(j->goals, j->goals_cap, j->ngoals + 1) != 0)
    {
        if (g != NULL) {
            free(g->name);
        }
        free(g);
        return NULL;
    }
    g->id = (uint32_t) j->ngoals;
    j->goals[j->ngoals++] = g;
    HASH_ADD_KEYPTR(hh, j->goals_by_name, g->name, len, g);
    return g;
}


/* the visitor was in arm `arm` of e at t: keep the first exposure */
static int
expose(cef_report_join_t *j, exp_t *e, uint32_t arm, uint32_t ver,
    visitor_t *v, int64_t t)
{
    exposure_t  *x;
    uint32_t     i;

    for (i = v->head; i != NONE; i = j->x[i].next) {
        x = &j->x[i];
        if (x->exp == e->id) {
            /* the earliest; two arms at the same second (a record made
               up, or two rule files with one hash) never depend on the
               order the files were read in */
            if (t < x->t || (t == x->t && arm != x->arm
                             && strcmp(e->arms[arm], e->arms[x->arm]) < 0))
            {
                x->t = t;
                x->arm = arm;
                x->ver = ver;
            }
            return 0;
        }
    }

    if (GROW(j->x, j->x_cap, j->nx + 1) != 0) {
        return -1;
    }
    x = &j->x[j->nx];
    x->t = t;
    x->exp = e->id;
    x->arm = arm;
    x->ver = ver;
    x->next = v->head;
    v->head = (uint32_t) j->nx++;
    return 0;
}


static int
event(cef_report_join_t *j, visitor_t *v, uint32_t goal, int64_t t,
    int has_value, double value)
{
    event_t  *ev;

    if (GROW(j->ev, j->ev_cap, j->nev + 1) != 0) {
        return -1;
    }
    ev = &j->ev[j->nev++];
    ev->v = v;
    ev->t = t;
    ev->goal = goal;
    ev->has_value = (uint32_t) has_value;
    ev->value = has_value ? value : 0;
    return 0;
}


static int
add_exposure(cef_report_join_t *j, const cef_report_record_t *r,
    size_t slot)
{
    const cef_report_rec_slot_t  *s = &r->slots[slot];
    const char                   *salt;
    exp_t                        *e;
    visitor_t                    *v;
    uint32_t                      arm, ver;
    size_t                        i;
    int                           made;
    const char                   *names[SPLIT_MAX];
    double                        bp[SPLIT_MAX];

    j->st.exposures++;
    if (r->who == NULL) {
        return 0;             /* nobody is bucketed without an id */
    }
    salt = s->salt ? s->salt : s->experiment;

    /* the same slot of the next record is most often the same
       experiment: three string compares instead of a key and a hash */
    e = slot < LAST_MAX ? j->last[slot] : NULL;
    made = 0;
    if (e == NULL || strcmp(e->rules, r->rules) != 0
        || strcmp(e->name, s->experiment) != 0 || strcmp(e->salt, salt) != 0)
    {
        e = exp_get(j, r->rules, s->experiment, salt, s->name, &made);
        if (e == NULL) {
            return -1;
        }
        if (slot < LAST_MAX) {
            j->last[slot] = e;
        }
    }
    /* the arms and weights of the split, in the rule file's order */
    for (i = 0; made && i < s->nsplit; i++) {
        if (arm_add(e, r->arms[s->split + i].name,
                    r->arms[s->split + i].bp / 10000) != 0)
        {
            return -1;
        }
    }
    if ((arm = arm_index(e, s->variant)) == NONE
        || (v = visitor_get(j, r->who)) == NULL)
    {
        return -1;
    }
    if (s->offer == NULL) {
        e->would = 1;
    }

    /* the weights version this exposure happened under, and the live
       weights it gave (`split`); an experiment that is no bandit has
       only version 0 */
    if (s->has_version) {
        e->bandit = 1;
    }
    ver = (uint32_t) e->last_ver;
    if (e->last_ver >= e->nvers
        || e->vers[e->last_ver].version != s->weights_version
        || (e->vers[e->last_ver].n == 0 && s->nsplit > 0))
    {
        for (i = 0; i < s->nsplit && i < SPLIT_MAX; i++) {
            names[i] = r->arms[s->split + i].name;
            bp[i] = r->arms[s->split + i].bp;
        }
        ver = ver_get(e, s->has_version ? s->weights_version : 0, names, bp,
                      i);
        if (ver == NONE) {
            return -1;
        }
    }
    return expose(j, e, arm, ver, v, r->t);
}


static int
add_goal(cef_report_join_t *j, const cef_report_record_t *r)
{
    goal_t     *g;
    visitor_t  *v;

    if ((g = goal_get(j, r->goal)) == NULL) {
        return -1;
    }
    if (r->has_value) {
        g->values = 1;
    }
    if (r->who == NULL) {
        j->st.goals_anonymous++;
        return 0;
    }
    if ((v = visitor_get(j, r->who)) == NULL) {
        return -1;
    }
    return event(j, v, g->id, r->t, r->has_value, r->value);
}


int
cef_report_join_add(cef_report_join_t *j, const cef_report_record_t *r)
{
    const cef_report_rec_slot_t  *s;
    size_t                        i;

    if (!j->any || r->t > j->tmax) {
        j->tmax = r->t;
        j->any = 1;
    }

    if (r->kind == CEF_REPORT_REC_GOAL) {
        j->st.goals++;
        return add_goal(j, r);
    }

    j->st.impressions++;
    for (i = 0; i < r->nslots; i++) {
        s = &r->slots[i];

        /* an exposure: the experiment showed its arm's offer, or held
           back the offer a control visitor would have seen */
        if (s->experiment == NULL || s->variant == NULL
            || (s->offer == NULL
                && (s->would == NULL || strcmp(s->variant, "control") != 0)))
        {
            continue;
        }
        if (add_exposure(j, r, i) != 0) {
            return -1;
        }
    }
    return 0;
}


void
cef_report_join_stats(const cef_report_join_t *j,
    cef_report_join_stats_t *st)
{
    *st = j->st;
}


int
cef_report_join_merge(cef_report_join_t *into, cef_report_join_t *from)
{
    exp_t       *e, *f;
    goal_t      *g;
    visitor_t   *v, *w, *tmp;
    exposure_t  *x;
    ver_t       *fv;
    uint32_t    *exp_of = NULL, *goal_of = NULL, **arm_of = NULL, i;
    uint32_t   **ver_of = NULL;
    const char  *names[SPLIT_MAX];
    size_t       k, a;
    int          made, rc = -1;

    exp_of = calloc(from->nexps + 1, sizeof(uint32_t));
    arm_of = calloc(from->nexps + 1, sizeof(uint32_t *));
    goal_of = calloc(from->ngoals + 1, sizeof(uint32_t));
    ver_of = calloc(from->nexps + 1, sizeof(uint32_t *));
    if (exp_of == NULL || arm_of == NULL || goal_of == NULL
        || ver_of == NULL)
    {
        goto done;
    }

    /* experiments and their arms, goals: by name */
    for (k = 0; k < from->nexps; k++) {
        f = from->exps[k];
        e = exp_get(into, f->rules, f->name, f->salt, f->slot, &made);
        arm_of[k] = calloc(f->narms + 1, sizeof(uint32_t));
        if (e == NULL || arm_of[k] == NULL) {
            goto done;
        }
        for (a = 0; a < f->narms; a++) {
            if (made && arm_add(e, f->arms[a], f->weight[a]) != 0) {
                goto done;
            }
            arm_of[k][a] = arm_index(e, f->arms[a]);
            if (arm_of[k][a] == NONE) {
                goto done;
            }
        }
        e->would |= f->would;
        e->bandit |= f->bandit;
        ver_of[k] = calloc(f->nvers + 1, sizeof(uint32_t));
        if (ver_of[k] == NULL) {
            goto done;
        }
        for (a = 0; a < f->nvers; a++) {
            fv = &f->vers[a];
            for (i = 0; i < fv->n && i < SPLIT_MAX; i++) {
                names[i] = f->arms[fv->arm[i]];
            }
            ver_of[k][a] = ver_get(e, fv->version, names, fv->bp, i);
            if (ver_of[k][a] == NONE) {
                goto done;
            }
        }
        exp_of[k] = e->id;
    }
    for (k = 0; k < from->ngoals; k++) {
        if ((g = goal_get(into, from->goals[k]->name)) == NULL) {
            goto done;
        }
        g->values |= from->goals[k]->values;
        goal_of[k] = g->id;
    }

    /* each visitor's first exposures; its events follow it */
    HASH_ITER(hh, from->visitors, v, tmp) {
        if ((w = visitor_get(into, v->id)) == NULL) {
            goto done;
        }
        for (i = v->head; i != NONE; i = x->next) {
            x = &from->x[i];
            if (expose(into, into->exps[exp_of[x->exp]],
                       arm_of[x->exp][x->arm], ver_of[x->exp][x->ver], w,
                       x->t) != 0)
            {
                goto done;
            }
        }
        v->merged = w;
    }
    for (k = 0; k < from->nev; k++) {
        event_t  *ev = &from->ev[k];

        if (event(into, ev->v->merged, goal_of[ev->goal], ev->t, (int) ev->has_value,
                  ev->value) != 0)
        {
            goto done;
        }
    }

    if (from->any && (!into->any || from->tmax > into->tmax)) {
        into->tmax = from->tmax;
        into->any = 1;
    }
    into->st.impressions += from->st.impressions;
    into->st.goals += from->st.goals;
    into->st.exposures += from->st.exposures;
    into->st.goals_anonymous += from->st.goals_anonymous;
    rc = 0;

done:
    for (k = 0; arm_of != NULL && k < from->nexps; k++) {
        free(arm_of[k]);
    }
    for (k = 0; ver_of != NULL && k < from->nexps; k++) {
        free(ver_of[k]);
    }
    free(ver_of);
    free(arm_of);
    free(exp_of);
    free(goal_of);
    return rc;
}
