"""Registries of training settings: learning-rate schedules and numeric precisions.

A schedule maps the share of the budget used, ``progress`` ∈ [0, 1], the optimizer step
(1-based) and ``train.warmup_steps`` to a multiplier of ``train.lr``. ``linear`` and ``cosine``
anneal it to 0 over the run's budget — whichever of ``train.epochs`` and ``train.max_minutes``
runs out first (budget-aware annealing, Li et al. 2020, "Budgeted training"); ``warmup_cosine``
warms up linearly first, as a post-norm Transformer needs; ``inverse_sqrt`` is
the Transformer's warm-up and decay; ``plateau`` keeps it and lets the trainer multiply the rate
by ``train.lr_decay`` after an epoch without progress (its ``decays_on_plateau`` flag).

``train.cooldown`` = c > 0 multiplies any of them but ``plateau`` by a linear ramp to 0 over the
budget's last share c (warm-up, the schedule, then a cool-down: Zhai et al. 2022, "Scaling
vision transformers"; Hägele et al. 2024, "Scaling laws and compute-optimal training beyond fixed
training durations"), so the weights a budget ends with are annealed whatever the schedule.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from attnrun.registry import Registry

__all__ = ["cooldown_factor", "decays_on_plateau", "lr_factor", "lr_schedules", "precisions"]

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


def cooldown_factor(progress: float, cooldown: float) -> float:
    """``min(1, (1 − p) / c)``: 1 until the budget's last share ``c``, then linearly to 0 at its
    end; 1 throughout when ``c`` is 0."""
    return 1.0 if cooldown <= 0 else min(1.0, (1.0 - progress) / cooldown)


def lr_factor(
    name: str, progress: float, step: int = 1, warmup: int = 0, cooldown: float = 0.0
) -> float:
    """The multiplier of schedule ``name`` at ``progress`` (clamped to [0, 1]) and ``step``,
    times the cool-down's ramp over the budget's last share ``cooldown``."""
    p = min(max(progress, 0.0), 1.0)
    return lr_schedules.get(name)(p, step, warmup) * cooldown_factor(p, cooldown)
