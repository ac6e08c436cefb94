# cef-report: experiment results from impression and goal logs
# (docs/report.md).
#
#   make build/cef-report   (part of `make all` / `make tools`)
#   make unit               also tests/report/test_report_logs.c (cmocka)
#   make check-report-asan  tests/integration/test_report_logs.py against
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
	    $(REPORT_LIBS) -o $@

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
	    $(REPORT_LIBS) -o $@

check-report-asan: $(BUILD)/asan/cef-report
	CEF_REPORT=$(CURDIR)/$(BUILD)/asan/cef-report \
	    ASAN_OPTIONS=detect_leaks=1 \
	    $(PYTEST) -q -p no:cacheprovider tests/integration/test_report_logs.py
