"""Faults during a run: disk full, CUDA out of memory, NaN losses, Ctrl-C — nothing is lost."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from attnrun.cli import app
from attnrun.errors import AttnrunError, TrainingError
from attnrun.experiments import experiments
from attnrun.experiments.base import execute
from attnrun.progress import Reporter

REPO = Path(__file__).resolve().parents[2]


def _status(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def test_disk_full_while_writing_artefacts_is_a_clear_error(tmp_path, monkeypatch):
    """ENOSPC in the middle of a run: one-line error, metrics.json intact and not 'completed'."""
    import attnrun.regression.plots as plots

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(plots, "plot_attention", full)
    with pytest.raises(AttnrunError, match="no space left"):
        execute(experiments.get("regress"), {}, tmp_path, Reporter(quiet=True))
    m = _status(tmp_path)
    assert m["status"] == "failed" and "no space left" in m["error"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_cuda_out_of_memory_suggests_a_smaller_batch(tmp_path, monkeypatch):
    exp = experiments.get("regress")

    def oom(cfg, out_dir, ctx):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(exp, "body", oom)
    with pytest.raises(TrainingError, match="smaller batch"):
        execute(exp, {}, tmp_path, Reporter(quiet=True))
    assert _status(tmp_path)["status"] == "failed"


def test_non_finite_training_loss_fails_with_the_reason(tmp_path):
    """Targets of 1e30 overflow float32 when squared: the loss is inf, training stops."""
    r = CliRunner().invoke(
        app, ["regress", "--pooling", "parametric", "--root", str(tmp_path), "data.noise=1e30"]
    )
    [run] = list(tmp_path.glob("outputs/*/*"))
    m = _status(run)
    assert r.exit_code == 2, r.output
    assert m["status"] == "failed" and "loss" in m["error"]
    assert "Traceback" not in r.output


def test_sigint_marks_the_run_interrupted(tmp_path):
    """Ctrl-C during a run: status 'interrupted', exit 130, one line naming the run folder, no
    traceback. Planted bug caught: typer turning Ctrl-C into a silent exit 130 (the line never
    printed)."""
    script = (
        "import time, attnrun.regression.models as m\n"
        "orig = m.train_parametric\n"
        "def slow(*a, **k):\n"
        "    print('TRAINING', flush=True); time.sleep(60)\n"
        "m.train_parametric = slow\n"
        "from attnrun.cli import main\n"
        f"main(['regress', '--pooling', 'parametric', '--root', {str(tmp_path)!r}, '-q'])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # as from a terminal: a runner started in the background (`cmd &` without job control)
        # passes SIGINT on as ignored, and Python then never raises KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stdout.readline()
        if "TRAINING" in line:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    [run] = list(tmp_path.glob("outputs/*/*"))
    assert _status(run)["status"] == "interrupted"
    # one line, no traceback; no checkpoint was written yet, so it names the folder, not resume
    assert err == f"attnrun: interrupted (run folder: {run})\n"
