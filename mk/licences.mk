# The licence check (docs/licences.md), part of make check-layers and so of
# make test: every source file carries SPDX-License-Identifier: BSD-2-Clause,
# and the module links only permissively licensed libraries.  After adding
# files: /usr/bin/python3 tests/tools/check_licences.py --fix

.PHONY: check-licences

check-layers: check-licences

check-licences: module
	$(PYTHON) tests/tools/check_licences.py
