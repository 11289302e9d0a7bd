"""attention.html in a real headless Chromium: hovering draws lines, a <script> token stays text."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from attnrun.viz.viewer import write_attention_html

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip
MAX_WIDTH = 8  # the page's line width for weight 1

pytestmark = pytest.mark.browser

TOKENS = ["the", "animal", "<script>window.pwned = 1; alert(1)</script>", "it", "was", "tired"]


def _browser():
    if not Path(CHROMIUM).is_file() and shutil.which("chromium") is None:
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM}")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is missing"
    )
    return sync_api


@pytest.fixture(scope="module")
def page_and_weights(tmp_path_factory):
    sync_api = _browser()
    g = torch.Generator().manual_seed(0)
    weights = torch.softmax(3 * torch.randn(2, 3, len(TOKENS), len(TOKENS), generator=g), dim=-1)
    path = tmp_path_factory.mktemp("viewer") / "attention.html"
    write_attention_html(path, TOKENS, TOKENS, weights, title="test <b>page</b>",
                         layer_names=["layer 1", "pointer"])  # fmt: skip
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            dialogs, errors, requests = [], [], []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.as_uri())
            page.wait_for_selector("body[data-ready=true]", timeout=10_000)
            yield page, weights, dialogs, errors, requests
        finally:
            browser.close()


def _lines(page):
    return page.eval_on_selector_all(
        "#lines line",
        "ls => ls.map(l => [+l.dataset.from, +l.dataset.to, +l.dataset.weight,"
        " +l.getAttribute('stroke-width')])",
    )


def test_hovering_a_query_draws_its_lines_with_width_proportional_to_weight(page_and_weights):
    page, weights, _, errors, _ = page_and_weights
    page.select_option("#layer", "0")
    page.select_option("#head", "1")
    page.hover('text.token.query[data-index="1"]')
    lines = _lines(page)
    assert lines, "hovering drew no lines"
    assert {f for f, _, _, _ in lines} == {1}
    expected = weights[0, 1, 1]
    for _, to, w, width in lines:
        assert w == pytest.approx(float(expected[to]), abs=1e-4)
        assert width == pytest.approx(MAX_WIDTH * w, abs=2e-3)
    drawn = {to for _, to, _, _ in lines}
    assert drawn == {j for j in range(len(TOKENS)) if MAX_WIDTH * expected[j] >= 0.15}
    assert "attends most to" in page.text_content("#readout")
    assert not errors


def test_hovering_a_key_draws_the_lines_arriving_at_it(page_and_weights):
    page, *_ = page_and_weights
    page.hover('text.token.key[data-index="3"]')
    lines = _lines(page)
    assert lines and {t for _, t, _, _ in lines} == {3}


def test_layer_and_head_choice_change_the_lines(page_and_weights):
    page, weights, *_ = page_and_weights
    page.hover('text.token.query[data-index="0"]')
    page.select_option("#layer", "1")
    page.select_option("#head", "2")
    page.hover('text.token.query[data-index="2"]')
    got = {to: w for _, to, w, _ in _lines(page)}
    for to, w in got.items():
        assert w == pytest.approx(float(weights[1, 2, 2, to]), abs=1e-4)
    page.select_option("#head", "mean")
    page.hover('text.token.query[data-index="0"]')
    page.hover('text.token.query[data-index="2"]')
    got = {to: w for _, to, w, _ in _lines(page)}
    mean = weights[1].mean(0)[2]
    for to, w in got.items():
        assert w == pytest.approx(float(mean[to]), abs=1e-3)


def test_script_token_is_shown_as_text_and_never_runs(page_and_weights):
    page, _, dialogs, errors, requests = page_and_weights
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert not dialogs and not errors
    texts = page.eval_on_selector_all("text.token.query", "ts => ts.map(t => t.textContent)")
    assert texts == TOKENS
    assert page.title() == "test <b>page</b>"
    assert page.locator("script").count() == 2
    assert all(u.startswith("file:") for u in requests), requests
