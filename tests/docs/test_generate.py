"""The generated reference pages (``docs/hooks/generate.py``) list what the code has.

Guards against a reference that silently drops names: every command and option of the Typer app,
every key of every experiment's schema, every name of every registry, and a build that accepts a
misspelt marker.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import typing

import click
import pytest
import typer.main

from attnrun.cli import app
from attnrun.experiments import experiments

from .blocks import ROOT


@pytest.fixture(scope="module")
def gen():
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs/hooks/generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_has_every_command_and_option(gen):
    text = gen.cli_markdown()
    group = typer.main.get_command(app)
    ctx = click.Context(group, info_name="attnrun")
    for name in group.list_commands(ctx):
        assert f"## `attnrun {name}`" in text
        for param in group.get_command(ctx, name).params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("-"):
                    assert f"`{opt}`" in text, (name, opt)


def _keys(cls, prefix=""):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _keys(hints[f.name], f"{prefix}{f.name}.")
        else:
            yield prefix + f.name


def test_configuration_reference_has_every_key_with_its_default(gen):
    text = gen.config_markdown()
    for name in experiments.names():
        section = text.split(f"## `{name}`")[1].split("\n## ")[0]
        for key in _keys(experiments.get(name).config_class):
            assert f"| `{key}` |" in section, (name, key)
    assert "| `train.epochs` | int | `8` |" in text.split("## `translate`")[1]
    # a comment written beside the field in the dataclass
    assert "the dataset's test split" in text


def test_registry_reference_has_every_name(gen):
    text = gen.registries_markdown()
    regs = gen.find_registries()
    kinds = {r.kind for _, r in regs}
    expected = {"score function", "kernel", "attention window", "decoder", "dataset", "tokenizer"}
    assert expected <= kinds
    for _, registry in regs:
        for name in registry.names():
            assert f"`{name}`" in text


def test_an_unknown_marker_stops_the_build(gen):
    with pytest.raises(KeyError, match="unknown generated block"):
        gen.expand("<!-- attnrun:generate clii -->")
    with pytest.raises(KeyError, match="figures.py"):
        gen.expand("<!-- attnrun:figure no-such-figure -->")


def test_import_graph_flags_upward_imports(gen):
    """An import from a lower layer into a higher one is listed with the module that makes it."""
    text = gen.import_graph_markdown()
    assert text.startswith('<div class="attnrun-graph"><svg')
    edges = gen.import_edges()
    assert ("cli", "experiments") in edges and ("core", "cli") not in edges
    assert "`translate` → `experiments` | `attnrun/translate/config.py`" in text
