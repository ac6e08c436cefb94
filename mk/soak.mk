# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
# make soak: ten minutes of wrk at full rate against a personalising nginx
# while cef-sync applies deltas every second (tests/soak/soak.py).  Fails
# on any non-200, worker RSS growth of 5 MB or more after the warm-up (the
# store file's own growth excused, see soak.py), a worker restart, or an
# error.log line above warn.  Not part of `make test`.
#
#   make soak
#   make soak SOAK_SECONDS=120 SOAK_WARMUP=30

SOAK_SECONDS ?= 600
SOAK_WARMUP  ?= 60

.PHONY: soak

soak: all
	SOAK_SECONDS=$(SOAK_SECONDS) SOAK_WARMUP=$(SOAK_WARMUP) \
	    $(PYTHON) tests/soak/soak.py
