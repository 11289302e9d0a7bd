"""The Optuna sweeper of hydra-optuna-sweeper with a study that survives the search's end.

Differences from the stock ``OptunaSweeperImpl.sweep`` (same config, same space syntax):

1. the study is ``sqlite:///<sweep folder>/optuna.db`` named after the experiment, loaded if it
   exists, and ``n_trials`` is the study's total: a search stopped after 7 of 20 trials runs 13
   more when continued (the same command, or ``attnrun resume SWEEP_DIR``);
2. the objective and its direction are the experiment's (:func:`attnrun.search.spec.objective_of`);
3. a trial whose run failed, was interrupted or reported no finite objective is told ``FAIL`` with
   the run's status and error as user attributes (``status``, ``error``) — the search goes on;
4. an interrupted trial (Ctrl-C or a killed search: still ``RUNNING`` when the study is opened
   again) is told ``FAIL`` with ``status: interrupted`` and its parameters are enqueued, so the
   continued search runs that configuration again; it does not count towards ``n_trials``;
5. each trial records its run folder (user attribute ``run_dir``, relative to the sweep folder).
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from hydra_plugins.hydra_optuna_sweeper._impl import (
    OptunaSweeperImpl,
    create_params_from_overrides,
)
from omegaconf import DictConfig, OmegaConf

from attnrun.search.spec import STUDY_DB
from attnrun.search.study import INTERRUPTED, counted, storage_url

log = logging.getLogger(__name__)


class ResumableOptunaSweeper(OptunaSweeperImpl):
    """``OptunaSweeperImpl`` plus ``objective`` and the behaviour in the module docstring."""

    def __init__(self, *, objective: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.objective = objective

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        from attnrun.experiments import experiments
        from attnrun.search.spec import objective_of

        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self.experiment = str(config.hydra.job.config_name)
        exp = experiments.get(self.experiment)
        self.metric, self.direction = objective_of(exp, self.objective, self.direction)

    def sweep(self, arguments: list[str]) -> None:
        self._process_searchspace_config()
        params = [*self._parse_sweeper_params_config(), *arguments]
        space, fixed = create_params_from_overrides(params)
        assert self.config is not None and self.launcher is not None  # set by setup()
        for name in fixed:
            space.pop(name, None)
        sweep_dir = Path(self.sweep_dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(
            study_name=self.study_name or self.experiment,
            storage=self.storage or storage_url(sweep_dir / STUDY_DB),
            sampler=self.sampler,
            direction=self.direction,
            load_if_exists=True,
        )
        study.set_user_attr("objective", self.metric)
        _close_stale(study)
        _reseed(self.sampler, self.config.hydra.sweeper.sampler.get("seed"), len(study.trials))
        to_go = self.n_trials - counted(study)
        log.info(
            "study %s: %d trials counted, %d to go (%s %s)",
            study.study_name,
            self.n_trials - max(to_go, 0),
            max(to_go, 0),
            self.direction,
            self.metric,
        )
        while to_go > 0:
            batch = [study.ask() for _ in range(min(to_go, self.n_jobs))]
            overrides = self._configure_trials(batch, space, fixed)
            first = _next_job(sweep_dir)
            for i, trial in enumerate(batch):
                trial.set_user_attr("run_dir", str(first + i))
            try:
                returns = self.launcher.launch(overrides, initial_job_idx=first)
            except BaseException:  # Ctrl-C, SIGTERM, a launcher that gave up
                for trial in batch:
                    _fail(study, trial, INTERRUPTED, "the search was stopped during this trial")
                raise
            for trial, ret in zip(batch, returns):
                self._tell(study, trial, ret, sweep_dir)
            to_go -= len(batch)
        _write_results(study, sweep_dir)

    def _tell(self, study: optuna.Study, trial: optuna.Trial, ret: Any, sweep_dir: Path) -> None:
        """COMPLETE with the objective, or FAIL with the run's status and error."""
        from attnrun.runs.record import read_metrics

        error: str | None
        try:
            value = ret.return_value
            out = ret.hydra_cfg.hydra.runtime.output_dir if ret.hydra_cfg else None
        except BaseException as e:  # the job raised in its worker
            value, out = None, None
            error = f"{type(e).__name__}: {e}"
        else:
            error = None
        run_dir = Path(out) if out else sweep_dir / str(trial.user_attrs.get("run_dir"))
        if out:
            trial.set_user_attr("run_dir", str(_relative(run_dir, sweep_dir)))
        if isinstance(value, (int, float)) and math.isfinite(value):
            study.tell(trial, float(value))
            return
        m = read_metrics(run_dir) or {}
        status = str(m.get("status") or "failed")
        if status == "completed":
            status = "failed"
            error = f"the run reported no finite {self.metric} ({m.get(self.metric)!r})"
        _fail(study, trial, status, str(error or m.get("error") or status))


def _fail(study: optuna.Study, trial: optuna.Trial, status: str, error: str) -> None:
    """Tell ``FAIL``; an interrupted trial's parameters are enqueued to be run again."""
    trial.set_user_attr("status", status)
    trial.set_user_attr("error", error[:500])
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    log.warning("trial %d %s: %s", trial.number, status, error)
    if status == INTERRUPTED:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.enqueue_trial(trial.params)


def _close_stale(study: optuna.Study) -> None:
    """Trials left RUNNING by a killed search: FAIL, interrupted, enqueued again."""
    for frozen in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        trial = optuna.Trial(study, frozen._trial_id)
        _fail(study, trial, INTERRUPTED, "the search stopped during this trial")


def _reseed(sampler: Any, seed: int | None, n_trials: int) -> None:
    """A continued study draws from ``seed + n_trials``: a seeded sampler built afresh would
    otherwise propose the first session's trials again (TPE's random start-up trials)."""
    if seed is None or n_trials == 0:
        return
    for i, owner in enumerate((sampler, getattr(sampler, "_random_sampler", None))):
        if owner is not None and hasattr(owner, "_rng"):
            owner._rng = np.random.RandomState((seed + n_trials + i) % 2**32)


def _next_job(sweep_dir: Path) -> int:
    """The first job number no run folder of the sweep has."""
    used = [int(p.name) for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()]
    return max(used, default=-1) + 1


def _relative(path: Path, base: Path) -> Path:
    try:
        return path.resolve().relative_to(base.resolve())
    except ValueError:
        return path


def _write_results(study: optuna.Study, sweep_dir: Path) -> None:
    """``optimization_results.yaml`` as the stock sweeper writes it (when a trial completed)."""
    from attnrun.io import write_text

    try:
        best = study.best_trial
    except ValueError:
        log.warning("no trial of the search completed")
        return
    results = {"name": "optuna", "best_params": best.params, "best_value": best.value}
    write_text(sweep_dir / "optimization_results.yaml", OmegaConf.to_yaml(results))
