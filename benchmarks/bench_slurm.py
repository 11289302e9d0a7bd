"""The same three-job regress sweep through Slurm (``hydra/launcher=attnrun_slurm``) and joblib.

Target (issue 20): the Slurm sweep completes in less than 2x the joblib sweep's time. Needs a
running Slurm (``scripts/slurm-local.sh up``); both launchers run two jobs at once (the local
node has 2 CPUs, one per job). Repeats alternate which launcher goes first; medians reported,
with Slurm's own overhead (wall time minus joblib's) and the jobs' elapsed time from sacct.

    PYTHONPATH=. python benchmarks/bench_slurm.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ["regress", "-m", "kernel=gaussian,boxcar,epanechnikov", "train.threads=1", "-q"]
LAUNCHERS = {
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    "slurm": [
        "hydra/launcher=attnrun_slurm",
        "hydra.launcher.gpus_per_node=0",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.mem_gb=1",
        "hydra.launcher.array_parallelism=2",
    ],
}


def sweep(launcher: str, root: Path) -> float:
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    cmd = [sys.executable, "-m", "attnrun", *SWEEP, *LAUNCHERS[launcher], "--root", str(root)]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{launcher} sweep failed:\n{p.stderr[-2000:]}")
    return time.perf_counter() - t0


def job_seconds(root: Path) -> list[float]:
    """Elapsed seconds of each Slurm task of the sweep under ``root`` (sacct)."""
    (sweep_dir,) = root.glob("multirun/*/*")
    (job,) = {d.name.split("_")[0] for d in (sweep_dir / ".submitit").iterdir() if d.is_dir()}
    out = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-o", "ElapsedRaw", "-j", job],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [float(x) for x in out]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    times: dict[str, list[float]] = {"joblib": [], "slurm": []}
    jobs: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.repeats):
            order = ("joblib", "slurm") if i % 2 == 0 else ("slurm", "joblib")
            for name in order:
                root = Path(tmp) / f"{name}{i}"
                times[name].append(sweep(name, root))
                if name == "slurm":
                    jobs += job_seconds(root)
    j, s = statistics.median(times["joblib"]), statistics.median(times["slurm"])
    print(f"joblib (2 workers): median {j:.1f} s  {[round(t, 1) for t in times['joblib']]}")
    print(f"slurm (2 tasks at once): median {s:.1f} s  {[round(t, 1) for t in times['slurm']]}")
    print(f"slurm / joblib = {s / j:.2f} (target < 2: {'met' if s / j < 2 else 'missed'})")
    print(f"Slurm's overhead: {s - j:.1f} s; each job's elapsed (sacct): median "
          f"{statistics.median(jobs):.0f} s")  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.2f} (shared machine)")


if __name__ == "__main__":
    main()
