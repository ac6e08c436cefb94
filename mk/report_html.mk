# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
# cef-report's HTML page (tools/cef-report/cef_report_html.c and the
# files it uses): its unit test, built and run by `make unit` like the
# others but linked with the page's own files instead of libcef, and the
# packages its integration tests need: Chromium renders the page
# (tests/integration/test_report_html.py), sqlite3 runs docs/report.sql
# (tests/integration/test_report_sql.py).

DEB_PKGS += chromium sqlite3

REPORT_HTML_SRCS := tools/cef-report/cef_report_html.c \
                    tools/cef-report/cef_report_svg.c \
                    tools/cef-report/cef_report_fmt.c

$(BUILD)/unit/test_report_html: tests/unit/test_report_html.c \
                                $(REPORT_HTML_SRCS) \
                                $(wildcard tools/cef-report/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -Itools/cef-report $< $(REPORT_HTML_SRCS) \
	    -lcmocka -lm -o $@

# the integration test renders the unit test's sample page
integration: $(BUILD)/unit/test_report_html
