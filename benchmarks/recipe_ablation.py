"""What each ingredient of the Transformer Multi30k recipe buys: the recipe with weight averaging
(``train.average=last:5``), then the recipe with one change undone or made, every arm with the
same seed and the same ``--minutes`` of training.

Arms (:data:`ARMS`, name → config overrides over the recipe):

- ``recipe``: the README's Transformer recipe with ``train.average=last:5``;
- ``no_averaging``, ``no_label_smoothing``, ``no_warmup`` (the tool's default schedule, a
  constant rate halved on a plateau), ``no_bf16``, ``no_tied``: one ingredient undone;
- ``batch64``, ``bpe`` (a shared 8,000-piece BPE vocabulary instead of words), ``tiny`` (the
  published tiny Transformer's size: 4 + 4 layers, d = 128, FFN 256, Wu et al. 2021),
  ``warmup_cosine`` (warm-up, then a cosine to 0 when the budget ends), ``ema`` (``ema:0.999``
  instead of ``last:5``): one alternative tried;
- ``rnn``, ``rnn_no_averaging``: the README's RNN recipe (Luong ``general``, bidirectional GRU)
  with and without ``last:5``.

Each arm's ``model.pt`` then translates the full validation split and the three test sets with
the recipe's beam 5 and length penalty 0.6 (:func:`average_seeds.score_splits`); choices are
read off the validation column, the test columns are reported beside it. ``--jobs`` arms train
at once, one process each with ``--threads`` threads (two 1-thread arms fill a 2-core machine,
so every arm sees the same load as its neighbour). One seed: the spread of the recipe over seeds
(``average_seeds.py``, about ±0.35 validation BLEU) is the yardstick for a single arm's
difference.

``dropout0.2_lr0.002_bpe`` is the two-thread pick for 30 minutes or more (dropout 0.2, peak rate
0.002) with the shared BPE vocabulary of ``bpe``: en→de, where the word vocabulary cannot spell
3.8% of the test words, it gained +0.59 test_2016_flickr BLEU in 20 minutes; en→fr it lost 1.46.
``bpe_separate`` gives each language its own 8,000 pieces instead (no sharing, no three-way tying).

The arms from ``dropout0.2`` to ``dropout0.2_lr0.002`` change nothing a CPU epoch costs (nearly:
``min_freq1``'s larger vocabulary, ``batch256``'s fewer steps), so ``--epochs N`` (N epochs, no
time budget) on a faster machine ranks them as N epochs of a CPU budget would: the 20-minute
budget is about 14 epochs on 2 threads, 9 on 1 (``docs/benchmarks.md``).

usage: python benchmarks/recipe_ablation.py [--arms recipe no_label_smoothing ...] [--jobs 2]
           [--threads 1] [--minutes 20 | --epochs N] [--seed 0] [--src en --tgt fr] [--shared DIR]
           [--out DIR] [--splits ...] [override ...]

Issue 21: "report the ablation of each ingredient (a table: recipe, minus averaging, minus each
other change) measured on validation and test_2016_flickr".
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from average_seeds import add_run_args, pool, recipe, train_and_score  # noqa: E402

#: one shared source+target BPE vocabulary of 8,000 pieces (three-way tying with the recipe's
#: ``model.tie_embeddings``)
BPE = {"tokenizer.kind": "bpe", "tokenizer.shared": True, "tokenizer.vocab_size": 8000}
#: arm → config overrides over the Transformer recipe with ``train.average=last:5``
ARMS: dict[str, dict] = {
    "recipe": {},
    "no_averaging": {"train.average": "none"},
    "no_label_smoothing": {"train.label_smoothing": 0.0},
    "no_warmup": {"train.lr_schedule": "plateau"},
    "no_bf16": {"train.precision": "fp32"},
    "no_tied": {"model.tie_embeddings": False},
    "batch64": {"train.batch_size": 64},
    "bpe": BPE,
    "tiny": {"model.num_hiddens": 128, "model.ffn_hiddens": 256, "model.num_layers": 4},
    "warmup_cosine": {"train.lr_schedule": "warmup_cosine"},
    "ema": {"train.average": "ema:0.999"},
}
#: the README's RNN recipe (``quality_translate.RECIPE``): its value of every key the
#: Transformer's overrides set (the heads, FFN and warm-up are the Transformer's own)
RNN = {"model.arch": "rnn", "model.num_hiddens": 384, "model.num_layers": 1,
       "model.dropout": 0.25, "train.batch_size": 64, "train.lr": 0.003,
       "train.lr_schedule": "plateau", "train.patience": 3}  # fmt: skip
ARMS["rnn"] = RNN
ARMS["rnn_no_averaging"] = {**RNN, "train.average": "none"}
#: settings that leave a CPU epoch's cost (nearly) unchanged, so a sweep at a fixed epoch count
#: (``--epochs``, on a faster machine) ranks them as a CPU budget of that many epochs would
ARMS.update({
    "dropout0.2": {"model.dropout": 0.2},
    "dropout0.3": {"model.dropout": 0.3},
    "lr0.0005": {"train.lr": 0.0005},
    "lr0.002": {"train.lr": 0.002},
    "warmup300": {"train.warmup_steps": 300},
    "warmup1200": {"train.warmup_steps": 1200},
    "last3": {"train.average": "last:3"},
    "last8": {"train.average": "last:8"},
    "smoothing0.2": {"train.label_smoothing": 0.2},
    "batch256": {"train.batch_size": 256},
    "prenorm": {"model.norm_first": True},
    "min_freq1": {"tokenizer.min_freq": 1},
    "dropout0.2_lr0.002": {"model.dropout": 0.2, "train.lr": 0.002},
})  # fmt: skip
ARMS["dropout0.2_lr0.002_bpe"] = {**ARMS["dropout0.2_lr0.002"], **BPE}
#: a BPE vocabulary of 8,000 pieces for each language (no sharing, so no three-way tying)
ARMS["bpe_separate"] = {**BPE, "tokenizer.shared": False}
#: words with apostrophes split off (``l'eau`` → ``l ' eau``), near the Moses tokenization of the
#: published systems (which split French elisions and English possessives)
ARMS["apostrophes"] = {"tokenizer.split_apostrophes": True}
#: no dropout on the attention weights (the residual and embedding dropout stay): fairseq's
#: IWSLT recipes' default; a training step then draws no mask for the weights
ARMS["attention_dropout0"] = {"model.attention_dropout": 0.0}
#: the optimiser of Vaswani et al. 2017 (5.3) and fairseq's Transformer recipes: Adam's
#: beta2 0.98 instead of 0.999; decoupled weight decay (AdamW) 0.01, AdamW's own default
ARMS["beta2_0.98"] = {"train.adam_beta2": 0.98}
ARMS["weight_decay0.01"] = {"train.weight_decay": 0.01}
#: the rate ramped linearly to 0 over the budget's last 20% (a warm-up, inverse_sqrt, then a
#: cool-down; Hägele et al. 2024): the weights averaged at the end are annealed ones
ARMS["cooldown0.2"] = {"train.cooldown": 0.2}
#: source word dropout 0.1: a tenth of the source words read as <unk> in training (Sennrich &
#: Zhang 2019; Araabi & Monz 2020's low-resource Transformer): no cost an epoch
ARMS["word_dropout0.1"] = {"train.word_dropout": 0.1}
#: a shared BPE vocabulary of 4,000 pieces, half of ``bpe``'s: Sennrich & Zhang 2019 found
#: smaller vocabularies better for small corpora (longer sequences, a narrower softmax)
ARMS["bpe4000"] = {**BPE, "tokenizer.vocab_size": 4000}


def config(args, name: str) -> dict:
    """Arm ``name``'s config: the recipe with ``last:5``, the seed, then the arm's overrides."""
    from average_seeds import _set

    cfg = recipe(args, args.seed, "last:5")
    for key, value in ARMS[name].items():
        _set(cfg, key, value)
    return cfg


def run_arm(args, name: str) -> dict:
    """Train arm ``name``, then score its ``model.pt`` on every split; its row is also appended
    to ``rows.jsonl`` at once (a sweep cut short keeps the arms it finished)."""
    import json

    row = {"arm": name, **train_and_score(args, config(args, name), args.out / name)}
    with open(args.out / "rows.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    print(
        f"{name}: {row['epochs_run']} epochs, {row['train_tokens_per_s']:.0f} tok/s; "
        + ", ".join(f"{s} {b:.2f}" for s, b in row["bleu_lowercase"].items()),
        flush=True,
    )
    return row


def table(rows: list[dict], splits: list[str]) -> str:
    """Markdown: one row per arm, its BLEU per split and its difference from ``recipe``."""
    base = next((r["bleu_lowercase"] for r in rows if r["arm"] == "recipe"), None)
    lines = ["| arm | " + " | ".join(splits) + " | epochs |", "|---|" + "---|" * (len(splits) + 1)]
    for r in rows:
        cells = []
        for split in splits:
            b = r["bleu_lowercase"][split]
            diff = f" ({b - base[split]:+.2f})" if base and r["arm"] != "recipe" else ""
            cells.append(f"{b:.2f}{diff}")
        lines.append(f"| {r['arm']} | " + " | ".join(cells) + f" | {r['epochs_run']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS), metavar="ARM")
    ap.add_argument("--jobs", type=int, default=2, help="arms trained at once, one process each")
    ap.add_argument("--seed", type=int, default=0)
    add_run_args(ap)
    args = ap.parse_args(argv)
    args.out = args.out or ROOT / "outputs" / f"recipe-ablation-{time.strftime('%Y%m%d-%H%M%S')}"

    from attnrun.experiments import experiments
    from attnrun.io import write_json

    for name in args.arms:  # a bad arm or override fails before any training
        experiments.get("translate").make_config(config(args, name))
    with pool(args.jobs) as workers:
        rows = list(workers.map(run_arm, [args] * len(args.arms), args.arms))
    given = sys.argv[1:] if argv is None else argv
    write_json(args.out / "summary.json", {"args": given, "runs": rows})
    budget = f"{args.epochs} epochs" if args.epochs else f"{args.minutes:g} minutes"
    print(f"\nlowercased BLEU, seed {args.seed}, {budget} each:")
    print(table(rows, args.splits))
    print(f"runs and summary.json: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
