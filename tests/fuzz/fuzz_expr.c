/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * libFuzzer target: the expression language (cef_expr.h).
 *
 * Byte 0 picks the entry point (expression, condition, path) and the
 * clock; the rest is the source.  A compiled expression is evaluated,
 * valued, explained and formatted against a persona with a value of every
 * type (fuzz_common.h).  The source also goes to cef_expr_parse_time() and
 * cef_expr_nearest().  Invariants: a condition's match equals its
 * explain's result; explain and format always NUL-terminate.
 */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cef_expr.h"
#include "fuzz_common.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const  cands[] = { "profile", "request", "visitor",
                                          "time", "var", "contains",
                                          "matches", NULL };
    int                       m, x;
    size_t                    len;
    int64_t                   t, now;
    uint8_t                   mode;
    const char               *src;
    cef_expr_t               *e;
    cef_expr_symtab_t        *st;
    cef_expr_eval_t          *ev;
    cef_expr_ctx_t            ctx;
    cef_expr_error_t          err;
    cef_value_t               v;
    char                      buf[256], small[8];

    if (size < 1 || size > 4096) {
        return 0;
    }

    mode = data[0];
    src = (const char *) data + 1;
    len = size - 1;

    (void) cef_expr_parse_time(src, len, &t);
    (void) cef_expr_nearest(src, len < 64 ? len : 64, cands);

    st = cef_expr_symtab_create();
    CHECK(st != NULL);

    memset(&err, 0, sizeof(err));

    switch (mode % 3) {
    case 0:
        e = cef_expr_compile(st, src, len, &err);
        break;
    case 1:
        e = cef_expr_compile_condition(st, src, len, &err);
        break;
    default:
        e = cef_expr_compile_path(st, src, len, &err);
        break;
    }

    if (e == NULL) {
        CHECK(memchr(err.msg, '\0', sizeof(err.msg)) != NULL);
        CHECK(err.offset <= len);
        cef_expr_symtab_free(st);
        return 0;
    }

    CHECK(strlen(cef_expr_source(e)) <= len);

    ev = cef_expr_eval_create(st);
    CHECK(ev != NULL);

    /* a fixed instant, or one in every hour of a week by the mode byte */
    now = 1767225600 + (int64_t) (mode >> 2) * 3600 * 7;
    fuzz_ctx(&ctx, now);

    cef_expr_eval_reset(ev, &ctx);
    m = cef_expr_match(e, ev);
    CHECK(m == 0 || m == 1);

    cef_expr_value(e, ev, &v);
    cef_expr_format_value(&v, buf, sizeof(buf));
    CHECK(memchr(buf, '\0', sizeof(buf)) != NULL);
    cef_expr_format_value(&v, small, sizeof(small));
    CHECK(memchr(small, '\0', sizeof(small)) != NULL);

    cef_expr_eval_reset(ev, &ctx);
    x = cef_expr_explain(e, ev, buf, sizeof(buf));
    CHECK(memchr(buf, '\0', sizeof(buf)) != NULL);
    CHECK(x == m);
    (void) cef_expr_explain(e, ev, small, sizeof(small));
    CHECK(memchr(small, '\0', sizeof(small)) != NULL);

    /* nothing but nulls */
    ctx.data = NULL;
    ctx.lookup = NULL;
    {
        cef_persona_t  *empty = cef_persona_create();

        CHECK(empty != NULL);
        ctx.lookup = cef_persona_lookup;
        ctx.data = empty;
        cef_expr_eval_reset(ev, &ctx);
        (void) cef_expr_match(e, ev);
        cef_expr_value(e, ev, &v);
        cef_expr_format_value(&v, buf, sizeof(buf));
        cef_persona_free(empty);
    }

    cef_expr_eval_free(ev);
    cef_expr_free(e);
    cef_expr_symtab_free(st);

    return 0;
}
