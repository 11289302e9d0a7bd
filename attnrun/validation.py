"""The one helper for config errors: every experiment's ``__post_init__`` validates through it.

Each error is a :class:`~attnrun.errors.ConfigError` of one line naming the key, the value and
what is allowed, e.g. ``train.lr=-1 is not valid; allowed: > 0``. Choices read their registry, so
the valid names in a message are never a hand-written list.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from attnrun.errors import ConfigError

C = TypeVar("C")


def require(ok: bool, key: str, value: Any, allowed: str) -> None:
    """Raise ``ConfigError("<key>=<value> is not valid; allowed: <allowed>")`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"{key}={value!r} is not valid; allowed: {allowed}")


def one_of(key: str, value: Any, choices: Iterable[str]) -> None:
    """``value`` must be one of ``choices`` (a registry, or its ``names()``)."""
    names = list(choices.names()) if hasattr(choices, "names") else list(choices)
    if value not in names:
        raise ConfigError(f"{key}={value!r} is not valid; valid: {', '.join(map(str, names))}")


def typed_config(config_class: type[C], cfg: Any) -> C:
    """The typed, validated config (``__post_init__`` runs) from a dataclass, DictConfig or dict.

    Wrong types and unknown keys become one-line :class:`ConfigError` s naming the key.
    """
    if isinstance(cfg, config_class):
        return cfg
    if cfg is not None and not isinstance(cfg, (dict, DictConfig)):
        raise ConfigError(f"cannot use a {type(cfg).__name__} as a config")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(config_class), cfg or {})
        return OmegaConf.to_object(merged)  # runs __post_init__ validation
    except OmegaConfBaseException as e:
        raise ConfigError(omegaconf_message(e)) from None


def omegaconf_message(e: OmegaConfBaseException) -> str:
    """One line from an OmegaConf validation error: the key, the value and what is allowed."""
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    key = getattr(e, "full_key", None)
    if key and key not in msg:
        msg = f"{key}: {msg}"
    return msg
