# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
# Rule engine: benchmark.
#
#   make bench-rules    100 rules against a reference profile: median
#                       evaluation time and callgrind instructions per
#                       decision; compile time of 10 000 rules, and of
#                       400 000 placeholders, 100 000 nesting levels and
#                       100 000 offers with plugin keys (each also at
#                       half the size: linear compiling doubles).  Prints
#                       figures, asserts nothing.

DEB_PKGS += valgrind

BENCH_RULES := $(BUILD)/bench/bench_rules

.PHONY: bench-rules

$(BENCH_RULES): tests/rules/bench_rules.c $(BUILD)/libcef.a
	@mkdir -p $(dir $@)
	$(CC) $(CEF_CFLAGS) $< $(BUILD)/libcef.a $(PKG_LIBS) -lm -o $@

bench-rules: $(BENCH_RULES)
	@$(BENCH_RULES) time
	@$(BENCH_RULES) compile
	@for how in table stored; do \
	    out=$(BUILD)/bench/callgrind.rules.$$how.out; \
	    valgrind --tool=callgrind --collect-atstart=no \
	        --callgrind-out-file=$$out \
	        $(BENCH_RULES) callgrind 10000 $$how >/dev/null 2>&1 || exit 1; \
	    ir=$$(sed -n 's/^summary: *//p' $$out); \
	    echo "callgrind ($$how): $$((ir / 10000)) instructions per" \
	         "decision ($$ir for 10000 decisions)"; \
	done
