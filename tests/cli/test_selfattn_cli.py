"""``attnrun selfattn`` (both tasks), ``attnrun selfattn demo`` and ``attnrun predict`` from the
command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from attnrun.cli import main

TINY = ["data.n_train=600", "data.n_test=100", "train.epochs=8", "train.batch_size=32",
        "plot.enabled=false", "train.threads=1"]  # fmt: skip
#: A tiny Transformer on the coref corpus: one epoch, seconds on one thread.
TINY_TRANSLATE = ["--layers", "1", "--heads", "2", "--hiddens", "32", "model.ffn_hiddens=64",
                  "train.epochs=1", "data.n_train=300", "data.n_val=40", "data.n_test=40",
                  "train.threads=1", "plot.heatmaps=1"]  # fmt: skip


def _cli(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def _runs(root):
    return sorted(p.parent for p in (root / "outputs").rglob("metrics.json"))


def test_selfattn_trains_then_predict_uses_the_run(tmp_path, capsys):
    """The default task (supervised-pointer) trains, its figures are named supervised in the
    summary and metrics.json, and predict labels the pointer's answer supervised.

    Guards against a pointer figure that stands unlabelled beside the learned ones (a bare
    ``accuracy`` / ``it_attention`` key, a table row or predict line without "supervised") and
    against a default task that is not the selfattn experiment."""
    code, out, err = _cli(["selfattn", "-q", "--root", str(tmp_path), "--layers", "2",
                           "--positional", "sinusoidal", *TINY], capsys)  # fmt: skip
    assert code == 0, err
    assert "selfattn completed: supervised_accuracy=" in out
    assert "supervised_it_attention=" in out and "supervised_it_attention_head=" in out
    (run_dir,) = _runs(tmp_path)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["experiment"] == "selfattn"
    for key in ("supervised_accuracy", "supervised_it_attention", "supervised_it_attention_head",
                "supervised_it_attention_best", "supervised_it_attention_table"):  # fmt: skip
        assert key in metrics, key
    assert not {"accuracy", "it_attention", "it_attention_table"} & set(metrics)
    assert list(metrics["supervised_it_attention_table"])[-1] == "pointer (supervised)"

    sentence = "The dog didn't cross the road because it was too busy ."
    code, out, err = _cli(["predict", str(run_dir), sentence], capsys)
    assert code == 0, err
    assert out.startswith('supervised pointer: "it" refers to "road"') and "files:" in out

    second = "The animal didn't cross the street because it was too tired ."
    code, out, err = _cli(["predict", str(run_dir), sentence, second], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(sentence + "\t") and 'refers to "road"' in lines[0]
    assert lines[1].startswith(second + "\t") and lines[2].startswith("files:")
    folder = Path(lines[2].removeprefix("files: "))
    assert (folder / "prediction_0.json").is_file() and (folder / "prediction_1.json").is_file()

    code, out, err = _cli(["predict", str(run_dir), sentence, "no pronoun here ."], capsys)
    assert code == 2 and "sentence 2" in err and 'no "it"' in err

    code, out, err = _cli(["predict", str(run_dir), "The dog didn't cross the road ."], capsys)
    assert code == 2
    assert err.strip().count("\n") == 0 and 'no "it"' in err

    code, _, err = _cli(["predict", str(tmp_path / "missing"), "it was too busy"], capsys)
    assert code == 2 and "no such run folder" in err and err.strip().count("\n") == 0


def test_demo_writes_its_heatmap_and_viewer(tmp_path, capsys):
    code, out, err = _cli(["selfattn", "demo", "--root", str(tmp_path), "--seed", "1"], capsys)
    assert code == 0, err
    (folder,) = [p for p in (tmp_path / "outputs").glob("*/*") if p.is_dir()]
    assert (folder / "demo.png").is_file() and (folder / "attention.html").is_file()
    assert str(folder / "demo.png") in out


def test_demo_refuses_training_options(tmp_path, capsys):
    code, _, err = _cli(["selfattn", "demo", "--layers", "2", "--root", str(tmp_path)], capsys)
    assert code == 2 and "demo" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--heads", "3"], "multiple of model.num_heads=3"),
        (["--positional", "rope"], "model.positional='rope' is not valid; valid: sinusoidal"),
        (["model.num_layers=abc"], "model.num_layers"),
    ],
)
def test_bad_options_are_one_line_errors_and_make_no_folder(args, message, tmp_path, capsys):
    code, _, err = _cli(["selfattn", "--root", str(tmp_path), *args], capsys)
    assert code == 2
    assert message in err and err.strip().count("\n") == 0
    assert not _runs(tmp_path)


def test_task_translate_trains_the_transformer_on_the_coref_corpus(tmp_path, capsys):
    """``selfattn --task translate`` is ``translate recipe=coref``: the translate experiment, the
    coref dataset, the Transformer, --layers/--heads/--hiddens as its model.* keys, and the
    learned coreference metrics.

    Guards against the task running the supervised selfattn experiment, dropping the recipe
    (the RNN on the default dataset) or losing the typed options on the way."""
    code, out, err = _cli(["selfattn", "--task", "translate", "-q", "--root", str(tmp_path),
                           "--seed", "3", *TINY_TRANSLATE], capsys)  # fmt: skip
    assert code == 0, err
    assert "translate completed" in out
    (run_dir,) = _runs(tmp_path)
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert cfg["dataset"] == "coref" and cfg["model"]["arch"] == "transformer"
    model = cfg["model"]
    assert (model["num_layers"], model["num_heads"], model["num_hiddens"]) == (1, 2, 32)
    assert cfg["seed"] == 3
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["experiment"] == "translate"
    assert 0.0 <= metrics["pronoun_accuracy"] <= 1.0


def test_task_translate_refuses_score(tmp_path, capsys):
    """``--score`` means nothing for the Transformer: one line naming it, exit 2, no folder.

    Guards against a --score that is silently dropped or handed to translate as model.score
    (a config error that does not say why)."""
    code, _, err = _cli(["selfattn", "--task", "translate", "--score", "dot", "--root",
                         str(tmp_path)], capsys)  # fmt: skip
    assert code == 2 and err.strip().count("\n") == 0
    assert "--score has no meaning with --task translate" in err
    assert not (tmp_path / "outputs").exists()


def test_unknown_task_names_the_valid_ones(tmp_path, capsys):
    """Guards against an unknown --task that runs the default experiment, or fails without
    naming the choices."""
    code, _, err = _cli(["selfattn", "--task", "pointer", "--root", str(tmp_path)], capsys)
    assert code == 2 and err.strip().count("\n") == 0
    assert "--task 'pointer' is not valid; valid: supervised-pointer | translate" in err
    assert not (tmp_path / "outputs").exists()


def test_help_points_to_the_learned_task(capsys):
    """Guards against a help text that hides the learned experiment: selfattn --help names
    ``--task translate`` and ``attnrun translate recipe=coref``, and says the default is
    supervised on the antecedent's position."""
    code, out, _ = _cli(["selfattn", "--help"], capsys)
    text = " ".join(out.replace("│", " ").split())
    assert code == 0
    assert "'attnrun selfattn --task translate'" in text
    assert "'attnrun translate recipe=coref'" in text
    assert "trained with cross-entropy on the antecedent's position" in text
