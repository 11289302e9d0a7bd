"""Ablating a regress run: kernel regression's attention replaced, no heads to remove.

The run's data are drawn again from its seed (as the experiment draws them), and the test MSE is
the experiment's own (:func:`attnrun.experiments.regress._metrics`) for the run's pooling at its
bandwidth (intact: equal to the recorded ``test_mse``), with the attention weights replaced by
uniform ones (average pooling, the baseline every seed of the d2l chapter beats), and at half and
twice the bandwidth (Nadaraya 1964, Watson 1964: the bandwidth is how sharp the attention is).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from attnrun.ablate.base import AblationTarget, ExtraContext, ablators
from attnrun.core.heads import Interventions
from attnrun.experiments import regress as experiment
from attnrun.regression.models import poolings
from attnrun.runs import files
from attnrun.validation import one_of, typed_config

SPLITS = ("test",)
#: name → bandwidth factor (``None``: uniform weights, average pooling).
VARIANTS = {"uniform": None, "half_bandwidth": 0.5, "twice_bandwidth": 2.0}


class RegressTarget(AblationTarget):
    metrics = ("test_mse",)
    lower_is_better = frozenset({"test_mse"})

    def __init__(self, run_dir: Path, run_metrics: dict, split: str, limit: int | None) -> None:
        self.cfg = typed_config(experiment.RegressConfig, files.read_config(run_dir))
        gen = torch.Generator().manual_seed(int(self.cfg.seed))
        self.data = experiment._load(self.cfg, gen)
        self.bandwidth = run_metrics.get("bandwidth")
        self.run_metrics = run_metrics
        self.split, self.examples, self.sites = split, int(self.data.x_test.numel()), {}

    def mse(self, factor: float | None) -> float:
        """Test MSE with weights of bandwidth ``factor × h`` (``None``: uniform)."""
        d, cfg = self.data, self.cfg
        if factor is None or self.bandwidth is None:
            result = poolings.get("average")(d.x_train, d.y_train, d.x_test)
        else:
            result = poolings.get("nonparametric")(
                d.x_train, d.y_train, d.x_test, kernel=cfg.kernel, bandwidth=factor * self.bandwidth
            )
        return experiment._metrics(cfg, d, result)["test_mse"]

    def evaluate(self, interventions: Interventions | None) -> dict[str, float]:
        return {"test_mse": self.mse(1.0)}

    def recorded(self) -> dict[str, float]:
        return {"test_mse": self.run_metrics["test_mse"]}

    def extras(self, ctx: ExtraContext) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, factor in VARIANTS.items():
            if factor is not None and self.bandwidth is None:
                continue  # an average-pooling run has no bandwidth to change
            value = self.mse(factor)
            out[name] = {
                "test_mse": value,
                "bandwidth": None
                if factor is None or self.bandwidth is None
                else factor * self.bandwidth,
                "delta": None if math.isnan(value) else value - ctx.intact["test_mse"],
            }
        return {"replaced_weights": out}


@ablators.register("regress")
def load_regress(run_dir: Path, metrics: dict, split: str, limit: int | None) -> RegressTarget:
    one_of("--split", split, SPLITS)
    return RegressTarget(run_dir, metrics, split, limit)
