"""``attnrun predict``: run a trained model from a run folder on the user's input.

Each experiment that can predict names its predictor where it is registered
(``@experiment(..., predictor=fn)``, ``fn(run_dir, text, out_dir, metrics) -> Prediction``); the
experiments registry is the only list. :func:`predict` checks the run folder, picks the predictor
of the run's ``experiment`` and gives it a new folder ``RUN_DIR/predictions/YYYY-MM-DD/HH-MM-SS``
(never one that exists) for its files.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from attnrun.errors import DataError
from attnrun.experiments import experiments
from attnrun.runs import reserve_run_dir
from attnrun.runs.prediction import Prediction, completed_metrics

__all__ = ["Prediction", "predict", "predicting_experiments"]


def predicting_experiments() -> list[str]:
    """Names of the experiments that have a predictor, in registry order."""
    return [name for name, exp in experiments.items() if exp.predictor is not None]


def predict(
    run_dir: str | Path, text: str, *, strict: bool = False, **options: Any
) -> tuple[Prediction, Path]:
    """Dispatch on the run's ``experiment`` and run its predictor; returns the prediction and
    the new folder holding its files. ``strict``: words the model never saw are an error (the
    predictors that otherwise read them as ``<unk>``); ``options`` go to the predictor
    (translate: ``beam``); a failed prediction leaves no folder."""
    run_dir = Path(run_dir)
    metrics = completed_metrics(run_dir)
    name = metrics.get("experiment")
    exp = dict(experiments.items()).get(name)
    if exp is None or exp.predictor is None:
        raise DataError(
            f"{run_dir}: cannot predict with a {name!r} run; predict supports "
            f"{', '.join(predicting_experiments()) or 'no experiment yet'}"
        )
    out_dir = reserve_run_dir(run_dir / "predictions")
    try:
        return exp.predictor(run_dir, text, out_dir, metrics, strict=strict, **options), out_dir
    except BaseException:
        # only folders the predictor left empty: its own, the day's, predictions/
        for folder in (out_dir, out_dir.parent, out_dir.parent.parent):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
