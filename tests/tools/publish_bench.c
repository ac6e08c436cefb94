/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * make bench-publish: what the published-record readers cost a worker per
 * request (docs/store.md, "Reader API for published records").  Opens a
 * store that `cef-sync` filled (the make target does: 20 bandits' weights
 * of 3 arms and one rule set), then times, per iteration of a session
 * (cef_store_begin/end):
 *
 *   session        begin + end alone (the baseline)
 *   changed        + cef_store_published_changed() (nothing changed)
 *   weights        + cef_store_weights_get() of one bandit, its 3 arms read
 *   rules          + cef_store_rules_get() and the live version's entry
 *
 * and prints ns per iteration and the difference to the baseline.
 *
 *   cef-publish-bench DIR [ITERATIONS]
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cef_store.h"
#include "cef_store_rules.h"
#include "cef_store_weights.h"


static double
now_ns(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}


static double
run(cef_store_t *s, long n, int what)
{
    long                        i;
    size_t                      pos;
    double                      t0;
    uint64_t                    sink = 0;
    cef_store_arm_t             arm;
    cef_store_rules_t           r;
    cef_store_weights_t         w;
    cef_store_pub_stamp_t       st;
    cef_store_rules_version_t   v;
    char                        exp[20][16];

    memset(&st, 0, sizeof(st));
    for (i = 0; i < 20; i++) {
        snprintf(exp[i], sizeof(exp[i]), "exp%ld", i);
    }
    t0 = now_ns();

    for (i = 0; i < n; i++) {
        if (cef_store_begin(s) != CEF_STORE_OK) {
            fprintf(stderr, "begin: %s\n", cef_store_strerror(s));
            exit(1);
        }

        if (what >= 1) {
            sink += (uint64_t) cef_store_published_changed(s, &st);
        }

        if (what == 2) {
            if (cef_store_weights_get(s, exp[i % 20], strlen(exp[i % 20]),
                                      exp[i % 20], strlen(exp[i % 20]), &w)
                == CEF_STORE_OK)
            {
                pos = 0;
                while (cef_store_weights_arm(&w, &pos, &arm)) {
                    sink += arm.bp;
                }
            }
        }

        if (what == 3
            && cef_store_rules_get(s, "shop", 4, &r) == CEF_STORE_OK
            && r.live >= 0 && cef_store_rules_at(&r, (uint32_t) r.live, &v)
               == 0)
        {
            sink += v.sha256[0];
        }

        cef_store_end(s);
    }

    if (sink == 42) {
        printf(" ");
    }

    return (now_ns() - t0) / n;
}


int
main(int argc, char **argv)
{
    int           k;
    long          n;
    char          err[512];
    double        base, t;
    cef_store_t  *s;
    static const char *const  names[] = { "session", "changed", "weights",
                                          "rules" };

    if (argc < 2) {
        fprintf(stderr, "usage: cef-publish-bench DIR [ITERATIONS]\n");
        return 2;
    }

    n = argc > 2 ? atol(argv[2]) : 2000000;

    if (cef_store_open(&s, argv[1], err, sizeof(err)) != CEF_STORE_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }

    run(s, n / 10, 3);                  /* warm up */
    base = run(s, n, 0);
    printf("%-8s %7.1f ns per session\n", names[0], base);

    for (k = 1; k <= 3; k++) {
        t = run(s, n, k);
        printf("%-8s %7.1f ns per session (+%.1f ns)\n", names[k], t,
               t - base);
    }

    cef_store_close(s);
    return 0;
}
