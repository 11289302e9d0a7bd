"""Per-epoch curves (loss, validation scores) with matplotlib's object API, saved through
:func:`attnrun.viz.heatmaps.save_figure`: the loss-curve half of the plotting layer every
experiment calls."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = ["buckets_figure", "curves_figure"]

_STYLES = ("o-", "s--", "^-", "v:", "d-.")


def curves_figure(
    series: Mapping[str, Sequence[float | None]],
    *,
    right: Mapping[str, Sequence[float | None]] | None = None,
    x: Sequence[float] | None = None,
    xlabel: str = "epoch",
    ylabel: str = "loss",
    right_label: str = "",
    title: str = "",
    log: bool = False,
    right_from_zero: bool = False,
) -> Figure:
    """One line per named series on the left axis and, optionally, more on a right axis.

    ``x`` defaults to ``1..n``; ``None`` values leave gaps; ``log`` puts the left axis on a log
    scale (only when every value is positive); ``right_from_zero`` starts the right axis at 0
    (a score such as BLEU, whose line would otherwise seem to climb from the floor). The legend
    stands below the axes, where it cannot cover a line.
    """
    fig = Figure(figsize=(6.0, 3.8), layout="constrained")
    ax = fig.subplots()
    handles = []
    for k, (name, ys) in enumerate(series.items()):
        xs = list(x) if x is not None else list(range(1, len(ys) + 1))
        vals = [float("nan") if v is None else float(v) for v in ys]
        handles += ax.plot(xs, vals, _STYLES[k % len(_STYLES)], label=name, ms=4)
    values = [float(v) for ys in series.values() for v in ys if v is not None]
    if log and values and min(values) > 0:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if x is None or all(float(v).is_integer() for v in x):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if right:
        ax2 = ax.twinx()
        for k, (name, ys) in enumerate(right.items()):
            xs = list(x) if x is not None else list(range(1, len(ys) + 1))
            vals = [float("nan") if v is None else float(v) for v in ys]
            handles += ax2.plot(xs, vals, "^-", color=f"C{len(series) + k}", label=name, ms=4)
        ax2.set_ylabel(right_label)
        if right_from_zero:
            ax2.set_ylim(bottom=0)
    _legend_below(fig, handles)
    if title:
        ax.set_title(title)
    return fig


def buckets_figure(
    curves: Mapping[str, Sequence[float | None]],
    buckets: Sequence[str],
    *,
    xlabel: str = "",
    ylabel: str = "",
    title: str = "",
) -> Figure:
    """One line per named series over categorical ``buckets`` (e.g. length ranges with counts);
    ``None`` values leave gaps; the y axis starts at 0."""
    fig = Figure(figsize=(6.0, 3.8), layout="constrained")
    ax = fig.subplots()
    for k, (name, ys) in enumerate(curves.items()):
        vals = [float("nan") if v is None else float(v) for v in ys]
        ax.plot(range(len(vals)), vals, _STYLES[k % len(_STYLES)], label=name, ms=5)
    ax.set_xticks(range(len(buckets)), list(buckets))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    if curves:
        _legend_below(fig, ax.get_lines())
    if title:
        ax.set_title(title)
    return fig


def _legend_below(fig: Figure, handles) -> None:
    """The figure's legend under the axes (constrained layout makes room), never over a line."""
    handles = list(handles)
    fig.legend(
        handles=handles, loc="outside lower center", ncols=min(len(handles), 3), fontsize="small"
    )
