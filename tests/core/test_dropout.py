"""The core's dropout: nn.Dropout's distribution and scaling, with a cheaper mask on a CPU."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from attnrun.core.dropout import BITS, Dropout, dropout, keep_mask_bits

N = 400_001  # odd: the two halves of the random words differ by one element


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_each_half_of_the_random_words_keeps_one_minus_p(p):
    """Elements drawn from bits 0–14 and from bits 16–30 of the words are each kept with
    probability 1 − p (within 5 standard errors). Guards: the high half taken as ``>> 15`` (16
    bits: kept with 1 − p/2), the threshold on the wrong side (kept with p)."""
    torch.manual_seed(0)
    keep = keep_mask_bits((N,), p).float()
    half = (N + 1) // 2
    se = math.sqrt(p * (1 - p) / half)
    for part in (keep[:half], keep[half:]):
        assert abs(part.mean().item() - (1 - p)) < 5 * se


def test_the_two_halves_are_independent():
    """An element from a word's low bits and its partner from the high bits are not correlated
    (a mask drawn from one 15-bit value for both would drop them together)."""
    torch.manual_seed(1)
    keep = keep_mask_bits((2 * 100_000,), 0.5).float()
    low, high = keep[:100_000], keep[100_000:]
    both = (low * high).mean().item()
    assert abs(both - 0.25) < 5 * math.sqrt(0.25 * 0.75 / 100_000)


def test_raising_p_drops_more():
    """Direction: a larger ``p`` keeps fewer elements, on the same draws (the thresholds nest)."""
    kept = []
    for p in (0.05, 0.2, 0.6):
        torch.manual_seed(2)
        kept.append(keep_mask_bits((50_000,), p).sum().item())
    assert kept[0] > kept[1] > kept[2]
    assert abs(kept[2] / 50_000 - 0.4) < 0.01


def test_kept_elements_are_scaled_and_the_gradient_is_the_mask():
    """Kept elements are ``x / (1 − p)`` exactly, dropped ones 0, and the gradient is
    ``g · keep / (1 − p)`` — the same arithmetic as ``F.dropout`` given its mask. The mean of
    ones stays 1 (unbiased)."""
    torch.manual_seed(3)
    x = (torch.rand(300, 70) + 0.5).requires_grad_()
    out = dropout(x, 0.25)
    keep = out != 0
    torch.testing.assert_close(out[keep], x[keep] * (1 / 0.75), rtol=0, atol=0)
    g = torch.randn_like(x)
    out.backward(g)
    torch.testing.assert_close(x.grad, g * keep * (1 / 0.75), rtol=0, atol=0)
    ones = dropout(torch.ones(1_000_000), 0.25)
    assert abs(ones.mean().item() - 1.0) < 5 * math.sqrt(0.25 / 0.75 / 1_000_000)


def test_bf16_keeps_its_dtype_and_p_resolution():
    """bf16 activations stay bf16; ``p`` is used to within 2⁻¹⁵ (the threshold's resolution)."""
    x = torch.ones(1000, dtype=torch.bfloat16, requires_grad=True)
    assert dropout(x, 0.1).dtype == torch.bfloat16
    assert abs(round(0.1 * 2**BITS) / 2**BITS - 0.1) <= 2 ** -(BITS + 1)


def test_off_in_eval_at_zero_and_everything_at_one():
    x = torch.randn(5, 4)
    assert dropout(x, 0.3, training=False) is x
    assert dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    m = Dropout(0.3).eval()
    assert m(x) is x


def test_the_seed_fixes_the_mask_and_the_draw_advances_it():
    """Same seed, same mask (runs and resumed runs repeat); the next draw differs."""
    torch.manual_seed(4)
    a, b = keep_mask_bits((1000,), 0.5), keep_mask_bits((1000,), 0.5)
    torch.manual_seed(4)
    assert torch.equal(keep_mask_bits((1000,), 0.5), a)
    assert not torch.equal(a, b)


def test_the_module_is_a_drop_in_nn_dropout():
    """Same class family, ``p`` and repr as ``nn.Dropout``; in training it drops about ``p``."""
    m = Dropout(0.4)
    assert isinstance(m, torch.nn.Dropout) and m.p == 0.4
    assert repr(m) == repr(torch.nn.Dropout(0.4))
    torch.manual_seed(5)
    dropped = (m(torch.ones(100_000)) == 0).float().mean().item()
    assert abs(dropped - 0.4) < 0.01
    ref = (F.dropout(torch.ones(100_000), 0.4) == 0).float().mean().item()
    assert abs(dropped - ref) < 0.015


@pytest.mark.parametrize(
    "overrides",
    [
        {"model": {"arch": "transformer", "num_hiddens": 16, "num_heads": 2, "dropout": 0.1}},
        {"score": "additive", "model": {"dropout": 0.1}},
        {"score": "general", "decoder": "luong", "model": {"dropout": 0.1}},
        {"decoder": "none", "model": {"dropout": 0.1}},
    ],
)
def test_every_translation_model_drops_with_the_core(overrides):
    """Every dropout module of the translation models is the core's (a model built with a plain
    ``nn.Dropout`` would lose the faster mask without failing anything else)."""
    from attnrun.experiments import experiments
    from attnrun.translate.models import build_model

    cfg = experiments.get("translate").make_config(overrides)
    model = build_model(cfg, 20, 20)
    drops = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert drops and all(type(m) is Dropout for m in drops)
