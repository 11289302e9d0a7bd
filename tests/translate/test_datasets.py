"""Dataset loaders on small local files: tatoeba (path and zip download), tsv, multi30k folders."""

from __future__ import annotations

import gzip
import hashlib
import io
import zipfile

import pytest

from attnrun.errors import DataError
from attnrun.experiments import experiments
from attnrun.translate.data import datasets, tatoeba


def _data_cfg(dataset="toy", **kw):
    """The typed ``data`` config of a translate run on ``dataset`` (its default test split)."""
    return experiments.get("translate").make_config({"dataset": dataset, "data": kw}).data


FRA = "".join(f"Go {i}.\tVa {i} !\tCC-BY 2.0 (France)\n" for i in range(30))


def test_tatoeba_from_path_is_preprocessed_like_d2l(tmp_path):
    p = tmp_path / "fra.txt"
    p.write_text("I'm home.\tJe suis chez\u202fmoi.\n" + FRA, encoding="utf-8")
    corpus = datasets.get("tatoeba")(_data_cfg(path=str(p), n_val=3, n_test=3), 0)
    assert len(corpus.train) == 25 and len(corpus.val) == 3 and len(corpus.test) == 3
    allpairs = corpus.train + corpus.val + corpus.test
    assert ("i'm home .", "je suis chez moi .") in allpairs
    assert corpus.extra["demo"][0] == ("go .", "va !")


def test_tatoeba_download_checks_sha1(tmp_path, monkeypatch):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("fra-eng/fra.txt", FRA)
    data = buf.getvalue()
    monkeypatch.setenv("ATTNRUN_CACHE", str(tmp_path))
    monkeypatch.setattr(tatoeba, "SHA1", hashlib.sha1(data).hexdigest())
    corpus = tatoeba.load_tatoeba(
        _data_cfg(n_val=2, n_test=2), 0, opener=lambda url: io.BytesIO(data)
    )
    assert len(corpus.train) == 26
    monkeypatch.setattr(tatoeba, "SHA1", "0" * 40)
    (tmp_path / "tatoeba" / "fra.txt").unlink()
    with pytest.raises(DataError, match="does not match"):
        tatoeba.load_tatoeba(_data_cfg(), 0, opener=lambda url: io.BytesIO(b"junk"))


def test_tsv_needs_path():
    with pytest.raises(DataError, match="data.path"):
        datasets.get("tsv")(_data_cfg(), 0)


def _gz(path, lines):
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("".join(x + "\n" for x in lines))


def test_multi30k_from_a_folder_any_pair(tmp_path):
    for split, n in (("train", 20), ("val", 5), ("test_2017_mscoco", 4)):
        for lang in ("en", "de", "fr"):
            _gz(tmp_path / f"{split}.{lang}.gz", [f"{lang} {split} {i}" for i in range(n)])
    cfg = _data_cfg(
        "multi30k", root=str(tmp_path), src="de", tgt="fr", test_split="test_2017_mscoco", n_val=3
    )
    corpus = datasets.get("multi30k")(cfg, 0)
    assert corpus.train[7] == ("de train 7", "fr train 7")
    assert len(corpus.val) == 3 and len(corpus.test) == 4
    with pytest.raises(DataError, match="data.src='xx'"):
        datasets.get("multi30k")(_data_cfg("multi30k", root=str(tmp_path), src="xx"), 0)
    with pytest.raises(DataError, match="test_2016_flickr.de.gz: missing"):
        datasets.get("multi30k")(_data_cfg("multi30k", root=str(tmp_path), src="de"), 0)


def test_toy_clauses_make_long_sentences_with_consistent_alignments():
    """``data.max_clauses`` joins clauses with and/et: long sentences for BLEU by length, every
    link inside both sentences, one sure link per target word; the default language is unchanged
    by the option's existence (max_clauses=1 draws exactly the old pairs)."""
    from attnrun.translate.data.toy import generate

    pairs, sure, possible = generate(200, 3, max_clauses=4)
    lengths = [len(s.split()) for s, _ in pairs]
    assert min(lengths) <= 10 and max(lengths) > 30
    for (src, tgt), s, p in zip(pairs, sure, possible):
        n_src, n_tgt = len(src.split()), len(tgt.split())
        assert s <= p and all(0 <= i < n_src and 0 <= j < n_tgt for i, j in p)
        assert sorted(j for _, j in s) == list(range(n_tgt))
        assert src.count(" and ") == tgt.count(" et ")
    assert generate(50, 3) == generate(50, 3, max_clauses=1)
