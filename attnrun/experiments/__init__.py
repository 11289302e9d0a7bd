"""The experiments registry. Its first lookup imports every experiment module of this package.

A new experiment is one module here (plus its ``configs/<name>.yaml`` and its
``attnrun/cli/<name>.py`` command); it registers itself with ``@experiment(...)``. The modules are
imported at the registry's first lookup, not when this package is imported, so an experiment's own
modules (its config, its pipeline) may import :mod:`attnrun.experiments.base` without a cycle.
"""

from __future__ import annotations

from attnrun.experiments.base import BaseConfig, Experiment, experiment, experiments


def store_schemas() -> None:
    """Put each experiment's typed config into Hydra's ConfigStore as ``<name>_schema``."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    for name, exp in experiments.items():
        cs.store(name=f"{name}_schema", node=exp.config_class)


__all__ = ["BaseConfig", "Experiment", "experiment", "experiments", "store_schemas"]
