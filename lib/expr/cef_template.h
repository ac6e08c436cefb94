/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Part of lib/expr: what the folder may include, and what must not
 * include it, is said at the top of cef_expr.h.
 *
 * cef_template: offer HTML with `{{ path }}` and
 * `{{ path | default("text") }}` placeholders.  Compiled once (at
 * configuration time) into literal parts and compiled paths; rendering
 * evaluates the paths and HTML-escapes their values.  The surrounding HTML
 * is the marketer's and is copied verbatim.
 */

#ifndef CEF_TEMPLATE_H
#define CEF_TEMPLATE_H

#include <stddef.h>

#include "cef_expr.h"


typedef struct cef_template_s  cef_template_t;


/*
 * Compile a template.
 *
 * @param[in]  st    symbol table receiving the placeholders' references
 * @param[in]  src   the template text
 * @param[in]  len   its length
 * @param[out] err   on failure: byte offset into src and message (may be
 *                   NULL).  Errors: an unterminated `{{`, a placeholder
 *                   that is not a path (unknown root, bad syntax), a filter
 *                   other than default("..."), out of memory.
 * @return the template, or NULL.
 */
cef_template_t *cef_template_compile(cef_expr_symtab_t *st, const char *src,
    size_t len, cef_expr_error_t *err);

/* Free a template.  NULL is accepted. */
void cef_template_free(cef_template_t *t);

/* 1 if the template has no placeholders (rendering it copies it). */
int cef_template_is_static(const cef_template_t *t);

/* The number of placeholders. */
size_t cef_template_placeholders(const cef_template_t *t);

/*
 * Visit the placeholders' paths as cef_expr_refs() does; offsets are into
 * the template's source text.
 */
void cef_template_refs(const cef_template_t *t, cef_expr_ref_pt fn,
    void *data);

/*
 * Render a template with the inputs ev was last reset to.
 *
 * Placeholder values are formatted as: strings as they are, integral
 * numbers without a fraction, other numbers with up to 15 significant
 * digits, booleans as true/false, string arrays joined with ", ".  Null,
 * maps and anything undecodable render as the default (or nothing).  The
 * values are escaped as by cef_template_escape().
 *
 * @param[out] buf   receives at most size bytes (not NUL-terminated)
 * @return the full length of the rendering; if it is larger than size,
 *         the output was truncated and the caller may retry with a
 *         buffer of that length.
 */
size_t cef_template_render(const cef_template_t *t, cef_expr_eval_t *ev,
    char *buf, size_t size);

/*
 * HTML-escape src into buf: & < > " ' become entities, and each byte that
 * starts no valid UTF-8 sequence (cef_text_utf8_len()) becomes U+FFFD, so
 * the result is valid UTF-8 whatever the profile holds: the page and the
 * decision API's JSON carry the same bytes.
 *
 * @return the full escaped length (as cef_template_render()).
 */
size_t cef_template_escape(const char *src, size_t len, char *buf,
    size_t size);


#endif /* CEF_TEMPLATE_H */
