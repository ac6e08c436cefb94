# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
# Published records (weights, rule sets) in the store: the readers' cost per
# request.  Included by the main Makefile.
#
#   make bench-publish       a store with 20 bandits' weights and a rule
#                            set, filled by the real cef-sync and cef-rules;
#                            ns per request session of
#                            cef_store_published_changed(), a weights
#                            lookup with its arms, a rule set's state
#                            (tests/tools/publish_bench.c).  Not in make test.

BENCH_PUBLISH_DIR ?= $(BUILD)/bench-publish
BENCH_PUBLISH_N   ?= 2000000

.PHONY: bench-publish

$(BUILD)/cef-publish-bench: tests/tools/publish_bench.c $(LIB_HDRS) \
                            $(BUILD)/libcef.a
	$(CC) $(CEF_CFLAGS) tests/tools/publish_bench.c $(BUILD)/libcef.a \
	    $(PKG_LIBS) -o $@

bench-publish: $(BUILD)/cef-sync $(BUILD)/cef-rules $(BUILD)/cef-publish-bench
	rm -rf $(BENCH_PUBLISH_DIR) && mkdir -p $(BENCH_PUBLISH_DIR)
	printf 'bench-secret\n' > $(BENCH_PUBLISH_DIR)/secret
	printf '{"cef":"snapshot","version":1,"id":"B","created_at":1}\n{"end":true,"count":0}\n' \
	    | $(BUILD)/cef-sync load -q --store $(BENCH_PUBLISH_DIR)/store \
	        --secret $(BENCH_PUBLISH_DIR)/secret -
	{ echo '{"cef":"delta","version":1}'; \
	  for i in $$(seq 0 19); do \
	    echo "{\"seq\":$$((i + 1)),\"op\":\"weights\",\"experiment\":\"exp$$i\",\"salt\":\"exp$$i\",\"version\":1,\"created_at\":1,\"weights\":{\"spring\":2000,\"summer\":3000,\"winter\":5000}}"; \
	  done; } | $(BUILD)/cef-sync apply -q --store $(BENCH_PUBLISH_DIR)/store \
	      --secret $(BENCH_PUBLISH_DIR)/secret -
	$(BUILD)/cef-rules publish tests/rules/good.yaml --name shop --seq 100 \
	  | $(BUILD)/cef-sync apply -q --store $(BENCH_PUBLISH_DIR)/store \
	      --secret $(BENCH_PUBLISH_DIR)/secret -
	$(BUILD)/cef-publish-bench $(BENCH_PUBLISH_DIR)/store $(BENCH_PUBLISH_N)
	rm -rf $(BENCH_PUBLISH_DIR)
