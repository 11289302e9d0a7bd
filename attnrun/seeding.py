"""One call that seeds every random number generator a run touches."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's ``random``, NumPy, and torch (CPU and every CUDA device).

    Returns a fresh CPU ``torch.Generator`` seeded with ``seed`` for data generation, so the data a
    run draws does not depend on how many random numbers model initialisation consumed.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen
