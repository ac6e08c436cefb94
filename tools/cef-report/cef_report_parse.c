/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * One log line -> one record (cef_report_parse.h): yajl's events drive a
 * small state machine that keeps the members cef-report reads and skips
 * the rest.
 */

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "cef_report_parse.h"


#define DEPTH_MAX  64


/* what a container is */
typedef enum {
    C_IGNORE = 0,
    C_TOP,                     /* the line's (or the record's) object */
    C_SLOTS,                   /* record.slots */
    C_SLOT,                    /* record.slots.NAME */
    C_SPLIT                    /* record.slots.NAME.split */
} ctx_t;

/* the members read, at the top and in a slot */
typedef enum {
    K_OTHER = 0,
    K_V, K_T, K_RULES, K_VISITOR, K_PROFILE, K_GOAL, K_VALUE, K_DECISION,
    K_SLOTS,
    K_OFFER, K_VARIANT, K_WOULD, K_EXPERIMENT, K_SALT, K_SPLIT,
    K_WEIGHTS_VERSION
} key_t_;

typedef enum { V_NULL, V_BOOL, V_NUMBER, V_STRING, V_MAP, V_ARRAY } vtype_t;


struct cef_report_parser_s {
    /* strings of the current line: reserved before each parse so that no
       pointer into it moves (unescaped strings never outgrow the input) */
    char                    *buf;
    size_t                   len, cap;

    int                      depth;
    ctx_t                    ctx[DEPTH_MAX];
    key_t_                   key[DEPTH_MAX];
    const char              *name[DEPTH_MAX];    /* C_SLOTS, C_SPLIT keys */

    /* what the object at the top held */
    int                      has_v, has_t, has_slots;
    double                   v;
    const char              *decision, *goal_str;
    int                      decision_seen, goal_seen;

    cef_report_record_t      rec;
    size_t                   slots_cap, arms_cap;

    yajl_handle              h[2];        /* lines, records */
    yajl_handle              cur;         /* the one parsing */
    int                      complete;    /* the object has ended */
    size_t                   end;         /* ... at this offset */

    char                     why[256];
    int                      failed;
};


static key_t_
top_key(const unsigned char *s, size_t len)
{
#define IS(lit)  (len == sizeof(lit) - 1 && memcmp(s, lit, len) == 0)
    if (IS("v")) return K_V;
    if (IS("t")) return K_T;
    if (IS("rules")) return K_RULES;
    if (IS("visitor")) return K_VISITOR;
    if (IS("profile")) return K_PROFILE;
    if (IS("goal")) return K_GOAL;
    if (IS("value")) return K_VALUE;
    if (IS("decision")) return K_DECISION;
    if (IS("slots")) return K_SLOTS;
    return K_OTHER;
}


static key_t_
slot_key(const unsigned char *s, size_t len)
{
    if (IS("offer")) return K_OFFER;
    if (IS("variant")) return K_VARIANT;
    if (IS("would")) return K_WOULD;
    if (IS("experiment")) return K_EXPERIMENT;
    if (IS("salt")) return K_SALT;
    if (IS("split")) return K_SPLIT;
    if (IS("weights_version")) return K_WEIGHTS_VERSION;
    return K_OTHER;
#undef IS
}


static int
fail(cef_report_parser_t *p, const char *fmt, ...)
{
    va_list  ap;

    if (!p->failed) {
        va_start(ap, fmt);
        vsnprintf(p->why, sizeof(p->why), fmt, ap);
        va_end(ap);
        p->failed = 1;
    }
    return 0;    /* stops yajl */
}


static const char *
keep(cef_report_parser_t *p, const unsigned char *s, size_t len)
{
    char  *d = p->buf + p->len;

    memcpy(d, s, len);
    d[len] = '\0';
    p->len += len + 1;
    return d;
}


static int
number(const unsigned char *s, size_t len, double *out)
{
    char    tmp[64], *end;
    double  d;
    size_t  i;

    /* the common case, t and split shares: a small non-negative integer */
    if (len > 0 && len <= 15) {
        for (i = 0, d = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            d = d * 10 + (s[i] - '0');
        }
        if (i == len) {
            *out = d;
            return 0;
        }
    }

    if (len >= sizeof(tmp)) {
        return -1;
    }
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    errno = 0;
    d = strtod(tmp, &end);
    if (*end != '\0' || !isfinite(d)) {
        return -1;
    }
    *out = d;
    return 0;
}


static const char *
vtype_name(vtype_t t)
{
    static const char *names[] = {
        "null", "a boolean", "a number", "a string", "an object", "an array"
    };
    return names[t];
}


static int
top_value(cef_report_parser_t *p, key_t_ k, vtype_t t,
    const unsigned char *s, size_t len)
{
    double        d;
    const char  **dst;

    switch (k) {

    case K_V:
        if (t != V_NUMBER || number(s, len, &p->v) != 0) {
            return fail(p, "v is %s, not a number", vtype_name(t));
        }
        p->has_v = 1;
        return 1;

    case K_T:
        if (t != V_NUMBER || number(s, len, &d) != 0 || d != floor(d)
            || fabs(d) > 9e15)
        {
            return fail(p, "t is not a time in unix seconds");
        }
        p->rec.t = (int64_t) d;
        p->has_t = 1;
        return 1;

    case K_RULES:
        if (t != V_STRING) {
            return fail(p, "rules is %s, not a string", vtype_name(t));
        }
        p->rec.rules = keep(p, s, len);
        return 1;

    case K_VISITOR:
    case K_PROFILE:
        dst = k == K_VISITOR ? &p->rec.visitor : &p->rec.profile;
        if (t == V_NULL) {
            *dst = NULL;
            return 1;
        }
        if (t != V_STRING) {
            return fail(p, "%s is %s, not a string",
                        k == K_VISITOR ? "visitor" : "profile",
                        vtype_name(t));
        }
        /* kept after a byte that tells the two apart (rec->who) */
        p->buf[p->len++] = k == K_VISITOR ? 'v' : 'p';
        *dst = len ? keep(p, s, len) : NULL;
        return 1;

    case K_GOAL:
    case K_DECISION:
        if (t == V_MAP) {
            /* "decision":$cef_decision with escape=none: the record's
               members are read as if they were the line's */
            return 1;
        }
        if (t == V_NULL) {
            s = (const unsigned char *) "";
            len = 0;
        } else if (t != V_STRING) {
            return fail(p, "%s is %s, not a string",
                        k == K_GOAL ? "goal" : "decision", vtype_name(t));
        }
        if (k == K_GOAL) {
            p->goal_str = keep(p, s, len);
            p->goal_seen = 1;
        } else {
            p->decision = keep(p, s, len);
            p->decision_seen = 1;
        }
        return 1;

    case K_VALUE:
        if (t == V_NULL) {
            p->rec.has_value = 0;
            return 1;
        }
        if (t != V_NUMBER || number(s, len, &p->rec.value) != 0) {
            return fail(p, "value is %s, not a finite number",
                        vtype_name(t));
        }
        p->rec.has_value = 1;
        return 1;

    case K_SLOTS:
        if (t != V_MAP) {
            return fail(p, "slots is %s, not an object", vtype_name(t));
        }
        p->has_slots = 1;
        return 1;

    default:
        return 1;
    }
}


static int
slot_value(cef_report_parser_t *p, key_t_ k, vtype_t t,
    const unsigned char *s, size_t len)
{
    cef_report_rec_slot_t  *slot = &p->rec.slots[p->rec.nslots - 1];
    const char            **dst;
    double                  d;

    switch (k) {
    case K_OFFER:      dst = &slot->offer; break;
    case K_VARIANT:    dst = &slot->variant; break;
    case K_WOULD:      dst = &slot->would; break;
    case K_EXPERIMENT: dst = &slot->experiment; break;
    case K_SALT:       dst = &slot->salt; break;
    case K_SPLIT:
        if (t != V_MAP) {
            return fail(p, "slot %s: split is %s, not an object",
                        slot->name, vtype_name(t));
        }
        slot->split = p->rec.narms;
        slot->nsplit = 0;
        return 1;
    case K_WEIGHTS_VERSION:
        /* a bandit's weights version (0: uniform, no record yet) */
        if (t == V_NULL) {
            slot->has_version = 0;
            return 1;
        }
        if (t != V_NUMBER || number(s, len, &d) != 0 || d < 0
            || d != floor(d) || d > 9007199254740992.0)
        {
            return fail(p, "slot %s: weights_version is not a whole number "
                        "from 0", slot->name);
        }
        slot->has_version = 1;
        slot->weights_version = (uint64_t) d;
        return 1;
    default:
        return 1;
    }

    if (t == V_NULL) {
        *dst = NULL;
        return 1;
    }
    if (t != V_STRING) {
        return fail(p, "slot %s: %s is %s, not a string", slot->name,
                    k == K_OFFER ? "offer" : k == K_VARIANT ? "variant"
                    : k == K_WOULD ? "would"
                    : k == K_EXPERIMENT ? "experiment" : "salt",
                    vtype_name(t));
    }
    *dst = keep(p, s, len);
    return 1;
}


int
cef_report_parse_grow(void **arr, size_t *cap, size_t need, size_t size)
{
    void    *n;
    size_t   c;

    if (need <= *cap) {
        return 0;
    }
    c = *cap ? *cap * 2 : 8;
    while (c < need) {
        c *= 2;
    }
    n = realloc(*arr, c * size);
    if (n == NULL) {
        return -1;
    }
    *arr = n;
    *cap = c;
    return 0;
}


static int
split_value(cef_report_parser_t *p, vtype_t t, const unsigned char *s,
    size_t len)
{
    cef_report_rec_slot_t  *slot = &p->rec.slots[p->rec.nslots - 1];
    cef_report_rec_arm_t   *arm;
    double                  bp;

    if (t != V_NUMBER || number(s, len, &bp) != 0 || bp < 0 || bp > 10000) {
        return fail(p, "slot %s: split of arm %s is not 0 to 10000",
                    slot->name, p->name[p->depth]);
    }
    if (cef_report_parse_grow((void **) &p->rec.arms, &p->arms_cap, p->rec.narms + 1,
             sizeof(*arm)) != 0)
    {
        return fail(p, "out of memory");
    }
    arm = &p->rec.arms[p->rec.narms++];
    arm->name = p->name[p->depth];
    arm->bp = bp;
    slot->nsplit++;
    return 1;
}


/* a value (or the start of a container) of the current member */
static int
value(cef_report_parser_t *p, vtype_t t, const unsigned char *s, size_t len)
{
    int     d = p->depth;
    ctx_t   c = d > 0 && d < DEPTH_MAX ? p->ctx[d] : C_IGNORE;
    ctx_t   child = C_IGNORE;
    int     rc = 1;

    if (d == 0 && p->complete) {
        return fail(p, "more than one JSON value");
    }
    if (d == 0 && t != V_MAP) {
        return fail(p, "not a JSON object");
    }

    switch (c) {
    case C_TOP:
        rc = top_value(p, p->key[d], t, s, len);
        if (t == V_MAP && p->key[d] == K_SLOTS) {
            child = C_SLOTS;
        } else if (t == V_MAP && d == 1
                   && (p->key[d] == K_DECISION || p->key[d] == K_GOAL))
        {
            child = C_TOP;
        }
        break;
    case C_SLOTS:
        if (t != V_MAP) {
            return fail(p, "slot %s is %s, not an object", p->name[d],
                        vtype_name(t));
        }
        if (cef_report_parse_grow((void **) &p->rec.slots, &p->slots_cap, p->rec.nslots + 1,
                 sizeof(cef_report_rec_slot_t)) != 0)
        {
            return fail(p, "out of memory");
        }
        memset(&p->rec.slots[p->rec.nslots], 0,
               sizeof(cef_report_rec_slot_t));
        p->rec.slots[p->rec.nslots++].name = p->name[d];
        child = C_SLOT;
        break;
    case C_SLOT:
        rc = slot_value(p, p->key[d], t, s, len);
        if (t == V_MAP && p->key[d] == K_SPLIT) {
            child = C_SPLIT;
        }
        break;
    case C_SPLIT:
        rc = split_value(p, t, s, len);
        break;
    default:
        break;
    }

    if (d == 0) {
        child = C_TOP;
    }
    if (t == V_MAP || t == V_ARRAY) {
        p->depth++;
        if (p->depth < DEPTH_MAX) {
            p->ctx[p->depth] = t == V_MAP ? child : C_IGNORE;
            p->key[p->depth] = K_OTHER;
        }
    }
    return rc;
}


static int
on_null(void *ctx)
{
    return value(ctx, V_NULL, NULL, 0);
}


static int
on_bool(void *ctx, int b)
{
    (void) b;
    return value(ctx, V_BOOL, NULL, 0);
}


static int
on_number(void *ctx, const char *s, size_t len)
{
    return value(ctx, V_NUMBER, (const unsigned char *) s, len);
}


static int
on_string(void *ctx, const unsigned char *s, size_t len)
{
    return value(ctx, V_STRING, s, len);
}


static int
on_start_map(void *ctx)
{
    return value(ctx, V_MAP, NULL, 0);
}


static int
on_start_array(void *ctx)
{
    return value(ctx, V_ARRAY, NULL, 0);
}


static int
on_end(void *ctx)
{
    cef_report_parser_t  *p = ctx;

    if (--p->depth == 0) {
        p->complete = 1;
        p->end = yajl_get_bytes_consumed(p->cur);    /* just after the } */
    }
    return 1;
}


static int
on_key(void *ctx, const unsigned char *s, size_t len)
{
    cef_report_parser_t  *p = ctx;
    int                   d = p->depth;

    if (d >= DEPTH_MAX) {
        return 1;
    }
    switch (p->ctx[d]) {
    case C_TOP:
        p->key[d] = top_key(s, len);
        break;
    case C_SLOT:
        p->key[d] = slot_key(s, len);
        break;
    case C_SLOTS:
    case C_SPLIT:
        p->name[d] = keep(p, s, len);
        break;
    default:
        break;
    }
    return 1;
}


static const yajl_callbacks  callbacks = {
    on_null, on_bool, NULL, NULL, on_number, on_string,
    on_start_map, on_key, on_end, on_start_array, on_end
};


cef_report_parser_t *
cef_report_parse_new(void)
{
    return calloc(1, sizeof(cef_report_parser_t));
}


void
cef_report_parse_free(cef_report_parser_t *p)
{
    if (p != NULL) {
        if (p->h[0] != NULL) {
            yajl_free(p->h[0]);
        }
        if (p->h[1] != NULL) {
            yajl_free(p->h[1]);
        }
        free(p->buf);
        free(p->rec.slots);
        free(p->rec.arms);
        free(p);
    }
}


/* one JSON object through the state machine; 0 or -1 (p->why) */
static int
parse_object(cef_report_parser_t *p, int which, const char *s, size_t len,
    const char *what)
{
    yajl_handle     h;
    yajl_status     st;
    unsigned char  *err;
    char            c;

    p->depth = 0;
    p->has_v = p->has_t = p->has_slots = 0;
    p->decision_seen = p->goal_seen = 0;
    p->decision = p->goal_str = NULL;
    p->failed = 0;
    memset(&p->rec, 0, offsetof(cef_report_record_t, slots));
    p->rec.nslots = 0;
    p->rec.narms = 0;

    p->complete = 0;

    /* a handle is kept from line to line (yajl_alloc and yajl_free cost
       7% of a line), reading one value after the other; a line must hold
       exactly one whole object, and after any error the handle goes */
    h = p->h[which];
    if (h == NULL) {
        h = yajl_alloc(&callbacks, NULL, p);
        if (h == NULL) {
            snprintf(p->why, sizeof(p->why), "out of memory");
            return -1;
        }
        yajl_config(h, yajl_allow_multiple_values, 1);
        p->h[which] = h;
    }
    p->cur = h;
    st = yajl_parse(h, (const unsigned char *) s, len);
    if (st == yajl_status_ok) {
        st = yajl_complete_parse(h);
    }
    if (st == yajl_status_ok && !p->complete) {
        /* (a kept handle between two values: yajl's words for a new one) */
        fail(p, "%sinvalid JSON: parse error: premature EOF", what);
        what = "";
    }
    /* after the object, only white space: a token left open there (a
       string, a number) would otherwise begin the next line's parse */
    while (st == yajl_status_ok && !p->failed && p->end < len) {
        c = s[p->end++];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
            fail(p, "%sinvalid JSON: more after the object", what);
            what = "";
        }
    }
    if (st != yajl_status_ok && !p->failed) {
        err = yajl_get_error(h, 0, (const unsigned char *) s, len);
        snprintf(p->why, sizeof(p->why), "%sinvalid JSON: %s", what,
                 err ? (const char *) err : "parse error");
        p->why[strcspn(p->why, "\n")] = '\0';
        if (err) {
            yajl_free_error(h, err);
        }
        p->failed = 1;
    } else if (p->failed && *what) {
        char  tmp[sizeof(p->why)];

        snprintf(tmp, sizeof(tmp), "%s%s", what, p->why);
        memcpy(p->why, tmp, sizeof(tmp));
    }
    if (p->failed) {
        yajl_free(h);
        p->h[which] = NULL;
        return -1;
    }
    return 0;
}


/* the object just parsed is a record: is it a whole one? */
static int
check_record(cef_report_parser_t *p, const char *what)
{
    if (p->v != 1) {
        snprintf(p->why, sizeof(p->why), "%sunknown record version %g",
                 what, p->v);
        return -1;
    }
    if (!p->has_t || p->rec.rules == NULL) {
        snprintf(p->why, sizeof(p->why), "%srecord without %s", what,
                 p->has_t ? "rules" : "t");
        return -1;
    }
    /* who experiments bucketed: the visitor id, else the profile */
    p->rec.who = p->rec.visitor ? p->rec.visitor - 1
                 : p->rec.profile ? p->rec.profile - 1 : NULL;

    if (p->has_slots) {
        p->rec.kind = CEF_REPORT_REC_IMPRESSION;
        return 0;
    }
    if (p->goal_seen && p->goal_str[0] != '\0') {
        p->rec.kind = CEF_REPORT_REC_GOAL;
        p->rec.goal = p->goal_str;
        return 0;
    }
    snprintf(p->why, sizeof(p->why), "%srecord with neither slots nor goal",
             what);
    return -1;
}


int
cef_report_parse_line(cef_report_parser_t *p, const char *line, size_t len,
    const cef_report_record_t **rec, const char **why)
{
    const char  *inner, *what;
    size_t       need;

    *why = p->why;
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '
                       || line[len - 1] == '\t'))
    {
        len--;
    }
    if (len == 0) {
        return 0;
    }

    /* the line's strings, then the record's (no longer than the line) */
    need = 2 * len + 64;
    if (need > p->cap) {
        free(p->buf);
        p->cap = need + need / 2;
        p->buf = malloc(p->cap);
        if (p->buf == NULL) {
            p->cap = 0;
            snprintf(p->why, sizeof(p->why), "out of memory");
            return -1;
        }
    }
    p->len = 0;

    if (parse_object(p, 0, line, len, "") != 0) {
        return -1;
    }
    if (p->has_v) {
        if (check_record(p, "") != 0) {
            return -1;
        }
        *rec = &p->rec;
        return 1;
    }

    if (p->decision_seen) {
        inner = p->decision;
        what = "decision: ";
    } else if (p->goal_seen) {
        inner = p->goal_str;
        what = "goal: ";
    } else {
        snprintf(p->why, sizeof(p->why),
                 "neither a record nor a line with a decision or goal "
                 "member");
        return -1;
    }
    if (inner[0] == '\0') {
        return 0;
    }
    if (parse_object(p, 1, inner, strlen(inner), what) != 0) {
        return -1;
    }
    if (!p->has_v) {
        snprintf(p->why, sizeof(p->why), "%snot a record (no v)", what);
        return -1;
    }
    if (check_record(p, what) != 0) {
        return -1;
    }
    *rec = &p->rec;
    return 1;
}
