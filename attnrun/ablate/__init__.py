"""``attnrun ablate RUN``: does attention matter? Heads removed, importance measured.

:func:`ablate` opens a completed run through its experiment's loader (the same weights-only,
checksummed loading as ``attnrun predict``), checks every option *before* it creates anything,
then, in a new folder ``RUN/ablations/YYYY-MM-DD/HH-MM-SS`` (never the run's own files), runs
:func:`attnrun.ablate.engine.run_ablation` and writes

- ``ablation.json``: the intact figures, the recorded ones, one record per removed head
  (``{"kind", "layer", "head", "metrics", "deltas", "importance"}``, 0-based as
  ``attention.json``), the importance/effect rank correlation, the pruning curves and the
  experiment's sections (``replaced_weights``, ``decoder_none``, ``coref``);
- ``head_importance.png`` (removal effect and gradient importance, layer × head per kind) and
  ``pruning.png`` (the pruning curves), when the run has heads.
"""

from __future__ import annotations

import contextlib
import importlib
import shutil
from pathlib import Path
from typing import Any

from attnrun.ablate.base import AblationTarget, ablation_modes, ablators
from attnrun.ablate.engine import run_ablation
from attnrun.errors import DataError
from attnrun.runs import files
from attnrun.runs.prediction import completed_metrics
from attnrun.validation import one_of, require

__all__ = ["ablate", "ablation_modes", "ablators", "open_target"]

for _name in ("translate", "selfattn", "regress"):  # each registers its loader
    importlib.import_module(f"attnrun.ablate.{_name}")


def open_target(
    run_dir: str | Path, split: str = "test", limit: int | None = None
) -> tuple[AblationTarget, dict[str, Any]]:
    """The run on ``split`` as an :class:`AblationTarget`, and its ``metrics.json``; a running,
    failed or foreign run, a bad split or limit, or a damaged file is a one-line error."""
    run_dir = Path(run_dir)
    metrics = completed_metrics(run_dir)
    name = metrics.get("experiment")
    if name not in ablators:
        supported = ", ".join(ablators.names())
        raise DataError(f"{run_dir}: cannot ablate a {name!r} run; ablate supports {supported}")
    if limit is not None:
        require(limit >= 1, "--limit", limit, "an integer >= 1")
    return ablators.get(str(name))(run_dir, metrics, split, limit), metrics


def ablate(
    run_dir: str | Path,
    *,
    split: str = "test",
    mode: str = "zero",
    metric: str | None = None,
    limit: int | None = None,
    orders: int = 3,
    steps: int = 12,
    seed: int = 0,
    progress=None,
) -> tuple[dict[str, Any], Path]:
    """Ablate the run; returns the ``ablation.json`` record and the new folder holding it."""
    run_dir = Path(run_dir)
    one_of("--mode", mode, ablation_modes)
    require(orders >= 0, "--orders", orders, "an integer >= 0")
    require(steps >= 1, "--steps", steps, "an integer >= 1")
    target, run_metrics = open_target(run_dir, split, limit)
    metric = metric or target.metrics[0]
    one_of("--metric", metric, target.metrics)
    out_dir = files.reserve_ablation_dir(run_dir)
    try:
        record = run_ablation(
            target, mode=mode, metric=metric, orders=orders, steps=steps, seed=seed,
            run_dir=run_dir, run_metrics=run_metrics, progress=progress,
        )  # fmt: skip
        record = {"run": str(run_dir), "experiment": run_metrics.get("experiment"),
                  "limit": limit, **record}  # fmt: skip
        files.write_ablation(out_dir, record)
        write_figures(out_dir, record)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(out_dir)  # an interrupted ablation leaves no half folder
        raise
    return record, out_dir


def write_figures(out_dir: Path, record: dict[str, Any]) -> list[Path]:
    """``head_importance.png`` and ``pruning.png`` when the record has heads."""
    from attnrun.ablate.plots import plot_head_importance, plot_pruning

    written = []
    if record.get("heads"):
        written.append(plot_head_importance(record, out_dir / "head_importance.png"))
    if record.get("pruning"):
        written.append(plot_pruning({"this run": record}, out_dir / "pruning.png"))
    return written
