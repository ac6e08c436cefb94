# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
# cef-report bandit: a bandit's new arm weights (tools/cef-report/
# cef_report_bandit*.c, docs/report.md "cef-report bandit").
#
#   build/unit/test_report_bandit   its unit tests (fixed seeds; GrowthBook's
#                                   deterministic cases), run by make unit /
#                                   make test
#   make bench-bandit               the simulation of issue 19: true rates
#                                   2 %, 3 %, 5 %, weights recomputed every
#                                   5 000 visitors by the real build/cef-report;
#                                   prints the best arm's share and the regret
#                                   against a uniform split (several seeds,
#                                   median).  Not part of make test.
#                                   BENCH_BANDIT_ARGS="--seeds 3" (--help)
#
# The tool itself is built by the build/cef-report rule (every
# tools/cef-report/*.c); this adds the bandit's header to its inputs.

BANDIT_UNIT_SRCS := $(addprefix tools/cef-report/, cef_report_bandit.c \
                      cef_report_bandit_input.c cef_report_bandit_record.c \
                      cef_report_suff.c)
BANDIT_HDRS      := tools/cef-report/cef_report_bandit.h \
                    tools/cef-report/cef_report.h
BENCH_BANDIT_ARGS ?=

.PHONY: bench-bandit

$(BUILD)/cef-report: tools/cef-report/cef_report_bandit.h

$(BUILD)/unit/test_report_bandit: tests/unit/test_report_bandit.c \
                                  $(BANDIT_UNIT_SRCS) $(BANDIT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -fsanitize=float-divide-by-zero \
	    -Itools/cef-report $< $(BANDIT_UNIT_SRCS) \
	    $(PKG_LIBS) -lgsl -lgslcblas -lm -lcmocka -o $@

bench-bandit: $(BUILD)/cef-report
	$(PYTHON) tests/bench/bench_bandit.py --report $(BUILD)/cef-report \
	    $(BENCH_BANDIT_ARGS)
