"""``tokenizer.split_apostrophes``: the word tokenizer splits a word after an apostrophe between
two letters (``l'eau`` → ``l' eau``, as the Moses tokenizer of Multi30k's published systems
splits French elisions), glues it back when decoding, keeps the choice in its saved file, and
refuses it with BPE (one line, exit 2)."""

from __future__ import annotations

import json

import pytest
import torch

from attnrun.cli import main
from attnrun.experiments import experiments
from attnrun.translate.data import Corpus
from attnrun.translate.pipeline import train_tokenizers
from attnrun.translate.tokenize import (
    UNK,
    WordTokenizer,
    load_tokenizer,
    replace_unknown,
    save_tokenizer,
    word_split,
)

run = experiments.get("translate")

FRENCH = [
    "L'homme boit de l'eau.",
    "Un enfant d'un an joue avec l’eau.",
    "Une femme qu'il regarde.",
    "L'eau est froide aujourd'hui.",
]
#: CLI overrides that keep a run short should a bad-input check let it start.
SMALL = ["data.n_train=40", "data.n_val=8", "data.n_test=8", "train.epochs=1",
         "model.embed_size=8", "model.num_hiddens=8", "plot.heatmaps=1"]  # fmt: skip


def test_split_falls_after_an_apostrophe_between_letters_only():
    """Guards the side and the place of the split: after the apostrophe (``l'`` stays one
    elided word, as Moses splits French), for ``'`` and ``’``, and only between two letters
    (quotes at a word's edge and ``dogs'`` stay as they were); off by default."""
    split = word_split("L'homme d'un an, l’eau et qu'il", apostrophes=True)
    assert split == ["l'", "homme", "d'", "un", "an", ",", "l’", "eau", "et", "qu'", "il"]
    assert word_split("the dogs' 'toys'", apostrophes=True) == ["the", "dogs'", "'toys'"]
    assert word_split("L'homme d'un an") == ["l'homme", "d'un", "an"]


def test_elided_and_bare_forms_share_the_stem_and_decode_as_written():
    """``l'eau`` and ``eau`` share one entry; decoding glues the elision back, so every sentence
    decodes to its lowercased text (the hypotheses BLEU scores read as the references). Planted
    bug caught: the split made without the glue in ``decode`` (``l' eau`` in every output)."""
    tok = WordTokenizer.train(FRENCH, min_freq=1, split_apostrophes=True)
    assert "eau" in tok.stoi and "l'" in tok.stoi and "l'eau" not in tok.stoi
    for text in FRENCH:
        assert UNK not in tok.encode(text)
        assert tok.decode(tok.encode(text)) == text.lower() == tok.detokenize(text.lower())


def test_a_tokenizer_without_the_option_decodes_as_before():
    """Guards older runs: without the option nothing is glued that was not before (a vocabulary
    whose words end in an apostrophe keeps the space after them). Planted bug caught: the glue
    applied by every word tokenizer."""
    old = WordTokenizer(["<pad>", "<bos>", "<eos>", "<unk>", "l'", "eau"])
    assert old.decode([4, 5]) == "l' eau"
    assert old.encode("l'eau") == [UNK]


def test_the_choice_is_saved_with_the_tokenizer_and_older_files_load_without_it(tmp_path):
    """A reloaded tokenizer encodes a new sentence as the trained one did (inference
    preprocessing equal to training's); a file written before the option existed loads as the
    plain word tokenizer. Planted bug caught: ``load_tokenizer`` dropping the key."""
    tok = WordTokenizer.train(FRENCH, min_freq=1, split_apostrophes=True)
    save_tokenizer(tok, tmp_path, "tgt")
    again = load_tokenizer(tmp_path, "tgt")
    assert again.encode("l'homme d'un an") == tok.encode("l'homme d'un an")
    assert again.decode(again.encode("l'homme d'un an")) == "l'homme d'un an"
    plain = WordTokenizer.train(FRENCH, min_freq=1)
    obj = json.loads(plain.to_json())
    assert "split_apostrophes" not in obj
    (tmp_path / "tokenizer.src.json").write_text(json.dumps(obj), encoding="utf-8")
    assert load_tokenizer(tmp_path, "src").encode("l'eau") == plain.encode("l'eau")


def test_the_option_reaches_both_tokenizers_of_a_run(tmp_path):
    """``tokenizer.split_apostrophes=true`` trains both sides' tokenizers with the split.
    Planted bug caught: ``train_tokenizers`` not passing the option on."""
    tk = run.make_config({"tokenizer": {"split_apostrophes": True, "min_freq": 1}}).tokenizer
    pairs = [("a man's dog.", f) for f in FRENCH]
    src_tok, tgt_tok = train_tokenizers(
        tk, Corpus("fixture", pairs, pairs[:1], pairs[:1]), tmp_path
    )
    assert src_tok.pieces(src_tok.encode("a man's dog")) == ["a", "man'", "s", "dog"]
    assert tgt_tok.pieces(tgt_tok.encode("l'eau")) == ["l'", "eau"]
    assert load_tokenizer(tmp_path, "src").apostrophes is True


def test_replace_unk_copies_the_source_word_as_the_source_tokenizer_split_it():
    """The attention columns are the source tokenizer's words: with the split, column 1 of
    ``l'okapi mange`` is ``okapi``. Planted bug caught: the source split without the option
    (column 1 would be ``mange``)."""
    src = WordTokenizer.train(["l'okapi mange"], min_freq=1, split_apostrophes=True)
    tgt = WordTokenizer.train(["le mange ."], min_freq=1)
    weights = torch.tensor([[0.05, 0.9, 0.03, 0.02]])  # "l'", "okapi", "mange", EOS
    assert replace_unknown(tgt, [UNK], weights, "l'okapi mange", src) == "okapi"


def test_split_apostrophes_with_bpe_fails_at_once_through_the_cli(tmp_path, capsys):
    """``tokenizer.split_apostrophes=true`` with ``tokenizer.kind=bpe``: exit 2 and one line
    naming the option and the kind it needs, before any run folder exists. Planted bug caught:
    the check in ``TokenizerConfig`` dropped (the option silently ignored)."""
    with pytest.raises(SystemExit) as exc:
        args = ["tokenizer.kind=bpe", "tokenizer.split_apostrophes=true", *SMALL]
        main(["translate", "-q", "--root", str(tmp_path), *args])
    _, err = capsys.readouterr()
    assert exc.value.code == 2
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert "tokenizer.split_apostrophes=True is not valid" in err and "kind=word" in err
    assert not (tmp_path / "outputs").exists()
