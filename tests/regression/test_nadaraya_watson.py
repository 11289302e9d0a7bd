import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attnrun.errors import ConfigError, DataError
from attnrun.regression.kernels import kernels
from attnrun.regression.nadaraya_watson import attention_weights, nadaraya_watson

ALL = kernels.names()


def plain_nw(q, x, y, kernel, h):
    """The textbook formula, one query at a time, no tricks (float64)."""
    k = kernels.get(kernel)
    out = []
    for qi in q.tolist():
        w = k((qi - x) / h)
        out.append((w * y).sum() / w.sum() if w.sum() > 0 else math.nan)
    return torch.tensor(out, dtype=torch.float64)


def data(n=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, generator=g, dtype=torch.float64) * 5
    y = 2 * torch.sin(x) + x**0.8 + 0.5 * torch.randn(n, generator=g, dtype=torch.float64)
    q = torch.rand(120, generator=g, dtype=torch.float64) * 7 - 1  # includes queries outside
    return q, x, y


@pytest.mark.parametrize("kernel", ALL)
@pytest.mark.parametrize("h", [0.01, 0.2, 1.5])
def test_matches_plain_formula(kernel, h):
    q, x, y = data()
    want = plain_nw(q, x, y, kernel, h)
    for method in ("dense", "windowed", "auto"):
        got = nadaraya_watson(q, x, y, kernel, h, method=method)
        # plain exp underflows for a gaussian query far from the data: compare where defined
        ok = ~torch.isnan(want)
        torch.testing.assert_close(got[ok], want[ok], rtol=1e-9, atol=1e-9)
        if kernels.get(kernel).compact:
            assert torch.equal(torch.isnan(got), torch.isnan(want))


@pytest.mark.parametrize("h", [1e-4, 1e-3, 0.05, 0.3, 1.0, 30.0])
def test_fast_paths_equal_dense_gaussian_including_far_queries(h):
    q, x, y = data(2000, seed=1)
    q = torch.cat([q, torch.tensor([-1e3, -3.0, 5.5, 9.0, 1e4], dtype=torch.float64)])
    dense = nadaraya_watson(q, x, y, "gaussian", h, method="dense")
    assert not torch.isnan(dense).any()  # stabilised: far queries do not underflow to 0/0
    for method in ("windowed", "expansion", "auto"):
        got = nadaraya_watson(q, x, y, "gaussian", h, method=method)
        torch.testing.assert_close(got, dense, rtol=0, atol=1e-7)


def test_far_query_takes_nearest_value():
    x = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
    y = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    got = nadaraya_watson(torch.tensor([100.0, -100.0]), x, y, "gaussian", 0.1)
    torch.testing.assert_close(got, torch.tensor([3.0, 1.0], dtype=torch.float64))


def test_matches_statsmodels_kernelreg():
    """statsmodels KernelReg(var_type='c', reg_type='lc', bw=[h]) uses K((x - q)/h)/h: same h.

    Only the gaussian is compared: statsmodels 0.14/0.15's ``tricube`` sets u = 0 outside |u| <= 1
    and so gives points *outside* the support the kernel's peak weight 70/81.
    """
    sm = pytest.importorskip("statsmodels.nonparametric.kernel_regression")
    q, x, y = data(200, seed=2)
    q = q.clamp(0, 5)
    for kernel, h in [("gaussian", 0.3), ("gaussian", 0.05), ("gaussian", 2.0)]:
        kr = sm.KernelReg(
            y.numpy(), x.numpy(), var_type="c", reg_type="lc", bw=[h], ckertype=kernel
        )
        want = torch.from_numpy(kr.fit(q.numpy())[0])
        got = nadaraya_watson(q, x, y, kernel, h)
        ok = ~torch.isnan(got)
        torch.testing.assert_close(got[ok], want[ok], rtol=1e-9, atol=1e-9)


def test_dtype_and_shapes():
    q, x, y = data()
    for dt in (torch.float32, torch.float64):
        out = nadaraya_watson(q.to(dt)[:, None], x.to(dt)[:, None], y.to(dt), bandwidth=0.3)
        assert out.dtype == dt and out.shape == (q.numel(),)
    out, w = nadaraya_watson(q, x, y, bandwidth=0.3, return_weights=True)
    assert w.shape == (q.numel(), x.numel())
    torch.testing.assert_close(w @ y, out)


def test_compact_kernel_without_neighbours_is_nan():
    x = torch.tensor([0.0, 1.0])
    out = nadaraya_watson(
        torch.tensor([0.1, 5.0]), x, torch.tensor([1.0, 2.0]), "epanechnikov", 0.5
    )
    assert out[0] == pytest.approx(1.0) and math.isnan(out[1])


@pytest.mark.parametrize("bw", [0, -1, math.nan, math.inf, "wide"])
def test_bad_bandwidth(bw):
    with pytest.raises(ConfigError, match="bandwidth"):
        nadaraya_watson(torch.zeros(2), torch.zeros(2), torch.zeros(2), bandwidth=bw)


@pytest.mark.parametrize(
    "q, x, y, match",
    [
        ([], [0.0], [1.0], "x_query is empty"),
        ([0.0], [], [], "x_train is empty"),
        ([0.0], [0.0, 1.0], [1.0], "differ in length"),
        ([math.nan], [0.0], [1.0], "x_query contains NaN"),
        ([0.0], [0.0, math.inf], [1.0, 2.0], r"x_train contains NaN or inf \(first at index 1"),
        ([0.0], [0.0], [[1.0, 2.0]], "shape"),
    ],
)
def test_bad_data(q, x, y, match):
    with pytest.raises(DataError, match=match):
        nadaraya_watson(torch.tensor(q), torch.tensor(x), torch.tensor(y), bandwidth=1.0)


def test_unknown_method_and_kernel():
    with pytest.raises(ConfigError, match="unknown method"):
        nadaraya_watson(torch.zeros(2), torch.zeros(2), torch.zeros(2), method="fft")
    with pytest.raises(ConfigError, match="unknown kernel"):
        nadaraya_watson(torch.zeros(2), torch.zeros(2), torch.zeros(2), kernel="fft")


def test_attention_weights_refuses_huge():
    with pytest.raises(ConfigError, match="use nadaraya_watson"):
        attention_weights(torch.zeros(10_000), torch.zeros(10_000))


finite = st.floats(-10, 10, allow_nan=False, width=64)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(finite, finite), min_size=1, max_size=30),
    st.lists(finite, min_size=1, max_size=10),
    st.sampled_from(ALL),
    st.floats(1e-3, 20),
)
def test_properties(pairs, queries, kernel, h):
    x = torch.tensor([p[0] for p in pairs], dtype=torch.float64)
    y = torch.tensor([p[1] for p in pairs], dtype=torch.float64)
    q = torch.tensor(queries, dtype=torch.float64)
    pred = nadaraya_watson(q, x, y, kernel, h)
    ok = ~torch.isnan(pred)
    assert (pred[ok] >= y.min() - 1e-9).all() and (pred[ok] <= y.max() + 1e-9).all()
    w = attention_weights(q, x, kernel, h)
    rows = ~torch.isnan(w).any(dim=1)
    torch.testing.assert_close(w[rows].sum(dim=1), torch.ones(int(rows.sum()), dtype=w.dtype))
    assert torch.equal(rows, ok)
    if kernel == "gaussian":
        assert ok.all()
    dense = nadaraya_watson(q, x, y, kernel, h, method="dense")
    np.testing.assert_allclose(pred.numpy(), dense.numpy(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("h", [0.02, 0.3, 2.0])
def test_expansion_within_its_bound_of_dense(h):
    """The grid expansion's per-weight bound (1e-13 of the row's largest) leaves the sums, and
    so the predictions on dense data, equal to the plain formula far below 1e-9."""
    q, x, y = data(3000, seed=5)
    q = q.clamp(0, 5)
    dense = nadaraya_watson(q, x, y, "gaussian", h, method="dense")
    got = nadaraya_watson(q, x, y, "gaussian", h, method="expansion")
    torch.testing.assert_close(got, dense, rtol=0, atol=1e-11)


def test_tiny_problems_run_on_one_thread_large_ones_on_the_runs_count(monkeypatch):
    """Guards against the thread choice going back to a blanket rule: forcing one thread on
    large problems too (the old ``fast_threads``), or dropping the one-thread choice for tiny
    ones; and against the run's count not being restored afterwards."""
    import attnrun.regression.nadaraya_watson as nw
    from attnrun.device import cpu_threads

    seen = []
    real = nw._fast

    def spy(*a, **k):
        seen.append(torch.get_num_threads())
        return real(*a, **k)

    monkeypatch.setattr(nw, "_fast", spy)
    q, x, y = data(n=600)  # 120 queries x 600 keys = 72,000 pairs > SERIAL_PAIRS
    with cpu_threads(2):
        nw.nadaraya_watson(q[:50], x[:50], y[:50], bandwidth=0.3)  # 2,500 pairs
        nw.nadaraya_watson(q, x, y, bandwidth=0.3)
        assert torch.get_num_threads() == 2
    assert 50 * 50 <= nw.SERIAL_PAIRS < q.numel() * x.numel()
    assert seen == [1, 2]
