"""Find run folders and read them into :class:`Run` records for reports and listings.

A run folder is any folder holding both ``metrics.json`` and ``config.yaml`` (single runs under
``outputs/``, sweep jobs under ``multirun/<sweep>/<job>/``). Reading never raises on a damaged
run: a missing, partial or non-object ``metrics.json`` gives a run with status ``unreadable``, so
one bad folder never takes a whole report down.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from attnrun.errors import AttnrunError
from attnrun.runs.files import CONFIG, METRICS
from attnrun.runs.record import _META_KEYS, read_metrics

UNREADABLE = "unreadable"
RUN_FILES = (METRICS, CONFIG)


@dataclass
class Run:
    """One run folder: its flattened config, its metrics and what to call it."""

    path: Path
    config: dict[str, Any]  # dotted keys -> leaf values ("data.n_train": 50)
    metrics: dict[str, Any]  # empty when unreadable
    status: str

    @property
    def experiment(self) -> str:
        return str(self.metrics.get("experiment") or "?")

    @property
    def seed(self) -> Any:
        return self.metrics.get("seed", self.config.get("seed"))

    @property
    def started(self) -> datetime:
        """When the run began: ``started_at`` if readable, else the folder's modification time."""
        raw = self.metrics.get("started_at")
        if isinstance(raw, str):
            try:
                return datetime.fromisoformat(raw).astimezone()
            except ValueError:
                pass
        return datetime.fromtimestamp(self.path.stat().st_mtime).astimezone()

    def metric(self, name: str) -> float | None:
        """``name`` as a finite float, or None when missing, non-numeric or non-finite."""
        return as_number(self.metrics.get(name))


def as_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def is_run_dir(path: Path) -> bool:
    return all((path / name).is_file() for name in RUN_FILES)


def find_run_dirs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Every run folder under ``paths`` (recursively, hidden folders skipped), without repeats.

    Raises :class:`AttnrunError` if a path does not exist.
    """
    found: dict[Path, None] = {}
    for p in map(Path, paths):
        if not p.exists():
            raise AttnrunError(f"{p}: no such folder")
        if not p.is_dir():
            raise AttnrunError(f"{p}: not a folder")
        for root, dirs, _files in os.walk(p):
            # .hydra, .submitit and temporary folders hold no runs
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            here = Path(root)
            if is_run_dir(here):
                found.setdefault(here.resolve(), None)
    return list(found)


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists become their JSON text so they compare."""
    if isinstance(tree, Mapping):
        out: dict[str, Any] = {}
        for k, v in tree.items():
            out.update(flatten(v, f"{prefix}{k}."))
        if not tree and prefix:
            out[prefix[:-1]] = "{}"
        return out
    if isinstance(tree, (list, tuple)):
        return {prefix[:-1]: json.dumps(tree, default=str)}
    return {prefix[:-1]: tree}


def load_run(path: str | os.PathLike) -> Run:
    """Read one run folder; never raises for damaged files."""
    path = Path(path)
    try:
        config = yaml.safe_load((path / CONFIG).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        config = {}
    config = flatten(config) if isinstance(config, Mapping) else {}
    metrics = read_metrics(path)
    if not isinstance(metrics, dict) or not isinstance(metrics.get("status"), str):
        return Run(path, config, {}, UNREADABLE)
    return Run(path, config, metrics, metrics["status"])


def collect(paths: Iterable[str | os.PathLike]) -> list[Run]:
    """All runs under ``paths``; raises :class:`AttnrunError` when a path is missing or empty."""
    paths = list(paths)
    dirs = find_run_dirs(paths)
    if not dirs:
        where = ", ".join(str(p) for p in paths)
        raise AttnrunError(f"no runs under {where} (a run folder has metrics.json and config.yaml)")
    return [load_run(d) for d in dirs]


def swept_keys(runs: list[Run]) -> list[str]:
    """Config keys whose values differ between runs of one experiment (``seed`` excluded).

    Runs of different experiments have different configs; a key one experiment lacks is not
    "swept", so each experiment's runs are compared among themselves. In config order.
    """
    keys: dict[str, None] = {}
    for r in runs:
        keys.update(dict.fromkeys(r.config))
    by_exp: dict[Any, list[Run]] = {}
    for r in runs:
        by_exp.setdefault(r.experiment, []).append(r)

    def varies(k: str) -> bool:
        return any(len({_hashable(r.config.get(k)) for r in g}) > 1 for g in by_exp.values())

    return [k for k in keys if k != "seed" and varies(k)]


def _hashable(v: Any) -> Any:
    return json.dumps(v, sort_keys=True, default=str) if isinstance(v, (dict, list)) else v


def key_metrics(runs: list[Run]) -> list[str]:
    """The headline metrics of the runs' experiments, in registry order.

    Each experiment's ``key_metrics`` from the experiments registry that at least one of its runs
    has (all of them when none has any); for an experiment the registry
    does not know (or when it cannot be imported), every numeric top-level metric of its runs.
    """
    registry = _registry()
    names: dict[str, None] = {}
    for exp in dict.fromkeys(r.experiment for r in runs):
        declared = registry.get(exp)
        if declared:  # those some run has (translate's coref_* only on the coref corpus)
            present = [
                k for k in declared if any(k in r.metrics for r in runs if r.experiment == exp)
            ]
            names.update(dict.fromkeys(present or declared))
            continue
        for r in runs:
            if r.experiment == exp:
                names.update(
                    dict.fromkeys(
                        k
                        for k, v in r.metrics.items()
                        if k not in _META_KEYS and as_number(v) is not None
                    )
                )
    return list(names)


@functools.lru_cache(maxsize=1)
def _registry() -> dict[str, tuple[str, ...]]:
    """experiment name -> key_metrics, from the experiments registry."""
    from attnrun.experiments import experiments  # imports torch: only when a report needs it

    return {name: tuple(exp.key_metrics) for name, exp in experiments.items()}
