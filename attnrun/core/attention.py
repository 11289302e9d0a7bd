"""The shared attention core: score → mask → normalise → pool, returning ``(context, weights)``.

:class:`Attention` composes three registry-built pieces — a score (:mod:`attnrun.core.scores`), a
window (:mod:`attnrun.core.local`) and a normaliser (:mod:`attnrun.core.hard`) — and is the only
place in attnrun that turns scores into weighted sums of values.

Two paths, side by side in :meth:`Attention.forward`:

- the fast path, :func:`attnrun.core.fused.fused_attention`: for a softmax without reweighting and
  a dot-product score, fused kernels (SDPA, or one autograd Function that masks and normalises in
  place) chosen by measurement;
- the plain path, written out here step by step, for everything else and as the reference the
  tests check the fast path against (``backend="plain"`` forces it).
"""

from __future__ import annotations

from torch import Tensor, nn

from attnrun.core.dropout import Dropout
from attnrun.core.fused import fused_attention, prefer_fused
from attnrun.core.hard import normalisers
from attnrun.core.heads import replace_weights, wants_plain_path
from attnrun.core.local import windows
from attnrun.core.masking import combine_masks, keep_mask_info
from attnrun.core.scores import Score, make_score
from attnrun.errors import ConfigError

__all__ = ["Attention", "prefer_fused"]  # prefer_fused lives in attnrun.core.fused

BACKENDS = ("auto", "fused", "plain")


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
        self.dropout = Dropout(dropout)
        self.normaliser = _build(normaliser, normalisers, normaliser_options)
        qd = self.score.query_dim
        self.window = _build(window or "global", windows, window_options, query_dim=qd)
        #: ``(kind, layer)`` hook point of :mod:`attnrun.core.heads` (set by the model that owns
        #: this attention; ``None``: no intervention reaches it).
        self.site: tuple[str, int] | None = None

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
        if (
            soft and self.backend != "plain" and not wants_plain_path(self.site)
        ):  # the fast path, when one applies
            out = fused_attention(
                self.score,
                queries,
                keys,
                values,
                keep,
                maybe_empty,
                projected_keys=projected_keys,
                valid_lens=valid_lens if mask is None and win_keep is None else None,
                need_weights=need_weights,
                backend=self.backend,
                dropout_p=self.dropout.p if self.training else 0.0,
            )
            if out is not None:
                return out

        # The plain path.
        # 1. score
        scores = self.score(queries, keys, projected_keys)
        # 3. normalise (+ reweight)
        inplace = getattr(self.score, "fresh_output", False)
        weights = self.normaliser(scores, keep, maybe_empty, inplace=inplace)
        if reweight is not None:
            weights = weights * reweight.to(weights.dtype)
        weights = replace_weights(self.site, weights, keep)  # an ablation's, else unchanged
        # 4. pool
        pooled = self.dropout(weights) if self.dropout.p > 0 else weights
        context = pooled @ values
        return context, weights

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
