"""Figures for ``attnrun regress``: predictions, attention heatmap, loss curve (d2l 10.2 style).

Matplotlib's Agg backend (no display needed); every PNG is written atomically through
:func:`attnrun.io.save_with` and its figure closed. Plotting never changes the data it is given.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import Tensor  # noqa: E402

from attnrun.io import save_with  # noqa: E402
from attnrun.viz import ATTENTION_CMAP  # noqa: E402

__all__ = ["plot_attention", "plot_loss", "plot_predictions"]


def _save(fig: Figure, path: str | os.PathLike, dpi: int) -> None:
    try:
        save_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight"))
    finally:
        plt.close(fig)


def _np(t: Tensor):
    return t.detach().cpu().double().numpy()


def plot_predictions(
    path: str | os.PathLike,
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor,
    y_pred: Tensor,
    y_truth: Tensor | None = None,
    *,
    title: str | None = None,
    truth_label: str = "truth",
    dpi: int = 120,
) -> None:
    """``predictions.png``: truth (line), prediction (dashed) and training points (circles).

    Shapes: ``x_train``/``y_train`` ``(n_train,)``, ``x_test``/``y_pred``/``y_truth``
    ``(n_test,)``. Lines are drawn in ``x_test`` order; NaN predictions leave gaps.
    """
    order = torch.argsort(x_test)
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    if y_truth is not None:
        ax.plot(_np(x_test[order]), _np(y_truth[order]), "-", color="C0", label=truth_label)
    ax.plot(_np(x_test[order]), _np(y_pred[order]), "--", color="C1", label="prediction")
    ax.plot(_np(x_train), _np(y_train), "o", color="C2", alpha=0.5, ms=4, label="training data")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    if title:
        ax.set_title(title)
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    _save(fig, path, dpi)


def plot_attention(
    path: str | os.PathLike,
    weights: Tensor,
    x_test: Tensor,
    x_train: Tensor,
    *,
    title: str | None = None,
    dpi: int = 120,
) -> None:
    """``attention.png``: heatmap of ``weights`` ``(n_test, n_train)``, rows ordered by sorted
    test input and columns by sorted training input, with a colorbar and input-valued axes."""
    qo, ko = torch.argsort(x_test), torch.argsort(x_train)
    w = weights.detach()[qo][:, ko]
    xs_q, xs_k = x_test[qo], x_train[ko]
    fig, ax = plt.subplots(figsize=(5.0, 4.2))
    extent = (float(xs_k[0]), float(xs_k[-1]), float(xs_q[-1]), float(xs_q[0]))
    if extent[0] == extent[1]:
        extent = (extent[0] - 0.5, extent[1] + 0.5, extent[2], extent[3])
    if extent[2] == extent[3]:
        extent = (extent[0], extent[1], extent[2] + 0.5, extent[3] - 0.5)
    im = ax.imshow(
        _np(w), cmap=ATTENTION_CMAP, aspect="auto", extent=extent, interpolation="nearest"
    )
    fig.colorbar(im, ax=ax, label="attention weight")
    ax.set_xlabel("sorted training inputs (keys)")
    ax.set_ylabel("sorted testing inputs (queries)")
    if title:
        ax.set_title(title)
    _save(fig, path, dpi)


def plot_loss(
    path: str | os.PathLike,
    losses: Sequence[float],
    *,
    ylabel: str = "loss",
    title: str | None = None,
    dpi: int = 120,
) -> None:
    """``loss.png``: loss per epoch (epochs numbered from 1); log scale when it spans > 100×."""
    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    epochs = list(range(1, len(losses) + 1))
    ax.plot(epochs, list(losses), "o-", color="C3")
    finite = [v for v in losses if v == v and v > 0]
    if finite and max(finite) / min(finite) > 100:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    if epochs:
        ax.set_xlim(0.5, len(epochs) + 0.5)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    _save(fig, path, dpi)
