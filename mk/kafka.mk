# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
# Kafka: cef-sync consume links librdkafka; the test tools run librdkafka's
# mock cluster (no real broker).  Included by the main Makefile.
#
#   make bench-kafka    consume-and-apply rate from the mock cluster, and
#                       produce -> visible-in-store delay at 5000 records/s
#   make bench-kafka BENCH_KAFKA_N=200000

DEB_PKGS += librdkafka-dev

KAFKA_LIBS := -lrdkafka

BENCH_KAFKA_N    ?= 300000
BENCH_KAFKA_RATE ?= 5000
BENCH_KAFKA_SECS ?= 20

.PHONY: bench-kafka

$(BUILD)/cef-sync: PKG_LIBS += $(KAFKA_LIBS)

$(BUILD)/cef-kafka-mock: tests/kafka/cef_kafka_mock.c
	@mkdir -p $(dir $@)
	$(CC) $(CEF_CFLAGS) tests/kafka/cef_kafka_mock.c $(KAFKA_LIBS) \
	    -lpthread -o $@

$(BUILD)/cef-kafka-dump: tests/kafka/cef_kafka_dump.c $(LIB_HDRS) \
                         $(BUILD)/libcef.a
	$(CC) $(CEF_CFLAGS) tests/kafka/cef_kafka_dump.c $(BUILD)/libcef.a \
	    $(PKG_LIBS) -o $@

# the Kafka integration tests run both
all: $(BUILD)/cef-kafka-mock $(BUILD)/cef-kafka-dump
integration: $(BUILD)/cef-kafka-mock $(BUILD)/cef-kafka-dump

bench-kafka: $(BUILD)/cef-sync $(BUILD)/cef-kafka-mock $(BUILD)/cef-kafka-dump
	$(PYTHON) tests/kafka/bench_kafka.py --records $(BENCH_KAFKA_N) \
	    --rate $(BENCH_KAFKA_RATE) --seconds $(BENCH_KAFKA_SECS)
