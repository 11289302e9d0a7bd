"""Package layout that pyproject.toml alone cannot say.

The Hydra configs live in the repository's top-level ``configs/`` folder and ship inside the wheel
as the package ``attnrun.configs`` (its ``__init__.py`` makes Hydra's ``pkg://attnrun.configs``
work), so a non-editable install finds them from any folder.
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["attnrun", "attnrun.*"]),
        "attnrun.configs",
        "hydra_plugins.attnrun_search",  # the attnrun_optuna sweeper (Hydra finds plugins there)
    ],
    package_dir={"attnrun.configs": "configs"},
)
