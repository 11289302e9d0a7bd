"""The experiments registry. Importing this package registers every experiment."""

from __future__ import annotations

import importlib
import pkgutil

from attnrun.experiments.base import BaseConfig, Experiment, experiment, experiments

# Each module of this package registers itself with @experiment(...): a new experiment is one
# module here (plus its configs/<name>.yaml and its attnrun/cli/<name>.py command).
for _info in pkgutil.iter_modules(__path__):
    if _info.name != "base" and not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")


def store_schemas() -> None:
    """Put each experiment's typed config into Hydra's ConfigStore as ``<name>_schema``."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    for name, exp in experiments.items():
        cs.store(name=f"{name}_schema", node=exp.config_class)


__all__ = ["BaseConfig", "Experiment", "experiment", "experiments", "store_schemas"]
