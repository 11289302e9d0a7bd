"""attention.html in a real headless Chromium: hovering draws lines, a <script> token stays text,
the Kind picker switches between a sentence's kinds of attention."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from attnrun.viz.viewer import (
    KIND_LABELS,
    AttentionView,
    write_attention_html,
    write_attention_views_html,
)

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
def browser():
    sync_api = _browser()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _open(browser, path: Path):
    """The page at ``path``, ready, with the dialogs, page errors and requests it caused."""
    page = browser.new_page()
    dialogs, errors, requests = [], [], []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-ready=true]", timeout=10_000)
    return page, dialogs, errors, requests


def _softmax(*shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(3 * torch.randn(*shape, generator=g), dim=-1)


@pytest.fixture(scope="module")
def page_and_weights(browser, tmp_path_factory):
    weights = _softmax(2, 3, len(TOKENS), len(TOKENS), seed=0)
    path = tmp_path_factory.mktemp("viewer") / "attention.html"
    write_attention_html(path, TOKENS, TOKENS, weights, title="test <b>page</b>",
                         layer_names=["layer 1", "pointer"])  # fmt: skip
    page, dialogs, errors, requests = _open(browser, path)
    yield page, weights, dialogs, errors, requests
    page.close()


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


SRC = ["the", "<script>window.pwned = 2</script>", "cat", "<eos>"]
TGT = ["le", "chat", "<eos>"]
DEC = ["<bos>", "le", "chat"]


@pytest.fixture(scope="module")
def kinds_page(browser, tmp_path_factory):
    """One sentence's three kinds, each with its own tokens, layers and heads; cross-attention
    (the initial kind) is not first in the picker, so the initial kind is really chosen."""
    views = [
        AttentionView("encoder_self", SRC, SRC, _softmax(3, 2, 4, 4, seed=1),
                      ["enc 1", "enc 2", "enc 3"], query_label="source", key_label="source"),
        AttentionView("cross", TGT, SRC, _softmax(2, 3, 3, 4, seed=2), ["layer 1", "layer 2"],
                      query_label="target", key_label="source"),
        AttentionView("decoder_self", DEC, DEC, _softmax(2, 2, 3, 3, seed=3), ["dec 1", "dec 2"]),
    ]  # fmt: skip
    path = tmp_path_factory.mktemp("kinds") / "attention.html"
    write_attention_views_html(path, views, title="le chat", initial_kind="cross")
    page, dialogs, errors, _ = _open(browser, path)
    yield page, {v.kind: v for v in views}, dialogs, errors
    page.close()


def _tokens(page, side):
    return page.eval_on_selector_all(f"text.token.{side}", "ts => ts.map(t => t.textContent)")


def _options(page, sel):
    return page.eval_on_selector_all(f"{sel} option", "os => os.map(o => o.textContent)")


def test_one_view_page_shows_no_kind_picker(page_and_weights):
    """Guards against a Kind picker with a single entry cluttering pages that have one kind
    (RNN cross-attention, selfattn)."""
    page, *_ = page_and_weights
    assert not page.is_visible("#kind")
    assert page.is_visible("#layer") and page.is_visible("#head")


def test_kind_picker_lists_the_kinds_and_starts_on_the_initial_one(kinds_page):
    """Guards against ignoring ``initial_kind`` (the page opening on the first view) and against a
    picker whose entries are not the views' labels."""
    page, views, dialogs, errors = kinds_page
    assert page.is_visible("#kind")
    assert _options(page, "#kind") == [
        "encoder self-attention", "cross-attention", "decoder self-attention",
    ]  # fmt: skip
    assert page.input_value("#kind") == "cross"
    assert _tokens(page, "query") == TGT and _tokens(page, "key") == SRC
    assert _options(page, "#layer") == ["layer 1", "layer 2"]
    assert page.text_content("#readout").startswith("cross-attention, layer 1, head 1")
    assert page.evaluate("typeof window.pwned") == "undefined" and not dialogs and not errors


def test_choosing_a_kind_changes_the_tokens_drawn_and_the_layer_list(kinds_page):
    """Guards against a Kind picker that swaps the weights but leaves the previous kind's tokens
    on screen, or the previous kind's Layer and Head lists in the pickers."""
    page, views, _, errors = kinds_page
    page.select_option("#kind", "encoder_self")
    assert _tokens(page, "query") == SRC and _tokens(page, "key") == SRC
    assert _options(page, "#layer") == ["enc 1", "enc 2", "enc 3"]
    assert _options(page, "#head") == ["head 1", "head 2", "mean of heads"]
    page.select_option("#kind", "decoder_self")
    assert _tokens(page, "query") == DEC and _tokens(page, "key") == DEC
    assert _options(page, "#layer") == ["dec 1", "dec 2"]
    page.select_option("#kind", "cross")
    assert _tokens(page, "query") == TGT and _tokens(page, "key") == SRC
    assert _options(page, "#head") == ["head 1", "head 2", "head 3", "mean of heads"]
    assert not errors


def test_hovering_a_query_draws_the_chosen_kinds_weights(kinds_page):
    """Guards against lines drawn from another kind's weights (e.g. always the initial view's)
    after the Kind picker has moved on."""
    page, views, _, errors = kinds_page
    for kind, layer, head, query in (("decoder_self", 1, 1, 2), ("encoder_self", 2, 0, 1),
                                     ("cross", 1, 2, 0)):  # fmt: skip
        page.select_option("#kind", kind)
        page.select_option("#layer", str(layer))
        page.select_option("#head", str(head))
        page.hover(f'text.token.query[data-index="{query}"]')
        lines = _lines(page)
        expected = views[kind].weights[layer, head, query]
        assert lines, f"{kind}: hovering drew no lines"
        assert {f for f, _, _, _ in lines} == {query}
        assert {to for _, to, _, _ in lines} == {
            j for j in range(len(expected)) if MAX_WIDTH * expected[j] >= 0.15
        }
        for _, to, w, _ in lines:
            assert w == pytest.approx(float(expected[to]), abs=1e-4), kind
        assert page.text_content("#readout").startswith(KIND_LABELS[kind] + ", ")
        page.mouse.move(0, 0)
    assert not errors


def test_a_layer_the_new_kind_lacks_falls_back_to_its_initial_layer(kinds_page):
    """Guards against keeping a layer index the new kind does not have (encoder layer 3 of 3,
    then cross-attention with 2 layers): the page would throw and draw nothing."""
    page, views, _, errors = kinds_page
    page.select_option("#kind", "encoder_self")
    page.select_option("#layer", "2")
    page.select_option("#head", "mean")
    page.select_option("#kind", "cross")
    assert page.input_value("#layer") == "0"
    assert page.input_value("#head") == "mean"  # cross has several heads too: the mean stays
    page.hover('text.token.query[data-index="1"]')
    mean = views["cross"].weights[0].mean(0)[1]
    for _, to, w, _ in _lines(page):
        assert w == pytest.approx(float(mean[to]), abs=1e-3)
    assert not errors


@pytest.fixture(scope="module")
def rnn_page(browser, tmp_path_factory):
    """An RNN decoder's page: one layer, one head, one kind."""
    weights = _softmax(1, 1, 3, 4, seed=4)
    path = tmp_path_factory.mktemp("rnn") / "attention_0.html"
    write_attention_html(path, SRC, TGT, weights, title="rnn", layer_names=["attention"],
                         query_label="target", key_label="source")  # fmt: skip
    page, dialogs, errors, _ = _open(browser, path)
    yield page, weights, errors
    page.close()


def test_pickers_with_one_choice_are_hidden(rnn_page, page_and_weights):
    """Guards against "Layer: attention, Head: head 1" pickers on an RNN's single map (and a
    readout repeating them), while a page with several layers and heads keeps both pickers."""
    page, weights, errors = rnn_page
    for sel in ("#kind", "#layer", "#head", "#sentence"):
        assert not page.is_visible(sel), sel
    assert page.text_content("#readout") == ""
    page.hover('text.token.query[data-index="1"]')
    readout = page.text_content("#readout")
    assert readout.startswith("\u201cchat\u201d attends most to") and "head" not in readout
    lines = _lines(page)
    assert lines and all(w == pytest.approx(float(weights[0, 0, 1, t]), abs=1e-4)
                         for _, t, w, _ in lines)  # fmt: skip
    other, *_ = page_and_weights
    assert other.is_visible("#layer") and other.is_visible("#head")
    assert not errors


@pytest.fixture(scope="module")
def index_page(browser, tmp_path_factory):
    """An index of three sentences: two Transformer sentences (cross + encoder self) with their
    own pages and an RNN-like one with a single view."""
    from attnrun.viz.viewer import AttentionSentence, write_attention_index_html

    src2, tgt2 = ["a", "dog", "runs", "fast", "<eos>"], ["un", "chien", "<eos>"]
    sentences = [
        AttentionSentence("the <script>window.pwned = 3</script> cat", [
            AttentionView("encoder_self", SRC, SRC, _softmax(2, 2, 4, 4, seed=5)),
            AttentionView("cross", TGT, SRC, _softmax(2, 2, 3, 4, seed=6)),
        ], "cross", "attention_0.html"),
        AttentionSentence("a dog runs fast", [
            AttentionView("encoder_self", src2, src2, _softmax(2, 2, 5, 5, seed=7)),
            AttentionView("cross", tgt2, src2, _softmax(2, 2, 3, 5, seed=8)),
        ], "cross", "attention_1.html"),
        AttentionSentence("one map", [AttentionView("cross", ["x"], ["y", "z"],
                                                    _softmax(1, 1, 1, 2, seed=9))]),
    ]  # fmt: skip
    path = tmp_path_factory.mktemp("index") / "attention.html"
    write_attention_index_html(path, sentences, title="test sentences")
    page, dialogs, errors, requests = _open(browser, path)
    yield page, sentences, dialogs, errors, requests
    page.close()


def test_index_picks_sentences_and_keeps_the_kind(index_page):
    """Guards against an index that only shows its first sentence (the old attention.html, a
    copy of attention_0.html), a Sentence picker that leaves the previous tokens on screen or
    the previous sentence's weights drawn, and a kind reset on every change."""
    page, sentences, dialogs, errors, requests = index_page
    assert page.is_visible("#sentence")
    options = _options(page, "#sentence")
    assert options == ["1. the <script>window.pwned = 3</script> cat", "2. a dog runs fast",
                       "3. one map"]  # fmt: skip
    assert page.input_value("#kind") == "cross" and _tokens(page, "key") == SRC
    assert page.get_attribute("#sentence-page", "href") == "attention_0.html"
    page.select_option("#kind", "encoder_self")
    page.select_option("#sentence", "1")
    assert page.input_value("#kind") == "encoder_self"  # kept: the sentence has it
    src2 = list(sentences[1].views[0].queries)
    assert _tokens(page, "query") == src2 and _tokens(page, "key") == src2
    assert page.get_attribute("#sentence-page", "href") == "attention_1.html"
    page.select_option("#layer", "1")
    page.select_option("#head", "0")
    page.hover('text.token.query[data-index="3"]')
    expected = sentences[1].views[0].weights[1, 0, 3]
    lines = _lines(page)
    assert lines and all(w == pytest.approx(float(expected[t]), abs=1e-4) for _, t, w, _ in lines)
    page.mouse.move(0, 0)
    page.select_option("#sentence", "2")  # one view, one layer, one head, no page of its own
    assert _tokens(page, "query") == ["x"] and _tokens(page, "key") == ["y", "z"]
    for sel in ("#kind", "#layer", "#head", "#sentence-page"):
        assert not page.is_visible(sel), sel
    page.select_option("#sentence", "0")
    assert page.input_value("#kind") == "cross"  # kept from sentence 3, which has only it
    assert page.evaluate("typeof window.pwned") == "undefined" and not dialogs and not errors
    assert all(u.startswith("file:") for u in requests)
