/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-kafka-mock: a Kafka cluster for the tests, librdkafka's mock cluster
 * (rdkafka_mock.h: real protocol on 127.0.0.1, no broker needed), driven
 * by commands on stdin.
 *
 *   cef-kafka-mock [--brokers N] [--topic T] [--partitions P] [--spare S]
 *                  [--proxy]
 *
 * It prints "bootstrap HOST:PORT,..." and then answers each command line
 * with one line, "ok ..." or "error ...":
 *
 *   produce FILE [RATE LOG]   produce the records in FILE (below), at RATE
 *                             records/s if given, appending "PARTITION
 *                             OFFSET T_NS" per record to LOG (T_NS: the
 *                             CLOCK_REALTIME of the produce call); answers
 *                             "ok N" once all are acknowledged
 *   add-partition             make the next spare partition available
 *   grow P                    (--proxy) the topic now has P partitions
 *   down | up                 take every broker down (connections are
 *                             closed and refused) or bring them back
 *   committed GROUP           "ok P:OFFSET ..." committed by GROUP
 *   quit
 *
 * librdkafka 2.0's mock cluster cannot grow a topic (no CreatePartitions).
 * Two ways around it:
 *
 *   --proxy: the bootstrap address printed is a TCP relay to the cluster.
 *   "grow P" starts a new cluster whose topic has P partitions, produces
 *   every record produced so far into it again (same partitions, same
 *   order, so the same offsets), points the relay at it and shuts the old
 *   one down.  Clients lose their connections, bootstrap again through
 *   the relay and learn the brokers' new addresses from the metadata; the
 *   topic then has P partitions, as after CreatePartitions (and a restart
 *   of every broker).
 *
 *   --spare S creates S more partitions without a leader: the brokers
 *   list them but nothing can be produced to or fetched from them, and
 *   cef-sync leaves a partition without a leader for a later refresh.
 *   "add-partition" gives the next one a leader.
 *
 * FILE holds records back to back, little-endian:
 *   int32 partition, int32 key length (-1: null), key,
 *   int32 value length (-1: null = a tombstone), value
 */

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>


static rd_kafka_t               *handle;   /* the cluster's own */
static rd_kafka_mock_cluster_t  *mc;
static rd_kafka_t               *prod;
static const char               *topic = "cef.profiles";
static int                       nbrokers = 3, partitions = 3, spare = 0;
static int                       added = 0;
static FILE                     *dlog;
static long                      delivered, failed;

/* every record produced, for "grow" */
typedef struct {
    int32_t   part, klen, vlen;
    char     *key, *val;
} rec_t;

static rec_t                    *hist;
static size_t                    nhist, hcap;

/* --proxy: a TCP relay from one port to the cluster's first broker */
#define PROXY_PAIRS  256

static int                       proxy_lfd = -1;
static int                       proxy_port, proxy_target;
static int                       proxy_gen;
static pthread_mutex_t           proxy_mu = PTHREAD_MUTEX_INITIALIZER;


static void
dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void) rk;
    (void) opaque;

    if (m->err) {
        failed++;
        fprintf(stderr, "cef-kafka-mock: delivery failed: %s\n",
                rd_kafka_err2str(m->err));
        return;
    }

    delivered++;

    if (dlog) {
        fprintf(dlog, "%d %lld %lld\n", (int) m->partition,
                (long long) m->offset, (long long) (intptr_t) m->_private);
    }
}


static long long
now_ns(void)
{
    struct timespec  t;

    clock_gettime(CLOCK_REALTIME, &t);
    return (long long) t.tv_sec * 1000000000LL + t.tv_nsec;
}


static int
rd32(FILE *f, int32_t *v)
{
    uint8_t  b[4];

    if (fread(b, 1, 4, f) != 4) {
        return -1;
    }

    *v = (int32_t) ((uint32_t) b[0] | (uint32_t) b[1] << 8
                    | (uint32_t) b[2] << 16 | (uint32_t) b[3] << 24);
    return 0;
}


static char *
rdbytes(FILE *f, int32_t len)
{
    char  *p;

    if (len < 0) {
        return NULL;
    }

    p = malloc(len + 1);
    if (p == NULL || (len && fread(p, 1, len, f) != (size_t) len)) {
        free(p);
        return NULL;
    }

    return p;
}


static void
produce(const char *file, double rate, const char *logname)
{
    int32_t              part, klen, vlen;
    char                *key, *val;
    long                 n = 0;
    long long            t0, due, t;
    FILE                *f;
    rd_kafka_resp_err_t  e;

    f = fopen(file, "rb");
    if (f == NULL) {
        printf("error cannot open %s: %s\n", file, strerror(errno));
        return;
    }

    if (logname) {
        dlog = fopen(logname, "a");
    }

    delivered = failed = 0;
    t0 = now_ns();

    while (rd32(f, &part) == 0) {
        key = NULL;
        val = NULL;

        if (rd32(f, &klen) != 0 || (klen >= 0 && !(key = rdbytes(f, klen)))
            || rd32(f, &vlen) != 0 || (vlen >= 0 && !(val = rdbytes(f, vlen))))
        {
            printf("error truncated record %ld in %s\n", n, file);
            fclose(f);
            return;
        }

        if (rate > 0) {
            due = t0 + (long long) (n / rate * 1e9);
            while ((t = now_ns()) < due) {
                rd_kafka_poll(prod, 0);
                if (due - t > 200000) {
                    usleep((useconds_t) ((due - t) / 2000));
                }
            }
        }

        for ( ;; ) {
            e = rd_kafka_producev(prod,
                                  RD_KAFKA_V_TOPIC(topic),
                                  RD_KAFKA_V_PARTITION(part),
                                  RD_KAFKA_V_KEY(key, klen < 0 ? 0 : klen),
                                  RD_KAFKA_V_VALUE(val, vlen < 0 ? 0 : vlen),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_OPAQUE((void *) (intptr_t)
                                                    now_ns()),
                                  RD_KAFKA_V_END);
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                break;
            }
            rd_kafka_poll(prod, 10);
        }

        if (nhist == hcap) {
            hcap = hcap ? hcap * 2 : 65536;
            hist = realloc(hist, hcap * sizeof(rec_t));
        }
        hist[nhist].part = part;
        hist[nhist].klen = klen;
        hist[nhist].vlen = vlen;
        hist[nhist].key = key;
        hist[nhist].val = val;
        nhist++;

        if (e) {
            printf("error produce: %s\n", rd_kafka_err2str(e));
            fclose(f);
            return;
        }

        n++;
        rd_kafka_poll(prod, 0);
    }

    fclose(f);

    while (rd_kafka_outq_len(prod) > 0) {
        rd_kafka_poll(prod, 50);
    }

    if (dlog) {
        fclose(dlog);
        dlog = NULL;
    }

    if (failed) {
        printf("error %ld of %ld records were not delivered\n", failed, n);
    } else {
        printf("ok %ld\n", n);
    }
}


static void
committed(const char *group)
{
    int                               i;
    char                              err[512];
    rd_kafka_t                       *c;
    rd_kafka_conf_t                  *conf;
    rd_kafka_topic_partition_list_t  *l;
    rd_kafka_resp_err_t               e;

    conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers",
                      rd_kafka_mock_cluster_bootstraps(mc), err, sizeof(err));
    rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err));

    c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (c == NULL) {
        printf("error %s\n", err);
        return;
    }

    l = rd_kafka_topic_partition_list_new(partitions + added);
    for (i = 0; i < partitions + added; i++) {
        rd_kafka_topic_partition_list_add(l, topic, i);
    }

    e = rd_kafka_committed(c, l, 10000);
    if (e) {
        printf("error %s\n", rd_kafka_err2str(e));
    } else {
        printf("ok");
        for (i = 0; i < l->cnt; i++) {
            printf(" %d:%lld", (int) l->elems[i].partition,
                   (long long) l->elems[i].offset);
        }
        printf("\n");
    }

    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(c);
}


static int
first_port(const char *bootstraps)
{
    const char  *colon = strchr(bootstraps, ':');

    return colon ? atoi(colon + 1) : 0;
}


static void *
proxy_main(void *arg)
{
    int            fd, up, i, j, n, gen, target, pairs[PROXY_PAIRS][3];
    int            npairs = 0;
    char           buf[65536];
    ssize_t        r, w, off;
    struct pollfd  pf[1 + 2 * PROXY_PAIRS];
    struct sockaddr_in  sa;

    (void) arg;

    for ( ;; ) {
        pthread_mutex_lock(&proxy_mu);
        gen = proxy_gen;
        target = proxy_target;
        pthread_mutex_unlock(&proxy_mu);

        /* a switch drops every relayed connection */
        for (i = npairs - 1; i >= 0; i--) {
            if (pairs[i][2] != gen) {
                close(pairs[i][0]);
                close(pairs[i][1]);
                memcpy(pairs[i], pairs[--npairs], sizeof(pairs[0]));
            }
        }

        pf[0].fd = proxy_lfd;
        pf[0].events = POLLIN;
        for (i = 0; i < npairs; i++) {
            pf[1 + 2 * i].fd = pairs[i][0];
            pf[2 + 2 * i].fd = pairs[i][1];
            pf[1 + 2 * i].events = pf[2 + 2 * i].events = POLLIN;
        }

        n = poll(pf, 1 + 2 * npairs, 50);
        if (n <= 0) {
            continue;
        }

        for (i = npairs - 1; i >= 0; i--) {
            for (j = 0; j < 2; j++) {
                if (!(pf[1 + 2 * i + j].revents & (POLLIN|POLLHUP|POLLERR))) {
                    continue;
                }

                r = read(pairs[i][j], buf, sizeof(buf));
                for (off = 0; r > 0 && off < r; off += w) {
                    w = write(pairs[i][1 - j], buf + off, r - off);
                    if (w <= 0) {
                        r = -1;
                    }
                }

                if (r <= 0) {
                    close(pairs[i][0]);
                    close(pairs[i][1]);
                    memcpy(pairs[i], pairs[--npairs], sizeof(pairs[0]));
                    break;
                }
            }
        }

        if (pf[0].revents & POLLIN) {
            fd = accept(proxy_lfd, NULL, NULL);
            if (fd < 0) {
                continue;
            }

            up = socket(AF_INET, SOCK_STREAM, 0);
            memset(&sa, 0, sizeof(sa));
            sa.sin_family = AF_INET;
            sa.sin_port = htons((uint16_t) target);
            sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

            if (npairs == PROXY_PAIRS
                || connect(up, (struct sockaddr *) &sa, sizeof(sa)) != 0)
            {
                close(fd);
                close(up);
                continue;
            }

            pairs[npairs][0] = fd;
            pairs[npairs][1] = up;
            pairs[npairs][2] = gen;
            npairs++;
        }
    }

    return NULL;
}


static int
proxy_start(void)
{
    int                 one = 1;
    pthread_t           tid;
    socklen_t           len;
    struct sockaddr_in  sa;

    proxy_lfd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(proxy_lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    len = sizeof(sa);
    if (bind(proxy_lfd, (struct sockaddr *) &sa, sizeof(sa)) != 0
        || listen(proxy_lfd, 64) != 0
        || getsockname(proxy_lfd, (struct sockaddr *) &sa, &len) != 0)
    {
        return -1;
    }

    proxy_port = ntohs(sa.sin_port);
    proxy_target = first_port(rd_kafka_mock_cluster_bootstraps(mc));

    return pthread_create(&tid, NULL, proxy_main, NULL);
}


/* A cluster with the topic, and a producer to it. */

static int
cluster_start(int nparts, rd_kafka_t **hp, rd_kafka_mock_cluster_t **mcp,
    rd_kafka_t **pp)
{
    int               i;
    char              err[512];
    rd_kafka_conf_t  *conf;

    conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
    *hp = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (*hp == NULL) {
        fprintf(stderr, "cef-kafka-mock: %s\n", err);
        return -1;
    }

    *mcp = rd_kafka_mock_cluster_new(*hp, nbrokers);
    if (*mcp == NULL) {
        fprintf(stderr, "cef-kafka-mock: cannot start the mock cluster\n");
        return -1;
    }

    if (rd_kafka_mock_topic_create(*mcp, topic, nparts, 1)) {
        fprintf(stderr, "cef-kafka-mock: cannot create the topic\n");
        return -1;
    }

    for (i = partitions; i < nparts; i++) {
        if (spare) {
            rd_kafka_mock_partition_set_leader(*mcp, topic, i, -1);
        }
    }

    conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers",
                          rd_kafka_mock_cluster_bootstraps(*mcp), err,
                          sizeof(err))
        || rd_kafka_conf_set(conf, "enable.idempotence", "true", err,
                             sizeof(err))
        || rd_kafka_conf_set(conf, "linger.ms", "1", err, sizeof(err))
        || rd_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000",
                             err, sizeof(err))
        /* rules records (a whole rule file) may reach 16 MiB, as a real
           producer of them must allow (docs/sync.md) */
        || rd_kafka_conf_set(conf, "message.max.bytes", "17000000", err,
                             sizeof(err)))
    {
        fprintf(stderr, "cef-kafka-mock: %s\n", err);
        return -1;
    }

    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);

    *pp = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (*pp == NULL) {
        fprintf(stderr, "cef-kafka-mock: %s\n", err);
        return -1;
    }

    return 0;
}


static void
grow(int nparts)
{
    size_t                    i;
    rd_kafka_t               *h, *p;
    rd_kafka_mock_cluster_t  *m;
    rd_kafka_resp_err_t       e;

    if (proxy_lfd < 0 || nparts <= partitions) {
        printf("error grow needs --proxy and more partitions\n");
        return;
    }

    if (cluster_start(nparts, &h, &m, &p) != 0) {
        printf("error cannot start a new cluster\n");
        return;
    }

    delivered = failed = 0;

    for (i = 0; i < nhist; i++) {
        do {
            e = rd_kafka_producev(p,
                                  RD_KAFKA_V_TOPIC(topic),
                                  RD_KAFKA_V_PARTITION(hist[i].part),
                                  RD_KAFKA_V_KEY(hist[i].key, hist[i].klen < 0
                                                 ? 0 : hist[i].klen),
                                  RD_KAFKA_V_VALUE(hist[i].val, hist[i].vlen < 0
                                                   ? 0 : hist[i].vlen),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_OPAQUE(NULL),
                                  RD_KAFKA_V_END);
            if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(p, 10);
            }
        } while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL);
        rd_kafka_poll(p, 0);
    }

    while (rd_kafka_outq_len(p) > 0) {
        rd_kafka_poll(p, 50);
    }

    if (failed) {
        printf("error %ld records were not delivered again\n", failed);
        return;
    }

    pthread_mutex_lock(&proxy_mu);
    proxy_target = first_port(rd_kafka_mock_cluster_bootstraps(m));
    proxy_gen++;
    pthread_mutex_unlock(&proxy_mu);

    rd_kafka_destroy(prod);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(handle);

    handle = h;
    mc = m;
    prod = p;
    partitions = nparts;

    printf("ok %d\n", nparts);
}


int
main(int argc, char **argv)
{
    int    i, use_proxy = 0;
    char   line[4096], *arg, *arg2, *arg3;

    for (i = 1; i < argc && strcmp(argv[i], "--proxy") == 0; i++) {
        use_proxy = 1;
    }

    for ( ; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--brokers") == 0) {
            nbrokers = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--partitions") == 0) {
            partitions = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--spare") == 0) {
            spare = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--topic") == 0) {
            topic = argv[i + 1];
        } else {
            fprintf(stderr, "usage: cef-kafka-mock [--proxy] [--brokers N] "
                    "[--topic T] [--partitions P] [--spare S]\n");
            return 2;
        }
    }

    if (cluster_start(partitions + spare, &handle, &mc, &prod) != 0) {
        return 1;
    }

    if (use_proxy && proxy_start() != 0) {
        fprintf(stderr, "cef-kafka-mock: cannot start the relay: %s\n",
                strerror(errno));
        return 1;
    }

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (use_proxy) {
        printf("bootstrap 127.0.0.1:%d\n", proxy_port);
    } else {
        printf("bootstrap %s\n", rd_kafka_mock_cluster_bootstraps(mc));
    }

    while (fgets(line, sizeof(line), stdin)) {
        line[strcspn(line, "\r\n")] = '\0';
        arg = strchr(line, ' ');
        arg2 = arg3 = NULL;
        if (arg) {
            *arg++ = '\0';
            arg2 = strchr(arg, ' ');
            if (arg2) {
                *arg2++ = '\0';
                arg3 = strchr(arg2, ' ');
                if (arg3) {
                    *arg3++ = '\0';
                }
            }
        }

        if (strcmp(line, "produce") == 0 && arg) {
            produce(arg, arg2 ? atof(arg2) : 0, arg3);

        } else if (strcmp(line, "grow") == 0 && arg) {
            grow(atoi(arg));

        } else if (strcmp(line, "add-partition") == 0) {
            if (added == spare) {
                printf("error no spare partition left\n");
            } else {
                rd_kafka_mock_partition_set_leader(mc, topic,
                                                   partitions + added,
                                                   1 + added % nbrokers);
                added++;
                printf("ok %d\n", partitions + added);
            }

        } else if (strcmp(line, "down") == 0 || strcmp(line, "up") == 0) {
            for (i = 1; i <= nbrokers; i++) {
                if (line[0] == 'd') {
                    rd_kafka_mock_broker_set_down(mc, i);
                } else {
                    rd_kafka_mock_broker_set_up(mc, i);
                }
            }
            printf("ok\n");

        } else if (strcmp(line, "committed") == 0 && arg) {
            committed(arg);

        } else if (strcmp(line, "quit") == 0) {
            break;

        } else {
            printf("error unknown command \"%s\"\n", line);
        }
    }

    rd_kafka_destroy(prod);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(handle);

    return 0;
}
