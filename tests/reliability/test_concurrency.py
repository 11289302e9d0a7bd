"""Eight `attnrun regress` processes started together get eight distinct run folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_eight_concurrent_runs_get_eight_folders(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # All processes wait for the same moment, so they reserve their folders in the same second.
    start = tmp_path / "go"
    script = (
        "import sys, time, pathlib\n"
        "from attnrun.cli import app\n"  # import everything first, then wait for the signal
        f"go = pathlib.Path({str(start)!r})\n"
        "while not go.exists(): time.sleep(0.01)\n"
        "from attnrun.cli import main\n"
        f"main(['regress', '-q', '--root', {str(tmp_path)!r}, 'seed=' + sys.argv[1]])\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(i)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    start.touch()
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
    runs = sorted(p.parent for p in tmp_path.glob("outputs/*/*/metrics.json"))
    assert len(runs) == 8
    seeds = sorted(json.loads((r / "metrics.json").read_text())["seed"] for r in runs)
    assert seeds == list(range(8))
