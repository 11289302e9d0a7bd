"""A translate run trained on CUDA, end to end (``device=cuda``): the run writes its record, its
``model.pt`` reloaded on the CPU decodes what CUDA decodes, and ``attnrun serve``'s engine on CUDA
answers like the CPU engine, also with a head switched off. Runs only with a GPU."""

from __future__ import annotations

import json
import math

import pytest
import torch

from attnrun.core.heads import Head

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

SENTENCE = "the cat didn't cross the street because it was too tired ."


def _close(a, b, path: str = "") -> None:
    """Equal JSON answers: every string and token equal, every number within 1e-3."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, (int, float)):
        assert math.isclose(a, b, abs_tol=1e-3), (path, a, b)
    else:
        assert a == b, (path, a, b)


@pytest.fixture(scope="module")
def cuda_run(tmp_path_factory):
    from attnrun.experiments.translate import run as translate

    run_dir = tmp_path_factory.mktemp("cuda") / "run"
    cfg = {
        "dataset": "coref",
        "device": "cuda",
        "data": {"n_train": 300, "n_val": 30, "n_test": 30},
        "model": {"arch": "transformer", "num_hiddens": 32, "num_heads": 2,
                  "ffn_hiddens": 64, "num_layers": 2},
        "train": {"epochs": 2, "threads": 1},
        "plot": {"heatmaps": 1},
    }  # fmt: skip
    metrics = translate(cfg, run_dir)
    return run_dir, metrics


def test_cuda_run_records_and_reloads_on_the_cpu(cuda_run):
    """Guards the run contract on the GPU: metrics written, ``model.pt`` loadable on a machine
    without CUDA (saved tensors not pinned to ``cuda:0``), and greedy output equal on both."""
    from attnrun.translate.translator import Translator

    run_dir, metrics = cuda_run
    assert json.loads((run_dir / "metrics.json").read_text())["epochs_run"] == 2
    assert "bleu" in metrics
    got = {}
    for dev in ("cpu", "cuda"):
        translator = Translator.from_run(run_dir, torch.device(dev))
        assert next(translator.model.parameters()).device.type == dev
        got[dev] = translator.translate([SENTENCE, "the dog was tired ."])[0]
    assert got["cpu"] == got["cuda"]


@pytest.mark.parametrize("heads", [(), (Head("cross", 1, 0), Head("encoder_self", 0, 1))])
def test_serve_engine_on_cuda_answers_like_the_cpu(cuda_run, heads):
    """``attnrun serve --device cuda``'s engine: the same translation, attention and rollout as
    the CPU's, with and without heads switched off (the interventions follow the device)."""
    from attnrun.serve.engines import TranslateEngine
    from attnrun.serve.requests import PredictRequest

    run_dir, _ = cuda_run
    req = PredictRequest(run="r1", text=SENTENCE, beam=1, heads=heads)
    cpu = TranslateEngine(run_dir, torch.device("cpu")).predict(req)
    gpu = TranslateEngine(run_dir, torch.device("cuda")).predict(req)
    _close(gpu, cpu)
    if heads:
        intact = TranslateEngine(run_dir, torch.device("cpu")).predict(
            PredictRequest(run="r1", text=SENTENCE, beam=1)
        )
        assert intact["attention"] != cpu["attention"]  # the switch did something
