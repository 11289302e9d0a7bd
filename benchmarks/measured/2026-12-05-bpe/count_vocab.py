"""Count what two runs' vocabularies do with Multi30k: words/pieces in the training split and
reference words of a test split that the target vocabulary cannot spell (encodes with ``<unk>``).

usage: python count_vocab.py SHARED RUN [RUN ...] [--src en --tgt de --split test_2016_flickr]
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

from attnrun.translate.tokenize import UNK, load_tokenizer, word_split


def lines(shared: Path, split: str, lang: str) -> list[str]:
    """The raw lines of one Multi30k file under ``shared/data/multi30k``."""
    path = shared / "data" / "multi30k" / f"{split}.{lang}.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return f.read().splitlines()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("shared", type=Path)
    ap.add_argument("runs", type=Path, nargs="+")
    ap.add_argument("--src", default="en")
    ap.add_argument("--tgt", default="de")
    ap.add_argument("--split", default="test_2016_flickr")
    args = ap.parse_args()
    refs = [w for line in lines(args.shared, args.split, args.tgt) for w in word_split(line)]
    for run in args.runs:
        for side, lang in (("src", args.src), ("tgt", args.tgt)):
            tok = load_tokenizer(run, side)
            n = sum(len(tok.encode(line)) for line in lines(args.shared, "train", lang))
            print(f"{run.name} {side} ({lang}): vocabulary {tok.size}, train tokens {n:,}")
        tgt = load_tokenizer(run, "tgt")
        unknown = sum(UNK in tgt.encode(w) for w in refs)
        print(f"{run.name}: {unknown} of {len(refs):,} {args.split} reference words unknown")


if __name__ == "__main__":
    main()
