"""Search against grid at an equal budget, on ``attnrun regress`` (issue 20's target).

Data: ``data.function=x_plus_sin`` (y = x + sin x + N(0, 1), x ~ U(0, 10)), ``data.n_train=2000``,
seed 0; test MSE against the noiseless truth on the grid arange(0, 10, 0.1). Three ways to pick
kernel × bandwidth over kernel ∈ {gaussian, boxcar, epanechnikov, triangular}:

* ``loo``: each kernel at its exact leave-one-out bandwidth (``bandwidth=loo``, training data
  only); the row is the best kernel's test MSE (the reference);
* ``search``: 20 Optuna TPE trials (``-m hparams_search=regress``, seed 0) over the kernel and a
  log-uniform bandwidth in [0.01, 2]; the row is the best trial's test MSE;
* ``grid``: the 20-point grid 4 kernels × 5 log-spaced bandwidths in [0.01, 2]; the row is the
  grid's median test MSE (and its best, for the record).

Targets: search best within 2% of the LOO reference (ratio <= 1.02), and below the grid's median.
Note: the search's objective is the test MSE itself (regress's registered objective), as is the
grid's best; LOO chooses from the training data alone.

    PYTHONPATH=. python benchmarks/bench_search.py [--trials 20] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ("gaussian", "boxcar", "epanechnikov", "triangular")
FIXED = ["data.function=x_plus_sin", "data.n_train=2000", "seed=0", "train.threads=1"]


def attnrun(*args: str) -> float:
    """Run ``python -m attnrun ARGS`` (quiet); its wall time in seconds."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    t0 = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-m", "attnrun", *args, "-q"], env=env, capture_output=True, text=True
    )
    if p.returncode != 0:
        sys.exit(f"attnrun {' '.join(args)} failed:\n{p.stderr[-2000:]}")
    return time.perf_counter() - t0


def mse_of(folder: Path) -> list[tuple[str, float, float]]:
    """(kernel, bandwidth, test_mse) of every completed run folder under ``folder``."""
    rows = []
    for m in folder.rglob("metrics.json"):
        d = json.loads(m.read_text())
        if d.get("status") == "completed":
            rows.append((d["kernel"], float(d["bandwidth"]), float(d["test_mse"])))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    a = ap.parse_args()
    kernels = f"choice({','.join(KERNELS)})"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t_loo = attnrun(
            "regress", "-m", f"kernel={','.join(KERNELS)}", "bandwidth=loo", *FIXED,
            "--root", str(tmp / "loo"),
        )  # fmt: skip
        loo = mse_of(tmp / "loo")
        t_search = attnrun(
            "regress", "-m", "hparams_search=regress", f"hydra.sweeper.n_trials={a.trials}",
            f"hydra.sweeper.params.kernel={kernels}", *FIXED, "--root", str(tmp / "search"),
        )  # fmt: skip
        search = mse_of(tmp / "search")
        n_bw = max(1, a.trials // len(KERNELS))
        bws = [0.01 * (200 ** (i / (n_bw - 1))) for i in range(n_bw)] if n_bw > 1 else [0.1]
        t_grid = attnrun(
            "regress", "-m", f"kernel={','.join(KERNELS)}",
            f"bandwidth={','.join(f'{b:.4g}' for b in bws)}", *FIXED, "--root", str(tmp / "grid"),
        )  # fmt: skip
        grid = mse_of(tmp / "grid")
    best_loo = min(loo, key=lambda r: r[2])
    best_search = min(search, key=lambda r: r[2])
    grid_median = statistics.median(r[2] for r in grid)
    best_grid = min(grid, key=lambda r: r[2])
    result = {
        "loo": {"kernel": best_loo[0], "bandwidth": best_loo[1], "test_mse": best_loo[2]},
        "search": {
            "trials": len(search),
            "kernel": best_search[0],
            "bandwidth": best_search[1],
            "test_mse": best_search[2],
        },
        "grid": {
            "points": len(grid),
            "median_test_mse": grid_median,
            "best_test_mse": best_grid[2],
            "best": [best_grid[0], best_grid[1]],
        },
        "ratio_search_to_loo": best_search[2] / best_loo[2],
        "ratio_search_to_grid_median": best_search[2] / grid_median,
        "seconds": {"loo": t_loo, "search": t_search, "grid": t_grid},
        "load": os.getloadavg(),
    }
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "bench_search.json").write_text(json.dumps(result, indent=2))
    print(
        f"LOO (best of {len(loo)} kernels): {best_loo[0]} h={best_loo[1]:.4g} "
        f"test_mse={best_loo[2]:.5g}  [{t_loo:.1f} s]"
    )
    print(
        f"search ({len(search)} trials): {best_search[0]} h={best_search[1]:.4g} "
        f"test_mse={best_search[2]:.5g}  [{t_search:.1f} s]"
    )
    print(
        f"grid ({len(grid)} points): median test_mse={grid_median:.5g}, best "
        f"{best_grid[2]:.5g} ({best_grid[0]} h={best_grid[1]:.4g})  [{t_grid:.1f} s]"
    )
    r1, r2 = result["ratio_search_to_loo"], result["ratio_search_to_grid_median"]
    print(
        f"search / LOO = {r1:.4f} (target <= 1.02: {'met' if r1 <= 1.02 else 'missed'}); "
        f"search / grid median = {r2:.4f} (target < 1: {'met' if r2 < 1 else 'missed'})"
    )
    print(f"load average {os.getloadavg()[0]:.2f} (shared machine)")


if __name__ == "__main__":
    main()
