"""The one helper for config errors: every experiment's ``__post_init__`` validates through it.

Each error is a :class:`~attnrun.errors.ConfigError` of one line naming the key, the value and
what is allowed, e.g. ``train.lr=-1 is not valid; allowed: > 0``. Choices read their registry, so
the valid names in a message are never a hand-written list.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Iterable
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

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
    if isinstance(cfg, DictConfig):  # a plain copy: a typed DictConfig would let `+foo=1` in
        cfg = OmegaConf.to_container(cfg, resolve=False)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(config_class), cfg or {})
        return typing.cast(C, OmegaConf.to_object(merged))  # runs __post_init__ validation
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or ""
        value = OmegaConf.select(OmegaConf.create(cfg or {}), key) if key else None
        override = f"{key}={_show(value)}" if key else None
        raise ConfigError(omegaconf_message(e, config_class, override)) from None


def omegaconf_message(
    e: OmegaConfBaseException,
    config_class: type | None = None,
    override: str | None = None,
    groups: Iterable[str] = (),
) -> str:
    """One line from an OmegaConf error, in the form of :func:`require`.

    ``override`` is what the user wrote (``model.num_hidens=3``; default: the key). With
    ``config_class`` (the schema), an unknown key names the closest valid key and every key of
    its group; a wrong type says which type the key takes. Never the schema's class names.
    ``groups``: config groups chosen at the top level (``recipe=coref``), also valid names there.
    """
    key = getattr(e, "full_key", None) or ""
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    override = override or key
    if not key or config_class is None:
        return f"{override} is not valid: {text}" if key else text
    if isinstance(e, (ConfigKeyError, ConfigAttributeError)):  # a key the schema lacks
        return unknown_key_message(config_class, key, override, groups)
    if "does not support deletion" in text:
        return f"{override} is not valid: {key} cannot be removed, only set to a value"
    hint = field_type(config_class, key)
    if hint is None:
        return f"{override} is not valid: {text}"
    if dataclasses.is_dataclass(hint):
        keys = ", ".join(sorted(f.name for f in dataclasses.fields(hint)))
        return f"{override} is not valid; {key} is a group: set its keys ({key}.<key>=...): {keys}"
    return f"{override} is not valid; allowed: {describe_type(hint)}"


def unknown_key_message(
    config_class: type, key: str, override: str, groups: Iterable[str] = ()
) -> str:
    """``model.num_hidens=3 is not valid: model has no key num_hidens (did you mean
    num_hiddens?); allowed: arch, cell, ...``: the closest keys by :mod:`difflib` and every key
    of the group (a nested group as ``data.*``)."""
    parts = key.split(".")
    group, name = ".".join(parts[:-1]), parts[-1]
    node = field_type(config_class, group) if group else config_class
    if node is None or not dataclasses.is_dataclass(node):
        return f"{override} is not valid: there is no key {key}"
    fields = dataclasses.fields(node)
    names = [f.name for f in fields]
    if not group:  # top level: a config group (recipe=coref) is a valid name too
        names += [g for g in groups if g not in names]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    where = f"{group} has no key {name}" if group else f"there is no key {name}"
    guess = f" (did you mean {close[0]}?)" if close else ""
    nested = {f.name for f in fields if dataclasses.is_dataclass(field_type(node, f.name))}
    allowed = ", ".join(f"{n}.*" if n in nested else n for n in sorted(names))
    return f"{override} is not valid: {where}{guess}; allowed: {allowed}"


def field_type(config_class: type, key: str) -> Any:
    """The type hint of dotted ``key`` in the dataclass ``config_class`` (``None``: no such key;
    ``Optional[X]`` stays as it is)."""
    node: Any = config_class
    for part in key.split("."):
        if not dataclasses.is_dataclass(node):
            return None
        hints = typing.get_type_hints(node)
        if part not in hints or part not in {f.name for f in dataclasses.fields(node)}:
            return None
        node = hints[part]
    return node


_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def describe_type(hint: Any) -> str:
    """``int`` → ``an integer``; ``int | None`` → ``an integer or null``; lists and others by
    name."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        words = [describe_type(a) for a in args if a is not type(None)]
        return " or ".join(words + (["null"] if type(None) in args else []))
    if typing.get_origin(hint) in (list, tuple):
        return f"a list [...] ({describe_type(args[0])} each)" if args else "a list [...]"
    if hint in _TYPE_WORDS:
        return _TYPE_WORDS[hint]
    return getattr(hint, "__name__", str(hint))


def _show(value: Any) -> str:
    """A value as a user would have typed it in an override."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, DictConfig):
        return str(OmegaConf.to_container(value))
    return str(value)
