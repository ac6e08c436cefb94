/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-store-probe: a reader process for the integration tests.  It looks
 * profiles up through the lib/ reader API in a loop, while cef-sync loads
 * and applies deltas, and checks that it never sees an error or a half
 * state.
 *
 *   cef-store-probe --store DIR --secret FILE --keys FILE --stop FILE
 *
 * KEYS has one line per probed profile: "TYPE:VALUE INDEX".  The test data
 * follows a convention the probe checks in every session:
 *   - every probed key is found (loads and deltas never remove them);
 *   - its attribute "snap" equals the session's snapshot id (no mix of
 *     two snapshots);
 *   - its attribute "seq" equals the last delta seq <= the store's last seq
 *     that patched it: delta seq s patches profile (s - 1) % K (K = number
 *     of probed profiles), or 0 if none did (no half-applied batch, no
 *     future record).
 * It runs until STOP exists, then prints one JSON line of counts and exits
 * 0, or exits 1 at the first violation with a message.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cef_store.h"


typedef struct {
    char      *type;
    size_t     tlen;
    char      *value;
    size_t     vlen;
    uint64_t   index;
} probe_key_t;


static int
fail(const char *fmt, const char *a, unsigned long long b,
    unsigned long long c)
{
    fprintf(stderr, "cef-store-probe: ");
    fprintf(stderr, fmt, a, b, c);
    fprintf(stderr, "\n");
    return 1;
}


int
main(int argc, char **argv)
{
    int                i;
    char               err[512], line[1024], *sp, *colon, seen[16][128];
    size_t             n = 0, cap = 0, k, nseen = 0, j;
    FILE              *f;
    uint64_t           sessions = 0, lookups = 0, expect, maxseq = 0;
    const char        *dir = NULL, *secret = NULL, *keys = NULL,
                      *stop = NULL;
    probe_key_t       *pk = NULL;
    cef_value_t        v;
    cef_profile_t      p;
    cef_store_t       *s;
    cef_identity_t    *ident;
    cef_store_info_t   info;

    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--store") == 0) {
            dir = argv[i + 1];
        } else if (strcmp(argv[i], "--secret") == 0) {
            secret = argv[i + 1];
        } else if (strcmp(argv[i], "--keys") == 0) {
            keys = argv[i + 1];
        } else if (strcmp(argv[i], "--stop") == 0) {
            stop = argv[i + 1];
        }
    }

    if (!dir || !secret || !keys || !stop) {
        fprintf(stderr, "usage: cef-store-probe --store DIR --secret FILE "
                "--keys FILE --stop FILE\n");
        return 2;
    }

    f = fopen(keys, "r");
    if (f == NULL) {
        return fail("cannot open %s%llu%llu", keys, 0, 0);
    }

    while (fgets(line, sizeof(line), f)) {
        sp = strchr(line, ' ');
        colon = strchr(line, ':');
        if (sp == NULL || colon == NULL || colon > sp) {
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            pk = realloc(pk, cap * sizeof(probe_key_t));
        }
        *sp = '\0';
        pk[n].type = strndup(line, colon - line);
        pk[n].tlen = colon - line;
        pk[n].value = strdup(colon + 1);
        pk[n].vlen = strlen(colon + 1);
        pk[n].index = strtoull(sp + 1, NULL, 10);
        n++;
    }
    fclose(f);

    if (n == 0) {
        return fail("no keys in %s%llu%llu", keys, 0, 0);
    }

    ident = cef_identity_create_from_file(secret, err, sizeof(err));
    if (ident == NULL) {
        return fail("%s%llu%llu", err, 0, 0);
    }

    if (cef_store_open(&s, dir, err, sizeof(err)) != CEF_STORE_OK) {
        return fail("%s%llu%llu", err, 0, 0);
    }

    cef_store_set_check_interval(s, 0);

    while (access(stop, F_OK) != 0) {

        if (cef_store_begin(s) != CEF_STORE_OK) {
            return fail("begin: %s%llu%llu", cef_store_strerror(s), 0, 0);
        }

        sessions++;
        cef_store_info(s, &info);

        if (info.last_seq > maxseq) {
            maxseq = info.last_seq;
        }

        for (j = 0; j < nseen && strcmp(seen[j], info.snapshot_id); j++) { }
        if (j == nseen && nseen < 16) {
            snprintf(seen[nseen++], sizeof(seen[0]), "%s", info.snapshot_id);
        }

        for (k = 0; k < n; k++) {
            lookups++;

            if (cef_store_lookup_key(s, ident, pk[k].type, pk[k].tlen,
                                     pk[k].value, pk[k].vlen, &p)
                != CEF_STORE_OK)
            {
                return fail("key %s not found (last seq %llu, generation "
                            "%llu)", pk[k].value,
                            (unsigned long long) info.last_seq,
                            (unsigned long long) info.generation);
            }

            if (cef_profile_get(&p, cef_span_lit("snap"), &v) != 1
                || v.type != CEF_VAL_STR
                || v.u.s.len != strlen(info.snapshot_id)
                || memcmp(v.u.s.data, info.snapshot_id, v.u.s.len) != 0)
            {
                return fail("key %s: attribute snap is not the session's "
                            "snapshot (%llu, %llu)", pk[k].value,
                            (unsigned long long) info.generation, 0);
            }

            expect = 0;
            if (info.last_seq > pk[k].index) {
                expect = info.last_seq - (info.last_seq - 1 - pk[k].index) % n;
            }

            if (cef_profile_get(&p, cef_span_lit("seq"), &v) != 1
                || v.type != CEF_VAL_INT || (uint64_t) v.u.i != expect)
            {
                return fail("key %s: attribute seq is %llu, expected %llu "
                            "(half-applied batch?)", pk[k].value,
                            v.type == CEF_VAL_INT ? (unsigned long long) v.u.i
                                                  : 999999999ULL,
                            (unsigned long long) expect);
            }
        }

        cef_store_end(s);
    }

    printf("{\"sessions\":%llu,\"lookups\":%llu,\"max_seq\":%llu,"
           "\"snapshots\":[", (unsigned long long) sessions,
           (unsigned long long) lookups, (unsigned long long) maxseq);
    for (j = 0; j < nseen; j++) {
        printf("%s\"%s\"", j ? "," : "", seen[j]);
    }
    printf("]}\n");

    cef_store_close(s);
    cef_identity_free(ident);

    for (k = 0; k < n; k++) {
        free(pk[k].type);
        free(pk[k].value);
    }
    free(pk);

    return 0;
}
