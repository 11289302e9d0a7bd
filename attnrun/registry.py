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

    def __init__(self, kind: str, discover: Callable[[], None] | None = None) -> None:
        """``discover`` imports the modules that register the family's members; it runs once,
        at the first lookup, so a module may import the registry's package without importing
        every member (and members may import the package's shared parts without a cycle)."""
        self.kind = kind
        self._items: dict[str, T] = {}
        self._discover = discover

    def _members(self) -> dict[str, T]:
        if self._discover is not None:
            discover, self._discover = self._discover, None
            discover()
        return self._items

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
            return self._members()[name]
        except (KeyError, TypeError):
            raise ConfigError(
                f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return list(self._members())

    def __contains__(self, name: object) -> bool:
        return name in self._members()

    def __iter__(self) -> Iterator[str]:
        return iter(self._members())

    def __len__(self) -> int:
        return len(self._members())

    def items(self):
        return self._members().items()
