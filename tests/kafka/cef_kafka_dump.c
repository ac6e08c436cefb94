/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-kafka-dump: what a store holds, for the Kafka tests to compare with
 * a reference computed in Python.  Reads through the lib/ reader API.
 *
 *   cef-kafka-dump --store DIR --secret FILE [--keys FILE]
 *       one JSON line per profile {"id": ..., "attrs": {...}}; then, for
 *       each line "TYPE:VALUE" of FILE, {"key": "TYPE:VALUE", "id": the
 *       owner's id or null}; last {"topic": T, "offsets": {"P": NEXT},
 *       "profiles": N, "keys": K}
 *
 *   cef-kafka-dump --store DIR --watch STOPFILE
 *       polls the store every millisecond and prints "T_NS NEXT0 NEXT1 ..."
 *       (CLOCK_REALTIME) each time the stored offsets change, until
 *       STOPFILE exists
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cef_store.h"


static json_t *
value_json(const cef_value_t *v)
{
    size_t       pos = 0;
    double       d;
    json_t      *j;
    cef_span_t   s;
    char         k[256];

    switch (v->type) {
    case CEF_VAL_NIL:
        return json_null();
    case CEF_VAL_BOOL:
        return json_boolean(v->u.b);
    case CEF_VAL_INT:
        return json_integer(v->u.i);
    case CEF_VAL_FLOAT:
        return json_real(v->u.f);
    case CEF_VAL_STR:
        return json_stringn_nocheck(v->u.s.data, v->u.s.len);
    case CEF_VAL_STR_ARRAY:
        j = json_array();
        while (cef_value_array_next(v, &pos, &s) == 1) {
            json_array_append_new(j, json_stringn_nocheck(s.data, s.len));
        }
        return j;
    case CEF_VAL_NUM_MAP:
        j = json_object();
        while (cef_value_map_next(v, &pos, &s, &d) == 1) {
            snprintf(k, sizeof(k), "%.*s", (int) s.len, s.data);
            json_object_set_new(j, k, json_real(d));
        }
        return j;
    }

    return json_null();
}


static void
print_json(json_t *j)
{
    char  *s;

    s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(17));
    if (s) {
        puts(s);
        free(s);
    }
    json_decref(j);
}


static long long
now_ns(void)
{
    struct timespec  t;

    clock_gettime(CLOCK_REALTIME, &t);
    return (long long) t.tv_sec * 1000000000LL + t.tv_nsec;
}


static int
watch(cef_store_t *s, const char *stop)
{
    uint32_t                     p;
    struct timespec              ms = { 0, 1000000 };
    static cef_store_offsets_t   o, last;

    cef_store_set_check_interval(s, 0);
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);

    while (access(stop, F_OK) != 0) {
        if (cef_store_begin(s) != CEF_STORE_OK) {
            fprintf(stderr, "cef-kafka-dump: %s\n", cef_store_strerror(s));
            return 1;
        }

        if (cef_store_offsets(s, &o) == CEF_STORE_OK
            && (o.partitions != last.partitions
                || memcmp(o.next, last.next, o.partitions * sizeof(int64_t))))
        {
            printf("%lld", now_ns());
            for (p = 0; p < o.partitions; p++) {
                printf(" %lld", (long long) o.next[p]);
            }
            printf("\n");
            last = o;
        }

        cef_store_end(s);
        nanosleep(&ms, NULL);
    }

    fflush(stdout);
    return 0;
}


int
main(int argc, char **argv)
{
    int                          i, rc;
    char                         err[512], line[1024], *colon;
    size_t                       pos;
    FILE                        *f;
    json_t                      *j, *attrs, *offs;
    uint32_t                     n;
    cef_span_t                   name;
    cef_value_t                  v;
    cef_store_t                 *s;
    cef_profile_t                p;
    cef_identity_t              *ident = NULL;
    cef_store_info_t             info;
    const char                  *dir = NULL, *secret = NULL, *keys = NULL,
                                *stop = NULL;
    static cef_store_offsets_t   o;

    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--store") == 0) {
            dir = argv[i + 1];
        } else if (strcmp(argv[i], "--secret") == 0) {
            secret = argv[i + 1];
        } else if (strcmp(argv[i], "--keys") == 0) {
            keys = argv[i + 1];
        } else if (strcmp(argv[i], "--watch") == 0) {
            stop = argv[i + 1];
        }
    }

    if (dir == NULL || (stop == NULL && secret == NULL)) {
        fprintf(stderr, "usage: cef-kafka-dump --store DIR (--secret FILE "
                "[--keys FILE] | --watch STOPFILE)\n");
        return 2;
    }

    if (cef_store_open(&s, dir, err, sizeof(err)) != CEF_STORE_OK) {
        fprintf(stderr, "cef-kafka-dump: %s\n", err);
        return 1;
    }

    if (stop) {
        rc = watch(s, stop);
        cef_store_close(s);
        return rc;
    }

    ident = cef_identity_create_from_file(secret, err, sizeof(err));
    if (ident == NULL) {
        fprintf(stderr, "cef-kafka-dump: %s\n", err);
        return 1;
    }

    if (cef_store_begin(s) != CEF_STORE_OK) {
        fprintf(stderr, "cef-kafka-dump: %s\n", cef_store_strerror(s));
        return 1;
    }

    cef_store_info(s, &info);

    for (n = 0; n < info.next_number; n++) {
        rc = cef_store_lookup_number(s, n, &p);
        if (rc == CEF_STORE_NOTFOUND) {
            continue;
        }
        if (rc != CEF_STORE_OK) {
            fprintf(stderr, "cef-kafka-dump: profile %u: %s\n", n,
                    cef_store_strerror(s));
            return 1;
        }

        attrs = json_object();
        pos = 0;
        while (cef_profile_next(&p, &pos, &name, &v) == 1) {
            snprintf(line, sizeof(line), "%.*s", (int) name.len, name.data);
            json_object_set_new(attrs, line, value_json(&v));
        }

        j = json_pack("{s:s%, s:o}", "id", p.id.data, p.id.len, "attrs",
                      attrs);
        print_json(j);
    }

    if (keys) {
        f = fopen(keys, "r");
        if (f == NULL) {
            perror(keys);
            return 1;
        }

        while (fgets(line, sizeof(line), f)) {
            line[strcspn(line, "\n")] = '\0';
            colon = strchr(line, ':');
            if (colon == NULL) {
                continue;
            }

            rc = cef_store_lookup_key(s, ident, line, colon - line, colon + 1,
                                      strlen(colon + 1), &p);
            if (rc == CEF_STORE_ERROR) {
                fprintf(stderr, "cef-kafka-dump: %s\n", cef_store_strerror(s));
                return 1;
            }

            j = json_pack("{s:s}", "key", line);
            json_object_set_new(j, "id", rc == CEF_STORE_OK
                                ? json_stringn(p.id.data, p.id.len)
                                : json_null());
            print_json(j);
        }

        fclose(f);
    }

    offs = json_object();
    rc = cef_store_offsets(s, &o);
    for (n = 0; rc == CEF_STORE_OK && n < o.partitions; n++) {
        snprintf(line, sizeof(line), "%u", n);
        json_object_set_new(offs, line, o.next[n] >= 0
                                        ? json_integer(o.next[n])
                                        : json_null());
    }

    j = json_pack("{s:s, s:o, s:I, s:I}", "topic", o.topic, "offsets", offs,
                  "profiles", (json_int_t) info.profiles,
                  "keys", (json_int_t) info.keys);
    print_json(j);

    cef_store_end(s);
    cef_store_close(s);
    cef_identity_free(ident);

    return 0;
}
