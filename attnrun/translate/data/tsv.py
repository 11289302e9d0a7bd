"""``tsv``: any file of ``source<TAB>target`` lines (``data.path``), split train/val/test."""

from __future__ import annotations

from pathlib import Path

from attnrun.errors import DataError
from attnrun.translate.data import Corpus, datasets, describe, split_pairs
from attnrun.translate.data.readers import ReadReport, read_tsv


def check_tsv(cfg) -> None:
    """``data.path`` is given and is a file."""
    if not cfg.path:
        raise DataError("dataset=tsv needs data.path=FILE (lines 'source<TAB>target')")
    if not Path(cfg.path).expanduser().is_file():
        raise DataError(f"data.path={cfg.path}: file not found (lines 'source<TAB>target')")


@datasets.register("tsv")
def load_tsv(cfg, seed: int) -> Corpus:
    check_tsv(cfg)
    report = ReadReport()
    pairs = read_tsv(cfg.path, skip_bad=cfg.skip_bad, report=report)
    train, val, test = split_pairs(pairs, cfg.n_val, cfg.n_test, seed=1)
    if cfg.n_train is not None:
        train = train[: cfg.n_train]
    return Corpus("tsv", train, val, test, "test", skipped=report.skipped)


describe(load_tsv, check=check_tsv)
