# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
# Slot scanner fuzzing (libFuzzer, clang).  Not part of `make test`.
#
#   make fuzz-slot-scanner                  run for FUZZ_SECONDS (60)
#   make fuzz-slot-scanner FUZZ_SECONDS=600
#
# The target (tests/fuzz/fuzz_slot_scanner.c) feeds each input to the
# streaming scanner whole, byte by byte and in fuzzer-chosen pieces and
# abort()s if any differs from the one-shot reference.  Seeds are in
# tests/fuzz/corpus/slot_scanner/; new inputs go to $(BUILD)/fuzz/ and
# crashes to $(BUILD)/fuzz/crash-*.

FUZZ_CC           ?= clang
FUZZ_SECONDS      ?= 60
FUZZ_SLOT         := $(BUILD)/fuzz/fuzz_slot_scanner
FUZZ_SLOT_CORPUS  := $(BUILD)/fuzz/corpus-slot_scanner
FUZZ_SLOT_DICT    := $(BUILD)/fuzz/slot_scanner.dict

.PHONY: fuzz-slot-scanner

# The scanner is instrumented for coverage; the harness (the reference
# checks, which cost more than the scanner) only for ASan and UBSan, so
# that the fuzzer's feedback and time go to the scanner.
FUZZ_SLOT_CFLAGS  := -std=c11 -D_GNU_SOURCE $(WARN) -O1 -g \
                     -fno-omit-frame-pointer -fno-sanitize-recover=all $(LIB_INCS)

$(BUILD)/fuzz/slot/scanner.o: lib/html/cef_slot_scanner.c lib/html/cef_slot_scanner.h \
                              lib/core/cef_value.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_SLOT_CFLAGS) \
	    -fsanitize=fuzzer-no-link,address,undefined -c $< -o $@

$(BUILD)/fuzz/slot/harness.o: tests/fuzz/fuzz_slot_scanner.c \
                              lib/html/cef_slot_scanner.h lib/core/cef_value.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_SLOT_CFLAGS) -fsanitize=address,undefined -c $< -o $@

$(FUZZ_SLOT): $(BUILD)/fuzz/slot/harness.o $(BUILD)/fuzz/slot/scanner.o
	$(FUZZ_CC) -fsanitize=fuzzer,address,undefined $^ -o $@

$(FUZZ_SLOT_DICT): mk/fuzz-slot.mk
	@mkdir -p $(dir $@)
	@printf '%s\n' '"<!--cef:slot "' '"<!--/cef:slot-->"' \
	    '"<!--/cef:slot -->"' '"-->"' '" -->"' '"<!--"' '"<"' '"hero"' \
	    '"<!--cef:slot hero-->"' '"--"' > $@

fuzz-slot-scanner: $(FUZZ_SLOT) $(FUZZ_SLOT_DICT)
	@mkdir -p $(FUZZ_SLOT_CORPUS)
	$(FUZZ_SLOT) -max_total_time=$(FUZZ_SECONDS) -max_len=2048 \
	    -dict=$(FUZZ_SLOT_DICT) -print_final_stats=1 \
	    -artifact_prefix=$(BUILD)/fuzz/ \
	    $(FUZZ_SLOT_CORPUS) tests/fuzz/corpus/slot_scanner
