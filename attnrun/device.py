"""Device selection (``device=auto|cpu|cuda``, ``cuda:N`` too) and CPU thread settings."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from attnrun.errors import ConfigError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> torch.device:
    """Map a config value to a ``torch.device``; ``auto`` picks CUDA when one is present.

    Asking for ``cuda`` on a machine without a GPU is a :class:`ConfigError`, not a silent fallback.
    """
    name = str(name).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device={name}: no CUDA device is available here; use device=cpu")
        return torch.device(name)
    raise ConfigError(f"device={name!r} is not valid; valid: {', '.join(DEVICE_CHOICES)}, cuda:N")


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask; ``os.cpu_count`` elsewhere)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def thread_count(n: int) -> int:
    """What a ``threads`` setting means: ``0`` is every core this process may use."""
    return available_cores() if n <= 0 else int(n)


@contextlib.contextmanager
def cpu_threads(n: int) -> Iterator[int]:
    """Run the block with ``torch.set_num_threads(thread_count(n))``, then restore the setting.

    The one place attnrun sets torch's CPU thread count; yields the count in force.
    """
    before = torch.get_num_threads()
    count = thread_count(n)
    torch.set_num_threads(count)
    try:
        yield count
    finally:
        torch.set_num_threads(before)
