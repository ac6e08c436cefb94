# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
# Rule sets served from the store (cef_rules store:NAME): benchmarks with
# real nginx, cef-sync, cef-rules and wrk.  Included by the main Makefile.
#
#   make bench-fleet     publish -> live p50/p99 (file apply and Kafka),
#                        request latency during a switch of a 10 000-rule
#                        set versus idle, worker CPU with a 5 % shadow
#                        (tests/integration/bench_fleet.py).  Prints
#                        figures; not in make test.

.PHONY: bench-fleet

bench-fleet: all
	/usr/bin/python3 -m pytest -q -s -p no:cacheprovider \
	    tests/integration/bench_fleet.py
