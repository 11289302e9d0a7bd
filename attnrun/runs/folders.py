"""Atomic reservation of timestamped run folders.

Hydra names a run folder after the current second, so two runs started in the same second would
share one (facebookresearch/hydra#2925). attnrun reserves the folder itself with ``os.mkdir``, which
fails if the folder exists, and tries ``_1``, ``_2``, ... on collision: concurrent runs, in one
process or many, never share a folder and never write into one a user already has.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path


def reserve_run_dir(root: str | os.PathLike, now: datetime | None = None) -> Path:
    """Create and return ``root/YYYY-MM-DD/HH-MM-SS`` (or ``..._N``), a folder no one else has."""
    now = now or datetime.now()
    parent = Path(root) / now.strftime("%Y-%m-%d")
    parent.mkdir(parents=True, exist_ok=True)
    stem = now.strftime("%H-%M-%S")
    for n in range(100_000):
        candidate = parent / (stem if n == 0 else f"{stem}_{n}")
        try:
            os.mkdir(candidate)
        except FileExistsError:
            continue
        return candidate
    raise RuntimeError(f"could not reserve a run folder under {parent}")
