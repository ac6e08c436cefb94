# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
# cef-report: experiment results from impression and goal logs
# (docs/report.md).
#
#   make build/cef-report   (part of `make all` / `make tools`)
#   make unit               also tests/report/test_report_logs.c (cmocka)
#   make check-report-asan  tests/integration/test_report_logs.py and
#                           test_report_periods.py against
#                           an ASan+UBSan build of cef-report
#   make bench-report       10M impression lines and 1M goal lines
#                           (generated: 8 edges' files, 2 of them gzip'd),
#                           analysed; prints the time, peak RSS and
#                           lines/s.  Targets: <= 60 s, <= 2 GB.  Asserts
#                           nothing; not part of `make test`.
#
# GSL is GPL-3: it is linked into cef-report only, never into the module or
# libcef.  yajl reads the logs (docs/report.md#speed: jansson's tree was 7x
# slower per line), uthash keys the visitors, zlib reads .gz files.

DEB_PKGS += libgsl-dev zlib1g-dev libyajl-dev uthash-dev

REPORT_SRCS := $(sort $(wildcard tools/cef-report/*.c))
REPORT_HDRS := $(wildcard tools/cef-report/*.h)
REPORT_LIBS  = $(shell pkg-config --libs jansson yajl zlib 2>/dev/null || \
                 echo -ljansson -lyajl -lz) -lgsl -lgslcblas -lm -pthread

.PHONY: bench-report

tools: $(BUILD)/cef-report

$(BUILD)/cef-report: $(REPORT_SRCS) $(REPORT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CEF_CFLAGS) -pthread -Itools/cef-report $(REPORT_SRCS) \
	    $(REPORT_LIBS) $(LDFLAGS) -o $@

# unit tests of the log reading (tests/report/test_report_logs.c), run by
# `make unit` with the other unit tests, ASan+UBSan
REPORT_UNIT := $(BUILD)/unit/test_report_logs

$(REPORT_UNIT): tests/report/test_report_logs.c $(REPORT_SRCS) $(REPORT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -pthread -Itools/cef-report $< \
	    $(filter-out %/cef_report_main.c,$(REPORT_SRCS)) $(REPORT_LIBS) \
	    -lcmocka -o $@

UNIT_BINS += $(REPORT_UNIT)
unit: $(REPORT_UNIT)

BENCH_REPORT_DIR := $(BUILD)/bench/report

bench-report: $(BUILD)/cef-report
	@$(PYTHON) tests/report/bench_report.py $(BENCH_REPORT_DIR)

# The log-reading tests against a build with ASan+UBSan (any report fails
# the run: -fno-sanitize-recover, leaks included).
.PHONY: check-report-asan

$(BUILD)/asan/cef-report: $(REPORT_SRCS) $(REPORT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -pthread -Itools/cef-report $(REPORT_SRCS) \
	    $(REPORT_LIBS) $(LDFLAGS) -o $@

check-report-asan: $(BUILD)/asan/cef-report
	CEF_REPORT=$(CURDIR)/$(BUILD)/asan/cef-report \
	    ASAN_OPTIONS=detect_leaks=1 \
	    $(PYTEST) -q -p no:cacheprovider tests/integration/test_report_logs.py \
	    tests/integration/test_report_periods.py

# Fuzzing the line parser and the join (tests/report/fuzz_report_parse.c,
# libFuzzer, clang, ASan+UBSan); seeds in tests/report/corpus/.
#   make fuzz-report             FUZZ_SECONDS (60)
#   make fuzz-smoke              also replays the seeds, then fuzzes
#                                FUZZ_SMOKE_SECONDS (5)
.PHONY: fuzz-report fuzz-report-smoke

FUZZ_REPORT      := $(BUILD)/fuzz/fuzz_report_parse
FUZZ_REPORT_SRCS := $(addprefix tools/cef-report/cef_report_, \
                      read.c parse.c join.c join_tests.c)

$(FUZZ_REPORT): tests/report/fuzz_report_parse.c $(FUZZ_REPORT_SRCS) \
                $(REPORT_HDRS)
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE $(WARN) -O1 -g -fno-omit-frame-pointer \
	    -fno-sanitize-recover=all \
	    -fsanitize=fuzzer,address,undefined -Itools/cef-report $< \
	    $(FUZZ_REPORT_SRCS) -lyajl -lz -lm -o $@

fuzz-report: $(FUZZ_REPORT)
	@mkdir -p $(BUILD)/fuzz/corpus-report_parse
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 $(FUZZ_REPORT) \
	    -timeout=25 -rss_limit_mb=2048 -max_len=4096 \
	    -artifact_prefix=$(BUILD)/fuzz/ -max_total_time=$(FUZZ_SECONDS) \
	    $(BUILD)/fuzz/corpus-report_parse tests/report/corpus

fuzz-report-smoke: $(FUZZ_REPORT)
	@d=$(BUILD)/fuzz/smoke-report_parse; rm -rf $$d; mkdir -p $$d; \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 $(FUZZ_REPORT) \
	    -timeout=25 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
	    -artifact_prefix=$(BUILD)/fuzz/ \
	    -max_total_time=$(FUZZ_SMOKE_SECONDS) $$d tests/report/corpus \
	    > $(BUILD)/fuzz/smoke-report_parse.log 2>&1 \
	|| { tail -40 $(BUILD)/fuzz/smoke-report_parse.log; \
	     echo "fuzz-smoke: report_parse FAILED"; exit 1; }; \
	echo "fuzz-smoke: report_parse ok: $$(ls tests/report/corpus | wc -l)" \
	     "committed inputs replayed, $$(sed -n \
	     's/^stat::number_of_executed_units: *//p' \
	     $(BUILD)/fuzz/smoke-report_parse.log) executions in" \
	     "$(FUZZ_SMOKE_SECONDS) s"

fuzz-smoke: fuzz-report-smoke
