"""Finding and reading run folders: attnrun.report.collect."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import write_run

from attnrun.errors import AttnrunError
from attnrun.report.collect import (
    UNREADABLE,
    collect,
    find_run_dirs,
    flatten,
    key_metrics,
    load_run,
    swept_keys,
)


def test_finds_every_job_of_a_sweep_and_skips_hidden_folders(sweep: Path) -> None:
    write_run(sweep / "0" / ".hydra" / "fake", {"seed": 0})  # must not count
    dirs = find_run_dirs([sweep.parent.parent])
    assert sorted(d.name for d in dirs) == [str(i) for i in range(6)]


def test_a_run_folder_itself_and_repeated_paths_count_once(sweep: Path) -> None:
    assert len(find_run_dirs([sweep / "0", sweep, sweep / "0"])) == 6


def test_a_folder_needs_both_files(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "metrics.json").write_text("{}")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "config.yaml").write_text("seed: 0\n")
    assert find_run_dirs([tmp_path]) == []


def test_missing_path_and_empty_folder_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(AttnrunError, match="no such folder"):
        collect([tmp_path / "nope"])
    with pytest.raises(AttnrunError, match="no runs under"):
        collect([tmp_path])


def test_flatten_nested_config() -> None:
    flat = flatten({"a": {"b": 1, "c": {"d": None}}, "e": [1, 2], "f": {}})
    assert flat == {"a.b": 1, "a.c.d": None, "e": "[1, 2]", "f": "{}"}


@pytest.mark.parametrize(
    "text",
    ['{"status": "compl', "", "[1, 2]", '{"experiment": "regress"}', "\xff\xfe"],
    ids=["partial", "empty", "not-an-object", "no-status", "binary"],
)
def test_damaged_metrics_make_an_unreadable_run(tmp_path: Path, text: str) -> None:
    write_run(tmp_path, {"seed": 0, "kernel": "gaussian"})
    (tmp_path / "metrics.json").write_text(text, encoding="latin-1")
    run = load_run(tmp_path)
    assert run.status == UNREADABLE
    assert run.metrics == {}
    assert run.config["kernel"] == "gaussian"


def test_damaged_config_reads_as_empty(tmp_path: Path) -> None:
    write_run(tmp_path, {"seed": 0}, {"test_mse": 1.0})
    (tmp_path / "config.yaml").write_text("a: [unclosed\n")
    run = load_run(tmp_path)
    assert run.config == {}
    assert run.status == "completed"


def test_swept_keys_are_the_differing_ones_without_seed(sweep: Path) -> None:
    runs = collect([sweep])
    assert swept_keys(runs) == ["kernel"]


def test_key_metrics_come_from_the_registry(sweep: Path) -> None:
    from attnrun.experiments import experiments

    runs = collect([sweep])
    assert key_metrics(runs) == list(experiments.get("regress").key_metrics)


def test_declared_key_metrics_no_run_has_are_left_out(tmp_path: Path) -> None:
    """A toy translate run has no coref figures: its report shows no empty pronoun column, a
    coref run's does (guards the column list taken from the registry alone)."""
    write_run(tmp_path / "toy", {"seed": 0}, {"bleu": 90.0, "aer": 0.1}, experiment="translate")
    assert key_metrics(collect([tmp_path])) == ["bleu", "aer"]
    write_run(
        tmp_path / "coref", {"seed": 0}, {"bleu": 99.0, "pronoun_accuracy": 1.0},
        experiment="translate",
    )  # fmt: skip
    assert key_metrics(collect([tmp_path])) == ["bleu", "aer", "pronoun_accuracy"]


def test_unknown_experiment_falls_back_to_numeric_metrics(tmp_path: Path) -> None:
    write_run(
        tmp_path / "r",
        {"seed": 0},
        {"acc": 0.9, "note": "text", "flag": True, "nested": {"x": 1}, "n": 3},
        experiment="not-registered",
    )
    assert key_metrics(collect([tmp_path])) == ["acc", "n"]


def test_started_falls_back_to_folder_time(tmp_path: Path) -> None:
    write_run(tmp_path, {"seed": 0})
    data = json.loads((tmp_path / "metrics.json").read_text())
    data["started_at"] = "yesterday"
    (tmp_path / "metrics.json").write_text(json.dumps(data))
    assert load_run(tmp_path).started.year >= 2024
