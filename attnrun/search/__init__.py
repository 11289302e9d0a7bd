"""Hyperparameter search: Optuna's TPE through Hydra (``-m hparams_search=<experiment>``).

:mod:`~attnrun.search.spec` checks a search before it runs and names its folder,
:mod:`~attnrun.search.sweeper` runs the trials through any Hydra launcher with a study that a
later session continues, :mod:`~attnrun.search.study` reads a search folder back for the report.
"""

from __future__ import annotations

from attnrun.search.spec import SEARCH_FILE, STUDY_DB, SearchSpec, plan_search, read_spec
from attnrun.search.study import Search, TrialRow, load_search

__all__ = [
    "SEARCH_FILE",
    "STUDY_DB",
    "Search",
    "SearchSpec",
    "TrialRow",
    "load_search",
    "plan_search",
    "read_spec",
]
