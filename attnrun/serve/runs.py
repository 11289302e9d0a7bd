"""The runs a server holds: every completed run folder under the paths, loaded once, read-only.

A :class:`ServedRun` wraps one run folder and the engine of its experiment
(:mod:`attnrun.serve.engines`); :func:`load_runs` finds the folders (as ``attnrun runs`` does),
loads each through the loaders ``attnrun predict`` uses, and names those it cannot load. Nothing
here writes a file except :meth:`ServedRun.save`, which is ``attnrun predict``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from attnrun.core.heads import intervene
from attnrun.errors import AttnrunError, DataError
from attnrun.serve.requests import PredictRequest

__all__ = ["ServedRun", "load_runs"]

# -- the runs -----------------------------------------------------------------------------------


@dataclass
class ServedRun:
    """One loaded run: ``id`` (``r1``, ``r2``, ... in path order), its folder and its engine."""

    id: str
    path: Path
    experiment: str
    engine: Any
    metrics: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    ablation: dict[str, Any] | None = None

    def describe(self) -> dict[str, Any]:
        """What ``GET /api/runs`` says about the run."""
        kinds = self.engine.describe()
        return {
            "id": self.id,
            "path": str(self.path),
            "name": self.path.name,
            "experiment": self.experiment,
            "settings": self.settings,
            "metrics": self.metrics,
            "ablation": self.ablation,
            **kinds,
        }

    def predict(self, req: PredictRequest) -> dict[str, Any]:
        """The answer to one request (run it off the event loop: it runs the model)."""
        return {"run": self.id, "experiment": self.experiment, **self.engine.predict(req)}

    def save(self, req: PredictRequest) -> Path:
        """``attnrun predict`` on the request's text, with its heads off: a new
        ``predictions/DATE/TIME`` folder as ``predict`` writes it (plus ``ablation.json`` naming
        the heads switched off, when there are)."""
        from attnrun.io import write_json
        from attnrun.predictors import predict

        options = {k: v for k, v in self.engine.save_options(req).items() if v is not None}
        self.engine.predict(req)  # the same checks as the page's request, before any folder
        iv = self.engine.switch.interventions(req.heads) if self.engine.switch else None
        with intervene(iv):
            _, out_dir = predict(self.path, req.text.strip(), **options)
        if req.heads:
            write_json(
                out_dir / "ablation.json",
                {"ablate": [{"kind": h.kind, "layer": h.layer, "head": h.head} for h in req.heads],
                 "attention_off": "uniform" if iv and iv.weights else "removed"},
            )  # fmt: skip
        return out_dir


def ablation_summary(run_dir: Path) -> dict[str, Any] | None:
    """What the head toggles show of the run's newest ``attnrun ablate`` (None without one):
    ``{"folder", "split", "mode", "metric", "intact", "lower_is_better", "heads"}``, each head
    ``{"kind", "layer", "head", "delta", "importance"}`` (0-based as ``attention.json`` and the
    toggles; ``delta`` = the metric with the head removed − intact)."""
    from attnrun.runs import files

    latest = files.latest_ablation(run_dir)
    if latest is None:
        return None
    folder, record = latest
    metric = record.get("metric")
    heads = []
    for h in record.get("heads") or []:
        deltas = h.get("deltas") if isinstance(h, dict) else None
        delta = deltas.get(metric) if isinstance(deltas, dict) else None
        if not (_number(delta) and isinstance(h.get("kind"), str)):
            continue
        if not all(isinstance(h.get(k), int) for k in ("layer", "head")):
            continue
        importance = h.get("importance")
        heads.append({
            "kind": h["kind"], "layer": h["layer"], "head": h["head"], "delta": delta,
            "importance": importance if _number(importance) else None,
        })  # fmt: skip
    intact = record.get("intact")
    intact = intact.get(metric) if isinstance(intact, dict) else None
    return {
        "folder": str(folder.relative_to(run_dir)),
        "split": record.get("split"),
        "mode": record.get("mode"),
        "metric": metric,
        "intact": intact if _number(intact) else None,
        "lower_is_better": metric in (record.get("lower_is_better") or []),
        "heads": heads,
    }


def _engine(run_dir: Path, metrics: dict[str, Any], device: torch.device) -> Any:
    from attnrun.serve.engines import RegressEngine, SelfAttnEngine, TranslateEngine

    name = metrics.get("experiment")
    if name == "translate":
        return TranslateEngine(run_dir, device)
    if name == "selfattn":
        return SelfAttnEngine(run_dir, device, metrics)
    if name == "regress":
        return RegressEngine(run_dir, metrics)
    raise DataError(f"{run_dir}: serve cannot show a {name!r} run")


def load_runs(
    paths: Sequence[str | Path], device: torch.device
) -> tuple[list[ServedRun], list[str]]:
    """Every completed run folder under ``paths`` loaded read-only, and one line per folder that
    could not be (``"<folder>: <why>"``). An unknown path is an :class:`AttnrunError`."""
    from attnrun.report.collect import find_run_dirs, key_metrics, load_run, swept_keys
    from attnrun.runs.prediction import completed_metrics

    runs: list[ServedRun] = []
    skipped: list[str] = []
    records = []
    for run_dir in sorted(find_run_dirs(paths)):
        try:
            metrics = completed_metrics(run_dir)
            engine = _engine(run_dir, metrics, device)
        except AttnrunError as e:
            skipped.append(str(e) if str(run_dir) in str(e) else f"{run_dir}: {e}")
            continue
        record = load_run(run_dir)
        run = ServedRun(f"r{len(runs) + 1}", run_dir, record.experiment, engine)
        run.ablation = ablation_summary(run_dir)
        runs.append(run)
        records.append(record)
    swept = swept_keys(records)
    for run, record in zip(runs, records):
        names = key_metrics([record])
        run.metrics = {k: record.metrics[k] for k in names if _number(record.metrics.get(k))}
        shown = [
            k
            for k in swept
            if k in record.config and k.split(".")[0] in _SWEPT_SHOWN and k not in _SHOWN_BY_ENGINES
        ]
        run.settings = {**run.engine.settings, **{k: record.config[k] for k in shown[:4]}}
    return runs, skipped


#: Config sections whose swept values name a run beside its engine's settings (a sweep over
#: ``score`` or ``model.num_heads``; not data sizes or training lengths).
_SWEPT_SHOWN = {"score", "decoder", "kernel", "pooling", "bandwidth", "model", "attention"}
#: Config keys the engines' own settings already show (as ``model``, ``layers``, ``heads``, ...).
_SHOWN_BY_ENGINES = {
    "decoder", "score", "kernel", "pooling", "model.arch", "model.num_layers", "model.num_heads",
    "model.score", "model.positional",
}  # fmt: skip


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
