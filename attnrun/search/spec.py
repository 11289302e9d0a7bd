"""What a search is, checked before anything runs: ``-m hparams_search=<name>`` and friends.

A search is a multirun whose sweeper is ``attnrun_optuna`` (``configs/hparams_search/*.yaml``
select it). :func:`plan_search` composes the command's config once, and:

1. reads the space (``hydra.sweeper.params`` and any sweep override on the command line, e.g.
   ``bandwidth=tag(log,interval(0.01,2))``), the objective and its direction (the experiment's
   registered :attr:`~attnrun.experiments.base.Experiment.objectives` unless set), ``n_trials``
   and the sampler;
2. refuses, with one line, an empty space, a key the experiment's config does not have, a value
   of the space the experiment's config refuses (each choice, each interval's ends),
   ``n_trials < 1``, an objective the experiment does not report;
3. names the search's folder: ``hydra.sweep.dir`` if given, else
   ``<root>/multirun/search-<experiment>-<digest>``, the digest of everything that defines the
   search but ``n_trials`` — so the same command continues the same study — and checks a folder
   that holds a search already holds this one (same experiment, same definition).

``search.json`` in the folder records the definition and the command's overrides
(``attnrun resume SWEEP_DIR`` reruns them); ``optuna.db`` is the study (SQLite).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from attnrun.errors import ConfigError
from attnrun.validation import one_of, require

SEARCH_FILE = "search.json"
STUDY_DB = "optuna.db"
SWEEPER_TARGET = "hydra_plugins.attnrun_search.sweeper.AttnrunOptunaSweeper"
STOCK_TARGET = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
PARAMS_PREFIX = "hydra.sweeper.params."
# what may change between two sessions of one search: its length, its parallelism, where it runs
_NOT_IDENTITY = ("n_trials", "overrides")


@dataclass
class SearchSpec:
    """One search's definition (``search.json``); :meth:`identity` is what must not change."""

    experiment: str
    objective: str
    direction: str  # minimize | maximize
    space: dict[str, str]  # key -> Hydra sweep expression, e.g. "tag(log, interval(0.01, 2))"
    fixed: list[str]  # the experiment's own overrides outside the space
    sampler: dict[str, Any]
    config: str  # the composed experiment config (space keys at their defaults), YAML
    n_trials: int
    overrides: list[str] = field(default_factory=list)  # the command's, for attnrun resume

    def identity(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in _NOT_IDENTITY}

    def digest(self) -> str:
        text = json.dumps(self.identity(), sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def objective_of(exp: Any, objective: str | None, direction: Any) -> tuple[str, str]:
    """``(metric, direction)``: the experiment's default objective unless ``objective`` is set;
    ConfigError for a metric the experiment does not report or a direction against it."""
    if not exp.objectives:
        raise ConfigError(f"experiment {exp.name} registers no objective to search on")
    metric = objective if objective is not None else next(iter(exp.objectives))
    one_of("hydra.sweeper.objective", metric, list(exp.objectives))
    expected = exp.objectives[metric]
    given = getattr(direction, "name", direction)
    if given is not None:
        require(
            str(given) == expected,
            "hydra.sweeper.direction",
            str(given),
            f"{expected} ({exp.name} reports {metric} to be {expected[:-1]}ed)",
        )
    return metric, expected


def space_overrides(overrides: list[str]) -> list[str]:
    """``hydra.sweeper.params.K=EXPR`` as the plain sweep override ``K=EXPR``, which the sweeper
    reads the same way (arguments win over ``params``): Hydra refuses sweeps over its own config,
    and a dotted ``K`` (``train.lr``) cannot be a key of the ``params`` dict on a command line."""
    out = []
    for o in overrides:
        bare = o.lstrip("+~")
        if bare.startswith(PARAMS_PREFIX) and "=" in bare and not o.startswith("~"):
            o = bare[len(PARAMS_PREFIX) :]
        out.append(o)
    return out


def _parse(overrides: list[str]) -> list[Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        return OverridesParser.create().parse_overrides(overrides)
    except HydraException as e:
        raise ConfigError(str(e).strip().splitlines()[0]) from None


def plan_search(
    name: str, overrides: list[str], root: Path, compose_fn: Any
) -> tuple[SearchSpec, Path] | None:
    """The search the overrides describe and its folder, checked; None if it is no search.

    ``compose_fn(overrides, hydra)`` composes the experiment's config (with the ``hydra`` node
    when ``hydra`` is true) and raises ConfigError with one line on a bad override.
    """
    from attnrun.experiments import experiments

    exp = experiments.get(name)
    parsed = _parse(overrides)
    swept = {o.get_key_element(): o.input_line.split("=", 1)[1] for o in parsed if _sweep(o)}
    plain = [o.input_line for o in parsed if not _sweep(o)]
    full = compose_fn(plain, True)
    sweeper = full.hydra.sweeper
    target = str(sweeper.get("_target_", ""))
    if target == STOCK_TARGET:
        raise ConfigError(
            "hydra/sweeper=optuna is not resumable here: use hparams_search=<experiment> or "
            "hydra/sweeper=attnrun_optuna"
        )
    if target != SWEEPER_TARGET:
        return None
    metric, direction = objective_of(exp, sweeper.get("objective"), sweeper.get("direction"))
    n_trials = sweeper.get("n_trials")
    require(isinstance(n_trials, int) and n_trials >= 1, "hydra.sweeper.n_trials", n_trials, ">= 1")
    n_jobs = sweeper.get("n_jobs")
    require(isinstance(n_jobs, int) and n_jobs >= 1, "hydra.sweeper.n_jobs", n_jobs, ">= 1")
    space = {str(k): str(v) for k, v in (sweeper.get("params") or {}).items()}
    space.update(swept)
    own = [o for o in plain if not o.lstrip("+~").startswith(("hydra", "hparams_search"))]
    fixed_keys = {o.split("=", 1)[0].lstrip("+~") for o in own}
    space = {k: v for k, v in space.items() if k not in fixed_keys}
    if not space:
        raise ConfigError(
            "the search space is empty: give it with hparams_search=<experiment> or "
            "hydra.sweeper.params.<key>=<choice(...)|interval(...)>"
        )
    base = compose_fn(own, False)
    exp.make_config(base)  # the fixed part first, so its errors are not blamed on the space
    choices = full.hydra.runtime.get("choices") or {}
    for key, expr in sorted(space.items()):
        _check_dimension(name, key, expr, base, choices, own, compose_fn, exp)
    sampler: dict[str, Any] = {}
    if sweeper.sampler:
        container = OmegaConf.to_container(sweeper.sampler, resolve=True)
        assert isinstance(container, dict)  # a mapping node gives a dict
        sampler = {str(k): v for k, v in container.items()}
    spec = SearchSpec(
        experiment=name,
        objective=metric,
        direction=direction,
        space=dict(sorted(space.items())),
        fixed=sorted(own),
        sampler=sampler,
        config=OmegaConf.to_yaml(base, resolve=True),
        n_trials=int(n_trials),
        overrides=[o for o in overrides if not o.startswith("hydra.sweep.dir=")],
    )
    user_dir = next((o for o in overrides if o.startswith("hydra.sweep.dir=")), None)
    folder = (
        Path(user_dir.split("=", 1)[1])
        if user_dir
        else Path(root) / "multirun" / f"search-{name}-{spec.digest()}"
    )
    check_folder(spec, folder)
    return spec, folder


def _sweep(o: Any) -> bool:
    return o.is_sweep_override() and not o.is_hydra_override()


def _check_dimension(
    name: str,
    key: str,
    expr: str,
    base: DictConfig,
    choices: Any,
    own: list[str],
    compose_fn: Any,
    exp: Any,
) -> None:
    """``key`` exists in the experiment's config (or is a config group) and every value the
    space can give it — each choice, both ends of an interval — makes a valid config."""
    from hydra_plugins.hydra_optuna_sweeper._impl import create_optuna_distribution_from_override

    missing = object()
    if key not in choices and OmegaConf.select(base, key, default=missing) is missing:
        raise ConfigError(f"hydra.sweeper.params.{key}: {key!r} is not a key of the {name} config")
    (override,) = _parse([f"{key}={expr}"])
    try:
        dist = create_optuna_distribution_from_override(override)
    except Exception as e:  # the plugin asserts on odd values
        raise ConfigError(f"hydra.sweeper.params.{key}={expr}: {e}") from None
    if isinstance(dist, str):  # a single value: not a dimension
        raise ConfigError(
            f"hydra.sweeper.params.{key}={expr} is not valid; allowed: choice(...), range(...), "
            "interval(...) or tag(log, interval(...))"
        )
    values = getattr(dist, "choices", None) or (dist.low, dist.high)
    for value in values:
        cfg = compose_fn([*own, f"{key}={value}"], False)
        try:
            exp.make_config(cfg)
        except ConfigError as e:
            raise ConfigError(f"search space {key}={expr}: {e}") from None


def read_spec(folder: str | Path) -> SearchSpec | None:
    """The ``search.json`` of ``folder``, or None if it has none."""
    path = Path(folder) / SEARCH_FILE
    if not path.is_file():
        return None
    try:
        return SearchSpec(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as e:
        raise ConfigError(f"{path}: not a readable search record ({e})") from None


def write_spec(spec: SearchSpec, folder: Path) -> None:
    from attnrun.io import write_json

    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / SEARCH_FILE, asdict(spec))


def check_folder(spec: SearchSpec, folder: Path) -> None:
    """A folder that holds a search must hold this one; any other used folder is refused."""
    stored = read_spec(folder)
    if stored is None:
        if folder.exists() and any(folder.iterdir()):
            raise ConfigError(
                f"hydra.sweep.dir={folder}: that folder exists and is not a search's; attnrun "
                "never writes into a used folder, pick another"
            )
        return
    if stored.experiment != spec.experiment:
        raise ConfigError(
            f"{folder} holds a search of experiment {stored.experiment}, not {spec.experiment}; "
            "pick another hydra.sweep.dir"
        )
    old, new = stored.identity(), spec.identity()
    changed = [k for k in new if old.get(k) != new[k]]
    if changed:
        raise ConfigError(
            f"{folder}: the search's config changed since it started ({', '.join(changed)}); "
            "start a new search in another hydra.sweep.dir, or undo the change to continue it"
        )
