# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
# The bandit strategy's cost (issue 19: a bandit decision at most 0.3 us
# more than a weighted one).
#
#   make bench-bandit-cost   median thread-CPU ns per decision (weighted,
#                            bandit new visitor, bandit returning) and
#                            callgrind instructions per decision of each.
#                            Prints figures, asserts nothing.

BENCH_BANDIT_COST := $(BUILD)/bench/bench_bandit_cost

.PHONY: bench-bandit-cost

$(BENCH_BANDIT_COST): tests/rules/bench_bandit_cost.c $(BUILD)/libcef.a
	@mkdir -p $(dir $@)
	$(CC) $(CEF_CFLAGS) $< $(BUILD)/libcef.a $(PKG_LIBS) -lm -o $@

bench-bandit-cost: $(BENCH_BANDIT_COST)
	@$(BENCH_BANDIT_COST) time
	@for s in weighted new kept; do \
	    out=$(BUILD)/bench/callgrind.bandit-$$s.out; \
	    valgrind --tool=callgrind --collect-atstart=no \
	        --callgrind-out-file=$$out \
	        $(BENCH_BANDIT_COST) callgrind $$s 10000 >/dev/null 2>&1 \
	        || exit 1; \
	    ir=$$(sed -n 's/^totals: *//p' $$out); \
	    echo "callgrind $$s: $$((ir / 10000)) instructions per decision"; \
	done
