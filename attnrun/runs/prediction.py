"""What a predictor returns, and opening a completed run for it (``attnrun predict``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnrun.errors import DataError
from attnrun.runs.files import METRICS, read_json


@dataclass
class Prediction:
    """What a predictor produced: lines for the terminal, the files it wrote, and warnings
    (one line each, for stderr: e.g. a sentence's words the model never saw)."""

    lines: list[str]
    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def completed_metrics(run_dir: str | Path) -> dict[str, Any]:
    """``metrics.json`` of a completed run; a missing folder or unfinished run is a DataError."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: no such run folder")
    metrics = read_json(run_dir / METRICS, f"missing; is {run_dir} an attnrun run folder?")
    status = metrics.get("status")
    if status != "completed":
        raise DataError(f"{run_dir}: the run is {status or 'of unknown status'}, not completed")
    return metrics
