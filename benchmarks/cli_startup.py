"""Startup time of ``attnrun --help``: this checkout against a baseline checkout, interleaved.

Each repeat runs ``python -m attnrun --help`` in a fresh interpreter (stdout discarded) once
for the baseline and once for this checkout, alternating, so both see the same machine load;
medians are compared. Also lists the heavy modules ``import attnrun.cli`` pulls in.

    python benchmarks/cli_startup.py --baseline /path/to/older/checkout [--repeats 5]

Other jobs share the machine: report the ratio, with ``uptime``'s load next to it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HEAVY = ("torch", "matplotlib", "hydra", "omegaconf", "numpy")
REPO = Path(__file__).resolve().parents[1]


def run_once(checkout: Path, args: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    start = time.perf_counter()
    subprocess.run(  # cwd: not a checkout, so PYTHONPATH picks the package
        [sys.executable, *args], env=env, cwd="/", stdout=subprocess.DEVNULL, check=True
    )
    return time.perf_counter() - start


def heavy_imports(checkout: Path) -> list[str]:
    probe = f"import sys, attnrun.cli; print(*[m for m in {HEAVY!r} if m in sys.modules])"
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd="/", capture_output=True, text=True
    )
    return out.stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="an older checkout")
    parser.add_argument("--repeats", type=int, default=5)
    opts = parser.parse_args()
    args = ["-m", "attnrun", "--help"]
    times: dict[str, list[float]] = {"baseline": [], "this": []}
    for _ in range(opts.repeats):
        times["baseline"].append(run_once(opts.baseline, args))
        times["this"].append(run_once(REPO, args))
    base, this = statistics.median(times["baseline"]), statistics.median(times["this"])
    print(f"load: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")
    print(f"attnrun from: {opts.baseline} (baseline), {REPO} (this)")
    print("| checkout | median s | runs (s) | heavy modules after `import attnrun.cli` |")
    print("|---|---|---|---|")
    for name, path, median in (("baseline", opts.baseline, base), ("this", REPO, this)):
        runs = " ".join(f"{t:.2f}" for t in times[name])
        print(f"| {name} | {median:.2f} | {runs} | {' '.join(heavy_imports(path)) or '-'} |")
    print(f"this / baseline: {this / base:.2f}")


if __name__ == "__main__":
    main()
