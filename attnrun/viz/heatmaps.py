"""Grids of attention heatmaps with token labels (the layout of d2l's ``show_heatmaps``).

``heatmap_grid(matrices (rows, cols, Tq, Tk), ...)`` draws one heatmap per (row, column), e.g.
layers × heads, with one shared colour bar; :func:`save_figure` writes it atomically. Figures are
built with matplotlib's object API (no pyplot state), so plotting is safe in worker threads and
never opens a window.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from attnrun.io import save_with
from attnrun.viz import ATTENTION_CMAP

__all__ = ["heatmap_grid", "save_figure"]


def _as_array(matrices) -> np.ndarray:
    arr = matrices.detach().cpu().numpy() if hasattr(matrices, "detach") else np.asarray(matrices)
    if arr.ndim == 2:
        arr = arr[None, None]
    if arr.ndim != 4:
        raise ValueError(f"matrices must be (rows, cols, Tq, Tk) or (Tq, Tk); got {arr.shape}")
    return arr


def heatmap_grid(
    matrices,
    *,
    xlabel: str = "Keys",
    ylabel: str = "Queries",
    x_tokens: Sequence[str] | None = None,
    y_tokens: Sequence[str] | None = None,
    row_titles: Sequence[str] | None = None,
    col_titles: Sequence[str] | None = None,
    title: str | None = None,
    cmap: str = ATTENTION_CMAP,
    cell_size: float = 0.22,
    vmin: float | None = 0.0,
    vmax: float | None = None,
    colorbar_label: str = "attention weight",
) -> Figure:
    """A grid of heatmaps sharing one colour scale and one colour bar.

    Args:
        matrices: ``(rows, cols, Tq, Tk)`` (tensor or array), or a single ``(Tq, Tk)``.
        xlabel, ylabel: axis labels of the bottom row / left column.
        x_tokens, y_tokens: tick labels for the ``Tk`` columns / ``Tq`` rows of each map; without
            them the axes show indices.
        row_titles: one label per grid row (e.g. layer names), shown on the left.
        col_titles: one title per grid column (e.g. ``head 1``), shown on top.
        title: the figure title.
        cmap: a matplotlib colour map (:data:`attnrun.viz.ATTENTION_CMAP` for weights).
        cell_size: inches per matrix cell, so token labels stay legible for long sentences.
        vmin, vmax: the shared colour range (``vmax=None``: the largest value).
        colorbar_label: what the colours measure, written along the colour bar.
    """
    arr = _as_array(matrices)
    rows, cols, tq, tk = arr.shape
    label_room = 1.2 if (x_tokens is not None or y_tokens is not None) else 0.5
    panel_w = max(1.6, tk * cell_size) + label_room
    panel_h = max(1.6, tq * cell_size) + label_room
    fig = Figure(
        figsize=(cols * panel_w + 1.0, rows * panel_h + (0.6 if title else 0.2)),
        layout="constrained",
    )
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    top = float(np.nanmax(arr)) if vmax is None else vmax
    image = None
    for r in range(rows):
        for c in range(cols):
            ax = axes[r, c]
            image = ax.imshow(arr[r, c], cmap=cmap, vmin=vmin, vmax=top, aspect="equal")
            if x_tokens is not None:
                ax.set_xticks(range(tk), list(x_tokens), rotation=90, fontsize=7)
            if y_tokens is not None:
                ax.set_yticks(range(tq), list(y_tokens), fontsize=7)
            if r == rows - 1:
                ax.set_xlabel(xlabel)
            if c == 0:
                ax.set_ylabel(f"{row_titles[r]}\n{ylabel}" if row_titles else ylabel)
            if r == 0 and col_titles:
                ax.set_title(col_titles[c], fontsize=9)
    if title:
        fig.suptitle(title)
    assert image is not None  # at least one panel was drawn
    fig.colorbar(image, ax=axes, shrink=min(0.8, 0.3 + 0.15 * rows), label=colorbar_label)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 120) -> None:
    """Write ``fig`` as PNG atomically (``attnrun.io.save_with``)."""
    save_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight"))
