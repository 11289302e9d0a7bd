"""The translate optimiser: ``train.adam_beta2`` and ``train.weight_decay`` (decoupled, AdamW)
reach the optimiser of a run, with the update each names, and bad values are one line, exit 2."""

from __future__ import annotations

import copy

import pytest
import torch
import yaml

from attnrun.experiments import experiments
from attnrun.translate.config import TrainConfig
from attnrun.translate.train import make_optimizer


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))


def _steps(model: torch.nn.Module, opt: torch.optim.Optimizer, n: int) -> None:
    gen = torch.Generator().manual_seed(1)
    for _ in range(n):
        x, y = torch.randn(16, 6, generator=gen), torch.randn(16, 3, generator=gen)
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()


def test_the_default_is_the_plain_adam_of_before():
    """Guards the default: ``Adam(lr)`` with torch's own betas, no weight decay — every run
    trained before these options keeps its update. Planted bug caught: AdamW's default decay
    (0.01) taken as the default."""
    a, b = _model(), _model()
    _steps(a, make_optimizer(a, TrainConfig(lr=0.01)), 5)
    _steps(b, torch.optim.Adam(b.parameters(), lr=0.01), 5)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-6, atol=1e-7)


def test_adam_beta2_is_the_second_moment_decay():
    """``train.adam_beta2`` is Adam's beta2: 5 steps equal ``Adam(betas=(0.9, 0.98))`` and differ
    from the default's. Planted bug caught: the option read but not passed to the optimiser."""
    a, b, c = _model(), _model(), _model()
    _steps(a, make_optimizer(a, TrainConfig(lr=0.01, adam_beta2=0.98)), 5)
    _steps(b, torch.optim.Adam(b.parameters(), lr=0.01, betas=(0.9, 0.98)), 5)
    _steps(c, torch.optim.Adam(c.parameters(), lr=0.01), 5)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-6, atol=1e-7)
    assert not torch.equal(a[0].weight, c[0].weight)


def test_weight_decay_is_decoupled_from_the_gradient():
    """Decoupled decay (Loshchilov & Hutter 2019): a parameter without gradient shrinks by
    exactly ``1 - lr * weight_decay`` a step, the plain formula; an L2 term added to the gradient
    would move it by Adam's normalised step, about ``lr`` whatever the decay. Planted bugs
    caught: Adam's coupled ``weight_decay`` used instead of AdamW; the decay not passed."""
    p = torch.nn.Parameter(torch.full((4,), 2.0))
    opt = make_optimizer(torch.nn.ParameterList([p]), TrainConfig(lr=0.1, weight_decay=0.5))
    for step in range(1, 4):
        p.grad = torch.zeros_like(p)
        opt.step()
        torch.testing.assert_close(p.detach(), torch.full((4,), 2.0 * (1 - 0.1 * 0.5) ** step))


def test_more_weight_decay_gives_smaller_weights():
    """The option's direction: the same 30 steps with a larger ``train.weight_decay`` end with a
    smaller weight norm. Planted bug caught: the decay not passed to AdamW (the norms tie)."""
    norms = []
    for wd in (0.0, 0.1, 1.0):
        m = _model()
        _steps(m, make_optimizer(m, TrainConfig(lr=0.01, weight_decay=wd)), 30)
        norms.append(sum(p.norm() ** 2 for p in m.parameters()).item())
    assert norms[0] > norms[1] > norms[2], norms


TINY = {
    "data": {"n_train": 64, "n_val": 8, "n_test": 8},
    "model": {"embed_size": 8, "num_hiddens": 8},
    "train": {"epochs": 1, "batch_size": 32, "threads": 1},
    "decode": {"max_len": 10},
    "plot": {"heatmaps": 0},
}


def test_a_run_trains_with_the_options_it_was_given(tmp_path, monkeypatch):
    """The options reach the optimiser a run builds (through the config schema and the trainer),
    seen on every optimiser step of a real ``translate`` run. Planted bug caught: the trainer
    building its optimiser without the config's values."""
    seen = []
    real = torch.optim.AdamW.step

    def spy(self, *a, **k):
        seen.append((type(self).__name__, self.param_groups[0]["betas"],
                     self.param_groups[0]["weight_decay"]))  # fmt: skip
        return real(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    cfg = copy.deepcopy(TINY)
    cfg["train"].update(adam_beta2=0.98, weight_decay=0.01)
    experiments.get("translate")(cfg, tmp_path)
    assert seen and set(seen) == {("AdamW", (0.9, 0.98), 0.01)}
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())["train"]
    assert (saved["adam_beta2"], saved["weight_decay"]) == (0.98, 0.01)  # resume reads this


SMALL = ["data.n_train=40", "data.n_val=8", "data.n_test=8", "train.epochs=1",
         "model.num_hiddens=8", "plot.heatmaps=1"]  # fmt: skip


@pytest.mark.parametrize(
    ("override", "allowed"),
    [
        ("train.adam_beta2=1.0", "(0, 1)"),
        ("train.adam_beta2=0.0", "(0, 1)"),
        ("train.weight_decay=-0.01", ">= 0 (0: plain Adam)"),
    ],
)
def test_bad_optimiser_options_exit_2_before_training(tmp_path, capsys, override, allowed):
    """One line naming the option and what is valid, exit 2, no run folder. Planted bug caught:
    each check dropped (``adam_beta2=1`` then trains with a second moment that never decays)."""
    from attnrun.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["translate", "-q", "--root", str(tmp_path), *SMALL, override])
    _, err = capsys.readouterr()
    assert exc.value.code == 2
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert f"{override} is not valid; allowed: {allowed}" in err
    assert not (tmp_path / "outputs").exists()
