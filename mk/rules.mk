# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
# Rule engine: benchmark.
#
#   make bench-rules    100 rules against a reference profile: median
#                       evaluation time and callgrind instructions per
#                       decision; compile time of 10 000 rules, and of
#                       400 000 placeholders, 100 000 nesting levels and
#                       100 000 offers with plugin keys (each also at
#                       half the size: linear compiling doubles).  Then
#                       the realistic workload of issue 22
#                       (tests/rules/bench_realistic.c) at 10, 100 and
#                       1 000 rules: median ns and callgrind instructions
#                       per decision, and compiling 10 000 such rules
#                       (ms, CPU ms, and callgrind instructions: SHA-256
#                       of the file counts more there than natively, as
#                       valgrind hides the CPU's SHA instructions).
#                       Prints figures, asserts nothing.

DEB_PKGS += valgrind

BENCH_RULES := $(BUILD)/bench/bench_rules
BENCH_REAL  := $(BUILD)/bench/bench_realistic

.PHONY: bench-rules

$(BENCH_RULES): tests/rules/bench_rules.c $(BUILD)/libcef.a
	@mkdir -p $(dir $@)
	$(CC) $(CEF_CFLAGS) $< $(BUILD)/libcef.a $(PKG_LIBS) -lm -o $@

$(BENCH_REAL): tests/rules/bench_realistic.c $(CEF_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CEF_CFLAGS) $< $(CEF_LIBS) $(PKG_LIBS) -lm -o $@

bench-rules: $(BENCH_RULES) $(BENCH_REAL)
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
	@for n in 10 100 1000; do $(BENCH_REAL) time $$n || exit 1; done
	@for n in 10 100 1000; do \
	    out=$(BUILD)/bench/callgrind.realistic.$$n.out; \
	    valgrind --tool=callgrind --collect-atstart=no \
	        --callgrind-out-file=$$out \
	        $(BENCH_REAL) callgrind $$n 10000 >/dev/null 2>&1 || exit 1; \
	    ir=$$(sed -n 's/^summary: *//p' $$out); \
	    echo "callgrind (realistic, $$n rules): $$((ir / 10000))" \
	         "instructions per decision"; \
	done
	@$(BENCH_REAL) compile 10000 5
	@out=$(BUILD)/bench/callgrind.realistic.compile.out; \
	valgrind --tool=callgrind --collect-atstart=no \
	    --callgrind-out-file=$$out \
	    $(BENCH_REAL) compile 10000 1 >/dev/null 2>&1 || exit 1; \
	ir=$$(sed -n 's/^summary: *//p' $$out); \
	echo "callgrind (realistic): compiling 10000 rules takes" \
	     "$$((ir / 1000000)) M instructions"
