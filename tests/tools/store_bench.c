/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * make bench-store: generates N reference profiles (default 1M), loads them
 * with cef-sync, applies a delta stream, measures lookups through the
 * reader API and the bytes per profile on disk.  Prints figures; asserts
 * nothing.
 *
 *   cef-store-bench DIR [N]     (DIR is scratch space; cef-sync is taken
 *                                from $CEF_SYNC, default build/cef-sync)
 *
 * A reference profile: 3 segments, clv, clv_predicted, churn_risk, nps,
 * lifecycle, first_name, last_purchase_at, interests (3 category scores),
 * 3 consent flags; keys: email and crm id; profile id "c" + 9 digits.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>

#include "cef_identity.h"
#include "cef_store.h"


static const char  *segs[] = {
    "vip", "newsletter", "cart_abandoner", "high_value", "mobile_app",
    "sports_fan", "bargain_hunter", "new_customer", "loyalty_gold",
    "loyalty_silver", "outdoor", "tech_enthusiast", "parent", "student",
    "frequent_buyer", "weekend_shopper", "email_engaged", "sms_engaged",
    "premium_brand", "lapsed_buyer"
};

static const char  *cats[] = {
    "sports", "outdoor", "books", "electronics", "fashion", "home",
    "garden", "toys", "beauty", "music", "travel", "food"
};

static const char  *stages[] = { "new", "active", "at_risk", "lapsed", "vip" };

static const char  *names[] = {
    "Alice", "Bob", "Carla", "David", "Emma", "Felix", "Greta", "Hugo",
    "Ines", "Jonas", "Klara", "Lukas", "Mia", "Noah", "Olivia", "Paul",
    "Quinn", "Rosa", "Sam", "Tina", "Uwe", "Vera", "Wim", "Xenia", "Yusuf",
    "Zoe", "Anna", "Ben", "Chloe", "Daniel", "Elena", "Finn", "Hannah",
    "Jakob", "Lea", "Max", "Nina", "Oskar", "Lena", "Tim"
};

#define NELEM(a)  (sizeof(a) / sizeof((a)[0]))


static uint64_t  rng = 88172645463325252ULL;

static uint32_t
rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t) (rng % n);
}


static void
pack_str(msgpack_packer *pk, const char *s)
{
    size_t  n = strlen(s);

    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}


static void
pack_attrs(msgpack_packer *pk)
{
    uint32_t  a, b, c;

    msgpack_pack_map(pk, 12);

    pack_str(pk, "segments");
    msgpack_pack_array(pk, 3);
    a = rnd(NELEM(segs));
    b = (a + 1 + rnd(NELEM(segs) - 2)) % NELEM(segs);
    c = (b + 1) % NELEM(segs) == a ? (b + 2) % NELEM(segs)
                                   : (b + 1) % NELEM(segs);
    pack_str(pk, segs[a]);
    pack_str(pk, segs[b]);
    pack_str(pk, segs[c]);

    pack_str(pk, "clv");
    msgpack_pack_double(pk, rnd(500000) / 100.0);
    pack_str(pk, "clv_predicted");
    msgpack_pack_double(pk, rnd(800000) / 100.0);
    pack_str(pk, "churn_risk");
    msgpack_pack_double(pk, rnd(101) / 100.0);
    pack_str(pk, "nps");
    msgpack_pack_int(pk, (int) rnd(11));
    pack_str(pk, "lifecycle");
    pack_str(pk, stages[rnd(NELEM(stages))]);
    pack_str(pk, "first_name");
    pack_str(pk, names[rnd(NELEM(names))]);
    pack_str(pk, "last_purchase_at");
    msgpack_pack_int64(pk, 1600000000 + rnd(100000000));

    pack_str(pk, "interests");
    msgpack_pack_map(pk, 3);
    a = rnd(NELEM(cats));
    pack_str(pk, cats[a]);
    msgpack_pack_double(pk, rnd(101) / 100.0);
    pack_str(pk, cats[(a + 1) % NELEM(cats)]);
    msgpack_pack_double(pk, rnd(101) / 100.0);
    pack_str(pk, cats[(a + 5) % NELEM(cats)]);
    msgpack_pack_double(pk, rnd(101) / 100.0);

    pack_str(pk, "consent_email");
    rnd(2) ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    pack_str(pk, "consent_sms");
    rnd(2) ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    pack_str(pk, "consent_ads");
    rnd(2) ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
}


static void
pack_keys(msgpack_packer *pk, uint32_t i)
{
    char  buf[64];

    msgpack_pack_array(pk, 2);
    msgpack_pack_array(pk, 2);
    pack_str(pk, "email");
    snprintf(buf, sizeof(buf), "user%u@example.com", i);
    pack_str(pk, buf);
    msgpack_pack_array(pk, 2);
    pack_str(pk, "crm");
    snprintf(buf, sizeof(buf), "CRM-%08u", i);
    pack_str(pk, buf);
}


static int
flush(msgpack_sbuffer *sb, FILE *f)
{
    if (fwrite(sb->data, 1, sb->size, f) != sb->size) {
        return -1;
    }
    msgpack_sbuffer_clear(sb);
    return 0;
}


static int
gen_snapshot(const char *path, uint32_t n)
{
    char             id[32];
    uint32_t         i;
    FILE            *f;
    msgpack_sbuffer  sb;
    msgpack_packer   pk;

    f = fopen(path, "wb");
    if (f == NULL) {
        return -1;
    }

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

    msgpack_pack_map(&pk, 4);
    pack_str(&pk, "cef"); pack_str(&pk, "snapshot");
    pack_str(&pk, "version"); msgpack_pack_int(&pk, 1);
    pack_str(&pk, "id"); pack_str(&pk, "bench-1");
    pack_str(&pk, "created_at"); msgpack_pack_int64(&pk, 1700000000);

    for (i = 0; i < n; i++) {
        msgpack_pack_map(&pk, 3);
        pack_str(&pk, "id");
        snprintf(id, sizeof(id), "c%09u", i);
        pack_str(&pk, id);
        pack_str(&pk, "keys");
        pack_keys(&pk, i);
        pack_str(&pk, "attrs");
        pack_attrs(&pk);

        if (sb.size > (1 << 20) && flush(&sb, f) != 0) {
            return -1;
        }
    }

    msgpack_pack_map(&pk, 2);
    pack_str(&pk, "end"); msgpack_pack_true(&pk);
    pack_str(&pk, "count"); msgpack_pack_uint32(&pk, n);

    if (flush(&sb, f) != 0 || fclose(f) != 0) {
        return -1;
    }

    msgpack_sbuffer_destroy(&sb);
    return 0;
}


/* 100k deltas: 60% patch, 25% upsert, 10% keys, 5% delete. */

static int
gen_deltas(const char *path, uint32_t n, uint32_t count)
{
    char             id[32], buf[64];
    uint32_t         i, r, p;
    FILE            *f;
    msgpack_sbuffer  sb;
    msgpack_packer   pk;

    f = fopen(path, "wb");
    if (f == NULL) {
        return -1;
    }

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

    msgpack_pack_map(&pk, 2);
    pack_str(&pk, "cef"); pack_str(&pk, "delta");
    pack_str(&pk, "version"); msgpack_pack_int(&pk, 1);

    for (i = 0; i < count; i++) {
        r = rnd(100);
        p = rnd(n);
        snprintf(id, sizeof(id), "c%09u", p);

        if (r < 60) {
            msgpack_pack_map(&pk, 5);
            pack_str(&pk, "seq"); msgpack_pack_uint32(&pk, i + 1);
            pack_str(&pk, "op"); pack_str(&pk, "patch");
            pack_str(&pk, "id"); pack_str(&pk, id);
            pack_str(&pk, "set");
            msgpack_pack_map(&pk, 2);
            pack_str(&pk, "clv");
            msgpack_pack_double(&pk, rnd(500000) / 100.0);
            pack_str(&pk, "churn_risk");
            msgpack_pack_double(&pk, rnd(101) / 100.0);
            pack_str(&pk, "unset");
            msgpack_pack_array(&pk, 0);

        } else if (r < 85) {
            msgpack_pack_map(&pk, 5);
            pack_str(&pk, "seq"); msgpack_pack_uint32(&pk, i + 1);
            pack_str(&pk, "op"); pack_str(&pk, "upsert");
            pack_str(&pk, "id");
            if (r < 75) {
                pack_str(&pk, id);
                pack_str(&pk, "keys");
                pack_keys(&pk, p);
            } else {
                snprintf(id, sizeof(id), "n%09u", i);
                pack_str(&pk, id);
                pack_str(&pk, "keys");
                pack_keys(&pk, n + i);
            }
            pack_str(&pk, "attrs");
            pack_attrs(&pk);

        } else if (r < 95) {
            msgpack_pack_map(&pk, 4);
            pack_str(&pk, "seq"); msgpack_pack_uint32(&pk, i + 1);
            pack_str(&pk, "op"); pack_str(&pk, "keys");
            pack_str(&pk, "id"); pack_str(&pk, id);
            pack_str(&pk, "add");
            msgpack_pack_array(&pk, 1);
            msgpack_pack_array(&pk, 2);
            pack_str(&pk, "device");
            snprintf(buf, sizeof(buf), "dev-%u", i);
            pack_str(&pk, buf);

        } else {
            msgpack_pack_map(&pk, 3);
            pack_str(&pk, "seq"); msgpack_pack_uint32(&pk, i + 1);
            pack_str(&pk, "op"); pack_str(&pk, "delete");
            pack_str(&pk, "id"); pack_str(&pk, id);
        }

        if (sb.size > (1 << 20) && flush(&sb, f) != 0) {
            return -1;
        }
    }

    if (flush(&sb, f) != 0 || fclose(f) != 0) {
        return -1;
    }

    msgpack_sbuffer_destroy(&sb);
    return 0;
}


static double
now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static double  last_cpu;     /* user + system seconds of the last run() */

static double
run(char *const argv[])
{
    int            status;
    pid_t          pid;
    double         t;
    struct rusage  ru;

    t = now();
    pid = fork();

    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }

    if (pid < 0 || wait4(pid, &status, 0, &ru) != pid
        || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    {
        fprintf(stderr, "bench: %s %s failed\n", argv[0], argv[1]);
        exit(1);
    }

    last_cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
               + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;

    return now() - t;
}


static int
cmp_double(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return x < y ? -1 : x > y;
}


int
main(int argc, char **argv)
{
    char              snap[4096], deltas[4096], store[4096], secret[4096],
                      data[4096], err[512], buf[64];
    const char       *sync, *dir;
    uint32_t          n, i, k, nlook = 500000, found = 0, miss = 0;
    uint8_t          *hashes;
    double            t, *lat, sum;
    FILE             *f;
    struct stat       st;
    cef_store_t      *s;
    cef_profile_t     p;
    cef_value_t       v;
    cef_identity_t   *ident;
    cef_store_info_t  info;

    if (argc < 2) {
        fprintf(stderr, "usage: cef-store-bench DIR [N]\n");
        return 2;
    }

    dir = argv[1];
    n = argc > 2 ? (uint32_t) strtoul(argv[2], NULL, 10) : 1000000;
    sync = getenv("CEF_SYNC") ? getenv("CEF_SYNC") : "build/cef-sync";

    mkdir(dir, 0755);
    snprintf(snap, sizeof(snap), "%s/snapshot.msgpack", dir);
    snprintf(deltas, sizeof(deltas), "%s/deltas.msgpack", dir);
    snprintf(store, sizeof(store), "%s/store", dir);
    snprintf(secret, sizeof(secret), "%s/secret", dir);

    f = fopen(secret, "w");
    if (f == NULL || fputs("bench-secret-0123456789\n", f) < 0
        || fclose(f) != 0)
    {
        fprintf(stderr, "bench: cannot write %s\n", secret);
        return 1;
    }

    printf("generating %u reference profiles ...\n", n);
    fflush(stdout);

    if (gen_snapshot(snap, n) != 0 || gen_deltas(deltas, n, 100000) != 0) {
        fprintf(stderr, "bench: cannot write the inputs: %s\n",
                strerror(errno));
        return 1;
    }

    stat(snap, &st);
    printf("snapshot: %.1f MB msgpack (%.0f bytes/profile)\n",
           st.st_size / 1e6, (double) st.st_size / n);

    {
        char *const  load[] = { (char *) sync, "load", "--store", store,
                                "--secret", secret, "--quiet", snap, NULL };
        char *const  apply[] = { (char *) sync, "apply", "--store", store,
                                 "--secret", secret, "--quiet", deltas, NULL };

        double  best = 0, runs[3], cpu = 0;
        int     r;
        double  avg[3] = { 0, 0, 0 };
        FILE   *la;

        /* other processes on the machine skew the figures: say so */
        la = fopen("/proc/loadavg", "r");
        if (la && fscanf(la, "%lf %lf %lf", &avg[0], &avg[1], &avg[2]) == 3) {
            printf("machine: %ld CPUs, load average %.2f (other processes "
                   "compete with the figures below)\n",
                   sysconf(_SC_NPROCESSORS_ONLN), avg[0]);
        }
        if (la) {
            fclose(la);
        }

        run(load);   /* warm-up: page cache, and a store to replace */

        for (r = 0; r < 3; r++) {
            runs[r] = run(load);
            if (best == 0 || runs[r] < best) {
                best = runs[r];
                cpu = last_cpu;
            }
        }

        printf("load:   %u profiles in %.2f s = %.0f profiles/s "
               "(best of 3: %.2f, %.2f, %.2f s; full replace, incl. "
               "fsync); CPU %.2f s user+sys over 2 threads\n", n, best,
               n / best, runs[0], runs[1], runs[2], cpu);

        t = run(apply);
        printf("apply:  100000 delta records in %.2f s = %.0f records/s "
               "(60%% patch, 25%% upsert, 10%% keys, 5%% delete; "
               "validated, then applied in batches of 10000); CPU %.2f s\n",
               t, 100000 / t, last_cpu);
    }

    /* bytes on disk, after a fresh load (deltas grow the file a little) */

    {
        char *const  load[] = { (char *) sync, "load", "--store", store,
                                "--secret", secret, "--quiet", snap, NULL };
        uint64_t     gen;

        run(load);

        if (cef_store_current(store, data, sizeof(data) - 16, &gen) != 0) {
            fprintf(stderr, "bench: no current generation\n");
            return 1;
        }
        strcat(data, "/data.mdb");
        stat(data, &st);
        printf("disk:   data.mdb %llu bytes = %.1f bytes/profile "
               "(%.1f allocated), keys and id index included\n",
               (unsigned long long) st.st_size, (double) st.st_size / n,
               (double) st.st_blocks * 512 / n);
    }

    /* lookups */

    ident = cef_identity_create_from_file(secret, err, sizeof(err));
    if (ident == NULL || cef_store_open(&s, store, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench: %s\n", err);
        return 1;
    }

    hashes = malloc((size_t) nlook * CEF_IDENTITY_HASH_LEN);
    lat = malloc(nlook * sizeof(double));

    for (i = 0; i < nlook; i++) {
        k = rnd(n);
        snprintf(buf, sizeof(buf), "user%u@example.com", k);
        cef_identity_hash(ident, "email", 5, buf, strlen(buf),
                          hashes + (size_t) i * CEF_IDENTITY_HASH_LEN);
    }

    /* one pass to fault the map in, as a warm nginx worker has it */
    for (i = 0; i < nlook; i++) {
        cef_store_begin(s);
        cef_store_lookup_hash(s, hashes + (size_t) i * CEF_IDENTITY_HASH_LEN,
                              &p);
        cef_store_end(s);
    }

    cef_store_begin(s);
    cef_store_info(s, &info);
    cef_store_end(s);

    for (k = 0; k < 2; k++) {
        cef_store_set_caching(s, k == 0);
        found = miss = 0;

        for (i = 0; i < nlook; i++) {
            t = now();
            if (cef_store_begin(s) != CEF_STORE_OK) {
                fprintf(stderr, "bench: %s\n", cef_store_strerror(s));
                return 1;
            }
            if (cef_store_lookup_hash(s, hashes
                                         + (size_t) i * CEF_IDENTITY_HASH_LEN,
                                      &p) == CEF_STORE_OK
                && cef_profile_get(&p, cef_span_lit("segments"), &v) == 1)
            {
                found++;
            } else {
                miss++;
            }
            cef_store_end(s);
            lat[i] = now() - t;
        }

        qsort(lat, nlook, sizeof(double), cmp_double);
        for (sum = 0, i = 0; i < nlook; i++) {
            sum += lat[i];
        }

        printf("lookup: %u random keys over %llu profiles, session "
               "(txn renew) + key lookup + get \"segments\" + reset, %s: "
               "median %.2f us, p99 %.2f us, mean %.2f us (%u found, %u "
               "missing)\n", nlook, (unsigned long long) info.profiles,
               k == 0 ? "pointer cache on (default)" : "pointer cache off",
               lat[nlook / 2] * 1e6, lat[nlook * 99 / 100] * 1e6,
               sum / nlook * 1e6, found, miss);
    }

    cef_store_set_caching(s, 1);

    /* the same with the HMAC of the key included */

    for (i = 0; i < nlook; i++) {
        k = rnd(n);
        snprintf(buf, sizeof(buf), "user%u@example.com", k);
        t = now();
        cef_store_begin(s);
        cef_store_lookup_key(s, ident, "email", 5, buf, strlen(buf), &p);
        cef_store_end(s);
        lat[i] = now() - t;
    }

    qsort(lat, nlook, sizeof(double), cmp_double);
    printf("lookup: cache on, including HMAC-SHA256 of \"email:VALUE\": "
           "median %.2f us, p99 %.2f us\n", lat[nlook / 2] * 1e6,
           lat[nlook * 99 / 100] * 1e6);

    cef_store_close(s);
    cef_identity_free(ident);
    free(hashes);
    free(lat);

    return 0;
}
