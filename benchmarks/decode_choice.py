"""Which decoding settings a trained translate run should use, chosen on validation only.

For each run folder, every (beam, length penalty) of the grid translates the run's **validation**
split (the full split file, ``val.SRC.gz``); the setting with the best lowercased sacreBLEU there is
chosen, and only then is the test split scored — once with the run's own settings and once with the
chosen ones. The test files are never read before the choice is made (the script opens them after
the grid is done), so the choice cannot fit the test set.

usage: python benchmarks/decode_choice.py RUN [RUN ...] [--beams 1 5] [--alphas 0 0.6 1.0]
           [--test test_2016_flickr] [--shared DIR] [--threads 2] [--limit N] [--json FILE]

Prints one table per run (validation BLEU per setting, the chosen one marked) and one line of test
BLEU, run's settings vs chosen; ``--json`` writes every figure to a file.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def bleu_of(translator, pairs) -> float:
    from attnrun.translate.metrics import corpus_scores

    hyps, _ = translator.translate([s for s, _ in pairs])
    return corpus_scores(hyps, [r for _, r in pairs])["bleu_lowercase"]


def choose(run: Path, args) -> dict:
    """Grid on validation, the choice, then test with the run's settings and with the choice."""
    from attnrun.runs import files
    from attnrun.translate.data.readers import read_parallel
    from attnrun.translate.translator import Translator

    cfg = files.read_config(run)
    src, tgt = cfg.data.src, cfg.data.tgt
    data = args.shared / "data" / "multi30k"
    base = Translator.from_run(run)
    own = (int(base.decode.beam), float(base.decode.length_penalty))
    val = read_parallel(data / f"val.{src}.gz", data / f"val.{tgt}.gz")[: args.limit]
    grid = {}
    for beam, alpha in itertools.product(args.beams, args.alphas):
        if beam == 1 and alpha != args.alphas[0]:
            continue  # greedy ignores the length penalty: one row
        t0 = time.perf_counter()
        grid[beam, alpha] = bleu_of(base.with_decode(beam=beam, length_penalty=alpha), val)
        print(f"{run.name}: val beam {beam} alpha {alpha}: {grid[beam, alpha]:.2f} "
              f"({time.perf_counter() - t0:.0f}s)", flush=True)  # fmt: skip
    best = max(grid, key=lambda k: (grid[k], -k[0]))  # ties: the smaller beam
    test = read_parallel(data / f"{args.test}.{src}.gz", data / f"{args.test}.{tgt}.gz")
    test = test[: args.limit]
    own_test = bleu_of(base.with_decode(beam=own[0], length_penalty=own[1]), test)
    best_test = own_test if best == own else bleu_of(
        base.with_decode(beam=best[0], length_penalty=best[1]), test
    )  # fmt: skip
    return {
        "run": str(run),
        "own": list(own),
        "chosen": list(best),
        "val": {f"beam {b} alpha {a}": v for (b, a), v in grid.items()},
        "val_own": grid.get(own),
        "test": args.test,
        "test_own": own_test,
        "test_chosen": best_test,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", type=Path, nargs="+")
    ap.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    ap.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.6, 1.0])
    ap.add_argument("--test", default="test_2016_flickr")
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="first N pairs only (a smoke test)")
    ap.add_argument("--json", type=Path, default=None, help="write every figure here")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    rows = [choose(run, args) for run in args.runs]
    for r in rows:
        print(f"\n{r['run']}: settings of the run beam {r['own'][0]} alpha {r['own'][1]}; "
              f"chosen on val beam {r['chosen'][0]} alpha {r['chosen'][1]}")  # fmt: skip
        print("| setting | val BLEU (lowercased) |\n|---|---|")
        for k, v in r["val"].items():
            mark = " (chosen)" if k == f"beam {r['chosen'][0]} alpha {r['chosen'][1]}" else ""
            print(f"| {k}{mark} | {v:.2f} |")
        print(f"{r['test']}: run's settings {r['test_own']:.2f}, chosen {r['test_chosen']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
