"""``attnrun predict`` on a translate run with words the model never saw: one stderr line per
sentence naming them, ``<unk>`` in ``translations.json`` and in the viewer's tokens, exit 0;
``--strict`` refuses them with one line, exit 2 and no prediction folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attnrun.cli import app
from attnrun.experiments import experiments
from attnrun.runs import files
from attnrun.translate.tokenize import WordTokenizer, unknown_words

runner = CliRunner()

TINY = {
    "data": {"n_train": 120, "n_val": 8, "n_test": 8},
    "model": {"embed_size": 8, "num_hiddens": 8},
    "train": {"epochs": 1, "batch_size": 32, "threads": 1},
    "decode": {"max_len": 12},
    "plot": {"heatmaps": 1},
}


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("toy")
    experiments.get("translate")(TINY, out)
    return out


def predictions(run: Path) -> list[Path]:
    return sorted((run / "predictions").glob("*/*"))


def test_unknown_words_are_the_ones_encoded_as_unk():
    """Case as typed, each once, punctuation a word of its own; known words never listed."""
    tok = WordTokenizer.train(["the cat likes the house ."], min_freq=1)
    assert unknown_words(tok, "My cat likes MY old house !") == ["My", "MY", "old", "!"]
    assert unknown_words(tok, "The cat likes the house .") == []


def test_unknown_words_warn_once_per_sentence_and_are_marked(toy_run):
    known = "the dog sees a cat ."
    r = runner.invoke(app, ["predict", str(toy_run), "my dog sees a zebra .", known, "hello world"])
    assert r.exit_code == 0, r.output
    warnings = r.stderr.strip().splitlines()
    assert warnings == [
        "attnrun: warning: sentence 1: word(s) the model never saw, read as <unk>: my, zebra "
        "(--strict refuses them)",
        "attnrun: warning: sentence 3: word(s) the model never saw, read as <unk>: hello, world "
        "(--strict refuses them)",
    ]
    [folder] = predictions(toy_run)
    rows = json.loads((folder / "translations.json").read_text())
    assert [r["unknown"] for r in rows] == [["my", "zebra"], [], ["hello", "world"]]
    assert rows[0]["model_input"] == "<unk> dog sees a <unk> ."
    assert rows[1]["model_input"] == known
    tokens = {s.name: s.keys for s in files.read_attention(folder)}
    assert tokens["sentence 0"][:5] == ["<unk>", "dog", "sees", "a", "<unk>"]
    assert "<unk>" not in tokens["sentence 1"]


def test_strict_refuses_with_one_line_and_leaves_no_folder(toy_run, tmp_path):
    run = shutil.copytree(toy_run, tmp_path / "run", ignore=shutil.ignore_patterns("predictions"))
    before = sorted(run.rglob("*"))
    r = runner.invoke(
        app, ["predict", str(run), "--strict", "the dog sees a cat .", "my cat sees a dog ."]
    )
    assert r.exit_code == 2, r.output
    assert r.stderr == (
        "attnrun: error: sentence 2: word(s) the model never saw: my (without --strict they are "
        "translated as <unk>)\n"
    )
    assert sorted(run.rglob("*")) == before, "a refused prediction left a folder"


def test_strict_with_known_words_translates(toy_run):
    r = runner.invoke(app, ["predict", str(toy_run), "--strict", "the dog sees a cat ."])
    assert r.exit_code == 0 and r.stderr == "", r.output
    assert r.stdout.startswith("the dog sees a cat .\t")
