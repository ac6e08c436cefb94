/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Reading the logs (cef_report_logs.h): a thread per file at a time, bad
 * lines reported and counted, progress on a terminal, then the join.
 */

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cef_report_join.h"
#include "cef_report_logs.h"
#include "cef_report_parse.h"
#include "cef_report_read.h"


#define SHOWN_MAX    100        /* malformed lines shown per file */
#define TICK_LINES   4096       /* lines between two progress updates */


typedef struct {
    const cef_report_logs_opts_t  *o;
    char *const                   *paths;
    size_t                         npaths;
    uint64_t                       total;       /* 0: unknown (a pipe) */

    pthread_mutex_t                lock;        /* failed */
    int                            failed;

    atomic_size_t                  next;        /* the next file */
    atomic_int                     stop;
    atomic_int                     running;
    atomic_uint_fast64_t           lines, bytes, malformed, done;
    atomic_uint_fast64_t          *offset;      /* per thread */
} run_t;


typedef struct {
    run_t                *run;
    size_t                id;
    cef_report_parser_t  *parser;
    cef_report_join_t    *join;        /* its own: no lock per record */
    pthread_t             tid;
} worker_t;


static const char *
shown_name(const char *path)
{
    return strcmp(path, "-") == 0 ? "stdin" : path;
}


static void
say(const run_t *R, const char *fmt, ...)
{
    char     msg[512];
    size_t   n = 0;
    va_list  ap;

    /* one write per message: lines of threads do not interleave (and a
       progress line is cleared first) */
    if (R->o->progress) {
        n = (size_t) snprintf(msg, sizeof(msg), "\r\033[K");
    }
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof(msg) - n, fmt, ap);
    va_end(ap);
    fputs(msg, stderr);
}


static void
fatal(run_t *R)
{
    pthread_mutex_lock(&R->lock);
    R->failed = 1;
    pthread_mutex_unlock(&R->lock);
    atomic_store(&R->stop, 1);
}


/* a line that is skipped; 0 to go on, -1 to stop (--strict) */
static int
malformed(run_t *R, const char *name, uint64_t line, const char *why,
    uint64_t *shown)
{
    atomic_fetch_add(&R->malformed, 1);
    if (R->o->strict || (*shown)++ < SHOWN_MAX) {
        say(R, "%s:%llu: %s\n", name, (unsigned long long) line, why);
    } else if (*shown == SHOWN_MAX + 1) {
        say(R, "%s: more malformed lines after line %llu are counted, not "
            "shown\n", name, (unsigned long long) line);
    }
    if (R->o->strict) {
        fatal(R);
        return -1;
    }
    return 0;
}


static void
read_file(worker_t *w, const char *path)
{
    run_t                       *R = w->run;
    cef_report_reader_t         *r;
    const cef_report_record_t   *rec;
    const char                  *line, *err, *why, *name = shown_name(path);
    size_t                       len;
    uint64_t                     lines = 0, bytes = 0, shown = 0, size;
    int                          rc;

    r = cef_report_read_open(path, &err);
    if (r == NULL) {
        say(R, "cef-report: %s: %s\n", name, err);
        fatal(R);
        return;
    }

    while (!atomic_load_explicit(&R->stop, memory_order_relaxed)) {
        rc = cef_report_read_line(r, &line, &len, &err);
        if (rc == 0) {
            break;
        }
        if (rc < 0) {
            /* an overlong line is skipped; a read error (a truncated
               .gz) ends the file after the lines read before it */
            if (err == cef_report_read_too_long) {
                if (malformed(R, name, cef_report_read_lineno(r), err,
                              &shown) != 0)
                {
                    break;
                }
                continue;
            }
            malformed(R, name, cef_report_read_lineno(r) + 1, err, &shown);
            break;
        }

        lines++;
        bytes += len + 1;
        if (lines % TICK_LINES == 0) {
            atomic_fetch_add(&R->lines, TICK_LINES);
            atomic_fetch_add(&R->bytes, bytes);
            bytes = 0;
            atomic_store(&R->offset[w->id], cef_report_read_offset(r));
        }

        rc = cef_report_parse_line(w->parser, line, len, &rec, &why);
        if (rc < 0) {
            if (malformed(R, name, cef_report_read_lineno(r), why, &shown)
                != 0)
            {
                break;
            }
            continue;
        }
        if (rc == 0) {
            continue;
        }

        if (cef_report_join_add(w->join, rec) != 0) {
            say(R, "cef-report: %s:%llu: out of memory\n", name,
                (unsigned long long) cef_report_read_lineno(r));
            fatal(R);
            break;
        }
    }

    atomic_fetch_add(&R->lines, lines % TICK_LINES);
    atomic_fetch_add(&R->bytes, bytes);
    size = cef_report_read_size(r);
    atomic_fetch_add(&R->done, size);
    atomic_store(&R->offset[w->id], 0);
    cef_report_read_close(r);
}


static void *
worker(void *arg)
{
    worker_t  *w = arg;
    run_t     *R = w->run;
    size_t     i;

    for ( ;; ) {
        i = atomic_fetch_add(&R->next, 1);
        if (i >= R->npaths || atomic_load(&R->stop)) {
            break;
        }
        read_file(w, R->paths[i]);
    }
    atomic_fetch_sub(&R->running, 1);
    return NULL;
}


static double
now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}


static void
progress(run_t *R, size_t jobs, double elapsed)
{
    uint64_t  at = atomic_load(&R->done), lines = atomic_load(&R->lines);
    size_t    i;

    for (i = 0; i < jobs; i++) {
        at += atomic_load(&R->offset[i]);
    }
    if (R->total > 0) {
        fprintf(stderr, "\r\033[Kcef-report: %.1fM lines, %.0f%% of %.1f GB, "
                "%.0fs", lines / 1e6, 100.0 * at / R->total,
                R->total / 1e9, elapsed);
    } else {
        fprintf(stderr, "\r\033[Kcef-report: %.1fM lines, %.1f GB, %.0fs",
                lines / 1e6, atomic_load(&R->bytes) / 1e9, elapsed);
    }
}


static uint64_t
total_size(char *const *paths, size_t n)
{
    struct stat  st;
    uint64_t     total = 0;
    size_t       i;

    for (i = 0; i < n; i++) {
        if (strcmp(paths[i], "-") == 0 || stat(paths[i], &st) != 0
            || !S_ISREG(st.st_mode))
        {
            return 0;
        }
        total += (uint64_t) st.st_size;
    }
    return total;
}


int
cef_report_logs_read(const cef_report_logs_opts_t *o, char *const *paths,
    size_t npaths, cef_report_test_t **tests, size_t *ntests,
    cef_report_logs_summary_t *sum)
{
    run_t                     R;
    worker_t                 *w = NULL;
    cef_report_join_stats_t   st;
    cef_report_join_opts_t    jo;
    size_t                    jobs, i, started = 0;
    double                    t0 = now(), shown = 0;
    int                       rc = -1;

    *tests = NULL;
    *ntests = 0;
    memset(sum, 0, sizeof(*sum));
    memset(&R, 0, sizeof(R));

    jobs = o->jobs > 0 ? (size_t) o->jobs
                       : (size_t) sysconf(_SC_NPROCESSORS_ONLN);
    if (jobs < 1) {
        jobs = 1;
    }
    if (jobs > npaths) {
        jobs = npaths;
    }

    R.o = o;
    R.paths = paths;
    R.npaths = npaths;
    R.total = total_size(paths, npaths);
    R.offset = calloc(jobs + 1, sizeof(atomic_uint_fast64_t));
    w = calloc(jobs + 1, sizeof(worker_t));
    pthread_mutex_init(&R.lock, NULL);
    if (R.offset == NULL || w == NULL) {
        fputs("cef-report: out of memory\n", stderr);
        goto done;
    }

    atomic_store(&R.running, (int) jobs);
    for (i = 0; i < jobs; i++) {
        w[i].run = &R;
        w[i].id = i;
        w[i].parser = cef_report_parse_new();
        w[i].join = cef_report_join_new();
        if (w[i].parser == NULL || w[i].join == NULL
            || pthread_create(&w[i].tid, NULL, worker, &w[i]) != 0)
        {
            fputs("cef-report: cannot start a reading thread\n", stderr);
            fatal(&R);
            atomic_fetch_sub(&R.running, (int) (jobs - i));
            break;
        }
        started++;
    }

    /* progress: from the first second on, once a second */
    while (atomic_load(&R.running) > 0) {
        usleep(100 * 1000);
        if (o->progress && now() - t0 >= shown + 1) {
            shown = now() - t0;
            progress(&R, jobs, shown);
        }
    }
    for (i = 0; i < started; i++) {
        pthread_join(w[i].tid, NULL);
    }
    if (o->progress && shown > 0) {
        fputs("\r\033[K", stderr);
    }

    /* the threads' joins into the first one's */
    for (i = 1; i < started && !R.failed; i++) {
        if (cef_report_join_merge(w[0].join, w[i].join) != 0) {
            fputs("cef-report: out of memory\n", stderr);
            R.failed = 1;
        }
        cef_report_join_free(w[i].join);
        w[i].join = NULL;
    }

    sum->files = npaths;
    sum->lines = atomic_load(&R.lines);
    sum->bytes = atomic_load(&R.bytes);
    sum->malformed = atomic_load(&R.malformed);
    cef_report_join_stats(w[0].join, &st);
    sum->impressions = st.impressions;
    sum->goals = st.goals;
    sum->exposures = st.exposures;
    sum->experiments = st.experiments;
    sum->visitors = st.visitors;

    if (sum->malformed > 0) {
        fprintf(stderr, "cef-report: %llu malformed line%s %s\n",
                (unsigned long long) sum->malformed,
                sum->malformed == 1 ? "" : "s",
                o->strict ? "(--strict: no report)" : "skipped");
    }
    if (R.failed) {
        goto done;
    }

    jo.window = o->window;
    jo.experiment = o->experiment;
    jo.goal = o->goal;
    if (cef_report_join_tests(w[0].join, &jo, tests, ntests) != 0) {
        fputs("cef-report: out of memory\n", stderr);
        goto done;
    }
    rc = 0;

done:
    for (i = 0; w != NULL && i < jobs; i++) {
        cef_report_parse_free(w[i].parser);
        cef_report_join_free(w[i].join);
    }
    free(w);
    free(R.offset);
    pthread_mutex_destroy(&R.lock);
    return rc;
}


void
cef_report_logs_free(cef_report_test_t *tests, size_t n)
{
    cef_report_join_tests_free(tests, n);
}


int
cef_report_logs_window(const char *s, int64_t *seconds)
{
    char       *end;
    long long   n;
    int64_t     unit;

    if (*s < '0' || *s > '9') {
        return -1;
    }
    errno = 0;
    n = strtoll(s, &end, 10);
    if (errno != 0 || n <= 0) {
        return -1;
    }
    switch (*end) {
    case '\0':
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    case 'w': unit = 7 * 86400; break;
    default: return -1;
    }
    if (*end != '\0' && end[1] != '\0') {
        return -1;
    }
    if (n > INT64_MAX / unit / 4) {
        return -1;
    }
    *seconds = (int64_t) n * unit;
    return 0;
}
