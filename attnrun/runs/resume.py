"""Continue an interrupted, failed or killed run from its last checkpoint (``attnrun resume``)."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

from omegaconf import OmegaConf

from attnrun.errors import AttnrunError
from attnrun.experiments import experiments
from attnrun.experiments.base import execute
from attnrun.progress import Reporter
from attnrun.runs.record import read_metrics


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def resume_run(run_dir: Path, *, quiet: bool = False) -> dict:
    """Re-enter ``run_dir`` and run its experiment to the end from the last checkpoint."""
    if not run_dir.is_dir():
        raise AttnrunError(f"{run_dir}: no such run folder")
    metrics = read_metrics(run_dir)
    cfg_path = run_dir / "config.yaml"
    if metrics is None or not cfg_path.is_file():
        raise AttnrunError(
            f"{run_dir}: not a run folder (no readable metrics.json and config.yaml)"
        )
    status = metrics.get("status")
    if status == "completed":
        raise AttnrunError(f"{run_dir}: the run already completed; nothing to resume")
    pid = metrics.get("pid")
    same_host = metrics.get("host") == socket.gethostname()
    if status == "running" and same_host and pid and int(pid) != os.getpid() and _alive(int(pid)):
        raise AttnrunError(f"{run_dir}: the run is still going (pid {pid}); stop it first")
    exp = experiments.get(metrics.get("experiment"))
    try:
        cfg = OmegaConf.load(cfg_path)
    except Exception as e:
        raise AttnrunError(f"{cfg_path}: unreadable config: {e}") from None
    handler = logging.FileHandler(run_dir / "run.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("attnrun").info("resuming %s (was %s)", run_dir, status)
    reporter = Reporter(quiet=quiet)
    try:
        result = execute(exp, cfg, run_dir, reporter, resume=True)
    finally:
        root.removeHandler(handler)
        handler.close()
    key = {k: result[k] for k in exp.key_metrics if k in result}
    reporter.summary(f"{exp.name} resumed and completed", key, str(run_dir))
    return result
