"""Every shipped config composes into its typed schema; bad values fail at once."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from attnrun.cli.launch import config_dir, expand_jobs, validate
from attnrun.errors import ConfigError
from attnrun.experiments import experiments, store_schemas


def _primary_configs():
    return sorted(p.stem for p in config_dir().glob("*.yaml"))


def test_every_experiment_has_a_primary_config_and_back():
    assert set(_primary_configs()) == set(experiments.names())


def _group_options():
    """(experiment, group, option) for every config group file an experiment's config uses."""
    store_schemas()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        keys = {name: set(compose(config_name=name)) for name in experiments.names()}
    GlobalHydra.instance().clear()
    out = []
    for group_dir in sorted(p for p in config_dir().iterdir() if p.is_dir()):
        for option in sorted(group_dir.glob("*.yaml")):
            out += [
                (n, group_dir.name, option.stem) for n in sorted(keys) if group_dir.name in keys[n]
            ]
    return out


@pytest.mark.parametrize("name", sorted(experiments.names()))
def test_primary_config_composes_into_schema(name):
    store_schemas()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose(config_name=name)
    typed = experiments.get(name).make_config(cfg)
    assert isinstance(typed, experiments.get(name).config_class)


@pytest.mark.parametrize(("name", "group", "option"), _group_options())
def test_group_options_compose(name, group, option):
    """Each group option composes into every experiment whose primary config uses that group."""
    store_schemas()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose(config_name=name, overrides=[f"{group}={option}"])
    experiments.get(name).make_config(cfg)


def test_bad_type_fails_before_anything_runs():
    with pytest.raises(ConfigError, match=r"data\.n_train"):
        validate("regress", ["data.n_train=abc"], multirun=False)


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match="nonsense"):
        validate("regress", ["nonsense=1"], multirun=False)


def test_unknown_group_option_names_the_valid_ones():
    """Guards Hydra's "Could not find 'recipe/nope'" said as ``recipe=nope is not valid``, with
    the group's options."""
    valid = "coref, multi30k, multi30k_rnn"
    with pytest.raises(ConfigError, match=rf"^recipe=nope is not valid; valid: {valid}$"):
        validate("translate", ["recipe=nope"], multirun=False)


def test_sweep_values_are_each_validated():
    with pytest.raises(ConfigError, match="kernel='nope' is not valid"):
        validate("regress", ["kernel=gaussian,nope"], multirun=True)


def test_sweep_without_multirun_is_refused():
    with pytest.raises(ConfigError, match="--multirun"):
        expand_jobs(["kernel=gaussian,boxcar"], multirun=False)


def test_sweep_expands_to_cartesian_product():
    jobs = expand_jobs(["kernel=gaussian,boxcar", "seed=0,1,2"], multirun=True)
    assert len(jobs) == 6


@pytest.mark.parametrize("name", sorted(experiments.names()))
def test_yaml_defaults_agree_with_the_dataclass(name):
    """Guards against a default written twice that drifted: every value the shipped YAML composes
    to equals the typed schema's own default."""
    from omegaconf import OmegaConf

    store_schemas()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose(config_name=name)
    GlobalHydra.instance().clear()
    composed = OmegaConf.to_container(cfg, resolve=True)
    composed.pop("hydra", None)
    schema = OmegaConf.to_container(OmegaConf.structured(experiments.get(name).config_class))
    assert composed == schema


def test_attention_group_options_are_the_window_registry():
    """The config group files ``configs/attention/*.yaml`` are exactly the core's windows."""
    from attnrun.core import windows

    options = {p.stem for p in (config_dir() / "attention").glob("*.yaml")}
    assert options == set(windows.names())
