"""Checkpoints restore model, optimizer and every RNG; bad files are refused clearly."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
import torch

from attnrun.errors import DataError
from attnrun.runs.checkpoint import Checkpointer, safe_load


def _draws(gen):
    return (
        torch.rand(3).tolist(),
        torch.rand(3, generator=gen).tolist(),
        random.random(),
        float(np.random.rand()),
    )


def test_restore_brings_back_weights_optimizer_and_rng(tmp_path):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    ck = Checkpointer(tmp_path, gen)
    ck.save(3, model, opt, {"loss": [1.0, 0.5, 0.25]}, best=0.25)
    expected = _draws(gen)
    weights = {k: v.clone() for k, v in model.state_dict().items()}

    gen2 = torch.Generator().manual_seed(99)
    model2 = torch.nn.Linear(3, 2)
    opt2 = torch.optim.Adam(model2.parameters(), lr=0.1)
    torch.manual_seed(123)
    epoch, history, extra = Checkpointer(tmp_path, gen2, resume=True).restore(model2, opt2)
    assert epoch == 3 and history == {"loss": [1.0, 0.5, 0.25]} and extra == {"best": 0.25}
    for k, v in model2.state_dict().items():
        torch.testing.assert_close(v, weights[k])
    assert opt2.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]
    assert _draws(gen2) == expected


def test_fresh_run_ignores_an_existing_checkpoint(tmp_path):
    model = torch.nn.Linear(2, 2)
    Checkpointer(tmp_path, None).save(1, model)
    assert Checkpointer(tmp_path, None, resume=False).restore(torch.nn.Linear(2, 2)) == (0, {}, {})


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_code_is_refused_without_running(tmp_path, capsys):
    path = tmp_path / "model.pt"
    torch.save({"model": _Evil()}, path)
    with pytest.raises(DataError, match="pickled"):
        safe_load(path)
    assert "pwned" not in capsys.readouterr().out


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "checkpoint.pt"
    Checkpointer(tmp_path, None).save(1, torch.nn.Linear(8, 8))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="checkpoint.pt: cannot load: truncated"):
        safe_load(path)


def test_raw_pickle_is_refused(tmp_path):
    path = tmp_path / "x.pt"
    path.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(DataError, match="cannot load"):
        safe_load(path)
