"""The recipes of ``docs/develop/extending.md`` work as the page says.

For each recipe the test runs the page's own code blocks — each in the module its first line names
(a copy of that module's namespace, or a new module) — then every ``attnrun …`` command of the
recipe through the CLI at tiny sizes, and checks that the generated reference pages list the new
name. Guards the promise that a new score function, kernel, dataset, decoder or experiment is the
code on that page and nothing else (no list of names to edit, no docs to edit). The toy members are
removed from their registries afterwards.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import shutil
import sys
import types
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from attnrun.cli import app
from attnrun.cli.app import command_modules

from .blocks import ROOT, Block, blocks, commands, split
from .test_commands import tiny

PAGE = ROOT / "docs" / "develop" / "extending.md"


def _sections() -> dict[str, list[Block]]:
    """Blocks by ``## `` section title."""
    lines = PAGE.read_text(encoding="utf-8").splitlines()
    titles = {i + 1: line[3:] for i, line in enumerate(lines) if line.startswith("## ")}
    out: dict[str, list[Block]] = {}
    for block in blocks(PAGE):
        title = titles[max(n for n in titles if n < block.line)]
        out.setdefault(title, []).append(block)
    return out


SECTIONS = _sections()


def _generate():
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs/hooks/generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _target(block: Block) -> str:
    """The module path the block's first line names, e.g. ``attnrun/core/scores.py``."""
    first = block.text.splitlines()[0]
    assert first.startswith("# "), f"{block.where}: first line must name the file"
    return first[2:].split()[0]


@pytest.fixture
def recipe(monkeypatch, tmp_path):
    """Runs a section's blocks; undoes registrations, commands and modules afterwards."""
    added: list[tuple[object, str]] = []  # (registry, name)
    modules: list[str] = []
    n_commands = len(app.registered_commands)
    configs = tmp_path / "configs"
    shutil.copytree(Path(importlib.import_module("attnrun.cli.launch").config_dir()), configs)
    monkeypatch.setattr("attnrun.cli.launch.config_dir", lambda: configs)
    monkeypatch.chdir(tmp_path)

    def run(title: str) -> list[str]:
        from attnrun.registry import Registry

        registries = _registries()
        before = {id(r): set(r.names()) for r in registries}
        cmds: list[str] = []
        try:
            _run_blocks(title, configs, modules, cmds)
        finally:  # a failing block still has its registrations undone
            for r in registries:
                assert isinstance(r, Registry)
                added.extend((r, n) for n in set(r.names()) - before[id(r)])
        return cmds

    yield run
    for registry, name in added:
        registry._items.pop(name, None)  # type: ignore[attr-defined]
    del app.registered_commands[n_commands:]
    for name in modules:
        if name.startswith("command:"):
            command_modules().pop(name.removeprefix("command:"), None)
        sys.modules.pop(name, None)


def _run_blocks(title: str, configs: Path, modules: list[str], cmds: list[str]) -> None:
    """Each block of section ``title`` in the module its first line names (a new module is also
    importable by that name, as it would be once the file exists), YAML into ``configs``."""
    for block in SECTIONS[title]:
        if block.lang == "python":
            path = _target(block)
            name = "docs_recipe_" + path.removesuffix(".py").replace("/", "_")
            module = types.ModuleType(name)
            if (ROOT / path).is_file():  # code added to an existing module: its namespace
                existing = importlib.import_module(path.removesuffix(".py").replace("/", "."))
                module.__dict__.update(
                    {k: v for k, v in vars(existing).items() if not k.startswith("__")}
                )
            sys.modules[name] = module
            modules.append(name)
            dotted = path.removesuffix(".py").replace("/", ".")
            if not (ROOT / path).is_file():  # a new module: importable by its own name too
                sys.modules[dotted] = module
                modules.append(dotted)
            exec(compile(block.text, block.where, "exec"), module.__dict__)
            if hasattr(module, "register") and path.startswith("attnrun/cli/"):
                # what the CLI does for a new file of attnrun/cli: its COMMANDS are looked up
                for command, text in getattr(module, "COMMANDS", {}).items():
                    command_modules()[command] = (dotted, text)
                    modules.append(f"command:{command}")
        elif block.lang == "yaml":
            path = _target(block)
            assert path.startswith("configs/")
            (configs / path.removeprefix("configs/")).write_text(block.text)
            assert yaml.safe_load(block.text)
        cmds += commands(block)


def _registries():
    return [r for _, r in _generate().find_registries()]


def _invoke(command: str):
    words, stdin = split(command)
    argv = tiny(words)[1:]
    result = CliRunner().invoke(app, [*argv, "-q"])
    assert result.exit_code == 0, f"attnrun {' '.join(argv)}\n{result.output}"
    return result


def _metrics(root: Path) -> list[dict]:
    found = [*root.glob("outputs/*/*/metrics.json"), *root.glob("multirun/*/*/*/metrics.json")]
    return [json.loads(p.read_text()) for p in sorted(found)]


def test_the_page_has_the_five_recipes():
    assert {"A score function", "A kernel", "A dataset", "A decoder", "An experiment"} <= set(
        SECTIONS
    )


def test_score_function_recipe(recipe, tmp_path):
    """The toy score is a registry member, trains translate and selfattn, is in the reference."""
    from attnrun.core import score_functions

    cmds = recipe("A score function")
    assert "neg_sq_dist" in score_functions
    s = score_functions.get("neg_sq_dist")(4, 4)
    import torch

    q, k = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
    torch.testing.assert_close(s(q, k), -((q[:, :, None] - k[:, None]) ** 2).sum(-1))
    assert len(cmds) == 2
    for c in cmds:
        _invoke(c)
    assert all(m["status"] == "completed" for m in _metrics(tmp_path)) and _metrics(tmp_path)
    assert "`neg_sq_dist`" in _generate().registries_markdown()


def test_kernel_recipe(recipe, tmp_path):
    from attnrun.regression.kernels import kernels

    [cmd] = recipe("A kernel")
    assert "cosine_sq" in kernels
    _invoke(cmd)
    [m] = _metrics(tmp_path)
    assert m["kernel"] == "cosine_sq" and m["test_mse"] < 1
    assert "`cosine_sq`" in _generate().registries_markdown()


def test_dataset_recipe(recipe, tmp_path):
    [cmd] = recipe("A dataset")
    _invoke(cmd)
    [m] = _metrics(tmp_path)
    assert m["status"] == "completed" and "bleu" in m
    assert "`echo`" in _generate().registries_markdown()


def test_decoder_recipe(recipe, tmp_path):
    from attnrun.translate.models.decoders import decoders

    [cmd] = recipe("A decoder")
    from attnrun.core import Attention

    decoder = decoders.get("luong_feed")(10, 8, 8, 1, attention=Attention("dot", 8, 8))
    assert decoder.uses_feed  # the previous attentional vector is fed back
    _invoke(cmd)
    [m] = _metrics(tmp_path)
    assert m["status"] == "completed"


def test_experiment_recipe(recipe, tmp_path):
    """The new experiment runs and sweeps through its own command; the generated CLI and
    configuration references list it."""
    cmds = recipe("An experiment")
    assert len(cmds) == 2
    for c in cmds:
        _invoke(c)
    metrics = _metrics(tmp_path)
    assert len(metrics) == 1 + 3
    by_t = {round(m["entropy"], 3) for m in metrics}
    assert len(by_t) >= 3  # temperature 0.1, 0.5, 1, 10 give different entropies
    gen = _generate()
    assert "attnrun softmax_temperature" in gen.cli_markdown()
    assert "`temperature`" in gen.config_markdown()
    bad = CliRunner().invoke(app, ["softmax_temperature", "temperature=-1"])
    assert bad.exit_code == 2 and "temperature" in bad.output
