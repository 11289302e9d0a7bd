"""Registries of training settings: learning-rate schedules and numeric precisions.

A schedule maps the share of the budget used, ``progress`` ∈ [0, 1], to a multiplier of
``train.lr``. ``linear`` and ``cosine`` anneal it to 0 over the run's budget — whichever of
``train.epochs`` and ``train.max_minutes`` runs out first (budget-aware annealing, Li et al. 2020,
"Budgeted training"); ``plateau`` keeps it and lets the trainer multiply the rate by
``train.lr_decay`` after an epoch without progress (its ``decays_on_plateau`` flag).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from attnrun.registry import Registry

__all__ = ["decays_on_plateau", "lr_factor", "lr_schedules", "precisions"]

#: name → ``factor(progress) -> multiplier``.
lr_schedules: Registry[Callable[[float], float]] = Registry("learning-rate schedule")

#: name → the autocast dtype of the matrix products (``None``: plain float32).
precisions: Registry[torch.dtype | None] = Registry("precision")
precisions.register("fp32")(None)
precisions.register("bf16")(torch.bfloat16)


@lr_schedules.register("plateau")
def plateau(progress: float) -> float:
    """Constant; the trainer halves (``train.lr_decay``) after an epoch without progress."""
    return 1.0


plateau.decays_on_plateau = True  # type: ignore[attr-defined]


@lr_schedules.register("linear")
def linear(progress: float) -> float:
    """``1 − p``."""
    return 1.0 - progress


@lr_schedules.register("cosine")
def cosine(progress: float) -> float:
    """``(1 + cos(π p)) / 2`` (Loshchilov & Hutter 2017, without restarts)."""
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def decays_on_plateau(name: str) -> bool:
    return bool(getattr(lr_schedules.get(name), "decays_on_plateau", False))


def lr_factor(name: str, progress: float) -> float:
    """The multiplier of schedule ``name`` at ``progress`` (clamped to [0, 1])."""
    return lr_schedules.get(name)(min(max(progress, 0.0), 1.0))
