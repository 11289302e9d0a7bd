"""The training loop's learning-rate schedules (plateau decay, budget-aware linear / cosine)."""

from __future__ import annotations

import math

import pytest

from attnrun.errors import ConfigError
from attnrun.experiments import experiments
from attnrun.translate.train import lr_factor


def test_lr_factor_formulas():
    assert lr_factor("plateau", 0.7) == 1.0
    assert [lr_factor("linear", p) for p in (0.0, 0.25, 1.0)] == [1.0, 0.75, 0.0]
    assert lr_factor("cosine", 0.0) == 1.0
    assert math.isclose(lr_factor("cosine", 0.5), 0.5)
    assert math.isclose(lr_factor("cosine", 1 / 3), 0.5 * (1 + math.cos(math.pi / 3)))
    assert lr_factor("linear", 1.7) == 0.0 and lr_factor("linear", -1) == 1.0  # clamped


def test_warmup_cosine_warms_up_then_follows_the_cosine():
    """Guards the warm-up's boundary (full rate from step ``warmup`` on, not one step late or
    early) and that the cosine part still reads the budget's progress, not the step."""
    w = 600
    assert math.isclose(lr_factor("warmup_cosine", 0.0, 1, w), 1 / w)
    assert math.isclose(lr_factor("warmup_cosine", 0.0, 300, w), 0.5)
    assert lr_factor("warmup_cosine", 0.0, w - 1, w) < 1.0 == lr_factor("warmup_cosine", 0.0, w, w)
    for p in (0.2, 0.5, 0.9):  # after the warm-up: exactly the cosine of the progress
        assert lr_factor("warmup_cosine", p, 5 * w, w) == lr_factor("cosine", p)
    assert lr_factor("warmup_cosine", 1.0, 5 * w, w) == 0.0  # 0 at the budget's end
    assert math.isclose(lr_factor("warmup_cosine", 0.5, 300, w), 0.25)  # both factors at once


TINY = {
    "data": {"n_train": 200, "n_val": 8, "n_test": 8},
    "model": {"embed_size": 16, "num_hiddens": 16},
    "train": {"epochs": 3, "batch_size": 25, "lr": 0.004},
    "decode": {"max_len": 12},
    "plot": {"heatmaps": 0},
}


@pytest.mark.parametrize("schedule", ["linear", "cosine", "warmup_cosine"])
def test_annealed_schedule_lowers_the_rate_each_epoch(tmp_path, schedule):
    import json

    cfg = json.loads(json.dumps(TINY))
    cfg["train"].update(lr_schedule=schedule, warmup_steps=1)  # warmup_cosine: the cosine alone
    experiments.get("translate")(cfg, tmp_path)
    history = json.loads((tmp_path / "history.json").read_text())
    lrs = [row["lr"] for row in history]  # the rate of each epoch's last batch
    assert len(lrs) == 3 and 0.004 > lrs[0] > lrs[1] > lrs[2] > 0
    # epoch e's last batch (of n >= 2) is at progress (e + (n-1)/n) / 3, in [e + 1/2, e + 1) / 3
    for e, lr in enumerate(lrs):
        assert (
            0.004 * lr_factor(schedule, (e + 1) / 3)
            < lr
            <= 0.004 * lr_factor(schedule, (e + 0.5) / 3)
        )


def test_unknown_schedule_is_a_config_error():
    with pytest.raises(ConfigError, match="train.lr_schedule"):
        experiments.get("translate").make_config({"train": {"lr_schedule": "step"}})


def test_plateau_halving_early_stopping_and_the_best_weights_kept(tmp_path, monkeypatch):
    """Guards against the trainer keeping the last epoch instead of the best, not halving the
    rate after an epoch without progress, or not stopping after ``patience`` such epochs.

    Validation is scripted: BLEU 10, 12 (best, epoch 2), then 11, 11, 11 with patience 3."""
    import copy
    import json

    import torch

    from attnrun.runs.files import safe_load
    from attnrun.translate.train import Trainer

    script = iter([10.0, 12.0, 11.0, 11.0, 11.0, 11.0])
    weights_after: dict[int, dict] = {}

    def scripted(self):
        weights_after[self.state.epoch + 1] = copy.deepcopy(self.model.state_dict())
        return next(script), 1.0

    monkeypatch.setattr(Trainer, "_validate", scripted)
    cfg = json.loads(json.dumps(TINY))
    cfg["train"].update(epochs=10, patience=3, lr_decay=0.5, lr=0.004)
    m = experiments.get("translate")(cfg, tmp_path)
    assert m["stopped"] == "early_stopping" and m["epochs_run"] == 5 and m["best_epoch"] == 2
    history = json.loads((tmp_path / "history.json").read_text())
    # the rate of each epoch: halved after each of epochs 3, 4 (no progress), never before
    assert [row["lr"] for row in history] == [0.004, 0.004, 0.004, 0.002, 0.001]
    saved = safe_load(tmp_path / "model.pt")
    for k, v in weights_after[2].items():
        torch.testing.assert_close(saved[k], v, rtol=0, atol=0)
    assert any(not torch.equal(saved[k], v) for k, v in weights_after[5].items())


def test_inverse_sqrt_warms_up_linearly_then_decays_as_the_paper():
    """Vaswani et al. 2017, eq. 3, with ``train.lr`` as the peak: min(step / w, sqrt(w / step))."""
    w = 400
    assert lr_factor("inverse_sqrt", 0.0, 1, w) == 1 / w
    assert lr_factor("inverse_sqrt", 0.3, 200, w) == 0.5
    assert lr_factor("inverse_sqrt", 0.5, w, w) == 1.0
    assert math.isclose(lr_factor("inverse_sqrt", 0.9, 4 * w, w), 0.5)
    # d2l / the paper: d^-0.5 · min(step^-0.5, step · w^-1.5) is the same curve, scaled
    for step in (1, 50, 399, 400, 401, 5000):
        paper = min(step**-0.5, step * w**-1.5)
        assert math.isclose(lr_factor("inverse_sqrt", 0.0, step, w), paper * w**0.5)


def test_inverse_sqrt_run_follows_the_schedule_step_by_step(tmp_path):
    """Guards against the trainer passing the epoch (not the optimizer step) to the schedule."""
    import json

    cfg = json.loads(json.dumps(TINY))
    cfg["train"].update(lr_schedule="inverse_sqrt", warmup_steps=20, epochs=3)
    experiments.get("translate")(cfg, tmp_path)
    history = json.loads((tmp_path / "history.json").read_text())
    steps_per_epoch = 8  # 200 pairs in batches of 25
    for row in history:
        step = row["epoch"] * steps_per_epoch  # the rate of each epoch's last batch
        assert math.isclose(row["lr"], 0.004 * lr_factor("inverse_sqrt", 0, step, 20))


def test_slowdown_hint_is_printed_once_per_run(tmp_path, monkeypatch, capsys):
    """Guards the wiring of attnrun/throughput.py into the training loop: with every window
    judged slow (SLOW_FRACTION 10) and a busy machine (load 99), a run of several epochs prints
    the ``train.threads=1`` hint on exactly one line."""
    import json

    import attnrun.throughput as tp
    import attnrun.translate.train as train_module

    monkeypatch.setattr(tp, "SLOW_FRACTION", 10.0)
    for name in ("BASELINE_SECONDS", "WINDOW_SECONDS"):
        monkeypatch.setattr(tp, name, 0.0)
    monkeypatch.setattr(
        train_module, "watch_for", lambda device, unit: tp.ThroughputWatch(2, 1, unit, lambda: 99)
    )
    cfg = json.loads(json.dumps(TINY))
    cfg["train"]["threads"] = 1
    experiments.get("translate")(cfg, tmp_path, quiet=False)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "train.threads=1" in ln]
    assert len(lines) == 1 and "target tokens/s" in lines[0] and "load 99.0 on 1 cores" in lines[0]
