"""The run record: ``metrics.json`` and ``config.yaml`` in every run folder.

``metrics.json`` is rewritten atomically at each change of state, so at any moment it holds a
complete JSON document: ``status`` (running / completed / failed / interrupted), the experiment,
seed, device, wall times, library versions, the error if any, and the experiment's metrics as
top-level keys.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from attnrun import __version__
from attnrun.io import write_json, write_text
from attnrun.runs.files import CONFIG, METRICS

STATUSES = ("running", "completed", "failed", "interrupted")
_META_KEYS = (
    "status",
    "experiment",
    "seed",
    "device",
    "started_at",
    "finished_at",
    "wall_time_s",
    "versions",
    "host",
    "pid",
    "threads",
    "resumed_at",
    "resumed_from",
    "error",
)

#: Figures that measure the clock, not the computation: they differ between a resumed run and an
#: uninterrupted one (everything else in metrics.json and history.json is equal).
WALL_TIME_KEYS = frozenset(
    {"train_tokens_per_s", "train_seconds", "train_time_s", "tokens_per_s", "seconds"}
)


def comparable(metrics: dict[str, Any]) -> dict[str, Any]:
    """An experiment's own metrics without run meta data and wall-time figures: what a resumed
    run and an uninterrupted one with the same seed must agree on."""
    return {k: v for k, v in metrics.items() if k not in _META_KEYS and k not in WALL_TIME_KEYS}


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries that decide a run's numbers."""
    import hydra
    import numpy
    import omegaconf
    import torch

    return {
        "attnrun": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "hydra": hydra.__version__,
        "omegaconf": omegaconf.__version__,
    }


def _now() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


class RunRecord:
    """Keeps ``out_dir/metrics.json`` up to date over a run's life."""

    def __init__(
        self,
        out_dir: Path,
        experiment: str,
        seed: int,
        device: str,
        resumed_from: dict[str, int] | None = None,
    ) -> None:
        """``resumed_from`` (``{"epoch", "step"}``) continues the record of a resumed run: the
        first start time is kept and the position is appended to ``resumed_from``."""
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / METRICS
        self._t0 = time.perf_counter()
        previous = read_metrics(self.out_dir) if resumed_from is not None else None
        self.data: dict[str, Any] = {
            "status": "running",
            "experiment": experiment,
            "seed": seed,
            "device": device,
            "started_at": _now(),
            "finished_at": None,
            "wall_time_s": None,
            "versions": library_versions(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        if resumed_from is not None:
            previous = previous or {}
            self.data["started_at"] = previous.get("started_at", self.data["started_at"])
            self.data["resumed_at"] = [*previous.get("resumed_at", []), _now()]
            self.data["resumed_from"] = [*previous.get("resumed_from", []), dict(resumed_from)]

    def start(self, config_yaml: str) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        write_text(self.out_dir / CONFIG, config_yaml)
        self._write()

    def update(self, **metrics: Any) -> None:
        """Merge intermediate metrics (still ``running``)."""
        self.data.update(metrics)
        self._write()

    def finish(self, status: str, metrics: dict[str, Any] | None = None, error: str | None = None):
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        if metrics:
            clash = set(metrics) & set(_META_KEYS)
            if clash:
                raise ValueError(f"metrics may not use reserved keys {sorted(clash)}")
            self.data.update(metrics)
        self.data["status"] = status
        self.data["finished_at"] = _now()
        self.data["wall_time_s"] = round(time.perf_counter() - self._t0, 3)
        if error is not None:
            self.data["error"] = error
        else:
            self.data.pop("error", None)
        self._write()

    def _write(self) -> None:
        write_json(self.path, self.data)


def read_metrics(run_dir: str | Path) -> dict[str, Any] | None:
    """``metrics.json`` of a run folder, or None if missing or unreadable."""
    try:
        return json.loads((Path(run_dir) / METRICS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
