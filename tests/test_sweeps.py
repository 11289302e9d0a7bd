"""Sweeps through Hydra launchers (basic, joblib, submitit_local), then a report of the sweep.

Also checks that the documented Slurm launcher config composes (no cluster needed).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attnrun.cli import app
from attnrun.report import make_report
from attnrun.runs.record import read_metrics

REPO = Path(__file__).resolve().parents[1]
KERNELS = ("gaussian", "boxcar", "epanechnikov")
SWEEP = ["-m", f"kernel={','.join(KERNELS)}", "data.n_train=20"]


def check_sweep(root: Path) -> None:
    """One sweep folder, three completed jobs, and a three-row report of them."""
    (sweep,) = (root / "multirun").glob("*/*")
    assert (sweep / "multirun.yaml").is_file()
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert [p.name for p in jobs] == ["0", "1", "2"]
    for job in jobs:
        m = read_metrics(job)
        assert m is not None and m["status"] == "completed", m
        assert (job / ".hydra" / "overrides.yaml").is_file()
    files = make_report([sweep], plots=False)
    with open(files.csv, newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["kernel"] for r in rows) == sorted(KERNELS)
    assert all(r["status"] == "completed" and float(r["test_mse"]) > 0 for r in rows)
    assert files.report.swept == ["kernel"]


def test_basic_launcher_sweep_and_report(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["regress", *SWEEP, "--root", str(tmp_path), "-q"])
    assert r.exit_code == 0, r.output
    check_sweep(tmp_path)


@pytest.mark.slow  # two worker processes start
def test_joblib_sweep_and_report(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        app,
        [
            "regress",
            *SWEEP,
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            "--root",
            str(tmp_path),
            "-q",
        ],
    )
    assert r.exit_code == 0, r.output
    check_sweep(tmp_path)


@pytest.mark.slow
def test_submitit_local_sweep_and_report(tmp_path: Path) -> None:
    """submitit runs each job in its own process; a subprocess keeps its pickling honest."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [
        sys.executable,
        "-m",
        "attnrun",
        "regress",
        *SWEEP,
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=5",
        "--root",
        str(tmp_path),
        "-q",
    ]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    check_sweep(tmp_path)
    (sweep,) = (tmp_path / "multirun").glob("*/*")
    assert (sweep / ".submitit").is_dir()  # submitit's logs stay out of the report


def test_slurm_launcher_config_composes() -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from attnrun.cli.launch import config_dir
    from attnrun.experiments import store_schemas

    store_schemas()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(config_dir()), version_base="1.3"):
            cfg = compose(
                config_name="regress",
                overrides=[
                    "hydra/launcher=attnrun_slurm",
                    "hydra.launcher.partition=gpu",
                    "hydra.launcher.timeout_min=30",
                ],
                return_hydra_config=True,
            )
    finally:
        GlobalHydra.instance().clear()
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert launcher.partition == "gpu" and launcher.timeout_min == 30
    assert launcher.gpus_per_node == 1 and launcher.tasks_per_node == 1
    assert launcher.array_parallelism == 16 and launcher.max_num_timeout == 0
    assert launcher.submitit_folder.endswith("/.submitit/%j")  # inside the sweep folder


#: A tiny sweep of each experiment: two settings, seconds on a CPU.
EXPERIMENT_SWEEPS = {
    "regress": ["kernel=gaussian,epanechnikov", "data.n_train=30"],
    "selfattn": [
        "model.num_heads=1,2", "data.n_train=100", "data.n_test=50", "model.num_layers=1",
        "model.num_hiddens=8", "model.ffn_hiddens=8", "train.epochs=1", "plot.enabled=false",
    ],
    "translate": [
        "score=dot,general", "data.n_train=120", "data.n_val=8", "data.n_test=8",
        "model.embed_size=8", "model.num_hiddens=8", "train.epochs=1", "plot.heatmaps=1",
    ],
}  # fmt: skip


@pytest.mark.parametrize("experiment", sorted(EXPERIMENT_SWEEPS))
def test_report_of_a_sweep_draws_the_attention_panel(tmp_path: Path, experiment: str) -> None:
    """Guards against an experiment whose runs write no attention samples in the one format
    ``report`` reads (a translate sweep once drew no attention panel): for every experiment a
    two-setting sweep, then ``report`` draws ``report_attention.png`` and writes ``report.html``."""
    args = [experiment, "-q", "--root", str(tmp_path), "-m", *EXPERIMENT_SWEEPS[experiment]]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    (sweep,) = (tmp_path / "multirun").glob("*/*")
    files = make_report([sweep])
    assert "report_attention.png" in [p.name for p in files.plots]
    assert (sweep / "report.html").is_file()


def test_ctrl_c_in_a_sweep_names_the_sweep_folder(tmp_path: Path, ctrl_c_in_run) -> None:
    """Ctrl-C in the second job of a basic-launcher sweep: exit 130; the first run completed,
    the second is interrupted, the third never started; one line on stderr points at the
    sweep's folder, where ``attnrun runs`` shows which is which."""
    ctrl_c_in_run("regress", 2)
    r = CliRunner().invoke(app, ["regress", *SWEEP, "train.threads=1", "--root", str(tmp_path)])
    assert r.exit_code == 130, r.output
    (sweep,) = (tmp_path / "multirun").glob("*/*")
    assert r.stderr.endswith(
        f"attnrun: interrupted; the sweep's runs so far: attnrun runs {sweep}\n"
    )
    statuses = [read_metrics(sweep / str(i)) for i in range(3)]
    assert [m and m["status"] for m in statuses] == ["completed", "interrupted", None]
    listed = CliRunner().invoke(app, ["runs", str(sweep)])
    assert listed.exit_code == 0 and "interrupted" in listed.output and "completed" in listed.output
