"""What every experiment shares: the base config, the run context, and the run frame.

An experiment is a function ``run(cfg, out_dir, ctx) -> metrics`` registered with
:func:`experiment`. The decorator returns a plain ``run(cfg, out_dir, *, quiet=True) -> metrics``
that tests call directly and the Hydra task calls for the CLI. Around the experiment's own code it:

1. turns ``cfg`` (dataclass, DictConfig or dict) into the typed config and validates it
   (``__post_init__`` raises :class:`~attnrun.errors.ConfigError`) before any work;
2. writes ``config.yaml`` and ``metrics.json`` with ``status: running``;
3. seeds every RNG, resolves the device;
4. runs the experiment and records ``completed`` with its metrics, or ``failed`` with the error,
   or ``interrupted`` on Ctrl-C, SIGTERM or SIGUSR2 (:data:`INTERRUPTING`).
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import logging
import pkgutil
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch
from omegaconf import OmegaConf

from attnrun.device import DEVICE_CHOICES, cpu_threads, resolve_device
from attnrun.errors import AttnrunError, ConfigError, TrainingError
from attnrun.progress import Reporter
from attnrun.registry import Registry
from attnrun.runs.checkpoint import Checkpointer
from attnrun.runs.logger import loggers, make_logger
from attnrun.runs.record import RunRecord
from attnrun.seeding import seed_everything
from attnrun.validation import typed_config

log = logging.getLogger("attnrun")

C = TypeVar("C")


@dataclass
class BaseConfig:
    """Settings every experiment has."""

    seed: int = 0
    device: str = "auto"
    logger: str = "none"  # none | tensorboard (attnrun.runs.logger.loggers)

    def __post_init__(self) -> None:
        loggers.get(self.logger)
        dev = str(self.device)
        if dev not in DEVICE_CHOICES and not dev.startswith("cuda:"):
            raise ConfigError(
                f"device={dev!r} is not valid; valid: {', '.join(DEVICE_CHOICES)}, cuda:N"
            )


@dataclass
class RunContext:
    """Handed to an experiment: where to write, which device, how to report, the data RNG."""

    out_dir: Path
    device: torch.device
    reporter: Reporter
    generator: torch.Generator
    record: RunRecord
    checkpoint: Checkpointer | None = None


@dataclass
class Experiment(Generic[C]):
    """A registered experiment: its name, typed config, run function and headline metrics."""

    name: str
    config_class: type[C]
    body: Callable[[C, Path, RunContext], dict[str, Any]]
    key_metrics: tuple[str, ...]
    help: str
    predictor: Callable[..., Any] | None = None  # attnrun predict (attnrun.predictors)
    check: Callable[[C], None] | None = None  # inputs checked before the CLI makes a folder
    # metric -> "minimize" | "maximize": what a search (hparams_search) may optimise; the first
    # is the default objective
    objectives: dict[str, str] = field(default_factory=dict)

    def make_config(self, cfg: Any) -> C:
        """Typed, validated config from a dataclass instance, DictConfig or dict."""
        return typed_config(self.config_class, cfg)

    def __call__(
        self, cfg: Any, out_dir: str | Path, *, quiet: bool = True, resume: bool = False
    ) -> dict[str, Any]:
        return execute(self, cfg, Path(out_dir), Reporter(quiet=quiet), resume=resume)


def _import_experiments() -> None:
    """Import every module of :mod:`attnrun.experiments` (each registers itself)."""
    import attnrun.experiments as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name != "base" and not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")


#: name → :class:`Experiment`; filled at the first lookup (see :class:`~attnrun.registry.Registry`).
experiments: Registry[Experiment] = Registry("experiment", discover=_import_experiments)


def experiment(
    name: str,
    config_class: type,
    key_metrics: tuple[str, ...],
    help: str,
    predictor: Callable[..., Any] | None = None,
    check: Callable[[Any], None] | None = None,
    objectives: dict[str, str] | None = None,
):
    """Register ``body(cfg, out_dir, ctx) -> metrics`` as experiment ``name``.

    ``check(typed_cfg)`` looks at the inputs (data files) before the CLI reserves a run folder,
    so a missing file is one line and leaves no folder; it raises an :class:`AttnrunError`.

    ``predictor(run_dir, text, out_dir, metrics, *, strict) -> Prediction`` serves ``attnrun
    predict`` on its runs (``strict``: ``--strict``, unknown words are an error). ``objectives``
    maps each metric a search may optimise to ``"minimize"`` or ``"maximize"``; the first is the
    default objective of ``-m hparams_search=<name>``. Returns the :class:`Experiment`, callable
    as ``run(cfg, out_dir, quiet=True)``.
    """
    for metric, direction in (objectives or {}).items():
        if direction not in ("minimize", "maximize"):
            raise ValueError(f"objective {metric!r}: direction {direction!r}")

    def deco(body: Callable) -> Experiment:
        exp = Experiment(
            name, config_class, body, key_metrics, help, predictor, check, dict(objectives or {})
        )
        experiments.register(name)(exp)
        return exp

    return deco


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread on a signal of :data:`INTERRUPTING` so a run is recorded as
    interrupted, its last checkpoint kept (and the CLI exits with 130, as for Ctrl-C)."""


#: the signals that end a run as ``interrupted`` rather than kill it: SIGTERM (``kill``,
#: ``scancel``, a job's time limit) and SIGUSR2, which Slurm sends ``signal_delay_s`` before a
#: job's time limit or on preemption when submitit asks it to (``sbatch --signal=USR2@120``,
#: ``hydra/launcher=attnrun_slurm``); without a handler SIGUSR2 ends a process on the spot
INTERRUPTING = ("SIGTERM", "SIGUSR2")


def _signal_to_exception(signum, frame):  # pragma: no cover - exercised in subprocess tests
    raise Interrupted(signal.Signals(signum).name)


def execute(
    exp: Experiment, cfg: Any, out_dir: Path, reporter: Reporter, *, resume: bool = False
) -> dict[str, Any]:
    """Run ``exp`` with the full record keeping described in the module docstring.

    With ``resume`` the run continues in ``out_dir`` from its last checkpoint (``attnrun resume``).
    """
    typed = exp.make_config(cfg)
    device = resolve_device(typed.device)
    config_yaml = OmegaConf.to_yaml(OmegaConf.structured(typed), resolve=True)
    generator = torch.Generator()
    checkpoint = Checkpointer(out_dir, generator, resume=resume, config_yaml=config_yaml)
    # a resume checks the checkpoint before anything is written into the run
    resumed_from = checkpoint.position() if resume else None
    # before the record, so a missing tensorboard package is a plain config error
    logger = make_logger(typed.logger, out_dir)
    checkpoint.on_save = _log_latest(logger)
    record = RunRecord(out_dir, exp.name, typed.seed, str(device), resumed_from=resumed_from)
    record.start(config_yaml)
    if resumed_from is not None:
        log.info("resumed from epoch %(epoch)d, step %(step)d", resumed_from)
        reporter.info("resumed from epoch {epoch}, step {step}".format(**resumed_from))
    generator.set_state(seed_everything(typed.seed).get_state())
    ctx = RunContext(out_dir, device, reporter, generator, record, checkpoint)

    with _recorded(record, device, out_dir), _signals_interrupt(), logger:
        with cpu_threads(threads_setting(typed)) as threads:
            record.update(threads=threads)
            metrics = exp.body(typed, out_dir, ctx)
        logger.scalars(checkpoint.restored_epoch, {f"final/{k}": v for k, v in metrics.items()})
        logger.figures(sorted(out_dir.glob("*.png")))
    record.finish("completed", metrics)
    log.info("completed: %s", metrics)
    return metrics


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """Each signal of :data:`INTERRUPTING` this platform has raises :class:`Interrupted` in the
    main thread inside the block (submitit's own SIGUSR2 handler, which would requeue or fail
    the job, is set back afterwards)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = [getattr(signal, name) for name in INTERRUPTING if hasattr(signal, name)]
    old = {sig: signal.signal(sig, _signal_to_exception) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _recorded(record: RunRecord, device: torch.device, out_dir: Path) -> Iterator[None]:
    """Record how the block ended — interrupted or failed, with a one-line reason — and turn
    CUDA out-of-memory and a full disk into errors that say what to do."""
    try:
        yield
    except KeyboardInterrupt as e:  # Ctrl-C, or a signal of INTERRUPTING (Interrupted)
        why = str(e) if isinstance(e, Interrupted) else "Ctrl-C"
        record.finish("interrupted", error=f"interrupted ({why})")
        raise
    except AttnrunError as e:
        _finish_failed(record, str(e))
        raise
    except torch.cuda.OutOfMemoryError:
        message = (
            f"CUDA out of memory on {device}: try a smaller batch (e.g. train.batch_size=...), "
            "smaller model sizes, or device=cpu"
        )
        _finish_failed(record, message)
        raise TrainingError(message) from None
    except OSError as e:
        if e.errno != errno.ENOSPC:
            _finish_failed(record, f"{type(e).__name__}: {e}")
            raise
        message = (
            f"no space left on the device holding {out_dir}: free some space; files already "
            "written are intact (every file is written to a temporary name first)"
        )
        _finish_failed(record, message)
        raise AttnrunError(message) from None
    except Exception as e:
        _finish_failed(record, f"{type(e).__name__}: {e}")
        raise


def threads_setting(cfg: Any) -> int:
    """The run's ``train.threads`` (0, the default everywhere: every core this process may use;
    see :func:`attnrun.device.cpu_threads`, which the frame applies around every experiment)."""
    return int(getattr(getattr(cfg, "train", None), "threads", 0) or 0)


def _log_latest(logger):
    """Checkpoint hook: log the newest value of each per-epoch series."""

    def hook(epoch: int, history: dict[str, list] | list[dict] | None) -> None:
        if isinstance(history, list):  # per-epoch records: the newest
            latest = history[-1] if history else {}
        else:  # one series per name: each one's newest value
            latest = {k: v[-1] for k, v in (history or {}).items() if isinstance(v, list) and v}
        logger.scalars(epoch, {k: v for k, v in latest.items() if k != "epoch"})

    return hook


def _finish_failed(record: RunRecord, message: str) -> None:
    """Mark the run failed; if that cannot be written (disk full), keep the last good record."""
    try:
        record.finish("failed", error=message)
    except OSError:
        log.error("could not update %s: %s", record.path, message)
