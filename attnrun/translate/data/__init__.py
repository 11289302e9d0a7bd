"""Parallel corpora: the ``datasets`` registry and the :class:`Corpus` every loader returns.

A loader is ``load(cfg: DataConfig, seed: int) -> Corpus`` registered under its name:
``toy`` (generated, offline, with gold alignments), ``multi30k``, ``tatoeba`` and ``tsv``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from attnrun.errors import DataError
from attnrun.registry import Registry

Pair = tuple[str, str]


@dataclass
class Corpus:
    """Train/validation/test pairs of raw text.

    ``test_alignments[i]`` (toy only) holds the sure gold links of test pair ``i`` as a set of
    ``(source_word, target_word)`` indices over the whitespace-split sentences, and
    ``test_possible[i]`` the possible ones (a superset). ``extra`` carries
    dataset-specific evaluation material (tatoeba: d2l's demo sentences).
    """

    name: str
    train: list[Pair]
    val: list[Pair]
    test: list[Pair]
    test_name: str = "test"
    test_alignments: list[set[tuple[int, int]]] | None = None
    test_possible: list[set[tuple[int, int]]] | None = None
    val_alignments: list[set[tuple[int, int]]] | None = None  # toy: to choose the AER layer
    val_possible: list[set[tuple[int, int]]] | None = None
    skipped: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


#: name → ``load(cfg, seed) -> Corpus``.
datasets: Registry[Callable[..., Corpus]] = Registry("dataset")


def split_pairs(pairs: list[Pair], n_val: int, n_test: int, seed: int) -> tuple[list, list, list]:
    """Shuffle (seeded) and cut ``pairs`` into train / val / test."""
    import random

    pairs = list(pairs)
    random.Random(seed).shuffle(pairs)
    if len(pairs) < n_val + n_test + 1:
        raise DataError(
            f"{len(pairs)} pairs are too few for {n_val} validation and {n_test} test pairs; "
            "lower data.n_val / data.n_test"
        )
    return pairs[n_val + n_test :], pairs[:n_val], pairs[n_val : n_val + n_test]


def describe(
    load: Callable[..., Corpus],
    *,
    check: Callable[[Any], None] | None = None,
    test_splits: tuple[str, ...] | None = None,
) -> None:
    """Give the loader ``load`` its ``check(cfg)`` (run by :func:`check_data` before a run folder
    exists) and the ``test_splits`` it offers (default first; read by :func:`test_splits`)."""
    # setattr (noqa B010): a Callable type declares no attributes, so mypy rejects assignments
    if check is not None:
        setattr(load, "check", check)  # noqa: B010
    if test_splits is not None:
        setattr(load, "test_splits", test_splits)  # noqa: B010


def test_splits(dataset: str) -> tuple[str, ...]:
    """The test splits ``dataset`` offers, its default first: a loader's ``test_splits``
    attribute (multi30k), else the one split ``test`` it cuts from its pairs."""
    return tuple(getattr(datasets.get(dataset), "test_splits", ("test",)))


def check_data(dataset: str, cfg: Any) -> None:
    """Before a run folder exists: ``data.test_split`` is one ``dataset`` has, and the loader's
    own ``check(cfg)`` passes (its files are there, or downloaded into the cache). Raises a
    one-line :class:`DataError` / :class:`~attnrun.errors.ConfigError`."""
    from attnrun.validation import require

    splits = test_splits(dataset)
    require(
        cfg.test_split in splits,
        "data.test_split",
        cfg.test_split,
        f"{', '.join(splits)} (dataset={dataset})",
    )
    check = getattr(datasets.get(dataset), "check", None)
    if check is not None:
        check(cfg)


# Every module of this package that loads a corpus registers itself with @datasets.register.
for _info in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["Corpus", "Pair", "check_data", "datasets", "describe", "split_pairs", "test_splits"]
