"""Fake run folders for report tests: config.yaml and metrics.json written by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from attnrun.runs import files
from attnrun.runs.files import AttentionSample


def write_run(
    folder: Path,
    config: dict[str, Any],
    metrics: dict[str, Any] | None = None,
    *,
    status: str = "completed",
    experiment: str = "regress",
    started_at: str = "2026-01-01T10:00:00+00:00",
    history: dict[str, list] | None = None,
    attention: list[AttentionSample] | None = None,
    viewer: bool = False,
) -> Path:
    """A run folder as the run frame leaves it (only the files reports read)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    record = {
        "status": status,
        "experiment": experiment,
        "seed": config.get("seed", 0),
        "device": "cpu",
        "started_at": started_at,
        "finished_at": started_at,
        "wall_time_s": 1.0,
        "versions": {"attnrun": "0.1.0"},
        "host": "test",
        **(metrics or {}),
    }
    (folder / "metrics.json").write_text(json.dumps(record), encoding="utf-8")
    if history is not None:
        (folder / "history.json").write_text(json.dumps(history), encoding="utf-8")
    if attention is not None:
        files.write_attention(folder, attention)
    if viewer:  # the run's own viewer, as experiments write it
        from attnrun.viz.viewer import write_attention_html

        s = attention[0]
        write_attention_html(folder / "attention.html", s.keys, s.queries, s.weights, title=s.name)
    return folder


def sample(
    name: str,
    queries: list[str],
    keys: list[str],
    seed: int,
    kind: str = "cross",
    layers: int = 1,
    heads: int = 1,
    **kw: Any,
) -> AttentionSample:
    """A sample with random rows that sum to one (seeded)."""
    w = np.random.default_rng(seed).random((layers, heads, len(queries), len(keys)))
    return AttentionSample(name, kind, queries, keys, w / w.sum(-1, keepdims=True), **kw)


def decoder_sweep(root: Path, decoders=("none", "bahdanau")) -> Path:
    """decoder x seed {0, 1}; bleu_lowercase = bleu; only attending decoders saved attention."""
    rows = [
        {"range": r, "sentences": 4, "bleu": 5.0, "bleu_lowercase": 5.0} for r in ("1-9", "10+")
    ]
    for decoder in decoders:
        for seed in (0, 1):
            bleu = 10.0 + seed + 5 * (decoder != "none")
            attends = decoder != "none"
            write_run(
                root / f"{decoder}{seed}", {"decoder": decoder, "seed": seed},
                {"bleu": bleu, "bleu_lowercase": bleu, "chrf": 20.0 + seed, "decoder": decoder,
                 "bleu_by_length": rows},
                experiment="translate", history={"loss": [2.0, 1.0]},
                attention=[sample("test 0", ["le", "chat"], ["the", "cat"], seed=seed)]
                if attends else None,
                viewer=attends and seed == 0,
            )  # fmt: skip
    return root


MSE = {  # test_mse by (kernel, seed)
    ("gaussian", 0): 0.10,
    ("gaussian", 1): 0.20,
    ("gaussian", 2): 0.30,
    ("boxcar", 0): 0.50,
    ("boxcar", 1): 0.70,
    ("boxcar", 2): 0.90,
}
