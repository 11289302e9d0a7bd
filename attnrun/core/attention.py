"""The shared attention core: score → mask → normalise → pool, returning ``(context, weights)``.

:class:`Attention` composes three registry-built pieces — a score (:mod:`attnrun.core.scores`), a
window (:mod:`attnrun.core.local`) and a normaliser (:mod:`attnrun.core.hard`) — and is the only
place in attnrun that turns scores into weighted sums of values.

Fast path: when the caller does not need the weights, the normaliser is the softmax, the window does
not reweight and the score is a dot product of (transformed) queries and keys, the core calls
:func:`torch.nn.functional.scaled_dot_product_attention` (fused kernels) if :func:`prefer_fused`
says it is faster for that device and shape. Otherwise it runs the plain path, which
``benchmarks/bench_core.py`` checks against the fused one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnrun.core.hard import normalisers
from attnrun.core.local import windows
from attnrun.core.masking import combine_masks, keep_mask_info
from attnrun.core.scores import Score, make_score
from attnrun.errors import ConfigError

__all__ = ["Attention", "prefer_fused"]

#: On CPU the fused kernel loses on small problems (per-call overhead) and wins on large ones; the
#: crossover, measured by ``benchmarks/bench_core.py`` on a 2-core machine (forward + backward),
#: lies between Tq·Tk = 64·64 (SDPA ≈ 2× slower) and 128·128 (SDPA ≈ equal or faster).
CPU_FUSED_MIN_SCORES = 128 * 128
BACKENDS = ("auto", "fused", "plain")


def prefer_fused(device: torch.device, tq: int, tk: int, masked: bool) -> bool:
    """Whether the fused SDPA kernel is the faster choice for this device and shape.

    CUDA (and other accelerators): always — fused kernels avoid materialising ``(Tq, Tk)``.
    CPU: only for ``Tq·Tk ≥ CPU_FUSED_MIN_SCORES`` (see the measurements above).
    """
    if device.type != "cpu":
        return True
    return tq * tk >= CPU_FUSED_MIN_SCORES


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
        window: ``None``/``"global"`` | ``"local-m"`` | ``"local-p"`` (or a module);
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

        if not need_weights and reweight is None and getattr(self.normaliser, "is_soft", False):
            context = self._fused(queries, keys, values, keep, maybe_empty, projected_keys)
            if context is not None:
                return context, None

        # 1. score
        scores = self.score(queries, keys, projected_keys)
        # 3. normalise (+ reweight)
        weights = self.normaliser(scores, keep, maybe_empty)
        if reweight is not None:
            weights = weights * reweight.to(weights.dtype)
        # 4. pool
        context = self.dropout(weights) @ values
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
        context = F.scaled_dot_product_attention(
            q, k, values, attn_mask=keep, dropout_p=p, scale=scale
        )
        if maybe_empty and keep is not None and context.device.type != "cpu":
            # CPU SDPA returns zeros for rows with nothing kept (checked in the tests); other
            # backends may return NaN, so force the core's convention there.
            context = context.masked_fill(~keep.any(dim=-1, keepdim=True), 0.0)
        return context

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
