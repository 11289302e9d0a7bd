"""The selfattn experiment called directly: metrics, artefacts, validation, determinism."""

from __future__ import annotations

import json

import pytest
import torch

from attnrun.errors import ConfigError
from attnrun.experiments import experiments
from attnrun.experiments.selfattn import SelfAttnConfig, run

TINY = {
    "data": {"n_train": 600, "n_test": 200},
    "model": {"num_hiddens": 32, "num_heads": 4},
    "train": {"epochs": 8, "batch_size": 32, "lr": 0.005},
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("selfattn")
    return out, run(TINY, out)


def test_registered_with_its_key_metrics():
    exp = experiments.get("selfattn")
    assert exp.config_class is SelfAttnConfig
    assert exp.key_metrics[:2] == ("accuracy", "it_attention")


def test_metrics_and_artefacts(tiny_run):
    out, metrics = tiny_run
    assert metrics["accuracy"] >= 0.85  # a tiny budget; the defaults reach >= 0.95
    assert metrics["it_attention"] >= 0.6
    table = metrics["it_attention_table"]
    assert list(table) == ["layer 1", "layer 2", "pointer"]
    assert all(len(row) == 4 for row in table.values())
    layer, head = metrics["it_attention_best"]
    assert list(table.values())[layer][head] == metrics["it_attention"]
    assert metrics["it_attention_head"] == f"{list(table)[layer]}, head {head + 1}"
    record = json.loads((out / "metrics.json").read_text())
    assert record["status"] == "completed" and record["experiment"] == "selfattn"
    assert record["accuracy"] == metrics["accuracy"]
    for name in ("config.yaml", "model.pt", "vocab.json", "attention.html", "attention_heads.png",
                 "attention_wide.html", "attention_wide_heads.png", "positional_encoding.png",
                 "positional_encoding_heatmap.png"):  # fmt: skip
        assert (out / name).is_file(), name
    state = torch.load(out / "model.pt", weights_only=True)
    assert isinstance(state, dict) and "gate_logits" in state


def test_same_seed_same_metrics(tiny_run, tmp_path):
    _, first = tiny_run
    again = run({**TINY, "plot": {"enabled": False}}, tmp_path)
    for key in ("accuracy", "it_attention", "it_attention_table", "train_loss"):
        assert again[key] == first[key], key
    # (the archive bytes differ: torch.save names the archive after the temporary file)
    a = torch.load(tiny_run[0] / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "model.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"model": {"num_heads": 3}}, r"model\.num_hiddens=32 .*multiple of model\.num_heads=3"),
        ({"model": {"num_layers": 0}}, r"model\.num_layers=0 .*1\.\.6"),
        ({"model": {"positional": "rope"}}, "unknown positional encoding 'rope'"),
        ({"model": {"score": "nope"}}, "unknown score function 'nope'|unknown score 'nope'"),
        ({"data": {"templates": ["plain", "odd"]}}, "unknown template 'odd'"),
        ({"data": {"heldout_fraction": 1.5}}, r"data\.heldout_fraction=1\.5"),
        ({"train": {"lr": 0}}, r"train\.lr=0"),
    ],
)
def test_bad_values_fail_before_any_work(override, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        run(override, tmp_path / "run")
    assert not (tmp_path / "run").exists()
