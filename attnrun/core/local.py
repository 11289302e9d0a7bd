"""Global and local attention windows (Luong et al. 2015, section 3.2).

A window decides *where* a query may look. It is a module called by :class:`~attnrun.core.Attention`
between scoring and normalising:

    ``window(queries (..., Tq, dq), scores_shape, valid_lens, positions) -> (keep, reweight)``

``keep`` is a boolean keep-mask (``True`` = may attend) broadcastable to the scores, or ``None``;
``reweight`` is a factor multiplied onto the normalised weights, or ``None``. The pieces are the
plain functions :func:`window_mask` and :func:`gaussian_weights`, usable on their own.

``positions`` are the decoder steps ``t`` of the queries: ``None`` means ``0..Tq-1`` (a whole target
at once), an ``int`` ``t`` means ``t..t+Tq-1`` (``Tq = 1`` for one decoder step), and a tensor of
shape ``(Tq,)`` or ``(B, Tq)`` gives them explicitly.

- ``global``: every source position (Luong's global attention; Bahdanau et al. 2015).
- ``local_m``: monotonic alignment, centre ``p_t = t``, window ``[t − D, t + D]``.
- ``local_p``: predicted centre ``p_t = S · sigmoid(v_pᵀ tanh(W_p h_t))`` (Luong eq. 9) with ``S``
  the row's source (valid) length, window ``[p_t − D, p_t + D]``, and the normalised weights
  multiplied by ``exp(−(s − p_t)² / (2σ²))``, ``σ = D/2`` (Luong eq. 10). As in the paper the
  Gaussian is applied after the softmax, so local-p weights do not sum to one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from attnrun.errors import ConfigError
from attnrun.registry import Registry

__all__ = [
    "GlobalWindow",
    "LocalMonotonicWindow",
    "LocalPredictiveWindow",
    "gaussian_weights",
    "query_positions",
    "window_mask",
    "windows",
]

#: name → factory ``(query_dim, **options) -> window module``.
windows: Registry[Callable[..., nn.Module]] = Registry("attention window")


def query_positions(
    positions: Tensor | int | None, scores_shape: torch.Size | tuple[int, ...], device=None
) -> Tensor:
    """Decoder steps of the queries as a float tensor broadcastable to ``scores_shape[:-1]``.

    Args:
        positions: ``None`` (``0..Tq-1``), an ``int`` offset ``t`` (``t..t+Tq-1``), or a tensor
            ``(Tq,)`` / ``(B, Tq)``.
        scores_shape: ``(B, ..., Tq, Tk)``.

    Returns:
        ``(1, ..., 1, Tq)`` or ``(B, 1, ..., Tq)`` with ``len(scores_shape) - 1`` dimensions.
    """
    shape = tuple(scores_shape)
    batch, tq, lead = shape[0], shape[-2], len(shape) - 3
    if positions is None or isinstance(positions, int):
        offset = 0 if positions is None else positions
        pos = torch.arange(offset, offset + tq, device=device, dtype=torch.float32)
        return pos.reshape((1,) * (lead + 1) + (tq,))
    pos = positions.to(device=device, dtype=torch.float32)
    if pos.ndim == 1 and pos.shape[0] == tq:
        return pos.reshape((1,) * (lead + 1) + (tq,))
    if pos.ndim == 2 and tuple(pos.shape) == (batch, tq):
        return pos.reshape((batch,) + (1,) * lead + (tq,))
    raise ConfigError(
        f"positions of shape {tuple(positions.shape)} do not fit scores of shape {shape}; "
        f"expected (Tq,)=({tq},) or (B, Tq)=({batch}, {tq})"
    )


def window_mask(centers: Tensor, num_keys: int, half_width: float) -> Tensor:
    """Keep-mask ``|s − c| ≤ D`` over sources ``s = 0..Tk-1``: ``(..., Tq) -> (..., Tq, Tk)``."""
    s = torch.arange(num_keys, device=centers.device, dtype=centers.dtype)
    return (s - centers.unsqueeze(-1)).abs() <= half_width


def gaussian_weights(centers: Tensor, num_keys: int, sigma: float) -> Tensor:
    """Luong eq. 10: ``exp(−(s − c)² / (2σ²))``, ``s = 0..Tk-1``: ``(..., Tq) -> (..., Tq, Tk)``."""
    s = torch.arange(num_keys, device=centers.device, dtype=centers.dtype)
    return torch.exp(-((s - centers.unsqueeze(-1)) ** 2) / (2.0 * sigma**2))


def _check_half_width(name: str, half_width: int) -> None:
    if half_width < 0:
        raise ConfigError(f"{name} window: half_width D must be >= 0; got {half_width}")


@windows.register("global")
class GlobalWindow(nn.Module):
    """Every source position (global attention): no mask, no reweighting."""

    def __init__(self, query_dim: int | None = None) -> None:
        super().__init__()

    def forward(self, queries, scores_shape, valid_lens=None, positions=None):
        return None, None


@windows.register("local_m")
class LocalMonotonicWindow(nn.Module):
    """Luong's local-m: attend to ``[t − D, t + D]`` around the decoder step ``t`` (``p_t = t``).

    Args:
        query_dim: unused (uniform factory signature).
        half_width: ``D``; the window holds ``2D + 1`` positions (fewer at the edges).
    """

    def __init__(self, query_dim: int | None = None, half_width: int = 10) -> None:
        super().__init__()
        _check_half_width("local_m", half_width)
        self.half_width = half_width

    def forward(
        self,
        queries: Tensor,
        scores_shape: torch.Size | tuple[int, ...],
        valid_lens: Tensor | None = None,
        positions: Tensor | int | None = None,
    ) -> tuple[Tensor, None]:
        centers = query_positions(positions, scores_shape, device=queries.device)
        return window_mask(centers, scores_shape[-1], self.half_width), None

    def extra_repr(self) -> str:
        return f"half_width={self.half_width}"


@windows.register("local_p")
class LocalPredictiveWindow(nn.Module):
    """Luong's local-p: predicted centre ``p_t = S · sigmoid(v_pᵀ tanh(W_p h_t))`` (eq. 9).

    ``S`` is the source length of the row (its valid length, per query if ``valid_lens`` is
    ``(B, Tq)``; ``Tk`` without valid lengths). Keys outside ``[p_t − D, p_t + D]`` are masked and
    the normalised weights are multiplied by a Gaussian centred at ``p_t``, ``σ = D / 2`` (eq. 10).
    ``p_t`` is differentiable through the Gaussian, so ``W_p`` and ``v_p`` learn.

    Args:
        query_dim: ``dq``, the size of the decoder state ``h_t``.
        half_width: ``D`` (> 0).
        num_hiddens: size of ``W_p`` (default ``query_dim``).
    """

    def __init__(self, query_dim: int, half_width: int = 10, num_hiddens: int | None = None):
        super().__init__()
        _check_half_width("local_p", half_width)
        if half_width == 0:
            raise ConfigError("local-p window: half_width D must be > 0 (sigma = D/2)")
        hidden = query_dim if num_hiddens is None else num_hiddens
        self.half_width = half_width
        self.sigma = half_width / 2.0
        self.W_p = nn.Linear(query_dim, hidden, bias=False)
        self.v_p = nn.Linear(hidden, 1, bias=False)

    def centers(self, queries: Tensor, source_lens: Tensor | float) -> Tensor:
        """``p_t`` for each query: ``(..., Tq, dq) -> (..., Tq)``."""
        return source_lens * torch.sigmoid(self.v_p(torch.tanh(self.W_p(queries)))).squeeze(-1)

    def forward(
        self,
        queries: Tensor,
        scores_shape: torch.Size | tuple[int, ...],
        valid_lens: Tensor | None = None,
        positions: Tensor | int | None = None,
    ) -> tuple[Tensor, Tensor]:
        shape = tuple(scores_shape)
        tk = shape[-1]
        if valid_lens is None:
            source: Tensor | float = float(tk)
        elif valid_lens.ndim == 1:  # (B,) -> (B, 1, ..., 1)
            source = valid_lens.reshape((shape[0],) + (1,) * (len(shape) - 2))
        else:  # (B, Tq) -> (B, 1, ..., Tq)
            source = valid_lens.reshape((shape[0],) + (1,) * (len(shape) - 3) + (shape[-2],))
        if isinstance(source, Tensor):
            source = source.to(queries.dtype)
        centers = self.centers(queries, source)  # (..., Tq)
        keep = window_mask(centers.detach(), tk, self.half_width)
        return keep, gaussian_weights(centers, tk, self.sigma)

    def extra_repr(self) -> str:
        return f"half_width={self.half_width}, sigma={self.sigma}"
