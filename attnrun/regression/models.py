"""The three attention poolings of d2l 10.2 for 1-D regression, with a registry the CLI lists.

* ``average``: ``f(q) = 1/n sum_j y_j`` — every key gets weight ``1/n``, whatever the query.
* ``nonparametric``: Nadaraya-Watson with a fixed kernel and bandwidth ``h`` (Nadaraya 1964,
  Watson 1964): ``f(q) = sum_j softmax_j(log K((q - x_j)/h)) y_j``.
* ``parametric``: the same with a learnable scalar ``w`` in place of ``1/h`` (d2l 10.2.4):
  ``f(q) = sum_j softmax_j(log K((q - x_j) w)) y_j``, trained by full-batch gradient descent on the
  training points, each attending to all *other* training points (the self-exclusion mask; without
  it ``w -> inf`` would interpolate the noise). The learned bandwidth is ``h = 1/|w|``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from attnrun.core.masking import masked_softmax
from attnrun.device import cpu_threads
from attnrun.errors import ConfigError, TrainingError
from attnrun.registry import Registry
from attnrun.regression.kernels import Kernel, get_kernel
from attnrun.regression.nadaraya_watson import (
    attention_weights,
    check_bandwidth,
    nadaraya_watson,
    prepare_1d,
    threads_for,
)

if TYPE_CHECKING:
    from attnrun.runs.checkpoint import Checkpointer

__all__ = [
    "ParametricNW",
    "PoolingResult",
    "average_pooling",
    "nonparametric_pooling",
    "optimizers",
    "parametric_pooling",
    "poolings",
    "train_parametric",
]

_WEIGHTS_LIMIT = 4_000_000  # dense weights kept for the heatmap only below this many entries


@dataclass
class PoolingResult:
    """What a pooling returns to the experiment.

    Attributes:
        y_pred: ``(n_test,)`` predictions at the test inputs.
        weights: ``(n_test, n_train)`` attention weights, or ``None`` when the matrix would be
            larger than 4e6 entries.
        bandwidth: the bandwidth used (``1/|w|`` for ``parametric``; ``None`` for ``average``).
        losses: training loss per epoch (``parametric`` only).
        model: the trained :class:`ParametricNW` (``parametric`` only).
    """

    y_pred: Tensor
    weights: Tensor | None
    bandwidth: float | None = None
    losses: list[float] = field(default_factory=list)
    model: nn.Module | None = None


#: name -> pooling(x_train, y_train, x_test, **options) -> PoolingResult
poolings: Registry[Callable[..., PoolingResult]] = Registry("pooling")

#: name -> optimizer class ``(params, lr=...)`` for :func:`train_parametric`.
optimizers: Registry[Callable[..., torch.optim.Optimizer]] = Registry("optimizer")
optimizers.register("sgd")(torch.optim.SGD)
optimizers.register("adam")(torch.optim.Adam)


@poolings.register("average")
def average_pooling(x_train: Tensor, y_train: Tensor, x_test: Tensor, **_: object) -> PoolingResult:
    """Average pooling: every test point predicts ``mean(y_train)``; weights are all ``1/n``."""
    x_train, y_train = prepare_1d(x_train, "x_train"), prepare_1d(y_train, "y_train")
    x_test = prepare_1d(x_test, "x_test")
    n, m = x_train.numel(), x_test.numel()
    pred = y_train.mean().expand(m).clone()
    weights = torch.full((m, n), 1.0 / n, dtype=y_train.dtype) if n * m <= _WEIGHTS_LIMIT else None
    return PoolingResult(pred, weights)


@poolings.register("nonparametric")
def nonparametric_pooling(
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor,
    *,
    kernel: str | Kernel = "gaussian",
    bandwidth: float = 1.0,
    **_: object,
) -> PoolingResult:
    """Nadaraya-Watson with a fixed kernel and bandwidth (see :func:`nadaraya_watson`)."""
    h = check_bandwidth(bandwidth)
    pred = nadaraya_watson(x_test, x_train, y_train, kernel, h)
    assert isinstance(pred, Tensor)  # without return_weights: the predictions alone
    n, m = prepare_1d(x_train, "x_train").numel(), prepare_1d(x_test, "x_test").numel()
    weights = attention_weights(x_test, x_train, kernel, h) if n * m <= _WEIGHTS_LIMIT else None
    return PoolingResult(pred, weights, bandwidth=h)


class ParametricNW(nn.Module):
    """Nadaraya-Watson with a learnable inverse bandwidth ``w`` (d2l 10.2.4).

    ``scores_ij = log K((q_i - x_j) w)``, ``alpha = masked_softmax(scores, mask)``,
    ``f(q_i) = sum_j alpha_ij y_j``. For the gaussian, ``scores = -((q - x) w)^2 / 2`` exactly as in
    the book. Keys outside a compact kernel's support are masked, so a row with no key in reach is
    all zeros (prediction 0) instead of NaN during training.
    """

    def __init__(self, kernel: str | Kernel = "gaussian", w_init: float = 1.0) -> None:
        super().__init__()
        self.kernel = get_kernel(kernel)
        self.w = nn.Parameter(torch.tensor([float(w_init)]))

    @property
    def bandwidth(self) -> float:
        """The learned bandwidth ``h = 1/|w|`` (``inf`` if ``w = 0``)."""
        w = abs(float(self.w.detach()))
        return math.inf if w == 0 else 1.0 / w

    def forward(
        self, queries: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Pool ``values`` for each query.

        Args:
            queries: ``(n_q,)``; keys, values: ``(n_k,)``.
            mask: optional boolean ``(n_q, n_k)``, ``True`` = may attend.

        Returns:
            ``(predictions (n_q,), weights (n_q, n_k))``.
        """
        u = (queries[:, None] - keys[None, :]) * self.w  # (n_q, n_k)
        scores = self.kernel.log_weights(u)
        if self.kernel.compact:
            support = u.detach().abs() <= self.kernel.support
            mask = support if mask is None else mask & support
        # masked_softmax wants (B, Tq, Tk): one batch row.
        m3 = None if mask is None else mask[None]
        weights = masked_softmax(scores[None], mask=m3)[0]  # (n_q, n_k)
        return weights @ values, weights


def train_parametric(
    x: Tensor,
    y: Tensor,
    kernel: str | Kernel = "gaussian",
    epochs: int = 5,
    lr: float = 0.5,
    optimizer: str = "sgd",
    callback: Callable[[int, float, ParametricNW], None] | None = None,
    *,
    w_init: float | None = None,
    generator: torch.Generator | None = None,
    reduction: str = "sum",
    checkpoint: Checkpointer | None = None,
) -> tuple[ParametricNW, list[float]]:
    """Train :class:`ParametricNW` on ``(x, y)`` full-batch, as d2l 10.2.4 does.

    Each training point is a query over all other training points (mask ``~eye``). The loss is
    the squared error summed over the training points (the book's ``l.sum().backward()``;
    ``reduction="mean"`` divides by ``n``). ``w`` starts at ``w_init``, or ``U(0, 1)`` drawn from
    ``generator`` like the book's ``torch.rand((1,))``.

    Args:
        x, y: ``(n,)`` training data, ``n >= 2``.
        kernel: kernel name or :class:`Kernel`.
        epochs: full-batch steps; lr: learning rate; optimizer: a name in :data:`optimizers`.
        callback: called as ``callback(epoch, loss, model)`` after each epoch (1-based).
        checkpoint: with one, training starts after the epochs it holds (``attnrun resume``:
            ``w``, the optimizer state, the losses and every RNG state come back) and the state is
            saved at the end of every epoch, so an interrupted run continues exactly.

    Returns:
        ``(model, losses)`` with ``losses[e]`` the loss before the update of epoch ``e + 1``.

    Raises:
        ConfigError: bad epochs, lr, optimizer or reduction. TrainingError: a non-finite loss.
    """
    x = prepare_1d(x, "x").float()
    y = prepare_1d(y, "y").float()
    if x.numel() != y.numel() or x.numel() < 2:
        raise ConfigError(f"need x and y of equal length >= 2; got {x.numel()} and {y.numel()}")
    if int(epochs) < 0:
        raise ConfigError(f"epochs must be >= 0; got {epochs}")
    if not (math.isfinite(lr) and lr > 0):
        raise ConfigError(f"lr must be a finite number > 0; got {lr}")
    if reduction not in ("sum", "mean"):
        raise ConfigError(f"reduction must be 'sum' or 'mean'; got {reduction!r}")
    opt_cls = optimizers.get(optimizer)
    if w_init is None:
        w_init = float(torch.rand((1,), generator=generator))
    model = ParametricNW(kernel, w_init)
    opt = opt_cls(model.parameters(), lr=lr)
    done, saved, _ = checkpoint.restore(model, opt) if checkpoint else (0, {}, {})
    losses: list[float] = [float(v) for v in saved.get("loss", [])]
    not_self = ~torch.eye(x.numel(), dtype=torch.bool)  # (n, n): attend to all other points
    with cpu_threads(threads_for(x.numel() ** 2)):  # the book's 50 points: one thread
        for epoch in range(done + 1, int(epochs) + 1):
            _step(model, opt, x, y, not_self, reduction, epoch, losses)
            if checkpoint is not None:
                checkpoint.save(epoch, model, opt, {"loss": losses})
            if callback is not None:
                callback(epoch, losses[-1], model)
    return model, losses


def _step(model, opt, x, y, not_self, reduction: str, epoch: int, losses: list[float]) -> None:
    """One full-batch step: every point attends to all the others; appends the loss."""
    opt.zero_grad()
    pred, _ = model(x, x, y, mask=not_self)
    sq = (pred - y) ** 2
    loss = sq.sum() if reduction == "sum" else sq.mean()
    if not torch.isfinite(loss):
        raise TrainingError(f"parametric pooling: loss became {loss.item()} at epoch {epoch}")
    loss.backward()
    opt.step()
    losses.append(float(loss.detach()))


@poolings.register("parametric")
def parametric_pooling(
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor,
    *,
    kernel: str | Kernel = "gaussian",
    epochs: int = 5,
    lr: float = 0.5,
    optimizer: str = "sgd",
    callback: Callable[[int, float, ParametricNW], None] | None = None,
    generator: torch.Generator | None = None,
    checkpoint: Checkpointer | None = None,
    **_: object,
) -> PoolingResult:
    """Train :class:`ParametricNW` (:func:`train_parametric`, resumable through
    ``checkpoint``), then pool at ``x_test``."""
    model, losses = train_parametric(
        x_train,
        y_train,
        kernel,
        epochs,
        lr,
        optimizer,
        callback,
        generator=generator,
        checkpoint=checkpoint,
    )
    x_train = prepare_1d(x_train, "x_train").float()
    with torch.no_grad():
        pred, weights = model(prepare_1d(x_test, "x_test").float(), x_train, y_train.float())
    keep = weights.numel() <= _WEIGHTS_LIMIT
    return PoolingResult(pred, weights if keep else None, model.bandwidth, losses, model)
