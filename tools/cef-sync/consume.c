/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-sync consume: keeps the store current from a Kafka topic
 * (docs/sync.md).
 *
 * Every partition of the topic is assigned manually (an edge needs all of
 * them; no group rebalancing), new partitions are picked up at each
 * metadata refresh.  Records are applied in batches; each batch is
 * committed in one LMDB transaction together with the next offset of every
 * partition, so a crash at any point loses only an uncommitted batch, which
 * is read again from those offsets: every record takes effect once.
 * Kafka's own committed offsets (--kafka-group) are written afterwards, for lag
 * monitoring only, and never read.
 */

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <msgpack.h>

#include "cef_writer.h"
#include "cef_sync.h"
#include "cef_sync_decode.h"


#define CEF_CONSUME_POLL_MS   100
#define CEF_CONSUME_IDLE_MS   10       /* no record this long: commit */
#define CEF_CONSUME_BACKOFF   30000    /* longest wait between retries, ms */


typedef struct {
    cef_sync_t           *s;
    rd_kafka_t           *rk;
    cef_writer_stream_t   *st;

    /* the next offset of each partition, including the open batch */
    cef_store_offsets_t   offs;
    uint8_t               assigned[CEF_STORE_PARTITIONS_MAX];
    uint8_t               at_end[CEF_STORE_PARTITIONS_MAX];
    uint32_t              nassigned;

    uint32_t              in_batch;
    struct timespec       batch_start;
    struct timespec       refreshed;

    cef_sync_decoder_t    dec;

    cef_writer_result_t   res;
    uint64_t              records;     /* messages taken from the topic */
    uint64_t              tombstones;
    uint64_t              bad;         /* skipped with --on-bad-record=skip */
    uint64_t              duplicates;  /* offsets already applied */
    double                slowest;     /* the slowest commit, seconds */
    struct timespec       first;       /* the first record */
    int                   got_first;

    rd_kafka_resp_err_t   last_err;
    struct timespec       last_err_at;
} cef_consume_t;


static volatile sig_atomic_t  cef_consume_stop;


static void
cef_consume_signal(int signo)
{
    (void) signo;
    cef_consume_stop = 1;
}


static void
cef_consume_log(cef_consume_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
cef_consume_log(cef_consume_t *c, const char *fmt, ...)
{
    va_list  ap;

    (void) c;

    fprintf(stderr, "cef-sync: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
}


/*
 * librdkafka's own warnings and errors; its debug chatter is dropped, and
 * so are connection failures ("FAIL"), which also come, rate-limited,
 * through cef_consume_error().
 */

static void
cef_consume_kafka_log(const rd_kafka_t *rk, int level, const char *fac,
    const char *buf)
{
    (void) rk;

    if (level <= 4 && strcmp(fac, "FAIL") != 0) {
        fprintf(stderr, "cef-sync: kafka: %s: %s\n", fac, buf);
    }
}


/*
 * Errors from the client (broker down, all brokers down, ...): logged when
 * they change, and at most every 30 s while they last.  librdkafka keeps
 * reconnecting with its backoff (reconnect.backoff.ms ... .max.ms).
 */

static void
cef_consume_error(cef_consume_t *c, rd_kafka_resp_err_t e, const char *what)
{
    if (e == c->last_err && cef_sync_elapsed(&c->last_err_at) < 30) {
        return;
    }

    c->last_err = e;
    clock_gettime(CLOCK_MONOTONIC, &c->last_err_at);
    cef_consume_log(c, "kafka: %s (retrying; nginx keeps serving the last "
                    "applied state)", what);
}


static void
cef_consume_error_cb(rd_kafka_t *rk, int err, const char *reason,
    void *opaque)
{
    (void) rk;
    cef_consume_error(opaque, (rd_kafka_resp_err_t) err, reason);
}


static void
cef_consume_sleep(int ms)
{
    struct timespec  t;

    while (ms > 0 && !cef_consume_stop) {
        t.tv_sec = 0;
        t.tv_nsec = (ms > 100 ? 100 : ms) * 1000000L;
        nanosleep(&t, NULL);
        ms -= 100;
    }
}


static rd_kafka_t *
cef_consume_client(cef_consume_t *c, char *err, size_t errlen)
{
    size_t            i;
    char              kerr[512];
    rd_kafka_t       *rk;
    rd_kafka_conf_t  *conf;

    /*
     * fetch.wait.max.ms: how long a broker holds a fetch for more data; it
     * bounds the delay between a produce and its fetch at low rates (50:
     * a median delay of ~25 ms at 5000 records/s, and an idle edge sends
     * at most 20 fetches a second to each broker; librdkafka's default of
     * 500 would add up to half a second).
     */
    const char  *set[][2] = {
        { "bootstrap.servers", c->s->brokers },
        { "client.id", "cef-sync" },
        { "enable.auto.commit", "false" },
        { "enable.auto.offset.store", "false" },
        { "enable.partition.eof", "true" },
        /* an offset the topic no longer has: cef_consume_reset() */
        { "auto.offset.reset", "error" },
        { "fetch.wait.max.ms", "50" },
        { "reconnect.backoff.ms", "100" },
        { "reconnect.backoff.max.ms", "10000" },
        { "topic.metadata.refresh.interval.ms", "60000" },
        { "group.id", c->s->kafka_group ? c->s->kafka_group : "cef-sync" },
    };

    conf = rd_kafka_conf_new();

    for (i = 0; i < sizeof(set) / sizeof(set[0]); i++) {
        if (rd_kafka_conf_set(conf, set[i][0], set[i][1], kerr, sizeof(kerr))
            != RD_KAFKA_CONF_OK)
        {
            snprintf(err, errlen, "kafka: %s", kerr);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }

    rd_kafka_conf_set_log_cb(conf, cef_consume_kafka_log);
    rd_kafka_conf_set_error_cb(conf, cef_consume_error_cb);
    rd_kafka_conf_set_opaque(conf, c);

    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof(kerr));
    if (rk == NULL) {
        snprintf(err, errlen, "kafka: %s", kerr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }

    /* callbacks (errors, logs) are served by rd_kafka_consumer_poll() */
    rd_kafka_poll_set_consumer(rk);

    return rk;
}


/* --- batches and offsets ------------------------------------------------- */


static int
cef_consume_commit(cef_consume_t *c)
{
    int                                rc;
    char                               err[1024];
    double                             t;
    uint32_t                           p;
    struct timespec                    start;
    rd_kafka_topic_partition_list_t   *l;

    clock_gettime(CLOCK_MONOTONIC, &start);
    rc = cef_writer_stream_commit(c->st, &c->offs, &c->res, err, sizeof(err));

    t = cef_sync_elapsed(&start);
    if (t > c->slowest) {
        c->slowest = t;
    }

    if (rc != CEF_WRITER_OK) {
        cef_consume_log(c, "committing a batch: %s", err);
        return EXIT_STORE;
    }

    c->in_batch = 0;

    if (c->s->kafka_group == NULL || c->rk == NULL) {
        return EXIT_OK;
    }

    /* for lag monitoring only: the store's offsets are the truth */

    l = rd_kafka_topic_partition_list_new((int) c->nassigned);

    for (p = 0; p < c->offs.partitions; p++) {
        if (c->assigned[p] && c->offs.next[p] >= 0) {
            rd_kafka_topic_partition_list_add(l, c->s->topic, (int32_t) p)
                ->offset = c->offs.next[p];
        }
    }

    if (l->cnt) {
        (void) rd_kafka_commit(c->rk, l, 1);
    }

    rd_kafka_topic_partition_list_destroy(l);

    return EXIT_OK;
}


/*
 * The partitions of the topic, as the brokers see them now; retried with
 * backoff until it works or a signal arrives.
 *
 * @return 0, or -1 when stopped or on an error that retrying cannot fix.
 */

static int
cef_consume_metadata(cef_consume_t *c, const struct rd_kafka_metadata **mdp,
    int retry)
{
    int                   backoff = 500;
    rd_kafka_topic_t     *rkt;
    rd_kafka_resp_err_t   e;
    char                  msg[512];

    rkt = rd_kafka_topic_new(c->rk, c->s->topic, NULL);
    if (rkt == NULL) {
        cef_consume_log(c, "kafka: topic \"%s\": %s", c->s->topic,
                        rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }

    for ( ;; ) {
        e = rd_kafka_metadata(c->rk, 0, rkt, mdp, 5000);

        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if ((*mdp)->topic_cnt == 1 && (*mdp)->topics[0].err == 0) {
                break;
            }

            e = (*mdp)->topic_cnt ? (*mdp)->topics[0].err
                                  : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
            rd_kafka_metadata_destroy(*mdp);
        }

        *mdp = NULL;

        if (!retry || cef_consume_stop) {
            break;
        }

        snprintf(msg, sizeof(msg), "cannot get the partitions of topic "
                 "\"%s\" from \"%s\": %s", c->s->topic, c->s->brokers,
                 rd_kafka_err2str(e));
        cef_consume_error(c, e, msg);
        cef_consume_sleep(backoff);
        backoff = backoff * 2 > CEF_CONSUME_BACKOFF ? CEF_CONSUME_BACKOFF
                                                     : backoff * 2;
    }

    rd_kafka_topic_destroy(rkt);

    return *mdp ? 0 : -1;
}


/*
 * The low and high watermarks of a partition (its first offset and the
 * offset after its last record), retried like the metadata.
 */

static int
cef_consume_watermarks(cef_consume_t *c, int32_t p, int64_t *low,
    int64_t *high)
{
    int                   backoff = 500;
    char                  msg[512];
    rd_kafka_resp_err_t   e;

    for ( ;; ) {
        e = rd_kafka_query_watermark_offsets(c->rk, c->s->topic, p, low, high,
                                             5000);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            return 0;
        }

        if (cef_consume_stop) {
            return -1;
        }

        snprintf(msg, sizeof(msg), "cannot get the offsets of partition %d "
                 "of \"%s\": %s", (int) p, c->s->topic, rd_kafka_err2str(e));
        cef_consume_error(c, e, msg);
        cef_consume_sleep(backoff);
        backoff = backoff * 2 > CEF_CONSUME_BACKOFF ? CEF_CONSUME_BACKOFF
                                                     : backoff * 2;
    }
}


static int
cef_consume_high(cef_consume_t *c, int32_t p, int64_t *high)
{
    int64_t  low;

    return cef_consume_watermarks(c, p, &low, high);
}


static int
cef_consume_low(cef_consume_t *c, int32_t p, int64_t *low)
{
    int64_t  high;

    return cef_consume_watermarks(c, p, low, &high);
}


/*
 * Assign the partitions not assigned yet.  Where each starts:
 *   - its offset stored in the store (by an earlier run, or by the snapshot
 *     that was loaded);
 *   - if the store holds offsets for this topic but not for this partition:
 *     the partition is newer than they are: its beginning;
 *   - if the store holds no offsets at all: the beginning with
 *     --from-beginning, else the end (what is already in the topic is
 *     assumed to be in the snapshot); these starting points are stored at
 *     once, so that a restart resumes from them.
 */

static int
cef_consume_assign(cef_consume_t *c, int retry, int first)
{
    int                                i, added = 0;
    int32_t                            p;
    int64_t                            start;
    const char                        *from;
    rd_kafka_error_t                  *ke;
    rd_kafka_topic_partition_list_t   *l;
    const struct rd_kafka_metadata    *md;
    const struct rd_kafka_metadata_partition  *mp;

    /* a failed refresh waits for the next interval too */
    clock_gettime(CLOCK_MONOTONIC, &c->refreshed);

    if (cef_consume_metadata(c, &md, retry) != 0) {
        return cef_consume_stop || !retry ? 0 : -1;
    }

    l = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);

    for (i = 0; i < md->topics[0].partition_cnt; i++) {
        mp = &md->topics[0].partitions[i];
        p = mp->id;

        if (p < 0 || p >= CEF_STORE_PARTITIONS_MAX) {
            cef_consume_log(c, "partition %d of \"%s\" is ignored: at most "
                            "%d partitions are supported", (int) p,
                            c->s->topic, CEF_STORE_PARTITIONS_MAX);
            continue;
        }

        /* a partition without a leader yet is taken at a later refresh */
        if (c->assigned[p] || mp->leader < 0) {
            continue;
        }

        if (c->offs.next[p] >= 0) {
            start = c->offs.next[p];
            from = "the stored offset";

        } else if (c->offs.topic[0] != '\0' || c->s->from_beginning) {
            start = RD_KAFKA_OFFSET_BEGINNING;
            from = "the beginning";

        } else {
            if (cef_consume_high(c, p, &start) != 0) {
                rd_kafka_topic_partition_list_destroy(l);
                rd_kafka_metadata_destroy(md);
                return 0;
            }
            from = "the end: the store holds no offsets and "
                   "--from-beginning was not given";
        }

        if (start >= 0) {
            c->offs.next[p] = start;
        }

        if ((uint32_t) p >= c->offs.partitions) {
            c->offs.partitions = (uint32_t) p + 1;
        }

        rd_kafka_topic_partition_list_add(l, c->s->topic, p)->offset = start;
        c->assigned[p] = 1;
        c->at_end[p] = 0;
        c->nassigned++;
        added++;

        if (!c->s->quiet) {
            if (start >= 0) {
                cef_consume_log(c, "topic \"%s\" partition %d: from offset "
                                "%lld (%s)", c->s->topic, (int) p,
                                (long long) start, from);
            } else {
                cef_consume_log(c, "topic \"%s\" partition %d: from %s%s",
                                c->s->topic, (int) p, from,
                                first ? "" : " (a new partition)");
            }
        }
    }

    rd_kafka_metadata_destroy(md);

    if (added) {
        ke = rd_kafka_incremental_assign(c->rk, l);
        if (ke) {
            cef_consume_log(c, "kafka: assigning partitions: %s",
                            rd_kafka_error_string(ke));
            rd_kafka_error_destroy(ke);
            rd_kafka_topic_partition_list_destroy(l);
            return -1;
        }
    }

    rd_kafka_topic_partition_list_destroy(l);

    /*
     * From now on the store holds offsets for this topic: partitions that
     * appear later are new, read from their beginning.
     */
    if (c->offs.topic[0] == '\0' && added) {
        snprintf(c->offs.topic, sizeof(c->offs.topic), "%s", c->s->topic);
        if (cef_consume_commit(c) != EXIT_OK) {
            return -1;
        }
    }

    return 0;
}


/* --- records ------------------------------------------------------------- */


/*
 * Apply one message.  Returns EXIT_OK (applied, or skipped), EXIT_INPUT (a
 * bad record with --on-bad-record=stop: the batch before it is committed)
 * or EXIT_STORE.
 */

static int
cef_consume_message(cef_consume_t *c, rd_kafka_message_t *m)
{
    int              rc;
    char             err[1024];
    int32_t          p = m->partition;
    msgpack_object   rec;

    if (p < 0 || p >= CEF_STORE_PARTITIONS_MAX || !c->assigned[p]) {
        return EXIT_OK;
    }

    /* never apply an offset twice, whatever the client delivers */
    if (m->offset < c->offs.next[p]) {
        c->duplicates++;
        return EXIT_OK;
    }

    c->records++;
    c->at_end[p] = 0;

    if (!c->got_first) {
        clock_gettime(CLOCK_MONOTONIC, &c->first);
        c->got_first = 1;
    }

    if (m->payload == NULL) {
        if (m->key == NULL) {
            snprintf(err, sizeof(err), "a tombstone (null value) without a "
                     "key: no profile id");
            rc = CEF_WRITER_EINPUT;
        } else {
            rc = cef_writer_stream_erase(c->st, m->key, m->key_len, &c->res,
                                        err, sizeof(err));
            c->tombstones += rc == CEF_WRITER_OK;
        }

    } else if (cef_sync_decode(&c->dec, m->payload, m->len, &rec, err,
                                  sizeof(err)) != 0)
    {
        rc = CEF_WRITER_EINPUT;

    } else {
        rc = cef_writer_stream_record(c->st, &rec, &c->res, err, sizeof(err));
    }

    if (rc == CEF_WRITER_ESTORE) {
        cef_consume_log(c, "topic \"%s\" partition %d offset %lld: %s (the "
                        "batch is not committed)", c->s->topic, (int) p,
                        (long long) m->offset, err);
        return EXIT_STORE;
    }

    if (rc == CEF_WRITER_EINPUT) {
        if (!c->s->skip_bad) {
            /* keep what came before it; restarting stops here again */
            rc = c->in_batch ? cef_consume_commit(c) : EXIT_OK;
            cef_consume_log(c, "topic \"%s\" partition %d offset %lld: bad "
                            "record: %s; stopping (--on-bad-record=skip "
                            "would skip it)", c->s->topic, (int) p,
                            (long long) m->offset, err);
            return rc == EXIT_OK ? EXIT_INPUT : rc;
        }

        c->bad++;
        cef_consume_log(c, "topic \"%s\" partition %d offset %lld: bad record "
                        "skipped: %s", c->s->topic, (int) p,
                        (long long) m->offset, err);
    }

    c->offs.next[p] = m->offset + 1;

    if (c->in_batch++ == 0) {
        clock_gettime(CLOCK_MONOTONIC, &c->batch_start);
    }

    return EXIT_OK;
}


/*
 * The stored offset of a partition is not in the topic any more: retention
 * deleted records this store never saw (the edge was away longer than the
 * topic keeps them), or the topic was recreated.  The store has missed
 * changes: say so loudly, and go on from the earliest record there is (a
 * fresh snapshot with offsets repairs the store).
 */

static int
cef_consume_reset(cef_consume_t *c, rd_kafka_message_t *m)
{
    int32_t                            p = m->partition;
    int64_t                            low;
    rd_kafka_error_t                  *ke;
    rd_kafka_topic_partition_list_t   *l;

    if (p < 0 || p >= CEF_STORE_PARTITIONS_MAX || !c->assigned[p]) {
        return EXIT_OK;
    }

    cef_consume_log(c, "topic \"%s\" partition %d: offset %lld is not in "
                    "the topic any more (%s): records were deleted before "
                    "this store read them; going on from the earliest "
                    "record; load a fresh snapshot to repair the store",
                    c->s->topic, (int) p, (long long) c->offs.next[p],
                    rd_kafka_message_errstr(m));

    if (cef_consume_low(c, p, &low) != 0) {
        return EXIT_OK;     /* stopping */
    }

    /* below it is not a duplicate any more (an offset past the end) */
    c->offs.next[p] = low;
    c->at_end[p] = 0;

    /* the fetcher stopped at the error: assign the partition again */
    l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, c->s->topic, p);

    ke = rd_kafka_incremental_unassign(c->rk, l);
    if (ke == NULL) {
        l->elems[0].offset = low;
        ke = rd_kafka_incremental_assign(c->rk, l);
    }

    rd_kafka_topic_partition_list_destroy(l);

    if (ke) {
        cef_consume_log(c, "kafka: assigning partition %d again: %s", (int) p,
                        rd_kafka_error_string(ke));
        rd_kafka_error_destroy(ke);
        return EXIT_STORE;
    }

    /* store where it goes on from (with the batch in progress, if any) */
    return cef_consume_commit(c);
}


static int
cef_consume_all_at_end(cef_consume_t *c)
{
    uint32_t  p;

    if (c->nassigned == 0) {
        return 0;
    }

    for (p = 0; p < c->offs.partitions; p++) {
        if (c->assigned[p] && !c->at_end[p]) {
            return 0;
        }
    }

    return 1;
}


static int
cef_consume_loop(cef_consume_t *c)
{
    int                  rc, timeout, idle;
    double               age;
    uint32_t             batch;
    rd_kafka_message_t  *m;

    batch = c->s->batch ? c->s->batch : 10000;

    while (!cef_consume_stop) {

        timeout = CEF_CONSUME_POLL_MS;

        if (c->in_batch) {
            age = cef_sync_elapsed(&c->batch_start) * 1000;
            timeout = age >= c->s->batch_ms ? 0 : (int) (c->s->batch_ms - age);
            if (timeout > CEF_CONSUME_IDLE_MS) {
                timeout = CEF_CONSUME_IDLE_MS;
            }
        }

        m = rd_kafka_consumer_poll(c->rk, timeout);
        idle = m == NULL;

        if (m && m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && m->partition < CEF_STORE_PARTITIONS_MAX
                && m->offset >= c->offs.next[m->partition])
            {
                c->at_end[m->partition] = 1;
            }
            idle = 1;

        } else if (m && m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
            rc = cef_consume_reset(c, m);
            if (rc != EXIT_OK) {
                rd_kafka_message_destroy(m);
                return rc;
            }

        } else if (m && m->err) {
            cef_consume_error(c, m->err, rd_kafka_message_errstr(m));

        } else if (m) {
            rc = cef_consume_message(c, m);
            if (rc != EXIT_OK) {
                rd_kafka_message_destroy(m);
                return rc;
            }
        }

        if (m) {
            rd_kafka_message_destroy(m);
        }

        /*
         * Commit when the batch is full, when it is old enough, or when no
         * record came for CEF_CONSUME_IDLE_MS: a backlog fills batches, a
         * steady flow commits about once per fetch, a single record is
         * visible at once.
         */
        if (c->in_batch
            && (c->in_batch >= batch || idle
                || cef_sync_elapsed(&c->batch_start) * 1000 >= c->s->batch_ms))
        {
            rc = cef_consume_commit(c);
            if (rc != EXIT_OK) {
                return rc;
            }
        }

        if (c->s->exit_at_end && c->in_batch == 0
            && cef_consume_all_at_end(c))
        {
            return EXIT_OK;
        }

        if (cef_sync_elapsed(&c->refreshed) * 1000 >= c->s->refresh_ms) {
            if (c->in_batch && (rc = cef_consume_commit(c)) != EXIT_OK) {
                return rc;
            }
            if (cef_consume_assign(c, 0, 0) != 0) {
                return EXIT_STORE;
            }
        }
    }

    return EXIT_OK;
}


int
cef_sync_consume(cef_sync_t *s)
{
    int                  rc;
    char                 err[1024];
    double               t;
    cef_identity_t      *ident;
    cef_writer_conf_t    conf;
    struct sigaction     sa;
    static cef_consume_t c;

    memset(&c, 0, sizeof(c));
    c.s = s;
    if (cef_sync_decoder_init(&c.dec, s->format_json) != 0) {
        fprintf(stderr, "cef-sync: out of memory\n");
        return EXIT_STORE;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = cef_consume_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    ident = cef_sync_identity(s);
    if (ident == NULL) {
        return EXIT_INPUT;
    }

    memset(&conf, 0, sizeof(conf));
    conf.dir = s->store;
    conf.ident = ident;
    conf.map_size = s->map_size;
    conf.wait = !s->no_wait;
    conf.set_group = s->set_group;
    conf.group = s->group;
    conf.cancel = &cef_consume_stop;
    conf.notice = cef_sync_notice;
    conf.data = s;

    rc = cef_writer_stream_open(&c.st, &conf, &c.offs, err, sizeof(err));

    if (rc != CEF_WRITER_OK && cef_consume_stop) {
        /* asked to stop before it began: not a failure */
        fprintf(stderr, "cef-sync: %s\n", err);
        cef_identity_free(ident);
        cef_sync_decoder_free(&c.dec);
        return EXIT_OK;
    }

    if (rc != CEF_WRITER_OK) {
        fprintf(stderr, "cef-sync: %s\n", err);
        cef_identity_free(ident);
        cef_sync_decoder_free(&c.dec);
        return rc == CEF_WRITER_EINPUT ? EXIT_INPUT : EXIT_STORE;
    }

    if (c.offs.topic[0] && strcmp(c.offs.topic, s->topic) != 0) {
        fprintf(stderr, "cef-sync: the store holds offsets of topic \"%s\", "
                "not \"%s\" (load a snapshot made for \"%s\" first)\n",
                c.offs.topic, s->topic, s->topic);
        rc = EXIT_INPUT;
        goto done;
    }

    c.rk = cef_consume_client(&c, err, sizeof(err));
    if (c.rk == NULL) {
        fprintf(stderr, "cef-sync: %s\n", err);
        rc = EXIT_USAGE;
        goto done;
    }

    rc = cef_consume_assign(&c, 1, 1) == 0 ? EXIT_OK : EXIT_STORE;

    if (rc == EXIT_OK && !cef_consume_stop) {
        rc = cef_consume_loop(&c);
    }

    /* a clean stop (SIGTERM, SIGINT, --exit-at-end) keeps the open batch */
    if ((rc == EXIT_OK) && c.in_batch) {
        rc = cef_consume_commit(&c);
    }

    t = c.got_first ? cef_sync_elapsed(&c.first) : 0;

    if (!s->quiet) {
        printf("consumed %llu records (%llu applied, %llu tombstones, %llu "
               "for unknown profiles, %llu bad records skipped) in %llu "
               "batches (slowest commit %.0f ms), %.2fs (%.0f records/s); "
               "%llu profiles, %llu keys\n",
               (unsigned long long) c.records,
               (unsigned long long) c.res.applied - c.tombstones,
               (unsigned long long) c.tombstones,
               (unsigned long long) c.res.missing,
               (unsigned long long) c.bad,
               (unsigned long long) c.res.batches, c.slowest * 1000, t,
               t > 0 ? c.records / t : 0.0,
               (unsigned long long) c.res.profiles,
               (unsigned long long) c.res.keys);
        cef_sync_print_published(&c.res);
        fflush(stdout);
    }

done:

    if (c.rk) {
        rd_kafka_consumer_close(c.rk);
        rd_kafka_destroy(c.rk);
    }

    cef_sync_decoder_free(&c.dec);
    cef_writer_stream_close(c.st);
    cef_identity_free(ident);

    return rc;
}
