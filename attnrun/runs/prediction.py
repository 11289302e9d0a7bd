"""What a predictor returns, and opening a completed run for it (``attnrun predict``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnrun.errors import DataError
from attnrun.runs.files import METRICS


@dataclass
class Prediction:
    """What a predictor produced: lines for the terminal and the files it wrote."""

    lines: list[str]
    files: list[Path] = field(default_factory=list)


def completed_metrics(run_dir: str | Path) -> dict[str, Any]:
    """``metrics.json`` of a completed run; a missing folder or unfinished run is a DataError."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: no such run folder")
    path = run_dir / METRICS
    if not path.is_file():
        raise DataError(f"{path}: missing; is {run_dir} an attnrun run folder?")
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: unreadable ({e})") from None
    if not isinstance(metrics, dict):
        raise DataError(f"{path}: expected a JSON object")
    status = metrics.get("status")
    if status != "completed":
        raise DataError(f"{run_dir}: the run is {status or 'of unknown status'}, not completed")
    return metrics
