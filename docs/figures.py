"""Make every figure of the documentation from real attnrun runs.

    python docs/figures.py              # all figures (about 5 minutes on an idle 2-core CPU)
    python docs/figures.py bahdanau     # only the named ones
    python docs/figures.py --list       # names and commands
    python docs/figures.py --heavy      # also the benchmark pictures (about 15 more minutes)

Each figure is one or two shell commands run in a scratch folder exactly as a user types them;
the PNG the run writes is copied to ``docs/figures/<name>.png`` and the command, date, wall time
and load average are recorded in ``docs/figures/figures.json``. Pages show a figure with the
marker ``<!-- attnrun:figure NAME -->`` and the build hook (``docs/hooks/generate.py``) turns it
into the image and a caption naming the command, read from that file, so a caption can never
name another command than the one that made the picture.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

OUT = Path(__file__).resolve().parent / "figures"
RECORD = OUT / "figures.json"


@dataclass(frozen=True)
class Figure:
    name: str
    commands: tuple[str, ...]  # run in order in one scratch folder; LAST_RUN / LAST_SWEEP expand
    artefact: str  # file of the last run (or the sweep folder) to copy
    alt: str
    heavy: bool = False  # minutes of training: only with --heavy or by name


T1 = "train.threads=1"  # the project's CPUs are shared: one thread per run

FIGURES = [
    Figure(
        "cues",
        ("attnrun selfattn demo",),
        "demo.png",
        "d2l's heatmap demo: identity attention plus noise",
    ),
    Figure(
        "pooling-average",
        (f"attnrun regress --pooling average {T1}",),
        "predictions.png",
        "average pooling: a flat line at the mean of y",
    ),
    Figure(
        "pooling-nonparametric",
        (f"attnrun regress --kernel gaussian {T1}",),
        "predictions.png",
        "Nadaraya-Watson with a gaussian kernel, bandwidth 1",
    ),
    Figure(
        "pooling-nonparametric-attention",
        (f"attnrun regress --kernel gaussian {T1}",),
        "attention.png",
        "attention weights of sorted test inputs over sorted training inputs",
    ),
    Figure(
        "pooling-parametric",
        (f"attnrun regress --pooling parametric {T1}",),
        "predictions.png",
        "the learned bandwidth fits the training points more closely",
    ),
    Figure(
        "pooling-parametric-attention",
        (f"attnrun regress --pooling parametric {T1}",),
        "attention.png",
        "a narrower band of attention after learning w",
    ),
    Figure(
        "pooling-x-plus-sin",
        (f"attnrun regress data.function=x_plus_sin {T1}",),
        "predictions.png",
        "the book's second data set, y = x + sin x",
    ),
    Figure(
        "kernels-sweep",
        (
            f"attnrun regress -m kernel=gaussian,boxcar,epanechnikov bandwidth=0.3 {T1}",
            "attnrun report LAST_SWEEP",
        ),
        "report_attention.png",
        "one attention matrix per kernel, side by side",
    ),
    Figure(
        "scores-sweep",
        (
            f"attnrun translate -m score=dot,general,additive train.epochs=3 {T1}",
            "attnrun report LAST_SWEEP",
        ),
        "report_attention.png",
        "the same toy sentence's cross-attention under three score functions",
    ),
    Figure(
        "bahdanau",
        (f"attnrun translate {T1}",),
        "attention_0.png",
        "Bahdanau attention of a toy sentence: target words × source words",
    ),
    Figure(
        "bahdanau-bleu-by-length",
        (f"attnrun translate {T1}",),
        "bleu_by_length.png",
        "BLEU of the test sentences by source length",
    ),
    Figure(
        "luong-local-p",
        (f"attnrun translate --score general attention=local_p attention.window=3 {T1}",),
        "attention_0.png",
        "Luong local-p attention: a window of 7 source words",
    ),
    Figure(
        "key-value",
        (f"attnrun translate attention.key_value=true attention.value_size=64 {T1}",),
        "attention_0.png",
        "attention weights from separate keys",
    ),
    Figure(
        "selfattn-heads",
        (f"attnrun selfattn {T1}",),
        "attention_heads.png",
        "layer × head self-attention of the 'tired' sentence",
    ),
    Figure(
        "selfattn-heads-wide",
        (f"attnrun selfattn {T1}",),
        "attention_wide_heads.png",
        "the same for the 'wide' sentence",
    ),
    Figure(
        "positional-encoding",
        (f"attnrun selfattn {T1}",),
        "positional_encoding.png",
        "sinusoidal positional encoding, columns 6 to 9",
    ),
    Figure(
        "positional-encoding-heatmap",
        (f"attnrun selfattn {T1}",),
        "positional_encoding_heatmap.png",
        "the whole positional-encoding matrix",
    ),
    Figure(
        "transformer-heads",
        (f"attnrun translate --model transformer {T1}",),
        "attention_0_heads.png",
        "the Transformer's cross-attention, every layer and head",
    ),
    Figure(
        "report-sweep",
        (
            "attnrun regress -m kernel=gaussian,epanechnikov,tricube seed=0,1,2 bandwidth=loo "
            + T1,
            "attnrun report LAST_SWEEP",
        ),
        "report_metric_test_mse.png",
        "test MSE per kernel, mean and spread over three seeds",
    ),
    # the two pictures of the benchmarks (each several minutes of training)
    Figure(
        "coref-it",
        ("attnrun selfattn --task translate",),
        "coref_it.png",
        "attention from 'it' in the best encoder head, seed 0",
        heavy=True,
    ),
    Figure(
        "bleu-by-length",
        (
            "python benchmarks/compare_translate.py --out compare",
            "attnrun report compare --out compare/report",
        ),
        "report_bleu_by_length.png",
        "BLEU by source length: no attention, Bahdanau, Luong, Transformer",
        heavy=True,
    ),
]


def _load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _newest(root: Path, pattern: str) -> Path:
    found = sorted(root.glob(pattern), key=lambda p: p.stat().st_mtime)
    if not found:
        raise SystemExit(f"figures: nothing matches {pattern} under {root}")
    return found[-1]


def make(fig: Figure, cache: dict[tuple[str, ...], Path], walls: dict) -> dict[str, object]:
    """Run the figure's commands (once per command list) and copy its artefact."""
    started = time.perf_counter()
    if fig.commands not in cache:
        work = Path(tempfile.mkdtemp(prefix="attnrun-fig-"))
        for line in fig.commands:
            if "LAST_SWEEP" in line:
                line = line.replace("LAST_SWEEP", str(_newest(work, "multirun/*/*")))
            print(f"$ {line}", flush=True)
            subprocess.run(shlex.split(line), cwd=work, check=True, stdout=subprocess.DEVNULL)
        if "--out" in fig.commands[-1]:
            cache[fig.commands] = work / fig.commands[-1].split("--out")[-1].strip()
        elif "report" in fig.commands[-1]:
            cache[fig.commands] = _newest(work, "multirun/*/*")
        else:
            cache[fig.commands] = _newest(work, "outputs/*/*")
        walls[fig.commands] = round(time.perf_counter() - started, 1)
    folder = cache[fig.commands]
    OUT.mkdir(exist_ok=True)
    shutil.copyfile(folder / fig.artefact, OUT / f"{fig.name}.png")
    return {
        "commands": [c.replace("LAST_SWEEP", "multirun/DATE/TIME") for c in fig.commands],
        "file": fig.artefact,
        "alt": fig.alt,
        "date": date.today().isoformat(),
        "wall_s": walls[fig.commands],
        "load": _load_average(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="figures to make (default: all)")
    parser.add_argument("--list", action="store_true", help="list the figures and exit")
    parser.add_argument("--heavy", action="store_true", help="also the benchmark figures")
    args = parser.parse_args(argv)
    if args.list:
        for f in FIGURES:
            print(f"{f.name:32} {' && '.join(f.commands)}")
        return 0
    unknown = set(args.names) - {f.name for f in FIGURES}
    if unknown:
        print(f"figures: unknown {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    record = json.loads(RECORD.read_text()) if RECORD.is_file() else {}
    cache: dict[tuple[str, ...], Path] = {}
    walls: dict[tuple[str, ...], float] = {}
    for fig in FIGURES:
        if args.names and fig.name not in args.names:
            continue
        if not args.names and fig.heavy and not args.heavy:
            continue
        record[fig.name] = make(fig, cache, walls)
        RECORD.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        print(f"figures: {fig.name} ({record[fig.name]['wall_s']} s)", flush=True)
    for folder in {p for p in cache.values()}:
        work = next(q for q in folder.parents if q.name.startswith("attnrun-fig-"))
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    raise SystemExit(main())
