/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * lib/decision internals, for lib/decision's own .c files only (nothing
 * outside the folder includes this): the scratch space behind a
 * cef_decision_t.  cef_decision_create() allocates a cef_decision_priv_t
 * and hands out its first member, so a public cef_decision_t has no field
 * the decision loop alone may touch, and a view built by hand (the glue's
 * $cef_decision, for cef_decision_format()) stays a plain cef_decision_t.
 * Then the records' JSON writer (cef_record_json.c), shared by
 * cef_record.c and cef_goal.c.
 */

#ifndef CEF_DECISION_INT_H
#define CEF_DECISION_INT_H

#include "cef_decision.h"
#include "cef_plugin.h"


typedef struct {
    cef_decision_t      pub;        /* first: what the API hands out */
    int64_t             now;        /* ctx->now of the last decision */
    uint8_t            *blocked;    /* per offer: a begin hook blocked it */
    cef_plugin_cand_t  *cands;      /* per slot, CEF_DECISION_MAX_CANDIDATES
                                       each: what the strategy saw */
    uint32_t           *ncands;     /* per slot: how many (while deciding,
                                       CEF_RULES_NONE once it closed) */
    uint32_t           *shown;      /* per slot: while deciding, the count
                                       of a closed slot; then the offer
                                       shown, for the end hooks */
    cef_decision_weights_pt  weights;    /* published weights, or NULL */
    void                    *weights_data;
} cef_decision_priv_t;


/* d from cef_decision_create() (never a view built by hand). */
static inline cef_decision_priv_t *
cef_decision_priv(cef_decision_t *d)
{
    return (cef_decision_priv_t *) d;
}


static inline const cef_decision_priv_t *
cef_decision_cpriv(const cef_decision_t *d)
{
    return (const cef_decision_priv_t *) d;
}


/* cef_plugin_req_t.bucket, for the decision and for a goal's arms
   (cef_goal.c): the visitor's bucket for salt, CEF_PLUGIN_NONE without
   a visitor id */
uint32_t cef_decision_bucket(const cef_plugin_req_t *req, const char *salt,
    size_t len);


/* --- cef_record_json.c: the records' JSON writer ------------------------- */

typedef struct {
    char    *buf;       /* NULL: measure only */
    size_t   size;      /* room for text, less the NUL */
    size_t   len;       /* what the output needs so far */
} cef_record_out_t;

/* Start writing into buf of size bytes (0: measure only). */
void cef_record_json_init(cef_record_out_t *o, char *buf, size_t size);
/* NUL-terminate (truncated to the buffer); the length the text needs. */
size_t cef_record_json_end(cef_record_out_t *o);
void cef_record_json_put(cef_record_out_t *o, const char *s, size_t n);
void cef_record_json_puts(cef_record_out_t *o, const char *s);
void cef_record_json_printf(cef_record_out_t *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* a JSON string, escaped */
void cef_record_json_str(cef_record_out_t *o, const char *s, size_t n);
/* a string, or null for NULL / for an empty span */
void cef_record_json_cstr(cef_record_out_t *o, const char *s);
void cef_record_json_span(cef_record_out_t *o, cef_span_t s);
/* a finite number, shortest form; null otherwise */
void cef_record_json_number(cef_record_out_t *o, double v);


#endif /* CEF_DECISION_INT_H */
