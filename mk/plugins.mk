# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
# Rule plugins: the example external plugin, test fixtures, benchmark.
#
#   make                   also builds build/plugins/margin_rank.so
#                          (rules/examples/margin_rank.c) against
#                          lib/plugin/cef_plugin.h alone
#   make bench-plugins     a decision with 100 rules, 3 slots, an
#                          experiment and frequency caps: median time and
#                          callgrind instructions per decision.  Prints
#                          figures, asserts nothing.

PLUGIN_SO_FLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -fPIC -shared \
                  $(LIB_INCS)

EXAMPLE_PLUGINS := $(patsubst rules/examples/%.c,$(BUILD)/plugins/%.so,\
                     $(wildcard rules/examples/*.c))
FIXTURE_PLUGINS := $(patsubst tests/rules/plugins/%.c,$(BUILD)/plugins/test/%.so,\
                     $(wildcard tests/rules/plugins/*.c))

BENCH_PLUGINS := $(BUILD)/bench/bench_plugins

.PHONY: plugins bench-plugins

all: plugins
plugins: $(EXAMPLE_PLUGINS) $(FIXTURE_PLUGINS)

$(BUILD)/plugins/%.so: rules/examples/%.c lib/plugin/cef_plugin.h lib/core/cef_value.h
	@mkdir -p $(dir $@)
	$(CC) $(PLUGIN_SO_FLAGS) $< -o $@

$(BUILD)/plugins/test/%.so: tests/rules/plugins/%.c lib/plugin/cef_plugin.h
	@mkdir -p $(dir $@)
	$(CC) $(PLUGIN_SO_FLAGS) $< -o $@

# the unit test that dlopen()s them
$(BUILD)/unit/test_plugin_dl: $(EXAMPLE_PLUGINS) $(FIXTURE_PLUGINS)

$(BENCH_PLUGINS): tests/rules/bench_plugins.c $(BUILD)/libcef.a
	@mkdir -p $(dir $@)
	$(CC) $(CEF_CFLAGS) $< $(BUILD)/libcef.a $(PKG_LIBS) -lm -o $@

bench-plugins: $(BENCH_PLUGINS)
	@$(BENCH_PLUGINS) time
	@out=$(BUILD)/bench/callgrind.plugins.out; \
	valgrind --tool=callgrind --collect-atstart=no \
	    --callgrind-out-file=$$out \
	    $(BENCH_PLUGINS) callgrind 10000 >/dev/null 2>&1 || exit 1; \
	ir=$$(sed -n 's/^summary: *//p' $$out); \
	echo "callgrind: $$((ir / 10000)) instructions per decision" \
	     "($$ir for 10000 decisions)"
