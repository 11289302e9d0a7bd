"""The one helper for config errors: every experiment's ``__post_init__`` validates through it.

Each error is a :class:`~attnrun.errors.ConfigError` of one line naming the key, the value and
what is allowed, e.g. ``train.lr=-1 is not valid; allowed: > 0``. Choices read their registry, so
the valid names in a message are never a hand-written list.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from attnrun.errors import ConfigError


def require(ok: bool, key: str, value: Any, allowed: str) -> None:
    """Raise ``ConfigError("<key>=<value> is not valid; allowed: <allowed>")`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"{key}={value!r} is not valid; allowed: {allowed}")


def one_of(key: str, value: Any, choices: Iterable[str]) -> None:
    """``value`` must be one of ``choices`` (a registry, or its ``names()``)."""
    names = list(choices.names()) if hasattr(choices, "names") else list(choices)
    if value not in names:
        raise ConfigError(f"{key}={value!r} is not valid; valid: {', '.join(map(str, names))}")
