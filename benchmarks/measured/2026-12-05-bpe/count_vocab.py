"""Count what two runs' vocabularies do with Multi30k: words/pieces in the training split and
reference words of a test split that the target vocabulary cannot spell (encodes with ``<unk>``).

usage: python count_vocab.py SHARED RUN [RUN ...] [--src en --tgt de --split test_2016_flickr]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from attnrun.translate.data.multi30k import locate
from attnrun.translate.data.readers import read_parallel
from attnrun.translate.tokenize import UNK, load_tokenizer, word_split


def pairs(shared: Path, split: str, src: str, tgt: str) -> list[tuple[str, str]]:
    """The (source, target) pairs of one Multi30k split, read as training reads them."""
    root = str(shared / "data" / "multi30k")
    return read_parallel(locate(split, src, root), locate(split, tgt, root))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("shared", type=Path)
    ap.add_argument("runs", type=Path, nargs="+")
    ap.add_argument("--src", default="en")
    ap.add_argument("--tgt", default="de")
    ap.add_argument("--split", default="test_2016_flickr")
    args = ap.parse_args()
    train = pairs(args.shared, "train", args.src, args.tgt)
    refs = [w for _, t in pairs(args.shared, args.split, args.src, args.tgt) for w in word_split(t)]
    for run in args.runs:
        for i, (side, lang) in enumerate((("src", args.src), ("tgt", args.tgt))):
            tok = load_tokenizer(run, side)
            n = sum(len(tok.encode(pair[i])) for pair in train)
            print(f"{run.name} {side} ({lang}): vocabulary {tok.size}, train tokens {n:,}")
        tgt = load_tokenizer(run, "tgt")
        unknown = sum(UNK in tgt.encode(w) for w in refs)
        print(f"{run.name}: {unknown} of {len(refs):,} {args.split} reference words unknown")


if __name__ == "__main__":
    main()
