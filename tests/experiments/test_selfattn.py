"""The selfattn experiment called directly: metrics, artefacts, validation, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from attnrun.cli.launch import config_dir
from attnrun.errors import ConfigError
from attnrun.experiments import experiments, store_schemas
from attnrun.experiments.selfattn import MOTIVATING, SelfAttnConfig, run
from attnrun.runs.files import read_attention
from attnrun.selfattn.data import templates, tokenize
from attnrun.selfattn.predict import load_trained
from attnrun.selfattn.train import read_sentence

TINY = {
    "data": {"n_train": 600, "n_test": 200},
    "model": {"num_hiddens": 32, "num_heads": 4},
    "train": {"epochs": 8, "batch_size": 32, "lr": 0.005, "threads": 1},
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("selfattn")
    return out, run(TINY, out)


def test_registered_with_its_key_metrics():
    """Guards against a headline figure of the supervised pointer named like a learned one."""
    exp = experiments.get("selfattn")
    assert exp.config_class is SelfAttnConfig
    assert exp.key_metrics[:2] == ("supervised_accuracy", "supervised_it_attention")
    assert all(name.startswith("supervised_") for name in exp.key_metrics)


def test_metrics_and_artefacts(tiny_run):
    """Metrics and files of a tiny run. The learning thresholds sit below the worst of seeds 0-4
    × train.threads 1, 2 (measured 2026-12-01): accuracy 0.875 (seed 0), it_attention 0.884.

    Every figure that includes the pointer (trained on the answer) is named supervised: guards
    against a bare ``accuracy`` / ``it_attention*`` key or an unlabelled pointer row."""
    out, metrics = tiny_run
    assert metrics["supervised_accuracy"] >= 0.75  # a tiny budget; the defaults reach >= 0.95
    assert metrics["supervised_it_attention"] >= 0.6
    table = metrics["supervised_it_attention_table"]
    assert list(table) == ["layer 1", "layer 2", "pointer (supervised)"]
    assert all(len(row) == 4 for row in table.values())
    layer, head = metrics["supervised_it_attention_best"]
    assert list(table.values())[layer][head] == metrics["supervised_it_attention"]
    assert metrics["supervised_it_attention_head"] == f"{list(table)[layer]}, head {head + 1}"
    assert metrics["it_attention_blocks_max"] == max(max(r) for r in list(table.values())[:-1])
    unlabelled = {"accuracy", "train_accuracy", "pointer_gate"} | {
        k for k in metrics if k.startswith("it_attention") and k != "it_attention_blocks_max"
    }
    assert not unlabelled & set(metrics)
    record = json.loads((out / "metrics.json").read_text())
    assert record["status"] == "completed" and record["experiment"] == "selfattn"
    assert record["supervised_accuracy"] == metrics["supervised_accuracy"]
    for name in ("config.yaml", "model.pt", "vocab.json", "attention.html", "attention_heads.png",
                 "attention_wide.html", "attention_wide_heads.png", "positional_encoding.png",
                 "positional_encoding_heatmap.png"):  # fmt: skip
        assert (out / name).is_file(), name
    state = torch.load(out / "model.pt", weights_only=True)
    assert isinstance(state, dict) and "gate_logits" in state


def test_attention_samples_of_the_motivating_sentences(tiny_run):
    """attention.json holds, per motivating sentence, the trained model's own reading of it in
    every layer and head, focused on "it" and opened at the best layer.

    Guards against samples that are not written, drop the pointer layer, focus on another row
    than "it", open another layer than the best, or hold other weights than the saved model's."""
    out, metrics = tiny_run
    samples = [s for s in read_attention(out) if s.kind == "self"]
    assert [s.name for s in samples] == [name for name, _, _ in MOTIVATING] == ["tired", "wide"]
    model, vocab = load_trained(out, metrics["model_sha256"])
    for sample, (_, _, sentence) in zip(samples, MOTIVATING):
        tokens = tokenize(sentence)
        assert sample.kind == "self" and sample.queries == sample.keys == tokens
        assert sample.weights.shape == (3, 4, len(tokens), len(tokens))
        assert sample.layer_names == ["layer 1", "layer 2", "pointer (supervised)"]
        assert sample.focus == tokens.index("it")
        assert sample.layer == metrics["supervised_it_attention_best"][0]
        reading = read_sentence(model, vocab, tokens, torch.device("cpu"))
        np.testing.assert_allclose(sample.weights, reading.attention.numpy(), atol=1e-5)
        answer = tokens[reading.prediction]
        assert sample.title == f"{' '.join(tokens)}  →  supervised pointer: it = {answer}"
    # the model learned the motivating pair (animal / street for seeds 0-4 × train.threads 1, 2,
    # measured 2026-12-01), so the two samples point at different nouns
    assert [s.title.rsplit(" ", 1)[-1] for s in samples] == ["animal", "street"]


def test_attention_json_holds_the_blocks_rollout_focused_on_it(tiny_run):
    """Guards the rollout sample (Abnar & Zuidema 2020): over the encoder blocks only (the
    supervised pointer left out), bottom layer first, focused on "it"."""
    out, _ = tiny_run
    samples = read_attention(out)
    selfs = {s.name: s for s in samples if s.kind == "self"}
    rolls = [s for s in samples if s.kind == "encoder_rollout"]
    assert [s.name for s in rolls] == ["tired encoder_rollout", "wide encoder_rollout"]
    for roll in rolls:
        w = selfs[roll.name.split()[0]].weights[:-1]  # (blocks, heads, T, T)
        want = np.eye(w.shape[-1])
        for layer in w:
            a = 0.5 * np.eye(w.shape[-1]) + 0.5 * layer.mean(0)
            want = (a / a.sum(1, keepdims=True)) @ want
        np.testing.assert_allclose(roll.weights[0, 0], want, atol=2e-5)
        assert roll.focus == roll.queries.index("it")


def test_same_seed_same_metrics_and_samples_without_plots(tiny_run, tmp_path):
    """The same seed gives the same metrics, weights and attention samples; with
    ``plot.enabled=false`` the samples (data) are still written, the figures are not.

    Guards against writing attention.json only when plotting."""
    _, first = tiny_run
    again = run({**TINY, "plot": {"enabled": False}}, tmp_path)
    for key in ("supervised_accuracy", "supervised_it_attention",
                "supervised_it_attention_table", "train_loss"):  # fmt: skip
        assert again[key] == first[key], key
    # (the archive bytes differ: torch.save names the archive after the temporary file)
    a = torch.load(tiny_run[0] / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "model.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    plotted, unplotted = read_attention(tiny_run[0]), read_attention(tmp_path)
    assert [s.to_json() for s in unplotted] == [s.to_json() for s in plotted]
    assert not list(tmp_path.glob("*.png")) and not list(tmp_path.glob("*.html"))


def _compose(overrides=()):
    store_schemas()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(config_dir()), version_base="1.3"):
            cfg = compose(config_name="selfattn", overrides=list(overrides))
    finally:
        GlobalHydra.instance().clear()
    return experiments.get("selfattn").make_config(cfg)


def test_yaml_defaults_agree_with_the_dataclass():
    """configs/selfattn.yaml and SelfAttnConfig give the same defaults (guards against a value
    changed in one of the two, e.g. train.threads or train.lr edited in the YAML only)."""
    assert _compose() == SelfAttnConfig()


def test_templates_default_to_every_registered_one(monkeypatch):
    """A template added to the registry is in the default run without touching the YAML, and
    ``data.templates=[plain,passive]`` still picks two (guards against the YAML repeating the
    registry's names)."""
    monkeypatch.setitem(templates._items, "extra", templates.get("plain"))
    assert _compose().data.templates == templates.names()
    assert "extra" in templates.names()
    assert _compose(["data.templates=[plain,passive]"]).data.templates == ["plain", "passive"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"model": {"num_heads": 3}}, r"model\.num_hiddens=32 .*multiple of model\.num_heads=3"),
        ({"model": {"num_layers": 0}}, r"model\.num_layers=0 .*1\.\.6"),
        ({"model": {"positional": "rope"}},
         r"model\.positional='rope' is not valid; valid: sinusoidal, learned"),
        ({"model": {"score": "nope"}}, r"model\.score='nope' is not valid; valid: .*scaled_dot"),
        ({"data": {"templates": ["plain", "odd"]}},
         r"data\.templates='odd' is not valid; valid: plain, fronted, passive, distractor"),
        ({"data": {"templates": []}}, r"data\.templates=\[\] is not valid; allowed: a non-empty"),
        ({"data": {"heldout_fraction": 1.5}}, r"data\.heldout_fraction=1\.5 is not valid"),
        ({"train": {"lr": 0}}, r"train\.lr=0\.0 is not valid; allowed: a number > 0"),
        ({"train": {"threads": -1}}, r"train\.threads=-1 is not valid"),
    ],
)  # fmt: skip
def test_bad_values_fail_before_any_work(override, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        run(override, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_slowdown_hint_is_printed_once_per_run(tmp_path, monkeypatch, capsys):
    """Guards the wiring of attnrun/throughput.py into selfattn's loop (batches timed between
    step callbacks): every window judged slow on a busy machine gives exactly one hint line."""
    import attnrun.experiments.selfattn as module
    import attnrun.throughput as tp

    monkeypatch.setattr(tp, "SLOW_FRACTION", 10.0)
    for name in ("BASELINE_SECONDS", "WINDOW_SECONDS"):
        monkeypatch.setattr(tp, name, 0.0)
    monkeypatch.setattr(
        module, "watch_for", lambda device, unit: tp.ThroughputWatch(2, 1, unit, lambda: 99)
    )
    cfg = {**TINY, "data": {"n_train": 200, "n_test": 50}, "plot": {"enabled": False}}
    cfg["train"] = {**TINY["train"], "epochs": 2}
    experiments.get("selfattn")(cfg, tmp_path, quiet=False)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "train.threads=1" in ln]
    assert len(lines) == 1 and "batches/s" in lines[0]


SMALL = {
    "data": {"n_train": 200, "n_test": 100},
    "model": {"num_layers": 1, "num_hiddens": 16, "ffn_hiddens": 16, "num_heads": 2},
    "train": {"epochs": 4, "batch_size": 32, "threads": 1},
    "plot": {"enabled": False},
}


def test_last_n_saves_and_evaluates_the_mean_of_the_last_epochs(tmp_path, monkeypatch):
    """``train.average=last:2``: model.pt is the plain mean of the raw weights saved at the end of
    epochs 3 and 4 (captured from the checkpoint saves), buffers those of epoch 4; metrics.json
    says so and keeps the raw weights' held-out accuracy. Planted: the averaged weights never put
    into the model (the raw ones saved) fails."""
    from attnrun.runs.checkpoint import Checkpointer
    from attnrun.runs.files import safe_load

    epochs: dict[int, dict[str, torch.Tensor]] = {}
    real_save = Checkpointer.save

    def save(self, epoch, model, *a, **k):
        epochs[epoch] = {n: v.detach().clone() for n, v in model.state_dict().items()}
        real_save(self, epoch, model, *a, **k)

    monkeypatch.setattr(Checkpointer, "save", save)
    cfg = {**SMALL, "train": {**SMALL["train"], "average": "last:2"}}
    m = run(cfg, tmp_path / "last2")
    saved = safe_load(tmp_path / "last2" / "model.pt")
    params = {n for n, _ in load_trained(tmp_path / "last2", None)[0].named_parameters()}
    for key, value in saved.items():
        expected = (epochs[3][key] + epochs[4][key]) / 2 if key in params else epochs[4][key]
        torch.testing.assert_close(value, expected)
    assert m["weights"] == "mean of the weights of epochs 3-4 (train.average=last:2)"
    assert m["averaged_epochs"] == [3, 4] and 0 <= m["raw_supervised_accuracy"] <= 1


def test_last_1_is_no_averaging(tmp_path):
    plain = run(SMALL, tmp_path / "none")
    one = run({**SMALL, "train": {**SMALL["train"], "average": "last:1"}}, tmp_path / "one")
    assert one["model_sha256"] == plain["model_sha256"]
    assert one["supervised_accuracy"] == plain["supervised_accuracy"]
    assert one["raw_supervised_accuracy"] == plain["supervised_accuracy"]
    assert plain["weights"] == "raw weights of epoch 4"
