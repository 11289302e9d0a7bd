"""Masks and the masked softmax: the "mask → normalise" half of every attention in attnrun.

Convention (fixed; other modules rely on it): a *mask* is boolean, broadcastable to the scores, and
``True`` means **keep / may attend** — the same as the boolean ``attn_mask`` of
:func:`torch.nn.functional.scaled_dot_product_attention`.

Shapes: scores ``(..., Tq, Tk)`` with at least ``(B, Tq, Tk)``; valid lengths ``(B,)`` (one per
batch row) or ``(B, Tq)`` (one per query), broadcast over any dimension between the batch and the
query axes (e.g. heads in ``(B, heads, Tq, Tk)``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from attnrun.errors import ConfigError

__all__ = [
    "combine_masks",
    "keep_mask",
    "keep_mask_info",
    "masked_softmax",
    "softmax_keep",
    "valid_lens_mask",
]


def valid_lens_mask(valid_lens: Tensor, scores_shape: torch.Size | tuple[int, ...]) -> Tensor:
    """Boolean keep-mask ``j < valid_lens`` broadcastable to ``scores_shape``.

    Args:
        valid_lens: ``(B,)`` lengths per batch row, or ``(B, Tq)`` lengths per query; a tensor of
            shape ``scores_shape[:-1]`` (e.g. ``(B, heads, Tq)``) is accepted as well.
        scores_shape: ``(B, ..., Tq, Tk)``.

    Returns:
        ``(B, 1, ..., 1, Tk)`` for 1-D lengths, ``(B, 1, ..., Tq, Tk)`` for 2-D lengths.

    Raises:
        ConfigError: the lengths' shape does not fit the scores, or a length is < 0 or > Tk.
    """
    return _valid_lens_mask(valid_lens, scores_shape)[0]


def _valid_lens_mask(valid_lens: Tensor, scores_shape) -> tuple[Tensor, bool]:
    """:func:`valid_lens_mask`, plus whether some row may keep nothing (a length of 0)."""
    shape = tuple(scores_shape)
    if len(shape) < 3:
        raise ConfigError(f"scores must be at least (B, Tq, Tk); got shape {shape}")
    batch, tq, tk = shape[0], shape[-2], shape[-1]
    lens = valid_lens
    if lens.ndim == 1 and lens.shape[0] == batch:
        lens = lens.reshape((batch,) + (1,) * (len(shape) - 2))
    elif lens.ndim == 2 and tuple(lens.shape) == (batch, tq):
        lens = lens.reshape((batch,) + (1,) * (len(shape) - 3) + (tq,))
    elif tuple(lens.shape) != shape[:-1]:
        raise ConfigError(
            f"valid_lens of shape {tuple(valid_lens.shape)} does not fit scores of shape {shape}; "
            f"expected (B,)=({batch},) or (B, Tq)=({batch}, {tq})"
        )
    maybe_empty = True
    if lens.numel():
        # One host sync: free on CPU, and worth it on CUDA for a clear error instead of garbage.
        lo, hi = (v.item() for v in torch.aminmax(lens))
        if lo < 0 or hi > tk:
            raise ConfigError(
                f"valid_lens must lie in [0, Tk={tk}] for scores of shape {shape}; got values in "
                f"[{lo}, {hi}] (valid_lens shape {tuple(valid_lens.shape)})"
            )
        maybe_empty = lo < 1
    positions = torch.arange(tk, device=lens.device)
    return positions < lens.unsqueeze(-1), maybe_empty


def combine_masks(*masks: Tensor | None) -> Tensor | None:
    """Logical AND of boolean keep-masks (``None`` entries are ignored); ``None`` if all are."""
    out: Tensor | None = None
    for m in masks:
        if m is None:
            continue
        if m.dtype != torch.bool:
            raise ConfigError(f"masks must be boolean (True = keep); got dtype {m.dtype}")
        out = m if out is None else out & m
    return out


def keep_mask(
    scores_shape: torch.Size | tuple[int, ...],
    valid_lens: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor | None:
    """One keep-mask from valid lengths and/or a boolean mask; ``None`` when both are absent."""
    return keep_mask_info(scores_shape, valid_lens, mask)[0]


def keep_mask_info(
    scores_shape: torch.Size | tuple[int, ...],
    valid_lens: Tensor | None = None,
    mask: Tensor | None = None,
) -> tuple[Tensor | None, bool]:
    """:func:`keep_mask`, plus whether some row may keep nothing (then it must be zeroed)."""
    lens_mask, maybe_empty = None, False
    if valid_lens is not None:
        lens_mask, maybe_empty = _valid_lens_mask(valid_lens, scores_shape)
    if mask is not None:
        try:
            torch.broadcast_shapes(mask.shape, tuple(scores_shape))
        except RuntimeError:
            raise ConfigError(
                f"mask of shape {tuple(mask.shape)} does not broadcast to scores of shape "
                f"{tuple(scores_shape)}"
            ) from None
        maybe_empty = True
    return combine_masks(lens_mask, mask), maybe_empty


def masked_softmax(
    scores: Tensor, valid_lens: Tensor | None = None, mask: Tensor | None = None
) -> Tensor:
    """Softmax over the last axis that gives exactly zero weight to masked key positions.

    ``weights[..., i, j] = exp(s_ij) / Σ_{k kept} exp(s_ik)`` for kept ``j``, ``0`` otherwise; a row
    with no kept position is all zeros (never NaN), so its context vector is zero.

    Args:
        scores: ``(B, ..., Tq, Tk)`` raw attention scores (float32/64, or float16/bfloat16 under
            autocast).
        valid_lens: optional ``(B,)`` or ``(B, Tq)``; key ``j`` is kept iff ``j < valid_lens``.
        mask: optional boolean, broadcastable to ``scores``; ``True`` = keep.

    Returns:
        ``(B, ..., Tq, Tk)`` weights, same dtype as ``scores``.

    Raises:
        ConfigError: a shape does not fit, or a valid length lies outside ``[0, Tk]``.
    """
    keep, maybe_empty = keep_mask_info(scores.shape, valid_lens, mask)
    return softmax_keep(scores, keep, zero_empty_rows=maybe_empty)


def softmax_keep(
    scores: Tensor, keep: Tensor | None, *, zero_empty_rows: bool = True, inplace: bool = False
) -> Tensor:
    """Softmax of ``scores`` over the last axis restricted to ``keep`` (``True`` = keep).

    The building block behind :func:`masked_softmax`, for callers that already hold a keep-mask.
    ``zero_empty_rows=False`` skips the final multiply when the caller knows every row keeps at
    least one position; ``inplace=True`` fills ``scores`` in place (only for a fresh intermediate
    that autograd does not need, e.g. the output of a matmul).
    """
    if keep is None:
        return torch.softmax(scores, dim=-1)
    if torch.is_autocast_enabled(scores.device.type) or (inplace and scores._base is not None):
        return _softmax_keep_autograd(scores, keep, zero_empty_rows, inplace)
    return _KeepSoftmax.apply(scores, keep, zero_empty_rows, inplace)


def _softmax_keep_autograd(scores: Tensor, keep: Tensor, zero_empty_rows: bool, inplace: bool):
    """:func:`softmax_keep` composed of autograd ops (autocast, views, and the tests' reference)."""
    # Fill with the dtype's lowest finite value rather than -inf: a fully masked row then softmaxes
    # to a uniform row instead of NaN, and the final multiply zeroes it (and its gradient). In any
    # row with a kept entry, exp(min - max) underflows to exactly 0.
    fill = torch.finfo(scores.dtype).min
    filled = scores.masked_fill_(~keep, fill) if inplace else scores.masked_fill(~keep, fill)
    weights = torch.softmax(filled, dim=-1)
    if zero_empty_rows:
        weights = weights * keep.to(weights.dtype)
    return weights


def softmax_keep_(scores: Tensor, keep: Tensor | None, zero_empty_rows: bool) -> Tensor:
    """Masked softmax written into ``scores`` itself (no autograd; the caller owns ``scores``).

    Every masked entry ends up exactly 0 (``exp(min - max)`` underflows in a row with a kept
    entry; a row with nothing kept is zeroed when ``zero_empty_rows``), which is what lets the
    backward pass skip the mask: the softmax gradient ``w ⊙ (g - Σ g w)`` is 0 wherever ``w`` is.
    """
    if keep is not None:
        scores.masked_fill_(~keep, torch.finfo(scores.dtype).min)
    # out= the input: CPU's last-axis softmax reads a row before writing it, so aliasing is safe,
    # and skipping a fresh (Tq, Tk) allocation (page faults) is most of the win on CPU.
    weights = torch._softmax(scores, -1, False, out=scores)
    if zero_empty_rows and keep is not None:
        weights.mul_(keep.any(dim=-1, keepdim=True))
    return weights


def softmax_backward(grad: Tensor, weights: Tensor) -> Tensor:
    """``∂L/∂scores = w ⊙ (g - Σ_j g w)`` for ``w = softmax(scores)``; differentiable when grad is
    enabled (double backward), otherwise ATen's fused kernel."""
    if torch.is_grad_enabled():
        return weights * (grad - (grad * weights).sum(dim=-1, keepdim=True))
    return torch._softmax_backward_data(grad, weights, -1, weights.dtype)


class _KeepSoftmax(torch.autograd.Function):
    """Masked softmax with a one-pass backward: masked weights are exactly 0, so the softmax
    gradient is already 0 there and the mask's own backward (a full ``where`` pass) is not needed.
    """

    @staticmethod
    def forward(ctx, scores, keep, zero_empty_rows, inplace):
        if inplace:
            ctx.mark_dirty(scores)
            buf = scores
        else:
            buf = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
        weights = softmax_keep_(buf, keep if inplace else None, False)
        if zero_empty_rows:
            weights.mul_(keep.any(dim=-1, keepdim=True))
        ctx.save_for_backward(weights)
        return weights

    @staticmethod
    def backward(ctx, grad):
        (weights,) = ctx.saved_tensors
        return softmax_backward(grad, weights), None, None, None
