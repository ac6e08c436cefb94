/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Part of tools/cef-report (its files and what each exports: cef_report.h).
 *
 * cef_report_parse: one log line -> one impression or goal record, with
 * only the members cef-report needs (docs/report.md#reading-logs).  A line
 * is a JSON object: a `decision` string member holds the impression record
 * ($cef_decision, the cef_impressions format), a `goal` string member the
 * goal record ($cef_goal, the cef_goals format), each parsed a second time;
 * an object with `v` is a bare record (the escape=none form).
 *
 * The JSON is read by yajl's event parser, which validates every byte of
 * the line (UTF-8 included) but builds no tree: members nobody reads
 * (`in`, `state`, ...) cost a scan, not an allocation.  Measured on a
 * 1 079-byte cef_impressions line: jansson's json_loadb of the line and of
 * its record, 38.5 us; yajl, 5.7 us (docs/report.md#speed).
 */

#ifndef CEF_REPORT_PARSE_H
#define CEF_REPORT_PARSE_H

#include <stddef.h>
#include <stdint.h>


typedef enum {
    CEF_REPORT_REC_IMPRESSION = 1,
    CEF_REPORT_REC_GOAL
} cef_report_rec_kind_t;


/* One arm of a slot's `split`: its share in basis points. */
typedef struct {
    const char  *name;
    double       bp;
} cef_report_rec_arm_t;


/* One member of `slots`.  NULL: absent or null. */
typedef struct {
    const char  *name;
    const char  *offer;
    const char  *variant;
    const char  *would;
    const char  *experiment;
    const char  *salt;
    size_t       split;        /* first arm in record->arms */
    size_t       nsplit;       /* 0: no split */
    int          has_version;  /* a bandit's slot: weights_version given */
    uint64_t     weights_version;   /* 0: uniform, no weights record yet */
} cef_report_rec_slot_t;


/* A record; its strings live until the next parse with the same parser. */
typedef struct {
    cef_report_rec_kind_t    kind;
    int64_t                  t;
    const char              *rules;
    const char              *visitor;     /* NULL: none */
    const char              *profile;     /* NULL: none (anonymous) */
    const char              *who;         /* whom experiments bucketed, as
                                             the module does: "v" visitor,
                                             else "p" profile; NULL: none */
    const char              *goal;        /* goal records */
    int                      has_value;
    double                   value;
    size_t                   nslots;      /* impression records */
    cef_report_rec_slot_t   *slots;
    size_t                   narms;
    cef_report_rec_arm_t    *arms;
} cef_report_record_t;


typedef struct cef_report_parser_s  cef_report_parser_t;


cef_report_parser_t *cef_report_parse_new(void);
void cef_report_parse_free(cef_report_parser_t *p);

/* *arr grown (doubling) to hold at least need elements of size bytes:
   0, or -1 (out of memory; *arr and *cap unchanged).  The join's tables
   grow with it too. */
int cef_report_parse_grow(void **arr, size_t *cap, size_t need,
    size_t size);

/*
 * Parses one line (without its newline).  Returns 1 and sets *rec, 0 when
 * the line holds no record (blank, or an empty `decision`/`goal`: a format
 * logged without `if=`), -1 when the line is malformed: *why then says why
 * (valid until the next call).  Never fails for lack of memory silently:
 * that is -1 with "out of memory".
 */
int cef_report_parse_line(cef_report_parser_t *p, const char *line,
    size_t len, const cef_report_record_t **rec, const char **why);


#endif /* CEF_REPORT_PARSE_H */
