"""A run interrupted (or killed) and then resumed ends exactly like an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from torch.optim.optimizer import register_optimizer_step_post_hook
from typer.testing import CliRunner

from attnrun.cli import app
from attnrun.experiments import experiments
from attnrun.runs.checkpoint import Checkpointer
from attnrun.runs.files import safe_load
from attnrun.runs.resume import resume_run

REPO = Path(__file__).resolve().parents[2]
TINY = {
    "data": {"n_train": 200, "n_test": 100},
    "model": {"num_layers": 1, "num_hiddens": 16, "ffn_hiddens": 16, "num_heads": 2},
    "train": {"epochs": 4, "batch_size": 32},
    "plot": {"enabled": False},
}
BATCHES = -(-200 // 32)  # optimiser steps per epoch of TINY: 7
COMPARED = ("supervised_accuracy", "train_loss", "supervised_it_attention",
            "supervised_it_attention_table", "model_sha256")  # fmt: skip
# what may differ between a resumed and an uninterrupted run: clocks, the process, the resume log
WALL_AND_PROCESS = ("started_at", "finished_at", "wall_time_s", "train_time_s", "pid",
                    "resumed_at", "resumed_from")  # fmt: skip


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def _comparable(run: Path) -> dict:
    return {k: v for k, v in _metrics(run).items() if k not in WALL_AND_PROCESS}


def _history(run: Path):
    return json.loads((run / "history.json").read_text())


class StepCounter:
    """Counts every optimiser step taken in the process while it is active (a global hook, so
    it sees the optimiser the experiment builds inside itself)."""

    def __enter__(self):
        self.steps = 0
        self._handle = register_optimizer_step_post_hook(self._count)
        return self

    def _count(self, optimizer, args, kwargs):
        self.steps += 1

    def __exit__(self, *exc):
        self._handle.remove()


def _epochs_in_checkpoint(run: Path) -> int:
    return int(safe_load(run / "checkpoint.pt")["epoch"])


@pytest.mark.parametrize("average", ["none", "last:2", "ema:0.9"])
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, monkeypatch, average):
    """The resumed process trains only the epochs after the cut, and ends exactly where an
    uninterrupted run ends: every value of metrics.json but the clocks, history.json, the weights.
    With ``train.average`` too (the averager's state comes back from the checkpoint).

    Guards against a resume that restarts training from scratch (train() ignoring its
    checkpoint): that run gives the same metrics, so only the step count catches it."""
    selfattn = experiments.get("selfattn")
    cfg = {**TINY, "train": {**TINY["train"], "average": average}}
    straight = selfattn(cfg, tmp_path / "straight")

    real_save = Checkpointer.save

    def save_then_stop(self, epoch, *a, **k):
        real_save(self, epoch, *a, **k)
        if epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(Checkpointer, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        selfattn(cfg, tmp_path / "cut")
    assert _metrics(tmp_path / "cut")["status"] == "interrupted"
    monkeypatch.setattr(Checkpointer, "save", real_save)
    done = _epochs_in_checkpoint(tmp_path / "cut")
    assert done == 2

    with StepCounter() as counter:
        resumed = resume_run(tmp_path / "cut", quiet=True)
    assert counter.steps == (TINY["train"]["epochs"] - done) * BATCHES
    m = _metrics(tmp_path / "cut")
    assert m["status"] == "completed" and len(m["resumed_at"]) == 1
    for key in COMPARED:
        assert resumed[key] == straight[key], key
    assert _comparable(tmp_path / "cut") == _comparable(tmp_path / "straight")
    assert _history(tmp_path / "cut") == _history(tmp_path / "straight")


@pytest.mark.slow
def test_killed_with_sigkill_then_resumed_equals_uninterrupted(tmp_path):
    """kill -9 mid-training, then ``attnrun resume``: the resumed process trains only the epochs
    the checkpoint lacks and ends like an uninterrupted run (guards against a resume that
    restarts, and against a checkpoint that a killed process leaves unreadable)."""
    overrides = [
        "data.n_train=200",
        "data.n_test=100",
        "model.num_layers=1",
        "model.num_hiddens=16",
        "model.ffn_hiddens=16",
        "model.num_heads=2",
        "train.epochs=40",
        "train.batch_size=32",
        "plot.enabled=false",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "attnrun",
            "selfattn",
            "-q",
            "--root",
            str(tmp_path / "k"),
            *overrides,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    ck = None
    while time.time() < deadline and ck is None:
        found = list((tmp_path / "k").glob("outputs/*/*/checkpoint.pt"))
        ck = found[0] if found else None
        time.sleep(0.05)
    assert ck is not None, proc.stderr.read().decode() if proc.poll() is not None else "no ckpt"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    run = ck.parent
    assert _metrics(run)["status"] == "running"  # killed: nobody could write anything else
    done = _epochs_in_checkpoint(run)
    assert 1 <= done < 40

    # Finish it with the same 40 epochs the killed run was given, and compare to a straight one.
    straight40 = experiments.get("selfattn")(
        {**TINY, "train": {"epochs": 40, "batch_size": 32}}, tmp_path / "straight40"
    )
    with StepCounter() as counter:
        r = CliRunner().invoke(app, ["resume", str(run), "-q"])
    assert r.exit_code == 0, r.output
    assert counter.steps == (40 - done) * BATCHES
    m = _metrics(run)
    assert m["status"] == "completed"
    for key in COMPARED:
        assert m[key] == straight40[key], key
    assert _comparable(run) == _comparable(tmp_path / "straight40")
    assert _history(run) == _history(tmp_path / "straight40")


def test_resume_refuses_completed_and_missing_runs(tmp_path):
    experiments.get("regress")({}, tmp_path / "done")
    r = CliRunner().invoke(app, ["resume", str(tmp_path / "done")])
    assert r.exit_code == 2 and "already completed" in r.stderr
    r = CliRunner().invoke(app, ["resume", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "no such run folder" in r.stderr


def test_a_resume_stopped_again_says_how_to_go_on(tmp_path, monkeypatch):
    """Ctrl-C during ``attnrun resume``: exit 130, the run ``interrupted`` again, and one line on
    stderr with the same resume command (typer alone turns Ctrl-C into a silent exit 130).
    Planted bug caught: the resume command without its own handler (nothing printed)."""
    selfattn = experiments.get("selfattn")
    real_save = Checkpointer.save

    def save_then_stop(self, epoch, *a, **k):
        real_save(self, epoch, *a, **k)
        if epoch in (1, 2):
            raise KeyboardInterrupt

    monkeypatch.setattr(Checkpointer, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        selfattn(TINY, tmp_path / "cut")
    r = CliRunner().invoke(app, ["resume", str(tmp_path / "cut"), "-q"])
    assert r.exit_code == 130, r.output
    assert (
        r.stderr == f"attnrun: interrupted; continue it with: attnrun resume {tmp_path / 'cut'}\n"
    )
    assert _metrics(tmp_path / "cut")["status"] == "interrupted"
    assert _epochs_in_checkpoint(tmp_path / "cut") == 2
