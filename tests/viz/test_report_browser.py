"""report.html and the notebook views in a real headless Chromium: rows, images, sorting, no
network, and run text that stays text."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "report"))
from fakes import decoder_sweep, sample, write_run  # noqa: E402

import attnrun  # noqa: E402
from attnrun.report import make_report  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip
EVIL = "<script>window.pwned = 1; alert(1)</script>"
BLEU = {0: 0.3, 1: 0.25, 2: 12.0, 3: 9.0, 4: 1e-05, 5: -2.0}  # natural text order differs

pytestmark = pytest.mark.browser


def _sync_api():
    if not Path(CHROMIUM).is_file() and shutil.which("chromium") is None:
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM}")
    return pytest.importorskip("playwright.sync_api", reason="the playwright package is missing")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """Three settings (one of them a <script> config value) x two seeds, with attention."""
    root = tmp_path_factory.mktemp("report") / "sweep"
    for job, bleu in BLEU.items():
        score, seed = ("dot", "general", EVIL)[job // 2], job % 2
        write_run(
            root / str(job),
            {"score": score, "seed": seed},
            {"bleu": bleu},
            experiment="translate",
            history={"loss": [2.0, 1.0 + seed], "val_loss": [2.5, 1.5]},
            attention=[sample("test 0", ["le", "chat"], ["the", EVIL, "cat"], seed=job)],
            viewer=seed == 0,
        )
    make_report([root])
    return root


@pytest.fixture(scope="module")
def browser():
    sync_api = _sync_api()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


class Watched:
    """A page whose every request is recorded, and aborted unless it is ``allowed``."""

    def __init__(self, browser, allowed: str | None) -> None:
        self.page = browser.new_page()
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []

        def route(r):
            url = r.request.url
            self.requests.append(url)
            if url == allowed or url.startswith("data:"):
                r.continue_()
            else:
                r.abort()

        self.page.route("**/*", route)
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def foreign(self, allowed: str | None) -> list[str]:
        return [u for u in self.requests if u != allowed and not u.startswith(("data:", "about:"))]


@pytest.fixture(scope="module")
def report_page(browser, sweep):
    url = (sweep / "report.html").as_uri()
    w = Watched(browser, url)
    w.page.goto(url)
    w.page.wait_for_selector("body[data-ready=true]", timeout=10_000)
    yield w, url
    w.page.close()


def _column(page, table: str, name: str) -> list[str]:
    heads = page.eval_on_selector_all(f"#{table} thead th", "hs => hs.map(h => h.textContent)")
    i = heads.index(name)
    return page.eval_on_selector_all(
        f"#{table} tbody tr", f"rs => rs.map(r => r.cells[{i}].textContent)"
    )


def test_one_row_per_run_and_every_image_decodes(report_page):
    w, _ = report_page
    assert w.page.locator("#runs tbody tr").count() == len(BLEU)
    assert w.page.locator("#groups tbody tr").count() == 3
    sizes = w.page.eval_on_selector_all(
        "img", "is => is.map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
    )
    assert len(sizes) == 3  # metric, loss, attention
    assert all(done and width > 0 and height > 0 for done, width, height in sizes), sizes
    assert not w.errors


def test_clicking_a_header_sorts_numbers_numerically(report_page):
    """Guards against sorting numbers as text (even a "natural" collation puts 0.25 after 0.3
    and misplaces 1e-05 and -2) and against a header that does nothing; a second click
    reverses."""
    w, _ = report_page
    page = w.page
    page.click("#runs thead th:has-text('bleu') button")
    values = [float(v) for v in _column(page, "runs", "bleu")]
    assert values == sorted(BLEU.values())
    page.click("#runs thead th:has-text('bleu') button")
    assert [float(v) for v in _column(page, "runs", "bleu")] == sorted(BLEU.values(), reverse=True)
    # rows move whole: each run keeps its own value
    runs = _column(page, "runs", "run")
    assert [BLEU[int(r)] for r in runs] == sorted(BLEU.values(), reverse=True)
    page.click("#runs thead th:has-text('score') button")
    assert _column(page, "runs", "score") == sorted(_column(page, "runs", "score"))
    page.click("#groups thead th:has-text('bleu') button")
    means = [float(v.split(" ± ")[0]) for v in _column(page, "groups", "bleu")]
    assert means == sorted(means)


def test_no_request_leaves_the_page(report_page):
    """Guards against anything fetched from outside the file itself (a CDN script, an image by
    file name or URL): every request other than the page and data: URIs is recorded."""
    w, url = report_page
    assert w.foreign(url) == []


def test_script_text_is_shown_as_text_and_never_runs(report_page):
    w, _ = report_page
    page = w.page
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert not w.dialogs and not w.errors
    assert EVIL in _column(page, "runs", "score")
    assert EVIL in page.text_content("#attention")
    assert page.locator("script").count() == 1


def test_viewer_links_open_the_runs_own_viewer(report_page, sweep):
    w, _ = report_page
    hrefs = w.page.eval_on_selector_all("#runs a", "as => as.map(a => a.href)")
    assert sorted(hrefs) == sorted((sweep / str(j) / "attention.html").as_uri() for j in (0, 2, 4))


def _frame_ready(w, selector: str = "body[data-ready=true]"):
    frame = w.page.frames[1]
    frame.wait_for_selector(selector, timeout=10_000)
    return frame


def test_open_report_renders_inline_offline(browser, sweep, tmp_path):
    """The notebook view of a report: the same page in a srcdoc iframe, built without writing
    into the runs' folders; it renders, sorts and fetches nothing."""
    before = sorted(p.name for p in sweep.rglob("*"))
    view = attnrun.open_report(sweep)
    assert sorted(p.name for p in sweep.rglob("*")) == before
    w = Watched(browser, None)
    w.page.set_content(view._repr_html_())
    frame = _frame_ready(w)
    assert frame.locator("#runs tbody tr").count() == len(BLEU)
    widths = frame.eval_on_selector_all("img", "is => is.map(i => i.naturalWidth)")
    assert len(widths) == 3 and min(widths) > 0
    frame.click("#runs thead th:has-text('bleu') button")
    assert [float(v) for v in _column(frame, "runs", "bleu")] == sorted(BLEU.values())
    assert frame.evaluate("typeof window.pwned") == "undefined" and not w.dialogs
    assert w.foreign(None) == [] and not w.errors
    w.page.close()


@pytest.mark.parametrize("own_viewer", [True, False])
def test_open_run_shows_the_viewer_inline_offline(browser, sweep, own_viewer):
    """The notebook view of a run: its attention.html (or, without one, a viewer built from
    attention.json) inline; the <script> token is text in the viewer and never runs."""
    run = attnrun.open_run(sweep / ("0" if own_viewer else "1"))
    w = Watched(browser, None)
    w.page.set_content(run._repr_html_())
    frame = _frame_ready(w)
    keys = frame.eval_on_selector_all("text.token.key", "ts => ts.map(t => t.textContent)")
    assert keys == ["the", EVIL, "cat"]
    frame.hover('text.token.query[data-index="0"]')
    assert frame.locator("#lines line").count() > 0
    assert frame.evaluate("typeof window.pwned") == "undefined" and not w.dialogs
    assert w.page.evaluate("typeof window.pwned") == "undefined"
    assert w.foreign(None) == [] and not w.errors
    w.page.close()


@pytest.fixture(scope="module")
def decoder_page(browser, tmp_path_factory):
    """A decoder=none,bahdanau sweep (two seeds) as the README's sweep leaves it."""
    root = decoder_sweep(tmp_path_factory.mktemp("decoders") / "sweep")
    make_report([root])
    url = (root / "report.html").as_uri()
    w = Watched(browser, url)
    w.page.set_viewport_size({"width": 1280, "height": 900})
    w.page.goto(url)
    w.page.wait_for_selector("body[data-ready=true]", timeout=10_000)
    yield w, url
    w.page.close()


def _box(page, selector: str) -> dict:
    return page.eval_on_selector(
        selector, "e => { const r = e.getBoundingClientRect(); "
        "return {x: r.x, y: r.y + window.scrollY, w: r.width, h: r.height}; }",
    )  # fmt: skip


def test_key_figures_on_top_and_plots_in_a_grid(decoder_page):
    """Guards against the 4,400-pixel column of quarter-width plots with the key figures last:
    BLEU by length and the attention panel stand side by side above the runs table, the metric
    plots two to a row, every image drawn."""
    w, url = decoder_page
    page = w.page
    length, attention = _box(page, "#bleu-by-length"), _box(page, "#attention")
    assert abs(length["y"] - attention["y"]) < 5 and attention["x"] > length["x"] + length["w"]
    assert _box(page, "#runs")["y"] > max(length["y"] + length["h"], attention["y"])
    figures = page.eval_on_selector_all(
        "#plots figure", "fs => fs.map(f => [f.getBoundingClientRect().x, "
        "f.getBoundingClientRect().y, f.querySelector('img').naturalWidth])",
    )  # fmt: skip
    bleu, chrf = figures[:2]
    assert abs(bleu[1] - chrf[1]) < 5 and chrf[0] > bleu[0]  # one row, two plots
    assert all(width > 0 for _, _, width in figures)
    assert "decoder=none: a model without attention" in page.text_content("#attention")
    heads = page.eval_on_selector_all("#runs thead th", "hs => hs.map(h => h.textContent)")
    assert "bleu" in heads and "bleu_lowercase" not in heads
    assert w.foreign(url) == [] and not w.errors


def test_open_run_of_an_index_viewer_picks_sentences_without_dead_links(browser, tmp_path):
    """A translate run's attention.html is an index over its sentences: inline in a notebook
    the Sentence picker works, and the links to attention_<i>.html (which a srcdoc frame
    cannot reach) are hidden."""
    from attnrun.viz.viewer import AttentionSentence, AttentionView, write_attention_index_html

    att = [sample(f"test {i}", ["le", "chat"], ["the", "cat", f"w{i}"], seed=i) for i in (0, 1)]
    run = write_run(tmp_path / "run", {"seed": 0}, {"bleu": 1.0}, experiment="translate",
                    attention=att)  # fmt: skip
    sentences = [
        AttentionSentence(s.name, [AttentionView("cross", s.queries, s.keys, s.weights)],
                          page=f"attention_{i}.html")
        for i, s in enumerate(att)
    ]  # fmt: skip
    write_attention_index_html(run / "attention.html", sentences, title="index")
    w = Watched(browser, None)
    w.page.set_content(attnrun.open_run(run)._repr_html_())
    frame = _frame_ready(w)
    assert frame.is_visible("#sentence") and not frame.is_visible("#sentence-page")
    frame.select_option("#sentence", "1")
    keys = frame.eval_on_selector_all("text.token.key", "ts => ts.map(t => t.textContent)")
    assert keys == ["the", "cat", "w1"]
    assert w.foreign(None) == [] and not w.errors
    w.page.close()
