"""A NaN or inf loss stops training clearly, marks the run failed and keeps the last checkpoint."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from attnrun.cli import app
from attnrun.errors import TrainingError
from attnrun.experiments import experiments
from attnrun.runs.files import safe_load

TINY = [
    "data.n_train=200", "data.n_test=100", "model.num_layers=1", "model.num_hiddens=16",
    "model.ffn_hiddens=16", "model.num_heads=2", "train.batch_size=32", "plot.enabled=false",
]  # fmt: skip


def test_learning_rate_1e6_fails_with_the_reason(tmp_path):
    r = CliRunner().invoke(app, ["selfattn", "--root", str(tmp_path), "train.lr=1e6", *TINY])
    assert r.exit_code == 2, r.output
    assert "loss became nan" in r.stderr and "train.lr" in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.output
    [run] = list(tmp_path.glob("outputs/*/*"))
    m = json.loads((run / "metrics.json").read_text())
    assert m["status"] == "failed" and "nan" in m["error"]


def test_nan_in_epoch_3_keeps_the_epoch_2_checkpoint(tmp_path, monkeypatch):
    import attnrun.selfattn.train as train_mod

    calls = {"n": 0}
    real_nll = F.nll_loss
    steps_per_epoch = 200 // 32 + 1

    def nll_then_nan(log_probs, target):
        calls["n"] += 1
        loss = real_nll(log_probs, target)
        return loss * float("nan") if calls["n"] > 2 * steps_per_epoch else loss

    monkeypatch.setattr(train_mod.F, "nll_loss", nll_then_nan)
    cfg = {
        "data": {"n_train": 200, "n_test": 100},
        "model": {"num_layers": 1, "num_hiddens": 16, "ffn_hiddens": 16, "num_heads": 2},
        "train": {"epochs": 5, "batch_size": 32},
        "plot": {"enabled": False},
    }
    with pytest.raises(TrainingError, match="nan"):
        experiments.get("selfattn")(cfg, tmp_path)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["status"] == "failed"
    state = safe_load(tmp_path / "checkpoint.pt")
    assert state["epoch"] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values())
