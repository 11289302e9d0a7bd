"""``attnrun ablate`` timed, and the coref question over seeds.

usage: python benchmarks/bench_ablate.py RUN [RUN ...] [--split val] [--threads 1] [--table]
       [--no-speed] [--orders 1] [--steps 6]

Per run (e.g. the seed folders ``benchmarks/coref_seeds.py --out DIR`` keeps):

- **speed**: one evaluation of the intact model (greedy decoding with the key/value cache, batched,
  plus teacher-forced perplexity) — the peer every other figure is a ratio of —; every head removed
  once plus the intact model (coref recipe: 3 + 3 layers × 2 heads × 3 kinds = 18 removals;
  target ≤ 60 s on 300 validation pairs); the gradient importance of every head in one pass
  (target ≤ 2× one evaluation);
- with ``--table``: the whole ``attnrun ablate`` on the test split (held-out pairs) and one row of
  the coref table: the smallest head set that brings pronoun accuracy to ≤ 0.6, the accuracy and
  BLEU on the other words with it removed, where those heads rank in the run's attention-mass
  tables, the smallest cross-attention set, and ρ(gradient importance, removal effect).

Timings depend on the machine's load: the script prints ``os.getloadavg()`` beside them.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import torch

from attnrun.ablate import ablate, open_target
from attnrun.core.heads import Interventions


def speed(run: Path, split: str) -> dict:
    target, _ = open_target(run, split)
    t0, c0 = time.perf_counter(), time.process_time()
    target.evaluate(None)
    one, one_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    target.evaluate(None)
    for head in target.heads():
        target.evaluate(Interventions.remove([head], target.sites))
    every, every_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    target.importance()
    grad, grad_cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "run": run.name,
        "examples": target.examples,
        "heads": len(target.heads()),
        "one_eval_s": round(one, 2),
        "all_heads_s": round(every, 1),
        "all_heads_vs_eval": round(every / one, 1),
        "importance_s": round(grad, 2),
        "importance_vs_eval": round(grad / one, 2),
        # CPU seconds of this process (one thread): what the wall time is on an idle core
        "cpu_one_eval_s": round(one_cpu, 2),
        "cpu_all_heads_s": round(every_cpu, 1),
        "cpu_importance_vs_eval": round(grad_cpu / one_cpu, 2),
    }


def coref_row(run: Path, orders: int, steps: int) -> dict:
    record, out = ablate(run, split="test", orders=orders, steps=steps)
    c = record["coref"]
    row = {"run": run.name, "pronoun": record["intact"]["pronoun_accuracy"],
           "rho": record["spearman_importance_effect"], "folder": str(out)}  # fmt: skip
    for key in ("any_head", "cross_heads"):
        s = c.get(key) or {}
        ranks = [f"{r['rank']}/{r['of']}" for r in s.get("mass_rank", []) if r]
        row[key] = {
            "heads": s.get("heads"),
            "reached": s.get("reached"),
            "pronoun": (s.get("metrics") or {}).get("pronoun_accuracy"),
            "bleu_other_words": (s.get("metrics") or {}).get("bleu_other_words"),
            "intact_bleu_other_words": record["intact"].get("bleu_other_words"),
            "mass_ranks": ranks,
        }
    return row


def summary(runs: list[Path]) -> str:
    """The coref table (markdown) from each run's latest ``ablation.json`` on the test split."""
    from attnrun.runs.files import read_ablations

    head = ["run", "pronoun", "smallest set (any head)", "pronoun / BLEU other words",
            "mass ranks", "cross-only set", "pronoun / BLEU other", "ρ"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run in runs:
        recs = [r for _, r in read_ablations(run) if r.get("coref") and r["split"] == "test"]
        if not recs:
            continue
        r = recs[-1]
        cells = [run.name, r["intact"]["pronoun_accuracy"]]
        for key in ("any_head", "cross_heads"):
            s = r["coref"].get(key) or {}
            m = s.get("metrics") or {}
            cells.append(
                ", ".join(s.get("heads") or []) + ("" if s.get("reached") else " (not reached)")
            )
            cells.append(f"{m.get('pronoun_accuracy')} / {m.get('bleu_other_words')}")
            if key == "any_head":
                cells.append(
                    " ".join(f"{x['rank']}/{x['of']}" for x in s.get("mass_rank", []) if x)
                )
        rho = r.get("spearman_importance_effect")
        cells.append("n/a (no single head matters)" if rho is None else f"{rho:.2f}")
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", type=Path, nargs="+")
    p.add_argument("--split", default="val")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--table", action="store_true", help="also the coref table (test split)")
    p.add_argument("--no-speed", action="store_true", help="only the coref table")
    p.add_argument("--summary", action="store_true", help="print the table of earlier --table runs")
    p.add_argument("--orders", type=int, default=1, help="random pruning orders (--table)")
    p.add_argument("--steps", type=int, default=6, help="pruning curve points (--table)")
    args = p.parse_args(argv)
    if args.summary:
        print(summary(args.runs))
        return
    torch.set_num_threads(args.threads)
    logging.getLogger("sacrebleu").setLevel(logging.ERROR)
    print(f"# threads {args.threads}, load average {os.getloadavg()}")
    for run in [] if args.no_speed else args.runs:
        print(speed(run, args.split), flush=True)
        print(f"# load average {os.getloadavg()}", flush=True)
    if args.table:
        for run in args.runs:
            print(coref_row(run, args.orders, args.steps), flush=True)
            print(f"# load average {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
