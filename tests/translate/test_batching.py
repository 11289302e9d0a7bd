"""Source word dropout (:func:`attnrun.translate.batching.drop_words`, ``train.word_dropout``):
the ids it may touch, its rate and direction, that only training batches see it, and bad values."""

from __future__ import annotations

import json

import pytest
import torch

from attnrun.experiments import experiments
from attnrun.translate.batching import drop_words, make_batch
from attnrun.translate.tokenize import EOS, PAD, UNK


def _src(rows: int = 200, width: int = 30) -> torch.Tensor:
    """``(rows, width)`` ids 4..99 (no special), each row ending in EOS then PAD from a
    row-dependent length, so every kind of id is present."""
    gen = torch.Generator().manual_seed(3)
    src = torch.randint(4, 100, (rows, width), generator=gen)
    for r in range(rows):
        n = 5 + r % (width - 5)
        src[r, n - 1], src[r, n:] = EOS, PAD
    return src


def test_only_words_become_unk_and_pad_and_eos_stay():
    """``p`` close to 1 turns every word into ``<unk>`` and leaves every PAD and EOS as it was
    (the model still sees where the sentence ends and which positions are padding). Planted
    bugs caught: PAD not excluded (padding would become a token the encoder attends to); EOS not
    excluded."""
    src = _src()
    out = drop_words(src, 0.999999)
    special = (src == PAD) | (src == EOS)
    assert torch.equal(out[special], src[special])
    assert bool((out[~special] == UNK).all())
    assert out.shape == src.shape and out.dtype == src.dtype


def test_zero_is_off_and_the_input_is_never_changed_in_place():
    """``p = 0`` returns the batch untouched (and draws nothing: a run without the option keeps
    its random stream, so old runs reproduce); a positive ``p`` returns a new tensor, the
    examples' ids stay whole for the next epoch. Planted bug caught: ``masked_fill_`` in place."""
    src = _src()
    keep = src.clone()
    state = torch.get_rng_state()
    assert drop_words(src, 0.0) is src and torch.equal(torch.get_rng_state(), state)
    drop_words(src, 0.5)
    assert torch.equal(src, keep)


@pytest.mark.parametrize("p", [0.1, 0.3])
def test_the_share_of_words_dropped_is_p_and_grows_with_it(p):
    """Over ~3,400 words the share turned into ``<unk>`` is ``p`` within 0.03 (binomial standard
    error <= 0.008), and raising ``p`` drops more. Planted bugs caught: ``rand > p`` (a share of
    1 - p); the probability ignored."""
    src = _src()
    words = (src != PAD) & (src != EOS)
    torch.manual_seed(0)
    share = (drop_words(src, p)[words] == UNK).float().mean().item()
    assert abs(share - p) < 0.03
    torch.manual_seed(0)
    more = (drop_words(src, p + 0.2)[words] == UNK).float().mean().item()
    assert more > share


TINY = {
    "data": {"n_train": 200, "n_val": 8, "n_test": 8},
    "model": {"embed_size": 16, "num_hiddens": 16},
    "train": {"epochs": 1, "batch_size": 25, "lr": 0.004, "threads": 1},
    "decode": {"max_len": 12},
    "plot": {"heatmaps": 0},
}


def _unk_shares(tmp_path, monkeypatch, p: float) -> tuple[float, float]:
    """A run with ``train.word_dropout=p``: the share of ``<unk>`` among the source words of the
    training batches the model is given, and among those of validation's loss batches."""
    import attnrun.translate.evaluation as evaluation
    import attnrun.translate.train as train

    seen = {"train": [0, 0], "val": [0, 0]}

    def count(kind, src):
        words = (src != PAD) & (src != EOS)
        seen[kind][0] += int((src[words] == UNK).sum())
        seen[kind][1] += int(words.sum())

    real_loss, real_batch = train.training_loss, evaluation.make_batch

    def spy_loss(model, b, *a, **k):
        count("train", b.src)
        return real_loss(model, b, *a, **k)

    def spy_batch(examples, index):
        b = real_batch(examples, index)
        count("val", b.src)
        return b

    monkeypatch.setattr(train, "training_loss", spy_loss)
    monkeypatch.setattr(evaluation, "make_batch", spy_batch)
    cfg = json.loads(json.dumps(TINY))
    cfg["train"]["word_dropout"] = p
    experiments.get("translate")(cfg, tmp_path / str(p))
    return seen["train"][0] / seen["train"][1], seen["val"][0] / seen["val"][1]


def test_a_run_drops_source_words_in_training_only(tmp_path, monkeypatch):
    """Through the trainer: with ``train.word_dropout=0.5`` the training batches hold about half
    ``<unk>`` more than without (the toy vocabulary has a few of its own), while validation's
    batches hold exactly as many as without. Planted bugs caught: the trainer not applying the
    option; the words dropped in :func:`make_batch` (then validation and evaluation too)."""
    base_train, base_val = _unk_shares(tmp_path, monkeypatch, 0.0)
    train_share, val_share = _unk_shares(tmp_path, monkeypatch, 0.5)
    assert abs((train_share - base_train) / (1 - base_train) - 0.5) < 0.05
    assert val_share == base_val


def test_make_batch_never_drops():
    """Decoding and evaluation build their batches with :func:`make_batch`: it has no dropout to
    apply, whatever the training config says."""
    ex = [([5, 6, 7, EOS], [8, EOS]), ([9, EOS], [10, 11, EOS])]
    b = make_batch(ex, [0, 1])
    assert b.src.tolist() == [[5, 6, 7, EOS], [9, EOS, PAD, PAD]]


@pytest.mark.parametrize("value", ["1.0", "-0.1"])
def test_bad_word_dropout_exits_2_before_training(tmp_path, capsys, value):
    """One line, exit 2, no run folder: 1 would read every word as ``<unk>``. Planted bug
    caught: the range check dropped."""
    from attnrun.cli import main

    small = ["data.n_train=40", "data.n_val=8", "data.n_test=8", "train.epochs=1"]
    with pytest.raises(SystemExit) as exc:
        main(["translate", "-q", "--root", str(tmp_path), *small, f"train.word_dropout={value}"])
    _, err = capsys.readouterr()
    assert exc.value.code == 2
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert f"train.word_dropout={value} is not valid; allowed: [0, 1) (0: off)" in err
    assert not (tmp_path / "outputs").exists()
