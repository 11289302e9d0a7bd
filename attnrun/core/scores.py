"""Attention score functions: the "score" step of score → mask → normalise → pool.

Every score is an :class:`~torch.nn.Module` built by a factory with the uniform signature
``(query_dim, key_dim, num_hiddens=None, **options)`` and called as

    ``score(queries (B, Tq, dq), keys (B, Tk, dk)) -> scores (B, Tq, Tk)``

(extra leading dimensions, such as heads in ``(B, heads, T, d)``, are carried through). Scores are
raw (unnormalised); masking and the softmax are the core's job (:mod:`attnrun.core.masking`).

Scores that transform the keys (``additive``, ``general``, ``cosine``) split the work into
:meth:`Score.project_keys` and ``forward(queries, keys, projected_keys=...)``, so a decoder projects
the source once per sequence instead of at every step. Scores that are a scaled dot product of
(possibly transformed) queries and keys expose :meth:`Score.dot_form`, which lets the core use the
fused :func:`torch.nn.functional.scaled_dot_product_attention` kernel.

Look a score up by name with ``score_functions.get(name)`` or build one with :func:`make_score`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnrun.errors import ConfigError
from attnrun.registry import Registry

__all__ = [
    "AdditiveScore",
    "CosineScore",
    "DotScore",
    "GeneralScore",
    "LocationScore",
    "ScaledDotScore",
    "Score",
    "make_score",
    "score_functions",
]

#: name → factory ``(query_dim, key_dim, num_hiddens=None, **options) -> Score``.
score_functions: Registry[Callable[..., Score]] = Registry("score function")


def _check_dims(name: str, queries: Tensor, keys: Tensor, dq: int | None, dk: int | None) -> None:
    """Raise a ConfigError naming both shapes when the inputs do not fit the score."""
    if queries.ndim < 2 or keys.ndim < 2:
        raise ConfigError(
            f"{name} score expects queries (B, Tq, dq) and keys (B, Tk, dk); "
            f"got {tuple(queries.shape)} and {tuple(keys.shape)}"
        )
    if (dq is not None and queries.shape[-1] != dq) or (dk is not None and keys.shape[-1] != dk):
        raise ConfigError(
            f"{name} score built for query_dim={dq}, key_dim={dk}; got queries "
            f"{tuple(queries.shape)} and keys {tuple(keys.shape)}"
        )
    if queries.shape[:-2] != keys.shape[:-2]:
        raise ConfigError(
            f"{name} score: batch dimensions differ between queries {tuple(queries.shape)} "
            f"and keys {tuple(keys.shape)}"
        )


class Score(nn.Module):
    """Base class: ``forward(queries (..., Tq, dq), keys (..., Tk, dk)) -> (..., Tq, Tk)``.

    Subclasses implement :meth:`score` on projected keys; :meth:`project_keys` defaults to the
    identity.
    """

    name = "score"
    #: The scores are a fresh matmul output that autograd does not save, so the core may mask
    #: them in place (saves one (Tq, Tk) pass). Subclasses whose output is saved must say False.
    fresh_output = False

    def __init__(self, query_dim: int, key_dim: int) -> None:
        super().__init__()
        self.query_dim = query_dim
        self.key_dim = key_dim

    def project_keys(self, keys: Tensor) -> Tensor:
        """Per-sequence key transform ``(..., Tk, dk) -> (..., Tk, d')``; reuse it across steps."""
        return keys

    def score(self, queries: Tensor, projected_keys: Tensor) -> Tensor:
        raise NotImplementedError

    def dot_form(
        self, queries: Tensor, keys: Tensor, projected_keys: Tensor | None = None
    ) -> tuple[Tensor, Tensor, float] | None:
        """``(q', k', scale)`` with ``scores = scale · q' k'ᵀ`` when the score is a dot product.

        ``None`` for scores that are not (additive, location); the core then takes the plain path.
        """
        return None

    def forward(
        self, queries: Tensor, keys: Tensor, projected_keys: Tensor | None = None
    ) -> Tensor:
        """Scores ``(..., Tq, Tk)``; pass ``projected_keys=self.project_keys(keys)`` to reuse it."""
        _check_dims(self.name, queries, keys, self.query_dim, self.key_dim)
        if projected_keys is None:
            projected_keys = self.project_keys(keys)
        return self.score(queries, projected_keys)

    def extra_repr(self) -> str:
        return f"query_dim={self.query_dim}, key_dim={self.key_dim}"


def _same_dims(name: str, query_dim: int, key_dim: int) -> None:
    if query_dim != key_dim:
        raise ConfigError(
            f"{name} score needs query_dim == key_dim; got query_dim={query_dim}, "
            f"key_dim={key_dim} (use 'general' or 'additive' for different sizes)"
        )


@score_functions.register("dot")
class DotScore(Score):
    """Dot product ``score(q, k) = qᵀ k`` (Luong et al. 2015, "dot", eq. 8). Needs dq == dk."""

    name = "dot"
    fresh_output = True

    def __init__(self, query_dim: int, key_dim: int, num_hiddens: int | None = None) -> None:
        _same_dims(self.name, query_dim, key_dim)
        super().__init__(query_dim, key_dim)

    def score(self, queries: Tensor, projected_keys: Tensor) -> Tensor:
        return queries @ projected_keys.transpose(-1, -2)

    def dot_form(self, queries, keys, projected_keys=None):
        return queries, keys, 1.0


@score_functions.register("scaled_dot")
class ScaledDotScore(Score):
    """Scaled dot product ``score(q, k) = qᵀ k / √d`` (Vaswani et al. 2017, eq. 1); dq = dk = d."""

    name = "scaled_dot"
    fresh_output = True

    def __init__(self, query_dim: int, key_dim: int, num_hiddens: int | None = None) -> None:
        _same_dims(self.name, query_dim, key_dim)
        super().__init__(query_dim, key_dim)
        self.scale = 1.0 / math.sqrt(key_dim)

    def score(self, queries: Tensor, projected_keys: Tensor) -> Tensor:
        # Scaling the (Tq, d) queries is cheaper than scaling the (Tq, Tk) scores.
        return (queries * self.scale) @ projected_keys.transpose(-1, -2)

    def dot_form(self, queries, keys, projected_keys=None):
        return queries, keys, self.scale


@score_functions.register("cosine")
class CosineScore(Score):
    """Content-based ``score(q, k) = β · qᵀk / (‖q‖ ‖k‖)`` (Graves et al. 2014, NTM eq. 5-6).

    ``β`` (key strength) sharpens the softmax; it is ``beta`` (default 1) and, with
    ``learn_beta=True``, a learned positive scalar (stored as ``log β``). Needs dq == dk.
    """

    name = "cosine"
    fresh_output = True

    def __init__(
        self,
        query_dim: int,
        key_dim: int,
        num_hiddens: int | None = None,
        beta: float = 1.0,
        learn_beta: bool = False,
        eps: float = 1e-8,
    ) -> None:
        _same_dims(self.name, query_dim, key_dim)
        if beta <= 0:
            raise ConfigError(f"cosine score: beta must be > 0; got {beta}")
        super().__init__(query_dim, key_dim)
        self.eps = eps
        log_beta = torch.tensor(math.log(beta))
        if learn_beta:
            self.log_beta = nn.Parameter(log_beta)
        else:
            self.register_buffer("log_beta", log_beta)

    def project_keys(self, keys: Tensor) -> Tensor:
        return F.normalize(keys, dim=-1, eps=self.eps)

    def _query(self, queries: Tensor) -> Tensor:
        beta = self.log_beta.exp().to(queries.dtype)
        return F.normalize(queries, dim=-1, eps=self.eps) * beta

    def score(self, queries: Tensor, projected_keys: Tensor) -> Tensor:
        return self._query(queries) @ projected_keys.transpose(-1, -2)

    def dot_form(self, queries, keys, projected_keys=None):
        if projected_keys is None:
            projected_keys = self.project_keys(keys)
        return self._query(queries), projected_keys, 1.0


@score_functions.register("general")
class GeneralScore(Score):
    """Bilinear ``score(q, k) = qᵀ W k`` with ``W ∈ R^{dq×dk}`` (Luong et al. 2015, "general").

    :meth:`project_keys` computes ``W k`` ``(B, Tk, dq)`` once per source sequence.
    """

    name = "general"
    fresh_output = True

    def __init__(
        self, query_dim: int, key_dim: int, num_hiddens: int | None = None, bias: bool = False
    ) -> None:
        super().__init__(query_dim, key_dim)
        self.W = nn.Linear(key_dim, query_dim, bias=bias)

    def project_keys(self, keys: Tensor) -> Tensor:
        return self.W(keys)

    def score(self, queries: Tensor, projected_keys: Tensor) -> Tensor:
        return queries @ projected_keys.transpose(-1, -2)

    def dot_form(self, queries, keys, projected_keys=None):
        if projected_keys is None:
            projected_keys = self.project_keys(keys)
        return queries, projected_keys, 1.0


@score_functions.register("concat")
@score_functions.register("additive")
class AdditiveScore(Score):
    """Additive / concat ``score(q, k) = vᵀ tanh(W_q q + W_k k)`` (Bahdanau et al. 2015, eq. 6;
    Luong et al. 2015 call it "concat": ``vᵀ tanh(W [q; k])``, the same with ``W = [W_q W_k]``).

    ``W_q ∈ R^{h×dq}``, ``W_k ∈ R^{h×dk}``, ``v ∈ R^h`` with ``h = num_hiddens`` (default
    ``key_dim``). :meth:`project_keys` computes ``W_k k`` ``(B, Tk, h)`` once per source sequence;
    the per-step cost is then ``O(Tk·h)`` instead of ``O(Tk·h·dk)``.
    """

    name = "additive"
    fresh_output = True

    def __init__(
        self, query_dim: int, key_dim: int, num_hiddens: int | None = None, bias: bool = False
    ) -> None:
        super().__init__(query_dim, key_dim)
        hidden = key_dim if num_hiddens is None else num_hiddens
        if hidden < 1:
            raise ConfigError(f"additive score: num_hiddens must be >= 1; got {hidden}")
        self.num_hiddens = hidden
        self.W_q = nn.Linear(query_dim, hidden, bias=False)
        self.W_k = nn.Linear(key_dim, hidden, bias=bias)
        self.v = nn.Linear(hidden, 1, bias=False)

    def project_keys(self, keys: Tensor) -> Tensor:
        return self.W_k(keys)

    def score(self, queries: Tensor, projected_keys: Tensor) -> Tensor:
        q = self.W_q(queries)  # (..., Tq, h)
        v = self.v.weight.squeeze(0)  # (h,)
        if q.dtype == projected_keys.dtype == v.dtype and q.dtype.is_floating_point:
            return _AdditiveFeatures.apply(q, projected_keys, v)  # (..., Tq, Tk)
        features = torch.tanh(q.unsqueeze(-2) + projected_keys.unsqueeze(-3))  # (..., Tq, Tk, h)
        return features @ v.to(features.dtype)  # (..., Tq, Tk)


class _AdditiveFeatures(torch.autograd.Function):
    """``s = tanh(q[..., :, None, :] + k[..., None, :, :]) @ v`` with one ``(Tq, Tk, h)`` buffer
    per pass.

    The ``(…, Tq, Tk, h)`` features dominate the additive score's cost and are memory-bound.
    Autograd's composition allocates four such tensors per forward + backward (the sum, its tanh,
    the gradient of the tanh output, the tanh backward); here the sum is taken through ``tanh``
    in place, and the backward writes ``(g ⊗ v) · (1 − t²)`` into a single buffer before reducing
    it to the gradients of ``q`` and ``k``. Shapes: q ``(..., Tq, h)``, k ``(..., Tk, h)``,
    v ``(h,)``; leading dimensions of q and k broadcast.
    """

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        t = torch.add(q.unsqueeze(-2), k.unsqueeze(-3)).tanh_()  # (..., Tq, Tk, h)
        ctx.save_for_backward(t, v)
        ctx.shapes = (q.shape, k.shape)
        return t @ v

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        t, v = ctx.saved_tensors
        q_shape, k_shape = ctx.shapes
        grad_v = None
        if ctx.needs_input_grad[2]:
            grad_v = grad.reshape(1, -1) @ t.reshape(-1, t.shape[-1])  # (1, h)
            grad_v = grad_v.view(v.shape)
        if not (ctx.needs_input_grad[0] or ctx.needs_input_grad[1]):
            return None, None, grad_v
        g = grad.unsqueeze(-1) * v  # (..., Tq, Tk, h): the features' gradient
        torch.ops.aten.tanh_backward.grad_input(g, t, grad_input=g)  # g · (1 − t²), in place
        grad_q = g.sum(-2).sum_to_size(q_shape) if ctx.needs_input_grad[0] else None
        grad_k = None
        if ctx.needs_input_grad[1]:
            # One query (a decoder step): the sum over Tq = 1 is a view, not a (Tk, h) copy.
            grad_k = g.squeeze(-3) if g.shape[-3] == 1 else g.sum(-3)
            grad_k = grad_k.sum_to_size(k_shape)
        return grad_q, grad_k, grad_v


@score_functions.register("location")
class LocationScore(Score):
    """Location-based ``score(h_t) = W_a h_t`` (Luong et al. 2015, "location", eq. 8).

    The alignment ``softmax(W_a h_t)`` depends on the query only; ``W_a ∈ R^{max_len×dq}`` and the
    first ``Tk`` of its ``max_len`` outputs are the scores. ``max_len`` (default 100) bounds the
    source length: a longer source raises :class:`ConfigError`.
    """

    name = "location"
    fresh_output = True

    def __init__(
        self, query_dim: int, key_dim: int, num_hiddens: int | None = None, max_len: int = 100
    ) -> None:
        super().__init__(query_dim, key_dim)
        if max_len < 1:
            raise ConfigError(f"location score: max_len must be >= 1; got {max_len}")
        self.max_len = max_len
        self.W_a = nn.Linear(query_dim, max_len, bias=False)

    def forward(self, queries, keys, projected_keys=None):
        _check_dims(self.name, queries, keys, self.query_dim, None)
        tk = keys.shape[-2]
        if tk > self.max_len:
            raise ConfigError(
                f"location score built with max_len={self.max_len} but the keys "
                f"{tuple(keys.shape)} have Tk={tk}; raise max_len (score option max_len=...)"
            )
        return self.W_a(queries)[..., :tk]  # (..., Tq, Tk)


def make_score(
    name: str, query_dim: int, key_dim: int, num_hiddens: int | None = None, **options
) -> Score:
    """Build the score ``name`` from the registry; unknown names or options raise ConfigError."""
    factory = score_functions.get(name)
    params = inspect.signature(factory).parameters
    accepted = [p for p in params if p not in ("self", "query_dim", "key_dim", "num_hiddens")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(
            f"score {name!r} has no option(s) {', '.join(unknown)}; valid: "
            f"{', '.join(accepted) or '(none)'}"
        )
    return factory(query_dim, key_dim, num_hiddens, **options)
