"""``tatoeba``: the English–French pairs of d2l's ``fra.txt`` (Tatoeba via manythings.org).

``data.path`` points at ``fra.txt``; without it, d2l's ``fra-eng.zip`` is downloaded into the cache
and checked against d2l's published SHA-1. Text is preprocessed as in d2l 10.5: non-breaking spaces
become spaces, everything is lowercased, and a space is put before ``, . ! ?`` not preceded by one.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from attnrun.errors import DataError
from attnrun.translate.data import Corpus, datasets, describe, split_pairs
from attnrun.translate.data.download import cache_root, fetch
from attnrun.translate.data.readers import ReadReport, read_tsv

URL = "http://d2l-data.s3-accelerate.amazonaws.com/fra-eng.zip"
SHA1 = "94646ad1522d915e7b0f9296181140edcf86a4f5"

#: d2l 10.7's demo sentences and their references.
DEMO = [
    ("go .", "va !"),
    ("i lost .", "j'ai perdu ."),
    ("he's calm .", "il est calme ."),
    ("i'm home .", "je suis chez moi ."),
]


def d2l_preprocess(text: str) -> str:
    """d2l's ``_preprocess``: nbsp → space, lowercase, space before ``,.!?`` glued to a word."""
    text = text.replace("\u202f", " ").replace("\xa0", " ").lower()
    out = []
    for i, ch in enumerate(text):
        out.append(" " + ch if ch in ",.!?" and i > 0 and text[i - 1] != " " else ch)
    return "".join(out)


def fra_txt(path: str | None, opener=None) -> Path:
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise DataError(f"{p}: no such file (data.path should point at d2l's fra.txt)")
        return p
    folder = cache_root() / "tatoeba"
    target = folder / "fra.txt"
    if target.is_file():
        return target
    archive = fetch(URL, folder / "fra-eng.zip", SHA1, algorithm="sha1", opener=opener)
    try:
        with zipfile.ZipFile(archive) as z:
            target.write_bytes(z.read("fra-eng/fra.txt"))
    except (zipfile.BadZipFile, KeyError) as e:
        raise DataError(f"{archive}: not d2l's fra-eng.zip ({e})") from None
    return target


@datasets.register("tatoeba")
def load_tatoeba(cfg, seed: int, opener=None) -> Corpus:
    report = ReadReport()
    raw = read_tsv(fra_txt(cfg.path, opener), skip_bad=cfg.skip_bad, report=report)
    pairs = [(d2l_preprocess(s), d2l_preprocess(t)) for s, t in raw]
    train, val, test = split_pairs(pairs, cfg.n_val, cfg.n_test, seed=1)
    if cfg.n_train is not None:
        train = train[: cfg.n_train]
    return Corpus("tatoeba", train, val, test, "test", skipped=report.skipped, extra={"demo": DEMO})


def check_tatoeba(cfg) -> None:
    """``data.path`` is a file, or d2l's zip is in the cache (downloaded now if not)."""
    fra_txt(cfg.path)


describe(load_tatoeba, check=check_tatoeba)
