"""Head interventions: remove, replace, gate or re-weight attention heads — one hook point per head.

Every attention module that a tool may question carries a **site** ``(kind, layer)`` — the names and
0-based numbering of ``attention.json`` and the viewer: ``encoder_self``, ``decoder_self`` and
``cross`` for translation (an RNN decoder's one attention is ``("cross", 0)``), ``self`` for
selfattn's blocks, whose pointer is the layer after the last block. A head is ``(kind, layer,
head)``. Models set sites when they build their attention; nothing else names them.

What happens to the heads is an :class:`Interventions` object made active for a block of code with
:func:`intervene`. It lives in a :class:`contextvars.ContextVar`, so it applies to the calling
thread (or asyncio task) only: two requests with different ablations, in two threads, never see each
other's (``attnrun serve``), and nothing is left on the modules when the block ends.

At a site, the heads' contexts ``(B, H, Tq, hd)`` — each head's output before the heads are
concatenated and projected by ``W_o`` — become

    ``c_h ← ξ_h · c_h + (1 − ξ_h) · m_h``

with a gate ``ξ`` (``(H,)`` or, per example, ``(B, H)``) and an optional replacement ``m``
``(H, hd)`` (default 0). ``ξ_h = 0`` removes head ``h`` (Michel et al. 2019, "Are Sixteen Heads
Really Better than One?"); with ``m_h`` the head's mean output over a data set it is mean-ablation;
a gate of ones that requires grad gives the head-importance score ``I_h = E_x |∂L(x)/∂ξ_h|``
(Michel et al. 2019, eq. 2). The same gate on selfattn's pointer re-mixes its heads.

A **weight replacement** (for attention without heads to remove — the RNN decoders, Jain & Wallace
2019; Wiegreffe & Pinter 2019) swaps a site's normalised weights for others before pooling:
``uniform`` over the valid keys, ``permute`` (each row's weights shuffled over its valid keys),
``other`` (another sentence's weights, renormalised over this one's keys) and ``argmax`` (hard).

:class:`HeadRecorder` sums each head's context over the valid query positions of a data set, for
mean-ablation's ``m_h`` (the mean over the split, not over one batch).

:func:`attention_rollout` follows attention through a stack of self-attention layers (Abnar &
Zuidema 2020).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from attnrun.errors import ConfigError
from attnrun.registry import Registry

__all__ = [
    "Head",
    "HeadRecorder",
    "Interventions",
    "Site",
    "active",
    "apply_to_context",
    "attention_rollout",
    "gate_heads",
    "head_sites",
    "intervene",
    "replace_weights",
    "weight_replacements",
]

#: ``(kind, layer)``: one multi-head attention (or an RNN decoder's attention), 0-based layer.
Site = tuple[str, int]


@dataclass(frozen=True, order=True)
class Head:
    """One head: ``kind`` and 0-based ``layer`` and ``head``, as in ``attention.json``."""

    kind: str
    layer: int
    head: int

    @property
    def site(self) -> Site:
        return (self.kind, self.layer)

    def label(self) -> str:
        """``"cross L2 H1"`` (1-based, as the viewer's pickers say)."""
        return f"{self.kind} L{self.layer + 1} H{self.head + 1}"


#: ``(weights (..., Tq, Tk), keep (..., Tq, Tk) bool, generator) -> weights``: rows of the result
#: sum to one over the kept keys and are zero elsewhere.
WeightReplacement = Callable[[Tensor, Tensor, "torch.Generator | None"], Tensor]

weight_replacements: Registry[WeightReplacement] = Registry("weight replacement")


@dataclass
class Interventions:
    """What to do to the heads during a forward pass (see the module docstring).

    Attributes:
        gates: site → ``ξ`` ``(H,)`` or ``(B, H)``: each head's context is scaled by it.
        replacements: site → ``m`` ``(H, hd)``: what a gated-off head outputs instead of 0.
        weights: site → a name in :data:`weight_replacements`: the site's weights are replaced
            before pooling (the plain attention path is taken there).
        generator: the random source of ``permute`` (seed it for repeatable figures).
        recorder: a :class:`HeadRecorder` that sums every site's head contexts.
    """

    gates: dict[Site, Tensor] = field(default_factory=dict)
    replacements: dict[Site, Tensor] = field(default_factory=dict)
    weights: dict[Site, str] = field(default_factory=dict)
    generator: torch.Generator | None = None
    recorder: HeadRecorder | None = None

    def __post_init__(self) -> None:
        for site, name in self.weights.items():
            weight_replacements.get(name)  # unknown names fail here, listing the valid ones
            _check_site(site)
        for site in (*self.gates, *self.replacements):
            _check_site(site)

    @classmethod
    def remove(
        cls,
        heads: Sequence[Head],
        num_heads: dict[Site, int],
        means: dict[Site, Tensor] | None = None,
    ) -> Interventions:
        """Gates that remove ``heads`` (zero-ablation, or mean-ablation with ``means``, site →
        ``(H, hd)``). ``num_heads``: each site's head count; an unknown site or head raises
        :class:`ConfigError` naming the valid ones."""
        gates: dict[Site, Tensor] = {}
        for h in heads:
            if h.site not in num_heads:
                valid = ", ".join(f"{k} layer {i + 1}" for k, i in sorted(num_heads))
                raise ConfigError(
                    f"no attention {h.kind} layer {h.layer + 1} in this model; valid: {valid}"
                )
            n = num_heads[h.site]
            if not 0 <= h.head < n:
                raise ConfigError(
                    f"{h.kind} layer {h.layer + 1} has heads 1..{n}; got head {h.head + 1}"
                )
            gates.setdefault(h.site, torch.ones(n))[h.head] = 0.0
        replacements = {s: means[s] for s in gates if means is not None and s in means}
        return cls(gates=gates, replacements=replacements)


def head_sites(model: nn.Module) -> dict[Site, int]:
    """Every hook point of ``model`` and its number of heads, in the model's module order:
    ``{("encoder_self", 0): 4, ..., ("cross", 0): 1 (an RNN decoder's one attention)}``."""
    sites: dict[Site, int] = {}
    for module in model.modules():
        site = getattr(module, "site", None)
        if site is None or site in sites:
            continue
        num_heads = getattr(module, "num_heads", None)  # a MultiHeadAttention's int
        if num_heads is not None:
            sites[site] = int(num_heads)
        elif not any(site == getattr(m, "site", None) for m in model.modules() if m is not module):
            sites[site] = 1
    return sites


def _check_site(site: object) -> None:
    if not (isinstance(site, tuple) and len(site) == 2 and isinstance(site[1], int)):
        raise ConfigError(f"a head site is (kind, layer); got {site!r}")


_ACTIVE: ContextVar[Interventions | None] = ContextVar("attnrun_interventions", default=None)


def active() -> Interventions | None:
    """The interventions in force in this thread / task (``None``: the model runs untouched)."""
    return _ACTIVE.get()


@contextmanager
def intervene(interventions: Interventions | None) -> Iterator[Interventions | None]:
    """Apply ``interventions`` to every attention run inside the block (this thread only)."""
    token = _ACTIVE.set(interventions)
    try:
        yield interventions
    finally:
        _ACTIVE.reset(token)


def apply_to_context(site: Site | None, context: Tensor) -> Tensor:
    """The hook: heads' contexts ``(B, H, Tq, hd)`` at ``site`` after the active gates and
    replacements (and recorded, when a recorder listens). Unchanged when nothing is active."""
    iv = _ACTIVE.get()
    if iv is None or site is None:
        return context
    if iv.recorder is not None:
        iv.recorder.add(site, context)
    gate = iv.gates.get(site)
    if gate is None:
        return context
    b, h = context.shape[0], context.shape[1]
    g = gate.to(context.device, context.dtype)
    if g.shape[-1] != h:
        raise ConfigError(f"gate of {g.shape[-1]} heads for {site[0]} layer {site[1] + 1}: has {h}")
    g = g.expand(b, h)[:, :, None, None]  # (B, H, 1, 1)
    out = context * g
    mean = iv.replacements.get(site)
    if mean is not None:
        out = out + (1 - g) * mean.to(context.device, context.dtype)[None, :, None, :]
    return out


def gate_heads(site: Site | None, num_heads: int) -> Tensor | None:
    """The active gate ``(H,)`` or ``(B, H)`` at ``site``, for modules that mix heads themselves
    (selfattn's pointer); ``None`` when nothing gates it."""
    iv = _ACTIVE.get()
    if iv is None or site is None:
        return None
    return iv.gates.get(site)


def replace_weights(site: Site | None, weights: Tensor, keep: Tensor | None) -> Tensor:
    """``weights (..., Tq, Tk)`` after the active weight replacement at ``site`` (if any).
    ``keep``: the keys each query may see (``None``: all)."""
    iv = _ACTIVE.get()
    if iv is None or site is None or site not in iv.weights:
        return weights
    if keep is None:
        keep = torch.ones_like(weights, dtype=torch.bool)
    keep = keep.expand_as(weights)
    return weight_replacements.get(iv.weights[site])(weights, keep, iv.generator)


def wants_plain_path(site: Site | None) -> bool:
    """Whether ``site``'s weights are to be replaced (the fused kernels cannot)."""
    iv = _ACTIVE.get()
    return iv is not None and site is not None and site in iv.weights


def _renormalise(w: Tensor, keep: Tensor) -> Tensor:
    w = w.masked_fill(~keep, 0.0)
    total = w.sum(-1, keepdim=True)
    uniform = keep.to(w.dtype) / keep.sum(-1, keepdim=True).clamp_min(1)
    return torch.where(total > 0, w / total.clamp_min(1e-30), uniform)


@weight_replacements.register("uniform")
def uniform_weights(weights: Tensor, keep: Tensor, generator=None) -> Tensor:
    """``1 / n`` on each of the ``n`` keys a query may see (average pooling; Wiegreffe & Pinter
    2019's uniform baseline)."""
    k = keep.to(weights.dtype)
    return k / k.sum(-1, keepdim=True).clamp_min(1)


@weight_replacements.register("permute")
def permuted_weights(weights: Tensor, keep: Tensor, generator=None) -> Tensor:
    """Each row's weights shuffled over its own valid keys (Jain & Wallace 2019, 4.2): the same
    multiset of weights, placed at random."""
    out = weights.clone()
    flat_w, flat_k, flat_o = (x.reshape(-1, x.shape[-1]) for x in (weights, keep, out))
    for r in range(flat_w.shape[0]):
        idx = flat_k[r].nonzero().squeeze(1)
        if idx.numel() > 1:
            perm = idx[torch.randperm(idx.numel(), generator=generator).to(idx.device)]
            flat_o[r, idx] = flat_w[r, perm]
    return out


@weight_replacements.register("other")
def other_sentence_weights(weights: Tensor, keep: Tensor, generator=None) -> Tensor:
    """The weights of the next sentence of the batch (the last takes the first's), cut or padded
    to this sentence's valid keys and renormalised: attention that belongs to another input."""
    if weights.shape[0] < 2:
        return uniform_weights(weights, keep, generator)
    return _renormalise(weights.roll(1, dims=0), keep)


@weight_replacements.register("argmax")
def argmax_weights(weights: Tensor, keep: Tensor, generator=None) -> Tensor:
    """Hard attention: all weight on each row's largest (valid) weight."""
    w = weights.masked_fill(~keep, float("-inf"))
    out = torch.zeros_like(weights)
    out.scatter_(-1, w.argmax(-1, keepdim=True), 1.0)
    return out * keep.any(-1, keepdim=True)


class HeadRecorder:
    """Sums each site's head contexts over valid query positions: ``mean(site) (H, hd)``.

    ``query_valid``: kind → ``(B, Tq)`` bool, which query positions count (the caller sets it
    per batch: source positions for ``encoder_self``, target positions for the decoder's kinds);
    a kind without one counts every position.
    """

    def __init__(self) -> None:
        self._sums: dict[Site, Tensor] = {}
        self._counts: dict[Site, float] = {}
        self.query_valid: dict[str, Tensor] = {}

    def add(self, site: Site, context: Tensor) -> None:
        ctx = context.detach().double()  # (B, H, Tq, hd)
        valid = self.query_valid.get(site[0])
        if valid is not None and valid.shape == (ctx.shape[0], ctx.shape[2]):
            m = valid.to(ctx.device, ctx.dtype)[:, None, :, None]  # (B, 1, Tq, 1)
            total, count = (ctx * m).sum((0, 2)), float(valid.sum())
        else:
            total, count = ctx.sum((0, 2)), float(ctx.shape[0] * ctx.shape[2])
        self._sums[site] = self._sums.get(site, 0) + total  # (H, hd)
        self._counts[site] = self._counts.get(site, 0.0) + count

    def means(self) -> dict[Site, Tensor]:
        """site → each head's mean context ``(H, hd)`` (float32)."""
        return {s: (t / max(self._counts[s], 1.0)).float() for s, t in self._sums.items()}


def attention_rollout(weights: Tensor, residual: float = 0.5) -> Tensor:
    """Attention rollout (Abnar & Zuidema 2020, eq. 1-2) of a stack of self-attention.

    ``weights (..., L, H, T, T)`` (layer 0 first) → ``(..., T, T)``: per layer the heads' mean
    ``Ā_l``, the residual stream added as ``Â_l = residual · I + (1 − residual) · Ā_l``, rows
    renormalised, then ``R = Â_L · … · Â_1``: ``R[i, j]`` is how much of the top layer's token
    ``i`` flows from input token ``j``. Rows sum to one.
    """
    if weights.ndim < 4 or weights.shape[-1] != weights.shape[-2]:
        raise ConfigError(
            f"rollout needs (..., L, H, T, T) self-attention; got {tuple(weights.shape)}"
        )
    if not 0.0 <= residual <= 1.0:
        raise ConfigError(f"rollout residual must lie in [0, 1]; got {residual}")
    t = weights.shape[-1]
    eye = torch.eye(t, dtype=weights.dtype, device=weights.device)
    mean = weights.mean(-3)  # (..., L, T, T)
    rollout = eye.expand(mean.shape[:-3] + (t, t)).clone()
    for layer in range(mean.shape[-3]):
        a = residual * eye + (1 - residual) * mean[..., layer, :, :]
        a = a / a.sum(-1, keepdim=True).clamp_min(1e-30)
        rollout = a @ rollout
    return rollout
