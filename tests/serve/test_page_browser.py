"""attnrun serve's page in a real headless Chromium (Playwright on Debian's chromium, as the
viewer tests): type a sentence, hover a token, switch a head off, move the bandwidth slider, and
a <script> sentence or run name that stays text."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from serve_helpers import SENTENCE, Server, write_test_ablation

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip
EVIL = "<img src=x onerror=window.pwned=3>"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM}")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is missing"
    )
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def server(trained, tmp_path_factory):
    """The transformer, RNN and regress runs, and a copy of the regress run whose folder name is
    markup (ids: r1 = the markup one, r2 regress, r3 rnn, r4 transformer); the transformer has
    an ablation.json (``s.ablation``), the others none."""
    root = tmp_path_factory.mktemp("page_runs")
    for name in ("transformer", "rnn", "regress"):
        shutil.copytree(trained[name], root / name)
    shutil.copytree(trained["regress"], root / EVIL)
    ablation = write_test_ablation(root / "transformer")
    s = Server(str(root), "--port", "0")
    s.ablation = ablation
    yield s
    s.stop()


@pytest.fixture(scope="module")
def ids(server):
    _, body = server.get("/api/runs")
    return {r["name"]: r["id"] for r in body["runs"]}


@pytest.fixture
def page(browser, server):
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.dialogs, page.errors, page.requests = [], [], []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("request", lambda r: page.requests.append(r.url))
    page.goto(server.url)
    page.wait_for_selector("body[data-ready=true]", timeout=15_000)
    yield page
    assert not page.errors and not page.dialogs
    assert all(u.startswith(server.url) for u in page.requests), page.requests
    page.close()


def _answered(page, slot="a") -> int:
    return int(page.get_attribute(f"#panel-{slot}", "data-answered") or 0)


def _wait(page, before: int, slot="a") -> None:
    page.wait_for_function(
        "([slot, n]) => Number(document.querySelector('#panel-' + slot).dataset.answered || 0) > n",
        arg=[slot, before],
        timeout=15_000,
    )


def _run_sentence(page, run_id: str, text: str) -> None:
    before = _answered(page)
    page.select_option("#run-a", run_id)
    page.fill("#text", text)
    page.click("#go")
    _wait(page, before)
    page.wait_for_function("() => document.querySelector('#panel-a').dataset.state !== 'busy'")


def _heatmap(page) -> np.ndarray:
    cells = page.eval_on_selector_all(
        "#panel-a .heatmap rect.cell",
        "cs => cs.map(c => [+c.dataset.row, +c.dataset.col, +c.dataset.weight])",
    )
    rows, cols = max(r for r, _, _ in cells) + 1, max(c for _, c, _ in cells) + 1
    out = np.zeros((rows, cols))
    for r, c, w in cells:
        out[r, c] = w
    return out


def test_typing_a_sentence_shows_the_translation(page, server, ids):
    """Guards the page's round trip: the output shown is the API's translation."""
    _run_sentence(page, ids["transformer"], SENTENCE)
    _, want = server.post("/api/predict", {"run": ids["transformer"], "text": SENTENCE})
    assert page.text_content("#panel-a .output") == want["output"]
    assert "it \u2192" in page.text_content("#panel-a .notes")


def test_hovering_a_token_draws_lines_and_outlines_its_heatmap_row(page, ids, server):
    """Guards the reused viewer: hovering a query draws its lines (∝ weight) from the API's map."""
    _run_sentence(page, ids["transformer"], SENTENCE)
    page.select_option("#panel-a .viewer-kind", "cross")
    page.hover('#panel-a text.token.query[data-index="2"]')
    lines = page.eval_on_selector_all(
        "#panel-a .lines line", "ls => ls.map(l => [+l.dataset.from, +l.dataset.weight])"
    )
    assert lines and {f for f, _ in lines} == {2}
    _, want = server.post("/api/predict", {"run": ids["transformer"], "text": SENTENCE})
    row = np.array(want["attention"]["cross"])[0, 0, 2]
    for _, w in lines:
        assert np.isclose(row, w, atol=1e-4).any()
    assert float(page.get_attribute("#panel-a .heat-focus", "width")) > 0


def test_switching_a_head_off_zeroes_its_map_and_matches_the_api(page, ids, server):
    """Guards the head toggles: each shows its measured removal effect (the run's ablation.json
    delta, tooltip naming its folder and split); unticking encoder layer 2 head 1 recomputes;
    its heatmap is all zero, another head's map and the output are the API's answer with that
    head off."""
    _run_sentence(page, ids["transformer"], SENTENCE)
    toggle = 'input.head-toggle[data-kind="encoder_self"][data-layer="1"][data-head="0"]'
    want_delta = next(
        h["deltas"]["bleu"]
        for h in server.ablation["heads"]
        if (h["kind"], h["layer"], h["head"]) == ("encoder_self", 1, 0)
    )
    effect = page.locator(f"#panel-a label.toggle:has({toggle}) .head-delta")
    assert effect.text_content(timeout=5_000) == f" \u2212{abs(want_delta):.2f} bleu"
    assert "ablations/2026-01-02/00-00-00" in effect.get_attribute("title")
    assert "test split" in effect.get_attribute("title")
    before = _answered(page)
    page.uncheck(f"#panel-a {toggle}")
    _wait(page, before)
    ablate = [{"kind": "encoder_self", "layer": 1, "head": 0}]
    _, want = server.post(
        "/api/predict", {"run": ids["transformer"], "text": SENTENCE, "ablate": ablate, "beam": 1}
    )
    assert page.text_content("#panel-a .output") == want["output"]
    assert "encoder_self L2 H1" in page.text_content("#panel-a .notes")
    page.select_option("#panel-a .viewer-kind", "encoder_self")
    page.select_option("#panel-a .viewer-layer", "1")
    page.select_option("#panel-a .viewer-head", "0")
    assert not _heatmap(page).any()
    page.hover('#panel-a text.token.query[data-index="7"]')
    assert page.locator("#panel-a .lines line").count() == 0
    page.select_option("#panel-a .viewer-head", "1")
    np.testing.assert_allclose(_heatmap(page), np.array(want["attention"]["encoder_self"])[1, 1])
    page.select_option("#panel-a .viewer-kind", "cross")
    page.select_option("#panel-a .viewer-layer", "0")
    page.select_option("#panel-a .viewer-head", "0")
    np.testing.assert_allclose(_heatmap(page), np.array(want["attention"]["cross"])[0, 0])


def test_two_runs_side_by_side_answer_the_same_sentence(page, ids, server):
    """Guards the comparison: the second panel shows the RNN's answer to the same text."""
    _run_sentence(page, ids["transformer"], SENTENCE)
    before = _answered(page, "b")
    page.select_option("#run-b", ids["rnn"])
    _wait(page, before, "b")
    _, want = server.post("/api/predict", {"run": ids["rnn"], "text": SENTENCE, "beam": 1})
    assert page.text_content("#panel-b .output") == want["output"]
    assert page.is_visible("#panel-a") and page.is_visible("#panel-b")
    assert page.locator("#panel-b input.head-toggle").count() == 1  # the RNN's one attention
    assert page.locator("#panel-b .head-delta").count() == 0  # no ablation.json: no effect


def test_regress_slider_and_click_refit(page, ids, server):
    """Guards the regress panel: moving the bandwidth slider refits (the fit and the weights are
    the API's at that bandwidth), clicking the plot moves the query."""
    before = _answered(page)
    page.select_option("#run-a", ids["regress"])
    _wait(page, before)
    fit = page.get_attribute("#panel-a polyline.fit", "points")
    before = _answered(page)
    page.eval_on_selector(
        "#panel-a .bandwidth", "e => { e.value = '-0.7'; e.dispatchEvent(new Event('input')); }"
    )
    _wait(page, before)
    assert page.get_attribute("#panel-a polyline.fit", "points") != fit
    h = 10**-0.7
    query = float(page.get_attribute("#panel-a", "data-query"))
    _, want = server.post("/api/predict", {"run": ids["regress"], "query": query, "bandwidth": h})
    bars = page.eval_on_selector_all(
        "#panel-a rect.weight-bar", "bs => bs.map(b => +b.dataset.weight)"
    )
    np.testing.assert_allclose(bars, want["weights"], atol=1e-3)
    before = _answered(page)
    box = page.locator("#panel-a .regress-plot").bounding_box()
    page.mouse.click(box["x"] + 120, box["y"] + 100)
    _wait(page, before)
    assert float(page.get_attribute("#panel-a", "data-query")) != query


def test_script_sentence_and_markup_run_name_stay_text(page, ids):
    """Guards XSS: a typed <script>/<img onerror> sentence and a run folder named as markup are
    shown as text and never run."""
    text = '<script>window.pwned=1</script> the cat <img src=x onerror="window.pwned=2"> it .'
    _run_sentence(page, ids["transformer"], text)
    assert "<script>window" in page.text_content("#panel-a .notes")
    assert page.evaluate("typeof window.pwned") == "undefined"
    before = _answered(page)
    page.select_option("#run-a", ids[EVIL])
    _wait(page, before)
    assert EVIL in page.text_content("#panel-a .run-title")
    assert EVIL in page.inner_text("#run-a")
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert page.locator("img").count() == 0
    assert page.locator("script").count() == 2  # the config block and the page's script


def test_an_error_replaces_the_previous_answer(page, ids):
    """Guards against a stale answer under an error: a sentence over the run's token limit shows
    the API's one-line error and no output or maps of the sentence before."""
    _run_sentence(page, ids["transformer"], SENTENCE)
    assert page.text_content("#panel-a .output")
    _run_sentence(page, ids["transformer"], "the " * 60)
    assert "tokens; this run takes at most" in page.text_content("#panel-a .panel-error")
    assert page.text_content("#panel-a .output") == ""
    assert not page.is_visible("#panel-a .attention")
