# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
# make bench: the module against plain nginx, sub_filter and an
# OpenResty-style Lua server in one nginx, plus how the cost of a decision
# grows with the store and the rule set.  Writes bench/results/latest.md and
# PNG plots; prints figures and the issue's targets, asserts nothing.
# See docs/bench.md.
#
#   make bench           the full run (under 20 minutes on 2 cores)
#   make bench-quick     a ~1 minute subset (smaller store, short rounds);
#                        writes build/bench/quick-results/quick.md
#   make bench BENCH_ARGS="--rounds 5 --seconds 10"   (bench.py --help)
#   make bench-cost      what one response costs, steady on a busy machine:
#                        callgrind instructions per request and the
#                        worker's CPU time per request for plain, sendfile
#                        off, sub_filter, the body filter alone and the
#                        personalising server (tests/bench/serving_cost.py;
#                        BENCH_COST_ARGS="--module A.so --module B.so"
#                        compares two builds)
#   make bench-peers     what moves the peer ratios (issue 22): plain,
#                        sub_filter, Lua and the module under each factor
#                        (connections, configuration, sendfile, cookies,
#                        page size, the Lua peer's form), rounds
#                        interleaved; writes bench/results/peers.md
#                        (tests/bench/peer_factors.py; ~8 minutes;
#                        BENCH_PEERS_ARGS="--rounds 3 --seconds 3")
#
# Generated stores are kept in build/bench-data and reused while their
# parameters match.

DEB_PKGS += libnginx-mod-http-lua lua-resty-core gnuplot-nox valgrind strace \
            linux-perf

CEF_BENCH  := $(BUILD)/bench/cef-bench
BENCH_ARGS ?=

BENCH_COST_ARGS ?=
BENCH_PEERS_ARGS ?=

.PHONY: bench bench-quick bench-cost bench-peers

$(CEF_BENCH): tests/bench/cef_bench.c $(LIB_HDRS) $(BUILD)/libcef.a
	@mkdir -p $(dir $@)
	$(CC) $(CEF_CFLAGS) $< $(BUILD)/libcef.a $(PKG_LIBS) -o $@

bench: deps
	$(MAKE) all $(CEF_BENCH)
	$(PYTHON) tests/bench/bench.py $(BENCH_ARGS)

bench-quick: deps
	$(MAKE) all $(CEF_BENCH)
	$(PYTHON) tests/bench/bench.py --quick $(BENCH_ARGS)

bench-cost: deps
	$(MAKE) all $(CEF_BENCH)
	$(PYTHON) tests/bench/serving_cost.py $(BENCH_COST_ARGS)

bench-peers: deps
	$(MAKE) all $(CEF_BENCH)
	$(PYTHON) tests/bench/peer_factors.py $(BENCH_PEERS_ARGS)
