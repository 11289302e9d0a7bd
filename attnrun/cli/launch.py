"""From a CLI command to a Hydra run: validate, reserve the folder, call ``@hydra.main``.

Typed CLI options become config overrides in front of the user's raw Hydra overrides. Then:

1. every job the overrides describe (one, or each point of a ``-m`` sweep) is composed with
   Hydra's compose API and turned into the typed config, and its inputs are checked (the
   experiment's ``check``: data files there or downloaded), so a bad value or a missing file fails
   at once with one line and no folder is made;
2. the run folder (``outputs/YYYY-MM-DD/HH-MM-SS``) or sweep folder (``multirun/...``) is reserved
   atomically and handed to Hydra as ``hydra.run.dir`` / ``hydra.sweep.dir``;
3. a ``@hydra.main`` function runs the job(s), so multirun, launchers (basic, joblib, submitit) and
   Hydra's output management all work as in any Hydra app.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from attnrun.errors import AttnrunError, ConfigError
from attnrun.experiments import experiments, store_schemas
from attnrun.experiments.base import execute
from attnrun.progress import Reporter
from attnrun.runs import reserve_run_dir
from attnrun.runs.record import read_metrics
from attnrun.search.spec import (
    SWEEPER_TARGET,
    SearchSpec,
    objective_of,
    plan_search,
    space_overrides,
    write_spec,
)

_ENV_QUIET = "ATTNRUN_QUIET"
_ENV_DEBUG = "ATTNRUN_DEBUG"


def config_dir() -> Path:
    """The Hydra config folder: ``attnrun.configs`` when installed, else ``configs/``."""
    import importlib.util

    spec = importlib.util.find_spec("attnrun.configs")
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0]).resolve()
    return (Path(__file__).resolve().parents[2] / "configs").resolve()


@dataclass
class LaunchResult:
    """What a launch produced: the folder(s) and the failures, for the CLI's exit code."""

    folder: Path | None = None
    failures: list[tuple[Path, str, bool]] = field(default_factory=list)  # (dir, message, user)
    search: bool = False  # an Optuna search: failed trials are the study's, not the command's


_CURRENT = LaunchResult()


def _one_line(e: BaseException) -> str:
    """The most telling single line of a (possibly chained) Hydra/OmegaConf error."""
    chain: list[BaseException] = []
    cur: BaseException | None = e
    while cur is not None and cur not in chain:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    parts: list[str] = []
    for err in chain:
        text = str(err).strip()
        if not text:
            continue
        first = text.splitlines()[0].strip()
        key = getattr(err, "full_key", None)
        if key and key not in first:
            first = f"{key}: {first}"
        if first not in parts:
            parts.append(first)
    line = "; ".join(parts[:2]) if parts else type(e).__name__
    return line + _available_options(str(e))


def _available_options(text: str) -> str:
    """``"; valid: a | b"`` from Hydra's "Available options in 'group':" block, if any."""
    lines = text.splitlines()
    for i, raw in enumerate(lines):
        if raw.startswith("Available options in"):
            names = []
            for option in lines[i + 1 :]:
                if not option.startswith(("\t", " ")) or not option.strip():
                    break
                names.append(option.strip())
            return f"; valid: {' | '.join(names)}" if names else ""
    return ""


def expand_jobs(overrides: list[str], multirun: bool) -> list[list[str]]:
    """The override list of each job: one job, or the sweep's cartesian product."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as e:
        raise ConfigError(_one_line(e)) from None
    if not multirun:
        sweeps = [o.input_line for o in parsed if o.is_sweep_override()]
        if sweeps:
            raise ConfigError(
                f"{sweeps[0]!r} lists several values: add -m (--multirun) to sweep over them"
            )
        return [overrides]
    batches = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    return [job for batch in batches for job in batch]


def validate(
    name: str, overrides: list[str], multirun: bool, check_inputs: bool = True
) -> list[list[str]]:
    """Compose and type-check every job before anything runs, and with ``check_inputs`` run the
    experiment's ``check`` (its data files); returns each job's overrides."""
    from hydra import compose, initialize_config_dir

    exp = experiments.get(name)
    jobs = expand_jobs(overrides, multirun)
    store_schemas()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(config_dir()), version_base="1.3", job_name=name):
        for job in jobs:
            own = [o for o in job if not o.lstrip("+~").startswith("hydra")]
            try:
                cfg = compose(config_name=name, overrides=own)
            except Exception as e:  # Hydra and OmegaConf raise many types here
                raise ConfigError(compose_message(e, exp.config_class, own, name)) from None
            typed = exp.make_config(cfg)
            if check_inputs and exp.check is not None:
                exp.check(typed)
    return jobs


def compose_message(
    e: BaseException, config_class: type, overrides: list[str], name: str = ""
) -> str:
    """A compose error in :mod:`attnrun.validation`'s words: ``key=value is not valid; ...``
    with the closest and the valid keys or options; Hydra's own line when no key is known."""
    from omegaconf.errors import OmegaConfBaseException

    from attnrun.validation import omegaconf_message

    cur: BaseException | None = e
    while cur is not None:
        key = getattr(cur, "full_key", None)
        if isinstance(cur, OmegaConfBaseException) and key:
            override = _override_of(key, overrides)
            if override is not None:
                groups = config_groups(name) if name else []
                return omegaconf_message(cur, config_class, override, groups)
        cur = cur.__cause__ or cur.__context__
    missing = re.search(r"Could not find '([\w.]+)/([^']*)'", str(e))
    options = _available_options(str(e))
    if missing and options:
        group, name = missing.groups()
        valid = options.removeprefix("; valid: ").split(" | ")
        close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
        guess = f" (did you mean {close[0]}?)" if close else ""
        return f"{group}={name} is not valid{guess}; valid: {', '.join(valid)}"
    return _one_line(e)


def config_groups(name: str) -> list[str]:
    """The config groups experiment ``name``'s defaults list lets a user choose
    (``attention``, ``recipe``; not Hydra's own ``override hydra/...``)."""
    import yaml

    text = (config_dir() / f"{name}.yaml").read_text(encoding="utf-8")
    defaults = (yaml.safe_load(text) or {}).get("defaults", [])
    keys = [k for entry in defaults if isinstance(entry, dict) for k in entry]
    return sorted(k for k in keys if not k.startswith("override "))


def _override_of(key: str, overrides: list[str]) -> str | None:
    """The user's override that sets ``key`` or a key below it (``+``/``~`` prefixes kept)."""
    for o in overrides:
        name = o.split("=", 1)[0].lstrip("+~")
        if name == key or name.startswith(key + "."):
            return o
    return None


def plan(name: str, overrides: list[str], root: Path) -> tuple[SearchSpec, Path] | None:
    """The search a multirun's overrides describe, checked, and its folder; None for a grid."""
    from hydra import compose, initialize_config_dir

    store_schemas()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(config_dir()), version_base="1.3", job_name=name):

        def compose_fn(job: list[str], with_hydra: bool) -> DictConfig:
            try:
                return compose(config_name=name, overrides=job, return_hydra_config=with_hydra)
            except Exception as e:  # Hydra and OmegaConf raise many types here
                raise ConfigError(_one_line(e)) from None

        try:
            return plan_search(name, overrides, root, compose_fn)
        finally:
            GlobalHydra.instance().clear()


SLURM_LAUNCHERS = ("attnrun_slurm", "submitit_slurm")


def check_slurm(overrides: list[str], timeout: float = 15.0) -> None:
    """With a Slurm launcher, ``sbatch`` must be on PATH and the controller must answer
    (``scontrol ping``) before a folder is made; ConfigError naming which one failed."""
    import shutil
    import subprocess

    chosen = next((o.split("=", 1)[1] for o in overrides if o.startswith("hydra/launcher=")), None)
    if chosen not in SLURM_LAUNCHERS:
        return
    where = f"hydra/launcher={chosen}"
    if shutil.which("sbatch") is None:
        raise ConfigError(
            f"{where}: no sbatch on PATH; run on a Slurm login node (or load its module), or "
            "use hydra/launcher=joblib here"
        )
    try:
        p = subprocess.run(
            ["scontrol", "ping"], capture_output=True, text=True, timeout=timeout, check=False
        )
        answer = (p.stdout + p.stderr).strip()
        ok = p.returncode == 0 and "UP" in answer
    except (OSError, subprocess.TimeoutExpired) as e:
        ok, answer = False, f"{type(e).__name__}: {e}"
    if not ok:
        first = answer.splitlines()[0] if answer else "no answer"
        raise ConfigError(f"{where}: the Slurm controller does not answer (scontrol ping: {first})")


def _quiet_optuna() -> None:
    """TPE's ``multivariate`` (configs/hparams_search) and ``enqueue_trial`` are "experimental"
    in optuna 2.10: a warning for optuna's developers, not for a user of a search."""
    import warnings

    from optuna.exceptions import ExperimentalWarning

    warnings.filterwarnings("ignore", category=ExperimentalWarning)


def _objective(hc: Any, exp: Any) -> str | None:
    """The metric a search's trial returns to the sweeper; None outside a search."""
    sweeper = hc.sweeper
    if sweeper.get("_target_") != SWEEPER_TARGET:
        return None
    return objective_of(exp, sweeper.get("objective"), sweeper.get("direction"))[0]


def _task(cfg: DictConfig) -> Any:
    """The Hydra task: run one job in the folder Hydra gives it, record failures. In a search it
    returns the objective (None when the run failed: the sweeper tells Optuna so)."""
    hc = HydraConfig.get()
    assert hc.job.config_name is not None  # launch passes --config-name
    exp = experiments.get(hc.job.config_name)
    objective = _objective(hc, exp)
    out_dir = Path(hc.runtime.output_dir)
    reporter = Reporter(quiet=os.environ.get(_ENV_QUIET) == "1")
    debug = os.environ.get(_ENV_DEBUG) == "1"
    try:
        metrics = execute(exp, cfg, out_dir, reporter)
    except AttnrunError as e:
        if debug:
            traceback.print_exc()
        _CURRENT.failures.append((out_dir, str(e), True))
        return None
    except Exception as e:
        if debug:
            raise
        _CURRENT.failures.append((out_dir, f"{type(e).__name__}: {e}", False))
        return None
    key = {k: metrics[k] for k in exp.key_metrics if k in metrics}
    reporter.summary(f"{exp.name} completed", key, str(out_dir))
    if objective is not None:
        value = metrics.get(objective)
        return float(value) if isinstance(value, (int, float)) else None
    return metrics


def launch(
    name: str,
    overrides: list[str],
    *,
    multirun: bool = False,
    cfg: str | None = None,
    root: Path = Path("."),
    quiet: bool = False,
    debug: bool = False,
) -> LaunchResult:
    """Validate, reserve the run folder, and run experiment ``name`` through ``@hydra.main``."""
    global _CURRENT
    _CURRENT = LaunchResult()
    search = None
    if multirun and cfg is None:
        overrides = space_overrides(overrides)
        check_slurm(overrides)
        search = plan(name, overrides, Path(root))
    # --cfg reads no data; a search checks its space itself
    jobs = [overrides] if search else validate(name, overrides, multirun, check_inputs=cfg is None)
    hydra_args = [f"--config-name={name}"]
    if cfg is not None:
        if cfg not in ("job", "hydra", "all"):
            raise ConfigError(f"--cfg {cfg!r} is not valid; valid: job, hydra, all")
        hydra_args += ["--cfg", cfg, "--resolve"]
        if multirun:  # Hydra prints one config: the sweep's first job
            print(f"# the first of {len(jobs)} jobs: {' '.join(jobs[0])}")
            overrides = jobs[0]
    elif search is not None:
        spec, folder = search
        _quiet_optuna()
        write_spec(spec, folder)
        overrides = [o for o in overrides if not o.startswith("hydra.sweep.dir=")]
        overrides.append(f"hydra.sweep.dir={folder}")
        _CURRENT.folder, _CURRENT.search = folder, True
    else:
        folder, overrides = _run_folder(overrides, multirun, Path(root))
        _CURRENT.folder = folder
    if multirun and cfg is None:  # Hydra takes one of --cfg and --multirun
        hydra_args.append("--multirun")
    if quiet:  # Hydra's own "[HYDRA] #0 : kernel=..." lines; its warnings still show
        overrides = [*overrides, "hydra.hydra_logging.root.level=WARNING"]

    os.environ[_ENV_QUIET] = "1" if quiet else "0"
    os.environ[_ENV_DEBUG] = "1" if debug else "0"
    if debug:
        os.environ["HYDRA_FULL_ERROR"] = "1"
    store_schemas()
    GlobalHydra.instance().clear()
    entry = hydra.main(config_path=str(config_dir()), config_name=None, version_base="1.3")(_task)
    saved_argv = sys.argv
    sys.argv = [f"attnrun-{name}", *hydra_args, *overrides]
    try:
        entry()
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the run recorded itself interrupted
        print(interrupted_line(_CURRENT, multirun), file=sys.stderr)
        raise SystemExit(130) from None
    except SystemExit as e:  # Hydra exits on errors it reports itself
        if e.code not in (0, None):
            # a launcher gave up on a job (e.g. scancel on Slurm): name the runs that did not end
            if multirun and cfg is None and _CURRENT.folder is not None and not _CURRENT.search:
                _collect_sweep_failures(_CURRENT)
                if _CURRENT.failures:
                    return _CURRENT
            raise ConfigError(
                f"hydra stopped with exit code {e.code} (see the message above)"
            ) from None
    finally:
        sys.argv = saved_argv
        GlobalHydra.instance().clear()
    if multirun and cfg is None and _CURRENT.folder is not None and not _CURRENT.search:
        _collect_sweep_failures(_CURRENT)
    return _CURRENT


def _run_folder(overrides: list[str], multirun: bool, root: Path) -> tuple[Path, list[str]]:
    """The run (or sweep) folder: the user's ``hydra.run.dir`` / ``hydra.sweep.dir`` if given (it
    must be new or empty), else one reserved atomically under ``root``; and the overrides that
    hand it to Hydra."""
    user_dir = next(
        (o for o in overrides if o.startswith(("hydra.run.dir=", "hydra.sweep.dir="))), None
    )
    if user_dir is not None:
        folder = Path(user_dir.split("=", 1)[1])
        if folder.exists() and any(folder.iterdir()):
            raise ConfigError(
                f"{user_dir}: that folder exists and is not empty; attnrun never writes into "
                "a used folder, pick another"
            )
        folder.mkdir(parents=True, exist_ok=True)
        return folder, overrides
    if multirun:
        folder = reserve_run_dir(root / "multirun")
        return folder, [*overrides, f"hydra.sweep.dir={folder}"]
    folder = reserve_run_dir(root / "outputs")
    return folder, [*overrides, f"hydra.run.dir={folder}"]


def interrupted_line(result: LaunchResult, multirun: bool) -> str:
    """What a stopped command tells its user: how to continue what it had started."""
    folder = result.folder
    if folder is None:
        return "attnrun: interrupted"
    if result.search:
        return f"attnrun: interrupted; continue the search with: attnrun resume {folder}"
    if multirun:
        return f"attnrun: interrupted; the sweep's runs so far: attnrun runs {folder}"
    if (folder / "checkpoint.pt").is_file():
        return continue_line(folder)
    return f"attnrun: interrupted (run folder: {folder})"


def continue_line(run_dir: Path) -> str:
    """The line a stopped run with a checkpoint ends with (a launch, or a resume stopped again)."""
    return f"attnrun: interrupted; continue it with: attnrun resume {run_dir}"


def _collect_sweep_failures(result: LaunchResult) -> None:
    """Jobs of a launcher that ran them elsewhere (joblib, submitit): read their metrics.json."""
    assert result.folder is not None  # the callers check
    seen = {p.resolve() for p, _, _ in result.failures}
    for sub in sorted(p for p in result.folder.iterdir() if p.is_dir()):
        m = read_metrics(sub)
        if m is None or sub.resolve() in seen:
            continue
        status = m.get("status")
        if status != "completed":
            message = str(m.get("error") or status)
            if status == "interrupted":
                message += f"; continue it with: attnrun resume {sub}"
            elif status == "running":
                message = f"still running, or killed without a word (then: attnrun resume {sub})"
            result.failures.append((sub, message, True))
