"""The Multi30k presets ``recipe=multi30k`` and ``recipe=multi30k_rnn`` are the configurations the
benchmarks measured, and a run from one of them works from the command line."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from attnrun.cli.launch import config_dir
from attnrun.experiments import store_schemas

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "multi30k"
#: what a run of a benchmark sets for itself, not the recipe: where the data is, the pair, the
#: threads, the seed
PER_RUN = {"data.root", "data.src", "data.tgt", "train.threads", "seed"}
#: RNN keys the benchmark's Transformer config keeps from the RNN recipe it starts from; the
#: Transformer never reads them (``build_transformer``)
RNN_ONLY = {"score", "decoder", "model.cell", "model.bidirectional", "model.embed_size",
            "model.input_feeding"}  # fmt: skip


def _benchmark(name: str):
    """A script of ``benchmarks/`` as a module; ``sys.path``, which the scripts extend to import
    each other, is restored afterwards."""
    path = ROOT / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    saved = list(sys.path)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _composed(recipe: str) -> dict:
    store_schemas()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("translate", overrides=[f"recipe={recipe}"])
    GlobalHydra.instance().clear()
    return _flat(OmegaConf.to_container(cfg, resolve=True))


def _differences(measured: dict, composed: dict, skip: set[str]) -> dict:
    return {
        key: (value, composed.get(key))
        for key, value in _flat(measured).items()
        if key not in skip and composed.get(key) != value
    }


def test_the_transformer_preset_is_the_measured_pick():
    """``recipe=multi30k`` is ``benchmarks/recipe_ablation.py``'s arm ``dropout0.2_lr0.002`` (the
    recipe, ``last:5``, dropout 0.2, peak rate 0.002) in the 20-minute budget: the configuration
    of the README's figures, key for key. Guards a preset that drifts from what was measured
    (planted: ``train.lr: 0.001`` in the preset; ``warmup_steps`` dropped from it)."""
    ablation = _benchmark("recipe_ablation")
    args = type("Args", (), {"shared": Path("/shared"), "src": "en", "tgt": "fr",
                             "epochs": None, "minutes": 20.0, "threads": 2, "seed": 0,
                             "overrides": []})()  # fmt: skip
    measured = ablation.config(args, "dropout0.2_lr0.002")
    composed = _composed("multi30k")
    assert _differences(measured, composed, PER_RUN | RNN_ONLY) == {}
    assert composed["model.arch"] == "transformer" and composed["train.max_minutes"] == 20


def test_the_rnn_preset_is_the_measured_rnn_recipe():
    """``recipe=multi30k_rnn`` is ``benchmarks/quality_translate.py``'s ``RECIPE`` with its
    default 20 minutes, key for key (the Luong RNN whose 56.0 the docs quote). Guards the same
    drift for the RNN (planted: ``model.dropout: 0.2``)."""
    quality = _benchmark("quality_translate")
    measured = json.loads(json.dumps(quality.RECIPE))
    measured["train"]["max_minutes"] = 20
    composed = _composed("multi30k_rnn")
    assert _differences(measured, composed, PER_RUN) == {}
    assert composed["model.arch"] == "rnn" and composed["train.average"] == "none"


def test_presets_leave_every_option_open():
    """Any option still overrides a preset: ``data.tgt=de train.max_minutes=60`` win over it."""
    store_schemas()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose(
            "translate", overrides=["recipe=multi30k", "data.tgt=de", "train.max_minutes=60"]
        )
    GlobalHydra.instance().clear()
    assert cfg.data.tgt == "de" and cfg.train.max_minutes == 60 and cfg.model.dropout == 0.2


@pytest.mark.skipif(not (DATA / "train.en.gz").is_file(), reason=f"no Multi30k files in {DATA}")
def test_a_run_from_the_transformer_preset(tmp_path, monkeypatch):
    """``attnrun translate recipe=multi30k data.root=DIR`` trains the Transformer on Multi30k and
    keeps the mean of the last epochs' weights, as its README line says (sizes shrunk here so it
    takes seconds; the preset's own keys stay: ``last:5``, bf16, label smoothing, beam 5)."""
    from attnrun.cli.app import main

    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    argv = ["translate", "--quiet", "recipe=multi30k", f"data.root={DATA}",
            "data.n_train=300", "data.n_val=10", "model.num_hiddens=32", "model.ffn_hiddens=64",
            "model.num_layers=1", "train.epochs=2", "train.threads=1", "decode.max_len=12",
            f"hydra.run.dir={run}"]  # fmt: skip
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0
    metrics = json.loads((run / "metrics.json").read_text())
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert metrics["status"] == "completed" and metrics["decoder"] == "transformer"
    assert metrics["test_split"] == "test_2016_flickr" and metrics["test_sentences"] == 1000
    assert metrics["weights"].startswith("mean of the weights of epochs 1-2"), metrics["weights"]
    assert config["train"]["average"] == "last:5" and config["decode"]["beam"] == 5
