"""Comparison plots of a report, rendered to PNG bytes and written atomically as ``report_*.png``.

* ``report_metric_<metric>.png``: each key metric against each swept value, mean ± std over seeds:
  a line over numeric values, grouped bars with error bars over categorical ones (a decoder, a
  score function), one bar per setting of the other swept keys;
* ``report_loss.png``: loss curves of all runs overlaid (mean and ± std band over seeds), read
  from each run's ``history.json`` through :func:`attnrun.runs.files.read_history`;
* ``report_bleu_by_length.png``: translation BLEU against source-length bucket, one line per
  setting (mean over seeds), from each run's ``bleu_by_length`` metric: Bahdanau et al.'s
  Fig. 2 when the settings are decoders with and without attention;
* ``report_attention.png``: one sample's attention side by side, one panel per compared setting,
  read from each run's ``attention.json`` through :func:`attnrun.runs.files.read_attention` and
  drawn from :meth:`~attnrun.runs.files.AttentionSample.panel`. Every panel shows the same sample
  (same ``name`` and ``kind``), so the panels differ only by the setting. Settings without a
  panel are listed with the reason (:func:`attention_gaps`): ``decoder=none`` has no attention.

:func:`render_all` gives the plots in the page's order: the key figures (BLEU by length, the
attention panels) first, then one per metric, then the loss curves.

Plots are rendered in memory (:func:`render_all`) so ``report.html`` and the notebook API can
inline them as ``data:`` URIs without touching the disk; :func:`write_plots` saves them.
Nothing here reads a model: plots come from files the runs wrote.
"""

from __future__ import annotations

import io
import math
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from attnrun.io import atomic_open  # noqa: E402
from attnrun.report.collect import Run, as_number  # noqa: E402
from attnrun.report.table import Group, Report, fmt, sort_key  # noqa: E402
from attnrun.runs.files import AttentionSample, read_attention, read_history  # noqa: E402
from attnrun.viz import ATTENTION_CMAP  # noqa: E402
from attnrun.viz.curves import buckets_figure  # noqa: E402

MAX_SERIES = 8  # more settings than this on one axis are pooled into one series
MAX_PANELS = 8  # attention maps side by side
PANELS_PER_ROW = 4
MAX_TICKS = 30  # more labels than this on an axis: every k-th is shown
MAX_TICK_CHARS = 14  # longer token labels are cut (with …) so the maps keep their room
LOG_SPAN = 10.0  # loss curves go on a log axis when the largest loss is more than this × the least
TRAIN_LOSS_NAMES = ("loss", "train_loss")  # the training curve in history.json, first found
AXES = {  # kind -> (row axis, column axis) of AttentionSample.panel()
    "cross": ("target", "source"),
    "kernel": ("query x", "training x"),
    "encoder_rollout": ("top-layer token", "input token"),
}


@dataclass
class Plot:
    """One rendered figure: its file name, PNG bytes and a caption."""

    name: str
    png: bytes
    caption: str
    panels: list[AttentionPanel] = field(default_factory=list)  # report_attention.png only
    gaps: list[tuple[str, str]] = field(default_factory=list)  # (setting, why it has no panel)


@dataclass
class AttentionPanel:
    """Which run and sample one panel of ``report_attention.png`` shows."""

    setting: str
    run: Run
    sample: AttentionSample


KEY_FIGURES = ("report_bleu_by_length.png", "report_attention.png")  # shown first


def render_all(rep: Report) -> list[Plot]:
    """Every plot the runs support, in memory, key figures first (see the module docstring),
    then a search's figures when the report is of one search folder, then ablations'."""
    plots = [p for p in (length_plot(rep), attention_plot(rep)) if p is not None]
    plots += metric_plots(rep)
    plots += [p for p in (loss_plot(rep), rollout_plot(rep)) if p is not None]
    if rep.search is not None:
        from attnrun.report.search import search_plots

        plots.extend(search_plots(rep.search))
    return plots + ablation_plots(rep)


#: Importance grids drawn at most (one per run with an ``attnrun ablate`` folder).
MAX_IMPORTANCE = 6


def ablation_plots(rep: Report) -> list[Plot]:
    """``report_importance_<i>.png``: each ablated run's latest head-importance grid (removal
    effect and gradient importance, layer × head per kind), and ``report_pruning.png``: the
    pruning curves of every ablated run overlaid (:mod:`attnrun.ablate.plots`)."""
    from attnrun.runs.files import read_ablations

    latest = {}
    for r in rep.runs:
        found = read_ablations(r.path)
        if found:
            latest[rep.folder(r)] = found[-1][1]
    if not latest:
        return []
    from attnrun.ablate.plots import importance_figure, png_bytes, pruning_figure

    plots = []
    with_heads = [(name, rec) for name, rec in latest.items() if rec.get("heads")]
    for i, (name, rec) in enumerate(with_heads[:MAX_IMPORTANCE]):
        caption = f"head importance of {name}: {rec['metric']} lost when each head is removed, "
        caption += "and gradient importance (Michel et al. 2019)"
        plots.append(Plot(f"report_importance_{i}.png", png_bytes(importance_figure(rec, name)),
                          caption))  # fmt: skip
    pruned = {name: rec for name, rec in latest.items() if rec.get("pruning")}
    if pruned:
        caption = "pruning curves: heads removed least important first (solid) and in random "
        caption += "orders (dashed mean, shaded range), one colour per run"
        plots.append(Plot("report_pruning.png", png_bytes(pruning_figure(pruned)), caption))
    return plots


def write_plots(plots: Sequence[Plot], out_dir: str | os.PathLike) -> list[Path]:
    """Save each plot as ``out_dir/<name>`` atomically; returns the files written."""
    written = []
    for p in plots:
        path = Path(out_dir) / p.name
        with atomic_open(path, "wb") as f:
            f.write(p.png)
        written.append(path)
    return written


def draw_all(rep: Report, out_dir: str | os.PathLike) -> list[Path]:
    """Render every plot and write it into ``out_dir``; returns the files written."""
    return write_plots(render_all(rep), out_dir)


def _png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()


def _text(s: Any) -> str:
    """Run text for matplotlib: ``$`` escaped, so a token like ``$x$`` is not read as mathtext
    (and an unbalanced one cannot stop the whole figure)."""
    return str(s).replace("$", r"\$")


def _label(keys: Sequence[str], values: Sequence[Any]) -> str:
    return ", ".join(f"{k.rsplit('.', 1)[-1]}={fmt(v)}" for k, v in zip(keys, values, strict=True))


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


# --- metrics against swept values -----------------------------------------------------------


def _stats(runs: Sequence[Run], metric: str) -> tuple[float, float, int] | None:
    xs = [x for r in runs if r.status == "completed" and (x := r.metric(metric)) is not None]
    if not xs:
        return None
    std = float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0
    return float(np.mean(xs)), std, len(xs)


def metric_plots(rep: Report) -> list[Plot]:
    """One figure per key metric, one panel per swept key (x: its values, y: mean ± std).

    A metric with a value at only one swept value (``aer`` when one decoder of two attends)
    gets no figure: a single dot or bar compares nothing, and the tables show the number.
    """
    if not rep.swept:
        return []
    out = []
    for metric in rep.metrics:
        if not any(_compared(rep, metric, i) for i in range(len(rep.swept))):
            continue
        n = len(rep.swept)
        cols = min(n, 3)
        rows = math.ceil(n / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.6 * rows), squeeze=False)
        for ax, key in zip(axes.flat, rep.swept, strict=False):
            _metric_panel(ax, rep, metric, key)
        for ax in list(axes.flat)[n:]:
            ax.set_visible(False)
        fig.suptitle(_text(f"{metric} (mean ± std over seeds)"))
        with warnings.catch_warnings():  # crowded panels: a looser layout is fine
            warnings.simplefilter("ignore", UserWarning)
            fig.tight_layout()
        out.append(
            Plot(
                f"report_metric_{_slug(metric)}.png",
                _png(fig),
                f"{metric} against each swept value",
            )
        )
    return out


def _compared(rep: Report, metric: str, i: int) -> bool:
    """Whether ``metric`` has a value at two or more values of swept key ``i``."""
    values = {
        str(g.values[i]) for g in rep.groups if _stats(g.runs, metric) is not None
    }  # fmt: skip
    return len(values) > 1


def _metric_panel(ax: plt.Axes, rep: Report, metric: str, key: str) -> None:
    i = rep.swept.index(key)
    others = [k for k in rep.swept if k != key]
    # series: the groups that share every other swept value (and the experiment)
    series: dict[tuple, list[Group]] = {}
    for g in rep.groups:
        rest = (g.experiment, *(str(v) for j, v in enumerate(g.values) if j != i))
        series.setdefault(rest, []).append(g)
    pooled = len(series) > MAX_SERIES
    if pooled:  # too many lines to read: pool every other setting at each value of `key`
        by_value: dict[str, tuple[Any, list[Run]]] = {}
        for g in rep.groups:
            by_value.setdefault(str(g.values[i]), (g.values[i], []))[1].extend(g.runs)
        lines = {("all",): [(v, runs) for v, runs in by_value.values()]}
    else:
        lines = {rest: [(g.values[i], g.runs) for g in gs] for rest, gs in series.items()}

    xs_all = [v for pts in lines.values() for v, runs in pts if _stats(runs, metric) is not None]
    numeric = all(as_number(v) is not None for v in xs_all)
    cats = sorted({str(v) for v in xs_all}, key=lambda s: sort_key(_num_or_str(s)))
    width = 0.8 / max(len(lines), 1)  # grouped bars: the settings side by side in each category
    for k, (rest, pts) in enumerate(lines.items()):
        pts = sorted(pts, key=lambda p: sort_key(p[0]))
        all_stats = [(_stats(runs, metric), v) for v, runs in pts]
        stats = [(s, v) for s, v in all_stats if s is not None]
        if not stats:
            continue
        if numeric:
            x = np.array([float(v) for _, v in stats])
        else:
            x = (
                np.array([cats.index(str(v)) for _, v in stats])
                + (k - (len(lines) - 1) / 2) * width
            )
        y = np.array([s[0] for s, _ in stats])
        e = np.array([s[1] for s, _ in stats])
        label: str | None
        if pooled:
            label = "all other settings pooled"
        else:
            label = (
                _label(["experiment", *others], rest)
                if rep.several_experiments
                else (_label(others, rest[1:]) or None)
            )
        if numeric:  # a line only where the values are numbers
            ax.errorbar(x, y, yerr=e, marker="o", capsize=4, label=_text(label) if label else None)
        else:
            ax.bar(
                x, y, width=width, yerr=e, capsize=4, alpha=0.85,
                label=_text(label) if label else None, error_kw={"elinewidth": 1},
            )  # fmt: skip
    if not numeric:
        ax.set_xticks(
            range(len(cats)), [_text(c) for c in cats], rotation=30 if len(cats) > 4 else 0
        )
        ax.set_xlim(-0.5, len(cats) - 0.5)
    ax.set_xlabel(_text(key))
    ax.set_ylabel(_text(metric))
    ax.grid(alpha=0.3, axis="y" if not numeric else "both")
    if ax.get_legend_handles_labels()[1]:
        ax.legend(fontsize="x-small")


def _num_or_str(s: str) -> Any:
    try:
        return float(s)
    except ValueError:
        return s


# --- loss curves ----------------------------------------------------------------------------


def load_history(run_dir: str | os.PathLike) -> dict[str, list[float]] | None:
    """Per-epoch series of a run's ``history.json``; None when missing, unreadable or empty.

    ``history.json`` is ``{"loss": [...], "val_loss": [...], <any other name>: [...]}`` with one
    number per epoch (null for a missing value), or a list of per-epoch records
    (``[{"epoch": 1, "train_loss": ..., "val_loss": ...}, ...]``). ``epoch`` and ``step`` are
    the x axis and dropped; every other list is a series.
    """
    raw = read_history(run_dir)
    if isinstance(raw, list) and raw and all(isinstance(r, dict) for r in raw):
        raw = _columns(raw)
    if not isinstance(raw, dict):
        return None
    out = {
        k: [_float(x) for x in v]
        for k, v in raw.items()
        if isinstance(v, list) and v and k not in ("epoch", "step")
    }
    return out or None


def _columns(records: list[dict]) -> dict[str, list[float]]:
    """Records (one mapping per epoch) to one list per name, epoch/step dropped."""
    names = dict.fromkeys(k for r in records for k in r if k and k not in ("epoch", "step"))
    return {n: [_float(r.get(n)) for r in records] for n in names}


def _float(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def loss_plot(rep: Report) -> Plot | None:
    """Training (solid) and ``val_loss`` (dashed) per setting: mean over seeds, ± std band.

    The training curve is ``loss`` (or ``train_loss``) of each run's history.
    """
    curves: list[tuple[Group, dict[str, list[list[float]]]]] = []
    for g in rep.groups:
        per_series: dict[str, list[list[float]]] = {}
        for r in g.runs:
            h = load_history(r.path) or {}
            train = next((n for n in TRAIN_LOSS_NAMES if n in h), None)
            if train is not None:
                per_series.setdefault("loss", []).append(h[train])
            if "val_loss" in h:
                per_series.setdefault("val_loss", []).append(h["val_loss"])
        if per_series:
            curves.append((g, per_series))
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    finite: list[np.ndarray] = []
    for k, (g, per_series) in enumerate(curves):
        colour = colours[k % len(colours)]
        name = _label(rep.swept, g.values) or g.experiment
        if rep.several_experiments and rep.swept:
            name = f"{g.experiment}: {name}"
        for series, style in (("loss", "-"), ("val_loss", "--")):
            if series not in per_series:
                continue
            length = min(len(c) for c in per_series[series])
            arr = np.array([c[:length] for c in per_series[series]], dtype=float)  # (seeds, epochs)
            with warnings.catch_warnings():  # an epoch every seed left empty stays a gap
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(arr, axis=0)
                std = np.nanstd(arr, axis=0, ddof=1) if arr.shape[0] > 1 else None
            epochs = np.arange(1, length + 1)
            label = name if series == "loss" else f"{name} (val)"
            ax.plot(epochs, mean, style, color=colour, label=_text(label))
            if std is not None:
                ax.fill_between(epochs, mean - std, mean + std, color=colour, alpha=0.2)
            finite.append(arr[np.isfinite(arr)])
    values = np.concatenate(finite) if finite else np.array([])
    # log only where it helps: positive losses spanning more than LOG_SPAN (a narrow range
    # on a log axis reads as 3.5×10⁰, 3.6×10⁰, ...)
    if values.size and values.min() > 0 and values.max() / values.min() > LOG_SPAN:
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("loss curves (mean ± std over seeds; dashed: validation)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    return Plot("report_loss.png", _png(fig), "loss curves of every setting")


# --- BLEU by source length ----------------------------------------------------------------


def length_plot(rep: Report) -> Plot | None:
    """``report_bleu_by_length.png``: lowercased BLEU per source-length bucket, one line per
    setting (mean over its completed runs' ``bleu_by_length``); None when no run has it."""
    curves: dict[str, list[float | None]] = {}
    buckets: list[str] = []
    for g in rep.groups:
        rows = [
            r.metrics["bleu_by_length"]
            for r in g.runs
            if r.status == "completed" and isinstance(r.metrics.get("bleu_by_length"), list)
        ]
        if not rows:
            continue
        buckets = buckets or [str(b.get("range")) for b in rows[0]]
        means = []
        for i in range(len(buckets)):
            found = [as_number(run[i].get("bleu_lowercase")) for run in rows if i < len(run)]
            xs = [x for x in found if x is not None]
            means.append(sum(xs) / len(xs) if xs else None)
        name = _label(rep.swept, g.values) or g.experiment
        curves[_text(name)] = means
    if not curves:
        return None
    fig = buckets_figure(
        curves, buckets, xlabel="source sentence length (words)",
        ylabel="BLEU (lowercased, mean over seeds)", title="BLEU by source length",
    )  # fmt: skip
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return Plot("report_bleu_by_length.png", buf.getvalue(), "BLEU by source length")


# --- attention maps -------------------------------------------------------------------------


def attention_panels(rep: Report) -> list[AttentionPanel]:
    """One panel per setting, all on the same sample (same ``name`` and ``kind``).

    Per setting (seed group) the first run that saved attention (completed runs first, then by
    seed). The sample is the one most settings saved (ties: the first run's order); settings
    without it are left out rather than shown on another input.
    """
    return _attention_choice(rep)[0]


def attention_gaps(rep: Report) -> list[tuple[str, str]]:
    """``(setting, why)`` for each setting without a panel in :func:`attention_panels`:
    ``decoder=none`` (a model without attention), no completed run, no ``attention.json``,
    another sample only, or more settings than :data:`MAX_PANELS`."""
    return _attention_choice(rep)[1]


def _setting(rep: Report, g: Group, run: Run) -> str:
    setting = _label(rep.swept, g.values) or rep.folder(run)
    return f"{g.experiment}: {setting}" if rep.several_experiments else setting


def _attention_choice(rep: Report) -> tuple[list[AttentionPanel], list[tuple[str, str]]]:
    chosen: list[tuple[str, Run, list[AttentionSample]]] = []
    gaps: list[tuple[str, str]] = []
    for g in rep.groups:
        runs = sorted(g.runs, key=lambda r: (r.status != "completed", sort_key(r.seed)))
        found = next(((r, s) for r in runs if (s := read_attention(r.path))), None)
        if found is not None:
            chosen.append((_setting(rep, g, found[0]), *found))
        elif any(str(r.metrics.get("decoder", r.config.get("decoder"))) == "none" for r in runs):
            gaps.append((_setting(rep, g, runs[0]), "decoder=none: a model without attention"))
        elif not any(r.status == "completed" for r in runs):
            statuses = ", ".join(sorted({r.status for r in runs}))
            gaps.append((_setting(rep, g, runs[0]), f"no completed run ({statuses})"))
        else:
            gaps.append((_setting(rep, g, runs[0]), "its runs saved no attention.json"))
    if not chosen:
        return [], gaps
    held: dict[tuple[str, str], int] = {}
    for _, _, samples in chosen:
        for key in dict.fromkeys((s.name, s.kind) for s in samples):
            held[key] = held.get(key, 0) + 1
    order = [(s.name, s.kind) for s in chosen[0][2]]
    best = max(held, key=lambda k: (held[k], -order.index(k) if k in order else -len(order)))
    panels: list[AttentionPanel] = []
    for setting, run, samples in chosen:
        sample = next((s for s in samples if (s.name, s.kind) == best), None)
        if sample is None:
            gaps.append((setting, f"no {best[1]} attention of sample {best[0]!r} saved"))
        elif len(panels) >= MAX_PANELS:
            gaps.append((setting, f"not drawn: at most {MAX_PANELS} panels"))
        else:
            panels.append(AttentionPanel(setting, run, sample))
    return panels, gaps


def _ticks(ax_set, labels: Sequence[str], **kwargs) -> None:
    """All labels when they fit, else every k-th (a 50-point kernel map stays readable)."""
    step = max(1, math.ceil(len(labels) / MAX_TICKS))
    pos = list(range(0, len(labels), step))
    ax_set(pos, [_text(_short(labels[i])) for i in pos], **kwargs)


def _short(label: str) -> str:
    return label if len(label) <= MAX_TICK_CHARS else label[: MAX_TICK_CHARS - 1] + "…"


def plot_attention_grid(
    panels: Sequence[tuple[str, np.ndarray, Sequence[str], Sequence[str]]],
    axes_names: tuple[str, str] = ("query", "key"),
    suptitle: str | None = None,
) -> bytes:
    """Attention maps side by side as PNG bytes, one per ``(title, matrix, rows, columns)``.

    ``matrix`` is ``len(rows) × len(columns)``; all panels share one colour scale (0 to the
    largest weight) so the maps compare directly. Up to :data:`PANELS_PER_ROW` per row.
    """
    n = len(panels)
    if n == 0:
        raise ValueError("no attention panels to draw")
    maps = [np.asarray(m, dtype=float) for _, m, _, _ in panels]
    vmax = max(float(np.nanmax(m)) if m.size else 1.0 for m in maps) or 1.0
    n_cols = max(len(c) for _, _, _, c in panels)
    n_rows = max(len(r) for _, _, r, _ in panels)
    width = min(7.0, max(3.2, 0.35 * n_cols + 1.4))
    height = min(7.0, max(3.0, 0.35 * n_rows + 2.0))
    cols = min(n, PANELS_PER_ROW)
    rows = math.ceil(n / cols)
    same_rows = all(list(r) == list(panels[0][2]) for _, _, r, _ in panels)
    fig, axes = plt.subplots(
        rows, cols, figsize=(width * cols, height * rows), squeeze=False, layout="constrained"
    )
    im = None
    for k, (ax, (title, _, row_labels, col_labels), m) in enumerate(
        zip(axes.flat, panels, maps, strict=False)
    ):
        im = ax.imshow(m, cmap=ATTENTION_CMAP, vmin=0.0, vmax=vmax, aspect="auto")
        _ticks(ax.set_xticks, col_labels, rotation=60, ha="right", fontsize="small")
        # one set of row labels per figure row when every panel has the same rows
        _ticks(
            ax.set_yticks,
            row_labels if k % cols == 0 or not same_rows else [""] * len(row_labels),
            fontsize="small",
        )
        ax.set_title(_text(title), fontsize="medium")
        ax.set_xlabel(axes_names[1])
        if k % cols == 0:
            ax.set_ylabel(axes_names[0])
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    assert im is not None  # n >= 1 panels were drawn
    fig.colorbar(im, ax=list(axes.flat[:n]), shrink=0.8, label="attention weight")
    if suptitle:
        fig.suptitle(_text(suptitle))
    return _png(fig)


def attention_plot(rep: Report) -> Plot | None:
    """``report_attention.png`` from :func:`attention_panels` (settings without a panel in its
    ``gaps``); None when no run saved attention."""
    panels, gaps = _attention_choice(rep)
    if not panels:
        return None
    first = panels[0].sample
    if first.focus is not None:
        names = ("layer, head", f"key (row of {first.queries[first.focus]!r})")
    else:
        names = AXES.get(first.kind, ("query", "key"))
    grid = [(p.setting, *p.sample.panel()) for p in panels]
    suptitle = f"attention: {first.kind} sample {first.name!r}"
    png = plot_attention_grid(grid, names, suptitle=suptitle)
    caption = f"the {first.kind} attention of sample {first.name!r}, one panel per setting"
    if gaps:
        caption += " that has it (the others are listed below)"
    return Plot("report_attention.png", png, caption, panels, gaps)


def rollout_plot(rep: Report) -> Plot | None:
    """``report_rollout.png``: each run's first ``encoder_rollout`` sample (attention rollout,
    Abnar & Zuidema 2020), one panel per run that saved one; None when none did."""
    grid = []
    for r in rep.runs:
        sample = next((s for s in read_attention(r.path) if s.kind == "encoder_rollout"), None)
        if sample is not None:
            grid.append((rep.folder(r), *sample.panel()))
    if not grid:
        return None
    grid = grid[:MAX_PANELS]
    png = plot_attention_grid(grid, AXES["encoder_rollout"], suptitle="encoder attention rollout")
    caption = "attention rollout of the encoder (Abnar & Zuidema 2020), one panel per run"
    return Plot("report_rollout.png", png, caption)
