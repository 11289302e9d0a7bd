"""The training loss: vocabulary projection and (label-smoothed) cross-entropy in one pass.

The projection to the vocabulary is the largest matrix product of a translation training step,
and the ``(N, V)`` logits it makes (``N`` target tokens, ``V`` target words) are the largest
tensor: autograd's ``linear → log_softmax → nll_loss`` allocates it, its log-softmax, their
gradients and (under autocast) a float32 copy — each pass a trip through memory and, on CPU, fresh
pages. :func:`linear_cross_entropy` instead walks the tokens in row chunks through one reused
``(chunk, V)`` buffer and computes the gradients of the features, weight and bias during the
forward pass (the loss is the last node of the graph, so backward only scales them). The
arithmetic is the same as ``F.cross_entropy(F.linear(x, W, b), y, label_smoothing=ε)`` (the tests
check it to float rounding); the idea is that of fused linear-cross-entropy kernels
(e.g. Liger-Kernel, Hsu et al. 2024; Cut Cross-Entropy, Wijmans et al. 2024).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["linear_cross_entropy"]

#: rows per chunk: a (512, V) float32 buffer is 14 MB for V = 6,700.
CHUNK_ROWS = 512
#: chunks are padded with zero rows to a multiple of this: a batch's token count is new nearly
#: every step, and oneDNN compiles a kernel for every new matrix shape (~20 ms for the ``(c, V) @
#: (V, H)`` product, measured), so an unpadded last chunk paid that on most steps.
ROW_GRANULE = 64


def linear_cross_entropy(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    target: Tensor,
    label_smoothing: float = 0.0,
    *,
    compute_dtype: torch.dtype | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Tensor:
    """Mean cross-entropy of ``softmax(x Wᵀ + b)`` against ``target``, as a float32 scalar.

    Args:
        x: features ``(N, H)`` of the ``N`` tokens to score (padding already removed).
        weight: ``(V, H)``; bias: ``(V,)`` or ``None``.
        target: ``(N,)`` class ids in ``[0, V)``.
        label_smoothing: ``ε``: the target distribution is ``(1 - ε)·onehot + ε / V``.
        compute_dtype: dtype of the matrix products (``torch.bfloat16`` for bf16 training; default
            ``x``'s dtype); the softmax and the loss are always float32.
        chunk_rows: tokens per chunk.

    Returns:
        ``loss`` (0-d float32, float64 for float64 inputs); its gradient flows to ``x``,
        ``weight`` and ``bias``.
    """
    if x.ndim != 2 or weight.ndim != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"linear_cross_entropy: x (N, H) and weight (V, H) expected; got {tuple(x.shape)} "
            f"and {tuple(weight.shape)}"
        )
    if target.shape != x.shape[:1]:
        raise ValueError(f"target {tuple(target.shape)} does not fit x {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError("linear_cross_entropy: no tokens to score (N = 0)")
    if x.device.type != "cpu":
        # On accelerators the composed ops are fused well enough; keep one code path there.
        logits = F.linear(x.to(compute_dtype or x.dtype), weight.to(compute_dtype or x.dtype),
                          None if bias is None else bias.to(compute_dtype or x.dtype))  # fmt: skip
        return F.cross_entropy(logits.float(), target, label_smoothing=label_smoothing)
    return _LinearCrossEntropy.apply(
        x, weight, bias, target, float(label_smoothing), compute_dtype or x.dtype, chunk_rows
    )


def _padded(rows: int) -> int:
    """``rows`` rounded up to a multiple of :data:`ROW_GRANULE` (see there)."""
    return -(-rows // ROW_GRANULE) * ROW_GRANULE


class _LinearCrossEntropy(torch.autograd.Function):
    """Chunked ``cross_entropy(x Wᵀ + b)`` with its gradients computed in the forward pass.

    Per chunk of rows ``c``: ``L = x_c Wᵀ + b`` (float32 buffer), ``L ← log_softmax(L)`` in place,
    loss terms ``−(1−ε) L[y] − (ε/V) Σ_v L``; then ``L ← softmax − (1−ε)·onehot − ε/V`` (the
    gradient of the summed loss wrt the logits), ``∂x_c = L W``, ``∂W += Lᵀ x_c`` and
    ``∂b += Σ_rows L``.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, target, eps, dtype, chunk_rows):
        n, h = x.shape
        v = weight.shape[0]
        w = weight.to(dtype)
        b = None if bias is None else bias.to(dtype)
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        need_b = bias is not None and ctx.needs_input_grad[2]
        acc = torch.float64 if dtype == torch.float64 else torch.float32  # softmax / loss dtype
        low = dtype != acc  # bfloat16 / float16 products into a float32 buffer
        grad_x = torch.empty_like(x) if need_x else None
        grad_w = torch.zeros(v, h, dtype=acc) if need_w else None
        grad_b = torch.zeros(v, dtype=acc) if need_b else None
        buf = torch.empty(_padded(min(chunk_rows, n)), v, dtype=acc)
        loss = torch.zeros((), dtype=torch.float64)
        for start in range(0, n, chunk_rows):
            stop = min(start + chunk_rows, n)
            rows = stop - start
            pad = _padded(rows) - rows
            xc = x[start:stop].to(dtype)
            if pad:  # only the last chunk: (c', H), zero rows appended
                xc = F.pad(xc, (0, 0, 0, pad))
            y = target[start:stop]
            logits = buf[: rows + pad]
            if low:
                logits.copy_(F.linear(xc, w, b))
            elif b is not None:
                torch.addmm(b, xc, w.t(), out=logits)
            else:
                torch.mm(xc, w.t(), out=logits)
            torch._log_softmax(logits, -1, False, out=logits)  # row-wise, safe in place
            picked = logits[:rows].gather(1, y.unsqueeze(1))  # (c, 1) log p(y)
            loss -= (1.0 - eps) * picked.sum(dtype=torch.float64)
            if eps:
                loss -= (eps / v) * logits[:rows].sum(dtype=torch.float64)
            if not (need_x or need_w or need_b):
                continue
            grad = logits.exp_()  # softmax
            if eps:
                grad.sub_(eps / v)
            grad[:rows].scatter_add_(
                1, y.unsqueeze(1), torch.full_like(picked, -(1.0 - eps))
            )  # − (1−ε)·onehot
            grad[rows:] = 0  # the padding rows add nothing to ∂W or ∂b
            g = grad.to(dtype) if low else grad
            if need_x:
                grad_x[start:stop] = (g @ w)[:rows]
            if need_w:
                if low:
                    grad_w += (g.t() @ xc).float()
                else:
                    grad_w.addmm_(g.t(), xc)
            if need_b:
                grad_b += grad.sum(0)
        ctx.save_for_backward(grad_x, grad_w, grad_b)
        ctx.n = n
        ctx.dtypes = (weight.dtype, None if bias is None else bias.dtype)
        return (loss / n).to(acc)

    @staticmethod
    def backward(ctx, grad_loss):
        grad_x, grad_w, grad_b = ctx.saved_tensors
        scale = grad_loss / ctx.n
        w_dtype, b_dtype = ctx.dtypes
        gx = None if grad_x is None else grad_x * scale.to(grad_x.dtype)
        gw = None if grad_w is None else (grad_w * scale).to(w_dtype)
        gb = None if grad_b is None else (grad_b * scale).to(b_dtype)
        return gx, gw, gb, None, None, None, None
