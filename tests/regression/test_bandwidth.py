import math

import numpy as np
import pytest
import torch

from attnrun.errors import ConfigError, DataError
from attnrun.regression.bandwidth import (
    bandwidth_rules,
    loo_bandwidth,
    loo_error,
    resolve_bandwidth,
    scott,
    silverman,
)
from attnrun.regression.kernels import kernels


def data(n=150, seed=0):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0, 5, n))
    y = 2 * np.sin(x) + x**0.8 + rng.normal(0, 0.5, n)
    return torch.from_numpy(x), torch.from_numpy(y)


def plain_loo(x, y, kernel, h):
    k = kernels.get(kernel)
    err = 0.0
    for i in range(x.numel()):
        w = k((x[i] - x) / h)
        w[i] = 0
        if w.sum() == 0:
            return math.inf
        err += float(y[i] - (w * y).sum() / w.sum()) ** 2
    return err / x.numel()


def test_rules_match_statsmodels_formulas():
    bw = pytest.importorskip("statsmodels.nonparametric.bandwidths")
    x, _ = data()
    assert silverman(x) == pytest.approx(bw.bw_silverman(x.numpy()), rel=1e-12)
    # uniform data: sigma < IQR/1.349, where statsmodels' min(sigma, IQR/1.349) is sigma
    assert scott(x) == pytest.approx(bw.bw_scott(x.numpy()), rel=1e-12)
    n = x.numel()
    assert scott(x) == pytest.approx(1.059 * float(x.std()) * n**-0.2)


@pytest.mark.parametrize("kernel", ["gaussian", "epanechnikov", "boxcar"])
@pytest.mark.parametrize("h", [0.08, 0.4, 3.0])
def test_loo_error_matches_plain_formula(kernel, h):
    x, y = data(80)
    assert loo_error(x, y, kernel, h) == pytest.approx(plain_loo(x, y, kernel, h), rel=1e-9)


def test_loo_error_inf_when_a_point_has_no_neighbour():
    x = torch.tensor([0.0, 0.1, 0.2, 5.0])
    assert loo_error(x, torch.ones(4), "boxcar", 0.5) == math.inf


def test_loo_bandwidth_close_to_statsmodels_cv_ls_or_better():
    kr_mod = pytest.importorskip("statsmodels.nonparametric.kernel_regression")
    x, y = data(120, seed=3)
    kr = kr_mod.KernelReg(y.numpy(), x.numpy(), var_type="c", reg_type="lc", bw="cv_ls")
    h_sm = float(kr.bw[0])
    h, err = loo_bandwidth(x, y, return_error=True)
    err_sm = loo_error(x, y, "gaussian", h_sm)
    assert err == pytest.approx(plain_loo(x, y, "gaussian", h), rel=1e-9)
    assert abs(h / h_sm - 1) < 0.05 or err < err_sm


@pytest.mark.parametrize("kernel", ["epanechnikov", "tricube"])
def test_loo_bandwidth_compact_kernels_are_finite_and_locally_minimal(kernel):
    x, y = data(100, seed=4)
    h, err = loo_bandwidth(x, y, kernel, return_error=True)
    assert math.isfinite(err)
    for f in (0.97, 1.03):
        assert loo_error(x, y, kernel, h * f) >= err - 1e-9


def test_resolve_bandwidth():
    x, y = data()
    assert resolve_bandwidth(0.3, x, y) == 0.3
    assert resolve_bandwidth("0.3", x, y) == 0.3
    assert resolve_bandwidth("silverman", x, y) == silverman(x)
    assert resolve_bandwidth("Scott", x, y) == scott(x)
    assert 0.05 < resolve_bandwidth("loo", x, y) < 1.0
    assert set(bandwidth_rules.names()) == {"silverman", "scott", "loo"}
    with pytest.raises(ConfigError, match="unknown bandwidth rule 'best'.*silverman"):
        resolve_bandwidth("best", x, y)
    for bad in (0, -1.0, math.nan, "nan", "-2", True):
        with pytest.raises(ConfigError):
            resolve_bandwidth(bad, x, y)


def test_degenerate_inputs():
    with pytest.raises(DataError, match="all x values are equal"):
        silverman(torch.ones(10))
    with pytest.raises(DataError, match="at least 3"):
        loo_bandwidth(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 1.0]))
    with pytest.raises(DataError, match="differ in length"):
        loo_error(torch.zeros(3), torch.zeros(4))
