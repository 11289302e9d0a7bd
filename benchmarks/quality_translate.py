"""Quality of ``attnrun translate`` on Multi30k in a fixed CPU training budget.

Trains one model on Multi30k (default en→fr) for at most ``--minutes`` of training (the run
stops after the current batch, then evaluates with the best checkpoint), decodes test_2016_flickr
with beam search and prints sacreBLEU BLEU (case-sensitive and lowercased) and chrF. The run
folder (metrics, translations, heatmaps) is kept under ``--out``.

usage: python benchmarks/quality_translate.py [--src en --tgt fr] [--minutes 20] [--shared DIR]
           [--out DIR] [--threads 1] [override ...]

Targets (issue 7): en→fr lowercased BLEU ≥ 45 (aim 50), en→de ≥ 28, from ≤ 20 minutes of training.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RECIPE = {
    "score": "general",
    "decoder": "luong",
    "dataset": "multi30k",
    "data": {"max_len": 40, "n_val": 500},
    "tokenizer": {"kind": "word", "min_freq": 2},
    "model": {
        "cell": "gru",
        "bidirectional": True,
        "embed_size": 256,
        "num_hiddens": 384,
        "num_layers": 1,
        "dropout": 0.25,
        "input_feeding": False,
        "tie_embeddings": True,
    },
    "train": {
        "epochs": 40,
        "batch_size": 64,
        "lr": 0.003,
        "clip": 1.0,
        "label_smoothing": 0.1,
        "patience": 3,
        "precision": "bf16",
    },
    "decode": {"beam": 5, "length_penalty": 0.6, "max_len": 60},
}


def _set(cfg: dict, dotted: str, value) -> None:
    keys = dotted.split(".")
    for k in keys[:-1]:
        cfg = cfg.setdefault(k, {})
    cfg[keys[-1]] = value


def main(argv: list[str] | None = None) -> int:
    import yaml

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", default="en")
    ap.add_argument("--tgt", default="fr")
    ap.add_argument("--minutes", type=float, default=20.0, help="training budget")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    ap.add_argument(
        "--out", type=Path, default=None, help="run folder (default: outputs/quality-…)"
    )
    ap.add_argument(
        "overrides", nargs="*", help="key=value config overrides, e.g. model.num_layers=2"
    )
    args = ap.parse_args(argv)

    from attnrun.experiments import experiments

    cfg = json.loads(json.dumps(RECIPE))
    _set(cfg, "data.root", str(args.shared / "data" / "multi30k"))
    _set(cfg, "data.src", args.src)
    _set(cfg, "data.tgt", args.tgt)
    _set(cfg, "train.max_minutes", args.minutes)
    _set(cfg, "train.threads", args.threads)
    for o in args.overrides:
        key, value = o.split("=", 1)
        _set(cfg, key, yaml.safe_load(value))
    out = args.out or ROOT / "outputs" / f"quality-{args.src}-{args.tgt}-{time.strftime('%H%M%S')}"
    metrics = experiments.get("translate")(cfg, out, quiet=False)
    keys = (
        "bleu",
        "bleu_lowercase",
        "chrf",
        "chrf_lowercase",
        "perplexity",
        "best_epoch",
        "epochs_run",
        "stopped",
        "train_seconds",
        "train_tokens_per_s",
        "bleu_signature",
    )
    print(json.dumps({k: metrics.get(k) for k in keys}, indent=2))
    print(f"run folder: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
