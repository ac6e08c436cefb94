# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
# Profile store: the reader probe used by the integration tests, and the
# benchmark.  Included by the main Makefile.
#
#   make bench-store         1M reference profiles: load rate, delta apply
#                            rate, lookup latency, bytes per profile
#   make bench-store BENCH_STORE_N=200000

BENCH_STORE_N   ?= 1000000
BENCH_STORE_DIR ?= $(BUILD)/bench-store

.PHONY: bench-store

$(BUILD)/cef-store-probe: tests/tools/store_probe.c $(LIB_HDRS) \
                          $(BUILD)/libcef.a
	$(CC) $(CEF_CFLAGS) tests/tools/store_probe.c $(BUILD)/libcef.a \
	    $(PKG_LIBS) -o $@

$(BUILD)/cef-store-bench: tests/tools/store_bench.c $(LIB_HDRS) \
                          $(BUILD)/libcef.a
	$(CC) $(CEF_CFLAGS) tests/tools/store_bench.c $(BUILD)/libcef.a \
	    $(PKG_LIBS) -o $@

# the store's integration tests run the probe: build it with everything
all: $(BUILD)/cef-store-probe
integration: $(BUILD)/cef-sync $(BUILD)/cef-store-probe

bench-store: $(BUILD)/cef-sync $(BUILD)/cef-store-bench
	rm -rf $(BENCH_STORE_DIR)
	CEF_SYNC=$(BUILD)/cef-sync $(BUILD)/cef-store-bench $(BENCH_STORE_DIR) \
	    $(BENCH_STORE_N)
	rm -rf $(BENCH_STORE_DIR)
