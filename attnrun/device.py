"""Device selection: ``device=auto|cpu|cuda`` (``cuda:N`` too)."""

from __future__ import annotations

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
