"""The public API named in the README resolves at the package top and keeps dtypes."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import attnrun


@pytest.mark.parametrize("name", [n for n in attnrun.__all__ if n != "__version__"])
def test_public_name_resolves(name):
    assert getattr(attnrun, name) is not None


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError):
        attnrun.no_such_thing  # noqa: B018


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nadaraya_watson_and_loo_bandwidth_keep_dtype(dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.sort(torch.rand(200, generator=g, dtype=dtype) * 5)[0]
    y = torch.sin(x) + 0.1 * torch.randn(200, generator=g, dtype=dtype)
    h = attnrun.loo_bandwidth(x, y, kernel="gaussian")
    assert isinstance(h, float) and 0 < h < 5
    q = torch.linspace(0, 5, 17, dtype=dtype)
    pred = attnrun.nadaraya_watson(q, x, y, kernel="gaussian", bandwidth=h)
    assert pred.dtype == dtype and pred.shape == (17,)
    # the plain formula
    w = torch.softmax(-((q[:, None] - x[None]) ** 2) / (2 * h * h), dim=1)
    torch.testing.assert_close(pred, w @ y)


def test_core_names_work_together():
    torch.manual_seed(0)
    mha = attnrun.MultiHeadAttention(16, 4)
    x = torch.randn(2, 5, 16)
    out, w = mha(x, x, x, torch.tensor([5, 3]))
    assert out.shape == (2, 5, 16) and w.shape == (2, 4, 5, 5)
    assert torch.all(w[1, :, :, 3:] == 0)
    assert "additive" in attnrun.score_functions


def test_notebook_api_is_exported_and_import_stays_cheap():
    """Guards against an eager import of the notebook module (and with it torch, matplotlib,
    the report) at ``import attnrun``: the names are listed, and resolve only when used."""
    assert {"open_run", "open_report"} <= set(attnrun.__all__)
    code = (
        "import sys, attnrun; heavy = [m for m in ('torch', 'matplotlib', 'attnrun.notebook') "
        "if m in sys.modules]; print(heavy); assert not heavy; "
        "assert callable(attnrun.open_run) and 'attnrun.notebook' in sys.modules"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
