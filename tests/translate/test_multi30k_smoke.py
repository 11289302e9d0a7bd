"""Smoke test on a small slice of the real Multi30k files (skipped when ../shared is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from attnrun.experiments import experiments
from attnrun.translate.data import datasets

SHARED = Path(__file__).resolve().parents[3] / "shared"
DATA = SHARED / "data" / "multi30k"

pytestmark = pytest.mark.skipif(
    not (DATA / "train.en.gz").is_file(), reason=f"no Multi30k files in {DATA}"
)


def test_multi30k_loader_reads_aligned_splits():
    cfg = (
        experiments.get("translate")
        .make_config({"dataset": "multi30k", "data": {"root": str(DATA), "src": "en", "tgt": "de"}})
        .data
    )
    corpus = datasets.get("multi30k")(cfg, 0)
    assert len(corpus.train) == 29000
    assert len(corpus.val) == cfg.n_val
    assert len(corpus.test) == 1000 and corpus.test_name == "test_2016_flickr"
    assert corpus.train[0][0].startswith("Two young, White males")


def test_multi30k_tiny_run(tmp_path):
    m = experiments.get("translate")(
        {
            "dataset": "multi30k",
            "score": "dot",
            "data": {"root": str(DATA), "n_train": 300, "n_val": 10, "max_len": 20},
            "model": {"embed_size": 16, "num_hiddens": 16},
            "train": {"epochs": 1, "batch_size": 64},
            "decode": {"max_len": 15, "batch_size": 500},
            "plot": {"heatmaps": 1},
        },
        tmp_path,
    )
    assert m["test_split"] == "test_2016_flickr" and m["test_sentences"] == 1000
    assert "aer" not in m
    assert (tmp_path / "attention_0.png").is_file()
