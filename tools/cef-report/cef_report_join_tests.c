/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * The join proper (cef_report_join.h): goal events sorted by visitor, each
 * visitor's events of a goal matched against the first exposures chained
 * from the visitor, into per-arm sufficient statistics and a time series.
 */

#include <string.h>

#include "cef_report_join_int.h"


#define PERIODS_MAX  100


/* one selected experiment */
typedef struct {
    exp_t       *e;
    int64_t      base, period;
    size_t       nper;
    double      *n;             /* narms */
    double      *n_series;      /* nper x narms, per period */
    size_t       nver;          /* a bandit's weights versions, or 0 */
    uint32_t    *rank;          /* e->vers index -> period (ascending) */
    double      *n_ver;         /* nver x narms */
} sel_t;


/* one selected experiment x goal */
typedef struct {
    double      *conv, *sum, *ss;      /* narms each */
    double      *conv_series;          /* nper x narms, per period */
    double      *conv_ver, *sum_ver, *ss_ver;   /* nver x narms each */
} acc_t;


static int
cmp_exp(const void *a, const void *b)
{
    const exp_t  *x = *(exp_t *const *) a, *y = *(exp_t *const *) b;
    int           c;

    if ((c = strcmp(x->name, y->name)) != 0
        || (c = strcmp(x->salt, y->salt)) != 0)
    {
        return c;
    }
    return strcmp(x->rules, y->rules);
}


static int
cmp_goal(const void *a, const void *b)
{
    return strcmp((*(goal_t *const *) a)->name, (*(goal_t *const *) b)->name);
}


/*
 * By visitor id, goal, time, value: the sums of values are then added in
 * one order whatever the order of the lines, the files and the threads
 * (a floating-point sum depends on it in its last digits).
 */
static int
cmp_event(const void *a, const void *b)
{
    const event_t  *x = a, *y = b;

    if (x->v != y->v) {
        return strcmp(x->v->id, y->v->id);
    }
    if (x->goal != y->goal) {
        return x->goal < y->goal ? -1 : 1;
    }
    if (x->t != y->t) {
        return x->t < y->t ? -1 : 1;
    }
    return (x->value > y->value) - (x->value < y->value);
}


static int64_t
floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}


/*
 * The series' periods: the shortest "round" length (1 s ... 1 day, 1 week,
 * 30 days, then multiples of 30 days) that covers [tmin, tmax] in at most
 * PERIODS_MAX periods aligned to multiples of it (UTC days for a day).
 */
static void
periods(int64_t tmin, int64_t tmax, sel_t *s)
{
    static const int64_t  round[] = {
        1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200,
        10800, 21600, 43200, 86400, 172800, 604800, 2592000
    };
    size_t                i;
    int64_t               p = 0;

    for (i = 0; i < sizeof(round) / sizeof(round[0]); i++) {
        p = round[i];
        if (floor_div(tmax, p) - floor_div(tmin, p) + 1 <= PERIODS_MAX) {
            break;
        }
    }
    while (floor_div(tmax, p) - floor_div(tmin, p) + 1 > PERIODS_MAX) {
        p += 2592000;
    }
    s->period = p;
    s->base = floor_div(tmin, p) * p;
    s->nper = (size_t) (floor_div(tmax, p) - floor_div(tmin, p) + 1);
}


static size_t
period_of(const sel_t *s, int64_t t)
{
    int64_t  k = floor_div(t - s->base, s->period);

    if (k < 0) {
        return 0;
    }
    return (size_t) k < s->nper ? (size_t) k : s->nper - 1;
}


/* each experiment's periods: from its first exposure to the data's end */
static int
set_periods(cef_report_join_t *j, sel_t *sels, size_t nsel,
    const int32_t *sel_of)
{
    int64_t     *first;
    exposure_t  *x;
    size_t       i, k;

    first = malloc((nsel + 1) * sizeof(int64_t));
    if (first == NULL) {
        return -1;
    }
    for (i = 0; i < nsel; i++) {
        first[i] = j->tmax;
    }
    for (k = 0; k < j->nx; k++) {
        x = &j->x[k];
        if (sel_of[x->exp] >= 0 && x->t < first[sel_of[x->exp]]) {
            first[sel_of[x->exp]] = x->t;
        }
    }
    for (i = 0; i < nsel; i++) {
        periods(first[i], j->tmax, &sels[i]);
    }
    free(first);
    return 0;
}


/* a bandit's versions, ranked by number: the order of its periods */
static int
set_versions(sel_t *s)
{
    const exp_t  *e = s->e;
    size_t        k, m, r;

    s->nver = 0;
    if (!e->bandit || e->nvers == 0) {
        return 0;
    }
    s->rank = malloc(e->nvers * sizeof(uint32_t));
    if (s->rank == NULL) {
        return -1;
    }
    for (k = 0; k < e->nvers; k++) {
        for (m = 0, r = 0; m < e->nvers; m++) {
            r += e->vers[m].version < e->vers[k].version;
        }
        s->rank[k] = (uint32_t) r;
    }
    s->nver = e->nvers;
    return 0;
}


/* a bandit's periods (cef_report_periods_t), one per weights version */
static int
make_periods(cef_report_test_t *t, const sel_t *s, const acc_t *a,
    cef_report_metric_t metric)
{
    cef_report_periods_t  *p = &t->periods;
    const ver_t           *v;
    size_t                 na = s->e->narms, nv = s->nver, k, i, r, c;

    if (nv == 0) {
        return 0;
    }
    p->version = calloc(nv, sizeof(uint64_t));
    p->weights = calloc(nv * na, sizeof(double));
    p->n = calloc(nv * na, sizeof(double));
    p->sum = calloc(nv * na, sizeof(double));
    p->sum_squares = calloc(nv * na, sizeof(double));
    if (p->version == NULL || p->weights == NULL || p->n == NULL
        || p->sum == NULL || p->sum_squares == NULL)
    {
        return -1;
    }
    p->nperiods = nv;
    for (k = 0; k < nv; k++) {
        v = &s->e->vers[k];
        r = s->rank[k];
        p->version[r] = v->version;
        for (i = 0; i < v->n; i++) {
            p->weights[r * na + v->arm[i]] = v->bp[i] / 10000;
        }
        for (i = 0; i < na; i++) {
            c = r * na + i;
            p->n[c] = s->n_ver[k * na + i];
            if (a == NULL) {
                continue;
            }
            if (metric == CEF_REPORT_BINOMIAL) {
                p->sum[c] = a->conv_ver[k * na + i];
                p->sum_squares[c] = p->sum[c];
            } else {
                p->sum[c] = a->sum_ver[k * na + i];
                p->sum_squares[c] = a->ss_ver[k * na + i];
            }
        }
    }
    return 0;
}


/* the test of one experiment x goal x metric, its arrays copied */
static int
make_test(cef_report_test_t *t, const sel_t *s, const acc_t *a,
    const goal_t *g, cef_report_metric_t metric)
{
    exp_t   *e = s->e;
    size_t   i, k, na = e->narms;
    double   cn, cc;

    memset(t, 0, sizeof(cef_report_test_t));
    t->experiment = strdup(e->name);
    t->salt = strdup(e->salt);
    t->rules = strdup(e->rules);
    t->slot = strdup(e->slot);
    t->goal = g ? strdup(g->name) : NULL;
    t->metric = metric;
    t->narms = na;
    t->arms = calloc(na, sizeof(cef_report_arm_t));
    t->series.nperiods = s->nper;
    t->series.end = calloc(s->nper, sizeof(int64_t));
    t->series.n = calloc(s->nper * na, sizeof(double));
    t->series.converters = calloc(s->nper * na, sizeof(double));
    if (t->experiment == NULL || t->salt == NULL || t->rules == NULL
        || t->slot == NULL || (g && t->goal == NULL) || t->arms == NULL
        || t->series.end == NULL || t->series.n == NULL
        || t->series.converters == NULL)
    {
        return -1;
    }

    /* a holdout: control visitors were held back from the `would` offer
       (or the split is a holdout's alone) */
    t->holdout = e->would;
    if (na == 2 && strcmp(e->arms[0], "control") == 0
        && strcmp(e->arms[1], "treatment") == 0)
    {
        t->holdout = 1;
    }

    t->control = 0;
    for (i = 0; i < na; i++) {
        cef_report_arm_t  *arm = &t->arms[i];

        if ((arm->name = strdup(e->arms[i])) == NULL) {
            return -1;
        }
        if (strcmp(arm->name, "control") == 0) {
            t->control = i;
        }
        arm->weight = e->weight[i];
        arm->n = s->n[i];
        if (metric == CEF_REPORT_BINOMIAL) {
            arm->sum = a ? a->conv[i] : 0;
            arm->sum_squares = arm->sum;
        } else {
            arm->sum = a ? a->sum[i] : 0;
            arm->sum_squares = a ? a->ss[i] : 0;
        }
    }

    for (i = 0; i < na; i++) {
        cn = cc = 0;
        for (k = 0; k < s->nper; k++) {
            cn += s->n_series[k * na + i];
            cc += a ? a->conv_series[k * na + i] : 0;
            t->series.n[k * na + i] = cn;
            t->series.converters[k * na + i] = cc;
        }
    }
    for (k = 0; k < s->nper; k++) {
        t->series.end[k] = s->base + (int64_t) (k + 1) * s->period;
    }
    return make_periods(t, s, a, metric);
}


/* a visitor's events of one goal, ev[0, n), against their exposures */
static void
convert(cef_report_join_t *j, const event_t *ev, size_t n, sel_t *sels,
    const int32_t *sel_of, acc_t *accs, size_t goal_sel, size_t ngsel,
    int64_t window)
{
    exposure_t  *x;
    sel_t       *s;
    acc_t       *a;
    uint32_t     i;
    size_t       k, cnt;
    double       sum;
    int64_t      first;

    for (i = ev[0].v->head; i != NONE; i = x->next) {
        x = &j->x[i];
        if (sel_of[x->exp] < 0) {
            continue;
        }
        cnt = 0;
        sum = 0;
        first = 0;
        for (k = 0; k < n; k++) {
            if (ev[k].t < x->t || (window > 0 && ev[k].t - x->t > window)) {
                continue;
            }
            if (cnt++ == 0) {
                first = ev[k].t;
            }
            sum += ev[k].value;
        }
        if (cnt == 0) {
            continue;
        }
        s = &sels[sel_of[x->exp]];
        a = &accs[(size_t) sel_of[x->exp] * ngsel + goal_sel];
        a->conv[x->arm] += 1;
        a->sum[x->arm] += sum;
        a->ss[x->arm] += sum * sum;
        if (s->nver > 0) {
            a->conv_ver[x->ver * s->e->narms + x->arm] += 1;
            a->sum_ver[x->ver * s->e->narms + x->arm] += sum;
            a->ss_ver[x->ver * s->e->narms + x->arm] += sum * sum;
        }
        a->conv_series[period_of(s, first) * s->e->narms + x->arm] += 1;
    }
}


int
cef_report_join_tests(cef_report_join_t *j, const cef_report_join_opts_t *o,
    cef_report_test_t **tests, size_t *ntests)
{
    exp_t               **exps = NULL;
    goal_t              **gsel = NULL, *g, pseudo;
    sel_t                *sels = NULL;
    acc_t                *accs = NULL;
    int32_t              *sel_of = NULL, *gsel_of = NULL;
    double               *pool = NULL, *d;
    cef_report_test_t    *out = NULL;
    size_t                nsel = 0, ngsel = 0, i, k, m, nout = 0, need;
    size_t                na, np, nv;
    exposure_t           *x;
    int                   rc = -1;

    *tests = NULL;
    *ntests = 0;
    memset(&pseudo, 0, sizeof(pseudo));

    /* the experiments, in a stable order */
    exps = malloc((j->nexps + 1) * sizeof(exp_t *));
    sel_of = malloc((j->nexps + 1) * sizeof(int32_t));
    gsel = malloc((j->ngoals + 1) * sizeof(goal_t *));
    gsel_of = malloc((j->ngoals + 1) * sizeof(int32_t));
    if (exps == NULL || sel_of == NULL || gsel == NULL || gsel_of == NULL) {
        goto done;
    }
    for (i = 0; i < j->nexps; i++) {
        sel_of[i] = -1;
        if (o->experiment == NULL || strcmp(j->exps[i]->name, o->experiment)
                                     == 0)
        {
            exps[nsel++] = j->exps[i];
        }
    }
    qsort(exps, nsel, sizeof(exp_t *), cmp_exp);

    /* the goals: the one asked for (even if nobody reached it), else every
       goal of the data; without any, one test per experiment without a
       goal, so that its exposures (and SRM) are still reported */
    for (i = 0; i < j->ngoals; i++) {
        gsel_of[i] = -1;
        if (o->goal == NULL || strcmp(j->goals[i]->name, o->goal) == 0) {
            gsel[ngsel++] = j->goals[i];
        }
    }
    if (o->goal != NULL && ngsel == 0) {
        pseudo.name = (char *) o->goal;        /* nobody reached it */
        gsel[ngsel++] = &pseudo;
    }
    qsort(gsel, ngsel, sizeof(goal_t *), cmp_goal);
    for (i = 0; i < ngsel; i++) {
        if (gsel[i] != &pseudo) {
            gsel_of[gsel[i]->id] = (int32_t) i;
        }
    }

    sels = calloc(nsel + 1, sizeof(sel_t));
    if (sels == NULL) {
        goto done;
    }
    for (i = 0; i < nsel; i++) {
        sels[i].e = exps[i];
        sel_of[exps[i]->id] = (int32_t) i;
    }
    if (set_periods(j, sels, nsel, sel_of) != 0) {
        goto done;
    }

    /* one pool of doubles for every count */
    need = 0;
    for (i = 0; i < nsel; i++) {
        if (set_versions(&sels[i]) != 0) {
            goto done;
        }
        na = sels[i].e->narms;
        np = sels[i].nper;
        nv = sels[i].nver;
        need += na + np * na + nv * na
                + ngsel * (3 * na + np * na + 3 * nv * na);
    }
    pool = calloc(need + 1, sizeof(double));
    accs = calloc(nsel * ngsel + 1, sizeof(acc_t));
    if (pool == NULL || accs == NULL) {
        goto done;
    }
    d = pool;
    for (i = 0; i < nsel; i++) {
        na = sels[i].e->narms;
        np = sels[i].nper;
        sels[i].n = d;
        d += na;
        sels[i].n_series = d;
        d += np * na;
        nv = sels[i].nver;
        sels[i].n_ver = d;
        d += nv * na;
        for (m = 0; m < ngsel; m++) {
            acc_t  *a = &accs[i * ngsel + m];

            a->conv = d;
            a->sum = d + na;
            a->ss = d + 2 * na;
            d += 3 * na;
            a->conv_series = d;
            d += np * na;
            a->conv_ver = d;
            a->sum_ver = d + nv * na;
            a->ss_ver = d + 2 * nv * na;
            d += 3 * nv * na;
        }
    }

    /* exposed visitors */
    for (k = 0; k < j->nx; k++) {
        x = &j->x[k];
        if (sel_of[x->exp] >= 0) {
            sel_t  *s = &sels[sel_of[x->exp]];

            s->n[x->arm] += 1;
            s->n_series[period_of(s, x->t) * s->e->narms + x->arm] += 1;
            if (s->nver > 0) {
                s->n_ver[x->ver * s->e->narms + x->arm] += 1;
            }
        }
    }

    /* converting visitors: each visitor's events of a goal at once */
    if (j->nev > 0) {
        qsort(j->ev, j->nev, sizeof(event_t), cmp_event);
    }
    for (k = 0; k < j->nev; k = m) {
        for (m = k + 1; m < j->nev && j->ev[m].v == j->ev[k].v
                        && j->ev[m].goal == j->ev[k].goal; m++)
        {
            ;
        }
        if (gsel_of[j->ev[k].goal] >= 0) {
            convert(j, &j->ev[k], m - k, sels, sel_of, accs,
                    (size_t) gsel_of[j->ev[k].goal], ngsel, o->window);
        }
    }

    /* the tests */
    out = calloc(nsel * (2 * ngsel + 1) + 1, sizeof(cef_report_test_t));
    if (out == NULL) {
        goto done;
    }
    for (i = 0; i < nsel; i++) {
        if (ngsel == 0) {
            if (make_test(&out[nout++], &sels[i], NULL, NULL,
                          CEF_REPORT_BINOMIAL) != 0)
            {
                goto done;
            }
            continue;
        }
        for (m = 0; m < ngsel; m++) {
            g = gsel[m];
            if (make_test(&out[nout++], &sels[i], &accs[i * ngsel + m], g,
                          CEF_REPORT_BINOMIAL) != 0
                || (g->values
                    && make_test(&out[nout++], &sels[i],
                                 &accs[i * ngsel + m], g, CEF_REPORT_MEAN)
                       != 0))
            {
                goto done;
            }
        }
    }
    *tests = out;
    *ntests = nout;
    out = NULL;
    rc = 0;

done:
    cef_report_join_tests_free(out, nout);
    free(exps);
    free(sel_of);
    free(gsel);
    free(gsel_of);
    for (i = 0; sels != NULL && i < nsel; i++) {
        free(sels[i].rank);
    }
    free(sels);
    free(accs);
    free(pool);
    return rc;
}


void
cef_report_join_tests_free(cef_report_test_t *tests, size_t n)
{
    size_t  i, k;

    if (tests == NULL) {
        return;
    }
    for (i = 0; i < n; i++) {
        for (k = 0; k < tests[i].narms; k++) {
            free(tests[i].arms[k].name);
        }
        free(tests[i].arms);
        free(tests[i].experiment);
        free(tests[i].salt);
        free(tests[i].rules);
        free(tests[i].slot);
        free(tests[i].goal);
        free(tests[i].series.end);
        free(tests[i].series.n);
        free(tests[i].series.converters);
        free(tests[i].periods.version);
        free(tests[i].periods.weights);
        free(tests[i].periods.n);
        free(tests[i].periods.sum);
        free(tests[i].periods.sum_squares);
    }
    free(tests);
}
