"""``decode.replace_unk``: each ``<unk>`` a word-vocabulary model emits becomes the source word it
attends to most (Luong et al. 2015b's PosUnk copy), in ``evaluate``, ``predict`` and the run's
own test translations; a BPE or attention-less run refuses it with one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from attnrun.cli import app
from attnrun.errors import ConfigError
from attnrun.experiments import experiments
from attnrun.translate import translator as translator_module
from attnrun.translate.predict import evaluate_files
from attnrun.translate.search import Hypothesis
from attnrun.translate.tokenize import UNK, WordTokenizer, replace_unknown
from attnrun.translate.translator import Translator

runner = CliRunner()

TINY = {
    "data": {"n_train": 120, "n_val": 8, "n_test": 8},
    "model": {"embed_size": 8, "num_hiddens": 8},
    "train": {"epochs": 1, "batch_size": 32, "threads": 1},
    "decode": {"max_len": 12},
    "plot": {"heatmaps": 0},
}


def tok(lowercase: bool = True) -> WordTokenizer:
    return WordTokenizer.train(["ein hund sieht ."], min_freq=1, lowercase=lowercase)


def ids(t: WordTokenizer, *words: str) -> list[int]:
    return [UNK if w == "<unk>" else t.stoi[w] for w in words]


def one_hot(rows: list[int], n_cols: int) -> torch.Tensor:
    """``(len(rows), n_cols)`` weights, row ``t`` all on column ``rows[t]`` (0.9, the rest
    shared)."""
    w = torch.full((len(rows), n_cols), 0.1 / (n_cols - 1))
    w[torch.arange(len(rows)), torch.tensor(rows)] = 0.9
    return w


def test_each_unk_becomes_the_source_word_its_own_row_attends_to():
    """Guards the row: token ``t``'s weights are row ``t`` (not ``t + 1``, not the first unk's
    row for every unk), and known words are left alone."""
    t = tok()
    hyp = ids(t, "ein", "<unk>", "sieht", "<unk>", ".")
    # source "A Zebra sees a Giraffe ." + EOS: 7 columns; rows 1 and 3 point at 1 and 4
    w = one_hot([0, 1, 2, 4, 5, 5], 7)
    assert replace_unknown(t, hyp, w, "A Zebra sees a Giraffe .") == "ein zebra sieht giraffe."


def test_the_eos_column_is_never_copied():
    """Guards the EOS column: an ``<unk>`` attending mostly to EOS copies the best *word*."""
    t = tok()
    w = torch.tensor([[0.2, 0.1, 0.7], [0.3, 0.1, 0.6]])  # columns: okapi, ., EOS
    assert replace_unknown(t, ids(t, "ein", "<unk>"), w, "Okapi .") == "ein okapi"


def test_the_copy_takes_the_target_tokenizers_case():
    w = one_hot([0, 1, 2], 4)
    assert replace_unknown(tok(True), [UNK, UNK], w, "Boston Terrier .") == "boston terrier"
    assert replace_unknown(tok(False), [UNK, UNK], w, "Boston Terrier .") == "Boston Terrier"


def test_a_source_cut_at_max_len_copies_only_words_the_model_read():
    """The weights cover the words the model read (then EOS); a source cut short never copies a
    word past the cut, whatever a too-long row would say."""
    w = torch.tensor([[0.1, 0.3, 0.6]])  # two words read + EOS; "zebra" was cut off
    assert replace_unknown(tok(), [UNK], w, "big Okapi zebra") == "okapi"


def test_a_source_with_no_word_leaves_unk():
    assert replace_unknown(tok(), ids(tok(), "<unk>", "."), torch.ones(3, 1), "") == "<unk>."


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("toy")
    experiments.get("translate")(TINY, out)
    return out


@pytest.fixture
def emits_unk(monkeypatch):
    """The decoder emits ``<unk>`` then ``.``, attending to the source's second word."""

    def fake(model, sources, **kw):
        n = len(sources[0])
        return [[Hypothesis([UNK, 4], one_hot([1, 1, n - 1], n), 0.0)] for _ in sources]

    monkeypatch.setattr(translator_module, "translate_ids", fake)


def test_translator_replaces_only_when_asked(toy_run, emits_unk):
    """Guards the switch: the run's decode settings (off) keep ``<unk>``; ``replace_unk=True``
    copies the attended word; the hypotheses themselves are unchanged."""
    base = Translator.from_run(toy_run)
    dot = base.tgt_tok.pieces([4])[0]
    kept, hyps = base.translate(["my zebra runs"])
    assert kept == [base.tgt_tok.decode([UNK, 4])] and "<unk>" in kept[0]
    copied, same = base.with_decode(replace_unk=True).translate(["my zebra runs"])
    assert copied == [base.tgt_tok.decode([UNK, 4]).replace("<unk>", "zebra")]
    assert dot in copied[0] and same[0][0].ids == hyps[0][0].ids == [UNK, 4]


def test_evaluate_replace_unk_writes_the_copy(toy_run, emits_unk, tmp_path):
    src, ref = tmp_path / "src.txt", tmp_path / "ref.txt"
    src.write_text("my zebra runs\na okapi walks\n")
    ref.write_text("zebra\nokapi\n")
    kept = evaluate_files(toy_run, src, ref, out=tmp_path / "kept.txt")
    copied = evaluate_files(toy_run, src, ref, out=tmp_path / "copied.txt", replace_unk=True)
    assert "<unk>" in Path(kept["translations"]).read_text()
    lines = Path(copied["translations"]).read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["zebra", "okapi"]
    assert copied["chrf_lowercase"] > kept["chrf_lowercase"]  # scored is what was written


def test_evaluate_cli_refuses_replace_unk_on_a_bpe_run(tmp_path):
    """One line, exit 2, no translations file: BPE emits no ``<unk>`` to replace."""
    bpe = tmp_path / "bpe"
    experiments.get("translate")({**TINY, "tokenizer": {"kind": "bpe", "vocab_size": 60}}, bpe)
    before = sorted(p.name for p in bpe.iterdir())
    src = tmp_path / "src.txt"
    src.write_text("a dog\n")
    args = ["evaluate", str(bpe), "--src", str(src), "--ref", str(src), "--replace-unk"]
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert r.stderr.strip() == (
        "attnrun: error: decode.replace_unk=True is not valid; allowed: false with "
        "tokenizer.kind=bpe (only a word vocabulary emits <unk>)"
    )
    assert sorted(p.name for p in bpe.iterdir()) == before
    assert runner.invoke(app, [*args[:-1], "--keep-unk"]).exit_code == 0


def test_an_attention_less_run_refuses_replace_unk(tmp_path):
    """``decoder=none`` has no alignment: refused in the config and on the trained run."""
    from attnrun.translate.config import TranslateConfig
    from attnrun.validation import typed_config

    with pytest.raises(ConfigError, match="false with decoder=none"):
        typed_config(TranslateConfig, {"decoder": "none", "decode": {"replace_unk": True}})
    typed_config(TranslateConfig, {"decoder": "none"})  # off: fine
    plain = tmp_path / "plain"
    experiments.get("translate")({**TINY, "decoder": "none"}, plain)
    with pytest.raises(ConfigError, match="false with decoder=none"):
        Translator.from_run(plain).with_decode(replace_unk=True)


def test_the_test_split_translations_and_nbest_lists_carry_the_copy(toy_run, emits_unk, tmp_path):
    """A run with ``decode.replace_unk``: its ``translations.tsv`` and every ``nbest.json`` entry
    are the replaced text (the n-best lists once decoded ``<unk>`` regardless)."""
    import json
    from types import SimpleNamespace

    from attnrun.translate.pipeline import test_scores

    translator = Translator.from_run(toy_run).with_decode(replace_unk=True, beam=2, n_best=2)
    corpus = SimpleNamespace(test=[("my zebra runs", "zebra ."), ("a okapi", "okapi .")],
                             test_name="test")  # fmt: skip
    _, hyps, _ = test_scores(translator, corpus, tmp_path, 0)
    assert [h.split()[0] for h in hyps] == ["zebra", "okapi"]
    nbest = json.loads((tmp_path / "nbest.json").read_text())
    assert [[e["translation"].split()[0] for e in row] for row in nbest] == [["zebra"], ["okapi"]]
    assert "zebra" in (tmp_path / "translations.tsv").read_text()
