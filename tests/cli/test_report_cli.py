"""`attnrun report` through the CLI: tables, files, one-line errors, concurrent reports."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from attnrun.cli import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def write_run(folder: Path, config: dict, metrics: dict, status: str = "completed") -> Path:
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    record = {
        "status": status,
        "experiment": "regress",
        "seed": config["seed"],
        "started_at": "2026-01-01T10:00:00+00:00",
        **metrics,
    }
    (folder / "metrics.json").write_text(json.dumps(record))
    return folder


def make_sweep(root: Path, kernels=("gaussian", "boxcar"), seeds=(0, 1, 2)) -> Path:
    for i, k in enumerate(kernels):
        for s in seeds:
            write_run(
                root / f"{i}_{s}",
                {"kernel": k, "seed": s},
                {"test_mse": 0.1 * (i + 1) + 0.01 * s, "bandwidth": 1.0},
            )
    return root


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_report_prints_tables_and_writes_files(tmp_path: Path) -> None:
    sweep = make_sweep(tmp_path / "sweep")
    r = runner.invoke(app, ["report", str(sweep)])
    assert r.exit_code == 0, r.output
    assert "| kernel |" in r.stdout.replace("| run | kernel", "| kernel")
    assert "grouped over seeds" in r.stdout
    assert "0.21 ± 0.01" in r.stdout  # boxcar: 0.20, 0.21, 0.22
    assert "report: 6 runs" in r.stdout
    assert len(read_csv(sweep / "report.csv")) == 6
    assert (sweep / "report.md").exists() and (sweep / "report_metric_test_mse.png").exists()
    assert "report.html" in r.stdout
    page = (sweep / "report.html").read_text(encoding="utf-8")
    runs_table, groups_table = page.split('id="groups"')
    assert runs_table.count("<tr><td>") == 6 and groups_table.count("<tr><td>") == 2
    assert "data:image/png;base64," in page


def test_report_out_and_several_paths(tmp_path: Path) -> None:
    a = make_sweep(tmp_path / "a", kernels=("gaussian",))
    b = make_sweep(tmp_path / "b", kernels=("boxcar",))
    out = tmp_path / "cmp"
    r = runner.invoke(app, ["report", str(a), str(b), "--out", str(out), "--no-plots", "-q"])
    assert r.exit_code == 0, r.output
    rows = read_csv(out / "report.csv")
    assert sorted(row["run"] for row in rows) == sorted(
        f"{d}/0_{s}" for d in ("a", "b") for s in (0, 1, 2)
    )
    assert not list(out.glob("*.png"))
    assert not (a / "report.csv").exists()


def _written(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_missing_path_is_a_one_line_error_and_writes_nothing(tmp_path: Path) -> None:
    """Guards against writing before checking: a missing PATH beside a good one gives one line,
    exit 2, and neither report files in the good folder nor an --out folder."""
    good = make_sweep(tmp_path / "good", kernels=("gaussian",), seeds=(0,))
    before = _written(tmp_path)
    for args in (
        [str(tmp_path / "nope")],
        [str(good), str(tmp_path / "nope"), "--out", str(tmp_path / "out")],
    ):
        r = runner.invoke(app, ["report", *args])
        assert r.exit_code == 2
        assert r.stderr.strip().startswith("attnrun: error:") and "no such folder" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
        assert _written(tmp_path) == before and not (tmp_path / "out").exists()


def test_folder_without_runs_is_a_one_line_error_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty" / "x").mkdir(parents=True)
    (tmp_path / "empty" / "x" / "metrics.json").write_text("{}")  # no config.yaml: not a run
    r = runner.invoke(app, ["report", str(tmp_path / "empty")])
    assert r.exit_code == 2
    assert "no runs under" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert _written(tmp_path) == ["empty/x/metrics.json"]


def test_unreadable_runs_are_listed_not_fatal(tmp_path: Path) -> None:
    sweep = make_sweep(tmp_path / "s")
    (sweep / "0_1" / "metrics.json").write_text('{"status": "completed", "test_')
    (sweep / "1_2" / "metrics.json").write_bytes(b"\x00\xff")
    r = runner.invoke(app, ["report", str(sweep), "--no-plots"])
    assert r.exit_code == 0, r.output
    statuses = [row["status"] for row in read_csv(sweep / "report.csv")]
    assert statuses.count("unreadable") == 2 and statuses.count("completed") == 4


@pytest.mark.slow  # four interpreter start-ups
def test_two_concurrent_reports_leave_a_whole_csv(tmp_path: Path) -> None:
    """Two processes write report.csv at the same time: it parses and has every run once."""
    sweep = make_sweep(tmp_path / "s", kernels=tuple(f"k{i}" for i in range(20)), seeds=(0, 1))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, "-m", "attnrun", "report", str(sweep), "--no-plots", "-q"]
    for _ in range(2):
        procs = [
            subprocess.Popen(
                cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
        rows = read_csv(sweep / "report.csv")
        assert len(rows) == 40
        assert {(r["kernel"], r["seed"]) for r in rows} == {
            (f"k{i}", str(s)) for i in range(20) for s in (0, 1)
        }
        assert (sweep / "report.md").read_text().count("| completed |") == 40
        assert not list(sweep.glob(".report*"))  # no temporary file left behind
