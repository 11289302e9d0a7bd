"""Name → object registries, filled by a ``register(name)`` decorator.

Every family of interchangeable parts (kernels, score functions, datasets, experiments) has one
:class:`Registry`. CLI choices, config validation and error messages all read the registry, so
adding a kernel or a score function is one decorated function (plus, where it has settings, one
YAML file) and no hand-written list of names anywhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from attnrun.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named family of objects. ``kind`` is used in error messages ("unknown kernel 'x'")."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator adding ``obj`` under ``name``; a duplicate name is a programming error."""

        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        """Look ``name`` up; an unknown name raises :class:`ConfigError` listing the valid ones."""
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise ConfigError(
                f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def items(self):
        return self._items.items()
