"""What weight averaging buys: the README's Transformer Multi30k recipe with and without
``train.average``, over several seeds, scored on validation and the three test sets.

For every seed, one run per arm — ``none`` (the peer) and each ``--average`` mode (default
``last:5``, the last five epochs as Vaswani et al. 2017 §6.1 average the last five checkpoints) —
in the same ``--minutes`` of training, the arms of a seed one after the other, their order
rotated from seed to seed (so a drift in the machine's load favours no arm). Each run's
``model.pt`` (the averaged weights where averaging is on) then translates the full validation
split and test_2016_flickr, test_2017_flickr and test_2017_mscoco with the recipe's beam
(``attnrun evaluate``'s :func:`~attnrun.translate.predict.evaluate_files`), scored with
lowercased sacreBLEU.

Reported per split and arm: the mean BLEU over seeds with its range, and the gain over ``none``
of the same seed (mean, and range over seeds); and per averaging arm the gain within each run,
``val_bleu - raw_val_bleu`` at its best epoch, which the machine's load cannot bias.
``summary.json`` in ``--out`` holds every figure.

With ``--parallel`` the arms of a seed train *at the same time*, one process each with
``--threads`` threads (two 1-thread arms fill a 2-core machine): both arms then see the same load,
which makes the pair comparable even on a shared machine.

usage: python benchmarks/average_seeds.py [--seeds 0 1 2] [--average last:5 [ema:0.999 ...]]
           [--minutes 20] [--threads 1] [--parallel] [--src en --tgt fr] [--shared DIR]
           [--out DIR] [--splits val test_2016_flickr ...] [--beam N] [override ...]

Issue 21: "weight averaging alone (the README recipe ± averaging, 3 seeds each): its gain with
the range over seeds". A 20-minute budget is only comparable between runs on a quiet machine:
with a wall-clock budget, load from other jobs changes how many steps a run gets (``epochs`` and
``train_tokens_per_s`` are printed per run to show it). Averaging also validates twice an epoch
(raw and averaged weights), which the budget counts.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality_translate import RECIPE, _set  # noqa: E402  (the README's RNN recipe's base)

#: the README's Transformer recipe: quality_translate.py's base with these overrides
TRANSFORMER = {
    "model.arch": "transformer",
    "model.num_hiddens": 256,
    "model.num_heads": 4,
    "model.ffn_hiddens": 1024,
    "model.num_layers": 3,
    "model.dropout": 0.1,
    "model.tie_embeddings": True,
    "train.batch_size": 128,
    "train.lr": 0.001,
    "train.lr_schedule": "inverse_sqrt",
    "train.warmup_steps": 600,
    "train.patience": 0,
}
SPLITS = ("val", "test_2016_flickr", "test_2017_flickr", "test_2017_mscoco")


def recipe(args, seed: int, average: str) -> dict:
    """The run's config: the Transformer recipe, the budget, the seed and the arm."""
    import yaml

    cfg = json.loads(json.dumps(RECIPE))
    for key, value in TRANSFORMER.items():
        _set(cfg, key, value)
    settings = {
        "data.root": str(args.shared / "data" / "multi30k"),
        "data.src": args.src,
        "data.tgt": args.tgt,
        "train.max_minutes": None if args.epochs else args.minutes,
        "train.threads": args.threads,
        "train.average": average,
        "seed": seed,
    }
    if args.epochs:  # a fixed number of epochs instead of the time budget
        settings["train.epochs"] = args.epochs
    for key, value in settings.items():
        _set(cfg, key, value)
    for o in args.overrides:
        key, value = o.split("=", 1)
        _set(cfg, key, yaml.safe_load(value))
    return cfg


def run_arm(args, seed: int, average: str) -> dict:
    """Train one arm of one seed, then score its model.pt on every split."""
    run_dir = args.out / f"{average.replace(':', '_')}-seed{seed}"
    row = {"seed": seed, "average": average,
           **train_and_score(args, recipe(args, seed, average), run_dir)}  # fmt: skip
    print(
        f"seed {seed} {average}: {row['epochs_run']} epochs, "
        f"{row['train_tokens_per_s']:.0f} tok/s, {row['weights']}; "
        + ", ".join(f"{s} {b:.2f}" for s, b in row["bleu_lowercase"].items()),
        flush=True,
    )
    return row


#: the keys of a run's metrics.json each benchmark row keeps
ROW_KEYS = ("epochs_run", "best_epoch", "val_bleu", "raw_val_bleu", "weights",
            "train_tokens_per_s", "train_seconds", "parameters")  # fmt: skip


def train_and_score(args, cfg: dict, run_dir: Path) -> dict:
    """Train one run of ``cfg`` into ``run_dir`` on ``args.threads`` threads, then score its
    ``model.pt`` on every split: the row a benchmark reports (wall time, BLEU, :data:`ROW_KEYS`)."""
    import torch

    from attnrun.experiments import experiments

    torch.set_num_threads(args.threads)  # evaluation too: parallel arms must not oversubscribe
    t0 = time.perf_counter()
    metrics = experiments.get("translate")(cfg, run_dir, quiet=True)
    wall = time.perf_counter() - t0
    return {"run_dir": str(run_dir), "wall_s": round(wall, 1),
            "bleu_lowercase": score_splits(args, run_dir),
            **{k: metrics.get(k) for k in ROW_KEYS}}  # fmt: skip


def score_splits(args, run_dir: Path) -> dict[str, float]:
    """Lowercased sacreBLEU of the run's ``model.pt`` on every split of ``args.splits`` (the full
    splits, ``args.beam`` or the run's own decoding)."""
    from attnrun.translate.predict import evaluate_files

    data = args.shared / "data" / "multi30k"
    scores = {}
    for split in args.splits:
        res = evaluate_files(
            run_dir, data / f"{split}.{args.src}.gz", data / f"{split}.{args.tgt}.gz",
            beam=args.beam,
        )  # fmt: skip
        scores[split] = res["bleu_lowercase"]
    return scores


def exit_with_parent(parent: int) -> None:
    """A worker process's initializer: end the worker once process ``parent`` (the benchmark that
    started it) is gone, killed by a time limit or a signal, rather than train on as an orphan."""
    import os
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(2)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def pool(jobs: int) -> ProcessPoolExecutor:
    """``jobs`` spawned worker processes that end with this one (:func:`exit_with_parent`)."""
    import os

    ctx = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(jobs, mp_context=ctx, initializer=exit_with_parent,
                               initargs=(os.getpid(),))  # fmt: skip


def rotated(arms: list[str], seed: int) -> list[str]:
    """The arms in the order seed ``seed`` runs them: shifted by one each seed, so no arm always
    runs first (a machine whose load drifts would favour one position)."""
    k = seed % len(arms)
    return arms[k:] + arms[:k]


def within_run(rows: list[dict], arms: list[str]) -> dict:
    """Per averaging arm: ``val_bleu - raw_val_bleu`` at each run's best epoch (the averaged and
    the raw weights of the same run, so the machine's load cannot favour either), mean [range]."""
    out = {}
    for arm in arms[1:]:
        gain = [r["val_bleu"] - r["raw_val_bleu"] for r in rows if r["average"] == arm]
        out[arm] = {"mean": statistics.mean(gain), "min": min(gain), "max": max(gain)}
    return out


def summarise(rows: list[dict], arms: list[str], splits: list[str]) -> dict:
    """Per split and arm: BLEU mean [min, max] over seeds; gain over ``none`` of the same seed."""
    by = {(r["average"], r["seed"]): r["bleu_lowercase"] for r in rows}
    seeds = sorted({r["seed"] for r in rows})
    out: dict = {}
    for split in splits:
        out[split] = {}
        for arm in arms:
            bleu = [by[arm, s][split] for s in seeds]
            entry = {"mean": statistics.mean(bleu), "min": min(bleu), "max": max(bleu)}
            if arm != "none":
                gain = [by[arm, s][split] - by["none", s][split] for s in seeds]
                entry["gain"] = {"mean": statistics.mean(gain), "min": min(gain), "max": max(gain)}
            out[split][arm] = entry
    return out


def table(summary: dict, arms: list[str]) -> str:
    lines = ["| split | " + " | ".join(arms) + " |", "|---|" + "---|" * len(arms)]
    for split, entries in summary.items():
        cells = []
        for arm in arms:
            e = entries[arm]
            cell = f"{e['mean']:.2f} [{e['min']:.2f}–{e['max']:.2f}]"
            if "gain" in e:
                g = e["gain"]
                cell += f", gain {g['mean']:+.2f} [{g['min']:+.2f}, {g['max']:+.2f}]"
            cells.append(cell)
        lines.append(f"| {split} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def add_run_args(ap: argparse.ArgumentParser) -> None:
    """The options every run of a Multi30k quality benchmark reads: budget, threads, language
    pair, data, output folder, scored splits, beam and config overrides."""
    ap.add_argument("--minutes", type=float, default=20.0, help="training budget of each run")
    ap.add_argument(
        "--epochs", type=int, default=None,
        help="train exactly this many epochs, no time budget (--minutes ignored): a sweep on a "
        "faster machine at the epoch count a CPU reaches in its budget",
    )  # fmt: skip
    ap.add_argument("--threads", type=int, default=1, help="torch threads of each run")
    ap.add_argument("--src", default="en")
    ap.add_argument("--tgt", default="fr")
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--out", type=Path, default=None, help="folder of the runs and summary.json")
    ap.add_argument("--splits", nargs="+", default=list(SPLITS))
    ap.add_argument("--beam", type=int, default=None, help="evaluation beam (default: recipe's)")
    ap.add_argument("overrides", nargs="*", help="key=value config overrides of every run")


def rescore_args(description: str) -> argparse.ArgumentParser:
    """The options of a script that rescores finished runs: their folders, the data, the splits,
    the threads of a new decoding and a JSON copy of the rows."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--splits", nargs="+", default=list(SPLITS))
    ap.add_argument("--threads", type=int, default=2, help="torch threads of a new decoding")
    ap.add_argument("--out", type=Path, default=None, help="write the rows as JSON too")
    return ap


def rescore(args, header: list[str], score_run) -> int:
    """Print a Markdown table with ``header``'s columns, the rows ``score_run(run, data)`` prints
    for each run of ``args.runs``, and write them all to ``args.out`` as JSON when asked."""
    import torch

    torch.set_num_threads(args.threads)
    data = args.shared / "data" / "multi30k"
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    rows = [r for run in args.runs for r in score_run(run, data)]
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--average", nargs="+", default=["last:5"], help="arms beside none")
    ap.add_argument(
        "--parallel", action="store_true", help="train a seed's arms at once, one process each"
    )
    add_run_args(ap)
    args = ap.parse_args(argv)
    args.out = args.out or ROOT / "outputs" / f"average-seeds-{time.strftime('%Y%m%d-%H%M%S')}"
    arms = ["none", *[a for a in args.average if a != "none"]]

    from attnrun.averaging import make_averager
    from attnrun.io import write_json

    for arm in arms:
        make_averager(arm)  # a bad arm fails before any training
    rows = []
    for seed in args.seeds:
        order = rotated(arms, seed)
        if args.parallel:  # the arms of a seed side by side, one process each
            with pool(len(order)) as workers:
                rows += workers.map(run_arm, [args] * len(order), [seed] * len(order), order)
        else:
            rows += [run_arm(args, seed, arm) for arm in order]
    summary = summarise(rows, arms, args.splits)
    summary["within_run"] = within_run(rows, arms)
    given = sys.argv[1:] if argv is None else argv
    write_json(args.out / "summary.json", {"args": given, "runs": rows, "summary": summary})
    print(f"\nlowercased BLEU, mean [range] over seeds {args.seeds}; gain over none, same seed:")
    print(table({k: v for k, v in summary.items() if k != "within_run"}, arms))
    print("\nwithin each run, best epoch, greedy BLEU on the validation sentences training scores:")
    for arm, g in summary["within_run"].items():
        print(f"  {arm}: averaged - raw {g['mean']:+.2f} [{g['min']:+.2f}, {g['max']:+.2f}]")
    print(f"runs and summary.json: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
