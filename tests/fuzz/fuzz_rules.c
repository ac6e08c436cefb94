/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * libFuzzer target: the rule-file loader (cef_rules_load_buffer()).
 *
 * The input is a rule file.  A file that loads is decided against a
 * persona with a value of every type (fuzz_common.h) at two instants, and
 * every chosen offer is rendered.  Invariants: a failed load reports at
 * least one and at most CEF_RULES_MAX_ERRORS errors, each formattable; a
 * successful one reports none; every choice names an existing offer for
 * its own slot and an existing rule; the hash is 64 hex digits.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cef_rules.h"
#include "fuzz_common.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                  rc;
    size_t               i, k;
    uint32_t             nslots, decided, s, count;
    const cef_offer_t   *o;
    cef_rules_t         *rs;
    cef_rules_errors_t   errs;
    cef_rules_choice_t  *ch;
    cef_expr_eval_t     *ev;
    cef_expr_ctx_t       ctx;
    char                 buf[512];
    static const int64_t times[] = { 1767225600, 4102444800 };

    if (size > 65536) {
        return 0;
    }

    memset(&errs, 0, sizeof(errs));
    rs = NULL;
    rc = cef_rules_load_buffer("fuzz.yaml", (const char *) data, size, &rs,
                               &errs);

    if (rc != 0) {
        CHECK(rs == NULL);
        CHECK(errs.n >= 1 && errs.n <= CEF_RULES_MAX_ERRORS);

        for (i = 0; i < errs.n; i++) {
            cef_rules_error_format(&errs, i, buf, sizeof(buf));
            CHECK(memchr(buf, '\0', sizeof(buf)) != NULL);
            cef_rules_error_format(&errs, i, buf, 4);
            CHECK(memchr(buf, '\0', 4) != NULL);
        }

        cef_rules_errors_free(&errs);
        return 0;
    }

    CHECK(rs != NULL && errs.n == 0);
    cef_rules_errors_free(&errs);
    CHECK(strlen(cef_rules_hash(rs)) == 64);

    nslots = cef_rules_nslots(rs);
    for (s = 0; s < nslots; s++) {
        CHECK(cef_rules_slot_name(rs, s) != NULL);
    }

    ch = calloc(nslots + 1, sizeof(*ch));
    ev = cef_rules_eval_create(rs);
    CHECK(ch != NULL && ev != NULL);

    for (k = 0; k < sizeof(times) / sizeof(times[0]); k++) {
        fuzz_ctx(&ctx, times[k]);
        decided = cef_rules_decide(rs, ev, &ctx, ch);
        CHECK(decided <= nslots);

        count = 0;
        for (s = 0; s < nslots; s++) {
            if (ch[s].offer == CEF_RULES_NONE) {
                continue;
            }

            count++;
            CHECK(ch[s].offer < cef_rules_noffers(rs));
            CHECK(ch[s].rule < cef_rules_nrules(rs));
            o = cef_rules_offer(rs, ch[s].offer);
            CHECK(o->slot_id == s);
            CHECK(cef_rules_offer_active(o, times[k]));
            (void) cef_template_render(o->html, ev, buf, sizeof(buf));
        }

        CHECK(count == decided);
    }

    free(ch);
    cef_expr_eval_free(ev);
    cef_rules_free(rs);

    return 0;
}
