/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * bandit: a slot whose arms' shares follow the results (issue 19).
 *
 *     goals:
 *       purchase: {min: 0, max: 100000}
 *     slots:
 *       hero:
 *         strategy: bandit
 *         goal: purchase             # a declared goal (required)
 *         metric: conversion         # or value (the goal needs min/max)
 *         arms: [hero-a, hero-b]     # default: every offer of the slot
 *         experiment: hero-bandit    # default: the slot's name
 *         salt: hero-bandit          # default: the experiment's name
 *
 * Weights are published per (experiment, salt) by `cef-report bandit` and
 * cef-sync (docs/formats.md, "Weights records"); the engine hands this
 * plugin the current ones (req->weights) and it keeps the arms' basis
 * points per version (per worker: rebuilt only when the version changes).
 * Record arms the slot lacks are ignored; slot arms the record lacks get
 * the record's smallest weight; then everything is renormalised to 10000
 * over the slot's arms.  Nothing published: uniform (version 0).
 *
 * A visitor is assigned an arm by a draw over the current weights, among
 * the arms whose offers matched for them (eligible; their weights
 * renormalised), and keeps it while the experiment runs: the assignment
 * goes into the signed plugin-state cookie (cef_bandit, one entry per
 * experiment: hash(experiment, salt) "." hash(arm)), so a weight change
 * never flips a returning shopper's offer.  A kept arm that is not
 * eligible on this request is redrawn among the eligible ones for this
 * request only (recorded as redrawn; the cookie keeps the assignment).
 * The draw is the visitor's bucket for the salt over the cumulative
 * weights, so a visitor without the cookie (no signing secret, cookies
 * refused) gets the same arm for as long as the weights stay the same;
 * without a visitor id it is a per-worker pseudo-random draw.
 *
 * The experiment hook describes the arms with a uniform split (what is
 * configured); select reports the live split, the weights version and
 * whether the arm was kept (cef_plugin_pick_t), which the decision
 * record carries.  The arm hook ($cef_goal) gives the kept arm from the
 * cookie, else the draw over the full set of arms.
 *
 * The cookie is written from the end hook: the rule-set state exists only
 * for rule files with a bandit slot (slot_configure runs before configure
 * and counts them).  Assignments of one decision go from select to end
 * through a per-process buffer, cleared in begin: a worker decides one
 * request at a time.
 */

#include <stdio.h>
#include <unistd.h>

#include "cef_plugin.h"


#define BANDIT_MAX_ARMS    CEF_PLUGIN_MAX_ARMS
#define BANDIT_ENTRY_LEN   17            /* "XXXXXXXX.XXXXXXXX" */
#define BANDIT_MAX_KEPT    22            /* entries in 400 bytes */
#define BANDIT_MAX_AGE     (90 * 86400)  /* a kept arm, seconds */
#define BANDIT_NO_ARM      0xff


typedef enum {
    BANDIT_CONVERSION = 0,
    BANDIT_VALUE
} bandit_metric_t;


/* the live weights, per worker, per version */
typedef struct {
    uint64_t     version;                /* 0: uniform */
    int64_t      created_at;
    uint32_t     bp[BANDIT_MAX_ARMS];    /* per arm, summing to 10000 */
} bandit_live_t;


typedef struct {
    char           *experiment;
    char           *salt;
    size_t          salt_len;
    char           *goal;
    bandit_metric_t metric;
    uint32_t        exp_hash;            /* of experiment "\0" salt */
    uint32_t        narms;
    const char     *arm[BANDIT_MAX_ARMS];     /* offer names */
    uint32_t        arm_hash[BANDIT_MAX_ARMS];
    uint32_t        uniform[BANDIT_MAX_ARMS]; /* the configured split */
    uint32_t        noffers;
    bandit_live_t   live;                /* written at request time */
    uint8_t         arm_of[];            /* per offer index: arm or
                                            BANDIT_NO_ARM */
} bandit_t;


/* one decision's new assignments, select -> end */
static struct {
    uint32_t  n;
    uint32_t  exp[BANDIT_MAX_KEPT];
    uint32_t  arm[BANDIT_MAX_KEPT];
} bandit_pending;

/* bandit slots configured since the last configure (one rule file) */
static uint32_t  bandit_slots_seen;

/* id-less draws: xorshift64, seeded per worker at its first use */
static uint64_t  bandit_rng;


static uint32_t
bandit_hash(const char *a, size_t alen, const char *b, size_t blen)
{
    uint32_t  h = 2166136261u;
    size_t    i;

    for (i = 0; i < alen; i++) {
        h = (h ^ (uint8_t) a[i]) * 16777619u;
    }

    h = (h ^ 0) * 16777619u;

    for (i = 0; i < blen; i++) {
        h = (h ^ (uint8_t) b[i]) * 16777619u;
    }

    return h;
}


static int
bandit_fail(cef_plugin_error_t *err, const cef_conf_t *at, const char *fmt,
    const char *arg)
{
    err->at = at;
    snprintf(err->msg, sizeof(err->msg), fmt, arg);
    return CEF_PLUGIN_ERROR;
}


static char *
bandit_strdup(const char *s)
{
    size_t  n = strlen(s) + 1;
    char   *p = malloc(n);

    if (p) {
        memcpy(p, s, n);
    }

    return p;
}


/* basis points of total shared by n arms, largest remainder: sums to
   exactly CEF_PLUGIN_BUCKETS */
static void
bandit_normalise(const double *w, uint32_t n, uint32_t *bp)
{
    uint32_t  i, j, sum = 0, best;
    double    total = 0, x, rem[BANDIT_MAX_ARMS];

    for (i = 0; i < n; i++) {
        total += w[i];
    }

    for (i = 0; i < n; i++) {
        x = total > 0 ? w[i] * CEF_PLUGIN_BUCKETS / total
                      : (double) CEF_PLUGIN_BUCKETS / n;
        bp[i] = (uint32_t) x;
        rem[i] = x - bp[i];
        sum += bp[i];
    }

    for (j = sum; j < CEF_PLUGIN_BUCKETS; j++) {
        best = 0;
        for (i = 1; i < n; i++) {
            if (rem[i] > rem[best]) {
                best = i;
            }
        }
        bp[best]++;
        rem[best] = -1;
    }
}


/* --- configuration -------------------------------------------------------- */

static int
bandit_add_arm(bandit_t *b, const cef_plugin_rules_t *rules, uint32_t offer)
{
    const char  *name = rules->offers[offer].name;

    if (b->arm_of[offer] != BANDIT_NO_ARM) {
        return 1;
    }

    if (b->narms == BANDIT_MAX_ARMS) {
        return -1;
    }

    b->arm_of[offer] = (uint8_t) b->narms;
    b->arm[b->narms] = name;
    b->arm_hash[b->narms] = bandit_hash(name, strlen(name), "", 0);
    b->narms++;

    return 0;
}


static int
bandit_configure(const cef_plugin_rules_t *rules, uint32_t slot,
    const cef_conf_t *conf, void **state, cef_plugin_error_t *err)
{
    uint32_t           i, j;
    int                has_value, rc;
    bandit_t          *b;
    double             one[BANDIT_MAX_ARMS];
    const cef_conf_t  *c, *arms, *goal, *metric, *x, *salt;

    b = calloc(1, sizeof(bandit_t) + rules->noffers + 1);
    if (b == NULL) {
        return bandit_fail(err, NULL, "%s", "out of memory");
    }

    *state = b;
    b->noffers = rules->noffers;
    memset(b->arm_of, BANDIT_NO_ARM, rules->noffers + 1);

    for (i = 0; i < conf->n; i++) {
        c = &conf->items[i];

        if (strcmp(c->key, "arms") != 0 && strcmp(c->key, "goal") != 0
            && strcmp(c->key, "metric") != 0
            && strcmp(c->key, "experiment") != 0
            && strcmp(c->key, "salt") != 0)
        {
            return bandit_fail(err, c, "unknown key '%s' (bandit takes "
                               "goal:, metric:, arms:, experiment:, salt:)",
                               c->key);
        }

        if (strcmp(c->key, "arms") != 0
            && (c->type != CEF_CONF_SCALAR || c->value[0] == '\0'))
        {
            return bandit_fail(err, c, "%s: must be a non-empty text",
                               c->key);
        }
    }

    /* the goal it learns from */

    goal = cef_conf_get(conf, "goal");
    if (goal == NULL) {
        return bandit_fail(err, NULL, "slot '%s': a bandit needs goal: (a "
                           "goal declared under goals:)", rules->slots[slot]);
    }

    if (rules->goal == NULL || !rules->goal(rules, goal->value, &has_value)) {
        return bandit_fail(err, goal, "goal '%s' is not declared under "
                           "goals:", goal->value);
    }

    metric = cef_conf_get(conf, "metric");

    if (metric == NULL || strcmp(metric->value, "conversion") == 0) {
        b->metric = BANDIT_CONVERSION;

    } else if (strcmp(metric->value, "value") == 0) {
        if (!has_value) {
            return bandit_fail(err, metric, "metric: value needs a goal with "
                               "a value (min: and max: under goals: %s)",
                               goal->value);
        }
        b->metric = BANDIT_VALUE;

    } else {
        return bandit_fail(err, metric, "metric must be conversion or value, "
                           "not '%s'", metric->value);
    }

    /* the experiment's identity */

    x = cef_conf_get(conf, "experiment");
    salt = cef_conf_get(conf, "salt");

    b->goal = bandit_strdup(goal->value);
    b->experiment = bandit_strdup(x ? x->value : rules->slots[slot]);
    b->salt = bandit_strdup(salt ? salt->value : b->experiment
                                 ? b->experiment : "");
    if (b->goal == NULL || b->experiment == NULL || b->salt == NULL) {
        return bandit_fail(err, NULL, "%s", "out of memory");
    }

    b->salt_len = strlen(b->salt);
    b->exp_hash = bandit_hash(b->experiment, strlen(b->experiment), b->salt,
                              b->salt_len);

    /* the arms: offers of this slot */

    arms = cef_conf_get(conf, "arms");

    if (arms == NULL) {
        for (i = 0; i < rules->noffers; i++) {
            if (rules->offers[i].slot_id == slot
                && bandit_add_arm(b, rules, i) < 0)
            {
                return bandit_fail(err, NULL, "slot '%s' has more than 33 "
                                   "offers: name the bandit's arms:",
                                   rules->slots[slot]);
            }
        }

    } else {
        if (arms->type != CEF_CONF_LIST || arms->n == 0) {
            return bandit_fail(err, arms, "%s", "arms: must be a list of "
                               "offer names");
        }

        for (i = 0; i < arms->n; i++) {
            c = &arms->items[i];

            if (c->type != CEF_CONF_SCALAR) {
                return bandit_fail(err, c, "%s", "arms: must be a list of "
                                   "offer names");
            }

            for (j = 0; j < rules->noffers; j++) {
                if (strcmp(rules->offers[j].name, c->value) == 0) {
                    break;
                }
            }

            if (j == rules->noffers || rules->offers[j].slot_id != slot) {
                err->at = c;
                snprintf(err->msg, sizeof(err->msg), "arms: no offer '%s' in "
                         "slot '%s'", c->value, rules->slots[slot]);
                return CEF_PLUGIN_ERROR;
            }

            rc = bandit_add_arm(b, rules, j);

            if (rc > 0) {
                return bandit_fail(err, c, "arms: '%s' is listed twice",
                                   c->value);
            }

            if (rc < 0) {
                return bandit_fail(err, c, "arms: at most 33, '%s' is one "
                                   "too many", c->value);
            }
        }
    }

    if (b->narms < 2) {
        return bandit_fail(err, arms, "slot '%s': a bandit needs at least two "
                           "arms (offers of the slot)", rules->slots[slot]);
    }

    for (i = 0; i < b->narms; i++) {
        one[i] = 1;
    }

    bandit_normalise(one, b->narms, b->uniform);
    memcpy(b->live.bp, b->uniform, sizeof(b->uniform));

    bandit_slots_seen++;

    return CEF_PLUGIN_OK;
}


static void
bandit_slot_free(void *state)
{
    bandit_t  *b = state;

    if (b) {
        free(b->experiment);
        free(b->salt);
        free(b->goal);
        free(b);
    }
}


/* the rule-set state: only where a slot is a bandit (for the end hook) */
static int
bandit_rules_configure(const cef_plugin_rules_t *rules, const cef_conf_t *conf,
    void **state, cef_plugin_error_t *err)
{
    static int  active;
    uint32_t    n = bandit_slots_seen;

    (void) rules;

    bandit_slots_seen = 0;

    if (conf) {
        return bandit_fail(err, conf, "%s", "bandit is configured per slot "
                           "(slots: NAME: strategy: bandit), not under "
                           "plugins:");
    }

    *state = n ? &active : NULL;

    return CEF_PLUGIN_OK;
}


static void
bandit_rules_free(void *state)
{
    (void) state;
}


static int
bandit_experiment(const void *state, cef_plugin_experiment_t *out)
{
    const bandit_t  *b = state;

    out->name = b->experiment;
    out->salt = b->salt;
    out->narms = b->narms;
    out->arms = b->arm;
    out->split = b->uniform;

    return 1;
}


/* --- request time --------------------------------------------------------- */

/*
 * The live weights into lv: unchanged while the published version is the
 * same (the usual case: one comparison), rebuilt by arm name when it
 * changed, uniform when nothing is published.
 */
static void
bandit_weights(const bandit_t *b, const cef_plugin_req_t *req,
    bandit_live_t *lv)
{
    uint32_t              i, j, min = CEF_PLUGIN_BUCKETS + 1, found = 0;
    size_t                len;
    double                w[BANDIT_MAX_ARMS];
    cef_plugin_weights_t  pw;

    if (req->weights == NULL
        || !req->weights(req, b->experiment, b->salt, &pw)
        || pw.version == 0)
    {
        if (lv->version != 0) {
            memcpy(lv->bp, b->uniform, sizeof(b->uniform));
            lv->version = 0;
            lv->created_at = 0;
        }
        return;
    }

    if (pw.version == lv->version) {
        return;
    }

    for (i = 0; i < b->narms; i++) {
        w[i] = -1;
        len = strlen(b->arm[i]);

        for (j = 0; j < pw.narms; j++) {
            if (pw.arms[j].len == len
                && memcmp(pw.arms[j].data, b->arm[i], len) == 0)
            {
                w[i] = pw.bp[j];
                found++;
                if (pw.bp[j] < min) {
                    min = pw.bp[j];
                }
                break;
            }
        }
    }

    for (i = 0; i < b->narms; i++) {
        if (w[i] < 0) {
            w[i] = found ? min : 1;        /* an arm the record lacks */
        }
    }

    bandit_normalise(w, b->narms, lv->bp);
    lv->version = pw.version;
    lv->created_at = pw.created_at;
}


/* the arm of draw b (0..9999) over the arms with eligible[i] set, their
   weights renormalised; all of them weighing 0: uniform among them */
static uint32_t
bandit_draw(const bandit_t *b, const bandit_live_t *lv, const uint8_t *elig,
    uint32_t draw)
{
    uint32_t  i, total = 0, n = 0, last = BANDIT_NO_ARM;
    uint64_t  at;

    for (i = 0; i < b->narms; i++) {
        if (elig[i]) {
            total += lv->bp[i];
            n++;
            last = i;
        }
    }

    if (n == 0) {
        return BANDIT_NO_ARM;
    }

    if (total == 0) {
        at = (uint64_t) draw * n / CEF_PLUGIN_BUCKETS;
        for (i = 0; i < b->narms; i++) {
            if (elig[i] && at-- == 0) {
                return i;
            }
        }
        return last;
    }

    at = (uint64_t) draw * total / CEF_PLUGIN_BUCKETS;

    for (i = 0; i < b->narms; i++) {
        if (!elig[i]) {
            continue;
        }
        if (at < lv->bp[i]) {
            return i;
        }
        at -= lv->bp[i];
    }

    return last;
}


static uint32_t
bandit_random(int64_t now)
{
    if (bandit_rng == 0) {
        bandit_rng = ((uint64_t) getpid() << 32 ^ (uint64_t) now)
                     * 0x9e3779b97f4a7c15ULL | 1;
    }

    bandit_rng ^= bandit_rng << 13;
    bandit_rng ^= bandit_rng >> 7;
    bandit_rng ^= bandit_rng << 17;

    return (uint32_t) ((bandit_rng >> 11) % CEF_PLUGIN_BUCKETS);
}


static int
bandit_hex(const char *p, uint32_t *out)
{
    uint32_t  v = 0;
    int       i;
    char      c;

    for (i = 0; i < 8; i++) {
        c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') {
            v |= (uint32_t) (c - '0');
        } else if (c >= 'a' && c <= 'f') {
            v |= (uint32_t) (c - 'a' + 10);
        } else {
            return -1;
        }
    }

    *out = v;
    return 0;
}


/*
 * The arm hash kept for exp in the state: "E.A~E.A~..." (8 hex digits
 * each).  Malformed entries are skipped.
 *
 * @return 1 and *arm, or 0.
 */
static int
bandit_kept(cef_span_t st, uint32_t exp, uint32_t *arm)
{
    size_t    i;
    uint32_t  e, a;

    for (i = 0; i + BANDIT_ENTRY_LEN <= st.len; i += BANDIT_ENTRY_LEN + 1) {
        if (st.data[i + 8] == '.'
            && bandit_hex(st.data + i, &e) == 0
            && bandit_hex(st.data + i + 9, &a) == 0
            && e == exp)
        {
            *arm = a;
            return 1;
        }
    }

    return 0;
}


/* the visitor's kept arm in b (an index), or BANDIT_NO_ARM */
static uint32_t
bandit_kept_arm(const bandit_t *b, const cef_plugin_req_t *req)
{
    cef_span_t  st;
    uint32_t    h, i;

    if (req->state_get == NULL || !req->state_get(req, &st)
        || !bandit_kept(st, b->exp_hash, &h))
    {
        return BANDIT_NO_ARM;
    }

    for (i = 0; i < b->narms; i++) {
        if (b->arm_hash[i] == h) {
            return i;
        }
    }

    return BANDIT_NO_ARM;            /* an arm since removed: draw again */
}


static int
bandit_select(void *state, const cef_plugin_req_t *req,
    const cef_plugin_cand_t *cands, uint32_t n, cef_plugin_pick_t *pick)
{
    bandit_t  *b = state;
    uint32_t   i, a, kept, draw, cand[BANDIT_MAX_ARMS];
    uint8_t    elig[BANDIT_MAX_ARMS];

    bandit_weights(b, req, &b->live);

    memset(elig, 0, b->narms);

    for (i = n; i-- > 0; ) {            /* the first candidate per arm */
        a = b->arm_of[cands[i].offer->index];
        if (a != BANDIT_NO_ARM) {
            elig[a] = 1;
            cand[a] = i;
        }
    }

    draw = req->bucket(req, b->salt, b->salt_len);
    pick->bucket = draw;

    if (draw == CEF_PLUGIN_NONE) {
        draw = bandit_random(req->now);
    }

    kept = bandit_kept_arm(b, req);

    if (kept != BANDIT_NO_ARM && elig[kept]) {
        a = kept;
        pick->sticky = CEF_PLUGIN_STICKY_YES;

    } else {
        a = bandit_draw(b, &b->live, elig, draw);

        if (a == BANDIT_NO_ARM) {
            pick->bucket = CEF_PLUGIN_NONE;
            pick->pick = 0;              /* no arm matched: as priority */
            return CEF_PLUGIN_OK;
        }

        if (kept != BANDIT_NO_ARM) {
            pick->sticky = CEF_PLUGIN_STICKY_REDRAWN;

        } else {
            pick->sticky = CEF_PLUGIN_STICKY_NO;

            if (bandit_pending.n < BANDIT_MAX_KEPT) {
                bandit_pending.exp[bandit_pending.n] = b->exp_hash;
                bandit_pending.arm[bandit_pending.n] = b->arm_hash[a];
                bandit_pending.n++;
            }
        }
    }

    pick->pick = cand[a];
    pick->variant = b->arm[a];
    pick->split = b->live.bp;
    pick->weights_version = b->live.version;

    return CEF_PLUGIN_OK;
}


static uint32_t
bandit_arm(const void *state, const cef_plugin_req_t *req)
{
    const bandit_t  *b = state;
    bandit_live_t    lv;
    uint32_t         a, draw;
    uint8_t          all[BANDIT_MAX_ARMS];

    a = bandit_kept_arm(b, req);
    if (a != BANDIT_NO_ARM) {
        return a;
    }

    draw = req->bucket(req, b->salt, b->salt_len);
    if (draw == CEF_PLUGIN_NONE) {
        return CEF_PLUGIN_NONE;
    }

    lv = b->live;
    bandit_weights(b, req, &lv);
    memset(all, 1, b->narms);

    a = bandit_draw(b, &lv, all, draw);

    return a == BANDIT_NO_ARM ? CEF_PLUGIN_NONE : a;
}


static int
bandit_begin(void *state, const cef_plugin_req_t *req, uint8_t *blocked)
{
    (void) state;
    (void) req;
    (void) blocked;

    bandit_pending.n = 0;

    return CEF_PLUGIN_OK;
}


/* the state: the entries kept for other experiments, then this decision's
   new ones; the oldest dropped beyond BANDIT_MAX_KEPT */
static void
bandit_end(void *state, const cef_plugin_req_t *req, const uint32_t *shown,
    uint32_t nslots)
{
    cef_span_t  st = { "", 0 };
    uint32_t    e, a, i, k, nold = 0, skip;
    uint32_t    old_e[BANDIT_MAX_KEPT], old_a[BANDIT_MAX_KEPT];
    size_t      p, len = 0;
    char        buf[BANDIT_MAX_KEPT * (BANDIT_ENTRY_LEN + 1)];

    (void) state;
    (void) shown;
    (void) nslots;

    if (bandit_pending.n == 0) {
        return;
    }

    (void) req->state_get(req, &st);

    for (p = 0; p + BANDIT_ENTRY_LEN <= st.len && nold < BANDIT_MAX_KEPT;
         p += BANDIT_ENTRY_LEN + 1)
    {
        if (st.data[p + 8] != '.' || bandit_hex(st.data + p, &e) != 0
            || bandit_hex(st.data + p + 9, &a) != 0)
        {
            continue;
        }

        for (k = 0; k < bandit_pending.n; k++) {
            if (bandit_pending.exp[k] == e) {
                break;
            }
        }

        if (k == bandit_pending.n) {
            old_e[nold] = e;
            old_a[nold] = a;
            nold++;
        }
    }

    skip = nold + bandit_pending.n > BANDIT_MAX_KEPT
           ? nold + bandit_pending.n - BANDIT_MAX_KEPT : 0;

    for (i = skip; i < nold; i++) {
        len += (size_t) snprintf(buf + len, sizeof(buf) - len, "%s%08x.%08x",
                                 len ? "~" : "", old_e[i], old_a[i]);
    }

    for (i = 0; i < bandit_pending.n; i++) {
        len += (size_t) snprintf(buf + len, sizeof(buf) - len, "%s%08x.%08x",
                                 len ? "~" : "", bandit_pending.exp[i],
                                 bandit_pending.arm[i]);
    }

    bandit_pending.n = 0;

    (void) req->state_set(req, buf, len, BANDIT_MAX_AGE);
}


const cef_plugin_t  cef_plugin_bandit = {
    CEF_PLUGIN_ABI_VERSION,
    "bandit",
    "arms whose shares follow published weights (cef-report bandit), "
    "sticky per visitor",
    CEF_PLUGIN_ALL_CANDIDATES,
    NULL,
    NULL, 0,
    bandit_configure, bandit_slot_free,
    bandit_select,
    bandit_rules_configure, bandit_rules_free,
    bandit_begin, bandit_end,
    bandit_experiment, bandit_arm
};
