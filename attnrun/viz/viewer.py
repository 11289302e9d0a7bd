"""``attention.html``: a self-contained, interactive attention viewer (in the spirit of bertviz's
head view, Vig 2019).

One HTML file with inline CSS and JavaScript that opens from disk with no network. Pick a layer and
a head (or the mean of the heads); the attending tokens (queries) stand on the left, the attended
tokens (keys) on the right. Hovering (or focusing) a query draws a line to each key it attends to,
its width proportional to the weight; hovering a key draws the lines that arrive at it.

Works for self-attention (``source_tokens == target_tokens``) and cross-attention (queries are the
target tokens, keys the source tokens). Safety: the data travel as JSON inside a
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

import numpy as np

from attnrun.io import write_text

__all__ = ["attention_html", "write_attention_html"]


def _weights_array(weights, tq: int, tk: int) -> np.ndarray:
    arr = weights.detach().cpu().numpy() if hasattr(weights, "detach") else np.asarray(weights)
    arr = arr.astype(np.float64)
    if arr.ndim != 4 or arr.shape[2:] != (tq, tk):
        raise ValueError(
            f"weights must be (layers, heads, Tq={tq}, Tk={tk}) for {tq} target and {tk} source "
            f"tokens; got shape {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise ValueError("weights contain NaN or inf")
    return arr


def _json_for_script(obj) -> str:
    """JSON that cannot end its ``<script>`` block or start markup: ``<``, ``>``, ``&`` and the
    JavaScript line separators are escaped as ``\\uXXXX`` (still valid JSON)."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):  # fmt: skip
        text = text.replace(ch, esc)
    return text


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
    """The viewer page as a string; see :func:`write_attention_html`."""
    source, target = [str(t) for t in source_tokens], [str(t) for t in target_tokens]
    arr = _weights_array(weights, len(target), len(source))
    layers, heads = arr.shape[:2]
    names = (
        [str(n) for n in layer_names] if layer_names else [f"layer {i + 1}" for i in range(layers)]
    )
    if len(names) != layers:
        raise ValueError(f"{len(names)} layer names for {layers} layers")
    data = {
        "title": str(title),
        "source_tokens": source,
        "target_tokens": target,
        "layer_names": names,
        "query_label": str(query_label),
        "key_label": str(key_label),
        "initial_layer": min(max(int(initial_layer), 0), layers - 1),
        "initial_head": min(max(int(initial_head), 0), heads - 1),
        "weights": np.round(arr, 4).tolist(),
    }
    parts = {
        "TITLE": html.escape(str(title)),
        "STYLE": _STYLE,
        "SCRIPT": _SCRIPT,
        "DATA": _json_for_script(data),
    }
    # One pass, so text substituted in (a title, a token) is never scanned for markers again.
    return re.sub(r"@@(TITLE|STYLE|SCRIPT|DATA)@@", lambda m: parts[m.group(1)], _PAGE)


def write_attention_html(
    path: str | os.PathLike,
    source_tokens: Sequence[str],
    target_tokens: Sequence[str],
    weights,
    title: str = "Attention",
    **options,
) -> None:
    """Write the viewer to ``path`` atomically.

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
  var nLayers = data.weights.length, nHeads = data.weights[0].length;
  var queries = data.target_tokens, keys = data.source_tokens;
  var state = { layer: data.initial_layer, head: data.initial_head, kind: null, index: -1 };

  document.title = data.title;
  document.getElementById("title").textContent = data.title;
  var layerSel = document.getElementById("layer"), headSel = document.getElementById("head");
  function option(sel, value, text) {
    var o = document.createElement("option");
    o.value = String(value);
    o.textContent = text;
    sel.appendChild(o);
  }
  data.layer_names.forEach(function (name, i) { option(layerSel, i, name); });
  for (var h = 0; h < nHeads; h++) option(headSel, h, "head " + (h + 1));
  if (nHeads > 1) option(headSel, "mean", "mean of heads");
  layerSel.value = String(state.layer);
  headSel.value = String(state.head);

  function matrix() {
    var heads = data.weights[state.layer];
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

  var longest = Math.max.apply(null, queries.concat(keys).map(function (t) { return t.length; }));
  var colWidth = Math.max(80, 9 * Math.min(longest, 40) + 50);
  var svg = document.getElementById("view");
  var width = 2 * colWidth + GAP, height = TOP + ROW * Math.max(queries.length, keys.length) + 10;
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("viewBox", "0 0 " + width + " " + height);
  var lineLayer = document.createElementNS(NS, "g");
  lineLayer.setAttribute("id", "lines");
  svg.appendChild(lineLayer);

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
  text(colWidth - 6, TOP - 24, "end", data.query_label, "column-label");
  text(colWidth + GAP + 6, TOP - 24, "start", data.key_label, "column-label");

  function yOf(i) { return TOP + ROW * i; }
  function makeTokens(list, kind, x, anchor) {
    return list.map(function (tok, i) {
      var t = text(x, yOf(i), anchor, tok, "token " + kind);
      t.setAttribute("data-kind", kind);
      t.setAttribute("data-index", String(i));
      t.setAttribute("tabindex", "0");
      var enter = function () { state.kind = kind; state.index = i; render(); };
      var leave = function () { state.kind = null; state.index = -1; render(); };
      t.addEventListener("mouseenter", enter);
      t.addEventListener("focus", enter);
      t.addEventListener("mouseleave", leave);
      t.addEventListener("blur", leave);
      return t;
    });
  }
  var qNodes = makeTokens(queries, "query", colWidth - 6, "end");
  var kNodes = makeTokens(keys, "key", colWidth + GAP + 6, "start");
  var labels = keys.map(function (_, j) {
    return text(width - 4, yOf(j), "end", "", "weight-label");
  });

  function render() {
    while (lineLayer.firstChild) lineLayer.removeChild(lineLayer.firstChild);
    var m = matrix(), c = colour(), hovering = state.kind !== null;
    qNodes.forEach(function (n, i) {
      n.classList.toggle("active", state.kind === "query" && state.index === i);
      n.classList.toggle("dim", state.kind === "query" && state.index !== i);
    });
    kNodes.forEach(function (n, j) {
      n.classList.toggle("active", state.kind === "key" && state.index === j);
    });
    labels.forEach(function (l) { l.textContent = ""; });
    for (var i = 0; i < queries.length; i++) {
      if (state.kind === "query" && state.index !== i) continue;
      for (var j = 0; j < keys.length; j++) {
        if (state.kind === "key" && state.index !== j) continue;
        var w = m[i][j];
        if (state.kind === "query") labels[j].textContent = w.toFixed(2);
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
    var readout = data.layer_names[state.layer] + ", " + head;
    if (state.kind === "query") {
      var row = m[state.index], best = 0;
      for (var k = 1; k < row.length; k++) if (row[k] > row[best]) best = k;
      readout += ": \u201c" + queries[state.index] + "\u201d attends most to \u201c" + keys[best] +
        "\u201d (" + row[best].toFixed(2) + ")";
    }
    document.getElementById("readout").textContent = readout;
  }

  layerSel.addEventListener("change", function () {
    state.layer = Number(layerSel.value);
    render();
  });
  headSel.addEventListener("change", function () {
    state.head = headSel.value === "mean" ? "mean" : Number(headSel.value);
    render();
  });
  render();
  document.body.setAttribute("data-ready", "true");
})();
"""
