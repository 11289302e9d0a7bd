"""Predicting with a trained selfattn run; clear errors for bad folders, files and sentences."""

from __future__ import annotations

import json
import shutil

import pytest

from attnrun.errors import DataError
from attnrun.experiments.selfattn import run
from attnrun.predictors import predict, predicting_experiments

TINY = {
    "data": {"n_train": 600, "n_test": 100},
    "train": {"epochs": 8, "batch_size": 32, "lr": 0.005, "threads": 1},
    "plot": {"enabled": False},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained")
    run(TINY, out)
    return out


@pytest.fixture
def copy(trained, tmp_path):
    """A private copy of the trained run to damage."""
    dst = tmp_path / "run"
    shutil.copytree(trained, dst)
    return dst


def test_selfattn_is_registered():
    import attnrun.experiments  # noqa: F401

    assert "selfattn" in predicting_experiments()


def test_predicts_the_antecedent_and_writes_a_new_folder_each_time(trained):
    """road for "busy", dog for "tired" (right for seeds 0-4 × train.threads 1, 2 with this
    budget, held-out accuracy 0.80 at the worst, measured 2026-12-01); each call its own folder."""
    text = "The dog didn't cross the road because it was too busy ."
    first, folder = predict(trained, text)
    assert first.lines[0].startswith('supervised pointer: "it" refers to "road"')
    assert folder.parent.parent == trained / "predictions"
    for name in ("attention.html", "attention_heads.png", "prediction.json"):
        assert (folder / name).is_file()
    data = json.loads((folder / "prediction.json").read_text())
    assert data["antecedent"] == "road" and data["tokens"][data["it_index"]] == "it"
    assert data["answered_by"].startswith("supervised pointer")
    second, folder2 = predict(trained, text.replace("busy", "tired"))
    assert folder2 != folder and (folder / "prediction.json").is_file()
    assert 'refers to "dog"' in second.lines[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("The dog didn't cross the road .", 'no "it"'),
        ("it was too busy and it was too wide", '2 "it"s'),
        ("The zebra didn't cross the autobahn because it was too busy .",
         "unknown word\\(s\\) 'zebra', 'autobahn'"),
        ("   ", "empty"),
    ],
)  # fmt: skip
def test_bad_sentences_say_what_is_wrong(trained, text, message):
    before = (
        set((trained / "predictions").rglob("*")) if (trained / "predictions").exists() else set()
    )
    with pytest.raises(DataError, match=message):
        predict(trained, text)
    after = (
        set((trained / "predictions").rglob("*")) if (trained / "predictions").exists() else set()
    )
    assert {p for p in after - before if p.is_file()} == set()


def test_a_run_made_before_the_supervised_names_still_predicts(copy):
    """Guards against predict reading only the new ``supervised_it_attention_best`` key: a run
    whose metrics.json has the names of before the rename (``it_attention_best`` ...) predicts."""
    metrics = json.loads((copy / "metrics.json").read_text())
    old = {k.removeprefix("supervised_"): v for k, v in metrics.items()}
    assert "it_attention_best" in old and "supervised_it_attention_best" not in old
    (copy / "metrics.json").write_text(json.dumps(old))
    result, folder = predict(copy, "The dog didn't cross the road because it was too busy .")
    assert 'refers to "road"' in result.lines[0] and (folder / "prediction.json").is_file()


def test_missing_folder_and_unfinished_run(tmp_path, copy):
    with pytest.raises(DataError, match="no such run folder"):
        predict(tmp_path / "nope", "it was too busy")
    metrics = json.loads((copy / "metrics.json").read_text())
    (copy / "metrics.json").write_text(json.dumps({**metrics, "status": "running"}))
    with pytest.raises(DataError, match="the run is running, not completed"):
        predict(copy, "the dog didn't cross the road because it was too busy .")


def test_other_experiments_are_refused_by_name(copy):
    metrics = json.loads((copy / "metrics.json").read_text())
    (copy / "metrics.json").write_text(json.dumps({**metrics, "experiment": "regress"}))
    with pytest.raises(DataError, match="cannot predict with a 'regress' run; predict supports"):
        predict(copy, "it")


def test_truncated_or_tampered_model_is_refused(copy):
    text = "the dog didn't cross the road because it was too busy ."
    data = (copy / "model.pt").read_bytes()
    (copy / "model.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="model.pt: does not match the checksum"):
        predict(copy, text)
    # without the recorded checksum, the loader itself refuses the truncated archive
    metrics = json.loads((copy / "metrics.json").read_text())
    del metrics["model_sha256"]
    (copy / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(DataError, match="model.pt: cannot load"):
        predict(copy, text)


def test_pickled_code_is_refused_without_running(copy, tmp_path):
    import pickle

    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (copy / "model.pt").write_bytes(pickle.dumps(Evil()))
    metrics = json.loads((copy / "metrics.json").read_text())
    del metrics["model_sha256"]
    (copy / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(DataError, match="model.pt: cannot load"):
        predict(copy, "the dog didn't cross the road because it was too busy .")
    assert not marker.exists()


def test_broken_vocab_is_named(copy):
    (copy / "vocab.json").write_text("{not json")
    with pytest.raises(DataError, match="vocab.json: not valid JSON"):
        predict(copy, "the dog didn't cross the road because it was too busy .")
