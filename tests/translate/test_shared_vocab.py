"""``tokenizer.shared``: one BPE vocabulary for source and target, one embedding matrix shared by
encoder and decoder and, with ``model.tie_embeddings``, the output layer (three-way tying,
Vaswani et al. 2017, 3.4; Press & Wolf 2017) — trained, saved, reloaded and resumed."""

from __future__ import annotations

import json

import pytest
import torch

from attnrun.cli import main
from attnrun.errors import ConfigError
from attnrun.experiments import experiments
from attnrun.runs.checkpoint import Checkpointer
from attnrun.runs.resume import resume_run
from attnrun.translate.data import Corpus
from attnrun.translate.models import build_model
from attnrun.translate.pipeline import train_tokenizers
from attnrun.translate.tokenize import UNK, load_tokenizer
from attnrun.translate.translator import Translator

run = experiments.get("translate")

#: 240 pairs in batches of 32: 8 optimizer steps per epoch, 2 epochs, a checkpoint every batch.
TINY = {
    "data": {"n_train": 240, "n_val": 16, "n_test": 16, "max_len": 30},
    "tokenizer": {"kind": "bpe", "shared": True, "vocab_size": 120, "min_freq": 1},
    "model": {
        "arch": "transformer", "num_hiddens": 16, "num_heads": 2, "num_layers": 1,
        "ffn_hiddens": 16, "tie_embeddings": True, "positional": "learned",
    },
    "train": {"epochs": 2, "batch_size": 32, "threads": 1, "checkpoint_minutes": 0},
    "decode": {"max_len": 20},
    "plot": {"heatmaps": 1},
}  # fmt: skip

#: CLI overrides that keep a run short should a bad-input check let it start.
SMALL = ["data.n_train=40", "data.n_val=8", "data.n_test=8", "train.epochs=1",
         "model.embed_size=8", "model.num_hiddens=8", "plot.heatmaps=1"]  # fmt: skip

#: source words use letters a-m only, target words n-z only: a side's own letters are UNK to a
#: tokenizer trained on the other side alone.
PAIRS = [("abc dea", "nop qrs"), ("bad cab", "tuv wxy"), ("dim klm", "zon pot")]


def _cfg(arch: str, *, shared: bool, tie: bool):
    model = {"arch": arch, "tie_embeddings": tie, "embed_size": 16, "num_hiddens": 16}
    return run.make_config(
        {"tokenizer": {"kind": "bpe", "shared": shared}, "model": {**model, "num_heads": 2}}
    )


def test_shared_tokenizer_covers_both_sides_and_round_trips(tmp_path):
    """One tokenizer object serves both sides, knows the letters of both, is saved as both sides'
    files and reloads (``Translator.from_run``'s way) to the same ids. Planted bug caught: the
    shared tokenizer trained on the source sentences only (target letters become UNK)."""
    tk = run.make_config({"tokenizer": {"kind": "bpe", "shared": True, "min_freq": 1}}).tokenizer
    corpus = Corpus("fixture", PAIRS, PAIRS[:1], PAIRS[:1])
    src_tok, tgt_tok = train_tokenizers(tk, corpus, tmp_path)
    assert src_tok is tgt_tok
    for s, t in PAIRS:
        assert UNK not in src_tok.encode(s) and UNK not in src_tok.encode(t)
    src_file, tgt_file = (tmp_path / f"tokenizer.{side}.json" for side in ("src", "tgt"))
    assert src_file.read_text() == tgt_file.read_text()
    again = load_tokenizer(tmp_path, "src")
    assert [again.encode(t) for _, t in PAIRS] == [src_tok.encode(t) for _, t in PAIRS]
    assert again.decode(again.encode("nop qrs")) == "nop qrs"


def test_separate_tokenizers_stay_separate(tmp_path):
    """Without ``tokenizer.shared`` each side has its own vocabulary (a source letter is UNK to
    the target tokenizer). Planted bug caught: ``shared`` read as always true."""
    tk = run.make_config({"tokenizer": {"kind": "bpe", "min_freq": 1}}).tokenizer
    src_tok, tgt_tok = train_tokenizers(tk, Corpus("fixture", PAIRS, PAIRS, PAIRS), tmp_path)
    assert src_tok is not tgt_tok and UNK in tgt_tok.encode("abc")


@pytest.mark.parametrize("arch", ["transformer", "rnn"])
def test_three_way_tying_shares_one_storage_and_drops_its_parameters(arch):
    """With ``tokenizer.shared`` and ``model.tie_embeddings`` the encoder embedding, the decoder
    embedding and the output layer are one tensor (same ``data_ptr``); the model has the untied
    one's parameters less two ``V × d`` matrices (sharing alone: less one). Planted bugs caught:
    ``share_embeddings`` not passed by ``build_transformer``; in ``build_rnn`` the output layer
    left tied to the decoder's own, replaced embedding."""
    V, d = 50, 16

    def count(m) -> int:
        return sum(p.numel() for p in m.parameters())

    untied = build_model(_cfg(arch, shared=False, tie=False), V, V)
    shared = build_model(_cfg(arch, shared=True, tie=False), V, V)
    three = build_model(_cfg(arch, shared=True, tie=True), V, V)
    enc, dec = three.encoder.embedding.weight, three.decoder.embedding.weight
    assert enc.data_ptr() == dec.data_ptr() == three.decoder.out.weight.data_ptr()
    assert shared.encoder.embedding.weight is shared.decoder.embedding.weight
    assert shared.decoder.out.weight is not shared.decoder.embedding.weight
    assert count(shared) == count(untied) - V * d
    assert count(three) == count(untied) - 2 * V * d
    with pytest.raises(ConfigError, match="tokenizer.shared=true needs one vocabulary"):
        build_model(_cfg(arch, shared=True, tie=True), V, V + 1)


def test_three_way_tied_gradient_is_the_sum_of_its_three_uses():
    """One backward through the shared matrix adds the encoder's, the decoder's and the output
    layer's gradients (autograd on one leaf), so a step moves all three uses together."""
    m = build_model(_cfg("transformer", shared=True, tie=True), 20, 20)
    src, lens, tgt = torch.tensor([[5, 6, 2]]), torch.tensor([3]), torch.tensor([[1, 7, 8]])
    logits, _ = m(src, lens, tgt)
    logits.sum().backward()
    w = m.encoder.embedding.weight
    assert w.grad is not None and w.grad[[5, 6, 7, 8]].abs().sum() > 0
    assert m.decoder.out.weight.grad is w.grad


def test_shared_vocab_run_trains_reloads_predicts_and_resumes(tmp_path, monkeypatch, capsys):
    """A tiny toy Transformer with ``tokenizer.kind=bpe tokenizer.shared=true
    model.tie_embeddings=true`` (learned positions): interrupted mid-epoch, resumed to the end;
    ``Translator.from_run`` gives one tokenizer for both sides and a three-way tied model that
    translates the test split as the run did; ``attnrun predict`` translates a source far longer
    than ``data.max_len`` (cut to it, within the learned positions). Planted bugs caught:
    ``from_run`` loading the target tokenizer as a second object; ``positions_needed`` covering
    only ``decode.max_len`` (the long source overflows the learned table)."""
    real_save = Checkpointer.save

    def save_then_ctrl_c(self, epoch, *a, step=0, **k):
        real_save(self, epoch, *a, step=step, **k)
        if (epoch, step) == (0, 3):
            raise KeyboardInterrupt

    monkeypatch.setattr(Checkpointer, "save", save_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        run(json.loads(json.dumps(TINY)), tmp_path)
    monkeypatch.setattr(Checkpointer, "save", real_save)
    resume_run(tmp_path, quiet=True)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["status"] == "completed" and m["resumed_from"] == [{"epoch": 0, "step": 3}]

    loaded = Translator.from_run(tmp_path)
    assert loaded.src_tok is loaded.tgt_tok
    model = loaded.model
    ptrs = {model.encoder.embedding.weight.data_ptr(), model.decoder.embedding.weight.data_ptr()}
    assert ptrs == {model.decoder.out.weight.data_ptr()}
    assert m["parameters"] == sum(p.numel() for p in model.parameters())
    rows = [r.split("\t") for r in (tmp_path / "translations.tsv").read_text().splitlines()[1:4]]
    texts, _ = loaded.translate([r[0] for r in rows])
    assert texts == [r[2] for r in rows]

    long_source = " ".join(["the red cat sees the small dog"] * 12)  # > data.max_len ids
    assert len(loaded.src_tok.encode(long_source)) > TINY["data"]["max_len"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["predict", str(tmp_path), rows[0][0], long_source])
    out, err = capsys.readouterr()
    assert exc.value.code in (0, None), err
    lines = out.splitlines()
    assert lines[0] == f"{rows[0][0]}\t{rows[0][2]}" and lines[1].startswith(long_source + "\t")


def test_a_run_from_before_the_option_still_loads(tmp_path):
    """A run whose ``config.yaml`` has no ``tokenizer.shared`` (written before the option existed)
    reloads with two tokenizers and translates as it did. Planted bug caught: ``from_run`` reading
    the key from the raw file (``read_config(run)["tokenizer"]["shared"]``), not from the typed
    config that fills in the default."""
    from omegaconf import OmegaConf

    cfg = {**json.loads(json.dumps(TINY)), "model": {"embed_size": 8, "num_hiddens": 8}}
    cfg.update(tokenizer={"kind": "word"}, train={**TINY["train"], "epochs": 1})
    run(cfg, tmp_path)
    path = tmp_path / "config.yaml"
    old = OmegaConf.load(path)
    del old.tokenizer["shared"]
    OmegaConf.save(old, path)
    loaded = Translator.from_run(tmp_path)
    assert loaded.src_tok is not loaded.tgt_tok
    row = (tmp_path / "translations.tsv").read_text().splitlines()[1].split("\t")
    assert loaded.translate([row[0]])[0] == [row[2]]


def test_shared_with_word_vocabularies_fails_at_once_through_the_cli(tmp_path, capsys):
    """``tokenizer.shared=true`` with ``tokenizer.kind=word``: exit 2 and one line naming the
    option and the valid choice, before any run folder exists. Planted bug caught: the check in
    ``TokenizerConfig`` dropped (the run trains two word vocabularies and ignores the option)."""
    with pytest.raises(SystemExit) as exc:
        main(["translate", "-q", "--root", str(tmp_path), "tokenizer.shared=true", *SMALL])
    _, err = capsys.readouterr()
    assert exc.value.code == 2
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert "tokenizer.shared=True is not valid" in err and "tokenizer.kind=bpe" in err
    assert not (tmp_path / "outputs").exists()
