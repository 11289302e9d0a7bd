"""attention.html: self-contained, data escaped, shapes checked (in a browser: *_browser.py)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from attnrun.viz.viewer import (
    AttentionSentence,
    AttentionView,
    attention_html,
    attention_index_html,
    attention_views_html,
    write_attention_html,
    write_attention_views_html,
)

TOKENS = ["the", "animal", "</script><script>window.pwned=1</script>", "it", "a&b", "\u2028"]
N = len(TOKENS)


def _weights(layers=2, heads=3, tq=N, tk=N, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(layers, heads, tq, tk, generator=g), dim=-1)


def _data_block(page: str) -> str:
    m = re.search(r'<script type="application/json" id="attention-data">(.*?)</script>', page, re.S)
    assert m, "no JSON data block"
    return m.group(1)


def test_data_travel_as_escaped_json_that_round_trips():
    w = _weights()
    page = attention_html(TOKENS, TOKENS, w, title="<b>title</b> & more")
    block = _data_block(page)
    assert "<" not in block and ">" not in block and "&" not in block
    assert "\u2028" not in block
    data = json.loads(block)
    (view,) = data["views"]
    assert view["keys"] == TOKENS and view["queries"] == TOKENS
    assert data["title"] == "<b>title</b> & more"
    np.testing.assert_allclose(np.array(view["weights"]), w.numpy(), atol=1e-4)
    # exactly the page's own two script elements; the title is escaped in <title>
    assert page.count("<script") == 2
    assert "<title>&lt;b&gt;title&lt;/b&gt; &amp; more</title>" in page


def test_page_needs_nothing_from_the_network_and_never_uses_inner_html():
    page = attention_html(["a", "b"], ["a", "b"], _weights(1, 1, 2, 2))
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", page)
    assert "<link" not in page and " src=" not in page
    assert "innerHTML" not in page and "document.write" not in page


def test_cross_attention_shapes_and_errors(tmp_path):
    src, tgt = ["ich", "bin", "da", "<eos>"], ["i", "am", "here"]
    path = tmp_path / "x.html"
    write_attention_html(path, src, tgt, _weights(1, 2, 3, 4), title="cross")
    (view,) = json.loads(_data_block(path.read_text(encoding="utf-8")))["views"]
    assert np.array(view["weights"]).shape == (1, 2, 3, 4)
    assert view["layer_names"] == ["layer 1"]
    assert view["queries"] == tgt and view["keys"] == src
    with pytest.raises(ValueError, match=r"Tq=3, Tk=4"):
        write_attention_html(path, src, tgt, _weights(1, 2, 4, 3))
    with pytest.raises(ValueError, match="NaN"):
        write_attention_html(path, src, tgt, torch.full((1, 1, 3, 4), float("nan")))
    with pytest.raises(ValueError, match="layer names"):
        attention_html(src, tgt, _weights(2, 1, 3, 4), layer_names=["only one"])


def test_markers_inside_tokens_are_not_substituted():
    page = attention_html(["@@SCRIPT@@", "@@DATA@@"], ["@@SCRIPT@@", "@@DATA@@"],
                          _weights(1, 1, 2, 2), title="@@STYLE@@")  # fmt: skip
    (view,) = json.loads(_data_block(page))["views"]
    assert view["keys"] == ["@@SCRIPT@@", "@@DATA@@"]
    assert "<title>@@STYLE@@</title>" in page


def _three_views(dec_weights=None):
    """A Transformer sentence's three kinds: cross (T=3 × S=4), encoder self (S × S) and decoder
    self (T × T), each with its own tokens."""
    src, tgt, dec = ["ich", "bin", "<b>da</b>", "<eos>"], ["i", "am", "<eos>"], ["<bos>", "i", "am"]
    return [
        AttentionView("cross", tgt, src, _weights(2, 2, 3, 4, seed=1), ["L1", "L2"]),
        AttentionView("encoder_self", src, src, _weights(2, 2, 4, 4, seed=2), ["L1", "L2"]),
        AttentionView("decoder_self", dec, dec,
                      _weights(2, 2, 3, 3, seed=3) if dec_weights is None else dec_weights),
    ]  # fmt: skip


def test_every_view_travels_in_the_data_block_with_its_kind_label_and_tokens(tmp_path):
    """Guards against a multi-view page that drops a view, mislabels it, or gives one view
    another's tokens or weights (the Kind picker would then show the wrong attention)."""
    views = _three_views()
    path = tmp_path / "kinds.html"
    write_attention_views_html(path, views, title="i am", initial_kind="encoder_self")
    data = json.loads(_data_block(path.read_text(encoding="utf-8")))
    assert [v["kind"] for v in data["views"]] == ["cross", "encoder_self", "decoder_self"]
    assert [v["label"] for v in data["views"]] == [
        "cross-attention", "encoder self-attention", "decoder self-attention",
    ]  # fmt: skip
    assert data["initial_view"] == 1
    for view, got in zip(views, data["views"]):
        assert got["queries"] == list(view.queries) and got["keys"] == list(view.keys)
        np.testing.assert_allclose(np.array(got["weights"]), view.weights.numpy(), atol=1e-4)
    assert data["views"][2]["layer_names"] == ["layer 1", "layer 2"]
    assert "<b>" not in _data_block(path.read_text(encoding="utf-8"))


def test_every_views_shape_is_validated_and_the_error_names_the_view():
    """Guards against checking only the first view: a wrong decoder self-attention tensor must
    fail in Python with the view's name, not draw garbage (or throw) in the browser."""
    with pytest.raises(ValueError, match=r"decoder self-attention.*Tq=3, Tk=3"):
        attention_views_html(_three_views(dec_weights=_weights(2, 2, 3, 4)))
    with pytest.raises(ValueError, match=r"decoder self-attention.*NaN"):
        attention_views_html(_three_views(dec_weights=torch.full((2, 2, 3, 3), float("nan"))))
    bad_names = _three_views()
    bad_names[1] = AttentionView("encoder_self", ["a"], ["a"], _weights(2, 1, 1, 1), ["one"])
    with pytest.raises(ValueError, match=r"encoder self-attention.*1 layer names for 2 layers"):
        attention_views_html(bad_names)
    with pytest.raises(ValueError, match="unique"):
        attention_views_html(_three_views()[:1] * 2)
    with pytest.raises(ValueError, match="initial_kind 'self'"):
        attention_views_html(_three_views(), initial_kind="self")
    with pytest.raises(ValueError, match="at least one view"):
        attention_views_html([])


def test_single_view_call_is_the_multi_view_page_with_one_view():
    """Guards the backwards-compatible API: ``attention_html(source, target, weights, ...)``
    still builds one view (queries = target, keys = source) whose page has no Kind picker."""
    src, tgt, w = ["ich", "bin", "da", "<eos>"], ["i", "am", "here"], _weights(2, 2, 3, 4)
    page = attention_html(src, tgt, w, title="t", layer_names=["a", "b"], query_label="target",
                          key_label="source", initial_layer=1, initial_head=5)  # fmt: skip
    view = AttentionView("attention", tgt, src, w, ["a", "b"], label="attention",
                         query_label="target", key_label="source", initial_layer=1,
                         initial_head=5)  # fmt: skip
    assert page == attention_views_html([view], title="t")
    data = json.loads(_data_block(page))
    (got,) = data["views"]
    assert (got["queries"], got["keys"]) == (tgt, src)
    assert (got["initial_layer"], got["initial_head"]) == (1, 1)  # clamped to the two heads
    assert data["initial_view"] == 0
    assert '<label id="kind-picker" hidden>' in page


def _page_views(path) -> tuple[int, list[dict]]:
    data = json.loads(_data_block(path.read_text(encoding="utf-8")))
    return data["initial_view"], data["views"]


def test_a_transformer_sentence_gets_one_page_with_its_three_kinds(tmp_path):
    """Guards the translate viewer pages (``attention.html``, ``attention_<i>.html``): a
    Transformer sentence's encoder and decoder self-attention must be on its page beside the
    cross-attention (not only in attention.json), opening on cross-attention, never mixed up with
    another sentence's; an RNN sentence keeps a one-view page."""
    from attnrun.runs.files import AttentionSample
    from attnrun.translate.plots import write_attention_figures

    def trio(name, src, tgt, seed):
        dec = ["<bos>", *tgt[:-1]]
        return [
            AttentionSample(name, "cross", tgt, src, _weights(2, 2, len(tgt), len(src), seed)),
            AttentionSample(f"{name} encoder_self", "encoder_self", src, src,
                            _weights(2, 2, len(src), len(src), seed + 1)),
            AttentionSample(f"{name} decoder_self", "decoder_self", dec, dec,
                            _weights(2, 2, len(dec), len(dec), seed + 2)),
        ]  # fmt: skip

    src1, tgt1 = ["a", "cat", "<eos>"], ["un", "chat", "<eos>"]
    samples = trio("test 0", ["the", "dog", "<eos>"], ["le", "<eos>"], 0)
    samples += trio("test 1", src1, tgt1, 10)
    write_attention_figures(tmp_path, samples)
    index = json.loads(_data_block((tmp_path / "attention.html").read_text(encoding="utf-8")))
    # the index is not a copy of the first sentence's page: it holds both sentences, in order,
    # each the same views as its own page and linking to it
    assert "views" not in index and [s["page"] for s in index["sentences"]] == [
        "attention_0.html", "attention_1.html",
    ]  # fmt: skip
    assert [s["title"] for s in index["sentences"]] == ["the dog", "a cat"]  # the sources
    for i, sentence in enumerate(index["sentences"]):
        own = _page_views(tmp_path / f"attention_{i}.html")
        assert (sentence["initial_view"], sentence["views"]) == own
    initial, views = _page_views(tmp_path / "attention_1.html")
    assert [v["kind"] for v in views] == ["cross", "encoder_self", "decoder_self"]
    assert views[initial]["kind"] == "cross"
    assert (views[0]["queries"], views[0]["keys"]) == (tgt1, src1)
    assert views[1]["queries"] == views[1]["keys"] == src1
    assert views[2]["queries"] == ["<bos>", "un", "chat"]
    assert (views[0]["query_label"], views[0]["key_label"]) == ("target", "source")
    np.testing.assert_allclose(views[2]["weights"], samples[5].weights, atol=1e-4)
    assert sorted(p.name for p in tmp_path.glob("*.html")) == [
        "attention.html", "attention_0.html", "attention_1.html",
    ]  # fmt: skip

    rnn = tmp_path / "rnn"
    one = AttentionSample("test 0", "cross", tgt1, src1, _weights(1, 1, 3, 3), ["attention"])
    write_attention_figures(rnn, [one])
    (sentence,) = json.loads(_data_block((rnn / "attention.html").read_text()))["sentences"]
    assert [v["kind"] for v in sentence["views"]] == ["cross"]
    assert [v["kind"] for v in _page_views(rnn / "attention_0.html")[1]] == ["cross"]


def test_index_validates_each_sentence_and_its_page_name():
    """Guards against an index whose link could point anywhere (a path, a URL, script) and
    against a bad sentence failing in the browser instead of in Python, naming it."""
    good = AttentionSentence("s", _three_views(), "cross", "attention_0.html")
    page = attention_index_html([good, good], title="<t>")
    data = json.loads(_data_block(page))
    assert [s["title"] for s in data["sentences"]] == ["s", "s"]
    assert data["sentences"][0]["initial_view"] == 0 and data["title"] == "<t>"
    for bad in ("../x.html", "javascript:alert(1)", "http://e.com/a.html", "a.htm", "a b.html"):
        with pytest.raises(ValueError, match="not an .html file name"):
            attention_index_html([AttentionSentence("s", _three_views(), page=bad)])
    with pytest.raises(ValueError, match="decoder self-attention.*Tq=3, Tk=3"):
        attention_index_html(
            [good, AttentionSentence("bad", _three_views(dec_weights=_weights(2, 2, 3, 4)))]
        )
    with pytest.raises(ValueError, match="at least one sentence"):
        attention_index_html([])
