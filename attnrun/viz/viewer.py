"""``attention.html``: a self-contained, interactive attention viewer (in the spirit of bertviz's
head view, Vig 2019).

One HTML file with inline CSS and JavaScript that opens from disk with no network. A page holds one
or more *views* of one input, each an :class:`AttentionView`: a kind of attention (cross-attention,
encoder self-attention, decoder self-attention of a Transformer, Vaswani 2017) with its own query
tokens, key tokens, ``(layers, heads, Tq, Tk)`` weights and layer names. With several views a Kind
picker switches between them and the Layer and Head pickers are rebuilt for the chosen one. Pick a
layer and a head (or the mean of the heads); the attending tokens (queries) stand on the left, the
attended tokens (keys) on the right. Hovering (or focusing) a query draws a line to each key it
attends to, its width proportional to the weight; hovering a key draws the lines that arrive at it.

A page may also hold several inputs (:class:`AttentionSentence`,
:func:`write_attention_index_html`): a Sentence picker then switches between them (keeping
the kind, layer and head where the next sentence has them), and each may link to its own page.
Pickers with a single choice (one kind, one layer, one head) are hidden, so an RNN's one map
shows no pickers at all.

Works for self-attention (``queries == keys``) and cross-attention (queries are the target tokens,
keys the source tokens). Safety: the data travel as JSON inside a
``<script type="application/json">`` block with ``<``, ``>`` and ``&`` written as ``\\u003c``,
``\\u003e`` and ``\\u0026``, and the page builds every element with ``textContent`` (never
``innerHTML``), so a token such as ``<script>`` is shown as text and never runs.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from attnrun.io import write_text

__all__ = [
    "KIND_LABELS",
    "VIEWER_SCRIPT",
    "VIEWER_STYLE",
    "AttentionSentence",
    "AttentionView",
    "attention_html",
    "attention_index_html",
    "attention_views_html",
    "write_attention_html",
    "write_attention_index_html",
    "write_attention_views_html",
]

#: The Kind picker's text for the attention kinds of :class:`attnrun.runs.files.AttentionSample`.
KIND_LABELS = {
    "cross": "cross-attention",
    "self": "self-attention",
    "encoder_self": "encoder self-attention",
    "decoder_self": "decoder self-attention",
    "encoder_rollout": "encoder attention rollout",
    "kernel": "kernel weights",
}


@dataclass(frozen=True)
class AttentionView:
    """One kind of attention over one input, as the viewer shows it.

    Attributes:
        kind: the view's key in the Kind picker (``"cross"``, ``"encoder_self"``, ...); unique in
            a page.
        queries: the ``Tq`` attending tokens (left column).
        keys: the ``Tk`` attended tokens (right column).
        weights: ``(layers, heads, Tq, Tk)`` attention weights (tensor or array).
        layer_names: one name per layer; None: ``layer 1``, ``layer 2``, ...
        label: the Kind picker's text; None: :data:`KIND_LABELS` of ``kind``, else ``kind``.
        query_label: the heading of the query column.
        key_label: the heading of the key column.
        initial_layer: the layer shown first (clamped to the layers there are).
        initial_head: the head shown first (clamped to the heads there are).
    """

    kind: str
    queries: Sequence[str]
    keys: Sequence[str]
    weights: object
    layer_names: Sequence[str] | None = None
    label: str | None = None
    query_label: str = "queries"
    key_label: str = "keys"
    initial_layer: int = 0
    initial_head: int = 0

    def to_data(self) -> dict:
        """The view as the page's JSON reads it; ValueError (naming the view) when the weights
        do not fit the tokens, are not finite, or the layer names do not fit the layers."""
        label = str(self.label or KIND_LABELS.get(self.kind, self.kind))
        queries, keys = [str(t) for t in self.queries], [str(t) for t in self.keys]
        arr = _weights_array(self.weights, len(queries), len(keys), label)
        layers, heads = arr.shape[:2]
        names = (
            [str(n) for n in self.layer_names]
            if self.layer_names
            else [f"layer {i + 1}" for i in range(layers)]
        )
        if len(names) != layers:
            raise ValueError(f"view {label!r}: {len(names)} layer names for {layers} layers")
        return {
            "kind": str(self.kind),
            "label": label,
            "queries": queries,
            "keys": keys,
            "layer_names": names,
            "query_label": str(self.query_label),
            "key_label": str(self.key_label),
            "initial_layer": min(max(int(self.initial_layer), 0), layers - 1),
            "initial_head": min(max(int(self.initial_head), 0), heads - 1),
            "weights": np.round(arr, 4).tolist(),
        }


@dataclass(frozen=True)
class AttentionSentence:
    """One input of an index page (:func:`write_attention_index_html`).

    Attributes:
        title: the Sentence picker's text for it (e.g. the source sentence).
        views: its kinds of attention, as for :func:`write_attention_views_html`.
        initial_kind: the ``kind`` shown first; None: the first view.
        page: the file name of its own one-sentence page beside the index
            (``attention_1.html``), linked from the index; None: no link.
    """

    title: str
    views: Sequence[AttentionView]
    initial_kind: str | None = None
    page: str | None = None


_PAGE_NAME = re.compile(r"^[A-Za-z0-9_.-]+\.html$")  # a file beside the index, nothing else


def _views_data(views: Sequence[AttentionView], initial_kind: str | None) -> dict:
    """``{"views": [...], "initial_view": i}`` with every view checked (ValueError)."""
    if not views:
        raise ValueError("the viewer needs at least one view")
    data_views = [v.to_data() for v in views]
    kinds = [v["kind"] for v in data_views]
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"view kinds must be unique; got {kinds}")
    if initial_kind is not None and initial_kind not in kinds:
        raise ValueError(f"initial_kind {initial_kind!r} is none of the views' kinds {kinds}")
    initial = kinds.index(initial_kind) if initial_kind is not None else 0
    return {"initial_view": initial, "views": data_views}


def _page(data: dict, title: str) -> str:
    parts = {
        "TITLE": html.escape(str(title)),
        "STYLE": VIEWER_STYLE,
        "SCRIPT": VIEWER_SCRIPT + _PAGE_SCRIPT,
        "DATA": _json_for_script(data),
    }
    # One pass, so text substituted in (a title, a token) is never scanned for markers again.
    return re.sub(r"@@(TITLE|STYLE|SCRIPT|DATA)@@", lambda m: parts[m.group(1)], _PAGE)


def _weights_array(weights, tq: int, tk: int, label: str) -> np.ndarray:
    arr = weights.detach().cpu().numpy() if hasattr(weights, "detach") else np.asarray(weights)
    arr = arr.astype(np.float64)
    if arr.ndim != 4 or arr.shape[2:] != (tq, tk) or 0 in arr.shape[:2]:
        raise ValueError(
            f"view {label!r}: weights must be (layers, heads, Tq={tq}, Tk={tk}) for {tq} query "
            f"and {tk} key tokens; got shape {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise ValueError(f"view {label!r}: weights contain NaN or inf")
    return arr


def _json_for_script(obj) -> str:
    """JSON that cannot end its ``<script>`` block or start markup: ``<``, ``>``, ``&`` and the
    JavaScript line separators are escaped as ``\\uXXXX`` (still valid JSON)."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):  # fmt: skip
        text = text.replace(ch, esc)
    return text


def attention_views_html(
    views: Sequence[AttentionView], *, title: str = "Attention", initial_kind: str | None = None
) -> str:
    """The viewer page holding ``views`` as a string; see :func:`write_attention_views_html`."""
    return _page({"title": str(title), **_views_data(views, initial_kind)}, title)


def attention_index_html(
    sentences: Sequence[AttentionSentence], *, title: str = "Attention"
) -> str:
    """The page holding several inputs as a string; see :func:`write_attention_index_html`."""
    if not sentences:
        raise ValueError("the index needs at least one sentence")
    data_sentences = []
    for i, s in enumerate(sentences):
        if s.page is not None and not _PAGE_NAME.match(s.page):
            raise ValueError(f"sentence {i + 1}: page {s.page!r} is not an .html file name")
        data = _views_data(s.views, s.initial_kind)
        data_sentences.append({"title": str(s.title), "page": s.page, **data})
    return _page({"title": str(title), "initial_sentence": 0, "sentences": data_sentences}, title)


def write_attention_index_html(
    path: str | os.PathLike, sentences: Sequence[AttentionSentence], title: str = "Attention"
) -> None:
    """Write a viewer over several inputs, with a Sentence picker (hidden for one) atomically.

    Args:
        path: the ``.html`` file to write.
        sentences: the inputs in the picker's order; the first is shown first.
        title: the page title and heading (escaped).

    Raises:
        ValueError: no sentence, a ``page`` that is not a plain ``.html`` file name, or any of
            :func:`write_attention_views_html`'s errors for a sentence's views.
    """
    write_text(path, attention_index_html(sentences, title=title))


def write_attention_views_html(
    path: str | os.PathLike,
    views: Sequence[AttentionView],
    title: str = "Attention",
    initial_kind: str | None = None,
) -> None:
    """Write the viewer holding ``views`` (a Kind picker when there are several) atomically.

    Args:
        path: the ``.html`` file to write.
        views: the kinds of attention of one input, in the Kind picker's order.
        title: shown as the page title and heading (escaped).
        initial_kind: the ``kind`` of the view shown first; None: the first view.

    Raises:
        ValueError: no view, two views of one kind, an unknown ``initial_kind``, or a view whose
            weights do not fit its tokens or are not finite (the message names the view).
    """
    write_text(path, attention_views_html(views, title=title, initial_kind=initial_kind))


def attention_html(
    source_tokens: Sequence[str],
    target_tokens: Sequence[str],
    weights,
    *,
    title: str = "Attention",
    layer_names: Sequence[str] | None = None,
    query_label: str = "queries",
    key_label: str = "keys",
    initial_layer: int = 0,
    initial_head: int = 0,
) -> str:
    """The one-view page (no Kind picker) as a string; see :func:`write_attention_html`."""
    view = AttentionView(
        "attention", target_tokens, source_tokens, weights, layer_names, label="attention",
        query_label=query_label, key_label=key_label, initial_layer=initial_layer,
        initial_head=initial_head,
    )  # fmt: skip
    return attention_views_html([view], title=title)


def write_attention_html(
    path: str | os.PathLike,
    source_tokens: Sequence[str],
    target_tokens: Sequence[str],
    weights,
    title: str = "Attention",
    **options,
) -> None:
    """Write the one-view viewer to ``path`` atomically.

    Args:
        path: the ``.html`` file to write.
        source_tokens: the ``Tk`` attended tokens (keys; the source sentence in translation).
        target_tokens: the ``Tq`` attending tokens (queries; the same list for self-attention).
        weights: ``(layers, heads, Tq, Tk)`` attention weights (tensor or array).
        title: shown as the page title and heading (escaped).
        **options: ``layer_names``, ``query_label``, ``key_label``, ``initial_layer``,
            ``initial_head`` (see :func:`attention_html`).

    Raises:
        ValueError: the weights' shape does not match the tokens, or they are not finite.
    """
    write_text(path, attention_html(source_tokens, target_tokens, weights, title=title, **options))


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>@@TITLE@@</title>
<style>@@STYLE@@</style>
</head>
<body>
<main>
<h1 id="title" class="viewer-title"></h1>
<div class="controls">
  <label id="sentence-picker" hidden>Sentence
    <select id="sentence" class="viewer-sentence"></select></label>
  <a id="sentence-page" class="viewer-sentence-page" hidden>this sentence alone</a>
</div>
<div class="controls">
  <label id="kind-picker" hidden>Kind <select id="kind" class="viewer-kind"></select></label>
  <label id="layer-picker">Layer <select id="layer" class="viewer-layer"></select></label>
  <label id="head-picker">Head <select id="head" class="viewer-head"></select></label>
</div>
<div id="readout" class="viewer-readout" aria-live="polite"></div>
<p class="hint">Hover or focus a token on the left to draw lines to the tokens it attends to; on
the right, to see which tokens attend to it. Line width is proportional to the weight.</p>
<svg id="view" class="viewer-svg" role="img" aria-label="attention lines between tokens"></svg>
<noscript><p>This viewer needs JavaScript.</p></noscript>
</main>
<script type="application/json" id="attention-data">@@DATA@@</script>
<script>@@SCRIPT@@</script>
</body>
</html>
"""

VIEWER_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem;
       color: #1f2328; background: #fff; }
main { max-width: 60rem; }
h1 { font-size: 1.25rem; margin: 0 0 .75rem; overflow-wrap: anywhere; }
.controls { display: flex; gap: 1.25rem; align-items: center; flex-wrap: wrap;
            margin-bottom: .4rem; }
.controls select { font: inherit; margin-left: .35rem; max-width: 40rem; }
.controls [hidden] { display: none; }
.viewer-readout { color: #57606a; font-size: .9rem; margin-top: .5rem; height: 1.4em;
                  line-height: 1.4em; white-space: nowrap; overflow: hidden;
                  text-overflow: ellipsis; }
.hint { color: #57606a; font-size: .85rem; margin: .6rem 0 .4rem; }
svg { display: block; overflow: visible; }
.token { font: 14px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; cursor: pointer;
         fill: #1f2328; outline: none; }
.token.active, .token:focus { fill: #cf222e; font-weight: bold; }
.token.dim { fill: #8c959f; }
.weight-label { font: 11px ui-monospace, monospace; fill: #57606a; }
.column-label { font-size: 12px; fill: #57606a; font-weight: 600; }
line.attn { stroke-linecap: round; pointer-events: none; }
"""

#: The viewer's drawing as a reusable component: ``AttnrunViewer.mount(root, data, options)`` draws
#: ``data`` (``{"title", "initial_view", "views"}``, or an index's ``{"title", "sentences"}``) into
#: the elements of ``root`` marked with the ``viewer-*`` classes (each picker: the label around
#: its select; the Sentence picker and the title are optional) and returns
#: ``{show(data, keep), state}``; ``show`` swaps the data in place and, with ``keep``, keeps the
#: kind, layer and head chosen when the new data has them. ``options``: ``ids`` (give the line
#: layer the id ``lines``, as the file pages do), ``documentTitle`` (set the page's title),
#: ``onRender(info)`` (called after each redraw with the view, layer, head, matrix and hovered
#: token: attnrun serve's heatmap follows the viewer through it). Shared by ``attention.html`` and
#: ``attnrun serve``'s page (:mod:`attnrun.serve.page`).
VIEWER_SCRIPT = r"""
var AttnrunViewer = (function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
                 "#e377c2", "#7f7f7f", "#bcbd22"];
  var MAX_WIDTH = 8, ROW = 24, TOP = 40, GAP = 220;

  function option(sel, value, text) {
    var o = document.createElement("option");
    o.value = String(value);
    o.textContent = text;
    sel.appendChild(o);
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function mount(root, data, options) {
    var opts = options || {};
    function part(name) { return root.querySelector(".viewer-" + name); }
    var sentences = [], views = [], kinds = [];
    // the chosen view; side/index: the hovered token ("query" or "key") and its position
    var view = null, nHeads = 0, queries = [], keys = [];
    var state = { layer: 0, head: 0, side: null, index: -1 };
    var svg = part("svg"), lineLayer = null, colWidth = 0, width = 0;
    var qNodes = [], kNodes = [], labels = [];
    var kindSel = part("kind"), sentenceSel = part("sentence");
    var layerSel = part("layer"), headSel = part("head");
    var titleNode = part("title"), readoutNode = part("readout"), link = part("sentence-page");

    function matrix() {
      var heads = view.weights[state.layer];
      if (state.head !== "mean") return heads[state.head];
      return queries.map(function (_, i) {
        return keys.map(function (_, j) {
          var s = 0;
          for (var h = 0; h < nHeads; h++) s += heads[h][i][j];
          return s / nHeads;
        });
      });
    }
    function colour() {
      return state.head === "mean" ? "#444c56" : COLOURS[state.head % COLOURS.length];
    }

    function text(x, y, anchor, content, cls) {
      var t = document.createElementNS(NS, "text");
      t.setAttribute("x", x);
      t.setAttribute("y", y);
      t.setAttribute("text-anchor", anchor);
      t.setAttribute("dominant-baseline", "middle");
      t.setAttribute("class", cls);
      t.textContent = content;
      svg.appendChild(t);
      return t;
    }
    function yOf(i) { return TOP + ROW * i; }
    function makeTokens(list, side, x, anchor) {
      return list.map(function (tok, i) {
        var t = text(x, yOf(i), anchor, tok, "token " + side);
        t.setAttribute("data-kind", side);
        t.setAttribute("data-index", String(i));
        t.setAttribute("tabindex", "0");
        var enter = function () { state.side = side; state.index = i; render(); };
        var leave = function () { state.side = null; state.index = -1; render(); };
        t.addEventListener("mouseenter", enter);
        t.addEventListener("focus", enter);
        t.addEventListener("mouseleave", leave);
        t.addEventListener("blur", leave);
        return t;
      });
    }

    // Redraw the two token columns for the chosen view (its own queries and keys).
    function drawTokens() {
      clear(svg);
      var longest = Math.max.apply(null, queries.concat(keys).map(function (t) {
        return t.length;
      }));
      colWidth = Math.max(80, 9 * Math.min(longest, 40) + 50);
      width = 2 * colWidth + GAP;
      var height = TOP + ROW * Math.max(queries.length, keys.length) + 10;
      svg.setAttribute("width", width);
      svg.setAttribute("height", height);
      svg.setAttribute("viewBox", "0 0 " + width + " " + height);
      lineLayer = document.createElementNS(NS, "g");
      lineLayer.setAttribute("class", "lines");
      if (opts.ids) lineLayer.setAttribute("id", "lines");
      svg.appendChild(lineLayer);
      text(colWidth - 6, TOP - 24, "end", view.query_label, "column-label");
      text(colWidth + GAP + 6, TOP - 24, "start", view.key_label, "column-label");
      qNodes = makeTokens(queries, "query", colWidth - 6, "end");
      kNodes = makeTokens(keys, "key", colWidth + GAP + 6, "start");
      labels = keys.map(function (_, j) {
        return text(width - 4, yOf(j), "end", "", "weight-label");
      });
    }

    // Show sentence s: its kinds in the Kind picker (hidden for one), its own page's link; the
    // kind, layer and head chosen so far stay where this sentence has them.
    function pickSentence(s, keep) {
      var sentence = sentences[s], kind = view ? view.kind : null;
      views = sentence.views;
      kinds = views.map(function (v) { return v.kind; });
      clear(kindSel);
      views.forEach(function (v) { option(kindSel, v.kind, v.label); });
      kindSel.closest("label").hidden = views.length < 2;
      if (sentenceSel) sentenceSel.value = String(s);
      if (link) {
        // no link where the page has no folder around it (a notebook's srcdoc frame)
        link.hidden = !(sentence.page && sentences.length > 1) || location.protocol === "about:";
        if (sentence.page) link.setAttribute("href", sentence.page);
      }
      var k = keep ? kinds.indexOf(kind) : -1;
      choose(k >= 0 ? k : sentence.initial_view, keep && k >= 0);
    }

    // Show views[i]: rebuild the Layer and Head pickers and the tokens. With keep, the
    // layer and head chosen so far stay when this view has them; otherwise its initial ones.
    function choose(i, keep) {
      view = views[i];
      queries = view.queries;
      keys = view.keys;
      nHeads = view.weights[0].length;
      var hasHead = state.head === "mean" ? nHeads > 1 : state.head < nHeads;
      state.layer = keep && state.layer < view.weights.length ? state.layer : view.initial_layer;
      state.head = keep && hasHead ? state.head : view.initial_head;
      state.side = null;
      state.index = -1;
      kindSel.value = view.kind;
      clear(layerSel);
      clear(headSel);
      view.layer_names.forEach(function (name, l) { option(layerSel, l, name); });
      for (var h = 0; h < nHeads; h++) option(headSel, h, "head " + (h + 1));
      if (nHeads > 1) option(headSel, "mean", "mean of heads");
      layerSel.value = String(state.layer);
      headSel.value = String(state.head);
      // a picker with one choice says nothing: hidden (the readout leaves it out too)
      layerSel.closest("label").hidden = view.layer_names.length < 2;
      headSel.closest("label").hidden = nHeads < 2;
      drawTokens();
      render();
    }

    function render() {
      clear(lineLayer);
      var m = matrix(), c = colour(), hovering = state.side !== null;
      qNodes.forEach(function (n, i) {
        n.classList.toggle("active", state.side === "query" && state.index === i);
        n.classList.toggle("dim", state.side === "query" && state.index !== i);
      });
      kNodes.forEach(function (n, j) {
        n.classList.toggle("active", state.side === "key" && state.index === j);
      });
      labels.forEach(function (l) { l.textContent = ""; });
      for (var i = 0; i < queries.length; i++) {
        if (state.side === "query" && state.index !== i) continue;
        for (var j = 0; j < keys.length; j++) {
          if (state.side === "key" && state.index !== j) continue;
          var w = m[i][j];
          if (state.side === "query") labels[j].textContent = w.toFixed(2);
          if (w * MAX_WIDTH < 0.15) continue;
          var line = document.createElementNS(NS, "line");
          line.setAttribute("class", "attn");
          line.setAttribute("x1", colWidth);
          line.setAttribute("y1", yOf(i));
          line.setAttribute("x2", colWidth + GAP);
          line.setAttribute("y2", yOf(j));
          line.setAttribute("stroke", c);
          line.setAttribute("stroke-width", (w * MAX_WIDTH).toFixed(3));
          line.setAttribute("stroke-opacity", hovering ? "0.85" : String(0.15 + 0.35 * w));
          line.setAttribute("data-from", String(i));
          line.setAttribute("data-to", String(j));
          line.setAttribute("data-weight", String(w));
          lineLayer.appendChild(line);
        }
      }
      var head = state.head === "mean" ? "mean of heads" : "head " + (state.head + 1);
      var parts = [];
      if (views.length > 1) parts.push(view.label);
      if (view.layer_names.length > 1) parts.push(view.layer_names[state.layer]);
      if (nHeads > 1) parts.push(head);
      var readout = parts.join(", ");
      if (state.side === "query") {
        var row = m[state.index], best = 0;
        for (var k = 1; k < row.length; k++) if (row[k] > row[best]) best = k;
        readout += (readout ? ": " : "") + "\u201c" + queries[state.index] +
          "\u201d attends most to \u201c" + keys[best] + "\u201d (" + row[best].toFixed(2) + ")";
      }
      readoutNode.textContent = readout;
      if (opts.onRender) {
        opts.onRender({ view: view, layer: state.layer, head: state.head, matrix: m,
                        side: state.side, index: state.index });
      }
    }

    // Take new data (the same input recomputed, or another one), keeping the choices made.
    function show(newData, keep) {
      data = newData;
      // an index page holds several sentences; a one-sentence page is an index of one
      sentences = data.sentences ||
        [{ title: data.title, page: null, views: data.views, initial_view: data.initial_view }];
      if (opts.documentTitle) document.title = data.title;
      if (titleNode) titleNode.textContent = data.title;
      if (sentenceSel) {
        clear(sentenceSel);
        sentences.forEach(function (s, i) {
          var t = s.title.length > 90 ? s.title.slice(0, 89) + "\u2026" : s.title;
          option(sentenceSel, i, (i + 1) + ". " + t);
        });
        sentenceSel.closest("label").hidden = sentences.length < 2;
      }
      pickSentence(keep ? 0 : data.initial_sentence || 0, keep);
    }

    kindSel.addEventListener("change", function () {
      choose(kinds.indexOf(kindSel.value), true);
    });
    if (sentenceSel) {
      sentenceSel.addEventListener("change", function () {
        pickSentence(Number(sentenceSel.value), true);
      });
    }
    layerSel.addEventListener("change", function () {
      state.layer = Number(layerSel.value);
      render();
    });
    headSel.addEventListener("change", function () {
      state.head = headSel.value === "mean" ? "mean" : Number(headSel.value);
      render();
    });
    show(data, false);
    return { show: show, state: state };
  }

  return { mount: mount };
})();
"""

_PAGE_SCRIPT = r"""
AttnrunViewer.mount(
  document.querySelector("main"),
  JSON.parse(document.getElementById("attention-data").textContent),
  { ids: true, documentTitle: true }
);
document.body.setAttribute("data-ready", "true");
"""
