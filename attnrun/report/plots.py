"""Comparison plots of a report, written atomically as ``report_*.png``.

* ``report_metric_<metric>.png``: each key metric against each swept value, mean ± std over seeds;
* ``report_loss.png``: loss curves of all runs overlaid (mean and ± std band over seeds), read
  from each run's ``history.json`` (``{"loss": [...], "val_loss": [...], ...}``, one number per
  epoch), or from a ``loss.csv`` with a header row when there is no ``history.json``;
* ``report_attention.png``: the same sample sentence's attention map side by side, one panel per
  setting (e.g. per score function), read from ``attention*.json`` / ``attention*.pt`` files in the
  run folders (format in :func:`load_attention`).

Nothing here reads a model: plots come from files the runs wrote.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from attnrun.io import save_with  # noqa: E402
from attnrun.report.collect import Run, as_number  # noqa: E402
from attnrun.report.table import Group, Report, fmt, sort_key  # noqa: E402

MAX_SERIES = 8  # more settings than this on one axis are pooled into one series
MAX_PANELS = 8  # attention maps side by side
TRAIN_LOSS_NAMES = ("loss", "train_loss")  # the training curve in history.json, first found


def draw_all(rep: Report, out_dir: str | os.PathLike) -> list[Path]:
    """Every plot the runs support; returns the files written."""
    out_dir = Path(out_dir)
    written = plot_metrics(rep, out_dir)
    for p in (
        plot_losses(rep, out_dir / "report_loss.png"),
        plot_attention(rep, out_dir / "report_attention.png"),
    ):
        if p is not None:
            written.append(p)
    return written


def _save(fig: plt.Figure, path: Path) -> Path:
    try:
        save_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    finally:
        plt.close(fig)
    return path


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


def plot_metrics(rep: Report, out_dir: Path) -> list[Path]:
    """One figure per key metric, one panel per swept key (x: its values, y: mean ± std)."""
    if not rep.swept:
        return []
    written = []
    for metric in rep.metrics:
        if not any(r.metric(metric) is not None for r in rep.runs):
            continue
        n = len(rep.swept)
        cols = min(n, 3)
        rows = math.ceil(n / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.6 * rows), squeeze=False)
        for ax, key in zip(axes.flat, rep.swept, strict=False):
            _metric_panel(ax, rep, metric, key)
        for ax in list(axes.flat)[n:]:
            ax.set_visible(False)
        fig.suptitle(f"{metric} (mean ± std over seeds)")
        with warnings.catch_warnings():  # crowded panels: a looser layout is fine
            warnings.simplefilter("ignore", UserWarning)
            fig.tight_layout()
        written.append(_save(fig, out_dir / f"report_metric_{_slug(metric)}.png"))
    return written


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
    width = 0.6 / max(len(lines), 1)
    for k, (rest, pts) in enumerate(lines.items()):
        pts = sorted(pts, key=lambda p: sort_key(p[0]))
        stats = [(_stats(runs, metric), v) for v, runs in pts]
        stats = [(s, v) for s, v in stats if s is not None]
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
        if pooled:
            label = "all other settings pooled"
        else:
            label = (
                _label(["experiment", *others], rest)
                if rep.several_experiments
                else (_label(others, rest[1:]) or None)
            )
        ax.errorbar(
            x, y, yerr=e, marker="o", capsize=4, linestyle="-" if numeric else "none", label=label
        )
    if not numeric:
        ax.set_xticks(range(len(cats)), cats, rotation=30 if len(cats) > 4 else 0)
        ax.set_xlim(-0.5, len(cats) - 0.5)
    ax.set_xlabel(key)
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[1]:
        ax.legend(fontsize="x-small")


def _num_or_str(s: str) -> Any:
    try:
        return float(s)
    except ValueError:
        return s


# --- loss curves ----------------------------------------------------------------------------


def load_history(run_dir: str | os.PathLike) -> dict[str, list[float]] | None:
    """Per-epoch series of a run: ``history.json`` if present, else ``loss.csv``; None if neither.

    ``history.json`` is ``{"loss": [...], "val_loss": [...], <any other name>: [...]}`` with one
    number per epoch (null for a missing value); a list of per-epoch records
    (``[{"epoch": 1, "train_loss": ..., "val_loss": ...}, ...]``) is read too. ``loss.csv`` has a
    header row. An ``epoch`` or ``step`` column is the x axis and dropped; every other column is a
    series.
    """
    run_dir = Path(run_dir)
    try:
        raw = json.loads((run_dir / "history.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raw = None
    if isinstance(raw, list) and raw and all(isinstance(r, dict) for r in raw):
        raw = _columns(raw)
    if isinstance(raw, dict):
        out = {
            k: [_float(x) for x in v]
            for k, v in raw.items()
            if isinstance(v, list) and v and k not in ("epoch", "step")
        }
        return out or None
    try:
        with open(run_dir / "loss.csv", encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, csv.Error, UnicodeDecodeError):
        return None
    if not rows:
        return None
    return _columns(rows) or None


def _columns(records: list[dict]) -> dict[str, list[float]]:
    """Records (one mapping per epoch) to one list per name, epoch/step dropped."""
    names = dict.fromkeys(k for r in records for k in r if k and k not in ("epoch", "step"))
    return {n: [_float(r.get(n)) for r in records] for n in names}


def _float(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def plot_losses(rep: Report, path: Path) -> Path | None:
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
    positive = True
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
            mean = np.nanmean(arr, axis=0)
            epochs = np.arange(1, length + 1)
            label = name if series == "loss" else f"{name} (val)"
            ax.plot(epochs, mean, style, color=colour, label=label)
            if arr.shape[0] > 1:
                std = np.nanstd(arr, axis=0, ddof=1)
                ax.fill_between(epochs, mean - std, mean + std, color=colour, alpha=0.2)
            positive &= bool(np.all(arr[np.isfinite(arr)] > 0))
    if positive:
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("loss curves (mean ± std over seeds; dashed: validation)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(fig, path)


# --- attention maps -------------------------------------------------------------------------


@dataclass
class AttentionSample:
    """One sentence's attention: ``weights[i][j]`` = weight of source token j for target token i."""

    src_tokens: list[str]
    tgt_tokens: list[str]
    weights: np.ndarray  # (len(tgt_tokens), len(src_tokens))


def load_attention(run_dir: str | os.PathLike) -> list[AttentionSample]:
    """The attention samples a run saved; empty when it saved none or they cannot be read.

    Reads ``attention*.json`` and ``attention*.pt`` in the run folder, each holding one sample or a
    list of them (bare, or under ``"samples"``). A sample is a mapping with ``src_tokens`` (or
    ``src`` / ``source``), ``tgt_tokens`` (or ``tgt`` / ``target``) and ``weights``: at least
    ``len(tgt) x len(src)`` numbers (rows and columns beyond the tokens, padding, are cropped).
    This is the hook for the translate experiment: whatever it writes in that shape is plotted.
    """
    run_dir = Path(run_dir)
    samples: list[AttentionSample] = []
    for f in sorted(run_dir.glob("attention*")):
        try:
            if f.suffix == ".json":
                raw = json.loads(f.read_text(encoding="utf-8"))
            elif f.suffix == ".pt":
                import torch

                raw = torch.load(f, map_location="cpu", weights_only=True)
            else:
                continue
        except Exception:  # a damaged artefact only loses its own plot
            continue
        if isinstance(raw, dict) and "samples" in raw:
            raw = raw["samples"]
        for item in raw if isinstance(raw, list) else [raw]:
            s = _sample(item)
            if s is not None:
                samples.append(s)
    return samples


def _sample(item: Any) -> AttentionSample | None:
    if not isinstance(item, dict):
        return None
    src = next((item[k] for k in ("src_tokens", "src", "source") if k in item), None)
    tgt = next((item[k] for k in ("tgt_tokens", "tgt", "target") if k in item), None)
    w = item.get("weights")
    if not isinstance(src, list) or not isinstance(tgt, list) or w is None:
        return None
    try:
        w = np.asarray(w.tolist() if hasattr(w, "tolist") else w, dtype=float)
    except (TypeError, ValueError):
        return None
    # decoders may keep padded rows/columns beyond the tokens: crop them, refuse too-small maps
    if w.ndim != 2 or w.shape[0] < len(tgt) or w.shape[1] < len(src) or not src or not tgt:
        return None
    w = w[: len(tgt), : len(src)]
    return AttentionSample([str(t) for t in src], [str(t) for t in tgt], w)


def plot_attention_grid(
    path: str | os.PathLike,
    panels: Sequence[tuple[str, Sequence[str], Sequence[str], Any]],
    suptitle: str | None = None,
) -> Path:
    """Attention maps side by side, one panel per ``(title, src_tokens, tgt_tokens, weights)``.

    ``weights`` is ``len(tgt_tokens) x len(src_tokens)``; all panels share one colour scale
    (0 to the largest weight) so the maps compare directly.
    """
    n = len(panels)
    if n == 0:
        raise ValueError("no attention panels to draw")
    maps = [np.asarray(w, dtype=float) for _, _, _, w in panels]
    vmax = max(float(np.nanmax(m)) if m.size else 1.0 for m in maps) or 1.0
    width = max(3.2, 0.35 * max(len(s) for _, s, _, _ in panels) + 1.2)
    height = max(3.0, 0.35 * max(len(t) for _, _, t, _ in panels) + 1.2)
    same_tgt = all(list(t) == list(panels[0][2]) for _, _, t, _ in panels)
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False, layout="constrained")
    im = None
    for k, (ax, (title, src, tgt, _), m) in enumerate(zip(axes[0], panels, maps, strict=True)):
        im = ax.imshow(m, cmap="viridis", vmin=0.0, vmax=vmax, aspect="auto")
        ax.set_xticks(range(len(src)), list(src), rotation=60, ha="right", fontsize="small")
        # one set of target labels when every panel has the same target sentence
        labels = list(tgt) if k == 0 or not same_tgt else []
        ax.set_yticks(range(len(tgt)), labels, fontsize="small")
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel("source")
    axes[0][0].set_ylabel("target")
    fig.colorbar(im, ax=list(axes[0]), shrink=0.8, label="attention weight")
    if suptitle:
        fig.suptitle(suptitle)
    return _save(fig, Path(path))


def plot_attention(rep: Report, path: Path) -> Path | None:
    """One panel per setting (first seed that saved attention), all on the same sentence."""
    chosen: list[tuple[str, list[AttentionSample]]] = []
    for g in rep.groups:
        for r in sorted(g.runs, key=lambda r: (r.status != "completed", sort_key(r.seed))):
            samples = load_attention(r.path)
            if samples:
                title = _label(rep.swept, g.values) or rep.folder(r)
                if rep.several_experiments:
                    title = f"{g.experiment}: {title}"
                chosen.append((title, samples))
                break
    if not chosen:
        return None
    chosen = chosen[:MAX_PANELS]
    # the first sentence every chosen run has, so the panels differ only by the setting
    common = set.intersection(*({tuple(s.src_tokens) for s in ss} for _, ss in chosen))
    first = next((tuple(s.src_tokens) for s in chosen[0][1] if tuple(s.src_tokens) in common), None)
    panels = []
    for title, samples in chosen:
        s = next((s for s in samples if tuple(s.src_tokens) == first), samples[0])
        panels.append((title, s.src_tokens, s.tgt_tokens, s.weights))
    note = "same source sentence" if first is not None else "first saved sentence of each run"
    return plot_attention_grid(path, panels, suptitle=f"attention maps ({note})")
