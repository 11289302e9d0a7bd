"""No attention vs Bahdanau vs Luong vs the Transformer, on the same data and budget.

Trains the four models of ``attnrun translate`` one after the other with the same data, seed,
epochs (and optional time budget), then prints one Markdown table — BLEU, BLEU on the longest
source-length bucket, chrF, training target tokens/s, parameters and the toy language's AER of the
best layer — and draws the runs' BLEU-by-length curves in one figure with ``attnrun report``
(Bahdanau et al. 2015, Fig. 2: the bottleneck attention removes).

usage: python benchmarks/compare_translate.py [--out DIR] [--figure PNG] [override ...]

Defaults: the toy language with sentences of 1–3 clauses (``data.max_clauses=3``: up to ~40 source
words), 8 epochs; extra Hydra overrides apply to all four runs (e.g. ``dataset=multi30k
data.root=../shared/data/multi30k train.max_minutes=20``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

#: name → the overrides that make it (everything else shared).
MODELS = {
    "no attention": ["decoder=none"],
    "Bahdanau": ["score=additive", "decoder=bahdanau"],
    "Luong": ["score=general", "decoder=luong"],
    "Transformer": ["model.arch=transformer", "model.num_layers=2"],
}
SHARED = ["data.max_clauses=3", "train.epochs=8", "data.max_len=60", "decode.max_len=80"]


def run(name: str, out: Path, overrides: list[str]) -> dict:
    run_dir = out / name.lower().replace(" ", "_")
    cmd = [sys.executable, "-m", "attnrun", "translate", "--quiet", *SHARED, *MODELS[name],
           *overrides, f"hydra.run.dir={run_dir}"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed: {proc.stderr.strip()}")
    return json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))


def longest_bucket(metrics: dict) -> str:
    """Lowercased BLEU of the longest bucket that holds sentences, with its range."""
    filled = [b for b in metrics["bleu_by_length"] if b["sentences"]]
    last = filled[-1]
    return f"{last['bleu_lowercase']} ({last['range']}, n={last['sentences']})"


def table(results: dict[str, dict]) -> str:
    head = ["model", "BLEU", "BLEU longest bucket", "chrF", "train tokens/s", "parameters", "AER"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, m in results.items():
        aer = m.get("aer")
        aer = "—" if aer is None else f"{aer} (layer {m.get('aer_layer', 1)})"
        cells = [name, m["bleu"], longest_bucket(m), m["chrf"], round(m["train_tokens_per_s"]),
                 f"{m['parameters']:,}", aer]  # fmt: skip
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=None, help="keep the run folders here")
    p.add_argument("--figure", type=Path, default=None, help="copy the BLEU-by-length PNG here")
    p.add_argument("overrides", nargs="*", help="Hydra overrides for all four runs")
    args = p.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="compare_translate_"))
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in MODELS:
        results[name] = run(name, out, args.overrides)
        print(f"{name}: BLEU {results[name]['bleu']}", file=sys.stderr, flush=True)
    print(f"attnrun translate {' '.join(SHARED + args.overrides)} (+ each model's options)")
    print(table(results))
    report = out / "report"
    subprocess.run([sys.executable, "-m", "attnrun", "report", str(out), "--out", str(report)],
                   check=True, capture_output=True)  # fmt: skip
    figure = report / "report_bleu_by_length.png"
    if args.figure is not None:
        shutil.copyfile(figure, args.figure)
    print(f"runs: {out}; figure: {args.figure or figure}")


if __name__ == "__main__":
    main()
