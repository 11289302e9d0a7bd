"""report.html as text: self-contained, escaped, relative viewer links (browser: tests/viz)."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
from fakes import decoder_sweep, sample, write_run

from attnrun.report import make_report

EVIL = "<script>window.pwned = 1</script>"


class Parsed(HTMLParser):
    """Tags, attributes and text of a page (what a browser would see, without running it)."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def attrs(self, tag: str, name: str) -> list[str]:
        return [a[name] for t, a in self.tags if t == tag and name in a]


@pytest.fixture
def evil_sweep(tmp_path: Path) -> Path:
    """Two settings x two seeds; run text (a config value, a token, a title) holds markup."""
    root = tmp_path / "sweep"
    for i, score in enumerate(("dot", EVIL)):
        for seed in (0, 1):
            s = sample("test 0", ["le", "<b>chat</b>"], ["the", EVIL, "cat"], seed=i + seed)
            s.title = "<i>title</i>"
            write_run(
                root / f"{i}{seed}",
                {"score": score, "seed": seed},
                {"bleu": 10.0 * i + seed},
                experiment="translate",
                history={"loss": [2.0, 1.0]},
                attention=[s],
                viewer=seed == 0,
            )
    return root


def test_page_inlines_every_image_and_links_only_to_run_viewers(evil_sweep: Path) -> None:
    """Guards against a page that needs anything beside itself: every image is a data: URI that
    decodes to the plot written beside it, and the only links are relative ones to existing
    run viewers (no http(s), no absolute paths, no CSS url() or @import)."""
    files = make_report([evil_sweep])
    page = files.html.read_text(encoding="utf-8")
    parsed = Parsed(page)
    images = parsed.attrs("img", "src")
    assert len(images) == len(files.plots) == 3
    for src, plot in zip(images, files.plots, strict=True):
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]) == plot.read_bytes()
    links = parsed.attrs("a", "href")
    assert links and all(h.endswith("attention.html") for h in links)
    for href in links:
        assert not re.match(r"^[a-z]+:|^/", href), href
        assert (files.html.parent / unquote(href)).is_file()
    assert not parsed.attrs("script", "src") and not parsed.attrs("link", "href")
    assert "url(" not in page and "@import" not in page
    # one link per run with a viewer in the runs table, one per attention panel
    assert len(links) == 2 + 2


def test_run_text_is_escaped(evil_sweep: Path) -> None:
    """Guards against run text pasted in as markup: the config value, the token and the title
    are text in the parsed page, and the page's only <script> is its own."""
    page = make_report([evil_sweep]).html.read_text(encoding="utf-8")
    parsed = Parsed(page)
    assert [t for t, _ in parsed.tags].count("script") == 1
    assert "i" not in [t for t, _ in parsed.tags]  # the sample title's <i> is text
    text = "".join(parsed.text)
    assert f"score={EVIL}" in text  # the setting of an attention panel
    assert EVIL in text and "<b>chat</b>" in text and "<i>title</i>" in text


def test_script_is_allowed_by_its_hash_only(evil_sweep: Path) -> None:
    """The Content-Security-Policy names the page's own script by SHA-256 (no 'unsafe-inline'
    for scripts) and allows images from data: only."""
    page = make_report([evil_sweep]).html.read_text(encoding="utf-8")
    parsed = Parsed(page)
    (csp,) = [
        a["content"] for t, a in parsed.tags if a.get("http-equiv") == "Content-Security-Policy"
    ]
    (script,) = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp
    assert "default-src 'none'" in csp and "img-src data:" in csp


def test_numbers_carry_their_value_for_sorting(evil_sweep: Path) -> None:
    page = make_report([evil_sweep], plots=False).html.read_text(encoding="utf-8")
    assert 'data-value="10.0">10</td>' in page and 'data-value="11.0">11</td>' in page
    assert "<img" not in page  # --no-plots: the page without figures


def test_viewer_link_is_relative_to_the_out_folder(evil_sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere" / "cmp"
    files = make_report([evil_sweep], out=out, plots=False)
    hrefs = Parsed(files.html.read_text(encoding="utf-8")).attrs("a", "href")
    assert sorted(hrefs) == ["../../sweep/00/attention.html", "../../sweep/10/attention.html"]


def test_seed_groups_table_only_when_seeds_repeat(tmp_path: Path) -> None:
    write_run(tmp_path / "a", {"k": 1, "seed": 0}, {"x": 1.0})
    write_run(tmp_path / "b", {"k": 2, "seed": 0}, {"x": 2.0})
    page = make_report([tmp_path], plots=False).html.read_text(encoding="utf-8")
    assert 'id="runs"' in page and 'id="groups"' not in page


def _ids_in_order(page: str) -> list[str]:
    return [a["id"] for _, a in Parsed(page).tags if a.get("id")]


def test_key_figures_come_first_and_name_the_runs_without_attention(tmp_path: Path) -> None:
    """Guards against BLEU by length and the attention panel sitting last, after the metric
    plots, and against a decoder=none setting silently missing from the attention panel."""
    files = make_report([decoder_sweep(tmp_path / "s")])
    page = files.html.read_text(encoding="utf-8")
    ids = _ids_in_order(page)
    assert ids.index("key") < ids.index("bleu-by-length") < ids.index("attention")
    assert ids.index("attention") < ids.index("runs") < ids.index("plots")
    alts = Parsed(page).attrs("img", "alt")
    assert alts[0] == "BLEU by source length" and "sample 'test 0'" in alts[1]
    attention = page[page.index('id="attention"') : page.index('id="runs"')]
    assert "decoder=none</b>: decoder=none: a model without attention" in attention
    assert "decoder=bahdanau</b>: run" in attention


def test_without_any_attention_the_page_still_says_why(tmp_path: Path) -> None:
    files = make_report([decoder_sweep(tmp_path / "s", decoders=("none",))])
    page = files.html.read_text(encoding="utf-8")
    assert not (files.html.parent / "report_attention.png").exists()
    section = page[page.index('id="attention"') : page.index('id="runs"')]
    assert "<img" not in section and "decoder=none: a model without attention" in section


def test_a_metric_repeating_another_is_one_column(tmp_path: Path) -> None:
    files = make_report([decoder_sweep(tmp_path / "s")], plots=False)
    page = files.html.read_text(encoding="utf-8")
    heads = re.findall(r"<button type=\"button\">([^<]*)<", page)
    assert "bleu" in heads and "bleu_lowercase" not in heads
    assert "bleu_lowercase = bleu in every run" in page
    assert "bleu_lowercase" in files.csv.read_text().splitlines()[0]
