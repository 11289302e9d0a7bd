"""Weight averaging (``attnrun.averaging``) against plain re-computations: the mean of saved state
dicts, a hand-written EMA, buffers copied, tied weights, the checkpoint round trip, bad options."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from attnrun.averaging import EMA, Averager, LastEpochs, averagers, check_average, make_averager
from attnrun.errors import ConfigError


class Tiny(nn.Module):
    """Two layers with tied weights, a float buffer and an integer buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(5, 4)
        self.hidden = nn.Linear(4, 4)
        self.out = nn.Linear(4, 5)
        self.out.weight = self.emb.weight  # tied: one tensor under two names
        self.register_buffer("table", torch.zeros(3))
        self.register_buffer("counter", torch.zeros((), dtype=torch.long))


def _train(
    model: nn.Module, averager: Averager, epochs: int, steps: int, seed: int = 0, start: int = 1
):
    """Random "optimizer steps" (in-place updates) and buffer changes; returns the raw state dict
    at the end of every epoch and the parameters after every step."""
    g = torch.Generator().manual_seed(seed)
    per_epoch, per_step = [], []
    for epoch in range(start, start + epochs):
        for _ in range(steps):
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(torch.randn(p.shape, generator=g).to(p.device))
            averager.after_step(model)
            per_step.append({k: v.detach().clone() for k, v in model.named_parameters()})
        model.table.fill_(float(epoch))
        model.counter += 1
        averager.after_epoch(model, epoch)
        per_epoch.append(copy.deepcopy(model.state_dict()))
    return per_epoch, per_step


def test_modes_come_from_the_registry():
    assert averagers.names() == ["none", "last", "ema"]
    assert [averagers.get(n).form for n in averagers.names()] == ["none", "last:N", "ema:DECAY"]


@pytest.mark.parametrize(
    ("text", "allowed"),
    [
        ("swa:3", "none, last:N, ema:DECAY"),
        ("", "none, last:N, ema:DECAY"),
        ("none:2", "none, last:N, ema:DECAY"),
        ("last", "whole number N >= 1"),
        ("last:2.5", "whole number N >= 1"),
        ("last:0", "N >= 1"),
        ("last:-3", "N >= 1"),
        ("ema", "a number 0 < DECAY < 1"),
        ("ema:0", "0 < DECAY < 1"),
        ("ema:1", "0 < DECAY < 1"),
        ("ema:1.5", "0 < DECAY < 1"),
        ("ema:-0.5", "0 < DECAY < 1"),
        ("ema:nan", "0 < DECAY < 1"),
    ],
)
def test_bad_options_are_one_line_naming_the_key(text, allowed):
    """Unknown mode, N < 1, a decay outside (0, 1): validation.py's wording, one line."""
    with pytest.raises(ConfigError) as e:
        make_averager(text)
    msg = str(e.value)
    assert msg.startswith(f"train.average={text!r} is not valid; allowed: ")
    assert allowed in msg and "\n" not in msg


def test_boundaries_just_inside_are_accepted():
    assert make_averager("last:1").n == 1
    assert make_averager("ema:1e-9").decay == 1e-9
    assert make_averager("ema:0.999999").decay == 0.999999
    assert not make_averager("none").active


def test_only_none_where_nothing_trains():
    check_average("none", trains=False, why="x")
    with pytest.raises(ConfigError, match=r"allowed: none \(pooling=average does not train\)"):
        check_average("last:2", trains=False, why="pooling=average does not train")


@pytest.mark.parametrize(("n", "epochs"), [(3, 5), (2, 2), (4, 2), (1, 3)])
def test_last_n_is_the_plain_mean_of_the_saved_state_dicts(n, epochs):
    """Guards the window (the last N, or all when fewer) and the mean itself: compared with
    sum / count of independently saved state dicts. Planted: ``[-self.n:]`` → ``[: self.n]``
    (the first N epochs) fails (3, 5)."""
    model = Tiny()
    avg = LastEpochs(n)
    saved, _ = _train(model, avg, epochs, steps=3)
    window = saved[-n:]
    got = avg.averaged(model)
    for key in ("emb.weight", "hidden.weight", "hidden.bias", "out.bias"):
        expected = sum(sd[key] for sd in window) / len(window)
        torch.testing.assert_close(got[key], expected)
    assert avg.span() == {"averaged_epochs": [max(1, epochs - n + 1), epochs]}


def test_ema_equals_a_hand_written_weighted_mean_of_every_step():
    """The bias-corrected EMA is sum_i (1-d) d^(t-i) θ_i / (1 - d^t) over the steps' weights,
    computed here in float64 from the parameters recorded after each step. Planted: no bias
    correction (``m_t`` itself) fails; ``lerp`` weight ``d`` instead of ``1 - d`` fails."""
    d = 0.8
    model = Tiny()
    ema = EMA(d)
    _, steps = _train(model, ema, epochs=2, steps=5)
    t = len(steps)
    got = ema.averaged(model)
    for key in ("emb.weight", "hidden.weight", "hidden.bias", "out.bias"):
        weighted = sum((1 - d) * d ** (t - i) * s[key].double() for i, s in enumerate(steps, 1))
        torch.testing.assert_close(got[key].double(), weighted / (1 - d**t))
    # a plain loop from m = 0 says the same
    m = torch.zeros_like(steps[0]["hidden.weight"])
    for s in steps:
        m = d * m + (1 - d) * s["hidden.weight"]
    torch.testing.assert_close(got["hidden.weight"], m / (1 - d**t))
    assert ema.span() == {"ema_steps": 10}


def test_buffers_are_copied_from_the_raw_weights_and_tied_names_agree():
    """Buffers (a float table, an integer counter) are the raw model's, not averaged; the tied
    weight is one average under both names, stored apart (as model.pt stores a model)."""
    model = Tiny()
    for avg in (LastEpochs(3), EMA(0.5)):
        _train(model, avg, epochs=4, steps=2)
        got = avg.averaged(model)
        assert torch.equal(got["table"], model.table) and got["table"].dtype == torch.float32
        assert torch.equal(got["counter"], model.counter) and got["counter"].dtype == torch.long
        assert torch.equal(got["out.weight"], got["emb.weight"])
        assert got["out.weight"].data_ptr() != got["emb.weight"].data_ptr()
        assert not torch.equal(got["hidden.weight"], model.hidden.weight.detach())
        assert list(got) == list(model.state_dict())


def test_last_1_and_no_averaging_give_the_raw_weights_exactly():
    model = Tiny()
    last1, none = LastEpochs(1), make_averager("none")
    _train(model, last1, epochs=3, steps=2)
    raw = model.state_dict()
    for avg in (last1, none):
        got = avg.averaged(model)
        assert all(torch.equal(got[k], raw[k]) for k in raw)


def test_a_tiny_decay_is_the_raw_weights_and_a_larger_one_lags_behind():
    """Direction: the EMA's distance from the latest weights grows with the decay; a decay near 0
    is the latest weights. Planted: the decay used as ``1 - d`` inverts the order."""
    distances = []
    for d in (1e-9, 0.3, 0.9, 0.99):
        model = Tiny()
        ema = EMA(d)
        _train(model, ema, epochs=2, steps=10)
        diff = ema.averaged(model)["hidden.weight"] - model.hidden.weight.detach()
        distances.append(float(diff.norm()))
    assert distances[0] < 1e-5
    assert distances == sorted(distances) and distances[1] > 1e-3


def test_more_epochs_in_the_window_lag_further_behind():
    distances = []
    for n in (1, 2, 4):
        model = Tiny()
        avg = LastEpochs(n)
        _train(model, avg, epochs=5, steps=2)
        diff = avg.averaged(model)["hidden.bias"] - model.hidden.bias.detach()
        distances.append(float(diff.norm()))
    assert distances[0] == 0 and distances[0] < distances[1] < distances[2]


def test_applied_swaps_in_place_and_restores_the_raw_weights():
    """Inside ``applied`` the model holds the average; after it the raw weights come back bit for
    bit, in the same Parameter objects (an optimizer keeps training them)."""
    model = Tiny()
    avg = LastEpochs(2)
    _train(model, avg, epochs=3, steps=2)
    raw = copy.deepcopy(model.state_dict())
    params = list(model.parameters())
    with avg.applied(model):
        now = model.state_dict()
        expected = avg.averaged(model)
        assert all(torch.equal(now[k], expected[k]) for k in now)
    assert all(a is b for a, b in zip(params, model.parameters(), strict=True))
    assert all(torch.equal(model.state_dict()[k], raw[k]) for k in raw)


@pytest.mark.parametrize("text", ["last:3", "ema:0.7"])
def test_state_round_trip_continues_like_an_uninterrupted_average(text):
    """Stop after 2 epochs, restore the averager's state into a new one, train on: the same
    average as one averager all along (what a resumed run relies on). Planted: ``state_dict``
    of ``last`` leaving out the snapshots fails."""
    init = Tiny().state_dict()
    straight_model, straight = Tiny(), make_averager(text)
    straight_model.load_state_dict(init)
    _train(straight_model, straight, epochs=2, steps=3, seed=1)
    _train(straight_model, straight, epochs=2, steps=3, seed=2, start=3)

    model, first = Tiny(), make_averager(text)
    model.load_state_dict(init)
    _train(model, first, epochs=2, steps=3, seed=1)
    resumed = make_averager(text)
    resumed.load_state_dict(copy.deepcopy(first.state_dict()))
    _train(model, resumed, epochs=2, steps=3, seed=2, start=3)
    a, b = resumed.averaged(model), straight.averaged(straight_model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.span() == straight.span()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("text", ["last:3", "ema:0.7"])
def test_on_cuda_the_average_is_the_cpus_and_a_state_read_on_the_cpu_continues(text):
    """Averaging on the GPU: the same average as on the CPU (to float rounding), handed back as a
    CPU state dict (``model.pt`` loads anywhere), and a state read with ``map_location="cpu"``
    (``attnrun resume`` of a CUDA run) continuing on the CUDA model exactly like the averager
    that never stopped. Guards the EMA's move of resumed sums to the model's device (without it
    the first step after a resume fails on mixed devices)."""
    import io

    init = Tiny().state_dict()

    def fresh(device: str) -> Tiny:
        model = Tiny().to(device)
        model.load_state_dict(init)
        return model

    cpu_model, cpu_avg = fresh("cpu"), make_averager(text)
    _train(cpu_model, cpu_avg, epochs=2, steps=3, seed=1)
    gpu_model, gpu_avg = fresh("cuda"), make_averager(text)
    _train(gpu_model, gpu_avg, epochs=2, steps=3, seed=1)
    on_cpu, on_gpu = cpu_avg.averaged(cpu_model), gpu_avg.averaged(gpu_model)
    assert all(v.device.type == "cpu" for v in on_gpu.values())
    assert all(torch.allclose(on_gpu[k], on_cpu[k], atol=1e-5) for k in on_cpu)

    buffer = io.BytesIO()
    torch.save(gpu_avg.state_dict(), buffer)
    buffer.seek(0)
    resumed = make_averager(text)
    resumed.load_state_dict(torch.load(buffer, map_location="cpu"))
    straight_model = fresh("cuda")
    straight_model.load_state_dict(gpu_model.state_dict())
    _train(gpu_model, resumed, epochs=2, steps=3, seed=2, start=3)
    _train(straight_model, gpu_avg, epochs=2, steps=3, seed=2, start=3)
    a, b = resumed.averaged(gpu_model), gpu_avg.averaged(straight_model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.span() == gpu_avg.span()
