# make bench-identity: the per-request cost of recognising a visitor, with
# a store of BENCH_PROFILES (default 1M) reference profiles; see
# tests/bench/bench_identity.py.  Prints figures, asserts nothing.

.PHONY: bench-identity

bench-identity: all
	$(PYTHON) tests/bench/bench_identity.py
