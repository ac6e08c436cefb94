# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
# Fuzzing every parser (libFuzzer, clang, ASan+UBSan).  Not part of
# `make test`.
#
#   make fuzz                       every target for FUZZ_SECONDS (60) each
#   make fuzz FUZZ_SECONDS=600
#   make fuzz-smoke                 replay the committed corpora (seeds and
#                                   regression inputs), then fuzz each
#                                   target FUZZ_SMOKE_SECONDS (5): for CI
#   make fuzz-expr                  one target (fuzz-NAME for each
#                                   tests/fuzz/fuzz_NAME.c)
#   make fuzz-long                  each target to FUZZ_RUNS (10 million)
#                                   executions, one after the other, at
#                                   nice 19; one summary line per target
#   make fuzz-long FUZZ_LONG="store rules" FUZZ_RUNS=1000000
#
# Targets (tests/fuzz/fuzz_*.c), seeds in tests/fuzz/corpus/NAME/, a
# dictionary in tests/fuzz/NAME.dict where one helps:
#   input     snapshot/delta stream reader, msgpack and NDJSON
#   store     what cef-sync makes of a stream: every record's values
#             through the writer's encoder and back through the reader's
#             decoder; one input in CEF_FUZZ_STORE_EVERY (64; the smoke: 1)
#             also as a whole load or apply into a store on tmpfs
#   profile   the stored-profile decoder on arbitrary bytes
#   rules     the rule-file loader, then decisions and offer rendering
#   expr      the expression compiler and evaluator
#   template  offer templates and HTML escaping
#   identity  signed keys, link tokens, visitor ids, base64url
#   caps      the frequency-caps cookie: verification, the freqcap
#             plugin's parser, the decision and the cookie sent back
#   record    the decision record cef-rules replay reads from log lines:
#             parse, format, parse again
#   consume   cef-sync consume's decoding of Kafka message values
#             (tools/cef-sync/decode.c); one input in CEF_FUZZ_STORE_EVERY
#             also through a stream session into a store on tmpfs
#   slot_scanner (mk/fuzz-slot.mk) the streaming slot scanner
#
# libcef and libcef_writer are rebuilt, as one archive, with coverage
# instrumentation in $(BUILD)/fuzz/obj
# (warnings are not errors there: lib/ is written for gcc, and clang warns
# differently).
# New inputs go to $(BUILD)/fuzz/corpus-NAME, crashes to
# $(BUILD)/fuzz/crash-*.  A crash becomes a regression test by committing
# the input to tests/fuzz/corpus/NAME/ (fuzz-smoke replays it) and fixing
# the bug; one whose fix belongs to another component waits in
# tests/fuzz/crashes-pending/ (not replayed; its README says why).

FUZZ_SMOKE_SECONDS ?= 5
FUZZ_RUNS          ?= 10000000

# libFuzzer and the sanitizer runtimes of Debian's clang
DEB_PKGS += clang libclang-rt-14-dev
FUZZ_JOBS          ?= 1

FUZZ_FLAGS  := -std=c11 -D_GNU_SOURCE $(WARN) -O1 -g -fno-omit-frame-pointer \
               -fno-sanitize-recover=all $(LIB_INCS) $(PKG_CFLAGS)
FUZZ_SRCS   := $(filter-out tests/fuzz/fuzz_slot_scanner.c, \
                 $(sort $(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_NAMES  := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRCS))
FUZZ_BINS   := $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZ_NAMES))
FUZZ_OBJS   := $(patsubst %.c,$(BUILD)/fuzz/obj/%.o,$(LIB_SRCS) $(PLUGIN_SRCS) \
                 $(WRITER_SRCS))

# run options; leaks are checked (LeakSanitizer) and every input is bounded
FUZZ_ENV    := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
               UBSAN_OPTIONS=print_stacktrace=1
# the smoke puts every store input through a whole load or apply
FUZZ_SMOKE_ENV := $(FUZZ_ENV) CEF_FUZZ_STORE_EVERY=1
FUZZ_RUN    := -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
               -artifact_prefix=$(BUILD)/fuzz/
fuzz_maxlen  = $(if $(filter store input rules,$(1)),-max_len=16384, \
                 -max_len=4096)
fuzz_dict    = $(if $(wildcard tests/fuzz/$(1).dict), \
                 -dict=tests/fuzz/$(1).dict)

FUZZ_LONG   ?= $(FUZZ_NAMES) slot_scanner
# (shell) the options of target $$n, as fuzz-NAME and fuzz-slot-scanner
FUZZ_SH_OPTS = case $$n in \
                 slot_scanner) o="-max_len=2048 -dict=$(FUZZ_SLOT_DICT)";; \
                 store|input|rules) o=-max_len=16384;; \
                 *) o=-max_len=4096;; esac; \
               [ -f tests/fuzz/$$n.dict ] && o="$$o -dict=tests/fuzz/$$n.dict"

.PHONY: fuzz fuzz-build fuzz-smoke fuzz-long \
        $(addprefix fuzz-,$(FUZZ_NAMES))

$(BUILD)/fuzz/obj/%.o: %.c $(LIB_HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -Wno-error \
	    -fsanitize=fuzzer-no-link,address,undefined -c $< -o $@

$(BUILD)/fuzz/libcef.a: $(FUZZ_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h \
                      $(BUILD)/fuzz/libcef.a
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer,address,undefined \
	    -Itests/fuzz $(FUZZ_TARGET_FLAGS) $< $(FUZZ_TARGET_OBJS) \
	    $(BUILD)/fuzz/libcef.a $(PKG_LIBS) -ldl -lpthread -o $@

# cef-sync's message decoder is a tool's file, not libcef's
$(BUILD)/fuzz/fuzz_consume: FUZZ_TARGET_FLAGS = -Itools/cef-sync
$(BUILD)/fuzz/fuzz_consume: FUZZ_TARGET_OBJS = \
    $(BUILD)/fuzz/obj/tools/cef-sync/decode.o
$(BUILD)/fuzz/fuzz_consume: $(BUILD)/fuzz/obj/tools/cef-sync/decode.o \
                            tools/cef-sync/cef_sync_decode.h

fuzz-build: $(FUZZ_BINS) $(FUZZ_SLOT) $(FUZZ_SLOT_DICT)

$(addprefix fuzz-,$(FUZZ_NAMES)): fuzz-%: $(BUILD)/fuzz/fuzz_%
	@mkdir -p $(BUILD)/fuzz/corpus-$*
	$(FUZZ_ENV) $< -max_total_time=$(FUZZ_SECONDS) $(FUZZ_RUN) \
	    $(call fuzz_maxlen,$*) $(call fuzz_dict,$*) -jobs=$(FUZZ_JOBS) \
	    $(BUILD)/fuzz/corpus-$* tests/fuzz/corpus/$*

fuzz: $(addprefix fuzz-,$(FUZZ_NAMES)) fuzz-slot-scanner

# The committed corpus is read, never written: new inputs go to a scratch
# directory that is emptied first.  One result line per target
# ("fuzz-smoke: NAME ..."), then a summary; .ci/run repeats them.
fuzz-smoke: fuzz-build
	@set -e; t0=$$(date +%s); for n in $(FUZZ_NAMES) slot_scanner; do \
	    d=$(BUILD)/fuzz/smoke-$$n; rm -rf $$d; mkdir -p $$d; \
	    $(FUZZ_SH_OPTS); \
	    $(FUZZ_SMOKE_ENV) $(BUILD)/fuzz/fuzz_$$n $(FUZZ_RUN) $$o \
	        -max_total_time=$(FUZZ_SMOKE_SECONDS) $$d \
	        tests/fuzz/corpus/$$n > $(BUILD)/fuzz/smoke-$$n.log 2>&1 \
	    || { tail -40 $(BUILD)/fuzz/smoke-$$n.log; \
	         echo "fuzz-smoke: $$n FAILED (log: $(BUILD)/fuzz/smoke-$$n.log)"; \
	         exit 1; }; \
	    echo "fuzz-smoke: $$n ok: $$(ls tests/fuzz/corpus/$$n | wc -l) committed" \
	         "inputs replayed, $$(sed -n 's/^stat::number_of_executed_units: *//p' \
	         $(BUILD)/fuzz/smoke-$$n.log) executions in $(FUZZ_SMOKE_SECONDS) s"; \
	done; \
	echo "fuzz-smoke: all $(words $(FUZZ_NAMES) slot_scanner) targets ok" \
	     "in $$(( $$(date +%s) - t0 )) s"

# The closing-note runs: each target in turn (never two at once) until
# FUZZ_RUNS executions, growing $(BUILD)/fuzz/corpus-NAME; the log is
# $(BUILD)/fuzz/long-NAME.log.  About 15-60 minutes per target on one
# idle core (docs/SECURITY.md, "Fuzzing").
fuzz-long: fuzz-build
	@set -e; for n in $(FUZZ_LONG); do \
	    c=$(BUILD)/fuzz/corpus-$$n; l=$(BUILD)/fuzz/long-$$n.log; \
	    mkdir -p $$c; t0=$$(date +%s); $(FUZZ_SH_OPTS); \
	    $(FUZZ_ENV) nice -n 19 $(BUILD)/fuzz/fuzz_$$n $(FUZZ_RUN) \
	        -runs=$(FUZZ_RUNS) $$o $$c \
	        tests/fuzz/corpus/$$n > $$l 2>&1 \
	    || { tail -40 $$l; echo "fuzz-long: $$n FAILED (log: $$l)"; \
	         exit 1; }; \
	    t=$$(( $$(date +%s) - t0 )); \
	    e=$$(sed -n 's/^stat::number_of_executed_units: *//p' $$l); \
	    echo "fuzz-long: $$n: $$e executions in $$t s" \
	         "($$(( e / (t ? t : 1) ))/s), corpus $$(ls $$c | wc -l) files"; \
	    grep '^fuzz_store: ' $$l || true; \
	done
