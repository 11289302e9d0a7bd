"""``train.average`` in translate runs: ``model.pt`` is the plain mean of the raw epoch weights
(``last:N``) or a hand-written EMA of every step's weights (``ema:DECAY``), recomputed here from
weights captured while the run trained; validation scores the averaged weights (and the raw ones
beside them); the test figures and ``predict`` use ``model.pt``; ``last:1`` is no averaging;
``metrics.json`` and ``attnrun show`` say which weights; bad options exit 2 before a folder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook
from typer.testing import CliRunner

from attnrun.cli import app
from attnrun.experiments import experiments
from attnrun.runs.checkpoint import Checkpointer
from attnrun.runs.files import read_config, safe_load, sha256
from attnrun.runs.record import WALL_TIME_KEYS, comparable
from attnrun.translate.batching import encode_pairs
from attnrun.translate.config import TranslateConfig
from attnrun.translate.data import datasets
from attnrun.translate.evaluation import perplexity
from attnrun.translate.translator import Translator
from attnrun.validation import typed_config

run = experiments.get("translate")

#: 480 toy pairs in batches of 32: 15 steps an epoch, 4 epochs; it learns enough that the best
#: epoch is the last (checked), so the average there spans several epochs.
CFG = {
    "data": {"n_train": 480, "n_val": 24, "n_test": 16},
    "model": {"embed_size": 24, "num_hiddens": 32},
    "train": {"epochs": 4, "batch_size": 32, "threads": 1, "patience": 0},
    "decode": {"max_len": 20},
    "plot": {"heatmaps": 1},
}
AVERAGING_KEYS = ("weights", "average", "averaged_epochs", "ema_steps", "raw_val_bleu")


def _cfg(average: str) -> dict:
    cfg = json.loads(json.dumps(CFG))
    cfg["train"]["average"] = average
    return cfg


def _history(run_dir: Path) -> list[dict]:
    rows = json.loads((run_dir / "history.json").read_text())
    return [{k: v for k, v in r.items() if k not in WALL_TIME_KEYS} for r in rows]


class Captured:
    """A run folder with the raw weights at the end of every epoch (from the checkpoint saves)
    and the raw parameters after every optimizer step (in the optimizer's order)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.epochs: dict[int, dict[str, torch.Tensor]] = {}
        self.steps: list[list[torch.Tensor]] = []
        self.metrics: dict = {}


def _run_capturing(out: Path, cfg: dict) -> Captured:
    cap = Captured(out)
    real_save = Checkpointer.save

    def save(self, epoch, model, *a, step=0, **k):
        if step == 0 and epoch:
            cap.epochs[epoch] = {n: v.detach().clone() for n, v in model.state_dict().items()}
        real_save(self, epoch, model, *a, step=step, **k)

    def hook(opt, args, kwargs):
        cap.steps.append([p.detach().clone() for p in opt.param_groups[0]["params"]])

    handle = register_optimizer_step_post_hook(hook)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Checkpointer, "save", save)
        try:
            cap.metrics = run(cfg, out)
        finally:
            handle.remove()
    return cap


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Captured]:
    root = tmp_path_factory.mktemp("average")
    return {a: _run_capturing(root / a.replace(":", "_"), _cfg(a)) for a in ("last:3", "ema:0.9")}


def _model_pt(run_dir: Path) -> dict[str, torch.Tensor]:
    return safe_load(run_dir / "model.pt")


def _val_examples(run_dir: Path, translator: Translator):
    cfg = typed_config(TranslateConfig, read_config(run_dir))
    corpus = datasets.get(cfg.dataset)(cfg.data, cfg.seed)
    encode = [encode_pairs(p, translator.src_tok, translator.tgt_tok, cfg.data.max_len)
              for p in (corpus.val, corpus.test)]  # fmt: skip
    return encode


def _param_names(run_dir: Path) -> list[str]:
    return [n for n, _ in Translator.from_run(run_dir).model.named_parameters()]


def test_last_n_model_pt_is_the_plain_mean_of_the_raw_epoch_weights(runs):
    """Guards the window and the mean in a real run: model.pt equals sum / count of the raw
    weights saved at the end of the epochs ``averaged_epochs`` names (the last 3 up to the best
    epoch), computed here independently. Planted: validating the raw weights but saving the mean
    (``self.best`` from before ``applied``) fails."""
    cap = runs["last:3"]
    m = cap.metrics
    assert m["best_epoch"] == 4 and m["averaged_epochs"] == [2, 4] and m["average"] == "last:3"
    saved = _model_pt(cap.out)
    names = set(_param_names(cap.out))
    for key, value in saved.items():
        window = [cap.epochs[e][key] for e in (2, 3, 4)]
        expected = sum(window) / 3 if key in names else cap.epochs[4][key]
        torch.testing.assert_close(value, expected)
    assert not torch.equal(saved["decoder.out.weight"], cap.epochs[4]["decoder.out.weight"])


def test_ema_model_pt_equals_a_hand_written_ema_of_every_step(runs):
    """model.pt is ``sum_i (1-d) d^(t-i) θ_i / (1 - d^t)`` over the raw parameters after each of
    the first ``ema_steps`` optimizer steps (float64 here). Planted: updating the EMA once per
    epoch instead of per step fails."""
    cap, d = runs["ema:0.9"], 0.9
    t = cap.metrics["ema_steps"]
    assert t == 15 * cap.metrics["best_epoch"] and len(cap.steps) == 60
    saved = _model_pt(cap.out)
    for i, name in enumerate(_param_names(cap.out)):
        ema = sum((1 - d) * d ** (t - j) * s[i].double() for j, s in enumerate(cap.steps[:t], 1))
        torch.testing.assert_close(saved[name].double(), ema / (1 - d**t), rtol=1e-5, atol=1e-6)


def test_validation_scores_the_averaged_weights_and_the_raw_ones_beside(runs):
    """Every epoch's ``val_loss`` is the validation loss of the mean weights of its window and
    ``raw_val_loss`` that of the raw weights (recomputed from the captured weights); the test
    perplexity is model.pt's, which is what ``predict`` / ``evaluate`` load. Planted: validating
    outside ``applied`` (raw weights scored as averaged) fails."""
    cap = runs["last:3"]
    translator = Translator.from_run(cap.out)
    model = translator.model
    val_ex, test_ex = _val_examples(cap.out, translator)
    names = set(_param_names(cap.out))
    for row in _history(cap.out):
        first, last = row["averaged_epochs"]
        assert (first, last) == (max(1, row["epoch"] - 2), row["epoch"])
        window = [cap.epochs[e] for e in range(first, last + 1)]
        mean = {k: sum(s[k] for s in window) / len(window) if k in names else window[-1][k]
                for k in window[-1]}  # fmt: skip
        for state, key in ((mean, "val_loss"), (cap.epochs[row["epoch"]], "raw_val_loss")):
            model.load_state_dict(state)
            assert math.log(perplexity(model, val_ex, 128)) == pytest.approx(row[key], rel=1e-5)
    loaded = Translator.from_run(cap.out).model
    assert round(perplexity(loaded, test_ex, 128), 3) == cap.metrics["perplexity"]


def test_metrics_and_show_say_which_weights(runs):
    last, ema = runs["last:3"], runs["ema:0.9"]
    assert last.metrics["weights"] == "mean of the weights of epochs 2-4 (train.average=last:3)"
    assert ema.metrics["weights"] == (
        "EMA of the weights over 60 steps to epoch 4, decay 0.9 (train.average=ema:0.9)"
    )
    row = _history(ema.out)[3]
    assert ema.metrics["raw_val_bleu"] == row["raw_val_bleu"] and row["ema_steps"] == 60
    r = CliRunner().invoke(app, ["show", str(last.out)])
    assert r.exit_code == 0, r.output
    rows = {
        line.split(None, 1)[0]: line.split(None, 1)[-1]
        for line in r.stdout.splitlines()
        if line.strip()
    }
    assert rows["weights"] == "mean of the weights of epochs 2-4 (train.average=last:3)"
    assert "averaged_epochs" in rows and "raw_val_bleu" in rows


def test_last_1_is_no_averaging(tmp_path):
    """The mean of one epoch is that epoch: the same metrics, history figures and model.pt bytes
    as a run without averaging (the raw figures then equal the averaged ones)."""
    plain = tmp_path / "none"
    one = tmp_path / "last1"
    m_plain, m_one = run(_cfg("none"), plain), run(_cfg("last:1"), one)
    assert m_plain["weights"] == "raw weights of epoch 4" and "average" not in m_plain
    drop = set(AVERAGING_KEYS)
    assert {k: v for k, v in comparable(m_one).items() if k not in drop} == {
        k: v for k, v in comparable(m_plain).items() if k not in drop
    }
    rows = _history(one)
    for r in rows:
        assert (r.pop("raw_val_bleu"), r.pop("raw_val_loss")) == (r["val_bleu"], r["val_loss"])
        assert r.pop("averaged_epochs") == [r["epoch"], r["epoch"]]
    assert rows == _history(plain)
    assert sha256(one / "model.pt") == sha256(plain / "model.pt")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("swa:3", "allowed: none, last:N, ema:DECAY"),
        ("last:0", "allowed: last:N with N >= 1"),
        ("ema:1", "allowed: ema:DECAY with 0 < DECAY < 1"),
        ("ema:0", "allowed: ema:DECAY with 0 < DECAY < 1"),
    ],
)
def test_bad_average_exits_2_before_a_run_folder(tmp_path, capsys, value, message):
    from attnrun.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["translate", "-q", "--root", str(tmp_path), f"train.average={value}"])
    _, err = capsys.readouterr()
    assert exc.value.code == 2
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert f"train.average='{value}' is not valid; {message}" in err
    assert not (tmp_path / "outputs").exists()


def test_loss_plot_draws_the_raw_curves_beside_the_averaged(runs, monkeypatch, tmp_path):
    import attnrun.translate.plots as plots

    seen = {}
    real = plots.curves_figure

    def spy(series, **k):
        seen.update(left=dict(series), right=dict(k["right"]))
        return real(series, **k)

    monkeypatch.setattr(plots, "curves_figure", spy)
    history = json.loads((runs["ema:0.9"].out / "history.json").read_text())
    plots.plot_loss(history, tmp_path / "loss.png")
    assert seen["left"]["val loss (raw)"] == [r["raw_val_loss"] for r in history]
    assert seen["right"]["val BLEU (averaged)"] == [r["val_bleu"] for r in history]
    assert (tmp_path / "loss.png").stat().st_size > 0


def test_plateau_halves_on_the_raw_weights_and_a_resume_keeps_their_best(tmp_path, monkeypatch):
    """With averaging, ``plateau`` halves the rate after an epoch whose *raw* weights did not beat
    their best, whatever the averaged weights did (they lag and smooth the raw ones, so a stall of
    the raw model shows late or never: issue 21's RNN recipe never had its rate halved); early
    stopping and the best epoch still read the averaged weights. The raw best is part of the
    checkpoint: a run cut after epoch 4 and resumed halves as the straight run does.

    Validation is scripted, (raw, averaged) BLEU per epoch: (10, 9) (12, 11) (11, 12) (13, 11.5)
    (12, 13) (14, 14): the raw weights stall at epochs 3 and 5, the averaged ones at 4. Planted:
    reading the averaged figures (rates 4 4 4 4 2 2) and a raw best missing from the checkpoint
    (4 4 4 2 2 2 after the resume) both fail."""
    from attnrun.runs.resume import resume_run
    from attnrun.translate.train import Trainer

    def scripted_run(out: Path, cut_after: int | None = None) -> list[dict]:
        script = iter([10.0, 9.0, 12.0, 11.0, 11.0, 12.0, 13.0, 11.5, 12.0, 13.0, 14.0, 14.0])
        monkeypatch.setattr(Trainer, "_validate", lambda self: (next(script), 1.0))
        cfg = _cfg("last:2")
        cfg["train"].update(epochs=6, lr=0.004, lr_decay=0.5, patience=0)
        cfg["data"]["n_train"] = 64
        if cut_after is None:
            run(cfg, out)
        else:
            real_save = Checkpointer.save

            def save_then_ctrl_c(self, epoch, *a, step=0, **k):
                real_save(self, epoch, *a, step=step, **k)
                if (epoch, step) == (cut_after, 0):
                    raise KeyboardInterrupt

            monkeypatch.setattr(Checkpointer, "save", save_then_ctrl_c)
            with pytest.raises(KeyboardInterrupt):
                run(cfg, out)
            monkeypatch.setattr(Checkpointer, "save", real_save)
            resume_run(out, quiet=True)
        return json.loads((out / "history.json").read_text())

    for out, cut in ((tmp_path / "straight", None), (tmp_path / "resumed", 4)):
        rows = scripted_run(out, cut)
        assert [r["lr"] for r in rows] == [0.004, 0.004, 0.004, 0.002, 0.002, 0.001], out.name
        assert [r["raw_val_bleu"] for r in rows] == [10.0, 12.0, 11.0, 13.0, 12.0, 14.0]
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["best_epoch"] == 6 and metrics["raw_val_bleu"] == 14.0
