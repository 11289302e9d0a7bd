"""The shared attention core: score → mask → normalise → pool, returning ``(context, weights)``.

:class:`Attention` composes three registry-built pieces — a score (:mod:`attnrun.core.scores`), a
window (:mod:`attnrun.core.local`) and a normaliser (:mod:`attnrun.core.hard`) — and is the only
place in attnrun that turns scores into weighted sums of values.

Fast path: when the caller does not need the weights, the normaliser is the softmax, the window does
not reweight and the score is a dot product of (transformed) queries and keys, the core calls
:func:`torch.nn.functional.scaled_dot_product_attention` (fused kernels) if :func:`prefer_fused`
says it is faster for that device and shape (by measurement: always, so far). Otherwise it runs
the plain path, which the tests check against the fused one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnrun.core.hard import normalisers
from attnrun.core.local import windows
from attnrun.core.masking import combine_masks, keep_mask_info, softmax_backward, softmax_keep_
from attnrun.core.scores import Score, make_score
from attnrun.errors import ConfigError

__all__ = ["Attention", "prefer_fused"]

BACKENDS = ("auto", "fused", "plain")


def prefer_fused(device: torch.device, tq: int, tk: int, masked: bool) -> bool:
    """Whether the fused SDPA kernel is the faster choice for this device and shape.

    Measured with ``benchmarks/bench_core.py --crossover`` (forward + backward, float32, 2-core
    CPU, torch 2.13): given 4-D inputs, SDPA's CPU flash kernel beat the plain bmm → softmax → bmm
    path on every shape tried, masked or not — from ``(B=2, Tq=3, Tk=5, d=4)`` (1.3-2.4×) and
    one decoder step ``(64, 1, 50, 256)`` (1.9-2.1×) to ``(B·H=256, T=256, d=64)`` (2.1×) and
    ``(16, 512, 64)`` (1.0-1.2×). (The "2× slower on small shapes" seen earlier was SDPA's math
    fallback for 3-D inputs, which the core avoids by adding a head axis.) On CUDA the fused
    kernels avoid materialising ``(Tq, Tk)``. So the rule is: fused whenever the weights are not
    needed, on every device; the arguments stay so a future measurement can refine it.
    """
    return True


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


def _build(kind, registry, options, **fixed):
    if isinstance(kind, nn.Module):
        if options:
            raise ConfigError(f"options {sorted(options)} given with a ready {registry.kind}")
        return kind
    return registry.get(kind)(**fixed, **(options or {}))


class Attention(nn.Module):
    """Attention pooling ``context_i = Σ_j a_ij v_j`` with ``a = normalise(mask(score(q_i, k_j)))``.

    Steps (numbered as in :meth:`forward`):

    1. score: ``s = score(queries, keys)`` ``(B, Tq, Tk)``;
    2. mask: valid lengths, an optional boolean ``mask`` (``True`` = keep) and the window's mask;
    3. normalise: softmax (``normaliser="soft"``) or a one-hot sample (``"hard"``), then the
       window's reweighting (local-p's Gaussian);
    4. pool: ``context = dropout(a) @ values`` ``(B, Tq, dv)``.

    Args:
        score: a name in :data:`~attnrun.core.scores.score_functions` or a ready
            :class:`~attnrun.core.scores.Score`.
        query_dim: ``dq``; key_dim: ``dk`` (default ``dq``).
        num_hiddens: hidden size for scores that have one (``additive``).
        dropout: dropout on the weights before pooling (the weights returned are pre-dropout).
        normaliser: ``"soft"`` | ``"hard"`` (or a module); ``normaliser_options`` e.g.
            ``{"tau": 0.5}``.
        window: ``None``/``"global"`` | ``"local_m"`` | ``"local_p"`` (or a module);
            ``window_options`` e.g. ``{"half_width": 5}``.
        backend: ``"auto"`` (measured choice, :func:`prefer_fused`), ``"fused"`` (SDPA whenever
            possible) or ``"plain"``.
        **score_options: passed to the score factory (e.g. ``max_len`` for ``location``).

    Shapes: queries ``(B, Tq, dq)``, keys ``(B, Tk, dk)``, values ``(B, Tk, dv)``; extra leading
    dimensions (heads) are carried through. valid_lens ``(B,)`` or ``(B, Tq)``.

    Papers: Bahdanau et al. 2015 (additive), Luong et al. 2015 (dot/general/location, local
    windows), Vaswani et al. 2017 (scaled dot), Graves et al. 2014 (content-based), Xu et al. 2015
    (hard attention).
    """

    def __init__(
        self,
        score: str | Score = "scaled_dot",
        query_dim: int | None = None,
        key_dim: int | None = None,
        num_hiddens: int | None = None,
        dropout: float = 0.0,
        *,
        normaliser: str | nn.Module = "soft",
        normaliser_options: dict | None = None,
        window: str | nn.Module | None = None,
        window_options: dict | None = None,
        backend: str = "auto",
        **score_options,
    ) -> None:
        super().__init__()
        if isinstance(score, Score):
            if score_options:
                raise ConfigError(f"score options {sorted(score_options)} given with a ready score")
            self.score = score
        else:
            if query_dim is None:
                raise ConfigError(f"Attention({score!r}) needs query_dim")
            key_dim = query_dim if key_dim is None else key_dim
            self.score = make_score(score, query_dim, key_dim, num_hiddens, **score_options)
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must lie in [0, 1); got {dropout}")
        if backend not in BACKENDS:
            raise ConfigError(
                f"unknown attention backend {backend!r}; valid: {', '.join(BACKENDS)}"
            )
        self.backend = backend
        self.dropout = nn.Dropout(dropout)
        self.normaliser = _build(normaliser, normalisers, normaliser_options)
        qd = self.score.query_dim
        self.window = _build(window or "global", windows, window_options, query_dim=qd)

    def project_keys(self, keys: Tensor) -> Tensor:
        """The score's per-sequence key projection; pass it back as ``projected_keys``."""
        return self.score.project_keys(keys)

    def forward(
        self,
        queries: Tensor,
        keys: Tensor,
        values: Tensor,
        valid_lens: Tensor | None = None,
        need_weights: bool = True,
        *,
        mask: Tensor | None = None,
        positions: Tensor | int | None = None,
        projected_keys: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend; returns ``(context (B, Tq, dv), weights (B, Tq, Tk) or None)``.

        Args:
            queries, keys, values: see the class docstring.
            valid_lens: ``(B,)`` or ``(B, Tq)``: key ``j`` is visible iff ``j < valid_lens``.
            need_weights: with ``False`` the weights may be skipped (``None``) for a fused kernel.
            mask: boolean, broadcastable to ``(B, Tq, Tk)``; ``True`` = may attend.
            positions: decoder steps of the queries for local windows (``None``: ``0..Tq-1``;
                an int ``t`` for one step; or ``(Tq,)`` / ``(B, Tq)``).
            projected_keys: ``self.project_keys(keys)``, computed once per source sequence.
        """
        _check_qkv(queries, keys, values)
        scores_shape = tuple(queries.shape[:-1]) + (keys.shape[-2],)
        # 2. mask (computed first: the fused path needs it too)
        keep, maybe_empty = keep_mask_info(scores_shape, valid_lens, mask)
        win_keep, reweight = self.window(queries, scores_shape, valid_lens, positions)
        if win_keep is not None:
            keep, maybe_empty = combine_masks(keep, win_keep), True

        soft = reweight is None and getattr(self.normaliser, "is_soft", False)
        ragged = valid_lens if mask is None and win_keep is None else None
        if not need_weights and soft:
            out = self._dot_with_weights(
                queries, keys, values, keep, maybe_empty, projected_keys, ragged, ragged_only=True
            )
            if out is not None:
                return out[0], None
            context = self._fused(queries, keys, values, keep, maybe_empty, projected_keys)
            if context is not None:
                return context, None

        if soft:
            out = self._dot_with_weights(
                queries, keys, values, keep, maybe_empty, projected_keys, ragged
            )
            if out is not None:
                return out

        # 1. score
        scores = self.score(queries, keys, projected_keys)
        # 3. normalise (+ reweight)
        inplace = getattr(self.score, "fresh_output", False)
        weights = self.normaliser(scores, keep, maybe_empty, inplace=inplace)
        if reweight is not None:
            weights = weights * reweight.to(weights.dtype)
        # 4. pool
        pooled = self.dropout(weights) if self.dropout.p > 0 else weights
        context = pooled @ values
        return context, weights

    def _fused(self, queries, keys, values, keep, maybe_empty, projected_keys) -> Tensor | None:
        """SDPA on the score's dot form, or ``None`` when the plain path is the better choice."""
        if self.backend == "plain":
            return None
        if self.backend == "auto" and not prefer_fused(
            queries.device, queries.shape[-2], keys.shape[-2], keep is not None
        ):
            return None
        form = self.score.dot_form(queries, keys, projected_keys)
        if form is None:
            return None
        q, k, scale = form
        p = self.dropout.p if self.training else 0.0
        if q.ndim == 3:
            # CPU SDPA takes its fused (flash) kernel only for 4-D inputs; 3-D falls back to the
            # unfused math path (measured 3.2x slower at B=256, T=256, d=64). Add a head axis.
            q, k, v = q.unsqueeze(1), k.unsqueeze(1), values.unsqueeze(1)  # (B, 1, T, d)
            mask4 = None if keep is None else keep.unsqueeze(-3) if keep.ndim == 3 else keep
            context = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask4, dropout_p=p, scale=scale
            ).squeeze(1)  # (B, Tq, dv)
        else:
            context = F.scaled_dot_product_attention(
                q, k, values, attn_mask=keep, dropout_p=p, scale=scale
            )
        if maybe_empty and keep is not None and context.device.type != "cpu":
            # CPU SDPA returns zeros for rows with nothing kept (checked in the tests); other
            # backends may return NaN, so force the core's convention there.
            context = context.masked_fill(~keep.any(dim=-1, keepdim=True), 0.0)
        return context

    def _dot_with_weights(
        self,
        queries,
        keys,
        values,
        keep,
        maybe_empty,
        projected_keys,
        valid_lens=None,
        ragged_only: bool = False,
    ):
        """Steps 1-4 for dot-form scores as one autograd Function (:class:`_DotAttention`, or
        :class:`_RaggedDotAttention` when :func:`prefer_ragged` says the valid lengths leave
        enough padding to skip), or ``None`` for the plain path (backend ``"plain"``, active
        dropout, autocast, mixed dtypes). ``ragged_only``: the caller does not need the weights
        and has the fused SDPA kernel to fall back on, so only the row-by-row path is worth it.
        """
        if self.backend == "plain" or (self.training and self.dropout.p > 0):
            return None
        if torch.is_autocast_enabled(queries.device.type):
            return None
        lens = None  # the row-by-row path: checked before dot_form, which may cost a product
        if (
            self.backend == "auto"
            and valid_lens is not None
            and valid_lens.ndim == 1
            and queries.device.type == "cpu"
        ):
            lens = valid_lens.tolist()
            tq, tk = queries.shape[-2], keys.shape[-2]
            if not prefer_ragged(lens, tq, tk, need_weights=not ragged_only):
                lens = None
        if lens is None and ragged_only:
            return None
        form = self.score.dot_form(queries, keys, projected_keys)
        if form is None:
            return None
        q, k, scale = form
        if not q.dtype == k.dtype == values.dtype or not q.dtype.is_floating_point:
            return None
        if lens is not None:
            return _RaggedDotAttention.apply(q, k, values, lens, scale)
        return _DotAttention.apply(q, k, values, keep, scale, maybe_empty)

    def extra_repr(self) -> str:
        return f"backend={self.backend!r}"


def _check_qkv(queries: Tensor, keys: Tensor, values: Tensor) -> None:
    if queries.ndim < 3 or keys.ndim != queries.ndim or values.ndim != queries.ndim:
        raise ConfigError(
            "attention expects queries (B, Tq, dq), keys (B, Tk, dk), values (B, Tk, dv) with the "
            f"same number of dimensions; got {tuple(queries.shape)}, {tuple(keys.shape)}, "
            f"{tuple(values.shape)}"
        )
    if keys.shape[:-1] != values.shape[:-1] or queries.shape[:-2] != keys.shape[:-2]:
        raise ConfigError(
            "attention: queries (B, Tq, dq), keys (B, Tk, dk) and values (B, Tk, dv) disagree on "
            f"B or Tk; got {tuple(queries.shape)}, {tuple(keys.shape)}, {tuple(values.shape)}"
        )


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
