"""``head_importance.png`` and ``pruning.png`` of an ablation (and of a sweep, in the report).

Figures are built with :class:`matplotlib.figure.Figure` (no pyplot state) and written atomically
through :func:`attnrun.viz.heatmaps.save_figure`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from attnrun.viz import ATTENTION_CMAP
from attnrun.viz.heatmaps import save_figure

__all__ = [
    "head_grids",
    "importance_figure",
    "plot_head_importance",
    "plot_pruning",
    "png_bytes",
    "pruning_figure",
]


def head_grids(record: Mapping[str, Any]) -> dict[str, dict[str, np.ndarray]]:
    """kind → ``{"effect": (L, H), "importance": (L, H)}`` from an ``ablation.json`` record:
    the removal effect is the chosen metric's loss (positive: worse without the head)."""
    metric = record["metric"]
    sign = 1.0 if metric in record.get("lower_is_better", []) else -1.0
    grids: dict[str, dict[str, np.ndarray]] = {}
    by_kind: dict[str, list] = {}
    for r in record["heads"]:
        by_kind.setdefault(r["kind"], []).append(r)
    for kind, rows in by_kind.items():
        shape = (max(r["layer"] for r in rows) + 1, max(r["head"] for r in rows) + 1)
        effect, importance = np.full(shape, np.nan), np.full(shape, np.nan)
        for r in rows:
            effect[r["layer"], r["head"]] = sign * r["deltas"].get(metric, np.nan)
            if r.get("importance") is not None:
                importance[r["layer"], r["head"]] = r["importance"]
        grids[kind] = {"effect": effect, "importance": importance}
    return grids


#: Colour maps of the importance grid: the removal effect is signed (a removal can help), so a
#: diverging map centred on 0; gradient importance is >= 0, so the attention heatmaps' map.
EFFECT_CMAP = "RdBu_r"


def _limits(grids: Mapping[str, Mapping[str, np.ndarray]], key: str) -> tuple[float, float]:
    """One colour scale for every kind's grid of ``key``, so the kinds compare at a glance."""
    values = np.concatenate([np.ravel(g[key]) for g in grids.values()])
    values = values[np.isfinite(values)]
    top = float(np.abs(values).max()) if values.size else 0.0
    top = top or 1.0  # all zero: still a scale, every cell at its middle (effect) or bottom
    return (-top, top) if key == "effect" else (0.0, top)


def importance_figure(record: Mapping[str, Any], title: str = "") -> Figure:
    """Per kind (rows): removal effect and gradient importance (columns), layer × head, each
    column on one colour scale across kinds."""
    grids = head_grids(record)
    fig = Figure(figsize=(8.5, 2.4 * len(grids) + 0.6), constrained_layout=True)
    axes = fig.subplots(len(grids), 2, squeeze=False)
    metric = record["metric"]
    panels = (("effect", f"{metric} lost when removed"), ("importance", "gradient importance"))
    limits = {key: _limits(grids, key) for key, _ in panels}
    for row, (kind, g) in enumerate(grids.items()):
        for col, (key, label) in enumerate(panels):
            ax, m = axes[row][col], g[key]
            lo, hi = limits[key]
            cmap = EFFECT_CMAP if key == "effect" else ATTENTION_CMAP
            im = ax.imshow(m, cmap=cmap, vmin=lo, vmax=hi, aspect="auto")
            for (i, j), v in np.ndenumerate(m):
                if np.isfinite(v):
                    v = v + 0.0  # -0.0 → 0.0: no "-0" label
                    dark = abs(v) > 0.6 * hi  # white text on the darkest cells
                    colour = "white" if dark else "black"
                    ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=7, color=colour)
            ax.set_xticks(range(m.shape[1]), [f"H{h + 1}" for h in range(m.shape[1])])
            ax.set_yticks(range(m.shape[0]), [f"L{i + 1}" for i in range(m.shape[0])])
            ax.set_title(f"{kind}: {label}", fontsize=9)
            fig.colorbar(im, ax=ax, shrink=0.8, label="lost" if key == "effect" else "$I_h$")
    rho = record.get("spearman_importance_effect")
    rho_text = "n/a" if rho is None else f"{rho:.2f}"
    fig.suptitle(
        f"{title}{' — ' if title else ''}{record['mode']} ablation on {record['split']} "
        f"({record['examples']} examples); Spearman ρ(importance, effect) = {rho_text}",
        fontsize=9,
    )
    return fig


def plot_head_importance(record: Mapping[str, Any], path: Path) -> Path:
    save_figure(importance_figure(record), path)
    return path


def plot_pruning(records: Mapping[str, Mapping[str, Any]], path: Path) -> Path:
    save_figure(pruning_figure(records), path)
    return path


def pruning_figure(records: Mapping[str, Mapping[str, Any]]) -> Figure:
    """The metric against the share of heads removed: by rising importance (solid) and random
    orders (dashed mean, shaded range), one colour per run (a sweep overlays them)."""
    fig = Figure(figsize=(6.4, 4.2), constrained_layout=True)
    ax = fig.subplots()
    metric = None
    for i, (name, rec) in enumerate(records.items()):
        p = rec.get("pruning")
        if not p:
            continue
        metric = rec["metric"]
        n = max(p["counts"]) or 1
        x = np.asarray(p["counts"]) / n
        color = f"C{i % 10}"
        ax.plot(x, p["importance"], "-o", color=color, ms=3, label=f"{name}: by importance")
        if p["random"]:
            r = np.asarray(p["random"], dtype=float)
            ax.plot(x, r.mean(0), "--", color=color, label=f"{name}: random (mean, range)")
            ax.fill_between(x, r.min(0), r.max(0), color=color, alpha=0.15)
    ax.set_xlabel("share of heads removed")
    ax.set_ylabel(metric or "metric")
    ax.set_title("Pruning heads (Michel et al. 2019): least important first vs random")
    ax.legend(fontsize=7)
    return fig


def png_bytes(fig: Figure) -> bytes:
    """``fig`` as PNG bytes (the report inlines them)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()
