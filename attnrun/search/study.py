"""A search's Optuna study, read back: counts, trials and the best one, for the report."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnrun.errors import AttnrunError
from attnrun.search.spec import STUDY_DB, SearchSpec, read_spec

INTERRUPTED = "interrupted"


def storage_url(db: Path) -> str:
    return f"sqlite:///{Path(db).resolve()}"


def counted(study: Any) -> int:
    """Trials that count towards ``n_trials``: completed, and failed but not interrupted."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL))
    return sum(t.user_attrs.get("status") != INTERRUPTED for t in trials)


@dataclass
class TrialRow:
    """One trial as the report shows it."""

    number: int
    state: str  # completed | failed | interrupted | running | waiting
    value: float | None
    params: dict[str, Any]
    run_dir: str | None
    error: str | None


@dataclass
class Search:
    """A search folder read back: its definition, its study and its trials."""

    folder: Path
    spec: SearchSpec
    study: Any  # optuna.Study
    trials: list[TrialRow] = field(default_factory=list)

    @property
    def completed(self) -> list[TrialRow]:
        return [t for t in self.trials if t.state == "completed"]

    @property
    def best(self) -> TrialRow | None:
        done = self.completed
        if not done:
            return None
        sign = 1 if self.spec.direction == "minimize" else -1

        def rank(t: TrialRow) -> tuple[float, int]:
            assert t.value is not None  # a completed trial told its (finite) value
            return sign * t.value, t.number

        return min(done, key=rank)


def _state(t: Any) -> str:
    name = t.state.name.lower()
    if name == "complete":
        return "completed"
    if name == "fail":
        return str(t.user_attrs.get("status") or "failed")
    return name


def load_search(folder: str | os.PathLike[str]) -> Search | None:
    """The search in ``folder`` (``search.json`` and ``optuna.db``), or None if it holds none."""
    import optuna

    folder = Path(folder)
    spec = read_spec(folder)
    if spec is None or not (folder / STUDY_DB).is_file():
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(
            study_name=spec.experiment, storage=storage_url(folder / STUDY_DB)
        )
    except KeyError:
        raise AttnrunError(
            f"{folder / STUDY_DB}: holds no study of experiment {spec.experiment}"
        ) from None
    rows = []
    for t in study.get_trials(deepcopy=False):
        value = t.value if t.value is not None and math.isfinite(t.value) else None
        rows.append(
            TrialRow(
                t.number,
                _state(t),
                value,
                dict(t.params),
                t.user_attrs.get("run_dir"),
                t.user_attrs.get("error"),
            )
        )
    return Search(folder, spec, study, rows)


def summary_line(search: Search) -> str:
    """``search regress: 20/20 trials (19 completed, 1 failed); best test_mse=0.0123 at trial 7
    (kernel=gaussian, bandwidth=0.21) -> FOLDER``."""
    spec = search.spec
    states: dict[str, int] = {}
    for t in search.trials:
        states[t.state] = states.get(t.state, 0) + 1
    done = counted(search.study)
    parts = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
    line = f"search {spec.experiment}: {done}/{spec.n_trials} trials ({parts or 'none run'})"
    best = search.best
    if best is None:
        line += f"; no trial completed, no best {spec.objective}"
    else:
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in best.params.items())
        line += f"; best {spec.objective}={best.value:.6g} at trial {best.number} ({params})"
    return f"{line} -> {search.folder}"


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
