"""``pooling=parametric`` checkpoints every epoch and resumes where it stopped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from attnrun.experiments import experiments
from attnrun.regression.models import ParametricNW
from attnrun.runs import files
from attnrun.runs.checkpoint import Checkpointer
from attnrun.runs.resume import resume_run

EPOCHS, CUT = 6, 2
CFG = {"pooling": "parametric", "train": {"epochs": EPOCHS}, "seed": 3}
WALL = {"started_at", "finished_at", "wall_time_s", "resumed_at", "pid", "host", "status"}


def _metrics(run: Path) -> dict:
    return {
        k: v for k, v in json.loads((run / "metrics.json").read_text()).items() if k not in WALL
    }


def _interrupt_after(monkeypatch, epoch: int) -> None:
    real_save = Checkpointer.save

    def save_then_stop(self, e, *a, **k):
        real_save(self, e, *a, **k)
        if e == epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(Checkpointer, "save", save_then_stop)


def test_resumed_parametric_run_trains_only_the_rest_and_ends_like_a_straight_one(
    tmp_path, monkeypatch
):
    """Guards against resume restarting training (ignoring ``ctx.checkpoint.restore``): the
    metrics would still agree (the run is deterministic), but the resumed process would take
    EPOCHS optimizer steps instead of EPOCHS - CUT. Also guards against a lost history or a
    model.pt that differs from an uninterrupted run's."""
    regress = experiments.get("regress")
    straight = regress(CFG, tmp_path / "straight")

    _interrupt_after(monkeypatch, CUT)
    with pytest.raises(KeyboardInterrupt):
        regress(CFG, tmp_path / "cut")
    assert json.loads((tmp_path / "cut" / "metrics.json").read_text())["status"] == "interrupted"
    monkeypatch.undo()

    steps = []
    hook = register_optimizer_step_post_hook(lambda *a: steps.append(1))
    try:
        resumed = resume_run(tmp_path / "cut", quiet=True)
    finally:
        hook.remove()
    assert len(steps) == EPOCHS - CUT

    want, got = _metrics(tmp_path / "straight"), _metrics(tmp_path / "cut")
    assert {k: got.get(k) for k in want} == want  # resume may add its own record keys
    assert resumed["model_sha256"] == straight["model_sha256"]
    assert files.sha256(tmp_path / "cut" / files.WEIGHTS) == straight["model_sha256"]
    history = files.read_history(tmp_path / "cut")
    assert history == files.read_history(tmp_path / "straight")
    assert len(history["loss"]) == EPOCHS


def test_model_pt_holds_the_learned_bandwidth(tmp_path):
    """Guards against model.pt holding the initial (untrained) w, or no recorded checksum."""
    m = experiments.get("regress")(CFG, tmp_path)
    model = files.load_weights(ParametricNW("gaussian"), tmp_path, m["model_sha256"])
    assert model.bandwidth == pytest.approx(m["bandwidth"], rel=1e-12)
    state = torch.load(tmp_path / files.CHECKPOINT, weights_only=True)
    assert state["epoch"] == EPOCHS and len(state["history"]["loss"]) == EPOCHS
