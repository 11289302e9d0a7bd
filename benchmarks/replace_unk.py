"""What ``decode.replace_unk`` buys a trained word-vocabulary run: every split scored with the
run's ``<unk>`` kept and with each ``<unk>`` replaced by the source word it attends to most
(Luong et al. 2015b), same model, same beam — a paired difference, no retraining.

Besides BLEU, each row gives the score with each ``<unk>`` simply deleted (sacreBLEU's tokenizer
reads ``<unk>`` as three tokens, so part of any gain is only the shorter output), the ``<unk>``
the model emitted and how many of the copies are a word of the reference (what a copy can win:
names, numbers, words both languages share).

usage: python benchmarks/replace_unk.py RUN_DIR [RUN_DIR ...] [--shared DIR] [--src en --tgt fr]
           [--splits val test_2016_flickr ...] [--threads 2] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPLITS = ("val", "test_2016_flickr", "test_2017_flickr", "test_2017_mscoco")


def score_run(run_dir: Path, data: Path, src: str, tgt: str, splits) -> list[dict]:
    """One row per split: lowercased BLEU kept / replaced, ``<unk>`` emitted, copies in the
    reference."""
    from attnrun.translate.data.readers import read_parallel
    from attnrun.translate.metrics import corpus_scores
    from attnrun.translate.predict import evaluate_files
    from attnrun.translate.tokenize import glue_punctuation, word_split

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for split in splits:
            files = (data / f"{split}.{src}.gz", data / f"{split}.{tgt}.gz")
            res = {}
            for mode in (False, True):
                out = Path(tmp) / f"{split}-{mode}.txt"
                res[mode] = evaluate_files(run_dir, *files, out=out, replace_unk=mode)
            kept = Path(res[False]["translations"]).read_text(encoding="utf-8").splitlines()
            copied = Path(res[True]["translations"]).read_text(encoding="utf-8").splitlines()
            refs = [r for _, r in read_parallel(*files)]
            unks, hits = 0, 0
            for k, c, r in zip(kept, copied, refs):
                ref_words = set(word_split(r))
                for kw, cw in zip(word_split(k), word_split(c)):
                    if kw == "<unk>":
                        unks += 1
                        hits += cw in ref_words
            deleted = [glue_punctuation(k.replace("<unk>", "")) for k in kept]
            rows.append({
                "run": str(run_dir), "split": split,
                "bleu_kept": res[False]["bleu_lowercase"],
                "bleu_deleted": corpus_scores(deleted, refs)["bleu_lowercase"],
                "bleu_replaced": res[True]["bleu_lowercase"],
                "unk_emitted": unks, "copies_in_reference": hits,
            })  # fmt: skip
            print(_row(rows[-1]), flush=True)
    return rows


def _row(r: dict) -> str:
    gain = r["bleu_replaced"] - r["bleu_kept"]
    return (
        f"| {Path(r['run']).name} | {r['split']} | {r['bleu_kept']:.2f} | {r['bleu_deleted']:.2f}"
        f" | {r['bleu_replaced']:.2f} | {gain:+.2f} | {r['unk_emitted']}"
        f" | {r['copies_in_reference']} |"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--src", default="en")
    ap.add_argument("--tgt", default="fr")
    ap.add_argument("--splits", nargs="+", default=list(SPLITS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="write the rows as JSON too")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    data = args.shared / "data" / "multi30k"
    print(
        "| run | split | BLEU, <unk> kept | deleted | replaced | gain over kept | <unk> emitted "
        "| copies in ref |"
    )
    print("|---|---|---|---|---|---|---|---|")
    rows = [r for run in args.runs for r in score_run(run, data, args.src, args.tgt, args.splits)]
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
