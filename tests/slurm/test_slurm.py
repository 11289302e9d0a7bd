"""``hydra/launcher=attnrun_slurm`` against a running Slurm (``scripts/slurm-local.sh up``).

Tests marked ``slurm`` skip, with the reason, when no controller answers. The two bad-input tests
at the end need no Slurm: they fake what PATH holds.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attnrun.cli import app
from attnrun.experiments import experiments
from attnrun.report import make_report
from attnrun.runs.record import comparable, read_metrics

REPO = Path(__file__).resolve().parents[2]
#: CPU jobs small enough for a one-node Slurm on a laptop-sized machine
CPU_JOB = [
    "hydra/launcher=attnrun_slurm",
    "hydra.launcher.gpus_per_node=0",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1",
    "hydra.launcher.timeout_min=10",
]
#: translate at the size of tests/translate/test_train_resume.py, long enough to cancel midway
TRANSLATE = {
    "data": {"n_train": 240, "n_val": 16, "n_test": 16},
    "model": {"embed_size": 16, "num_hiddens": 24},
    "train": {
        "epochs": 6,
        "batch_size": 32,
        "threads": 1,
        "checkpoint_minutes": 0,
        "patience": 0,
    },
    "decode": {"max_len": 20},
    "plot": {"heatmaps": 1},
}


def _slurm_answers() -> str | None:
    """None when a Slurm controller answers here, else why not."""
    if shutil.which("sbatch") is None:
        return "no sbatch on PATH (scripts/slurm-local.sh up starts a local Slurm)"
    try:
        p = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"scontrol ping failed: {e}"
    if p.returncode != 0 or "UP" not in p.stdout:
        answer = (p.stdout + p.stderr).strip().splitlines() or ["no answer"]
        return f"the Slurm controller does not answer: {answer[0]}"
    return None


_WHY_NOT = _slurm_answers()
needs_slurm = pytest.mark.skipif(_WHY_NOT is not None, reason=_WHY_NOT or "Slurm is up")


def attnrun(*args: str, **kw) -> subprocess.Popen | subprocess.CompletedProcess:
    """``python -m attnrun ARGS`` in a subprocess (submitit pickles the task: keep it honest)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, "-m", "attnrun", *args]
    if kw.pop("background", False):
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)


def overrides(cfg: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in cfg.items():
        if isinstance(v, dict):
            out += overrides(v, f"{prefix}{k}.")
        else:
            out.append(f"{prefix}{k}={v}")
    return out


@pytest.mark.slurm
@needs_slurm
def test_regress_sweep_as_a_slurm_job_array(tmp_path: Path) -> None:
    """Three regress jobs run as one Slurm array; three completed run folders; the report reads
    them; sacct (the accounting submitit reads states from) lists three COMPLETED tasks."""
    kernels = ("gaussian", "boxcar", "epanechnikov")
    p = attnrun(
        "regress", "-m", f"kernel={','.join(kernels)}", "data.n_train=20", "train.threads=1",
        *CPU_JOB, "--root", str(tmp_path), "-q",
    )  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    (sweep,) = (tmp_path / "multirun").glob("*/*")
    jobs = sorted(d for d in sweep.iterdir() if d.is_dir() and not d.name.startswith("."))
    assert [d.name for d in jobs] == ["0", "1", "2"]
    assert all(read_metrics(d)["status"] == "completed" for d in jobs)
    files = make_report([sweep], plots=False)
    with open(files.csv, newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["kernel"] for r in rows) == sorted(kernels)
    ids = {d.name.split("_")[0] for d in (sweep / ".submitit").iterdir() if d.is_dir()}
    assert len(ids) == 1, ids  # one array
    (array,) = ids
    acct = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", array],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert sorted(acct) == [f"{array}_{i}|COMPLETED" for i in range(3)], acct


@pytest.mark.slurm
@needs_slurm
def test_scancelled_translate_job_is_interrupted_and_resumes_equal(tmp_path: Path) -> None:
    """scancel while a translate job trains: its run folder says interrupted; attnrun resume
    finishes it with the metrics and model bytes of an uninterrupted run."""
    proc = attnrun(
        "translate", "-m", "seed=0", *overrides(TRANSLATE), *CPU_JOB,
        "--root", str(tmp_path / "slurm"), "-q", background=True,
    )  # fmt: skip
    try:
        run_dir = _wait_for(lambda: _checkpointed(tmp_path / "slurm"), 180, proc)
        (sub,) = [d for d in (run_dir.parent / ".submitit").iterdir() if d.is_dir()]
        subprocess.run(["scancel", sub.name.split("_")[0]], check=True)
        out = proc.communicate(timeout=120)[0].decode()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
    m = _wait_for(lambda: _status(run_dir, "interrupted"), 60)
    assert m["status"] == "interrupted", m
    assert proc.returncode == 2
    assert f"; continue it with: attnrun resume {run_dir} (run folder: {run_dir})" in out, out
    r = CliRunner().invoke(app, ["resume", str(run_dir), "-q"])
    assert r.exit_code == 0, r.output
    resumed = read_metrics(run_dir)
    assert resumed["status"] == "completed" and resumed.get("resumed_from")
    reference = tmp_path / "reference"
    experiments.get("translate")(TRANSLATE, reference)
    assert comparable(resumed) == comparable(read_metrics(reference))


@pytest.mark.slurm
@needs_slurm
def test_translate_job_at_its_time_limit_is_interrupted_with_its_checkpoint(tmp_path: Path) -> None:
    """A job that would outlive ``hydra.launcher.timeout_min=3``: Slurm sends SIGUSR2
    ``signal_delay_s=60`` before the limit (submitit's ``--signal=USR2@60``; Slurm may send it up
    to a minute early), the run stops at once, records ``interrupted (SIGUSR2)`` with its last
    checkpoint, and the sweep names it with the resume command, exit 2 — well before the limit.
    Guards what docs/guides/launchers.md promises. Bug it caught: without attnrun's SIGUSR2
    handler, submitit's own raised inside training ("timed-out too many times", the launcher
    never requeues) and the run was recorded ``failed``."""
    long = {**TRANSLATE, "train": {**TRANSLATE["train"], "epochs": 1000, "max_minutes": 10}}
    job = [o for o in CPU_JOB if not o.startswith("hydra.launcher.timeout_min=")]
    job += ["hydra.launcher.timeout_min=3", "hydra.launcher.signal_delay_s=60"]
    proc = attnrun(
        "translate", "-m", "seed=0", *overrides(long), *job, "--root", str(tmp_path), "-q",
        background=True,
    )  # fmt: skip
    try:
        out = proc.communicate(timeout=300)[0].decode()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
    (run_dir,) = tmp_path.glob("multirun/*/*/0")
    m = _wait_for(lambda: _status(run_dir, "interrupted"), 60)
    assert m["error"] == "interrupted (SIGUSR2)", m
    assert (run_dir / "checkpoint.pt").is_file() and m["epoch"] >= 1
    assert proc.returncode == 2
    assert f"interrupted (SIGUSR2); continue it with: attnrun resume {run_dir}" in out, out
    assert m["wall_time_s"] < 3 * 60 - 10  # the signal ended it, not the limit


@pytest.mark.slurm
@needs_slurm
def test_search_trials_as_slurm_jobs(tmp_path: Path) -> None:
    """An Optuna search whose trials are Slurm jobs: two at a time, values read back."""
    p = attnrun(
        "regress", "-m", "hparams_search=regress", "hydra.sweeper.n_trials=2",
        "hydra.sweeper.n_jobs=2", "data.n_train=20", "train.threads=1", *CPU_JOB,
        "--root", str(tmp_path), "-q",
    )  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    assert "2/2 trials (2 completed)" in p.stdout
    (folder,) = (tmp_path / "multirun").glob("search-regress-*")
    assert (folder / ".submitit").is_dir()


def _checkpointed(root: Path) -> Path | None:
    for ckpt in root.glob("multirun/*/*/0/checkpoint.pt"):
        return ckpt.parent
    return None


def _status(run_dir: Path, status: str) -> dict | None:
    m = read_metrics(run_dir)
    return m if m and m.get("status") == status else None


def _wait_for(probe, seconds: float, proc: subprocess.Popen | None = None):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = probe()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"attnrun ended first: {proc.stdout.read().decode()[-2000:]}")
        time.sleep(0.5)
    pytest.fail(f"nothing after {seconds}s")


def _listening(port: int) -> list[str]:
    """The local addresses (hex, as /proc/net/tcp writes them) listening on TCP ``port``."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    out = []
    for row in rows:
        local, state = row.split()[1], row.split()[3]
        addr, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            out.append(addr)
    return out


@pytest.mark.slurm
@needs_slurm
def test_local_slurm_listens_on_the_loopback_address_only() -> None:
    """Guards scripts/slurm-local.sh's binding: slurmctld, slurmd and slurmdbd listen on
    127.0.0.1 only (without ``CommunicationParameters=NoInAddrAny`` and the 127.0.0.1 addresses
    they listen on 0.0.0.0, every interface)."""
    conf = Path("/etc/slurm/slurm.conf")
    if not conf.is_file() or "scripts/slurm-local.sh" not in conf.read_text():
        pytest.skip("this Slurm was not configured by scripts/slurm-local.sh")
    for port in (6817, 6818, 6819):  # slurmctld, slurmd, slurmdbd
        addrs = _listening(port)
        assert addrs and set(addrs) == {"0100007F"}, (port, addrs)  # 127.0.0.1, little-endian


def test_no_sbatch_on_path_is_one_line(tmp_path: Path, monkeypatch) -> None:
    """hydra/launcher=attnrun_slurm where Slurm is not installed: one line, exit 2, no folder."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    args = ["regress", "-m", "kernel=gaussian,boxcar", "hydra/launcher=attnrun_slurm"]
    r = CliRunner().invoke(app, [*args, "--root", str(tmp_path)])
    assert r.exit_code == 2
    assert r.output.strip() == (
        "attnrun: error: hydra/launcher=attnrun_slurm: no sbatch on PATH; run on a Slurm login "
        "node (or load its module), or use hydra/launcher=joblib here"
    )
    assert not (tmp_path / "multirun").exists()


def test_unanswering_controller_is_one_line(tmp_path: Path, monkeypatch) -> None:
    """sbatch present but the controller down (scontrol ping fails): one line naming it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "scontrol").write_text(
        "#!/bin/sh\necho 'Slurmctld(primary) at vm is DOWN'\nexit 1\n"
    )
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    args = ["regress", "-m", "kernel=gaussian,boxcar", "hydra/launcher=attnrun_slurm"]
    r = CliRunner().invoke(app, [*args, "--root", str(tmp_path)])
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "the Slurm controller does not answer" in lines[0]
    assert "is DOWN" in lines[0]
    assert not (tmp_path / "multirun").exists()
