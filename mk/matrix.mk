# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
# make test-nginx NGINX=1.26: the integration suite against another nginx
# version; make test-matrix: against every version in MATRIX_VERSIONS, one
# after the other, with the time each leg took (docs/building.md).
#
#   make test-nginx NGINX=1.30
#   make test-nginx NGINX=1.26 MATRIX_TESTS=tests/integration/test_http2.py
#   make test-matrix
#
# 1.22 is the machine's own nginx (Debian bookworm's binary, as make test).
# Every other version is Debian's build of it for the suite in
# MATRIX_SUITE_<version>: tests/matrix/debian-nginx unpacks that suite's
# nginx binary, the libraries it was linked against and its nginx-dev tree
# into build/matrix/<version>/ (once: kept until make clean), the module is
# built against that tree into build/matrix/<version>/, and the suite runs
# with NGINX_BIN and CEF_MODULE_SO pointing at the two.  A suite that has
# moved on to another nginx branch (sid's 1.30 becoming 1.32) stops the leg
# with a message naming the version it has now.

MATRIX_VERSIONS   ?= 1.22 1.26 1.30
# the newest: what CI runs besides 1.22 (.ci/run)
MATRIX_NEWEST     ?= 1.30
MATRIX_SUITE_1.26 := trixie
MATRIX_SUITE_1.30 := sid
MATRIX_DIR        := $(BUILD)/matrix
MATRIX_TESTS      ?= tests/integration
NGINX             ?= $(MATRIX_NEWEST)
# make puts command-line variables into the recipes' environment, and nginx
# reads $NGINX as the list of listening sockets inherited on an upgrade
unexport NGINX

# curl: the HTTP/2 client of tests/integration/test_http2.py
DEB_PKGS += curl

.PHONY: test-nginx test-matrix

ifeq ($(NGINX),1.22)

test-nginx: all
	$(PYTEST) -q -p no:cacheprovider $(MATRIX_TESTS)

else

test-nginx: all
	@test -n "$(MATRIX_SUITE_$(NGINX))" || { echo "test-nginx: no Debian" \
	    "suite for nginx $(NGINX) (MATRIX_SUITE_$(NGINX) in mk/matrix.mk)";\
	    exit 1; }
	tests/matrix/debian-nginx $(MATRIX_SUITE_$(NGINX)) \
	    $(MATRIX_DIR)/$(NGINX)
	@case "$$(cat $(MATRIX_DIR)/$(NGINX)/version)" in \
	    $(NGINX).*) ;; \
	    *) echo "test-nginx: $(MATRIX_SUITE_$(NGINX)) now has nginx" \
	        "$$(cat $(MATRIX_DIR)/$(NGINX)/version), not $(NGINX).x:" \
	        "update MATRIX_SUITE_* in mk/matrix.mk"; exit 1;; \
	esac
	$(MAKE) module BUILD=$(MATRIX_DIR)/$(NGINX) \
	    NGINX_SRC=$(MATRIX_DIR)/$(NGINX)/src
	NGINX_BIN=$(CURDIR)/$(MATRIX_DIR)/$(NGINX)/nginx \
	CEF_MODULE_SO=$(CURDIR)/$(MATRIX_DIR)/$(NGINX)/ngx_http_cef_module.so \
	    $(PYTEST) -q -p no:cacheprovider $(MATRIX_TESTS)

endif

# Each leg in its own make, so that one failing leg does not hide the
# others; the closing lines give every leg's result and time.
test-matrix: all
	@mkdir -p $(MATRIX_DIR); : > $(MATRIX_DIR)/summary; rc=0; \
	for v in $(MATRIX_VERSIONS); do \
	    echo "== test-matrix: nginx $$v"; \
	    start=$$(date +%s); \
	    if $(MAKE) --no-print-directory test-nginx NGINX=$$v \
	            MATRIX_TESTS="$(MATRIX_TESTS)"; then \
	        r=passed; else r=FAILED; rc=1; fi; \
	    echo "test-matrix: nginx $$v $$r in $$(( $$(date +%s) - start )) s" \
	        >> $(MATRIX_DIR)/summary; \
	done; \
	echo; cat $(MATRIX_DIR)/summary; exit $$rc
