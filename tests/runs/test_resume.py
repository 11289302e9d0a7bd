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
from typer.testing import CliRunner

from attnrun.cli import app
from attnrun.runs.resume import resume_run
from attnrun.experiments import experiments
from attnrun.runs.checkpoint import Checkpointer

REPO = Path(__file__).resolve().parents[2]
TINY = {
    "data": {"n_train": 200, "n_test": 100},
    "model": {"num_layers": 1, "num_hiddens": 16, "ffn_hiddens": 16, "num_heads": 2},
    "train": {"epochs": 4, "batch_size": 32},
    "plot": {"enabled": False},
}
COMPARED = ("accuracy", "train_loss", "it_attention", "it_attention_table", "model_sha256")


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, monkeypatch):
    selfattn = experiments.get("selfattn")
    straight = selfattn(TINY, tmp_path / "straight")

    real_save = Checkpointer.save

    def save_then_stop(self, epoch, *a, **k):
        real_save(self, epoch, *a, **k)
        if epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(Checkpointer, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        selfattn(TINY, tmp_path / "cut")
    assert _metrics(tmp_path / "cut")["status"] == "interrupted"
    monkeypatch.setattr(Checkpointer, "save", real_save)

    resumed = resume_run(tmp_path / "cut", quiet=True)
    m = _metrics(tmp_path / "cut")
    assert m["status"] == "completed" and len(m["resumed_at"]) == 1
    for key in COMPARED:
        assert resumed[key] == straight[key], key
    history = json.loads((tmp_path / "cut" / "history.json").read_text())["loss"]
    assert history == json.loads((tmp_path / "straight" / "history.json").read_text())["loss"]


@pytest.mark.slow
def test_killed_with_sigkill_then_resumed_equals_uninterrupted(tmp_path):
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

    # Finish it with the same 40 epochs the killed run was given, and compare to a straight one.
    straight40 = experiments.get("selfattn")(
        {**TINY, "train": {"epochs": 40, "batch_size": 32}}, tmp_path / "straight40"
    )
    r = CliRunner().invoke(app, ["resume", str(run), "-q"])
    assert r.exit_code == 0, r.output
    m = _metrics(run)
    assert m["status"] == "completed"
    for key in COMPARED:
        assert m[key] == straight40[key], key


def test_resume_refuses_completed_and_missing_runs(tmp_path):
    experiments.get("regress")({}, tmp_path / "done")
    r = CliRunner().invoke(app, ["resume", str(tmp_path / "done")])
    assert r.exit_code == 2 and "already completed" in r.stderr
    r = CliRunner().invoke(app, ["resume", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "no such run folder" in r.stderr
