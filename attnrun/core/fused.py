"""The fast paths of the attention core: the same score → mask → normalise → pool as the plain
path in :mod:`attnrun.core.attention`, computed by fused kernels.

:func:`fused_attention` is the one dispatch. For a softmax normaliser without reweighting and a
score with a dot form (``scores = scale · q' k'ᵀ``, :meth:`~attnrun.core.scores.Score.dot_form`) it
picks, by measurement (:func:`prefer_ragged`, :func:`prefer_fused`):

1. :class:`_RaggedDotAttention` — row by row over each row's valid keys (1-D valid lengths, long
   padded rows, CPU);
2. :func:`torch.nn.functional.scaled_dot_product_attention` — when the weights are not needed
   (except under CPU autocast);
3. :class:`_DotAttention` — one autograd Function that masks and normalises in place and returns
   the weights;

and returns ``None`` when none applies, so the caller runs the plain path. The tests
(``tests/core/test_attention.py``) check every path here against that plain path, values and
first and second derivatives.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from attnrun.core.masking import softmax_backward, softmax_keep_
from attnrun.core.scores import Score

__all__ = ["fused_attention", "prefer_fused", "prefer_ragged"]


def prefer_fused(
    device: torch.device, tq: int, tk: int, masked: bool, autocast: bool = False
) -> bool:
    """Whether the fused SDPA kernel is the faster choice for this device, shape and precision.

    Measured with ``benchmarks/bench_core.py --crossover`` (forward + backward, float32, 2-core
    CPU, torch 2.13): given 4-D inputs, SDPA's CPU flash kernel beat the plain bmm → softmax → bmm
    path on every shape tried, masked or not — from ``(B=2, Tq=3, Tk=5, d=4)`` (1.3-2.4×) and
    one decoder step ``(64, 1, 50, 256)`` (1.9-2.1×) to ``(B·H=256, T=256, d=64)`` (2.1×) and
    ``(16, 512, 64)`` (1.0-1.2×). (The "2× slower on small shapes" seen earlier was SDPA's math
    fallback for 3-D inputs, which the core avoids by adding a head axis.) On CUDA the fused
    kernels avoid materialising ``(Tq, Tk)``. So the rule is: fused whenever the weights are not
    needed, on every device; the arguments stay so a future measurement can refine it.

    Except under CPU autocast (the bf16 training step): there SDPA's CPU kernels lose to the
    plain path's bf16 products. Forward + backward of ``(B=128, H=4, T=15, d=64)``, masked,
    one thread: SDPA's flash kernel (no dropout) 6.7× and its math kernel (with dropout) 2.1×
    the plain path's time. The recipe's whole training step on the plain path: 1.03× as fast with
    the weights' dropout on, 1.59× without it (``benchmarks/bench_train_step.py --variants
    plain_bf16 sdpa_bf16 attn0_plain_bf16 attn0_sdpa_bf16``).
    """
    return not (autocast and device.type == "cpu")


def prefer_ragged(lens: list[int], tq: int, tk: int, need_weights: bool = True) -> bool:
    """Whether to run masked attention row by row on each row's valid keys only (CPU).

    With 1-D valid lengths the keys past ``valid_lens[b]`` carry no weight, so row ``b``'s
    products need only its first ``valid_lens[b]`` keys: the work shrinks by the padding share and
    each row's ``(Tq, L_b)`` block stays in cache, at the price of one small batched product per
    batch row. Measured (forward + backward, float32, 2-core CPU, torch 2.13, uniform random
    lengths ≈ 50% padding), ms for one batched call / row by row / fused SDPA without weights:
    ``B·H=32, T=64``: 1.7 / 5.7 / 1.3; ``64, 128``: 8.9 / 12.9 / 8.9; ``64, 256``: 40 / 40 / 34;
    ``128, 256``: 101 / 88 / 77; ``256, 256``: 226 / 130 / 141; ``16, 512``: 30 / 22 / 39.
    Rule: at least a quarter of the keys padding, and at least 256 × 256 scores per row when the
    weights are returned (512 × 512 when SDPA is the alternative).
    """
    rows = len(lens)
    side = 256 if need_weights else 512
    if rows == 0 or tq * tk < side * side:
        return False
    return sum(lens) <= 0.75 * rows * tk


def fused_attention(
    score: Score,
    queries: Tensor,
    keys: Tensor,
    values: Tensor,
    keep: Tensor | None,
    maybe_empty: bool,
    *,
    projected_keys: Tensor | None = None,
    valid_lens: Tensor | None = None,
    need_weights: bool = True,
    backend: str = "auto",
    dropout_p: float = 0.0,
) -> tuple[Tensor, Tensor | None] | None:
    """Softmax attention on ``score``'s dot form by the fastest applicable kernel, or ``None``.

    Args:
        score: the attention's score; only scores with a :meth:`~Score.dot_form` qualify.
        queries ``(..., Tq, dq)``, keys ``(..., Tk, dk)``, values ``(..., Tk, dv)``.
        keep: boolean keep-mask broadcastable to ``(..., Tq, Tk)`` (``True`` = keep) or ``None``.
        maybe_empty: some row may keep nothing (its weights and context must then be 0).
        projected_keys: ``score.project_keys(keys)``, when the caller holds it.
        valid_lens: the ``(B,)`` lengths behind ``keep`` when they are its only source (no other
            mask, no window): enables the row-by-row path.
        need_weights: ``False`` lets SDPA answer (the weights are then ``None``).
        backend: ``"auto"`` (measured choices) or ``"fused"`` (SDPA whenever possible).
        dropout_p: the dropout on the weights in force (0 in eval mode); only SDPA applies one.

    Returns:
        ``(context (..., Tq, dv), weights (..., Tq, Tk) or None)``, or ``None``: take the plain
        path (no dot form, autocast, mixed dtypes, active dropout with the weights needed, or the
        measurements say the plain path is faster).
    """
    autocast = torch.is_autocast_enabled(queries.device.type)
    fn_ok = dropout_p == 0.0 and not autocast
    lens = None  # the row-by-row choice is made before dot_form, which may cost a product
    cpu_lens = valid_lens is not None and valid_lens.ndim == 1 and queries.device.type == "cpu"
    if fn_ok and backend == "auto" and cpu_lens:
        assert valid_lens is not None  # cpu_lens says so
        lens = valid_lens.tolist()
        tq, tk = queries.shape[-2], keys.shape[-2]
        if not prefer_ragged(lens, tq, tk, need_weights=need_weights):
            lens = None
    use_sdpa = not need_weights and (
        backend == "fused"
        or prefer_fused(
            queries.device, queries.shape[-2], keys.shape[-2], keep is not None, autocast
        )
    )
    if lens is None and not use_sdpa and not fn_ok:
        return None
    form = score.dot_form(queries, keys, projected_keys)
    if form is None:
        return None
    q, k, scale = form
    same_dtype = q.dtype == k.dtype == values.dtype and q.dtype.is_floating_point
    if lens is not None and same_dtype:
        context, weights = _RaggedDotAttention.apply(q, k, values, lens, scale)
        return context, weights if need_weights else None
    if use_sdpa:
        return _sdpa(q, k, values, keep, maybe_empty, scale, dropout_p), None
    if fn_ok and same_dtype:
        return _DotAttention.apply(q, k, values, keep, scale, maybe_empty)
    return None


def _sdpa(q, k, v, keep, maybe_empty, scale, dropout_p) -> Tensor:
    """``F.scaled_dot_product_attention`` with the core's conventions: context ``(..., Tq, dv)``."""
    if q.ndim == 3:
        # CPU SDPA takes its fused (flash) kernel only for 4-D inputs; 3-D falls back to the
        # unfused math path (measured 3.2x slower at B=256, T=256, d=64). Add a head axis.
        q, k, v = q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1)  # (B, 1, T, d)
        mask4 = None if keep is None else keep.unsqueeze(-3) if keep.ndim == 3 else keep
        context = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask4, dropout_p=dropout_p, scale=scale
        ).squeeze(1)  # (B, Tq, dv)
    else:
        context = F.scaled_dot_product_attention(
            q, k, v, attn_mask=keep, dropout_p=dropout_p, scale=scale
        )
    if maybe_empty and keep is not None and context.device.type != "cpu":
        # CPU SDPA returns zeros for rows with nothing kept (checked in the tests); other
        # backends may return NaN, so force the core's convention there.
        context = context.masked_fill(~keep.any(dim=-1, keepdim=True), 0.0)
    return context


class _DotAttention(torch.autograd.Function):
    """``w = softmax_keep(scale · q kᵀ)``, ``context = w v`` with two (Tq, Tk) buffers in all.

    Autograd's composition allocates five (Tq, Tk) tensors per forward + backward (scores,
    weights, their gradient, the softmax gradient, the mask's gradient); on CPU each fresh
    allocation costs as much as a pass over it (page faults). Here the scores are masked and
    softmaxed in place (``bmm``'s backward does not need its output) and the softmax gradient is
    written over the weights' gradient. Masked weights are exactly 0, so the mask needs no
    backward. Shapes: q ``(..., Tq, d)``, k ``(..., Tk, d)``, v ``(..., Tk, dv)``.
    """

    @staticmethod
    def forward(ctx, q, k, v, keep, scale, zero_empty_rows):
        *lead, tq, d = q.shape
        tk, dv = k.shape[-2], v.shape[-1]
        q3, k3, v3 = q.reshape(-1, tq, d), k.reshape(-1, tk, d), v.reshape(-1, tk, dv)
        # The scale rides on the matmul (BLAS alpha): no elementwise pass, no extra kernel launch.
        scores = _bmm(q3, k3.transpose(1, 2), scale)  # (N, Tq, Tk)
        weights = softmax_keep_(scores.view(*lead, tq, tk), keep, zero_empty_rows)
        context = torch.bmm(weights.view(-1, tq, tk), v3)  # (N, Tq, dv)
        ctx.save_for_backward(q, k, v, weights)
        ctx.scale = scale
        ctx.set_materialize_grads(False)
        return context.view(*lead, tq, dv), weights

    @staticmethod
    def backward(ctx, grad_context, grad_weights):
        q, k, v, weights = ctx.saved_tensors
        *lead, tq, d = q.shape
        tk, dv = k.shape[-2], v.shape[-1]
        w3 = weights.reshape(-1, tq, tk)
        q3, k3, v3 = q.reshape(-1, tq, d), k.reshape(-1, tk, d), v.reshape(-1, tk, dv)
        grad_v = grad_w = None
        if grad_context is not None:
            # .contiguous(): a gradient from .sum()/.mean() arrives expanded (stride 0), which
            # sends bmm down a per-matrix copy path (measured 1.4x slower at 64·128·64).
            g3 = grad_context.reshape(-1, tq, dv).contiguous()
            grad_w = torch.bmm(g3, v3.transpose(1, 2))  # (N, Tq, Tk), a fresh buffer
            grad_v = torch.bmm(w3.transpose(1, 2), g3).view(v.shape)
        if grad_weights is not None:
            gw = grad_weights.reshape(-1, tq, tk)
            if grad_w is None:
                grad_w = gw
            elif torch.is_grad_enabled():
                grad_w = grad_w + gw
            else:
                grad_w.add_(gw)
        if grad_w is None:
            return None, None, grad_v, None, None, None
        if torch.is_grad_enabled() or grad_context is None:
            grad_s = softmax_backward(grad_w, w3)
        else:  # grad_w is ours: overwrite it
            grad_s = torch._softmax_backward_data(grad_w, w3, -1, w3.dtype, grad_input=grad_w)
        grad_q = _bmm(grad_s, k3, ctx.scale)
        grad_k = _bmm(grad_s.transpose(1, 2), q3, ctx.scale)
        return grad_q.view(q.shape), grad_k.view(k.shape), grad_v, None, None, None


def _bmm(a: Tensor, b: Tensor, alpha: float) -> Tensor:
    """``alpha · a @ b`` for 3-D ``a``, ``b``, with ``alpha`` folded into the matmul."""
    if alpha == 1.0:
        return torch.bmm(a, b)
    # beta=0: the (empty, 0-d) input is ignored, NaNs in it included (documented).
    return torch.baddbmm(a.new_empty(()), a, b, beta=0.0, alpha=alpha)


class _RaggedDotAttention(torch.autograd.Function):
    """:class:`_DotAttention` for 1-D valid lengths, batch row by batch row, over each row's
    ``L_b = valid_lens[b]`` valid keys only: ``w_b = softmax(scale · q_b k_{b,:L_b}ᵀ)``,
    ``context_b = w_b v_{b,:L_b}``; the returned weights are 0 past ``L_b`` (a row with
    ``L_b = 0`` has zero weights and context). Shapes: q ``(B, ..., Tq, d)``,
    k ``(B, ..., Tk, d)``, v ``(B, ..., Tk, dv)``; the lengths broadcast over the middle axes.
    """

    @staticmethod
    def forward(ctx, q, k, v, lens, scale):
        tq, tk = q.shape[-2], k.shape[-2]
        weights = q.new_zeros(*q.shape[:-1], tk)  # (B, ..., Tq, Tk)
        context = q.new_zeros(*q.shape[:-1], v.shape[-1])  # (B, ..., Tq, dv)
        for b, n in enumerate(lens):
            if n == 0:
                continue
            qb = q[b].reshape(-1, tq, q.shape[-1])  # (heads, Tq, d)
            kb = k[b].reshape(-1, tk, k.shape[-1])[:, :n]  # (heads, L, d)
            vb = v[b].reshape(-1, tk, v.shape[-1])[:, :n]  # (heads, L, dv)
            wb = _bmm(qb, kb.transpose(1, 2), scale)  # (heads, Tq, L), fresh
            torch._softmax(wb, -1, False, out=wb)
            weights[b].view(-1, tq, tk)[:, :, :n] = wb
            torch.bmm(wb, vb, out=context[b].view(-1, tq, v.shape[-1]))
        ctx.save_for_backward(q, k, v, weights)
        ctx.lens, ctx.scale = lens, scale
        ctx.set_materialize_grads(False)
        return context, weights

    @staticmethod
    def backward(ctx, grad_context, grad_weights):
        q, k, v, weights = ctx.saved_tensors
        tq, tk, d, dv = q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1]
        create_graph = torch.is_grad_enabled()  # double backward: differentiable ops only
        grad_q, grad_k, grad_v = (x.new_zeros(x.shape) for x in (q, k, v))  # contiguous
        if grad_context is not None:
            grad_context = grad_context.contiguous()  # expanded (stride-0) grads: see above
        for b, n in enumerate(ctx.lens):
            if n == 0:
                continue
            wb = weights[b].view(-1, tq, tk)[:, :, :n]  # (heads, Tq, L), strided
            qb, kb = q[b].reshape(-1, tq, d), k[b].reshape(-1, tk, d)[:, :n]
            vb = v[b].reshape(-1, tk, dv)[:, :n]
            gw = None
            if grad_context is not None:
                gb = grad_context[b].reshape(-1, tq, dv)
                gw = torch.bmm(gb, vb.transpose(1, 2))  # (heads, Tq, L), fresh
                grad_v[b].view(-1, tk, dv)[:, :n] = torch.bmm(wb.transpose(1, 2), gb)
            if grad_weights is not None:
                extra = grad_weights[b].reshape(-1, tq, tk)[:, :, :n]
                if gw is None or create_graph:
                    gw = extra.clone() if gw is None else gw + extra
                else:
                    gw.add_(extra)
            if gw is None:
                continue
            if create_graph:
                gs = softmax_backward(gw, wb)
            else:  # gw is ours: overwrite it
                gs = torch._softmax_backward_data(gw, wb, -1, wb.dtype, grad_input=gw)
            grad_q[b].view(-1, tq, d).copy_(_bmm(gs, kb, ctx.scale))
            grad_k[b].view(-1, tk, d)[:, :n] = _bmm(gs.transpose(1, 2), qb, ctx.scale)
        return grad_q, grad_k, grad_v, None, None
