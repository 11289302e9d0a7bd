"""Normalisers: the "normalise" step turning masked scores into attention weights.

A normaliser is a module ``(scores (..., Tq, Tk), keep (bool, broadcastable) | None, maybe_empty,
inplace) -> weights`` with zero weight on every position where ``keep`` is False and all-zero rows
where nothing is kept. ``maybe_empty=False`` promises every row keeps something; ``inplace=True``
allows masking ``scores`` in place.

- ``soft``: the softmax (Bahdanau et al. 2015; Luong et al. 2015) — weights sum to one.
- ``hard``: one position per query, sampled from the softmax weights (Xu et al. 2015, "hard"
  attention), trained with the straight-through Gumbel-softmax estimator (Jang et al. 2017;
  Maddison et al. 2017); in eval mode the argmax. Weights are exactly one-hot in the forward pass.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnrun.core.masking import softmax_keep
from attnrun.errors import ConfigError
from attnrun.registry import Registry

__all__ = ["HardNormaliser", "SoftNormaliser", "normalisers"]

#: name → factory ``(**options) -> normaliser module``.
normalisers: Registry[Callable[..., nn.Module]] = Registry("attention normaliser")


@normalisers.register("soft")
class SoftNormaliser(nn.Module):
    """``softmax`` over the kept keys: ``a_ij = exp(s_ij) / Σ_{k kept} exp(s_ik)``."""

    is_soft = True

    def forward(
        self, scores: Tensor, keep: Tensor | None, maybe_empty: bool = True, inplace: bool = False
    ) -> Tensor:
        return softmax_keep(scores, keep, zero_empty_rows=maybe_empty, inplace=inplace)


@normalisers.register("hard")
class HardNormaliser(nn.Module):
    """Hard attention: a one-hot choice of one key per query.

    Training: ``i* = argmax_j (s_ij + g_j)`` with Gumbel noise ``g`` (an exact sample from
    ``softmax(s)``); the forward value is ``one_hot(i*)`` and the gradient is that of
    ``softmax((s + g) / τ)`` (straight-through Gumbel-softmax, Jang et al. 2017). Eval:
    ``one_hot(argmax_j s_ij)``. Masked keys are never chosen; rows with nothing kept are zero.

    Args:
        tau: temperature of the relaxed sample whose gradient is used (> 0).
    """

    is_soft = False

    def __init__(self, tau: float = 1.0) -> None:
        super().__init__()
        if tau <= 0:
            raise ConfigError(f"hard attention: tau must be > 0; got {tau}")
        self.tau = tau

    def forward(
        self, scores: Tensor, keep: Tensor | None, maybe_empty: bool = True, inplace: bool = False
    ) -> Tensor:
        if self.training:
            # -log(Exp(1)) is Gumbel(0, 1) noise; the same trick as F.gumbel_softmax.
            gumbel = -torch.empty_like(scores).exponential_().log()
            soft = softmax_keep((scores + gumbel) / self.tau, keep, zero_empty_rows=maybe_empty)
            index = soft.argmax(dim=-1)
        else:
            soft = None
            masked = scores if keep is None else scores.masked_fill(~keep, float("-inf"))
            index = masked.argmax(dim=-1)
        hard = F.one_hot(index, scores.shape[-1]).to(scores.dtype)
        if keep is not None:
            hard = hard * keep.to(hard.dtype)  # a row with nothing kept picked index 0: drop it
        if soft is None:
            return hard
        return hard + (soft - soft.detach())

    def extra_repr(self) -> str:
        return f"tau={self.tau}"
