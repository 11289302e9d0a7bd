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

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from average_seeds import rescore, rescore_args  # noqa: E402


def score_run(run_dir: Path, data: Path, src: str, tgt: str, splits) -> list[dict]:
    """One row per split: lowercased BLEU with ``<unk>`` kept / deleted / replaced, the
    ``<unk>`` emitted and the copies found in the reference. Each split is decoded once (the
    run's beam): the replacement rewrites the same hypotheses, so the three scores are paired."""
    from attnrun.translate.data.readers import read_parallel
    from attnrun.translate.metrics import corpus_scores
    from attnrun.translate.tokenize import UNK, glue_punctuation, replace_unknown, word_split
    from attnrun.translate.translator import Translator

    translator = Translator.from_run(run_dir).with_decode(n_best=1)
    tok = translator.tgt_tok
    rows = []
    for split in splits:
        pairs = read_parallel(data / f"{split}.{src}.gz", data / f"{split}.{tgt}.gz")
        sources, refs = [s for s, _ in pairs], [r for _, r in pairs]
        _, hyps = translator.translate(sources)
        best = [h[0] for h in hyps]
        kept = [tok.decode(h.ids) for h in best]
        copied = [replace_unknown(tok, h.ids, h.weights, s) for h, s in zip(best, sources)]
        unks, hits = 0, 0
        for h, c, r in zip(best, copied, refs):
            ref_words = set(word_split(r))
            for i, cw in zip(h.ids, word_split(c)):
                if i == UNK:
                    unks += 1
                    hits += cw in ref_words
        deleted = [glue_punctuation(k.replace("<unk>", "")) for k in kept]
        texts = {"kept": kept, "deleted": deleted, "replaced": copied}
        bleu = {name: corpus_scores(t, refs)["bleu_lowercase"] for name, t in texts.items()}
        rows.append({
            "run": str(run_dir), "split": split,
            **{f"bleu_{name}": b for name, b in bleu.items()},
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
    ap = rescore_args(__doc__.split("\n\n")[0])
    ap.add_argument("--src", default="en")
    ap.add_argument("--tgt", default="fr")
    args = ap.parse_args(argv)
    header = ["run", "split", "BLEU, <unk> kept", "deleted", "replaced", "gain over kept",
              "<unk> emitted", "copies in ref"]  # fmt: skip
    return rescore(
        args, header, lambda run, data: score_run(run, data, args.src, args.tgt, args.splits)
    )


if __name__ == "__main__":
    raise SystemExit(main())
