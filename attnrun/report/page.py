"""``report.html``: the whole report as one self-contained page.

One HTML file with inline CSS and JavaScript and every image as a ``data:`` URI, so it opens from
disk, in a notebook cell or as an e-mail attachment with no network. From the top: the key
figures (BLEU by source length, the attention panel with the sample each setting shows and the
settings that have none, with why), the runs table (click a header to sort by that column;
numbers sort as numbers, empty cells last), the seed groups (mean ± std, n), then the metric and
loss plots in a grid; a link to each run's own viewer (``<run>/attention.html``, relative to the
page) where the run has one. A metric equal to another in every run is shown once (the summary
says which).

Safety: every text that comes from a run (paths, config values, metric names, token labels,
titles) goes through :func:`html.escape`; the page builds nothing from run text in JavaScript; and a
Content-Security-Policy allows only the page's own script (by its SHA-256), inline styles and
``data:`` images, so even a mistake in escaping could neither run a script nor fetch anything.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from attnrun.report.collect import Run
from attnrun.report.plots import KEY_FIGURES, Plot, attention_gaps
from attnrun.report.table import (
    Report,
    group_header,
    group_rows,
    run_header,
    run_rows,
    same_as_text,
)

VIEWER = "attention.html"  # each run's own viewer (attnrun/viz/viewer.py)
MAX_LABELS = 40  # token labels listed per attention panel
WIDE_PX = 900  # a plot wider than this (several panels) spans the whole grid row
ATTENTION = "report_attention.png"


SEARCH_PLOTS = "report_search_"


def _e(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _number(v: Any) -> str | None:
    """A ``data-value`` for sorting: the number as JavaScript reads it, or None for text."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    x = float(v)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return repr(x)


def viewer_link(run: Run, page_dir: Path) -> str | None:
    """The run's ``attention.html`` relative to the page's folder (URL-quoted), or None."""
    viewer = run.path / VIEWER
    if not viewer.is_file():
        return None
    rel = os.path.relpath(viewer.resolve(), page_dir.resolve())
    return quote(Path(rel).as_posix())


def _cell(text: str, value: str | None = None, cls: str = "") -> str:
    attrs = f' data-value="{value}"' if value is not None else ""
    attrs += f' class="{cls}"' if cls else ""
    return f"<td{attrs}>{_e(text)}</td>"


def _table(table_id: str, header: Sequence[str], rows: Sequence[str], caption: str) -> str:
    heads = "".join(
        f'<th scope="col"><button type="button">{_e(h)}<span class="arrow"></span></button></th>'
        for h in header
    )
    return (
        f'<div class="scroll"><table id="{table_id}" class="sortable">'
        f"<caption>{_e(caption)}</caption><thead><tr>{heads}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def runs_table(rep: Report, page_dir: Path) -> str:
    """One row per run; each cell of a number carries ``data-value`` for numeric sorting."""
    header = [*run_header(rep), "viewer"]
    rows = []
    for r, shown in zip(rep.runs, run_rows(rep), strict=True):
        exp = [None] if rep.several_experiments else []
        values = [
            None,
            *exp,
            *(_number(r.config.get(k)) for k in rep.swept),
            _number(r.seed),
            *(_number(r.metrics.get(m)) for m in rep.metrics),
            None,
        ]
        cells = [_cell(t, v) for t, v in zip(shown[:-1], values[:-1], strict=True)]
        cells.append(_cell(r.status, cls=f"status status-{r.status}"))
        link = viewer_link(r, page_dir)
        cells.append(
            f'<td><a href="{_e(link)}" target="_blank" rel="noopener">viewer</a></td>'
            if link
            else "<td></td>"
        )
        rows.append(f"<tr>{''.join(cells)}</tr>")
    caption = "Runs: click a column header to sort (again to reverse)"
    return _table("runs", header, rows, caption)


def groups_table(rep: Report) -> str:
    """Runs that differ only by seed: mean ± std and n of each key metric."""
    rows = []
    for g, shown in zip(rep.groups, group_rows(rep), strict=True):
        exp = [None] if rep.several_experiments else []
        stats = [g.stat(m) for m in rep.metrics]
        n = max((s.n for s in stats), default=0)
        values = [
            *exp,
            *map(_number, g.values),
            None,
            _number(n),
            *(_number(s.mean) for s in stats),
            None,
        ]
        rows.append(f"<tr>{''.join(_cell(t, v) for t, v in zip(shown, values, strict=True))}</tr>")
    return _table("groups", group_header(rep), rows, "Grouped over seeds (mean ± std, n)")


def _img(plot: Plot) -> str:
    data = base64.b64encode(plot.png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(plot.caption)}">'


def png_width(png: bytes) -> int:
    """A PNG's width in pixels, from its IHDR chunk (0 when the bytes are no PNG)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or len(png) < 24:
        return 0
    return int.from_bytes(png[16:20], "big")


def _figure(plot: Plot, inner: str = "") -> str:
    """A grid cell with the plot; a wide one (several panels) spans the row."""
    wide = ' class="wide"' if png_width(plot.png) > WIDE_PX else ""
    return f"<figure{wide}>{_img(plot)}<figcaption>{_e(plot.caption)}</figcaption>{inner}</figure>"


def _labels(labels: Sequence[str]) -> str:
    shown = ", ".join(labels[:MAX_LABELS])
    more = f" … ({len(labels)} in all)" if len(labels) > MAX_LABELS else ""
    return _e(shown + more)


def gaps_list(gaps: Sequence[tuple[str, str]]) -> str:
    """The settings without an attention panel, each with why (``decoder=none`` ...)."""
    if not gaps:
        return ""
    items = "".join(f"<li><b>{_e(setting)}</b>: {_e(why)}</li>" for setting, why in gaps)
    return f'<p class="note">No attention panel for:</p><ul class="gaps">{items}</ul>'


def attention_section(rep: Report, plot: Plot | None, page_dir: Path, gaps=()) -> str:
    """The attention figure with its panels' runs and tokens, then the settings without one;
    without a figure (every setting lacks attention) the list alone."""
    if plot is None:
        return f'<div id="attention" class="cell"><h3>Attention</h3>{gaps_list(gaps)}</div>'
    items = []
    for p in plot.panels:
        s = p.sample
        _, row_labels, col_labels = s.panel()
        link = viewer_link(p.run, page_dir)
        viewer = (
            f' — <a href="{_e(link)}" target="_blank" rel="noopener">open its viewer</a>'
            if link
            else ""
        )
        title = f"<div class=title>{_e(s.title)}</div>" if s.title else ""
        items.append(
            f"<li><b>{_e(p.setting)}</b>: run <code>{_e(rep.folder(p.run))}</code>{viewer}{title}"
            f'<div class="tokens">rows: <span class="rows">{_labels(row_labels)}</span></div>'
            f'<div class="tokens">columns: <span class="cols">{_labels(col_labels)}</span></div>'
            "</li>"
        )
    wide = " wide" if png_width(plot.png) > WIDE_PX else ""
    return (
        f'<div id="attention" class="cell{wide}"><h3>Attention</h3>'
        f"<figure>{_img(plot)}<figcaption>{_e(plot.caption)}</figcaption></figure>"
        f'<ul class="panels">{"".join(items)}</ul>{gaps_list(plot.gaps or gaps)}</div>'
    )


def key_section(rep: Report, plots: Sequence[Plot], page_dir: Path) -> str:
    """BLEU by source length and the attention panel, side by side when they fit; "" when the
    runs have neither (nor a setting whose missing attention needs saying)."""
    by_name = {p.name: p for p in plots}
    cells = []
    length = by_name.get("report_bleu_by_length.png")
    if length is not None:
        cells.append(_figure(length).replace("<figure", '<figure id="bleu-by-length"', 1))
    attention = by_name.get(ATTENTION)
    gaps = [] if attention is not None or not plots else attention_gaps(rep)
    if attention is not None or any(why.startswith("decoder=none") for _, why in gaps):
        cells.append(attention_section(rep, attention, page_dir, gaps))
    if not cells:
        return ""
    return (
        f'<section id="key"><h2>Key figures</h2><div class="grid">{"".join(cells)}</div></section>'
    )


def report_page(rep: Report, plots: Sequence[Plot], page_dir: str | os.PathLike) -> str:
    """The report as one HTML page; viewer links are relative to ``page_dir``."""
    page_dir = Path(page_dir)
    summary = f"{len(rep.runs)} runs under {rep.base.resolve()}"
    if rep.swept:
        summary += f"; swept: {', '.join(rep.swept)}"
    if rep.metrics:
        summary += f"; metrics: {', '.join(rep.metrics)}"
    if rep.same_as:
        summary += f"; {same_as_text(rep)}"
    parts = [f"<h1>attnrun report</h1><p class=summary>{_e(summary)}</p>"]
    parts.append(key_section(rep, plots, page_dir))
    parts.append(f"<section><h2>Runs</h2>{runs_table(rep, page_dir)}</section>")
    if rep.has_seed_groups:
        parts.append(f"<section><h2>Seed groups</h2>{groups_table(rep)}</section>")
    if rep.search is not None:
        from attnrun.report.search import section_html

        searched = [p for p in plots if p.name.startswith(SEARCH_PLOTS)]
        parts.append(section_html(rep.search, searched))
    figures = [
        p for p in plots if p.name not in KEY_FIGURES and not p.name.startswith(SEARCH_PLOTS)
    ]
    if figures:
        body = "".join(_figure(p) for p in figures)
        parts.append(
            f'<section id="plots"><h2>Metrics</h2><div class="grid">{body}</div></section>'
        )
    digest = base64.b64encode(hashlib.sha256(_SCRIPT.encode("utf-8")).digest()).decode("ascii")
    csp = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )
    fill = {
        "CSP": _e(csp),
        "TITLE": _e(f"attnrun report: {len(rep.runs)} runs"),
        "STYLE": _STYLE,
        "BODY": "\n".join(parts),
        "SCRIPT": _SCRIPT,
    }
    # one pass, so run text substituted in is never scanned for markers again
    return re.sub(r"@@(CSP|TITLE|STYLE|BODY|SCRIPT)@@", lambda m: fill[m.group(1)], _PAGE)


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="@@CSP@@">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>@@TITLE@@</title>
<style>@@STYLE@@</style>
</head>
<body>
<main>
@@BODY@@
</main>
<script>@@SCRIPT@@</script>
</body>
</html>
"""

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem;
       color: #1f2328; background: #fff; line-height: 1.45; }
main { max-width: 80rem; }
h1 { font-size: 1.5rem; margin: 0 0 .3rem; }
h2 { font-size: 1.15rem; margin: 1.8rem 0 .6rem; border-bottom: 1px solid #d0d7de;
     padding-bottom: .25rem; }
.summary { color: #57606a; margin: 0; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: .9rem; }
caption { text-align: left; color: #57606a; font-size: .85rem; padding-bottom: .35rem; }
th, td { border: 1px solid #d0d7de; padding: .25rem .6rem; text-align: left;
         white-space: nowrap; }
td[data-value] { text-align: right; font-variant-numeric: tabular-nums; }
thead th { background: #f6f8fa; padding: 0; }
th button { font: inherit; font-weight: 600; border: 0; background: none; cursor: pointer;
            padding: .3rem .6rem; width: 100%; text-align: left; color: inherit; }
th button:hover, th button:focus { background: #eaeef2; }
th .arrow::after { content: ""; color: #57606a; margin-left: .3rem; }
th[aria-sort=ascending] .arrow::after { content: "\\25B2"; }
th[aria-sort=descending] .arrow::after { content: "\\25BC"; }
tbody tr:nth-child(even) { background: #f9fafb; }
.status-completed { color: #1a7f37; }
.status-failed, .status-unreadable { color: #cf222e; }
.status-running { color: #9a6700; }
.status-interrupted { color: #8250df; }
h3 { font-size: 1rem; margin: 0 0 .4rem; }
.grid { display: grid; gap: 1rem 1.5rem; align-items: start;
        grid-template-columns: repeat(auto-fill, minmax(min(100%, 30rem), 1fr)); }
.grid > .wide { grid-column: 1 / -1; }
.grid figure, .cell figure { margin: 0; }
figure { margin: 1rem 0 1.5rem; min-width: 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption { color: #57606a; font-size: .85rem; }
.note { margin: .6rem 0 .2rem; }
ul.gaps { padding-left: 1.2rem; margin: 0; color: #57606a; }
ul.panels { padding-left: 1.2rem; }
ul.panels li { margin-bottom: .6rem; }
.title { font-style: italic; overflow-wrap: anywhere; }
.tokens { font-size: .85rem; color: #57606a; overflow-wrap: anywhere; }
code, .tokens span { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
"""

_SCRIPT = r"""
(function () {
  "use strict";
  var collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
  function sortBy(table, col, th) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var numeric = rows.every(function (r) {
      var c = r.cells[col];
      return c.textContent.trim() === "" || c.hasAttribute("data-value");
    });
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) {
      h.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    var keyed = rows.map(function (r, i) {
      var c = r.cells[col], text = c.textContent.trim();
      var num = numeric ? parseFloat(c.getAttribute("data-value")) : 0;
      return { row: r, i: i, text: text, num: num, empty: text === "" || num !== num };
    });
    keyed.sort(function (a, b) {
      if (a.empty !== b.empty) return a.empty ? 1 : -1;  // empty and NaN last either way
      var d = numeric ? (a.num < b.num ? -1 : a.num > b.num ? 1 : 0)
                      : collator.compare(a.text, b.text);
      return d !== 0 ? dir * d : a.i - b.i;
    });
    keyed.forEach(function (k) { body.appendChild(k.row); });
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      var button = th.querySelector("button");
      if (button) button.addEventListener("click", function () { sortBy(table, col, th); });
    });
  });
  document.body.setAttribute("data-ready", "true");
})();
"""

__all__ = ["report_page", "viewer_link"]
