"""``attnrun predict``: run a trained model from a run folder on the user's input.

Each experiment that can predict registers a predictor under its own name (the ``experiment``
field of ``metrics.json``)::

    @predictors.register("selfattn")
    def predict_selfattn(run_dir, text, out_dir, metrics) -> Prediction: ...

:func:`predict` checks the run folder, picks the predictor and gives it a new folder
``RUN_DIR/predictions/YYYY-MM-DD/HH-MM-SS`` (never one that exists) for its files.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnrun.errors import DataError
from attnrun.registry import Registry
from attnrun.runs import reserve_run_dir


@dataclass
class Prediction:
    """What a predictor produced: lines for the terminal and the files it wrote."""

    lines: list[str]
    files: list[Path] = field(default_factory=list)


Predictor = Callable[[Path, str, Path, dict[str, Any]], Prediction]
predictors: Registry[Predictor] = Registry("predictor")


def open_run(run_dir: str | Path) -> dict[str, Any]:
    """``metrics.json`` of a completed run; a missing folder or unfinished run is a DataError."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: no such run folder")
    path = run_dir / "metrics.json"
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


def predict(run_dir: str | Path, text: str) -> tuple[Prediction, Path]:
    """Dispatch on the run's ``experiment`` and run its predictor; returns the prediction and
    the new folder holding its files."""
    import attnrun.experiments  # noqa: F401  (experiment modules register their predictors)

    run_dir = Path(run_dir)
    metrics = open_run(run_dir)
    name = metrics.get("experiment")
    if name not in predictors:
        raise DataError(
            f"{run_dir}: cannot predict with a {name!r} run; predict supports "
            f"{', '.join(predictors.names()) or 'no experiment yet'}"
        )
    out_dir = reserve_run_dir(run_dir / "predictions")
    try:
        return predictors.get(name)(run_dir, text, out_dir, metrics), out_dir
    except BaseException:
        with contextlib.suppress(OSError):
            out_dir.rmdir()  # only if the predictor failed before writing anything
        raise
