"""The wheel carries the configs: a non-editable install runs `attnrun regress` from elsewhere."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_and_runs_from_another_folder(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(REPO),
        ],
        check=True,
    )
    wheels = list(dist.glob("attnrun-*.whl"))
    assert len(wheels) == 1

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    target = Path(
        subprocess.check_output(
            [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    # The dependencies (torch, hydra, ...) come from the test environment, after the wheel's own
    # site-packages: a plain path entry, so the editable install's finder there is not loaded.
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (target / "zz_test_deps.pth").write_text("\n".join(deps) + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(wheels[0]),
        ],
        check=True,
    )

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    where = subprocess.check_output(
        [py, "-c", "import attnrun, sys; print(attnrun.__file__)"], cwd=work, env=env, text=True
    ).strip()
    assert str(target) in where, where
    attnrun_bin = [py, "-m", "attnrun"]
    out = subprocess.run(
        [*attnrun_bin, "regress", "--kernel", "gaussian", "--quiet"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    runs = list((work / "outputs").glob("*/*/metrics.json"))
    assert len(runs) == 1
    metrics = json.loads(runs[0].read_text())
    assert metrics["status"] == "completed"
    assert metrics["test_mse"] >= 0
    assert (runs[0].parent / "predictions.png").is_file()
    # the search ships too: the attnrun_optuna sweeper (hydra_plugins) and configs/hparams_search
    out = subprocess.run(
        [*attnrun_bin, "regress", "-m", "hparams_search=regress", "hydra.sweeper.n_trials=2"]
        + ["data.n_train=20", "train.threads=1", "-q"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "search regress: 2/2 trials (2 completed)" in out.stdout, out.stdout
