"""Continue an interrupted, failed or killed run from its last checkpoint (``attnrun resume``).

Everything is checked before anything is written into the run: the folder holds a run record and
a config, the run did not complete and is not still going, it was made by this version of attnrun
for a known experiment, its config fits that experiment, and its checkpoint (if any) is whole and
was written for that config (:meth:`attnrun.runs.checkpoint.Checkpointer.load`). A run killed
before its first checkpoint starts again from the beginning.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

from attnrun import __version__
from attnrun.errors import AttnrunError
from attnrun.experiments import experiments
from attnrun.experiments.base import execute
from attnrun.progress import Reporter
from attnrun.runs.files import CONFIG, RUN_LOG, read_config
from attnrun.runs.record import read_metrics

__all__ = ["resume_run"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _check_resumable(run_dir: Path) -> dict:
    """The run's metrics.json, after the checks that need no config; AttnrunError otherwise."""
    if not run_dir.is_dir():
        raise AttnrunError(f"{run_dir}: no such run folder")
    metrics = read_metrics(run_dir)
    if not isinstance(metrics, dict) or not (run_dir / CONFIG).is_file():
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
    made_by = (metrics.get("versions") or {}).get("attnrun")
    if made_by != __version__:
        raise AttnrunError(
            f"{run_dir}: made by attnrun {made_by or 'of unknown version'}, this is {__version__}; "
            "resume it with that version or start a new run"
        )
    name = metrics.get("experiment")
    if name not in experiments:
        raise AttnrunError(
            f"{run_dir}: a run of experiment {name!r}; this attnrun knows "
            f"{', '.join(experiments.names())}"
        )
    return metrics


def resume_run(run_dir: str | Path, *, quiet: bool = False) -> dict:
    """Re-enter ``run_dir`` and run its experiment to the end from the last checkpoint."""
    run_dir = Path(run_dir)
    metrics = _check_resumable(run_dir)
    exp = experiments.get(metrics["experiment"])
    cfg = read_config(run_dir)
    try:
        exp.make_config(cfg)
    except AttnrunError as e:
        raise AttnrunError(f"{run_dir / CONFIG}: does not fit experiment {exp.name}: {e}") from None
    # delay: the file is opened at the first record, after execute() has checked the checkpoint
    handler = logging.FileHandler(run_dir / RUN_LOG, encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    reporter = Reporter(quiet=quiet)
    try:
        result = execute(exp, cfg, run_dir, reporter, resume=True)
    finally:
        root.removeHandler(handler)
        handler.close()
    key = {k: result[k] for k in exp.key_metrics if k in result}
    reporter.summary(f"{exp.name} resumed and completed", key, str(run_dir))
    return result
