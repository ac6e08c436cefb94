# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
# cef-report's statistics and `cef-report stats` (tools/cef-report,
# docs/report.md).
#
#   build/cef-report                  the tool (GSL and jansson; GSL is
#                                     GPL-3: linked here only, never into
#                                     the module or libcef)
#   build/unit/test_report_stats      its unit tests (gbstats' known
#                                     answers), run by make unit / make test;
#                                     UBSan also traps any floating-point
#                                     division by zero
#
# Until the log reader lands (mk/report.mk), this file carries the
# build/cef-report rule.

DEB_PKGS += libgsl-dev

REPORT_SRCS      := $(sort $(wildcard tools/cef-report/*.c))
REPORT_LIBS      := -lgsl -lgslcblas -lm
# the report's files the unit tests link (not main, not the log reader)
REPORT_UNIT_SRCS := $(addprefix tools/cef-report/, cef_report_stats.c \
                      cef_report_suff.c cef_report_json.c cef_report_table.c)

tools: $(BUILD)/cef-report

$(BUILD)/cef-report: $(REPORT_SRCS) tools/cef-report/cef_report.h
	@mkdir -p $(dir $@)
	$(CC) $(CEF_CFLAGS) -Itools/cef-report $(REPORT_SRCS) $(PKG_LIBS) \
	    $(REPORT_LIBS) -o $@

$(BUILD)/unit/test_report_stats: tests/unit/test_report_stats.c \
                                 $(REPORT_UNIT_SRCS) \
                                 tools/cef-report/cef_report.h
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -fsanitize=float-divide-by-zero \
	    -Itools/cef-report $< $(REPORT_UNIT_SRCS) \
	    $(PKG_LIBS) $(REPORT_LIBS) -lcmocka -o $@
