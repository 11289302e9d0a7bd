"""Tokenizers, metrics (d2l BLEU, AER, sacreBLEU) and the toy generator's gold alignments."""

from __future__ import annotations

import math
import random

import pytest
import torch

from attnrun.errors import DataError
from attnrun.translate.data.tatoeba import d2l_preprocess
from attnrun.translate.data.toy import generate_pair
from attnrun.translate.metrics import (
    alignment_error_rate,
    argmax_alignment,
    corpus_scores,
    d2l_bleu,
    moses_bleu,
)
from attnrun.translate.tokenize import (
    EOS,
    UNK,
    BPETokenizer,
    WordTokenizer,
    load_tokenizer,
    save_tokenizer,
    word_split,
)

TEXTS = ["A man is riding a bike.", "Two dogs, playing!", "a man (smiling) rides"] * 3


def test_word_split_is_d2l_style():
    assert word_split("Hello,\u202fworld!") == ["hello", ",", "world", "!"]


def test_word_tokenizer_roundtrip_and_unknowns(tmp_path):
    tok = WordTokenizer.train(TEXTS, min_freq=2)
    ids = tok.encode("A man is riding a zebra.")
    assert UNK in ids
    assert (
        tok.decode([*tok.encode("a man is riding a bike ."), EOS, 7]) == "a man is riding a bike."
    )
    save_tokenizer(tok, tmp_path, "src")
    again = load_tokenizer(tmp_path, "src")
    assert again.encode("two dogs") == tok.encode("two dogs")


def test_bpe_tokenizer_roundtrip(tmp_path):
    tok = BPETokenizer.train(TEXTS * 5, vocab_size=60, min_freq=1)
    ids = tok.encode("a man is riding a bike.")
    assert tok.decode(ids) == "a man is riding a bike."
    assert ids[:1] != [UNK]
    save_tokenizer(tok, tmp_path, "tgt")
    assert load_tokenizer(tmp_path, "tgt").encode("a bike") == tok.encode("a bike")


def test_damaged_tokenizer_file(tmp_path):
    (tmp_path / "tokenizer.src.json").write_text("{not json")
    with pytest.raises(DataError, match="damaged tokenizer"):
        load_tokenizer(tmp_path, "src")


def test_d2l_bleu_matches_the_formula():
    assert d2l_bleu("il est calme .", "il est calme .") == 1.0
    # 3 of 4 unigrams, 2 of 3 bigrams, same length
    got = d2l_bleu("il est bien .", "il est calme .")
    assert got == pytest.approx((3 / 4) ** 0.5 * (1 / 3) ** 0.25)
    # brevity penalty
    assert d2l_bleu("va", "va !") == pytest.approx(math.exp(1 - 2))


def test_d2l_preprocess():
    assert d2l_preprocess("Go.\tVa !") == "go .\tva !"


def test_aer_and_argmax_alignment():
    w = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.0, 0.1, 0.9]])
    links = argmax_alignment(w, n_src=2, n_tgt=3)
    assert links == {(0, 0), (1, 1), (1, 2)}  # the last row's EOS column is not a word
    assert alignment_error_rate([links], [{(0, 0), (1, 1), (2, 2)}]) == pytest.approx(1 - 4 / 6)
    assert alignment_error_rate([{(0, 0)}], [{(0, 0)}]) == 0.0
    # a possible link counts for precision only: 1 - (1 + 2) / (2 + 1)
    assert alignment_error_rate([{(0, 0), (1, 0)}], [{(0, 0)}], [{(0, 0), (1, 0)}]) == 0.0


def test_corpus_scores_signatures():
    s = corpus_scores(["The cat sat ."], ["the cat sat ."])
    assert s["bleu_lowercase"] == pytest.approx(100.0)
    assert s["bleu"] < 100.0
    assert "case:lc" in s["bleu_lowercase_signature"]
    assert "nrefs:1" in s["bleu_signature"]


#: Multi30k test_2016_flickr.fr line 2, raw (as ``../shared`` holds it) and as the dataset's own
#: ``data/task1/tok/test_2016_flickr.lc.norm.tok.fr`` spells it (lowercased, Moses-tokenized,
#: the apostrophe escaped): the independent reference of :func:`moses_bleu`'s preprocessing
RAW_FR = "Un terrier de Boston court sur l'herbe verdoyante devant une clôture blanche."
TOK_FR = "un terrier de boston court sur l&apos; herbe verdoyante devant une clôture blanche ."
#: val.de line 740, raw: its German quotes „…“ are what the dataset's normalization makes ``"``
#: (its ``lc.norm.tok`` line: ``eine junge frau in &quot; straßenkleidung &quot; und …``)
RAW_DE = (
    "Eine junge Frau in „Straßenkleidung“ und Stiefeln führt eine Ballettübung an einem See aus."
)


def test_moses_bleu_is_bleu_on_the_datasets_tokenized_files():
    """Guards the preprocessing papers use: lowercase, normalize punctuation, Moses-tokenize (a
    missing step, or 13a instead of ``tokenize="none"``, moves the score away from BLEU counted
    on the dataset's own ``lc.norm.tok`` line)."""
    from sacrebleu.metrics import BLEU

    hyp_raw = "Un terrier court sur l'herbe verte devant une clôture blanche."
    hyp_tok = "un terrier court sur l&apos; herbe verte devant une clôture blanche ."
    want = BLEU(tokenize="none", force=True).corpus_score([hyp_tok], [[TOK_FR]]).score
    assert moses_bleu([hyp_raw], [RAW_FR], "fr") == pytest.approx(want, abs=0.01)
    assert moses_bleu([RAW_FR.upper()], [RAW_FR], "fr") == pytest.approx(100.0)
    straight = RAW_DE.replace("„", '"').replace("“", '"')
    assert moses_bleu([straight], [RAW_DE], "de") == pytest.approx(100.0)


def test_moses_bleu_splits_french_elisions_where_13a_does_not():
    """Guards the tokenization itself: French ``l'herbe`` is two tokens, so a wrong noun after a
    right article still matches the article; 13a scores the whole word wrong."""
    hyp, ref = ["le chien court dans l'herbe ."], ["le chien court dans l'arbre ."]
    assert moses_bleu(hyp, ref, "fr") > corpus_scores(hyp, ref)["bleu_lowercase"]


def test_toy_gold_alignment_covers_every_target_word():
    rng = random.Random(0)
    for _ in range(200):
        src, tgt, gold, possible = generate_pair(rng)
        assert gold <= possible
        s, t = src.split(), tgt.split()
        assert sorted(j for _, j in gold) == list(range(len(t)))  # one link per target word
        assert all(0 <= i < len(s) for i, _ in gold)
        for i, j in gold:
            if t[j] in ("ne", "pas"):
                assert s[i] == "not"
        if "does" in s:
            assert all(i != s.index("does") for i, _ in gold)  # dropped word
            assert {t[j] for i, j in possible - gold} == {"ne", "pas"}


def test_bleu_by_length_scores_each_bucket_on_its_own_sentences():
    """Guards against bucketing by the hypothesis (or target) length instead of the source's, and
    against scoring a bucket on every sentence: each bucket's BLEU equals sacreBLEU on just the
    sentences whose source has that many words."""
    import sacrebleu

    from attnrun.translate.metrics import bleu_by_length

    sources = ["a b c", "a " * 15, "a " * 25, "a " * 40]
    refs = ["the cat sat on the mat", "a dog is here now", "it rains a lot today", "yes"]
    hyps = ["the cat sat on the mat", "a dog is there now", "nothing like it", "no"]
    rows = bleu_by_length(sources, hyps, refs)
    assert [r["range"] for r in rows] == ["1-10", "11-20", "21-30", "31+"]
    assert [r["sentences"] for r in rows] == [1, 1, 1, 1]
    for i, r in enumerate(rows):
        assert r["bleu"] == round(sacrebleu.corpus_bleu([hyps[i]], [[refs[i]]]).score, 2)
    assert rows[0]["bleu"] == 100.0 and rows[3]["bleu"] == 0.0
    empty = bleu_by_length(["a b"], ["x"], ["x"])
    assert empty[1] == {"range": "11-20", "sentences": 0, "bleu": None, "bleu_lowercase": None}


def test_detokenize_spaces_text_as_decode_does():
    """A reference goes through the target tokenizer's ``detokenize`` so that it reads like the
    hypotheses: the word tokenizer glues punctuation, BPE keeps the text (its decode already
    reproduces the training text's spaces)."""
    from attnrun.translate.tokenize import BPETokenizer, WordTokenizer

    texts = ["le chat est noir !", "il dit : « oui »  ( bien ) .", "déjà collé!"]
    word = WordTokenizer.train(texts, min_freq=1)
    assert [word.detokenize(t) for t in texts] == [
        "le chat est noir!", "il dit: «oui» (bien).", "déjà collé!",
    ]  # fmt: skip
    for t in texts:  # the same spacing as decoding the text's own ids
        assert word.detokenize(t) == word.decode(word.encode(t))
    bpe = BPETokenizer.train(texts * 5, vocab_size=120, min_freq=1)
    assert bpe.detokenize(texts[0]) == texts[0] == bpe.decode(bpe.encode(texts[0]))
