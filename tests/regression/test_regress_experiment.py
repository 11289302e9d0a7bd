"""``regress`` as an experiment: data defaults, CSV fits, the metrics and the attention file."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import attnrun.experiments.regress as regress_mod
from attnrun.cli import app
from attnrun.experiments import experiments
from attnrun.regression.data import functions
from attnrun.regression.kernels import kernels
from attnrun.regression.models import poolings
from attnrun.runs import files

regress = experiments.get("regress")


def _rows(run: Path) -> list[dict]:
    with open(run / "predictions.csv", newline="") as f:
        return list(csv.DictReader(f))


def _points_csv(path: Path, n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 5, n)
    y = 2 * np.sin(x) + x**0.8 + rng.normal(0, 0.5, n)
    path.write_text("x,y\n" + "".join(f"{float(a)!r},{float(b)!r}\n" for a, b in zip(x, y)))
    # what load_csv keeps: float32
    return x.astype(np.float32).astype(np.float64), y.astype(np.float32).astype(np.float64)


def plain_loo(x: np.ndarray, y: np.ndarray, kernel: str, h: float) -> float:
    """The leave-one-out MSE one point at a time, no tricks."""
    k = kernels.get(kernel)
    err = []
    for i in range(len(x)):
        w = k(torch.from_numpy((x[i] - x) / h)).numpy()
        w[i] = 0
        err.append((y[i] - (w * y).sum() / w.sum()) ** 2 if w.sum() > 0 else math.inf)
    return float(np.mean(err))


# --- function defaults (YAML = dataclass: tests/test_configs.py) ----------------------------


def test_x_plus_sin_alone_gives_its_settings_and_overrides_win(tmp_path):
    """Guards against a function's defaults being ignored (x_plus_sin drawn on the book's [0, 5)
    with 50 points) or overriding an explicit setting."""
    m = regress({"data": {"function": "x_plus_sin"}}, tmp_path / "a")
    assert m["n_train"] == 100 and m["n_test"] == 100
    rows = _rows(tmp_path / "a")
    np.testing.assert_allclose([float(r["x"]) for r in rows], np.arange(0, 10, 0.1), atol=1e-5)
    x = np.array([float(r["x"]) for r in rows])
    np.testing.assert_allclose([float(r["y_true"]) for r in rows], x + np.sin(x), atol=1e-5)
    with open(tmp_path / "a" / "train.csv", newline="") as f:
        train = [(float(r["x"]), float(r["y"])) for r in csv.DictReader(f)]
    xt = np.array([a for a, _ in train])
    resid = np.array([b for _, b in train]) - (xt + np.sin(xt))
    assert xt.min() >= 0 and xt.max() < 10 and xt.max() > 5
    assert 0.7 < resid.std() < 1.3  # noise N(0, 1)

    m = regress({"data": {"function": "x_plus_sin", "n_train": 30, "x_max": 4.0}}, tmp_path / "b")
    assert m["n_train"] == 30 and m["n_test"] == 40  # arange(0, 4, 0.1)
    with open(tmp_path / "b" / "train.csv", newline="") as f:
        xt = np.array([float(r["x"]) for r in csv.DictReader(f)])
    assert xt.max() < 4  # x_max given; the rest still the function's

    m = regress({}, tmp_path / "c")
    assert (m["n_train"], m["n_test"]) == (50, 50)  # sin_pow: the book's
    assert functions.get("sin_pow").settings()["noise"] == 0.5


# --- CSV: fit on all points (statsmodels' usage) -------------------------------------------


def test_test_fraction_0_with_loo_gives_statsmodels_cv_ls_bandwidth(tmp_path):
    """statsmodels ``KernelReg(y, x, var_type='c', reg_type='lc', bw='cv_ls')`` on the same file.

    Guards against test_fraction=0 still holding points out (the LOO bandwidth would come from
    fewer points), against test_mse not being the in-sample MSE at that bandwidth, and against
    loo_mse not being the exact leave-one-out error."""
    kr_mod = pytest.importorskip("statsmodels.nonparametric.kernel_regression")
    path = tmp_path / "points.csv"
    x, y = _points_csv(path, n=60, seed=1)
    r = CliRunner().invoke(
        app,
        ["regress", "-q", "--root", str(tmp_path), f"data.path={path}"]
        + ["data.test_fraction=0", "bandwidth=loo"],
    )
    assert r.exit_code == 0, r.output
    [run] = sorted(p.parent for p in tmp_path.glob("outputs/*/*/metrics.json"))
    m = json.loads((run / "metrics.json").read_text())
    assert m["n_train"] == m["n_test"] == 60
    assert m["mse_against"] == "training observations (in-sample)"

    kr = kr_mod.KernelReg(y, x, var_type="c", reg_type="lc", bw="cv_ls")
    h, h_sm = m["bandwidth"], float(kr.bw[0])
    assert abs(h / h_sm - 1) < 0.01 or plain_loo(x, y, "gaussian", h) <= plain_loo(
        x, y, "gaussian", h_sm
    )
    fit = kr_mod.KernelReg(y, x, var_type="c", reg_type="lc", bw=[h]).fit(x)[0]
    assert m["test_mse"] == pytest.approx(float(np.mean((y - fit) ** 2)), rel=1e-5)
    assert m["loo_mse"] == pytest.approx(plain_loo(x, y, "gaussian", h), rel=1e-6)
    assert "y_observed" in _rows(run)[0]


@pytest.mark.parametrize("pooling", ["average", "nonparametric", "parametric"])
def test_loo_mse_of_a_held_out_csv_run_is_the_exact_leave_one_out_error(tmp_path, pooling):
    """Guards against loo_mse computed at another bandwidth or on other points than the run's
    training set (e.g. on all rows of the file)."""
    path = tmp_path / "p.csv"
    _points_csv(path, n=40, seed=2)
    cfg = {"pooling": pooling, "bandwidth": "0.4", "data": {"path": str(path)}}
    m = regress(cfg, tmp_path / "run")
    with open(tmp_path / "run" / "train.csv", newline="") as f:
        train = np.array([[float(r["x"]), float(r["y"])] for r in csv.DictReader(f)])
    assert len(train) == m["n_train"] == 32 and m["mse_against"] == "held-out observations"
    x, y = train[:, 0], train[:, 1]
    if pooling == "average":
        want = np.mean([(y[i] - np.delete(y, i).mean()) ** 2 for i in range(len(y))])
    else:
        want = plain_loo(x, y, "gaussian", m["bandwidth"])
    assert m["loo_mse"] == pytest.approx(want, rel=1e-4)  # train.csv keeps 6 digits


# --- attention.json: the heatmap's matrix, for every pooling --------------------------------


@pytest.mark.parametrize("pooling", poolings.names())
@pytest.mark.parametrize("side", [200, 12])
def test_attention_json_is_the_heatmaps_matrix(tmp_path, monkeypatch, pooling, side):
    """Guards against attention.json missing for a pooling, or holding another matrix than the
    one attention.png shows (e.g. before the column aggregation, or with other labels)."""
    shown = {}
    real = regress_mod.plots.plot_attention

    def spy(path, weights, xq, xk, **kw):
        shown.update(weights=weights.clone(), xq=xq.clone(), xk=xk.clone())
        return real(path, weights, xq, xk, **kw)

    monkeypatch.setattr(regress_mod.plots, "plot_attention", spy)
    cfg = {
        "pooling": pooling,
        "kernel": "epanechnikov" if pooling == "nonparametric" else "gaussian",
        "bandwidth": "0.3",
        "train": {"epochs": 2},
        "plot": {"max_heatmap_points": side},
    }
    regress(cfg, tmp_path)
    [sample] = files.read_attention(tmp_path)
    assert (sample.name, sample.kind) == ("test grid", "kernel")
    rows, cols = min(side, 50), min(side, 50)
    assert sample.weights.shape == (1, 1, rows, cols)
    np.testing.assert_allclose(sample.weights[0, 0], shown["weights"].numpy(), atol=1e-5)
    assert sample.queries == files.number_labels(shown["xq"].tolist())
    assert sample.keys == files.number_labels(shown["xk"].tolist())
    np.testing.assert_allclose(sample.weights[0, 0].sum(1), 1.0, atol=1e-4)
    if side == 200:  # no subsampling: the rows are the test grid, the columns the training x
        assert sample.queries == files.number_labels(np.arange(0, 5, 0.1).tolist())


# --- undefined predictions (README: NaN, counted, left out, a warning) ----------------------


def test_compact_kernel_with_too_small_a_bandwidth_reports_undefined_predictions(tmp_path):
    """Guards against undefined (0/0) predictions being filled with a guess, counted wrongly,
    taken into test_mse (which would be NaN), or passed over without the warning line."""
    r = CliRunner().invoke(
        app, ["regress", "--root", str(tmp_path), "--kernel", "boxcar", "--bandwidth", "0.02"]
    )
    assert r.exit_code == 0, r.output
    [run] = sorted(p.parent for p in tmp_path.glob("outputs/*/*/metrics.json"))
    m = json.loads((run / "metrics.json").read_text())
    rows = _rows(run)
    nan_rows = [row for row in rows if row["y_pred"] == "nan"]
    assert 0 < m["undefined_predictions"] == len(nan_rows) < len(rows)
    ok = [(float(row["y_pred"]) - float(row["y_true"])) ** 2 for row in rows if row not in nan_rows]
    assert m["test_mse"] == pytest.approx(float(np.mean(ok)), rel=1e-4)
    [warning] = [line for line in r.output.splitlines() if line.startswith("warning:")]
    assert f"{m['undefined_predictions']} test points" in warning and "boxcar" in warning
    [sample] = files.read_attention(run)  # written: the undefined rows are zeros, not NaN
    zero_rows = int((sample.weights[0, 0].sum(1) == 0).sum())
    assert zero_rows == m["undefined_predictions"]


@pytest.mark.parametrize("threads", [1, 2])
def test_train_threads_is_applied_around_the_run(tmp_path, monkeypatch, threads):
    """Guards against regress's ``train.threads`` being ignored (the frame applies it only if the
    config has it) or recorded without being in force while the pooling runs."""
    seen = []
    real = regress_mod._pool

    def spy(*a, **k):
        seen.append(torch.get_num_threads())
        return real(*a, **k)

    monkeypatch.setattr(regress_mod, "_pool", spy)
    regress({"train": {"threads": threads}}, tmp_path)
    assert seen == [threads]
    assert json.loads((tmp_path / "metrics.json").read_text())["threads"] == threads
