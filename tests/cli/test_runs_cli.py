"""`attnrun runs` and `attnrun show` through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from attnrun.cli import app

runner = CliRunner()


def write_run(folder: Path, status: str, minute: int, mse: float | None = 0.5) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(
        yaml.safe_dump({"kernel": "gaussian", "seed": 0, "data": {"n_train": 20}})
    )
    metrics = {
        "status": status,
        "experiment": "regress",
        "seed": 0,
        "started_at": f"2026-01-01T10:{minute:02d}:00+00:00",
    }
    if mse is not None:
        metrics["test_mse"] = mse
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """outputs/ with three single runs and multirun/ with a two-job sweep; cwd is the root."""
    write_run(tmp_path / "outputs/2026-01-01/10-01-00", "completed", 1, 0.25)
    write_run(tmp_path / "outputs/2026-01-01/10-03-00", "failed", 3, None)
    write_run(tmp_path / "outputs/2026-01-01/10-05-00", "running", 5, None)
    write_run(tmp_path / "multirun/2026-01-01/10-02-00/0", "completed", 2, 0.125)
    write_run(tmp_path / "multirun/2026-01-01/10-02-00/1", "interrupted", 4, None)
    (tmp_path / "outputs/2026-01-01/10-01-00/predictions.png").write_bytes(b"x" * 2048)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def lines(out: str) -> list[str]:
    return [ln for ln in out.splitlines() if ln.strip()]


def test_runs_lists_outputs_and_multirun_newest_first(root: Path) -> None:
    r = runner.invoke(app, ["runs"])
    assert r.exit_code == 0, r.output
    head, *rows = lines(r.stdout)
    assert head.split() == ["time", "experiment", "status", "result", "folder"]
    assert [row.split()[-1] for row in rows] == [
        "outputs/2026-01-01/10-05-00",
        "multirun/2026-01-01/10-02-00/1",
        "outputs/2026-01-01/10-03-00",
        "multirun/2026-01-01/10-02-00/0",
        "outputs/2026-01-01/10-01-00",
    ]
    assert "test_mse=0.125" in rows[3] and "completed" in rows[3]


def test_runs_limit_and_status(root: Path) -> None:
    r = runner.invoke(app, ["runs", "--limit", "2"])
    assert len(lines(r.stdout)) == 1 + 2 + 1  # header, 2 rows, "2 of 5 runs"
    assert "2 of 5 runs" in r.stdout
    r = runner.invoke(app, ["runs", "--status", "completed"])
    rows = lines(r.stdout)[1:]
    assert len(rows) == 2 and all("completed" in row for row in rows)
    r = runner.invoke(app, ["runs", "multirun", "-s", "interrupted"])
    assert [row.split()[-1] for row in lines(r.stdout)[1:]] == ["multirun/2026-01-01/10-02-00/1"]


def test_runs_bad_status_and_missing_path_are_one_line_errors(root: Path) -> None:
    r = runner.invoke(app, ["runs", "--status", "done"])
    assert r.exit_code == 2 and "valid: running, completed" in r.stderr
    r = runner.invoke(app, ["runs", "nope"])
    assert r.exit_code == 2 and r.stderr.strip() == "attnrun: error: nope: no such folder"


def test_runs_with_nothing_to_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["runs"])
    assert r.exit_code == 0 and "no runs under outputs multirun" in r.stderr


def test_runs_lists_unreadable_runs(root: Path) -> None:
    (root / "outputs/2026-01-01/10-01-00/metrics.json").write_text("{")
    r = runner.invoke(app, ["runs", "--status", "unreadable"])
    assert r.exit_code == 0
    assert lines(r.stdout)[1].split()[-1] == "outputs/2026-01-01/10-01-00"


def test_show_prints_metrics_and_artefacts_then_the_config_behind_an_option(root: Path) -> None:
    """Guards the order a reader needs: metrics and artefacts first, the long config last and
    only with --config; values printed as they are (a signature's pipes unescaped)."""
    run = root / "outputs/2026-01-01/10-01-00"
    m = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**m, "bleu_signature": "nrefs:1|case:mixed"}))
    r = runner.invoke(app, ["show", "outputs/2026-01-01/10-01-00"])
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "kernel: gaussian" not in out
    assert "config.yaml: 4 lines (attnrun show outputs/2026-01-01/10-01-00 --config)" in out
    assert "  test_mse        0.25" in out and "  status          completed" in out
    assert "  bleu_signature  nrefs:1|case:mixed" in out and "\\|" not in out
    assert "  predictions.png  2.0 KiB" in out
    assert out.index("metrics:") < out.index("artefacts:") < out.index("config.yaml")
    r = runner.invoke(app, ["show", "--config", "outputs/2026-01-01/10-01-00"])
    out = r.stdout
    assert "kernel: gaussian" in out and "n_train: 20" in out
    assert out.index("metrics:") < out.index("artefacts:") < out.index("config.yaml:")


def test_runs_and_show_say_why_a_run_failed(root: Path) -> None:
    run = root / "outputs/2026-01-01/10-03-00"
    m = json.loads((run / "metrics.json").read_text())
    reason = "data/pairs.tsv:3: no tab between source and target " + "x" * 40
    (run / "metrics.json").write_text(json.dumps({**m, "error": reason}))
    r = runner.invoke(app, ["runs", "--status", "failed"])
    [row] = lines(r.stdout)[1:]
    assert "failed  data/pairs.tsv:3: no tab between source and target xxx" in row
    assert row.endswith("…  outputs/2026-01-01/10-03-00"), row
    r = runner.invoke(app, ["show", "outputs/2026-01-01/10-03-00"])
    assert lines(r.stdout)[1] == f"failed: {reason}"


def test_show_unreadable_run(root: Path) -> None:
    (root / "outputs/2026-01-01/10-01-00/metrics.json").write_text('{"status": ')
    r = runner.invoke(app, ["show", "outputs/2026-01-01/10-01-00"])
    assert r.exit_code == 0 and "unreadable" in r.stdout


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("nope", "nope: no such folder"),
        ("multirun/2026-01-01/10-02-00", "is not a run folder but holds 2 runs"),
        ("outputs/2026-01-01/10-01-00/predictions.png", "not a folder"),
    ],
)
def test_show_bad_paths_are_one_line_errors(root: Path, path: str, message: str) -> None:
    (root / "empty").mkdir()
    r = runner.invoke(app, ["show", path])
    assert r.exit_code == 2
    assert message in r.stderr and len(lines(r.stderr)) == 1


def test_show_a_folder_that_is_not_a_run(root: Path) -> None:
    (root / "empty").mkdir()
    r = runner.invoke(app, ["show", "empty"])
    assert r.exit_code == 2 and "not a run folder" in r.stderr
