/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Shared by the libFuzzer targets in tests/fuzz/: CHECK() and a persona
 * with one value of every type, so that compiled expressions and
 * templates are evaluated against real values, not only nulls.
 */

#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdlib.h>

#include "cef_persona.h"


#define CHECK(c)  do { if (!(c)) abort(); } while (0)


static inline cef_persona_t *
fuzz_persona(void)
{
    static cef_persona_t  *p;
    cef_span_t             segs[] = { cef_span_lit("vip"),
                                      cef_span_lit("a<b&c"),
                                      cef_span_lit("") };
    cef_span_t             keys[] = { cef_span_lit("shoes"),
                                      cef_span_lit("outdoor") };
    double                 nums[] = { 0.8, -1e300 };

    if (p != NULL) {
        return p;
    }

    p = cef_persona_create();
    CHECK(p != NULL);

    CHECK(cef_persona_set_str(p, "profile.first_name", "Ann", 3) == 0);
    CHECK(cef_persona_set_str(p, "profile.evil", "<script>\"'&\x00x", 14)
          == 0);
    CHECK(cef_persona_set_str(p, "profile.lifecycle", "active", 6) == 0);
    CHECK(cef_persona_set_num(p, "profile.clv", 1234.56) == 0);
    CHECK(cef_persona_set_num(p, "profile.nps", 9) == 0);
    CHECK(cef_persona_set_num(p, "profile.big", 9.2e18) == 0);
    CHECK(cef_persona_set_num(p, "profile.nan", 0.0 / 0.0) == 0);
    CHECK(cef_persona_set_bool(p, "profile.vip", 1) == 0);
    CHECK(cef_persona_set_array(p, "profile.segments", segs, 3) == 0);
    CHECK(cef_persona_set_map(p, "profile.interests", keys, nums, 2) == 0);
    CHECK(cef_persona_set_str(p, "request.path", "/shoes/", 7) == 0);
    CHECK(cef_persona_set_str(p, "request.method", "GET", 3) == 0);
    CHECK(cef_persona_set_str(p, "request.host", "shop.example", 12) == 0);
    CHECK(cef_persona_set_str(p, "request.arg.utm_campaign", "x", 1) == 0);
    CHECK(cef_persona_set_str(p, "request.cookie.c", "", 0) == 0);
    CHECK(cef_persona_set_str(p, "request.header.user-agent", "ua", 2) == 0);
    CHECK(cef_persona_set_str(p, "var.geo", "DE", 2) == 0);
    CHECK(cef_persona_set_bool(p, "visitor.new", 0) == 0);
    CHECK(cef_persona_set_str(p, "visitor.key_type", "customer", 8) == 0);

    return p;
}


static inline void
fuzz_ctx(cef_expr_ctx_t *ctx, int64_t now)
{
    ctx->lookup = cef_persona_lookup;
    ctx->data = fuzz_persona();
    ctx->now = now;
    ctx->utc_offset = 3600;
}


#endif /* FUZZ_COMMON_H */
