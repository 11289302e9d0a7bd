"""End to end: tiny toy runs for both decoders, run files, reload, predict, evaluate, configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from attnrun.errors import ConfigError, DataError, TrainingError
from attnrun.experiments import experiments

run = experiments.get("translate")

TINY = {
    "data": {"n_train": 240, "n_val": 16, "n_test": 16},
    "model": {"embed_size": 16, "num_hiddens": 24},
    "train": {"epochs": 2, "batch_size": 32},
    "decode": {"max_len": 20},
    "plot": {"heatmaps": 2},
}


def _tiny(**over):
    cfg = json.loads(json.dumps(TINY))
    for k, v in over.items():
        if isinstance(v, dict):
            cfg.setdefault(k, {}).update(v)
        else:
            cfg[k] = v
    return cfg


@pytest.fixture(scope="module")
def bahdanau_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bahdanau")
    return out, run(_tiny(), out)


def test_bahdanau_toy_run_writes_everything(bahdanau_run):
    out, m = bahdanau_run
    for key in ("bleu", "bleu_lowercase", "chrf", "aer", "perplexity", "train_tokens_per_s"):
        assert key in m
    assert 0.0 <= m["aer"] <= 1.0 and m["train_tokens_per_s"] > 0
    assert m["decoder"] == "bahdanau"
    for name in (
        "config.yaml",
        "metrics.json",
        "model.pt",
        "tokenizer.src.json",
        "tokenizer.tgt.json",
        "translations.tsv",
        "loss.png",
        "attention_0.png",
    ):
        assert (out / name).is_file(), name
    rows = (out / "translations.tsv").read_text().splitlines()
    assert rows[0] == "source\treference\thypothesis\tsentence_bleu"
    assert len(rows) == 17
    state = torch.load(out / "model.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert json.loads((out / "metrics.json").read_text())["status"] == "completed"


@pytest.mark.parametrize(
    "over",
    [
        {
            "score": "general",
            "train": {"precision": "bf16", "lr_schedule": "cosine"},
            "model": {"tie_embeddings": True},
        },
        {
            "score": "dot",
            "attention": {"kind": "local_p", "window": 2},
            "model": {"input_feeding": True, "cell": "lstm"},
            "decode": {"beam": 3, "n_best": 2},
        },
        {
            "model": {
                "arch": "transformer",
                "num_heads": 2,
                "ffn_hiddens": 32,
                "positional": "learned",
                "tie_embeddings": True,
            },
            "decode": {"beam": 3, "n_best": 2},
        },  # fmt: skip
    ],
    ids=["luong-global-bf16-tied-cosine", "luong-local_p-feed-lstm-beam", "transformer-beam"],
)
def test_luong_and_transformer_toy_runs(tmp_path, over):
    from attnrun.translate.predict import predict_translate
    from attnrun.translate.translator import Translator

    m = run(_tiny(**over), tmp_path)
    assert m["decoder"] == ("transformer" if "arch" in over["model"] else "luong")
    assert (tmp_path / "translations.tsv").is_file()
    # the saved run reloads (tied weights included) and translates like the run did
    loaded = Translator.from_run(tmp_path)
    dec = loaded.model.decoder
    assert (dec.out.weight is dec.embedding.weight) == over["model"].get("tie_embeddings", False)
    rows = [r.split("\t") for r in (tmp_path / "translations.tsv").read_text().splitlines()[1:3]]
    res = predict_translate(tmp_path, [r[0] for r in rows], tmp_path / "pred")
    assert [r["translation"] for r in res] == [r[2] for r in rows]
    if over.get("decode", {}).get("n_best", 1) > 1:
        assert len(json.loads((tmp_path / "nbest.json").read_text())[0]) == 2


def test_predict_and_evaluate_reuse_the_run(bahdanau_run, tmp_path):
    from attnrun.translate.predict import evaluate_files, predict_translate

    out, _ = bahdanau_run
    res = predict_translate(
        out, ["the dog sees a cat .", "a small bird does not eat ."], tmp_path / "pred"
    )
    assert len(res) == 2 and all(Path(r["heatmap"]).is_file() for r in res)
    (tmp_path / "src.txt").write_text("the dog sees a cat .\na man likes the ball .\n")
    (tmp_path / "ref.txt").write_text("le chien voit un chat .\nun homme aime le balle .\n")
    r1 = evaluate_files(out, tmp_path / "src.txt", tmp_path / "ref.txt")
    r2 = evaluate_files(out, tmp_path / "src.txt", tmp_path / "ref.txt")
    assert r1["translations"] != r2["translations"]  # a new file each time
    assert {"bleu", "bleu_lowercase", "chrf"} <= set(r1)


def test_tampered_checkpoint_is_a_clear_error(bahdanau_run, tmp_path):
    import shutil

    from attnrun.translate.translator import Translator

    load_run = Translator.from_run
    out, _ = bahdanau_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    data = (copy / "model.pt").read_bytes()
    (copy / "model.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="model.pt: cannot load: truncated"):
        load_run(copy)
    torch.save({"x": torch.zeros(2)}, copy / "model.pt")
    with pytest.raises(DataError, match="does not fit"):
        load_run(copy)
    import pickle

    (copy / "model.pt").write_bytes(pickle.dumps(object()))
    with pytest.raises(DataError, match="model.pt"):
        load_run(copy)


def test_nan_loss_is_a_training_error(tmp_path, monkeypatch):
    import attnrun.translate.train as train

    real = train.token_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] > 9 else loss

    monkeypatch.setattr(train, "token_loss", poisoned)
    with pytest.raises(TrainingError, match="loss became nan at epoch 2"):
        run(_tiny(), tmp_path)
    meta = json.loads((tmp_path / "metrics.json").read_text())
    assert meta["status"] == "failed"
    assert (tmp_path / "model.pt").is_file()  # epoch 1's checkpoint stays


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"model": {"dropout": 1.0}}, "model.dropout"),
        ({"model": {"num_hiddens": -4}}, "model.num_hiddens"),
        ({"attention": {"window": 0}}, "attention.window"),
        ({"attention": {"kind": "local"}}, "attention.kind"),
        ({"decode": {"beam": 0}}, "decode.beam"),
        ({"score": "nope"}, "score"),
        ({"dataset": "wmt"}, "dataset"),
        ({"decoder": "transformer"}, "decoder"),
        ({"model": {"arch": "transformer", "num_hiddens": 24, "num_heads": 5}}, "model.num_heads"),
        ({"model": {"arch": "tree"}}, "model.arch"),
        ({"model": {"positional": "rope"}}, "model.positional"),
        ({"train": {"lr": 0}}, "train.lr"),
    ],
)
def test_config_errors_are_one_line(tmp_path, over, match):
    with pytest.raises(ConfigError, match=match) as e:
        run(_tiny(**over), tmp_path)
    assert "\n" not in str(e.value)


def test_tsv_dataset_error_names_file_and_line(tmp_path):
    p = tmp_path / "pairs.tsv"
    p.write_text("a\tb\n" * 5 + "missing tab\n")
    with pytest.raises(DataError, match=r"pairs\.tsv:6: no tab"):
        run(_tiny(dataset="tsv", data={"path": str(p), "n_val": 1, "n_test": 1}), tmp_path / "r")


@pytest.mark.parametrize("attention", ["global", "local_m", "local_p"])
def test_every_config_composes(attention):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from attnrun.cli.launch import config_dir
    from attnrun.experiments import store_schemas

    store_schemas()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose(
            "translate",
            overrides=[
                f"attention={attention}",
                "attention.window=3",
                "score=general",
                "dataset=multi30k",
            ],
        )
    typed = run.make_config(cfg)
    assert typed.attention.kind == attention and typed.attention.window == 3
    GlobalHydra.instance().clear()


def _cli(args: list[str]) -> int:
    from attnrun.cli.app import main

    with pytest.raises(SystemExit) as e:
        main(args)
    return e.value.code


def test_cli_translate_and_evaluate(tmp_path, bahdanau_run, capsys):

    over = [
        "data.n_train=120",
        "data.n_val=8",
        "data.n_test=8",
        "model.embed_size=8",
        "model.num_hiddens=8",
        "train.batch_size=32",
        "decode.max_len=12",
        "plot.heatmaps=1",
    ]
    code = _cli(
        [
            "translate",
            "--score",
            "dot",
            "--attention",
            "local_m",
            "--epochs",
            "1",
            "--quiet",
            "--root",
            str(tmp_path),
            *over,
        ]
    )
    assert code == 0
    out, _ = bahdanau_run
    (tmp_path / "s.txt").write_text("the dog sees a cat .\n")
    (tmp_path / "r.txt").write_text("le chien voit un chat .\n")
    capsys.readouterr()
    assert (
        _cli(
            [
                "evaluate",
                str(out),
                "--src",
                str(tmp_path / "s.txt"),
                "--ref",
                str(tmp_path / "r.txt"),
                "--json",
            ]
        )
        == 0
    )
    obj = json.loads(capsys.readouterr().out.strip())
    assert {"bleu", "bleu_lowercase", "chrf"} <= set(obj)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert _cli(["translate", "--score", "nope", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("attnrun: error:") and "\n" not in err
    assert _cli(["evaluate", str(tmp_path), "--src", "x", "--ref", "y"]) == 2


def test_predict_command_dispatches_to_translate(bahdanau_run):
    from attnrun.predictors import predict

    out, _ = bahdanau_run
    prediction, folder = predict(out, "the dog sees a cat .\na boy likes the ball !")
    assert len(prediction.lines) == 2
    assert prediction.lines[0].startswith("the dog sees a cat .\t")
    assert all(f.is_file() for f in prediction.files)
    assert folder.is_dir()


def test_predict_cli_takes_several_arguments_or_stdin(bahdanau_run, capsys, monkeypatch):
    import io

    out, _ = bahdanau_run
    assert _cli(["predict", str(out), "the dog sees a cat .", "a boy likes the ball !"]) == 0
    lines = capsys.readouterr().out.splitlines()
    sources = [x.split("\t")[0] for x in lines[:2]]
    assert sources == ["the dog sees a cat .", "a boy likes the ball !"]
    assert lines[2].startswith("files: ")
    folder = Path(lines[2].removeprefix("files: "))
    assert (folder / "attention_0.png").is_file() and (folder / "attention_1.png").is_file()

    monkeypatch.setattr("sys.stdin", io.StringIO("the cat sees a dog .\n\na boy runs .\n"))
    assert _cli(["predict", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [x.split("\t")[0] for x in lines[:2]] == ["the cat sees a dog .", "a boy runs ."]

    monkeypatch.setattr("sys.stdin", io.StringIO("\n  \n"))
    assert _cli(["predict", str(out), "-"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no sentence" in err and "\n" not in err


def test_attention_viewer_written_when_available(bahdanau_run):
    pytest.importorskip("attnrun.viz")
    out, _ = bahdanau_run
    assert (out / "attention.html").is_file()
    assert "<script" in (out / "attention.html").read_text()


def test_tatoeba_run_scores_d2l_demo_sentences(tmp_path):
    lines = ["Go.\tVa !", "I lost.\tJ'ai perdu.", "He's calm.\tIl est calme.",
             "I'm home.\tJe suis chez moi."] * 12  # fmt: skip
    (tmp_path / "fra.txt").write_text("".join(x + "\tCC-BY\n" for x in lines), encoding="utf-8")
    m = run(
        _tiny(dataset="tatoeba", data={"path": str(tmp_path / "fra.txt"), "n_val": 4, "n_test": 4}),
        tmp_path / "run",
    )
    demo = m["d2l_demo"]
    assert [d["source"] for d in demo] == ["go .", "i lost .", "he's calm .", "i'm home ."]
    assert all(0.0 <= d["bleu_k2"] <= 1.0 for d in demo)


def test_time_budget_stops_after_the_current_batch(tmp_path):
    m = run(_tiny(train={"epochs": 5, "max_minutes": 1e-6, "label_smoothing": 0.1}), tmp_path)
    assert m["stopped"] == "time_budget"
    assert m["epochs_run"] == 1 and (tmp_path / "model.pt").is_file()
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history) == 1
