"""``regress``: Nadaraya-Watson kernel regression as attention pooling (d2l 10.2).

Queries are test inputs, keys are training inputs, values are training targets; the attention
weights come from a kernel of the query-key distance (Nadaraya 1964, Watson 1964). Three poolings:
``average`` (uniform weights), ``nonparametric`` (fixed kernel and bandwidth) and ``parametric``
(a learnable inverse bandwidth ``w``, trained as the book does; ``h = 1/|w|``).

Artefacts: ``predictions.png``, ``attention.png``, ``loss.png`` (trained runs), ``predictions.csv``,
``train.csv``, ``history.json`` (trained runs) and ``metrics.json`` (``test_mse``,
``bandwidth``, ...).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from attnrun.errors import ConfigError, DataError
from attnrun.experiments.base import BaseConfig, RunContext, experiment
from attnrun.io import atomic_open, write_json
from attnrun.regression import plots
from attnrun.regression.bandwidth import bandwidth_rules, resolve_bandwidth
from attnrun.regression.data import (
    MIN_POINTS,
    RegressionData,
    functions,
    holdout_split,
    load_csv,
    make_synthetic,
)
from attnrun.regression.kernels import kernels
from attnrun.regression.models import optimizers, poolings
from attnrun.regression.nadaraya_watson import attention_weights


@dataclass
class RegressDataConfig:
    """Generated data (the book's by default) or a user CSV with header ``x,y``."""

    function: str = "sin_pow"
    n_train: int = 50
    noise: float = 0.5
    x_min: float = 0.0
    x_max: float = 5.0
    test_step: float = 0.1
    path: str | None = None
    test_fraction: float = 0.2


@dataclass
class RegressTrainConfig:
    """Training of the ``parametric`` pooling (the book: SGD, lr 0.5, 5 epochs)."""

    optimizer: str = "sgd"
    lr: float = 0.5
    epochs: int = 5


@dataclass
class RegressPlotConfig:
    max_heatmap_points: int = 200


@dataclass
class RegressConfig(BaseConfig):
    """``attnrun regress`` settings; see ``configs/regress.yaml`` for the defaults in YAML."""

    kernel: str = "gaussian"
    pooling: str = "nonparametric"
    bandwidth: str = "1.0"
    data: RegressDataConfig = field(default_factory=RegressDataConfig)
    train: RegressTrainConfig = field(default_factory=RegressTrainConfig)
    plot: RegressPlotConfig = field(default_factory=RegressPlotConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        kernels.get(self.kernel)
        poolings.get(self.pooling)
        if self.pooling == "parametric" and not _has_gradient(self.kernel):
            trainable = [k for k in kernels.names() if _has_gradient(k)]
            raise ConfigError(
                f"kernel={self.kernel} is flat inside its support, so pooling=parametric cannot "
                f"learn its bandwidth; use one of: {', '.join(trainable)}"
            )
        _check_bandwidth_spec(self.bandwidth)
        d, t = self.data, self.train
        if d.path is None:
            functions.get(d.function)
            if d.n_train < MIN_POINTS:
                raise ConfigError(f"data.n_train={d.n_train}: need at least {MIN_POINTS} points")
            if not (math.isfinite(d.noise) and d.noise >= 0):
                raise ConfigError(f"data.noise={d.noise}: must be a finite number >= 0")
            if not (math.isfinite(d.x_min) and math.isfinite(d.x_max) and d.x_max > d.x_min):
                raise ConfigError(f"data.x_min={d.x_min}, data.x_max={d.x_max}: need x_min < x_max")
            if not (math.isfinite(d.test_step) and d.test_step > 0):
                raise ConfigError(f"data.test_step={d.test_step}: must be > 0")
        else:
            p = Path(d.path).expanduser()
            if not p.is_file():
                raise DataError(f"data.path={d.path}: file not found")
        if not (0 < d.test_fraction < 1):
            raise ConfigError(f"data.test_fraction={d.test_fraction}: must lie in (0, 1)")
        optimizers.get(t.optimizer)
        if t.epochs < 0:
            raise ConfigError(f"train.epochs={t.epochs}: must be >= 0")
        if not (math.isfinite(t.lr) and t.lr > 0):
            raise ConfigError(f"train.lr={t.lr}: must be a finite number > 0")
        if self.plot.max_heatmap_points < 2:
            raise ConfigError(
                f"plot.max_heatmap_points={self.plot.max_heatmap_points}: must be >= 2"
            )


def _has_gradient(kernel: str) -> bool:
    """Whether K(u) changes with u inside its support (a learnable bandwidth needs it)."""
    u = torch.tensor([0.2, 0.5, 0.8], requires_grad=True)
    out = kernels.get(kernel)(u).sum()
    if not out.requires_grad:
        return False
    (grad,) = torch.autograd.grad(out, u)
    return bool(grad.abs().sum() > 0)


def _check_bandwidth_spec(spec: str) -> None:
    text = str(spec).strip()
    try:
        value = float(text)
    except ValueError:
        if text.lower() not in bandwidth_rules:
            raise ConfigError(
                f"bandwidth={text!r}: not a number nor a rule; valid rules: "
                f"{', '.join(bandwidth_rules.names())}"
            ) from None
        return
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"bandwidth={text}: must be a positive number (or a rule)")


def _load(cfg: RegressConfig, generator: torch.Generator) -> RegressionData:
    d = cfg.data
    if d.path is not None:
        x, y = load_csv(Path(d.path).expanduser())
        return holdout_split(x, y, d.test_fraction, generator=generator)
    return make_synthetic(
        d.function,
        n_train=d.n_train,
        noise=d.noise,
        x_min=d.x_min,
        x_max=d.x_max,
        test_step=d.test_step,
        generator=generator,
    )


@experiment(
    "regress",
    RegressConfig,
    key_metrics=("test_mse", "bandwidth"),
    help="Nadaraya-Watson kernel regression as attention pooling (d2l 10.2).",
)
def run(cfg: RegressConfig, out_dir: Path, ctx: RunContext) -> dict[str, Any]:
    data = _load(cfg, ctx.generator)
    rep = ctx.reporter
    rep.info(
        f"regress: {cfg.pooling} pooling, {cfg.kernel} kernel, {data.x_train.numel()} training / "
        f"{data.x_test.numel()} test points"
    )
    options: dict[str, Any] = {"kernel": cfg.kernel, "generator": ctx.generator}
    if cfg.pooling == "nonparametric":
        options["bandwidth"] = resolve_bandwidth(
            cfg.bandwidth, data.x_train, data.y_train, cfg.kernel
        )
    if cfg.pooling == "parametric":
        options.update(epochs=cfg.train.epochs, lr=cfg.train.lr, optimizer=cfg.train.optimizer)
        with rep.task("train", cfg.train.epochs) as task:
            options["callback"] = lambda epoch, loss, model: task.advance(1, loss=loss)
            result = poolings.get(cfg.pooling)(data.x_train, data.y_train, data.x_test, **options)
    else:
        result = poolings.get(cfg.pooling)(data.x_train, data.y_train, data.x_test, **options)

    y_pred = result.y_pred.detach().float().cpu()
    defined = torch.isfinite(y_pred)
    err = (y_pred[defined] - data.y_test[defined]) ** 2
    metrics: dict[str, Any] = {
        "test_mse": float(err.mean()) if defined.any() else math.nan,
        "bandwidth": result.bandwidth,
        "kernel": cfg.kernel,
        "pooling": cfg.pooling,
        "n_train": int(data.x_train.numel()),
        "n_test": int(data.x_test.numel()),
        "undefined_predictions": int((~defined).sum()),
        "mse_against": "held-out observations" if cfg.data.path else "noiseless truth",
    }
    if result.losses:
        metrics["final_train_loss"] = result.losses[-1]
    if metrics["undefined_predictions"]:
        rep.line(
            f"warning: {metrics['undefined_predictions']} test points have no training point "
            "within "
            f"the {cfg.kernel} kernel's reach (bandwidth {result.bandwidth:.4g}); they are NaN and "
            "left out of test_mse"
        )

    _write_tables(out_dir, data, y_pred)
    title = f"{cfg.pooling} pooling, {cfg.kernel} kernel"
    if result.bandwidth is not None:
        title += f", h = {result.bandwidth:.3g}"
    plots.plot_predictions(
        out_dir / "predictions.png",
        data.x_train,
        data.y_train,
        data.x_test,
        y_pred,
        data.y_test,
        title=title,
        truth_label="truth" if cfg.data.path is None else "held-out",
    )
    weights, xq, xk = _heatmap(cfg, data, result)
    plots.plot_attention(out_dir / "attention.png", weights, xq, xk, title=title)
    if result.losses:
        write_json(out_dir / "history.json", {"loss": result.losses})
        plots.plot_loss(
            out_dir / "loss.png",
            result.losses,
            ylabel="sum of squared errors",
            title=f"parametric pooling, {cfg.kernel} kernel",
        )
    return metrics


def _heatmap(cfg: RegressConfig, data: RegressionData, result) -> tuple[torch.Tensor, ...]:
    """Weights for ``attention.png`` at most ``max_heatmap_points`` a side.

    Rows: an even subsample of the (sorted) test points, each row exact over all training points.
    Columns: when there are more training points than that, contiguous runs of sorted training
    inputs are summed, so a cell is the attention mass on that run (rows still sum to one).
    """
    m = cfg.plot.max_heatmap_points
    xq, xk = data.x_test, data.x_train
    rows = torch.linspace(0, xq.numel() - 1, min(m, xq.numel())).round().long().unique()
    if result.weights is not None:
        w = result.weights.detach().float().cpu()[rows]
    elif cfg.pooling == "parametric":
        with torch.no_grad():
            _, w = result.model(xq[rows], xk, data.y_train)
    elif cfg.pooling == "nonparametric":
        w = attention_weights(xq[rows], xk, cfg.kernel, result.bandwidth)
    else:
        w = torch.full((rows.numel(), xk.numel()), 1.0 / xk.numel())
    w, xq = w.float().cpu(), xq[rows]
    if xk.numel() > m:
        edges = torch.linspace(0, xk.numel(), m + 1).round().long()
        w = torch.stack([w[:, a:b].sum(1) for a, b in zip(edges[:-1], edges[1:])], dim=1)
        xk = torch.stack([xk[a:b].mean() for a, b in zip(edges[:-1], edges[1:])])
    return w, xq, xk


def _write_tables(out_dir: Path, data: RegressionData, y_pred: torch.Tensor) -> None:
    truth = "y_true" if data.name != "csv" else "y_heldout"
    with atomic_open(out_dir / "predictions.csv") as f:
        w = csv.writer(f)
        w.writerow(["x", truth, "y_pred"])
        for x, y, p in zip(data.x_test.tolist(), data.y_test.tolist(), y_pred.tolist()):
            w.writerow([f"{x:.6g}", f"{y:.6g}", f"{p:.6g}"])
    with atomic_open(out_dir / "train.csv") as f:
        w = csv.writer(f)
        w.writerow(["x", "y"])
        for x, y in zip(data.x_train.tolist(), data.y_train.tolist()):
            w.writerow([f"{x:.6g}", f"{y:.6g}"])
