"""attnrun.serve.runs in process: the regress engine's poolings, the head switch's checks, and
the limits, against plain formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnrun.core.heads import Head
from attnrun.serve.answers import HeadSwitch
from attnrun.serve.engines import RegressEngine
from attnrun.serve.requests import PredictRequest, RequestError
from attnrun.serve.runs import load_runs


@pytest.fixture(scope="module")
def regress_runs(tmp_path_factory):
    from attnrun.experiments.regress import run as regress

    root = tmp_path_factory.mktemp("regress_runs")
    for pooling in ("parametric", "average"):
        regress({"pooling": pooling, "train": {"threads": 1}}, root / pooling)
    return root


def test_parametric_run_serves_its_learned_bandwidth(regress_runs):
    """Guards the parametric path: h = 1/|w| of model.pt (the run's recorded bandwidth), and the
    weights of a query are the Gaussian kernel's at that h."""
    import json

    metrics = json.loads((regress_runs / "parametric" / "metrics.json").read_text())
    engine = RegressEngine(regress_runs / "parametric", metrics)
    assert engine.bandwidth == pytest.approx(metrics["bandwidth"], rel=1e-6)
    got = engine.predict(PredictRequest(run="r1", query=1.5))
    x = np.array(got["train"]["x"])
    k = np.exp(-0.5 * ((1.5 - x) / engine.bandwidth) ** 2)
    np.testing.assert_allclose(got["weights"], k / k.sum(), atol=1e-6)


def test_average_pooling_has_uniform_weights_and_no_bandwidth(regress_runs):
    import json

    metrics = json.loads((regress_runs / "average" / "metrics.json").read_text())
    engine = RegressEngine(regress_runs / "average", metrics)
    got = engine.predict(PredictRequest(run="r1", query=1.0))
    n = len(got["train"]["x"])
    assert got["weights"] == [round(1 / n, 6)] * n and got["bandwidth"] is None
    assert got["prediction"] == pytest.approx(float(np.mean(got["train"]["y"])), abs=1e-6)
    with pytest.raises(RequestError, match="no bandwidth"):
        engine.predict(PredictRequest(run="r1", bandwidth=0.5))


def test_load_runs_skips_a_damaged_regress_run_with_one_line(regress_runs, tmp_path):
    """Guards train.csv checks: a malformed table is a skipped run named once."""
    import shutil

    shutil.copytree(regress_runs / "average", tmp_path / "bad")
    (tmp_path / "bad" / "train.csv").write_text("x,y\n1,2\nthree,4\n")
    runs, skipped = load_runs([tmp_path], torch.device("cpu"))
    assert runs == [] and len(skipped) == 1 and "train.csv: unreadable" in skipped[0]


def test_head_switch_names_kinds_and_refuses_unknown_heads():
    """Guards the switch on each model family: the Transformer's heads are gated, an RNN's one
    attention is replaced by uniform weights, unknown kinds/heads are one-line errors."""
    from attnrun.translate.models.transformer import TransformerSeq2Seq

    model = TransformerSeq2Seq(11, 13, num_hiddens=16, num_heads=4, num_layers=2, ffn_hiddens=24)
    switch = HeadSwitch(model)
    assert switch.kinds() == {"encoder_self": [4, 4], "cross": [4, 4], "decoder_self": [4, 4]}
    iv = switch.interventions([Head("cross", 1, 3)])
    assert iv.gates[("cross", 1)].tolist() == [1, 1, 1, 0] and not iv.weights
    assert switch.interventions([]) is None
    with pytest.raises(RequestError, match="valid"):
        switch.interventions([Head("self", 0, 0)])
    with pytest.raises(RequestError, match="heads 1..4"):
        switch.interventions([Head("cross", 0, 4)])
