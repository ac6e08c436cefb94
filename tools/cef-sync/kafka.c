/*
 * Copyright (C) ngx_cef_module developers
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * cef-sync: what talks to Kafka besides the consume loop (stat --brokers).
 */

#include <stdio.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "cef_sync.h"


int
cef_sync_kafka_highs(cef_sync_t *s, int64_t *high, uint32_t *partitions,
    char *err, size_t errlen)
{
    int                              rc = -1, i;
    char                             kerr[512];
    int64_t                          lo, hi;
    rd_kafka_t                      *rk;
    rd_kafka_conf_t                 *conf;
    rd_kafka_topic_t                *rkt;
    rd_kafka_resp_err_t              e;
    const struct rd_kafka_metadata  *md = NULL;

    *partitions = 0;
    conf = rd_kafka_conf_new();

    if (rd_kafka_conf_set(conf, "bootstrap.servers", s->brokers, kerr,
                          sizeof(kerr)) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "client.id", "cef-sync-stat", kerr,
                             sizeof(kerr)) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "log_level", "0", kerr, sizeof(kerr))
           != RD_KAFKA_CONF_OK)
    {
        snprintf(err, errlen, "kafka: %s", kerr);
        rd_kafka_conf_destroy(conf);
        return -1;
    }

    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof(kerr));
    if (rk == NULL) {
        snprintf(err, errlen, "kafka: %s", kerr);
        rd_kafka_conf_destroy(conf);
        return -1;
    }

    rkt = rd_kafka_topic_new(rk, s->topic, NULL);

    e = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "cannot reach the brokers \"%s\": %s",
                 s->brokers, rd_kafka_err2str(e));
        goto done;
    }

    if (md->topic_cnt != 1 || md->topics[0].err) {
        snprintf(err, errlen, "topic \"%s\": %s", s->topic,
                 md->topic_cnt ? rd_kafka_err2str(md->topics[0].err)
                               : "not found");
        goto done;
    }

    for (i = 0; i < md->topics[0].partition_cnt; i++) {
        int32_t  p = md->topics[0].partitions[i].id;

        /* no leader: not consumed yet either (consume.c) */
        if (p < 0 || p >= CEF_STORE_PARTITIONS_MAX
            || md->topics[0].partitions[i].leader < 0)
        {
            continue;
        }

        e = rd_kafka_query_watermark_offsets(rk, s->topic, p, &lo, &hi,
                                             10000);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(err, errlen, "topic \"%s\" partition %d: %s", s->topic,
                     (int) p, rd_kafka_err2str(e));
            goto done;
        }

        high[p] = hi;
        if ((uint32_t) p + 1 > *partitions) {
            *partitions = (uint32_t) p + 1;
        }
    }

    rc = 0;

done:

    if (md) {
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return rc;
}
