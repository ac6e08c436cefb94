/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-sync: the sync agent, the profile store's only writer.
 *
 *   cef-sync load   --store DIR --secret FILE [options] SNAPSHOT|-
 *   cef-sync apply  --store DIR --secret FILE [options] DELTAS|-
 *   cef-sync stat   --store DIR [--json]
 *   cef-sync get    --store DIR --secret FILE (--key TYPE:VALUE | --id ID)
 *   cef-sync verify --store DIR [--secret FILE]
 *   cef-sync consume --store DIR --secret FILE --brokers LIST --topic T ...
 *
 * Exit codes: 0 ok, 1 bad input (nothing changed), 2 usage, 3 store error.
 * See docs/cef-sync.md.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cef_identity.h"
#include "cef_input.h"
#include "cef_store.h"
#include "cef_writer.h"
#include "cef_version.h"
#include "cef_sync.h"


#define CEF_SYNC_MS_MAX  86400000     /* a day: the longest interval option */


static const char  cef_sync_usage[] =
    "usage:\n"
    "  cef-sync load   --store DIR --secret FILE [options] SNAPSHOT|-\n"
    "  cef-sync apply  --store DIR --secret FILE [options] DELTAS|-\n"
    "  cef-sync consume --store DIR --secret FILE --brokers LIST --topic T\n"
    "                  [--format msgpack|json] [--from-beginning]\n"
    "                  [--kafka-group G]\n"
    "                  [--on-bad-record=stop|skip] [options]\n"
    "  cef-sync stat   --store DIR [--json] [--brokers LIST]\n"
    "  cef-sync get    --store DIR --secret FILE (--key TYPE:VALUE | --id ID)\n"
    "  cef-sync verify --store DIR [--secret FILE]\n"
    "\n"
    "options:\n"
    "  --quiet, -q        no progress and no summary\n"
    "  --map-size SIZE    LMDB map size, e.g. 512M, 16G (load: default 16G;\n"
    "                     apply, consume: grow the store's map to SIZE)\n"
    "  --batch N          apply, consume: records per transaction (default\n"
    "                     10000)\n"
    "  --idle-ms MS       apply: commit a partial batch after MS idle (200;\n"
    "                     0: never)\n"
    "  --batch-ms MS      consume: commit a batch at the latest MS after its\n"
    "                     first record (default 200)\n"
    "  --refresh-ms MS    consume: look for new partitions every MS (30000)\n"
    "  --exit-at-end      consume: exit 0 once every partition is caught up\n"
    "  --brokers LIST     consume, stat: Kafka bootstrap servers, host:port,..\n"
    "  --topic T          consume: the topic (messages: delta records keyed\n"
    "                     by profile id; a null value erases the profile)\n"
    "  --format F         consume: msgpack (default) or json\n"
    "  --from-beginning   consume: a store without offsets starts at the\n"
    "                     beginning of the topic (default: at its end)\n"
    "  --kafka-group G    consume: also commit offsets to Kafka as group G\n"
    "  --group G          load, apply, consume: the store directory's group:\n"
    "                     made setgid, and every file written group-\n"
    "                     writable, so nginx workers in group G can use it\n"
    "  --nginx-user NAME  load: the user nginx workers run as, to check\n"
    "                     they can use the new generation (default: the\n"
    "                     user directive of /etc/nginx/nginx.conf)\n"
    "  --on-bad-record=stop|skip  consume: stop at a bad record (default)\n"
    "                     or log and skip it\n"
    "  --no-wait          fail at once if another cef-sync is writing\n"
    "  --json             stat: JSON output\n"
    "  --help, --version\n"
    "\n"
    "exit codes: 0 ok, 1 bad input (nothing changed), 2 usage, "
    "3 store error\n";


static int
cef_sync_usage_error(const char *fmt, ...)
{
    va_list  ap;

    fprintf(stderr, "cef-sync: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n\n%s", cef_sync_usage);

    return EXIT_USAGE;
}


double
cef_sync_elapsed(const struct timespec *from)
{
    struct timespec  now;

    clock_gettime(CLOCK_MONOTONIC, &now);

    return (now.tv_sec - from->tv_sec) + (now.tv_nsec - from->tv_nsec) / 1e9;
}


static void
cef_sync_progress(void *data, const cef_input_t *in, uint64_t records,
    int done)
{
    cef_sync_t  *s = data;
    double       t, rate, frac;
    int64_t      size;
    char         eta[32] = "";

    if (!s->tty || s->quiet) {
        return;
    }

    if (done) {
        if (s->shown) {
            fprintf(stderr, "\r\033[K");
        }
        return;
    }

    if (cef_sync_elapsed(&s->last) < 0.1) {
        return;
    }

    clock_gettime(CLOCK_MONOTONIC, &s->last);
    t = cef_sync_elapsed(&s->start);
    rate = t > 0 ? records / t : 0;
    size = cef_input_size(in);

    if (size > 0) {
        frac = (double) cef_input_consumed(in) / size;
        if (frac > 0) {
            snprintf(eta, sizeof(eta), "  %3.0f%%  ETA %.0fs", frac * 100,
                     t / frac - t);
        }
    }

    fprintf(stderr, "\r\033[K%s: %llu records  %.0f records/s%s", s->cmd,
            (unsigned long long) records, rate, eta);
    s->shown = 1;
}


void
cef_sync_notice(void *data, const char *msg)
{
    cef_sync_t  *s = data;

    if (!s->quiet) {
        fprintf(stderr, "cef-sync: %s\n", msg);
    }
}


/*
 * The one parser of cef-sync's numeric options: digits only (no sign, no
 * blank, no base prefix), then, for a size, one K, M, G or T (powers of
 * 1024); the value must lie in [min, max].  0, or the usage error naming
 * the option.
 */

static int
cef_sync_number(const char *opt, const char *arg, int size, uint64_t min,
    uint64_t max, uint64_t *out)
{
    int                  shift = 0;
    char                *end;
    unsigned long long   v;

    if (*arg < '0' || *arg > '9') {
        goto invalid;
    }

    errno = 0;
    v = strtoull(arg, &end, 10);

    if (size) {
        switch (*end) {
        case 'k': case 'K': shift = 10; end++; break;
        case 'm': case 'M': shift = 20; end++; break;
        case 'g': case 'G': shift = 30; end++; break;
        case 't': case 'T': shift = 40; end++; break;
        default: break;
        }
    }

    if (*end != '\0') {
        goto invalid;
    }

    if (errno == ERANGE || v > (max >> shift)) {
        return cef_sync_usage_error("invalid --%s \"%s\": at most %llu%s",
                                    opt, arg, (unsigned long long) max,
                                    size ? " bytes" : "");
    }

    if ((v << shift) < min) {
        return cef_sync_usage_error("invalid --%s \"%s\": at least %llu%s",
                                    opt, arg, (unsigned long long) min,
                                    size ? " byte" : "");
    }

    *out = v << shift;
    return 0;

invalid:

    return cef_sync_usage_error("invalid --%s \"%s\": expected %s", opt, arg,
                                size ? "a number of bytes, optionally with "
                                       "K, M, G or T (e.g. 512M)"
                                     : "a whole number");
}


/* --group: a group name, or a number; 0, or EXIT_USAGE with the message */

static int
cef_sync_parse_group(const char *arg, gid_t *gid)
{
    uint64_t       n;
    struct group  *gr;

    gr = getgrnam(arg);
    if (gr != NULL) {
        *gid = gr->gr_gid;
        return 0;
    }

    if (*arg < '0' || *arg > '9') {
        return cef_sync_usage_error("--group: unknown group \"%s\"", arg);
    }

    if (cef_sync_number("group", arg, 0, 0, (gid_t) -1 - 1, &n) != 0) {
        return EXIT_USAGE;
    }

    *gid = (gid_t) n;
    return 0;
}


cef_identity_t *
cef_sync_identity(cef_sync_t *s)
{
    char             err[512];
    cef_identity_t  *id;

    id = cef_identity_create_from_file(s->secret, err, sizeof(err));
    if (id == NULL) {
        fprintf(stderr, "cef-sync: %s\n", err);
    }

    return id;
}


static int
cef_sync_write(cef_sync_t *s, int load)
{
    int                  fd, rc;
    char                 err[1024];
    double               t;
    cef_input_t         *in;
    cef_identity_t      *ident;
    cef_writer_conf_t    conf;
    cef_writer_result_t  res;

    ident = cef_sync_identity(s);
    if (ident == NULL) {
        return EXIT_INPUT;
    }

    if (strcmp(s->input, "-") == 0) {
        fd = STDIN_FILENO;

    } else {
        fd = open(s->input, O_RDONLY|O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "cef-sync: cannot open \"%s\": %s\n", s->input,
                    strerror(errno));
            cef_identity_free(ident);
            return EXIT_INPUT;
        }
    }

    in = cef_input_open_fd(fd);
    if (in == NULL) {
        fprintf(stderr, "cef-sync: out of memory\n");
        cef_identity_free(ident);
        return EXIT_STORE;
    }

    memset(&conf, 0, sizeof(conf));
    conf.dir = s->store;
    conf.ident = ident;
    conf.map_size = s->map_size;
    conf.wait = !s->no_wait;
    conf.set_group = s->set_group;
    conf.group = s->group;
    conf.batch = s->batch;
    conf.idle_ms = s->idle_ms;
    conf.progress = cef_sync_progress;
    conf.notice = cef_sync_notice;
    conf.data = s;

    s->tty = isatty(STDERR_FILENO);
    clock_gettime(CLOCK_MONOTONIC, &s->start);
    s->last = s->start;

    rc = load ? cef_writer_load(&conf, in, &res, err, sizeof(err))
              : cef_writer_apply(&conf, in, &res, err, sizeof(err));

    t = cef_sync_elapsed(&s->start);
    cef_sync_progress(s, in, 0, 1);

    if (rc != CEF_WRITER_OK) {
        fprintf(stderr, "cef-sync: %s: %s%s\n", s->input, err,
                rc == CEF_WRITER_EINPUT ? " (nothing changed)" : "");

    } else if (!s->quiet && load) {
        printf("loaded %llu profiles, %llu keys in %.2fs (%.0f profiles/s); "
               "generation %llu, data.mdb %llu bytes\n",
               (unsigned long long) res.profiles,
               (unsigned long long) res.keys, t,
               t > 0 ? res.profiles / t : 0.0,
               (unsigned long long) res.generation,
               (unsigned long long) res.data_bytes);

    } else if (!s->quiet) {
        printf("applied %llu records (%llu skipped as already applied, %llu "
               "for unknown profiles) in %llu batches, %.2fs (%.0f "
               "records/s); last seq %llu; %llu profiles, %llu keys\n",
               (unsigned long long) res.applied,
               (unsigned long long) res.skipped,
               (unsigned long long) res.missing,
               (unsigned long long) res.batches, t,
               t > 0 ? (res.applied + res.skipped) / t : 0.0,
               (unsigned long long) res.last_seq,
               (unsigned long long) res.profiles,
               (unsigned long long) res.keys);
    }

    if (rc == CEF_WRITER_OK && !s->quiet) {
        cef_sync_print_published(&res);
    }

    if (rc == CEF_WRITER_OK && load) {
        cef_sync_check_access(s);
    }

    cef_input_close(in);
    if (fd != STDIN_FILENO) {
        close(fd);
    }
    cef_identity_free(ident);

    return rc == CEF_WRITER_OK ? EXIT_OK
           : rc == CEF_WRITER_EINPUT ? EXIT_INPUT : EXIT_STORE;
}


static void
cef_sync_time(char *buf, size_t size, int64_t t)
{
    time_t     tt = (time_t) t;
    struct tm  tm;

    if (t == 0 || gmtime_r(&tt, &tm) == NULL) {
        snprintf(buf, size, "-");
        return;
    }

    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}


static int
cef_sync_stat(cef_sync_t *s)
{
    int                   orc, lag = 0;
    char                  err[512], path[4096], c[32], l[32], u[32];
    uint32_t              p, nparts = 0, high_parts = 0;
    uint64_t              gen;
    struct stat           st;
    json_t               *j, *ko, *parts, *po, *pub;
    cef_store_t          *store;
    cef_store_info_t      info;
    long long             bytes = 0;
    static cef_store_offsets_t  offs;
    static int64_t              high[CEF_STORE_PARTITIONS_MAX];

    if (cef_store_open(&store, s->store, err, sizeof(err)) != CEF_STORE_OK) {
        fprintf(stderr, "cef-sync: %s\n", err);
        return EXIT_STORE;
    }

    if (cef_store_begin(store) != CEF_STORE_OK) {
        fprintf(stderr, "cef-sync: %s\n", cef_store_strerror(store));
        cef_store_close(store);
        return EXIT_STORE;
    }

    cef_store_info(store, &info);
    orc = cef_store_offsets(store, &offs);
    if (orc == CEF_STORE_ERROR) {
        fprintf(stderr, "cef-sync: %s\n", cef_store_strerror(store));
    }

    /* weights and rule sets: printed after the rest, read now */
    pub = json_object();
    if (orc != CEF_STORE_ERROR && (pub == NULL
        || cef_sync_stat_published(store, pub) != 0))
    {
        fprintf(stderr, "cef-sync: %s\n", pub ? cef_store_strerror(store)
                                              : "out of memory");
        orc = CEF_STORE_ERROR;
    }

    cef_store_end(store);
    cef_store_close(store);

    if (orc == CEF_STORE_ERROR) {
        json_decref(pub);
        return EXIT_STORE;
    }

    nparts = offs.partitions;

    if (s->brokers) {
        if (orc != CEF_STORE_OK) {
            fprintf(stderr, "cef-sync: the store holds no Kafka offsets: "
                    "no lag to show\n");
        } else {
            s->topic = offs.topic;
            if (cef_sync_kafka_highs(s, high, &high_parts, err, sizeof(err))
                != 0)
            {
                fprintf(stderr, "cef-sync: %s\n", err);
                return EXIT_INPUT;
            }
            lag = 1;
            if (high_parts > nparts) {
                nparts = high_parts;
            }
        }
    }

    if (cef_store_current(s->store, path, sizeof(path) - 16, &gen) == 0) {
        strcat(path, "/data.mdb");
        if (stat(path, &st) == 0) {
            bytes = (long long) st.st_size;
        }
    }

    if (s->json) {
        j = json_pack("{s:s, s:I, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, "
                      "s:I, s:I, s:I}",
                      "store", s->store,
                      "generation", (json_int_t) info.generation,
                      "format", (json_int_t) info.format,
                      "snapshot_id", info.snapshot_id,
                      "created_at", (json_int_t) info.created_at,
                      "loaded_at", (json_int_t) info.loaded_at,
                      "updated_at", (json_int_t) info.updated_at,
                      "last_seq", (json_int_t) info.last_seq,
                      "profiles", (json_int_t) info.profiles,
                      "keys", (json_int_t) info.keys,
                      "names", (json_int_t) info.names,
                      "strings", (json_int_t) info.strs,
                      "data_bytes", (json_int_t) bytes);
        if (j == NULL) {
            fprintf(stderr, "cef-sync: out of memory\n");
            return EXIT_STORE;
        }

        if (orc == CEF_STORE_OK) {
            parts = json_array();
            ko = json_pack("{s:s, s:o}", "topic", offs.topic,
                           "partitions", parts);
            for (p = 0; p < nparts; p++) {
                po = json_pack("{s:i}", "partition", (int) p);
                json_object_set_new(po, "offset", offs.next[p] >= 0
                                    ? json_integer(offs.next[p])
                                    : json_null());
                if (lag) {
                    json_object_set_new(po, "high", p < high_parts
                                        ? json_integer(high[p])
                                        : json_null());
                    json_object_set_new(po, "lag", p < high_parts
                                        ? json_integer(high[p]
                                              - (offs.next[p] >= 0
                                                 ? offs.next[p] : 0))
                                        : json_null());
                }
                json_array_append_new(parts, po);
            }
            json_object_set_new(j, "kafka", ko);
        }

        json_object_update(j, pub);
        json_decref(pub);

        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("\n");
        json_decref(j);
        return EXIT_OK;
    }

    cef_sync_time(c, sizeof(c), info.created_at);
    cef_sync_time(l, sizeof(l), info.loaded_at);
    cef_sync_time(u, sizeof(u), info.updated_at);

    printf("store        %s\n", s->store);
    printf("generation   %llu\n", (unsigned long long) info.generation);
    printf("format       %u\n", info.format);
    printf("snapshot     %s\n", info.snapshot_id);
    printf("created at   %s\n", c);
    printf("loaded at    %s\n", l);
    printf("updated at   %s\n", u);
    printf("last seq     %llu\n", (unsigned long long) info.last_seq);
    printf("profiles     %llu\n", (unsigned long long) info.profiles);
    printf("keys         %llu\n", (unsigned long long) info.keys);
    printf("names        %u\n", info.names);
    printf("strings      %u\n", info.strs);
    printf("data.mdb     %lld bytes", bytes);
    if (info.profiles) {
        printf(" (%.1f per profile)", (double) bytes / info.profiles);
    }
    printf("\n");

    if (orc == CEF_STORE_OK) {
        printf("kafka topic  %s\n", offs.topic);
        for (p = 0; p < nparts; p++) {
            printf("partition %-3u", p);
            if (offs.next[p] >= 0) {
                printf("next offset %lld", (long long) offs.next[p]);
            } else {
                printf("next offset -  (from the beginning)");
            }
            if (lag && p < high_parts) {
                printf("  lag %lld", (long long) (high[p]
                       - (offs.next[p] >= 0 ? offs.next[p] : 0)));
            }
            printf("\n");
        }
    }

    cef_sync_print_published_stat(pub);
    json_decref(pub);

    return EXIT_OK;
}


static json_t *
cef_sync_value_json(const cef_value_t *v)
{
    size_t       pos = 0;
    double       d;
    json_t      *j;
    cef_span_t   s;

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
            char  *k = strndup(s.data, s.len);

            if (k) {
                json_object_set_new(j, k, json_real(d));
                free(k);
            }
        }
        return j;
    }

    return json_null();
}


static int
cef_sync_get(cef_sync_t *s)
{
    int              rc, ret = EXIT_STORE;
    char             err[512], *name;
    size_t           pos = 0;
    const char      *colon;
    json_t          *j, *attrs;
    cef_span_t       n;
    cef_value_t      v;
    cef_store_t     *store;
    cef_profile_t    p;
    cef_identity_t  *ident;

    ident = cef_sync_identity(s);
    if (ident == NULL) {
        return EXIT_INPUT;
    }

    if (cef_store_open(&store, s->store, err, sizeof(err)) != CEF_STORE_OK) {
        fprintf(stderr, "cef-sync: %s\n", err);
        cef_identity_free(ident);
        return EXIT_STORE;
    }

    if (cef_store_begin(store) != CEF_STORE_OK) {
        fprintf(stderr, "cef-sync: %s\n", cef_store_strerror(store));
        goto done;
    }

    rc = cef_store_check_secret(store, ident);
    if (rc != CEF_STORE_OK) {
        fprintf(stderr, "cef-sync: the secret is not the one the store was "
                "loaded with\n");
        ret = EXIT_INPUT;
        goto end;
    }

    if (s->key) {
        colon = strchr(s->key, ':');
        rc = cef_store_lookup_key(store, ident, s->key, colon - s->key,
                                  colon + 1, strlen(colon + 1), &p);
    } else {
        rc = cef_store_lookup_id(store, ident, s->id, strlen(s->id), &p);
    }

    if (rc == CEF_STORE_NOTFOUND) {
        fprintf(stderr, "cef-sync: no profile for %s \"%s\"\n",
                s->key ? "key" : "id", s->key ? s->key : s->id);
        ret = EXIT_INPUT;
        goto end;
    }

    if (rc != CEF_STORE_OK) {
        fprintf(stderr, "cef-sync: %s\n", cef_store_strerror(store));
        goto end;
    }

    attrs = json_object();
    j = json_pack("{s:s%, s:o}", "id", p.id.data, p.id.len, "attrs", attrs);

    while ((rc = cef_profile_next(&p, &pos, &n, &v)) == 1) {
        name = strndup(n.data, n.len);
        if (name) {
            json_object_set_new(attrs, name, cef_sync_value_json(&v));
            free(name);
        }
    }

    if (rc < 0) {
        fprintf(stderr, "cef-sync: the stored profile is malformed\n");
        json_decref(j);
        goto end;
    }

    /* 16 digits: 0.23 prints as 0.23, not 0.23000000000000001 */
    json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER
                          | JSON_REAL_PRECISION(16));
    printf("\n");
    json_decref(j);
    ret = EXIT_OK;

end:

    cef_store_end(store);

done:

    cef_store_close(store);
    cef_identity_free(ident);
    return ret;
}


static void
cef_sync_report(void *data, const char *msg)
{
    (void) data;
    fprintf(stderr, "cef-sync: verify: %s\n", msg);
}


static int
cef_sync_verify(cef_sync_t *s)
{
    int                  rc;
    char                 err[512];
    cef_identity_t      *ident = NULL;
    cef_writer_verify_result_t  res;

    if (s->secret) {
        ident = cef_sync_identity(s);
        if (ident == NULL) {
            return EXIT_INPUT;
        }
    }

    rc = cef_writer_verify(s->store, ident, cef_sync_report, s, &res, err,
                          sizeof(err));
    cef_identity_free(ident);

    if (rc != CEF_WRITER_OK) {
        fprintf(stderr, "cef-sync: verify \"%s\": %s\n", s->store, err);
        return EXIT_STORE;
    }

    if (!s->quiet) {
        printf("ok: %llu profiles, %llu keys, %llu index entries%s\n",
               (unsigned long long) res.profiles,
               (unsigned long long) res.keys,
               (unsigned long long) res.index_entries,
               ident ? "" : " (id entries not checked: no --secret)");
    }

    return EXIT_OK;
}


int
main(int argc, char **argv)
{
    int         c;
    uint64_t    n;
    cef_sync_t  s;

    static const struct option  opts[] = {
        { "store",    required_argument, NULL, 's' },
        { "secret",   required_argument, NULL, 'k' },
        { "key",      required_argument, NULL, 'K' },
        { "id",       required_argument, NULL, 'i' },
        { "map-size", required_argument, NULL, 'm' },
        { "batch",    required_argument, NULL, 'b' },
        { "idle-ms",  required_argument, NULL, 'I' },
        { "quiet",    no_argument,       NULL, 'q' },
        { "json",     no_argument,       NULL, 'j' },
        { "no-wait",  no_argument,       NULL, 'n' },
        { "brokers",  required_argument, NULL, 'B' },
        { "topic",    required_argument, NULL, 'T' },
        { "kafka-group", required_argument, NULL, 'G' },
        { "group",    required_argument, NULL, 'g' },
        { "nginx-user", required_argument, NULL, 'U' },
        { "format",   required_argument, NULL, 'F' },
        { "from-beginning", no_argument, NULL, 'f' },
        { "on-bad-record", required_argument, NULL, 'R' },
        { "batch-ms", required_argument, NULL, 'M' },
        { "refresh-ms", required_argument, NULL, 'r' },
        { "exit-at-end", no_argument,    NULL, 'E' },
        { "help",     no_argument,       NULL, 'h' },
        { "version",  no_argument,       NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };

    memset(&s, 0, sizeof(s));
    s.idle_ms = 200;
    s.batch_ms = 200;
    s.refresh_ms = 30000;

    if (argc > 1 && (strcmp(argv[1], "--version") == 0)) {
        printf("cef-sync %s\n", cef_version());
        return EXIT_OK;
    }

    if (argc > 1 && (strcmp(argv[1], "--help") == 0
                     || strcmp(argv[1], "-h") == 0))
    {
        printf("%s", cef_sync_usage);
        return EXIT_OK;
    }

    if (argc < 2 || argv[1][0] == '-') {
        return cef_sync_usage_error("missing command");
    }

    s.cmd = argv[1];

    if (strcmp(s.cmd, "load") && strcmp(s.cmd, "apply")
        && strcmp(s.cmd, "stat") && strcmp(s.cmd, "get")
        && strcmp(s.cmd, "verify") && strcmp(s.cmd, "consume"))
    {
        return cef_sync_usage_error("unknown command \"%s\"", s.cmd);
    }

    optind = 2;
    opterr = 0;

    while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
        switch (c) {
        case 's': s.store = optarg; break;
        case 'k': s.secret = optarg; break;
        case 'K': s.key = optarg; break;
        case 'i': s.id = optarg; break;
        case 'q': s.quiet = 1; break;
        case 'j': s.json = 1; break;
        case 'n': s.no_wait = 1; break;

        case 'm':
            if (cef_sync_number("map-size", optarg, 1, 1, SIZE_MAX, &n)) {
                return EXIT_USAGE;
            }
            s.map_size = (size_t) n;
            break;

        case 'b':
            if (cef_sync_number("batch", optarg, 0, 1, UINT32_MAX, &n)) {
                return EXIT_USAGE;
            }
            s.batch = (uint32_t) n;
            break;

        case 'I':
            if (cef_sync_number("idle-ms", optarg, 0, 0, CEF_SYNC_MS_MAX,
                                &n))
            {
                return EXIT_USAGE;
            }
            s.idle_ms = (int) n;
            break;

        case 'B': s.brokers = optarg; break;
        case 'T': s.topic = optarg; break;
        case 'G': s.kafka_group = optarg; break;
        case 'U': s.nginx_user = optarg; break;

        case 'g':
            if (cef_sync_parse_group(optarg, &s.group) != 0) {
                return EXIT_USAGE;
            }
            s.set_group = 1;
            break;
        case 'f': s.from_beginning = 1; break;
        case 'E': s.exit_at_end = 1; break;

        case 'F':
            if (strcmp(optarg, "json") == 0) {
                s.format_json = 1;
            } else if (strcmp(optarg, "msgpack") == 0) {
                s.format_json = 0;
            } else {
                return cef_sync_usage_error("invalid --format \"%s\" "
                                            "(msgpack or json)", optarg);
            }
            break;

        case 'R':
            if (strcmp(optarg, "skip") == 0) {
                s.skip_bad = 1;
            } else if (strcmp(optarg, "stop") == 0) {
                s.skip_bad = 0;
            } else {
                return cef_sync_usage_error("invalid --on-bad-record \"%s\" "
                                            "(stop or skip)", optarg);
            }
            break;

        case 'M':
        case 'r':
            if (cef_sync_number(c == 'M' ? "batch-ms" : "refresh-ms", optarg,
                                0, 1, CEF_SYNC_MS_MAX, &n))
            {
                return EXIT_USAGE;
            }
            *(c == 'M' ? &s.batch_ms : &s.refresh_ms) = (int) n;
            break;

        case 'h':
            printf("%s", cef_sync_usage);
            return EXIT_OK;

        case 'V':
            printf("cef-sync %s\n", cef_version());
            return EXIT_OK;

        default:
            return cef_sync_usage_error("unknown or incomplete option \"%s\"",
                                        argv[optind - 1]);
        }
    }

    if (s.store == NULL) {
        return cef_sync_usage_error("%s: --store DIR is required", s.cmd);
    }

    if (strcmp(s.cmd, "load") == 0 || strcmp(s.cmd, "apply") == 0) {
        if (s.secret == NULL) {
            return cef_sync_usage_error("%s: --secret FILE is required",
                                        s.cmd);
        }
        if (optind != argc - 1) {
            return cef_sync_usage_error("%s: expected one input file or -",
                                        s.cmd);
        }
        s.input = argv[optind];
        return cef_sync_write(&s, s.cmd[0] == 'l');
    }

    if (optind != argc) {
        return cef_sync_usage_error("%s: unexpected argument \"%s\"", s.cmd,
                                    argv[optind]);
    }

    if (strcmp(s.cmd, "consume") == 0) {
        if (s.secret == NULL || s.brokers == NULL || s.topic == NULL) {
            return cef_sync_usage_error("consume: --secret FILE, --brokers "
                                        "LIST and --topic T are required");
        }
        if (s.topic[0] == '\0' || strlen(s.topic) > CEF_STORE_TOPIC_MAX) {
            return cef_sync_usage_error("consume: invalid --topic \"%s\"",
                                        s.topic);
        }
        return cef_sync_consume(&s);
    }

    if (strcmp(s.cmd, "stat") == 0) {
        return cef_sync_stat(&s);
    }

    if (strcmp(s.cmd, "verify") == 0) {
        return cef_sync_verify(&s);
    }

    if (s.secret == NULL) {
        return cef_sync_usage_error("get: --secret FILE is required");
    }

    if ((s.key == NULL) == (s.id == NULL)) {
        return cef_sync_usage_error("get: give exactly one of --key and --id");
    }

    if (s.key && (strchr(s.key, ':') == NULL || s.key[0] == ':')) {
        return cef_sync_usage_error("get: --key must be TYPE:VALUE");
    }

    return cef_sync_get(&s);
}
