"""``attnrun selfattn``, ``attnrun selfattn demo`` and ``attnrun predict`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attnrun.cli import main

TINY = ["data.n_train=600", "data.n_test=100", "train.epochs=8", "train.batch_size=32",
        "plot.enabled=false"]  # fmt: skip


def _cli(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def _runs(root):
    return sorted(p.parent for p in (root / "outputs").rglob("metrics.json"))


def test_selfattn_trains_then_predict_uses_the_run(tmp_path, capsys):
    code, out, err = _cli(["selfattn", "-q", "--root", str(tmp_path), "--layers", "2",
                           "--positional", "sinusoidal", *TINY], capsys)  # fmt: skip
    assert code == 0, err
    assert "selfattn completed: accuracy=" in out and "it_attention=" in out
    (run_dir,) = _runs(tmp_path)
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"

    sentence = "The dog didn't cross the road because it was too busy ."
    code, out, err = _cli(["predict", str(run_dir), sentence], capsys)
    assert code == 0, err
    assert 'refers to "road"' in out and "files:" in out

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
