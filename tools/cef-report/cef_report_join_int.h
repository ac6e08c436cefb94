/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Part of tools/cef-report (its files and what each exports: cef_report.h).
 *
 * cef_report_join's state, shared by its two files: cef_report_join.c
 * adds records, cef_report_join_tests.c joins them into tests.
 */

#ifndef CEF_REPORT_JOIN_INT_H
#define CEF_REPORT_JOIN_INT_H

#include <stdio.h>
#include <stdlib.h>

#define uthash_fatal(msg)                                                   \
    do {                                                                    \
        fputs("cef-report: out of memory\n", stderr);                       \
        exit(CEF_REPORT_EXIT_PROBLEM);                                      \
    } while (0)
#include <uthash.h>

#include "cef_report_join.h"


#define NONE         UINT32_MAX
#define LAST_MAX     8
#define SPLIT_MAX    64          /* arms of a split a period keeps */


typedef struct chunk_s {
    struct chunk_s  *next;
    size_t           used, cap;
    char             data[];
} chunk_t;


typedef struct visitor_s {
    UT_hash_handle   hh;
    struct visitor_s *merged;       /* the same id in another join */
    uint32_t         head;          /* first exposure, chained by next */
    char             id[];
} visitor_t;


/* a bandit's weights version: its number and the split it gave */
typedef struct {
    uint64_t         version;       /* 0: uniform, no weights record */
    size_t           n;             /* arms named in the split; 0: unknown */
    uint32_t        *arm;           /* n arm indexes */
    double          *bp;            /* n shares in basis points */
} ver_t;


typedef struct {
    UT_hash_handle   hh;
    char            *key;           /* rules \0 name \0 salt */
    size_t           keylen;
    const char      *rules, *name, *salt;
    char            *slot;
    uint32_t         id;
    size_t           narms, cap;
    char           **arms;
    double          *weight;        /* from the first record's split */
    int              would;         /* a control exposure by `would` */
    int              bandit;        /* some record had weights_version */
    ver_t           *vers;          /* versions seen (non-bandits: 0) */
    size_t           nvers, vers_cap, last_ver;
} exp_t;


typedef struct {
    UT_hash_handle   hh;
    char            *name;
    uint32_t         id;
    int              values;        /* some record carried a value */
} goal_t;


typedef struct {
    int64_t          t;
    uint32_t         exp;
    uint32_t         next;
    uint32_t         arm;
    uint32_t         ver;           /* index in exp_t.vers */
} exposure_t;


typedef struct {
    visitor_t       *v;
    int64_t          t;
    double           value;
    uint32_t         goal;
    uint32_t         has_value;
} event_t;


struct cef_report_join_s {
    chunk_t                  *arena;
    visitor_t                *visitors;
    exp_t                    *exps_by_key;
    exp_t                   **exps;
    size_t                    nexps, exps_cap;
    goal_t                   *goals_by_name;
    goal_t                  **goals;
    size_t                    ngoals, goals_cap;
    exposure_t               *x;
    size_t                    nx, x_cap;
    event_t                  *ev;
    size_t                    nev, ev_cap;
    char                     *key;
    size_t                    key_cap;
    exp_t                    *last[LAST_MAX];   /* per slot position */
    int64_t                   tmax;
    int                       any;
    cef_report_join_stats_t   st;
};


#endif /* CEF_REPORT_JOIN_INT_H */
