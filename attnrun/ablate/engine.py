"""The experiment-independent part of ``attnrun ablate``: remove each head, rank, correlate, prune.

1. intact: the target evaluated with nothing removed (equal to what the run recorded);
2. removal: every head removed on its own (``--mode zero``: its output 0, Michel et al. 2019;
   ``--mode mean``: its mean output over the split), the metrics and their differences;
3. gradient importance ``I_h = E_x |∂L(x)/∂ξ_h|`` from one pass (Michel et al. 2019, eq. 2), and
   its Spearman rank correlation with the removal effect (the metric's loss when ``h`` goes);
4. pruning curve: the metric as heads are removed cumulatively, least important first (Michel et
   al. 2019, Fig. 3), and in several random orders (mean and range);
5. the target's own extra sections (coref, RNN weight replacements, regress).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from attnrun.ablate.base import AblationTarget, ExtraContext, ablation_modes
from attnrun.core.heads import Head, Interventions

__all__ = ["harm", "pruning_counts", "run_ablation", "spearman"]

Progress = Callable[[str], None]


def harm(target: AblationTarget, metric: str, intact: float, removed: float) -> float:
    """How much worse ``metric`` got (positive: worse), whatever its direction."""
    return (removed - intact) if metric in target.lower_is_better else (intact - removed)


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation (``scipy.stats.spearmanr``: ties given their mean rank);
    ``None`` for fewer than 3 points or a constant side (no ranking to compare)."""
    if len(x) < 3 or len(x) != len(y) or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def pruning_counts(n: int, steps: int) -> list[int]:
    """Head counts at which a pruning curve is measured: 0, ..., n in at most ``steps + 1``
    evenly spaced points (every count when ``n <= steps``)."""
    if n <= steps:
        return list(range(n + 1))
    return sorted({round(i * n / steps) for i in range(steps + 1)})


def run_ablation(
    target: AblationTarget,
    *,
    mode: str,
    metric: str,
    orders: int = 3,
    steps: int = 12,
    seed: int = 0,
    run_dir: Path | None = None,
    run_metrics: dict[str, Any] | None = None,
    extras: bool = True,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Steps 1-5 of the module docstring; returns the ``ablation.json`` record (less the run's
    identity, which the caller adds). ``run_dir`` / ``run_metrics``: the run folder and its
    ``metrics.json``, for the target's extra sections (a sweep's ``decoder=none`` sibling, the
    coref head masses)."""
    say = progress or (lambda _: None)
    clock: dict[str, float] = {}
    t0 = time.perf_counter()
    intact = target.evaluate(None)
    clock["evaluation"] = time.perf_counter() - t0
    say(f"intact: {metric} {intact[metric]}")

    means = ablation_modes.get(mode)(target)
    heads = target.heads()
    t0 = time.perf_counter()
    by_head = {}
    for i, head in enumerate(heads):
        by_head[head] = target.evaluate(Interventions.remove([head], target.sites, means))
        say(f"[{i + 1}/{len(heads)}] {head.label()}: {metric} {by_head[head][metric]}")
    clock["removals"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    scores = target.importance() if heads else {}
    clock["importance"] = time.perf_counter() - t0
    importance = {h: float(scores[h.site][h.head]) for h in heads if h.site in scores}

    records = [_record(target, h, by_head[h], intact, importance.get(h)) for h in heads]
    effects = [harm(target, metric, intact[metric], by_head[h][metric]) for h in heads]
    out: dict[str, Any] = {
        "split": target.split,
        "examples": target.examples,
        "mode": mode,
        "metric": metric,
        "metric_names": list(target.metrics),
        "lower_is_better": sorted(target.lower_is_better),
        "intact": intact,
        "recorded": target.recorded(),
        "heads": records,
        "spearman_importance_effect": spearman([importance[h] for h in heads], effects)
        if len(importance) == len(heads)
        else None,
    }
    if heads and importance:
        t0 = time.perf_counter()
        out["pruning"] = pruning_curves(
            target, heads, importance, means, metric, intact[metric], orders, steps, seed
        )
        clock["pruning"] = time.perf_counter() - t0
    if extras:
        t0 = time.perf_counter()
        ctx = ExtraContext(intact, by_head, importance, means, run_dir, run_metrics or {})
        out.update(target.extras(ctx))
        clock["extras"] = time.perf_counter() - t0
    out["seconds"] = {k: round(v, 2) for k, v in clock.items()}
    return out


def _record(target, head: Head, metrics: dict, intact: dict, importance: float | None) -> dict:
    """One removed head: ``{"kind", "layer", "head", "metrics", "deltas", "importance"}``
    (0-based layer and head, as ``attention.json``; ``deltas`` = removed − intact)."""
    deltas = {
        k: round(v - intact[k], 4)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and isinstance(intact.get(k), (int, float))
    }
    return {
        "kind": head.kind,
        "layer": head.layer,
        "head": head.head,
        "label": head.label(),
        "metrics": metrics,
        "deltas": deltas,
        "importance": None if importance is None else round(importance, 6),
    }


def pruning_curves(
    target: AblationTarget,
    heads: list[Head],
    importance: dict[Head, float],
    means,
    metric: str,
    intact: float,
    orders: int,
    steps: int,
    seed: int,
) -> dict[str, Any]:
    """``metric`` with the first ``k`` heads of an order removed, for ``k`` in
    :func:`pruning_counts`: the order of rising importance (the least important go first) and
    ``orders`` random orders (seeded)."""
    counts = pruning_counts(len(heads), steps)

    def curve(order: list[Head]) -> list[float]:
        values = []
        for k in counts:
            if k == 0:
                values.append(intact)
                continue
            iv = Interventions.remove(order[:k], target.sites, means)
            values.append(target.evaluate(iv)[metric])
        return values

    by_importance = sorted(heads, key=lambda h: (importance[h], h))
    rng = random.Random(seed)
    randoms = []
    for _ in range(orders):
        order = list(heads)
        rng.shuffle(order)
        randoms.append(curve(order))
    return {
        "counts": counts,
        "order": [h.label() for h in by_importance],
        "importance": curve(by_importance),
        "random": randoms,
        "random_mean": [round(float(np.mean(c)), 4) for c in zip(*randoms)] if randoms else [],
    }
