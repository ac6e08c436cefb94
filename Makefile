# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
# ngx_cef_module — build, test and demo.
#
#   make            libcef.a, libcef_writer.a, the nginx module, cef-sync,
#                   cef-rules (in build/)
#   make test       deps, unit tests (ASan+UBSan), integration tests (real nginx)
#   make demo       deps, build, run the demo shop on http://127.0.0.1:8080
#   make deps       install the Debian packages this needs (as root)
#
# NGINX_SRC=/path builds the module against another nginx source tree
# (default: a copy of Debian's nginx-dev tree in build/nginx).

SHELL     := /bin/bash
BUILD     := build
CC        ?= cc
NGINX_BIN ?= /usr/sbin/nginx
PYTHON    := /usr/bin/python3
PYTEST    := $(PYTHON) -m pytest

NGINX_DEV  := /usr/share/nginx/src
# the flags Debian's nginx binary was built with (nginx -V)
NGX_CC_OPT ?= -g -O2 -fstack-protector-strong -Wformat -Werror=format-security \
              -fPIC -Wdate-time -D_FORTIFY_SOURCE=2
NGX_LD_OPT ?= -Wl,-z,relro -Wl,-z,now -fPIC
NGINX_SRC  ?= $(BUILD)/nginx
MODULE_SO  := $(BUILD)/ngx_http_cef_module.so

PKGS      := lmdb msgpack yaml-0.1 jansson libcrypto libpcre2-8
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# msgpack-c 6.x renamed libmsgpackc to libmsgpack-c
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null || \
               pkg-config --libs $(subst msgpack,msgpack-c,$(PKGS)))

WARN      := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes
CFLAGS    ?= -O2 -g
LIB_DIRS   := $(patsubst %/,%,$(sort $(wildcard lib/*/)))
LIB_INCS   := $(addprefix -I,$(LIB_DIRS))
CEF_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CPPFLAGS) $(CFLAGS) -fPIC \
             $(LIB_INCS) $(PKG_CFLAGS)
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
             -fno-sanitize-recover=all
ASAN_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) -O1 -g $(SAN_FLAGS) $(LIB_INCS) \
              $(PKG_CFLAGS)

# Two libraries (docs/architecture.md): libcef, what nginx needs at request
# time (every lib/ folder but writer, and the built-in rule plugins; config
# builds the module's own copy), and libcef_writer, lib/writer, for cef-sync
# and the tests.  Programs link $(CEF_LIBS): the writer's archive first.
WRITER_SRCS := $(sort $(wildcard lib/writer/*.c))
LIB_SRCS    := $(filter-out $(WRITER_SRCS),$(sort $(wildcard lib/*/*.c)))
LIB_HDRS    := $(wildcard lib/*/*.h)
PLUGIN_SRCS := $(sort $(wildcard rules/plugins/*.c))
LIB_OBJS    := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS) $(PLUGIN_SRCS))
ASAN_OBJS   := $(patsubst %.c,$(BUILD)/asan/%.o,$(LIB_SRCS) $(PLUGIN_SRCS))
WRITER_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(WRITER_SRCS))
ASAN_WRITER_OBJS := $(patsubst %.c,$(BUILD)/asan/%.o,$(WRITER_SRCS))
CEF_LIBS    := $(BUILD)/libcef_writer.a $(BUILD)/libcef.a
ASAN_LIBS   := $(BUILD)/asan/libcef_writer.a $(BUILD)/asan/libcef.a

SYNC_SRCS   := $(sort $(wildcard tools/cef-sync/*.c))
RULES_SRCS  := $(sort $(wildcard tools/cef-rules/*.c))
TOOL_HDRS   := $(wildcard tools/*/*.h)

UNIT_SRCS   := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS   := $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRCS))
UNIT_HELPERS := $(filter-out tests/unit/test_%.c,$(wildcard tests/unit/*.c))

GLUE_SRCS   := $(wildcard ngx_cef_module/*.c ngx_cef_module/*.h)

DEB_PKGS := nginx-light nginx-dev liblmdb-dev lmdb-utils libmsgpack-dev \
            libyaml-dev libssl-dev libjansson-dev libpcre2-dev libcmocka-dev \
            pkg-config python3-pytest python3-msgpack wrk clang gcc make

.PHONY: all deps lib module tools unit integration check-layers test demo clean

all: lib module tools

lib: $(CEF_LIBS)
tools: $(BUILD)/cef-sync $(BUILD)/cef-rules
module: $(MODULE_SO)


# --- Debian packages --------------------------------------------------------

deps:
	@missing=$$(for p in $(DEB_PKGS); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	        | grep -q 'install ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	    echo "installing: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	        apt-get install -y -qq --no-install-recommends $$missing \
	        >/dev/null; \
	else \
	    echo "missing Debian packages; run as root:"; \
	    echo "  apt-get install $$missing"; exit 1; \
	fi


# --- libcef -----------------------------------------------------------------

$(BUILD)/obj/%.o: %.c $(LIB_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CEF_CFLAGS) -c $< -o $@

$(BUILD)/asan/%.o: %.c $(LIB_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -c $< -o $@

$(BUILD)/libcef.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/asan/libcef.a: $(ASAN_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libcef_writer.a: $(WRITER_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/asan/libcef_writer.a: $(ASAN_WRITER_OBJS)
	rm -f $@ && ar rcs $@ $^


# --- tools ------------------------------------------------------------------

$(BUILD)/cef-sync: $(SYNC_SRCS) $(TOOL_HDRS) $(CEF_LIBS)
	$(CC) $(CEF_CFLAGS) -Itools/cef-sync $(SYNC_SRCS) $(CEF_LIBS) \
	    $(LDFLAGS) $(PKG_LIBS) -o $@

$(BUILD)/cef-rules: $(RULES_SRCS) $(TOOL_HDRS) $(BUILD)/libcef.a
	$(CC) $(CEF_CFLAGS) -Itools/cef-rules $(RULES_SRCS) $(BUILD)/libcef.a \
	    $(LDFLAGS) $(PKG_LIBS) -ldl -o $@


# --- the nginx module -------------------------------------------------------
#
# nginx's configure expands the source lists in ./config and config.make
# (which builds the module's libcef.a), so it is re-run whenever the set of
# source files or the addon script changes.

$(BUILD)/nginx/configure:
	@test -d $(NGINX_DEV) || { echo "nginx-dev is not installed: make deps"; \
	    exit 1; }
	mkdir -p $(BUILD)
	rm -rf $(BUILD)/nginx && cp -r $(NGINX_DEV) $(BUILD)/nginx

$(BUILD)/module-srcs.list: FORCE
	@mkdir -p $(BUILD)
	@echo $(LIB_SRCS) $(PLUGIN_SRCS) $(LIB_HDRS) $(wildcard ngx_cef_module/*) \
	    $(NGINX_SRC) > $@.tmp
	@cmp -s $@.tmp $@ && rm $@.tmp || mv $@.tmp $@

$(NGINX_SRC)/objs/Makefile: config config.make $(BUILD)/module-srcs.list \
                            | $(if $(filter $(BUILD)/nginx,$(NGINX_SRC)),$(BUILD)/nginx/configure)
	cd $(NGINX_SRC) && \
	if [ -f conf_flags ]; then . ./conf_flags; else NGX_CONF_FLAGS=(--with-compat); fi && \
	./configure "$${NGX_CONF_FLAGS[@]}" --with-cc-opt="$(NGX_CC_OPT)" \
	    --with-ld-opt="$(NGX_LD_OPT)" --add-dynamic-module=$(CURDIR) \
	    > $(CURDIR)/$(BUILD)/configure.log 2>&1 \
	|| { tail -20 $(CURDIR)/$(BUILD)/configure.log; exit 1; }

$(MODULE_SO): $(NGINX_SRC)/objs/Makefile $(LIB_SRCS) $(LIB_HDRS) \
              $(PLUGIN_SRCS) $(GLUE_SRCS)
	$(MAKE) -C $(NGINX_SRC) -f objs/Makefile modules
	cp $(NGINX_SRC)/objs/ngx_http_cef_module.so $@

FORCE:


# --- tests ------------------------------------------------------------------

$(BUILD)/unit/%: tests/unit/%.c $(UNIT_HELPERS) $(ASAN_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -Itests/unit $< $(UNIT_HELPERS) \
	    $(ASAN_LIBS) $(PKG_LIBS) -lcmocka -ldl -o $@

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do \
	    echo "== $$t"; \
	    ASAN_OPTIONS=detect_leaks=1 CEF_TEST_TMP=$(CURDIR)/$(BUILD)/tmp \
	        $$t; \
	done

integration: all
	$(PYTEST) -q -p no:cacheprovider tests/integration

# lib/'s folders keep their layers, the glue has no include or call cycle,
# the module exports only nginx's entry points (docs/architecture.md)
check-layers: module
	$(PYTHON) tests/tools/check_layers.py

test: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) check-layers
	$(MAKE) integration


# --- demo -------------------------------------------------------------------

demo: deps
	$(MAKE) all
	examples/demo/run


clean:
	rm -rf $(BUILD)


# Per-component targets (bench-store, bench-rules, fuzz, ...).
include $(sort $(wildcard mk/*.mk))
