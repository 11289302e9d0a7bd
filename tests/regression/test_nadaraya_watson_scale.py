"""The fast Nadaraya-Watson paths at scale: exact against a plain reference, never dense."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import attnrun.regression.nadaraya_watson as nw
from attnrun.device import cpu_threads
from attnrun.regression.kernels import kernels

N_KEYS, N_QUERIES = 100_000, 1_000


@pytest.fixture(autouse=True)
def one_thread():
    """One thread: these tests check numbers, and on the shared 2-core test machine a second
    thread makes the many small parallel regions 10-70x slower whenever other jobs run (the
    figures in attnrun/regression/nadaraya_watson.py). The results do not depend on it."""
    with cpu_threads(1):
        yield


@pytest.fixture(scope="module")
def big():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(N_KEYS, generator=g, dtype=torch.float64) * 5
    y = torch.sin(2 * x) + 0.3 * torch.randn(N_KEYS, generator=g, dtype=torch.float64)
    q = torch.rand(N_QUERIES, generator=g, dtype=torch.float64) * 5.4 - 0.2  # a few outside
    return q, x, y


def chunked_reference(q, x, y, kernel: str, h: float, chunk: int = 10) -> torch.Tensor:
    """``sum_j K((q - x_j)/h) y_j / sum_j K((q - x_j)/h)`` in float64, ``chunk`` queries at a
    time: the formula as written, no window search, no stabilisation, no cut. For a compact
    kernel the keys farther than ``h`` from every query of the chunk are dropped first (their
    weight is exactly zero by the kernel's definition, checked in test_kernels.py); the gaussian
    sums over every key."""
    k = kernels.get(kernel)
    order = torch.argsort(q)
    out = torch.empty_like(q)
    for s in range(0, q.numel(), chunk):
        idx = order[s : s + chunk]
        qc = q[idx]
        near = (x >= qc.min() - k.support * h) & (x <= qc.max() + k.support * h)
        xk, yk = x[near], y[near]
        w = k((qc[:, None] - xk[None, :]) / h)  # (chunk, keys near the chunk)
        out[idx] = (w @ yk) / w.sum(dim=1)
    return out


@pytest.mark.parametrize("kernel", kernels.names())
def test_windowed_equals_the_plain_formula_at_1e5_keys(big, kernel):
    """Guards against a wrong tile accumulation in ``_windowed_sums`` (``out[s:e] =`` instead of
    ``+=`` keeps only the last key chunk of a block: at h = 0.25 a block's keys span several
    chunks), and against windows that drop keys carrying weight, for every registered kernel."""
    q, x, y = big
    h = 0.25
    want = chunked_reference(q, x, y, kernel, h)
    got = nw.nadaraya_watson(q, x, y, kernel, h, method="windowed")
    assert torch.equal(torch.isnan(got), torch.isnan(want))
    torch.testing.assert_close(got, want, rtol=0, atol=1e-9, equal_nan=True)
    if kernel == "gaussian":  # the default path may take the expansion instead: same answer
        auto = nw.nadaraya_watson(q, x, y, kernel, h)
        torch.testing.assert_close(auto, want, rtol=0, atol=1e-9)


class _RefuseLarge(TorchDispatchMode):
    """Raises on any tensor op whose output has ``limit`` elements or more."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
                if t.numel() >= self.limit:
                    raise AssertionError(f"{func} made a tensor of {t.numel()} elements")
        return out


@pytest.mark.parametrize(
    ("kernel", "h"), [("gaussian", 1.0), ("gaussian", 0.01), ("epanechnikov", 0.05)]
)
def test_default_path_never_builds_the_query_by_key_matrix(big, monkeypatch, kernel, h):
    """Guards against the default path going through the dense matrix (``method="dense"`` as
    the default, or ``attention_weights`` called on the way): the dense builder raises here, and
    no op may produce a tensor with a tenth of ``n_query × n_train`` elements."""

    def refuse(*a, **k):
        raise AssertionError("the dense attention matrix was built")

    monkeypatch.setattr(nw, "attention_weights", refuse)
    q, x, y = big
    q = torch.cat([q, q + 1e-3])  # 2,000 queries × 100,000 keys: 2e8 pairs
    guard = _RefuseLarge(q.numel() * x.numel() // 10)
    with guard:
        pred = nw.nadaraya_watson(q, x, y, kernel, h)
    assert pred.shape == q.shape and guard.largest > 0
    inside = (q > 0.05) & (q < 4.95)  # outside, a compact kernel may have no key in reach
    assert bool(torch.isfinite(pred[inside]).all())


def test_the_dense_path_is_what_the_guard_refuses(big, monkeypatch):
    """The guard above is live: the dense method does trip it."""
    q, x, y = big
    with pytest.raises(AssertionError, match="elements"), _RefuseLarge(N_QUERIES * 500):
        nw.nadaraya_watson(q[:600], x[:50_000], y[:50_000], "gaussian", 0.1, method="dense")
    assert math.isfinite(float(nw.nadaraya_watson(q[:2], x, y, "gaussian", 0.1)[0]))
