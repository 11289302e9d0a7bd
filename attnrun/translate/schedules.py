"""Registries of training settings: learning-rate schedules and numeric precisions.

A schedule maps the share of the budget used, ``progress`` ∈ [0, 1], the optimizer step
(1-based) and ``train.warmup_steps`` to a multiplier of ``train.lr``. ``linear`` and ``cosine``
anneal it to 0 over the run's budget — whichever of ``train.epochs`` and ``train.max_minutes``
runs out first (budget-aware annealing, Li et al. 2020, "Budgeted training"); ``warmup_cosine``
warms up linearly first, as a post-norm Transformer needs; ``inverse_sqrt`` is
the Transformer's warm-up and decay; ``plateau`` keeps it and lets the trainer multiply the rate
by ``train.lr_decay`` after an epoch without progress (its ``decays_on_plateau`` flag).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from attnrun.registry import Registry

__all__ = ["decays_on_plateau", "lr_factor", "lr_schedules", "precisions"]

#: name → ``factor(progress, step, warmup) -> multiplier``.
lr_schedules: Registry[Callable[[float, int, int], float]] = Registry("learning-rate schedule")

#: name → the autocast dtype of the matrix products (``None``: plain float32).
precisions: Registry[torch.dtype | None] = Registry("precision")
precisions.register("fp32")(None)
precisions.register("bf16")(torch.bfloat16)


@lr_schedules.register("plateau")
def plateau(progress: float, step: int = 1, warmup: int = 0) -> float:
    """Constant; the trainer halves (``train.lr_decay``) after an epoch without progress."""
    return 1.0


plateau.decays_on_plateau = True  # type: ignore[attr-defined]


@lr_schedules.register("linear")
def linear(progress: float, step: int = 1, warmup: int = 0) -> float:
    """``1 − p``."""
    return 1.0 - progress


@lr_schedules.register("cosine")
def cosine(progress: float, step: int = 1, warmup: int = 0) -> float:
    """``(1 + cos(π p)) / 2`` (Loshchilov & Hutter 2017, without restarts)."""
    return 0.5 * (1.0 + math.cos(math.pi * progress))


@lr_schedules.register("warmup_cosine")
def warmup_cosine(progress: float, step: int = 1, warmup: int = 0) -> float:
    """``min(1, step / warmup) · (1 + cos(π p)) / 2``: a linear warm-up over ``warmup`` steps
    (Vaswani et al. 2017, §5.3) times the budget-aware cosine, so the rate reaches 0 exactly
    when the budget runs out, whatever the number of steps it held."""
    return min(1.0, max(step, 1) / max(warmup, 1)) * cosine(progress, step, warmup)


@lr_schedules.register("inverse_sqrt")
def inverse_sqrt(progress: float, step: int = 1, warmup: int = 0) -> float:
    """The Transformer's schedule (Vaswani et al. 2017, eq. 3) with ``train.lr`` as its peak:
    a linear warm-up over ``warmup`` steps, then ``sqrt(warmup / step)``."""
    step, warmup = max(step, 1), max(warmup, 1)
    return min(step / warmup, math.sqrt(warmup / step))


def decays_on_plateau(name: str) -> bool:
    return bool(getattr(lr_schedules.get(name), "decays_on_plateau", False))


def lr_factor(name: str, progress: float, step: int = 1, warmup: int = 0) -> float:
    """The multiplier of schedule ``name`` at ``progress`` (clamped to [0, 1]) and ``step``."""
    return lr_schedules.get(name)(min(max(progress, 0.0), 1.0), step, warmup)
