/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-sync: what the command files share (main.c, consume.c, kafka.c).
 */

#ifndef CEF_SYNC_H
#define CEF_SYNC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <jansson.h>

#include "cef_identity.h"
#include "cef_store.h"
#include "cef_writer.h"


#define EXIT_OK      0
#define EXIT_INPUT   1
#define EXIT_USAGE   2
#define EXIT_STORE   3


typedef struct {
    const char  *cmd;
    const char  *store;
    const char  *secret;
    const char  *key;
    const char  *id;
    const char  *input;
    size_t       map_size;
    uint32_t     batch;
    int          idle_ms;
    int          quiet;
    int          json;
    int          no_wait;

    /* load, apply, consume: the store's file group (--group) */
    int          set_group;
    gid_t        group;
    /* load: who the nginx workers run as (--nginx-user) */
    const char  *nginx_user;

    /* consume (and stat --brokers) */
    const char  *brokers;
    const char  *topic;
    const char  *kafka_group;
    int          format_json;
    int          from_beginning;
    int          skip_bad;
    int          batch_ms;
    int          refresh_ms;
    int          exit_at_end;

    /* progress */
    int              tty;
    struct timespec  start;
    struct timespec  last;
    int              shown;
} cef_sync_t;


cef_identity_t *cef_sync_identity(cef_sync_t *s);
double cef_sync_elapsed(const struct timespec *from);
void cef_sync_notice(void *data, const char *msg);

/*
 * access.c: after a load, warn (with the fix) when the nginx workers
 * cannot read the new generation or write its lock.mdb.
 */
void cef_sync_check_access(cef_sync_t *s);

/*
 * published.c: a load's, apply's or consume's published records (one line,
 * nothing if there were none); stat's weights and rule sets, printed, or
 * added to j ("weights", "rules") with --json.  Inside a store session:
 * 0, or -1 (cef_store_strerror()).
 */
void cef_sync_print_published(const cef_writer_result_t *res);
int cef_sync_stat_published(cef_store_t *store, json_t *j);
void cef_sync_print_published_stat(json_t *pub);

/* consume.c */
int cef_sync_consume(cef_sync_t *s);

/*
 * kafka.c: the high watermark of each partition of s->topic, for stat.
 *
 * @param[out] high        high[p] for p < *partitions
 * @param[out] partitions  partitions in the topic
 * @return 0, or -1 with a message in err.
 */
int cef_sync_kafka_highs(cef_sync_t *s, int64_t *high, uint32_t *partitions,
    char *err, size_t errlen);


#endif /* CEF_SYNC_H */
