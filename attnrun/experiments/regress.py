"""``regress``: Nadaraya-Watson kernel regression as attention pooling (d2l 10.2).

Queries are test inputs, keys are training inputs, values are training targets; the attention
weights come from a kernel of the query-key distance (Nadaraya 1964, Watson 1964). Three poolings:
``average`` (uniform weights), ``nonparametric`` (fixed kernel and bandwidth) and ``parametric``
(a learnable inverse bandwidth ``w``, trained as the book does; ``h = 1/|w|``; a checkpoint at the
end of every epoch makes the run resumable).

Artefacts: ``predictions.png``, ``attention.png`` and ``attention.json`` (the same subsampled
query × key matrix, :func:`attnrun.runs.files.write_attention`), ``predictions.csv``,
``train.csv``, ``metrics.json`` (``test_mse``, ``bandwidth``, ``undefined_predictions``,
``loo_mse`` for a CSV, ...), and for ``parametric`` also ``loss.png``, ``history.json``,
``model.pt`` (``model_sha256``) and ``checkpoint.pt``.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from attnrun.averaging import check_average
from attnrun.errors import DataError
from attnrun.experiments.base import BaseConfig, RunContext, experiment
from attnrun.io import atomic_open
from attnrun.regression import plots
from attnrun.regression.bandwidth import bandwidth_rules, loo_error, resolve_bandwidth
from attnrun.regression.data import (
    DATA_SETTINGS,
    MIN_POINTS,
    RegressionData,
    functions,
    holdout_split,
    load_csv,
    make_synthetic,
)
from attnrun.regression.kernels import kernels
from attnrun.regression.models import PoolingResult, optimizers, poolings
from attnrun.regression.nadaraya_watson import attention_weights
from attnrun.runs import files
from attnrun.validation import one_of, require


@dataclass
class RegressDataConfig:
    """Generated data (the book's by default) or a user CSV with header ``x,y``.

    ``n_train``, ``noise``, ``x_min``, ``x_max``, ``test_step`` left ``None`` take the generating
    function's own defaults (:class:`attnrun.regression.data.SyntheticFunction`: ``sin_pow`` 50
    points on [0, 5) with noise 0.5, ``x_plus_sin`` 100 points on [0, 10) with noise 1); an
    explicit value wins. :meth:`settings` gives the values used.
    """

    function: str = "sin_pow"
    n_train: int | None = None
    noise: float | None = None
    x_min: float | None = None
    x_max: float | None = None
    test_step: float | None = None
    path: str | None = None
    test_fraction: float = 0.2  # CSV only; 0 = fit and score on every point (in-sample)

    def __post_init__(self) -> None:
        require(0 <= self.test_fraction < 1, "data.test_fraction", self.test_fraction, "[0, 1)")
        if self.path is not None:
            if not Path(self.path).expanduser().is_file():
                raise DataError(f"data.path={self.path}: file not found")
            return
        one_of("data.function", self.function, functions)
        d = self.settings()
        require(d["n_train"] >= MIN_POINTS, "data.n_train", d["n_train"], f">= {MIN_POINTS} points")
        noise = d["noise"]
        require(math.isfinite(noise) and noise >= 0, "data.noise", noise, "a finite number >= 0")
        for key in ("x_min", "x_max"):
            require(math.isfinite(d[key]), f"data.{key}", d[key], "finite")
        require(d["x_max"] > d["x_min"], "data.x_max", d["x_max"], f"> data.x_min={d['x_min']}")
        step = d["test_step"]
        require(math.isfinite(step) and step > 0, "data.test_step", step, "> 0")

    def settings(self) -> dict[str, float | int]:
        """The generated data's settings: the ones given, the function's defaults for the rest.

        Resolved here, never written back: a typed config built from the dataclass defaults must
        keep ``None`` so that ``data.function=x_plus_sin`` alone still gets x_plus_sin's."""
        given = {k: getattr(self, k) for k in DATA_SETTINGS}
        return functions.get(self.function).settings(**given)


@dataclass
class RegressTrainConfig:
    """Training of the ``parametric`` pooling (the book: SGD, lr 0.5, 5 epochs), and threads.

    ``threads``: torch CPU threads for the whole run, applied by the run frame
    (:func:`attnrun.device.cpu_threads`); ``0`` = every core the process may use. No path of
    regress is measurably faster on one thread on an idle machine (figures in
    :mod:`attnrun.regression.nadaraya_watson`); on cores that other jobs keep busy, ``1`` is.
    """

    optimizer: str = "sgd"
    lr: float = 0.5
    epochs: int = 5
    threads: int = 0
    average: str = "none"  # weight averaging (attnrun.averaging): refused here, see RegressConfig

    def __post_init__(self) -> None:
        one_of("train.optimizer", self.optimizer, optimizers)
        require(self.epochs >= 0, "train.epochs", self.epochs, ">= 0")
        require(math.isfinite(self.lr) and self.lr > 0, "train.lr", self.lr, "a finite number > 0")
        require(self.threads >= 0, "train.threads", self.threads, ">= 0 (0 = every core)")


@dataclass
class RegressPlotConfig:
    max_heatmap_points: int = 200

    def __post_init__(self) -> None:
        m = self.max_heatmap_points
        require(m >= 2, "plot.max_heatmap_points", m, ">= 2")


@dataclass
class RegressConfig(BaseConfig):
    """``attnrun regress`` settings; ``configs/regress.yaml`` holds the same defaults in YAML
    (``tests/test_configs.py::test_yaml_defaults_agree_with_the_dataclass`` checks they agree).
    """

    kernel: str = "gaussian"
    pooling: str = "nonparametric"
    bandwidth: str = "1.0"
    data: RegressDataConfig = field(default_factory=RegressDataConfig)
    train: RegressTrainConfig = field(default_factory=RegressTrainConfig)
    plot: RegressPlotConfig = field(default_factory=RegressPlotConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        one_of("kernel", self.kernel, kernels)
        one_of("pooling", self.pooling, poolings)
        if self.pooling == "parametric":
            trainable = [k for k in kernels.names() if _has_gradient(k)]
            require(
                self.kernel in trainable,
                "kernel",
                self.kernel,
                "with pooling=parametric a kernel whose weight changes inside its support, "
                f"so that its bandwidth can be learned: {', '.join(trainable)}",
            )
        _check_bandwidth_spec(self.bandwidth)
        # weight averaging: average and nonparametric pooling train nothing; parametric learns
        # one bandwidth in a few full-batch steps, where averaging iterates buys nothing
        reason = (
            "pooling=parametric learns one bandwidth in full-batch steps; weight averaging is "
            "for translate and selfattn"
            if self.pooling == "parametric"
            else f"pooling={self.pooling} does not train"
        )
        check_average(self.train.average, trains=False, why=reason)


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
    allowed = f"a positive number or a rule: {', '.join(bandwidth_rules.names())}"
    try:
        value = float(text)
    except ValueError:
        require(text.lower() in bandwidth_rules, "bandwidth", text, allowed)
        return
    require(math.isfinite(value) and value > 0, "bandwidth", text, allowed)


# ---------------------------------------------------------------------------------------------
# the run, as named steps
# ---------------------------------------------------------------------------------------------


@experiment(
    "regress",
    RegressConfig,
    key_metrics=("test_mse", "bandwidth"),
    help="Nadaraya-Watson kernel regression as attention pooling (d2l 10.2).",
    objectives={"test_mse": "minimize"},
)
def run(cfg: RegressConfig, out_dir: Path, ctx: RunContext) -> dict[str, Any]:
    data = _load(cfg, ctx.generator)
    ctx.reporter.info(
        f"regress: {cfg.pooling} pooling, {cfg.kernel} kernel, {data.x_train.numel()} training / "
        f"{data.x_test.numel()} test points"
    )
    result = _pool(cfg, data, ctx)
    metrics = _metrics(cfg, data, result)
    if metrics["undefined_predictions"]:
        ctx.reporter.line(
            f"warning: {metrics['undefined_predictions']} test points have no training point "
            f"within the {cfg.kernel} kernel's reach (bandwidth {result.bandwidth:.4g}); they are "
            "NaN and left out of test_mse"
        )
    if result.model is not None:
        metrics["model_sha256"] = files.save_weights(out_dir, result.model)
        files.write_history(out_dir, {"loss": result.losses})
    _write_tables(out_dir, cfg, data, result.y_pred)
    _write_figures(out_dir, cfg, data, result)
    return metrics


def _load(cfg: RegressConfig, generator: torch.Generator) -> RegressionData:
    d = cfg.data
    if d.path is not None:
        x, y = load_csv(Path(d.path).expanduser())
        return holdout_split(x, y, d.test_fraction, generator=generator)
    s = d.settings()
    return make_synthetic(
        d.function, generator=generator, n_train=int(s["n_train"]), noise=s["noise"],
        x_min=s["x_min"], x_max=s["x_max"], test_step=s["test_step"],
    )  # fmt: skip


def _pool(cfg: RegressConfig, data: RegressionData, ctx: RunContext) -> PoolingResult:
    """Run the pooling: resolve a bandwidth rule, or train (resumably) the parametric one."""
    pooling = poolings.get(cfg.pooling)
    options: dict[str, Any] = {"kernel": cfg.kernel, "generator": ctx.generator}
    if cfg.pooling == "nonparametric":
        options["bandwidth"] = resolve_bandwidth(
            cfg.bandwidth, data.x_train, data.y_train, cfg.kernel
        )
    if cfg.pooling != "parametric":
        return pooling(data.x_train, data.y_train, data.x_test, **options)
    t = cfg.train
    options.update(epochs=t.epochs, lr=t.lr, optimizer=t.optimizer, checkpoint=ctx.checkpoint)
    with ctx.reporter.task("train", t.epochs) as task:
        options["callback"] = lambda epoch, loss, model: task.advance(1, loss=loss)
        return pooling(data.x_train, data.y_train, data.x_test, **options)


def _metrics(cfg: RegressConfig, data: RegressionData, result: PoolingResult) -> dict[str, Any]:
    """``test_mse`` over the defined predictions, and for a CSV the exact ``loo_mse``."""
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
        "mse_against": _mse_against(cfg),
    }
    if cfg.data.path is not None:
        metrics["loo_mse"] = _loo_mse(cfg, data, result)
    if result.losses:
        metrics["final_train_loss"] = result.losses[-1]
    return metrics


def _mse_against(cfg: RegressConfig) -> str:
    if cfg.data.path is None:
        return "noiseless truth"
    if cfg.data.test_fraction == 0:
        return "training observations (in-sample)"
    return "held-out observations"


def _loo_mse(cfg: RegressConfig, data: RegressionData, result: PoolingResult) -> float:
    """Exact leave-one-out MSE on the training points at the run's bandwidth (Härdle 1990 §5.1;
    :func:`~attnrun.regression.bandwidth.loo_error`); for ``average`` pooling the mean of the
    other points, ``y_i - mean_{-i} = n/(n-1) (y_i - mean)``. ``inf`` when some point has no
    other point within a compact kernel's reach; NaN for fewer than 3 points or ``h = inf``."""
    x, y = data.x_train.double(), data.y_train.double()
    n = x.numel()
    if cfg.pooling == "average":
        return float(((n / (n - 1) * (y - y.mean())) ** 2).mean())
    h = result.bandwidth
    if n < 3 or h is None or not math.isfinite(h):
        return math.nan
    return loo_error(x, y, cfg.kernel, h)


def _write_tables(out_dir: Path, cfg: RegressConfig, data: RegressionData, y_pred) -> None:
    """``predictions.csv`` (NaN where undefined) and ``train.csv``."""
    truth = {
        "noiseless truth": "y_true",
        "held-out observations": "y_heldout",
        "training observations (in-sample)": "y_observed",
    }[_mse_against(cfg)]
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


def _write_figures(
    out_dir: Path, cfg: RegressConfig, data: RegressionData, result: PoolingResult
) -> None:
    """``predictions.png``, ``attention.png`` with ``attention.json`` (one matrix), ``loss.png``."""
    title = f"{cfg.pooling} pooling, {cfg.kernel} kernel"
    if result.bandwidth is not None:
        title += f", h = {result.bandwidth:.3g}"
    plots.plot_predictions(
        out_dir / "predictions.png",
        data.x_train,
        data.y_train,
        data.x_test,
        result.y_pred.detach().float().cpu(),
        data.y_test,
        title=title,
        truth_label={"noiseless truth": "truth", "held-out observations": "held-out"}.get(
            _mse_against(cfg), "observed"
        ),
    )
    weights, xq, xk = heatmap(cfg, data, result)
    plots.plot_attention(out_dir / "attention.png", weights, xq, xk, title=title)
    sample = files.AttentionSample(
        name="test grid",
        kind="kernel",
        queries=files.number_labels(xq.tolist()),
        keys=files.number_labels(xk.tolist()),
        weights=files.weights_array(weights),
        title=title,
    )
    files.write_attention(out_dir, [sample])
    if result.losses:
        plots.plot_loss(
            out_dir / "loss.png",
            result.losses,
            ylabel="sum of squared errors",
            title=f"parametric pooling, {cfg.kernel} kernel",
        )


def heatmap(
    cfg: RegressConfig, data: RegressionData, result: PoolingResult
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(weights (rows, cols), x_query (rows,), x_key (cols,))`` of ``attention.png`` and
    ``attention.json``, at most ``plot.max_heatmap_points`` a side.

    Rows: an even subsample of the (sorted) test points, each row exact over all training points.
    Columns: when there are more training points than that, contiguous runs of sorted training
    inputs are summed, so a cell is the attention mass on that run (rows still sum to one).
    A query with no key in a compact kernel's reach (an undefined prediction) is a row of zeros.
    """
    m = cfg.plot.max_heatmap_points
    xq, xk = data.x_test, data.x_train
    rows = torch.linspace(0, xq.numel() - 1, min(m, xq.numel())).round().long().unique()
    if result.weights is not None:
        w = result.weights.detach().float().cpu()[rows]
    elif cfg.pooling == "parametric":
        assert result.model is not None  # the parametric pooling returns its model
        with torch.no_grad():
            _, w = result.model(xq[rows], xk, data.y_train)
    elif cfg.pooling == "nonparametric":
        assert result.bandwidth is not None  # the nonparametric pooling returns its bandwidth
        w = attention_weights(xq[rows], xk, cfg.kernel, result.bandwidth)
    else:
        w = torch.full((rows.numel(), xk.numel()), 1.0 / xk.numel())
    w, xq = w.float().cpu().nan_to_num(0.0), xq[rows]
    if xk.numel() > m:
        edges = torch.linspace(0, xk.numel(), m + 1).round().long()
        w = torch.stack([w[:, a:b].sum(1) for a, b in zip(edges[:-1], edges[1:])], dim=1)
        xk = torch.stack([xk[a:b].mean() for a, b in zip(edges[:-1], edges[1:])])
    return w, xq, xk
