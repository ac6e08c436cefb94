/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * libFuzzer target: the frequency-caps cookie (cef_freqcap), from the
 * Cookie header to the decision and the cookie sent back.
 *
 * Byte 0 picks the mode; the rest is the cookie value.
 *   mode & 1 == 0: the value as a visitor sends it, "STATE.SIG", through
 *                  cef_decision_state_verify() (what a forger reaches);
 *   mode & 1 == 1: the value is a STATE signed here first, as if the shop
 *                  had issued it (or its signing secret were stolen), so
 *                  that the freqcap plugin's parser sees arbitrary state.
 * A verified state goes into cef_decision_make() with a rule set that caps
 * two campaigns.  Invariants: a forged value never verifies; a signed one
 * does and reads back unchanged; the decision never fails; a state sent
 * back is at most CEF_DECISION_STATE_MAX cookie-safe characters, and
 * counts only rise by the offers shown.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cef_decision.h"
#include "cef_rules.h"
#include "cef_sign.h"
#include "fuzz_common.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static const char  rules_yaml[] =
    "version: 1\n"
    "offers:\n"
    "  winback:\n"
    "    slot: hero\n"
    "    html: '<b>winback</b>'\n"
    "    campaign: winback\n"
    "  spring:\n"
    "    slot: side\n"
    "    html: '<i>spring</i>'\n"
    "    campaign: spring-sale\n"
    "  plain:\n"
    "    slot: foot\n"
    "    html: '<p>plain</p>'\n"
    "rules:\n"
    "  - name: everyone\n"
    "    show: [winback, spring, plain]\n"
    "plugins:\n"
    "  freqcap:\n"
    "    caps:\n"
    "      - {campaign: winback, max: 2, per: 1h}\n"
    "      - {campaign: spring-sale, max: 5, per: 7d}\n";


static cef_rules_t      *rs;
static cef_expr_eval_t  *ev;
static cef_decision_t   *dec;
static cef_signer_t     *signer;


static void
init(void)
{
    char                err[256];
    cef_rules_errors_t  errs;
    cef_span_t          sec = cef_span_lit("caps-signing-secret");

    memset(&errs, 0, sizeof(errs));
    if (cef_rules_load_buffer("caps.yaml", rules_yaml,
                              sizeof(rules_yaml) - 1, &rs, &errs) != 0)
    {
        cef_rules_error_format(&errs, 0, err, sizeof(err));
        fprintf(stderr, "%s\n", err);
        abort();
    }
    cef_rules_errors_free(&errs);

    ev = cef_rules_eval_create(rs);
    dec = cef_decision_create(rs);
    signer = cef_signer_create(&sec, 1, err, sizeof(err));
    CHECK(ev != NULL && dec != NULL && signer != NULL);
}


static int
cookie_safe(const char *p, size_t len)
{
    size_t  i;
    char    c;

    for (i = 0; i < len; i++) {
        c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'
              || c == ':' || c == '~'))
        {
            return 0;
        }
    }

    return 1;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                     ok;
    uint32_t                i;
    size_t                  n;
    cef_span_t              value, state;
    cef_expr_ctx_t          ctx;
    cef_decision_input_t    in;
    cef_decision_state_t   *st;
    char                    buf[CEF_DECISION_STATE_MAX * 4 + 64];
    char                    line[1024];

    if (rs == NULL) {
        init();
    }

    if (size < 1 || size > CEF_DECISION_STATE_MAX * 4) {
        return 0;
    }

    value.data = (const char *) data + 1;
    value.len = size - 1;

    if ((data[0] & 1) && value.len > 0
        && value.len <= CEF_DECISION_STATE_MAX)
    {
        /* (states sent are 1..CEF_DECISION_STATE_MAX bytes; verify refuses
           an empty value and one over CEF_SIGN_MAX_VALUE) */
        n = cef_decision_state_sign(signer, "freqcap", value.data, value.len,
                                    buf);
        CHECK(n == value.len + 1 + CEF_SIGN_SIG_LEN);
        value.data = buf;
        value.len = n;
        ok = cef_decision_state_verify(signer, "freqcap", value, &state);
        CHECK(ok == 0);
        CHECK(state.len == size - 1
              && memcmp(state.data, data + 1, state.len) == 0);

        /* the same state is no other plugin's */
        CHECK(cef_decision_state_verify(signer, "experiment", value, &state)
              != 0);
        ok = cef_decision_state_verify(signer, "freqcap", value, &state);

    } else {
        ok = cef_decision_state_verify(signer, "freqcap", value, &state);
        if (ok == 0) {
            /* only this signer's output verifies; the fuzzer cannot
               forge HMAC-SHA256, so a hit means the check is broken */
            n = cef_decision_state_sign(signer, "freqcap", state.data,
                                        state.len, buf);
            CHECK(n == value.len && memcmp(buf, value.data, n) == 0);
        }
    }

    if (ok == 0) {
        cef_decision_set_state(dec, "freqcap", state);
    }

    fuzz_ctx(&ctx, 1767225600 + (data[0] >> 1) * 600);
    memset(&in, 0, sizeof(in));
    in.visitor = cef_span_lit("AAAAAAAAAAAAAAAAAAAAAA");

    (void) cef_decision_make(rs, ev, &ctx, &in, dec);
    CHECK(dec->errors == 0);

    for (i = 0; i < dec->nstates; i++) {
        st = &dec->states[i];
        if (st->changed) {
            CHECK(st->out_len <= CEF_DECISION_STATE_MAX);
            CHECK(cookie_safe(st->out, st->out_len));
        }
    }

    n = cef_decision_format(dec, line, sizeof(line));
    CHECK(strlen(line) == (n < sizeof(line) ? n : sizeof(line) - 1));

    return 0;
}
