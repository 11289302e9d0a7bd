"""The training loop's learning-rate schedules (plateau decay, budget-aware linear / cosine)."""

from __future__ import annotations

import math

import pytest

from attnrun.errors import ConfigError
from attnrun.experiments import experiments
from attnrun.translate.schedules import cooldown_factor
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


def test_cooldown_ramps_the_rate_to_zero_over_the_budgets_last_share():
    """``train.cooldown`` = c: the schedule's own rate until progress 1 − c, then times
    ``(1 − p) / c``, 0 at the budget's end. Guards the ramp's start (not one share early or
    late), its end at 0, and the direction of the option (a longer cool-down, a lower rate late
    in the budget). Planted bugs caught: the ramp starting at c instead of 1 − c; the factor
    applied before the warm-up's clamp of progress (p > 1 gave a negative rate)."""
    w, step = 100, 900
    base = lr_factor("inverse_sqrt", 0.0, step, w)
    assert lr_factor("inverse_sqrt", 0.5, step, w, cooldown=0.2) == base  # before the ramp
    assert lr_factor("inverse_sqrt", 0.79, step, w, cooldown=0.2) == base
    assert math.isclose(lr_factor("inverse_sqrt", 0.8, step, w, cooldown=0.2), base)  # ramp start
    assert lr_factor("inverse_sqrt", 0.81, step, w, cooldown=0.2) < base
    assert math.isclose(lr_factor("inverse_sqrt", 0.9, step, w, cooldown=0.2), base / 2)
    assert lr_factor("inverse_sqrt", 1.0, step, w, cooldown=0.2) == 0.0
    assert lr_factor("inverse_sqrt", 1.3, step, w, cooldown=0.2) == 0.0  # clamped, not < 0
    assert lr_factor("inverse_sqrt", 0.9, step, w, cooldown=0.0) == base  # 0: off
    late = [lr_factor("inverse_sqrt", 0.9, step, w, cooldown=c) for c in (0.1, 0.2, 0.5, 1.0)]
    assert late == sorted(late, reverse=True) and late[0] > late[-1]
    assert math.isclose(lr_factor("cosine", 0.95, cooldown=0.1), cooldown_factor(0.95, 0.1) * (
        lr_factor("cosine", 0.95)))  # fmt: skip


def test_a_run_cools_down_over_the_last_share_of_its_epochs(tmp_path):
    """Through the trainer: with ``train.cooldown=0.5`` over 3 epochs of 8 steps, every epoch's
    last rate is the schedule's times ``cooldown_factor`` of that batch's progress — epoch 1
    untouched (progress 7/24 < 0.5), epoch 3 ramped near 0. Planted bug caught: the trainer not
    passing ``train.cooldown`` to the schedule."""
    import json

    cfg = json.loads(json.dumps(TINY))
    cfg["train"].update(lr_schedule="inverse_sqrt", warmup_steps=20, epochs=3, cooldown=0.5)
    experiments.get("translate")(cfg, tmp_path)
    history = json.loads((tmp_path / "history.json").read_text())
    lrs = []
    for row in history:
        e, step = row["epoch"], row["epoch"] * 8  # each epoch's last batch: 8 per epoch
        plain = 0.004 * lr_factor("inverse_sqrt", 0, step, 20)
        assert math.isclose(row["lr"], plain * cooldown_factor((e - 1 + 7 / 8) / 3, 0.5))
        lrs.append(row["lr"] / plain)
    assert lrs[0] == 1.0 and 0 < lrs[2] < 0.2


@pytest.mark.parametrize(
    ("overrides", "allowed"),
    [
        (["train.cooldown=1.5"], "[0, 1] (a share of the budget; 0: off)"),
        (["train.cooldown=-0.1"], "[0, 1] (a share of the budget; 0: off)"),
        (["train.lr_schedule=plateau", "train.cooldown=0.2"], "0 with train.lr_schedule=plateau"),
    ],
    ids=["above-1", "negative", "plateau"],
)
def test_bad_cooldown_exits_2_before_training(tmp_path, capsys, overrides, allowed):
    """One line, exit 2, no run folder: a share outside [0, 1], or a cool-down asked of
    ``plateau`` (which never anneals to the budget's end). Planted bug caught: the plateau check
    dropped (the option then silently does nothing)."""
    from attnrun.cli import main

    small = ["data.n_train=40", "data.n_val=8", "data.n_test=8", "train.epochs=1"]
    with pytest.raises(SystemExit) as exc:
        main(["translate", "-q", "--root", str(tmp_path), *small, *overrides])
    _, err = capsys.readouterr()
    assert exc.value.code == 2
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert f"{overrides[-1]} is not valid; allowed: {allowed}" in err
    assert not (tmp_path / "outputs").exists()


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
