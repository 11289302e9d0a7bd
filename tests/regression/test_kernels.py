import math

import pytest
import torch

from attnrun.errors import ConfigError
from attnrun.regression.kernels import GAUSSIAN_CUT, get_kernel, kernels

ALL = ["gaussian", "boxcar", "epanechnikov", "triangular", "tricube", "biweight", "cosine"]


def test_registry_holds_every_kernel():
    assert sorted(kernels.names()) == sorted(ALL)


def test_unknown_kernel_lists_valid_names():
    with pytest.raises(ConfigError, match="unknown kernel 'nope'.*gaussian"):
        get_kernel("nope")


@pytest.mark.parametrize("name", ALL)
def test_kernel_integrates_to_one_symmetric_and_compact(name):
    k = kernels.get(name)
    u = torch.linspace(-12, 12, 240_001, dtype=torch.float64)
    vals = k(u)
    assert torch.trapezoid(vals, u).item() == pytest.approx(1.0, abs=1e-4)
    torch.testing.assert_close(vals, k(-u))
    if k.compact:
        assert k.support == 1.0
        assert (vals[u.abs() > 1] == 0).all()
    else:
        assert k.support == math.inf


def test_plain_formulas():
    u = torch.tensor([0.0, 0.5, -0.9, 1.5], dtype=torch.float64)
    a = u.abs()
    inside = (a <= 1).double()
    expected = {
        "gaussian": torch.exp(-(u**2) / 2) / math.sqrt(2 * math.pi),
        "boxcar": 0.5 * inside,
        "epanechnikov": 0.75 * (1 - u**2) * inside,
        "triangular": (1 - a) * inside,
        "tricube": 70 / 81 * (1 - a**3) ** 3 * inside,
        "biweight": 15 / 16 * (1 - u**2) ** 2 * inside,
        "cosine": math.pi / 4 * torch.cos(math.pi / 2 * u) * inside,
    }
    for name, want in expected.items():
        torch.testing.assert_close(kernels.get(name)(u), want)


def test_gaussian_cut_radius_is_the_relative_cut():
    k = kernels.get("gaussian")
    for u0 in (0.0, 3.0, 50.0):
        r = k.cut_radius(u0)
        ratio = math.exp(-(r**2 - u0**2) / 2)
        assert ratio == pytest.approx(GAUSSIAN_CUT, rel=1e-9)
    assert kernels.get("tricube").cut_radius(5.0) == 1.0


def test_log_weights_stabilised_and_minus_inf_outside_support():
    g = kernels.get("gaussian")
    u = torch.tensor([[40.0, 41.0]], dtype=torch.float64)
    w = torch.exp(g.log_weights(u, torch.tensor([[40.0]], dtype=torch.float64)))
    assert w[0, 0] == 1.0 and 0 < w[0, 1] < 1
    e = kernels.get("epanechnikov").log_weights(torch.tensor([0.0, 2.0]))
    assert e[1] == -math.inf and math.isfinite(e[0])
