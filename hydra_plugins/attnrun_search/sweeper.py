"""``hydra/sweeper=attnrun_optuna``: the Optuna sweeper of hydra-optuna-sweeper, made resumable.

Hydra instantiates plugins only from the ``hydra_plugins`` package, so the class lives here; its
config (:class:`AttnrunOptunaSweeperConf`, the stock ``optuna`` sweeper's plus ``objective``) is
stored in Hydra's ConfigStore when Hydra scans this package. The work is done by
:class:`attnrun.search.sweeper.ResumableOptunaSweeper`.
"""

# no ``from __future__ import annotations``: Hydra's plugin scan imports this module outside
# sys.modules, where dataclasses cannot resolve string annotations
from dataclasses import dataclass
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf

from attnrun.search.sweeper import ResumableOptunaSweeper


class AttnrunOptunaSweeper(ResumableOptunaSweeper):
    """The sweeper Hydra instantiates (``_target_`` must be under ``hydra_plugins``)."""


@dataclass
class AttnrunOptunaSweeperConf(OptunaSweeperConf):
    """The ``optuna`` sweeper's settings; ``objective`` / ``direction`` null take the
    experiment's registered objective (:attr:`attnrun.experiments.base.Experiment.objectives`),
    ``storage`` null is ``sqlite:///<sweep folder>/optuna.db``, ``study_name`` null the
    experiment's name. A failed trial never stops the search (``max_failure_rate: 1``)."""

    _target_: str = "hydra_plugins.attnrun_search.sweeper.AttnrunOptunaSweeper"
    objective: Optional[str] = None  # noqa: UP045 (see the imports)
    direction: Any = None
    n_jobs: int = 1
    max_failure_rate: float = 1.0


ConfigStore.instance().store(
    group="hydra/sweeper",
    name="attnrun_optuna",
    node=AttnrunOptunaSweeperConf,
    provider="attnrun",
)
