/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Part of lib/rules: what the folder may include, and what must not
 * include it, is said at the top of cef_rules.h.
 *
 * cef_persona: an in-memory set of inputs (profile attributes,
 * request fields, nginx variables, visitor fields) for evaluating rules
 * without a profile store or a request: `cef-rules test` personas,
 * `cef-rules explain --attrs`, unit tests.  Not for the request path: a
 * lookup is a linear scan.
 */

#ifndef CEF_PERSONA_H
#define CEF_PERSONA_H

#include <stddef.h>

#include "cef_expr.h"


typedef struct cef_persona_s  cef_persona_t;


/* @return an empty persona, or NULL when out of memory. */
cef_persona_t *cef_persona_create(void);

/* Free a persona.  NULL is accepted. */
void cef_persona_free(cef_persona_t *p);

/*
 * Set the value of a path as written in expressions, e.g. "profile.clv",
 * "request.arg.utm_campaign", "var.geoip2_country_code", "visitor.new".
 * Header names are matched case-insensitively.  A path set twice keeps the
 * last value.  The persona copies what v points to.
 *
 * @return 0, or -1 when out of memory.
 */
int cef_persona_set(cef_persona_t *p, const char *path, const cef_value_t *v);

int cef_persona_set_str(cef_persona_t *p, const char *path, const char *s,
    size_t len);
int cef_persona_set_num(cef_persona_t *p, const char *path, double num);
int cef_persona_set_bool(cef_persona_t *p, const char *path, int b);

/* A string array (msgpack-encoded as the profile store keeps it). */
int cef_persona_set_array(cef_persona_t *p, const char *path,
    const cef_span_t *items, size_t n);

/* A map string -> number (msgpack-encoded as the profile store keeps it). */
int cef_persona_set_map(cef_persona_t *p, const char *path,
    const cef_span_t *keys, const double *nums, size_t n);

/*
 * The lookup callback for cef_expr_ctx_t: data is the persona.
 * @return 1 and *out set if the persona has ref's path, else 0.
 */
int cef_persona_lookup(void *data, const cef_ref_t *ref, cef_value_t *out);

/* Number of paths set, and the i-th (for listing inputs). */
size_t cef_persona_count(const cef_persona_t *p);
const char *cef_persona_path(const cef_persona_t *p, size_t i,
    cef_value_t *v);


#endif /* CEF_PERSONA_H */
