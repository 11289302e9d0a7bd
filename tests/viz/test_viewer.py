"""attention.html: self-contained, data escaped, shapes checked (in a browser: *_browser.py)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from attnrun.viz.viewer import attention_html, write_attention_html

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
    assert data["source_tokens"] == TOKENS and data["target_tokens"] == TOKENS
    assert data["title"] == "<b>title</b> & more"
    np.testing.assert_allclose(np.array(data["weights"]), w.numpy(), atol=1e-4)
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
    data = json.loads(_data_block(path.read_text(encoding="utf-8")))
    assert np.array(data["weights"]).shape == (1, 2, 3, 4)
    assert data["layer_names"] == ["layer 1"]
    with pytest.raises(ValueError, match=r"Tq=3, Tk=4"):
        write_attention_html(path, src, tgt, _weights(1, 2, 4, 3))
    with pytest.raises(ValueError, match="NaN"):
        write_attention_html(path, src, tgt, torch.full((1, 1, 3, 4), float("nan")))
    with pytest.raises(ValueError, match="layer names"):
        attention_html(src, tgt, _weights(2, 1, 3, 4), layer_names=["only one"])


def test_markers_inside_tokens_are_not_substituted():
    page = attention_html(["@@SCRIPT@@", "@@DATA@@"], ["@@SCRIPT@@", "@@DATA@@"],
                          _weights(1, 1, 2, 2), title="@@STYLE@@")  # fmt: skip
    data = json.loads(_data_block(page))
    assert data["source_tokens"] == ["@@SCRIPT@@", "@@DATA@@"]
    assert "<title>@@STYLE@@</title>" in page
