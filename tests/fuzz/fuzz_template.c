/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * libFuzzer target: offer templates (cef_template.h).
 *
 * The input is a template.  A compiled one is rendered against a persona
 * with a value of every type (fuzz_common.h) into buffers of every size
 * up to the full length.  Invariants: the returned length does not depend
 * on the buffer; a truncated rendering is a prefix of the full one;
 * nothing is written past size; a static template renders as itself.
 * cef_template_escape() gets the same checks on the raw input, and its
 * output must hold no raw < > " ' and be valid UTF-8.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cef_template.h"
#include "cef_text.h"
#include "fuzz_common.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


#define GUARD  0xA5


static void
check_escape(const char *src, size_t len)
{
    size_t   n, m, i, l;
    char    *full, *part;

    n = cef_template_escape(src, len, NULL, 0);
    CHECK(n >= len && n <= len * 6);

    full = malloc(n + 1);
    part = malloc(n + 1);
    CHECK(full != NULL && part != NULL);

    full[n] = (char) GUARD;
    CHECK(cef_template_escape(src, len, full, n) == n);
    CHECK((uint8_t) full[n] == GUARD);

    for (i = 0; i < n; i++) {
        CHECK(full[i] != '<' && full[i] != '>' && full[i] != '"'
              && full[i] != '\'');
    }

    for (i = 0; i < n; i += l) {
        l = cef_text_utf8_len((const uint8_t *) full + i, n - i);
        CHECK(l != 0);
    }

    m = n / 2;
    part[m] = (char) GUARD;
    CHECK(cef_template_escape(src, len, part, m) == n);
    CHECK((uint8_t) part[m] == GUARD);
    CHECK(memcmp(part, full, m) == 0);

    free(full);
    free(part);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t              n, i, cut;
    cef_template_t     *t;
    cef_expr_symtab_t  *st;
    cef_expr_eval_t    *ev;
    cef_expr_ctx_t      ctx;
    cef_expr_error_t    err;
    char               *full, *part;

    if (size > 4096) {
        return 0;
    }

    check_escape((const char *) data, size);

    st = cef_expr_symtab_create();
    CHECK(st != NULL);

    memset(&err, 0, sizeof(err));
    t = cef_template_compile(st, (const char *) data, size, &err);

    if (t == NULL) {
        CHECK(memchr(err.msg, '\0', sizeof(err.msg)) != NULL);
        CHECK(err.offset <= size);
        cef_expr_symtab_free(st);
        return 0;
    }

    ev = cef_expr_eval_create(st);
    CHECK(ev != NULL);
    fuzz_ctx(&ctx, 1767225600);
    cef_expr_eval_reset(ev, &ctx);

    n = cef_template_render(t, ev, NULL, 0);
    full = malloc(n + 1);
    part = malloc(n + 1);
    CHECK(full != NULL && part != NULL);

    full[n] = (char) GUARD;
    CHECK(cef_template_render(t, ev, full, n) == n);
    CHECK((uint8_t) full[n] == GUARD);

    if (cef_template_is_static(t)) {
        CHECK(cef_template_placeholders(t) == 0);
        CHECK(n == size && memcmp(full, data, n) == 0);
    }

    /* every prefix length for short renderings, a few cuts for long ones */
    for (i = 0; i < 16 && i <= n; i++) {
        cut = n <= 16 ? i : (n * i) / 16;
        part[cut] = (char) GUARD;
        CHECK(cef_template_render(t, ev, part, cut) == n);
        CHECK((uint8_t) part[cut] == GUARD);
        CHECK(memcmp(part, full, cut) == 0);
    }

    free(full);
    free(part);
    cef_expr_eval_free(ev);
    cef_template_free(t);
    cef_expr_symtab_free(st);

    return 0;
}
