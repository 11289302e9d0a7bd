"""`attnrun regress` through the CLI, into temporary folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attnrun.cli import app
from attnrun.regression.bandwidth import bandwidth_rules
from attnrun.regression.kernels import kernels
from attnrun.regression.models import poolings

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def runs_under(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob("outputs/*/*/metrics.json"))


def test_help_lists_choices_from_the_registries():
    out = invoke("regress", "--help").output
    for name in [*kernels.names(), *poolings.names(), *bandwidth_rules.names()]:
        assert name in out


def test_default_run_writes_the_artefacts(tmp_path):
    r = invoke("regress", "--kernel", "gaussian", "--root", str(tmp_path))
    assert r.exit_code == 0, r.output
    [run] = runs_under(tmp_path)
    m = json.loads((run / "metrics.json").read_text())
    assert m["status"] == "completed" and m["experiment"] == "regress"
    assert m["bandwidth"] == 1.0 and 0 < m["test_mse"] < 1
    for name in (
        "predictions.png",
        "attention.png",
        "predictions.csv",
        "train.csv",
        "config.yaml",
        "run.log",
    ):
        assert (run / name).is_file(), name
    assert "test_mse" in r.output and str(run) in r.output
    assert not (run / "loss.png").exists()


def test_typed_options_and_raw_overrides_combine(tmp_path):
    r = invoke(
        "regress",
        "--kernel",
        "epanechnikov",
        "--root",
        str(tmp_path),
        "--quiet",
        "data.n_train=500",
        "bandwidth=loo",
    )
    assert r.exit_code == 0, r.output
    [run] = runs_under(tmp_path)
    m = json.loads((run / "metrics.json").read_text())
    assert m["n_train"] == 500 and m["kernel"] == "epanechnikov"
    assert 0.05 < m["bandwidth"] < 1.0  # chosen by leave-one-out, not the default 1.0
    cfg = (run / "config.yaml").read_text()
    assert "kernel: epanechnikov" in cfg and "n_train: 500" in cfg


def test_parametric_writes_loss_and_learned_bandwidth(tmp_path):
    r = invoke("regress", "--pooling", "parametric", "--root", str(tmp_path), "-q")
    assert r.exit_code == 0, r.output
    [run] = runs_under(tmp_path)
    m = json.loads((run / "metrics.json").read_text())
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == 5 and history["loss"][-1] < history["loss"][0]
    assert (run / "loss.png").is_file()
    assert m["bandwidth"] != 1.0 and m["bandwidth"] > 0


def test_same_seed_same_metrics_other_seed_differs(tmp_path):
    def mse(seed):
        r = invoke(
            "regress",
            "--pooling",
            "parametric",
            "--seed",
            str(seed),
            "-q",
            "--root",
            str(tmp_path / str(seed) / str(len(list(tmp_path.glob("**/metrics.json"))))),
        )
        assert r.exit_code == 0, r.output
        [run] = runs_under(Path(r.output.split("-> ")[-1].strip()).parents[2])
        return json.loads((run / "metrics.json").read_text())["test_mse"]

    assert mse(3) == mse(3)
    assert mse(3) != mse(4)


def test_csv_is_evaluated_on_a_held_out_split(tmp_path):
    csv = tmp_path / "points.csv"
    csv.write_text("x,y\n" + "".join(f"{i / 10},{(i % 7) / 3}\n" for i in range(60)))
    r = invoke("regress", "--root", str(tmp_path), "-q", f"data.path={csv}", "bandwidth=scott")
    assert r.exit_code == 0, r.output
    [run] = runs_under(tmp_path)
    m = json.loads((run / "metrics.json").read_text())
    assert m["n_train"] + m["n_test"] == 60 and m["n_test"] == 12
    assert m["mse_against"] == "held-out observations"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--kernel", "nope"], "kernel='nope' is not valid; valid: gaussian, boxcar"),
        (["--pooling", "nope"], "valid: average, nonparametric, parametric"),
        (["--bandwidth", "nope"], "a positive number or a rule: silverman, scott, loo"),
        (["--bandwidth", "0"], "bandwidth='0' is not valid"),
        (["--bandwidth", "-0.5"], "bandwidth='-0.5' is not valid"),
        (["data.n_train=abc"], "data.n_train"),
        (["data.n_train=1"], "data.n_train=1 is not valid; allowed: >= 3 points"),
        (["data.path=/no/such/file.csv"], "file not found"),
        (["data.noise=nan"], "data.noise"),
        (["data.function=nope"], "data.function='nope' is not valid; valid: sin_pow, x_plus_sin"),
        (["data.test_fraction=1"], "data.test_fraction=1.0 is not valid; allowed: [0, 1)"),
        (["data.x_min=6"], "data.x_max=5.0 is not valid; allowed: > data.x_min=6.0"),
        (["train.threads=-1"], "train.threads=-1 is not valid"),
        (["train.optimizer=lbfgs9"], "train.optimizer='lbfgs9' is not valid; valid: sgd, adam"),
        (["--device", "tpu"], "device"),
        (["kernel=gaussian,boxcar"], "--multirun"),
        (["--kernal", "gaussian"], "no such option: --kernal"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_leaves_no_completed_run(tmp_path, args, needle):
    r = invoke("regress", "--root", str(tmp_path), *args)
    assert r.exit_code == 2, r.output
    err = r.stderr.strip()
    assert err.count("\n") == 0 and err.startswith("attnrun: error:"), err
    assert needle in err
    assert "Traceback" not in r.output
    for run in runs_under(tmp_path):
        assert json.loads((run / "metrics.json").read_text())["status"] != "completed"


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("x,y\n1,2\n3,abc\n4,5\n", ":3: "),
        ("x,y\n1,2\n3,inf\n4,5\n", ":3: "),
        ("x,y\n1,2\n3\n4,5\n", ":3: "),
        ("a,b\n1,2\n", ":1: "),
        ("", "empty"),
        ("x,y\n1,2\n", "need at least 3"),
    ],
)
def test_bad_csv_names_the_line(tmp_path, content, needle):
    csv = tmp_path / "bad.csv"
    csv.write_text(content)
    r = invoke("regress", "--root", str(tmp_path), f"data.path={csv}")
    assert r.exit_code == 2
    assert needle in r.stderr and "bad.csv" in r.stderr
    [run] = runs_under(tmp_path)
    assert json.loads((run / "metrics.json").read_text())["status"] == "failed"


def test_debug_shows_the_traceback(tmp_path):
    r = invoke("regress", "--root", str(tmp_path), "--debug", "--kernel", "nope")
    assert r.exit_code != 0
    assert isinstance(r.exception, ValueError)


def test_cfg_job_prints_composed_config_and_runs_nothing(tmp_path):
    r = invoke("regress", "--root", str(tmp_path), "--kernel", "tricube", "--cfg", "job")
    assert r.exit_code == 0, r.output
    assert "kernel: tricube" in r.output and "function: sin_pow" in r.output
    assert not (tmp_path / "outputs").exists()


def test_multirun_basic_launcher_makes_one_folder_per_job(tmp_path):
    r = invoke(
        "regress",
        "--root",
        str(tmp_path),
        "-q",
        "-m",
        "kernel=gaussian,boxcar,epanechnikov",
        "bandwidth=0.5",
    )
    assert r.exit_code == 0, r.output
    jobs = sorted(p.parent for p in tmp_path.glob("multirun/*/*/*/metrics.json"))
    assert len(jobs) == 3
    kernels_run = {json.loads((j / "metrics.json").read_text())["kernel"] for j in jobs}
    assert kernels_run == {"gaussian", "boxcar", "epanechnikov"}


def test_user_run_dir_is_never_reused(tmp_path):
    used = tmp_path / "mine"
    used.mkdir()
    (used / "notes.txt").write_text("keep me")
    r = invoke("regress", f"hydra.run.dir={used}")
    assert r.exit_code == 2 and "not empty" in r.stderr
    assert (used / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in used.iterdir()) == ["notes.txt"]


def test_parametric_with_a_flat_kernel_is_refused_up_front(tmp_path):
    r = invoke("regress", "--root", str(tmp_path), "--pooling", "parametric", "--kernel", "boxcar")
    assert r.exit_code == 2
    assert "boxcar" in r.stderr and "gaussian" in r.stderr
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train.average=last:3"], "allowed: none (pooling=nonparametric does not train)"),
        (["--pooling", "average", "train.average=ema:0.9"], "(pooling=average does not train)"),
        (["--pooling", "parametric", "train.average=ema:0.9"], "learns one bandwidth"),
        (["train.average=swa"], "allowed: none, last:N, ema:DECAY"),
    ],
)
def test_weight_averaging_is_refused_up_front(tmp_path, args, needle):
    """regress trains no network: ``train.average`` other than none is one line, exit 2, no
    folder (nonparametric and average pooling train nothing; parametric learns one scalar)."""
    r = invoke("regress", "--root", str(tmp_path), *args)
    assert r.exit_code == 2, r.output
    err = r.stderr.strip()
    assert err.count("\n") == 0 and "train.average=" in err and needle in err
    assert not (tmp_path / "outputs").exists()


def test_cfg_with_multirun_prints_the_config(tmp_path):
    r = invoke("regress", "--root", str(tmp_path), "-m", "--cfg", "job", "kernel=gaussian,boxcar")
    assert r.exit_code == 0, r.output
    assert "kernel:" in r.output
    assert not (tmp_path / "multirun").exists()


def test_latin1_csv_is_one_line_naming_its_line_and_exit_2(tmp_path):
    """Guards against a non-UTF-8 file giving a traceback or a message without its line (the
    decoder's own 'can't decode byte 0xe9 in position 17' names neither file line nor fix)."""
    csv = tmp_path / "latin1.csv"
    csv.write_bytes("x,y\n1,2\n3,4\n5,6 # caf\xe9\n7,8\n".encode("latin-1"))
    r = invoke("regress", "--root", str(tmp_path), f"data.path={csv}")
    assert r.exit_code == 2, r.output
    err = r.stderr.strip()
    assert err.count("\n") == 0 and "Traceback" not in r.output
    assert "latin1.csv:4: not UTF-8 text (byte 0xe9 at column 10)" in err


def test_cfg_hydra_prints_the_hydra_config_and_makes_no_run_folder(tmp_path, monkeypatch):
    """Guards against ``--cfg hydra`` running the job (or printing the job config instead)."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    r = invoke("regress", "--root", str(tmp_path / "root"), "--cfg", "hydra")
    assert r.exit_code == 0, r.output
    assert r.output.startswith("hydra:") and "job_logging:" in r.output
    assert "\nkernel:" not in r.output  # the job's own config is not what was asked for
    assert list(cwd.iterdir()) == [] and not (tmp_path / "root").exists()
