# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""cef-report's HTML page rendered by headless Chromium (Debian's chromium):
the sample page of tests/unit/test_report_html.c (three tests: an A/B/C/D
test with a winning, a losing and an empty arm, a holdout whose sample
ratio check fails, `cef-report stats` input) is not blank, shows its charts
and its loud SRM verdict in their colours, and its text holds the arm names
-- escaped, with no script in the DOM.  A blank page fails the same pixel
check (the check can fail)."""

import re
import subprocess

import pytest

import chromium
from conftest import BUILD

SAMPLE = BUILD / "unit" / "test_report_html"

@pytest.fixture(scope="module")
def sample_page(tmp_path_factory):
    assert SAMPLE.exists(), "build it first: make build/unit/test_report_html"
    path = tmp_path_factory.mktemp("report-html") / "report.html"
    subprocess.run([str(SAMPLE), "--page", str(path)], check=True,
                   timeout=60)
    return path


def test_page_renders_not_blank(sample_page, tmp_path):
    img = chromium.render(sample_page, tmp_path / "shot.png",
                          width=1200, height=2400)
    total = img.width * img.height
    ink = img.count(lambda px: not chromium.white(px))

    # text, tables and charts cover a real share of the page
    assert 0.03 * total < ink < 0.6 * total, (ink, total)
    # the failed sample ratio check: its pink box and red heading
    assert img.count(chromium.near("#ffebe9", 6)) > 20000
    assert img.count(chromium.near("#cf222e", 30)) > 1000
    # the winning arm's interval (green), arm b's line over time (blue)
    assert img.count(chromium.near("#1a7f37", 30)) > 300
    assert img.count(chromium.near("#0969da", 30)) > 300


def test_blank_page_fails_the_check(tmp_path):
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    img = chromium.render(blank, tmp_path / "blank.png", width=400,
                          height=300)
    assert img.count(lambda px: not chromium.white(px)) == 0


def test_dom_holds_the_names_escaped(sample_page):
    dom = chromium.dom(sample_page)
    text = re.sub(r"<[^>]*>", " ", dom)

    for name in ("hero-q4", "control", "d-empty", "treatment", "purchase",
                 "revenue", "Sufficient statistics"):
        assert name in text, name
    # the arm named like a script tag is text, not an element
    assert 'b &lt;script&gt;alert("x")&lt;/script&gt;&amp;\'' in dom
    assert "<script" not in dom
    assert "Sample ratio mismatch" in text
    assert "not analysed: no visitors" in text
    # three sections, each with its charts as SVG
    assert dom.count('<section class="test"') == 3
    assert dom.count('<svg class="forest"') == 3
    assert dom.count('<svg class="series"') == 2
