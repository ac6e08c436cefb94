# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
# Debian packages (docs/packaging.md).  Included by the main Makefile.
#
#   make deb            build/deb/libnginx-mod-http-cef_*.deb and
#                       build/deb/cef-tools_*.deb (dpkg-buildpackage -us -uc
#                       -b on a copy of the tree; their -dbgsym packages in
#                       build/deb/debug/), then lintian on them
#   make test-package   make deb, then install them on this machine, serve a
#                       signed customer their offer from the system nginx,
#                       purge (tests/package/run; as root)
#
# The build runs in build/deb/src/ngx-cef-VERSION, a copy of this tree
# without build/ and .git, so dpkg-buildpackage's outputs (written to the
# parent directory) land in build/deb/ and the tree's own build/ is left
# alone.

DEB_PKGS += debhelper dpkg-dev lintian adduser curl systemd

# what `make deb` needs (debian/control's Build-Depends and the tools that
# run it): `make deps` with only these, so packaging needs no bench or fuzz
# tool
DEB_BUILD_PKGS := debhelper dpkg-dev lintian nginx nginx-dev pkg-config \
                  liblmdb-dev libmsgpack-dev libyaml-dev libjansson-dev \
                  libssl-dev libpcre2-dev librdkafka-dev libgsl-dev \
                  zlib1g-dev

DEB_VERSION := $(shell sed -n '1s/.*(\(.*\)).*/\1/p' debian/changelog)
DEB_DIR     := $(BUILD)/deb
DEB_SRC     := $(DEB_DIR)/src/ngx-cef-$(DEB_VERSION)
DEB_JOBS    ?= 2

.PHONY: deb test-package

deb:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(DEB_BUILD_PKGS)"
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_SRC)
	tar --exclude=./$(BUILD) --exclude=./.git --exclude=__pycache__ \
	    -cf - . | tar -C $(DEB_SRC) -xf -
	cd $(DEB_SRC) && DEB_BUILD_OPTIONS="parallel=$(DEB_JOBS) \
	    $(DEB_BUILD_OPTIONS)" dpkg-buildpackage -us -uc -b \
	    > $(CURDIR)/$(DEB_DIR)/build.log 2>&1 \
	|| { tail -40 $(CURDIR)/$(DEB_DIR)/build.log; exit 1; }
	mv $(DEB_DIR)/src/*.deb $(DEB_DIR)/src/*.buildinfo \
	    $(DEB_DIR)/src/*.changes $(DEB_DIR)/
	rm -rf $(DEB_DIR)/src
	lintian --fail-on error --display-info --pedantic $(DEB_DIR)/*.changes
	mkdir -p $(DEB_DIR)/debug
	mv $(DEB_DIR)/*-dbgsym_*.deb $(DEB_DIR)/debug/
	@ls -l $(DEB_DIR)/*.deb

test-package:
	tests/package/run
