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
    "AttentionView",
    "attention_html",
    "attention_views_html",
    "write_attention_html",
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
    if not views:
        raise ValueError("the viewer needs at least one view")
    data_views = [v.to_data() for v in views]
    kinds = [v["kind"] for v in data_views]
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"view kinds must be unique; got {kinds}")
    if initial_kind is not None and initial_kind not in kinds:
        raise ValueError(f"initial_kind {initial_kind!r} is none of the views' kinds {kinds}")
    data = {
        "title": str(title),
        "initial_view": kinds.index(initial_kind) if initial_kind is not None else 0,
        "views": data_views,
    }
    parts = {
        "TITLE": html.escape(str(title)),
        "STYLE": _STYLE,
        "SCRIPT": _SCRIPT,
        "DATA": _json_for_script(data),
    }
    # One pass, so text substituted in (a title, a token) is never scanned for markers again.
    return re.sub(r"@@(TITLE|STYLE|SCRIPT|DATA)@@", lambda m: parts[m.group(1)], _PAGE)


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
<h1 id="title"></h1>
<div class="controls">
  <label id="kind-picker" hidden>Kind <select id="kind"></select></label>
  <label>Layer <select id="layer"></select></label>
  <label>Head <select id="head"></select></label>
</div>
<div id="readout" aria-live="polite"></div>
<p class="hint">Hover or focus a token on the left to draw lines to the tokens it attends to; on
the right, to see which tokens attend to it. Line width is proportional to the weight.</p>
<svg id="view" role="img" aria-label="attention lines between tokens"></svg>
<noscript><p>This viewer needs JavaScript.</p></noscript>
</main>
<script type="application/json" id="attention-data">@@DATA@@</script>
<script>@@SCRIPT@@</script>
</body>
</html>
"""

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem;
       color: #1f2328; background: #fff; }
main { max-width: 60rem; }
h1 { font-size: 1.25rem; margin: 0 0 .75rem; overflow-wrap: anywhere; }
.controls { display: flex; gap: 1.25rem; align-items: center; flex-wrap: wrap; }
.controls select { font: inherit; margin-left: .35rem; }
.controls [hidden] { display: none; }
#readout { color: #57606a; font-size: .9rem; margin-top: .5rem; height: 1.4em; line-height: 1.4em;
           white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
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

_SCRIPT = r"""
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
                 "#e377c2", "#7f7f7f", "#bcbd22"];
  var MAX_WIDTH = 8, ROW = 24, TOP = 40, GAP = 220;
  var data = JSON.parse(document.getElementById("attention-data").textContent);
  var kinds = data.views.map(function (v) { return v.kind; });
  // the chosen view; side/index: the hovered token ("query" or "key") and its position
  var view = null, nHeads = 0, queries = [], keys = [];
  var state = { layer: 0, head: 0, side: null, index: -1 };
  var svg = document.getElementById("view"), lineLayer = null, colWidth = 0, width = 0;
  var qNodes = [], kNodes = [], labels = [];

  document.title = data.title;
  document.getElementById("title").textContent = data.title;
  var kindSel = document.getElementById("kind");
  var layerSel = document.getElementById("layer"), headSel = document.getElementById("head");
  function option(sel, value, text) {
    var o = document.createElement("option");
    o.value = String(value);
    o.textContent = text;
    sel.appendChild(o);
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  data.views.forEach(function (v) { option(kindSel, v.kind, v.label); });
  if (data.views.length > 1) document.getElementById("kind-picker").hidden = false;

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
    var longest = Math.max.apply(null, queries.concat(keys).map(function (t) { return t.length; }));
    colWidth = Math.max(80, 9 * Math.min(longest, 40) + 50);
    width = 2 * colWidth + GAP;
    var height = TOP + ROW * Math.max(queries.length, keys.length) + 10;
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    lineLayer = document.createElementNS(NS, "g");
    lineLayer.setAttribute("id", "lines");
    svg.appendChild(lineLayer);
    text(colWidth - 6, TOP - 24, "end", view.query_label, "column-label");
    text(colWidth + GAP + 6, TOP - 24, "start", view.key_label, "column-label");
    qNodes = makeTokens(queries, "query", colWidth - 6, "end");
    kNodes = makeTokens(keys, "key", colWidth + GAP + 6, "start");
    labels = keys.map(function (_, j) {
      return text(width - 4, yOf(j), "end", "", "weight-label");
    });
  }

  // Show data.views[i]: rebuild the Layer and Head pickers and the tokens. With keep, the
  // layer and head chosen so far stay when this view has them; otherwise its initial ones.
  function choose(i, keep) {
    view = data.views[i];
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
    var readout = (data.views.length > 1 ? view.label + ", " : "") +
      view.layer_names[state.layer] + ", " + head;
    if (state.side === "query") {
      var row = m[state.index], best = 0;
      for (var k = 1; k < row.length; k++) if (row[k] > row[best]) best = k;
      readout += ": \u201c" + queries[state.index] + "\u201d attends most to \u201c" + keys[best] +
        "\u201d (" + row[best].toFixed(2) + ")";
    }
    document.getElementById("readout").textContent = readout;
  }

  kindSel.addEventListener("change", function () { choose(kinds.indexOf(kindSel.value), true); });
  layerSel.addEventListener("change", function () {
    state.layer = Number(layerSel.value);
    render();
  });
  headSel.addEventListener("change", function () {
    state.head = headSel.value === "mean" ? "mean" : Number(headSel.value);
    render();
  });
  choose(data.initial_view, false);
  document.body.setAttribute("data-ready", "true");
})();
"""
