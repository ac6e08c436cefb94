# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
# make test-nginx NGINX=1.26: the integration suite against another nginx
# version; make test-matrix: one leg per entry of MATRIX_LEGS, one after
# the other, with the time each leg took and where its nginx came from
# (docs/building.md).
#
#   make test-nginx NGINX=1.30
#   make test-nginx NGINX=1.26 FROM=source
#   make test-nginx NGINX=1.26 MATRIX_TESTS=tests/integration/test_http2.py
#   make test-matrix
#
# FROM=debian (the default, what CI runs): 1.22 is the machine's own nginx
# (Debian bookworm's binary, as make test).  Every other version is
# Debian's build of it for the suite in MATRIX_SUITE_<version>:
# tests/matrix/debian-nginx unpacks that suite's nginx binary, the
# libraries it was linked against and its nginx-dev tree into
# build/matrix/<version>/ (once: kept until make clean), the module is
# built against that tree into build/matrix/<version>/, and the suite runs
# with NGINX_BIN and CEF_MODULE_SO pointing at the two.
#
# FROM=source: tests/matrix/source-nginx fetches the suite's nginx source
# package with apt-get source from a deb-src line of its own, builds nginx
# --with-compat from whatever the archive serves of it (the upstream
# tarball, and Debian's patches when its debian.tar.xz is served) into
# build/matrix/<version>-src/, and the module against that same tree.
# FROM=auto: the same, or FROM=debian when the archive serves no source
# (Debian sid's 1.30.6 today: every file 404).
#
# A suite that has moved on to another nginx branch (sid's 1.30 becoming
# 1.32) stops the leg with a message naming the version it has now.

# test-matrix's legs: VERSION (Debian's binary) or VERSION:source or
# VERSION:auto (built from the suite's source package when the archive
# serves it, Debian's binary otherwise)
MATRIX_LEGS       ?= 1.22 1.22:source 1.26:auto 1.30:auto
# the newest: what CI runs besides 1.22 (.ci/run)
MATRIX_NEWEST     ?= 1.30
MATRIX_SUITE_1.22 := bookworm
MATRIX_SUITE_1.26 := trixie
MATRIX_SUITE_1.30 := sid
MATRIX_DIR        := $(BUILD)/matrix
MATRIX_TESTS      ?= tests/integration
NGINX             ?= $(MATRIX_NEWEST)
# where test-nginx's nginx comes from: debian (Debian's binary, 1.22 the
# machine's), source (built from the suite's source package, fetched with
# apt-get source; fails when the archive does not serve it) or auto (source
# when served, debian otherwise)
FROM              ?= debian
# make puts command-line variables into the recipes' environment, and nginx
# reads $NGINX as the list of listening sockets inherited on an upgrade
unexport NGINX

# curl: the HTTP/2 client of tests/integration/test_http2.py; patch and
# zlib1g-dev for nginx's own build (FROM=source: tests/matrix/source-nginx;
# libssl-dev and libpcre2-dev are in the Makefile's list)
DEB_PKGS += curl patch zlib1g-dev

.PHONY: test-nginx test-matrix

MATRIX_SUITE = $(MATRIX_SUITE_$(NGINX))
MATRIX_NOSUITE = echo "test-nginx: no Debian suite for nginx $(NGINX)" \
    "(MATRIX_SUITE_$(NGINX) in mk/matrix.mk)"; exit 1
# stops a leg whose suite moved on to another nginx branch
MATRIX_CHECK_VERSION = case "$$(cat $(1)/version)" in \
    $(NGINX).*) ;; \
    *) echo "test-nginx: $(MATRIX_SUITE) now has nginx" \
        "$$(cat $(1)/version), not $(NGINX).x:" \
        "update MATRIX_SUITE_* in mk/matrix.mk"; exit 1;; \
    esac

ifneq ($(filter source auto,$(FROM)),)

# built from the suite's source package: tests/matrix/source-nginx exits 3
# when the archive serves no source for it
test-nginx: all
	@test -n "$(MATRIX_SUITE)" || { $(MATRIX_NOSUITE); }
	@mkdir -p $(MATRIX_DIR); rc=0; \
	tests/matrix/source-nginx $(MATRIX_SUITE) \
	    $(MATRIX_DIR)/$(NGINX)-src || rc=$$?; \
	if [ $$rc = 3 ] && [ "$(FROM)" = auto ]; then \
	    echo "test-nginx: no source served for $(MATRIX_SUITE)'s nginx:" \
	        "Debian's binary instead"; \
	    exec $(MAKE) --no-print-directory test-nginx FROM=debian \
	        NGINX=$(NGINX) MATRIX_TESTS="$(MATRIX_TESTS)"; \
	elif [ $$rc != 0 ]; then exit $$rc; fi; \
	$(call MATRIX_CHECK_VERSION,$(MATRIX_DIR)/$(NGINX)-src); \
	echo "built from source: $$(cat $(MATRIX_DIR)/$(NGINX)-src/origin)" \
	    > $(MATRIX_DIR)/leg; \
	$(MAKE) --no-print-directory module BUILD=$(MATRIX_DIR)/$(NGINX)-src \
	    NGINX_SRC=$(MATRIX_DIR)/$(NGINX)-src/src && \
	NGINX_BIN=$(CURDIR)/$(MATRIX_DIR)/$(NGINX)-src/nginx \
	CEF_MODULE_SO=$(CURDIR)/$(MATRIX_DIR)/$(NGINX)-src/ngx_http_cef_module.so \
	    $(PYTEST) -q -p no:cacheprovider $(MATRIX_TESTS)

else ifeq ($(NGINX),1.22)

test-nginx: all
	@mkdir -p $(MATRIX_DIR); echo "Debian's binary: the machine's" \
	    "$$($(NGINX_BIN) -v 2>&1 | sed 's/.*: //')" > $(MATRIX_DIR)/leg
	$(PYTEST) -q -p no:cacheprovider $(MATRIX_TESTS)

else

test-nginx: all
	@test -n "$(MATRIX_SUITE)" || { $(MATRIX_NOSUITE); }
	tests/matrix/debian-nginx $(MATRIX_SUITE_$(NGINX)) \
	    $(MATRIX_DIR)/$(NGINX)
	@$(call MATRIX_CHECK_VERSION,$(MATRIX_DIR)/$(NGINX))
	@echo "Debian's binary: $(MATRIX_SUITE)'s nginx" \
	    "$$(cat $(MATRIX_DIR)/$(NGINX)/version)" > $(MATRIX_DIR)/leg
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
	for leg in $(MATRIX_LEGS); do \
	    v=$${leg%%:*}; from=debian; \
	    case $$leg in *:*) from=$${leg#*:};; esac; \
	    echo "== test-matrix: nginx $$v ($$from)"; \
	    start=$$(date +%s); rm -f $(MATRIX_DIR)/leg; \
	    if $(MAKE) --no-print-directory test-nginx NGINX=$$v FROM=$$from \
	            MATRIX_TESTS="$(MATRIX_TESTS)"; then \
	        r=passed; else r=FAILED; rc=1; fi; \
	    echo "test-matrix: nginx $$v $$r in $$(( $$(date +%s) - start )) s:" \
	        "$$(cat $(MATRIX_DIR)/leg 2>/dev/null || echo '?')" \
	        >> $(MATRIX_DIR)/summary; \
	done; \
	echo; cat $(MATRIX_DIR)/summary; exit $$rc
