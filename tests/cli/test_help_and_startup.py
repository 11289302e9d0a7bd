"""What a new user sees first: every command's ``--help`` in one style, a fast ``attnrun
--help`` (no torch, matplotlib or Hydra imported for it), quiet sweeps, and plain log words."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from attnrun.cli import app
from attnrun.cli.app import command_modules

runner = CliRunner()

EXPERIMENTS = ("regress", "translate", "selfattn")
HEAVY = ("torch", "matplotlib", "hydra", "omegaconf")


def help_of(*command: str) -> str:
    r = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    return r.stdout


@pytest.mark.parametrize("command", ["", *command_modules()])
def test_help_has_one_style(command):
    """Guards the oddities of the raw Typer help: value hints on flags, ``{run_dir}`` /
    ``[paths]`` in usage lines, ``(text)`` defaults, a space before a period (rich ate a
    ``[default: ...]`` written into the help text)."""
    out = help_of(*([command] if command else []))
    assert "<bool>" not in out
    usage = next(line for line in out.splitlines() if "Usage:" in line)
    assert "{" not in usage and not re.search(r"\[(?!demo\])[a-z_]+\]", usage), usage
    assert "[default: (" not in out
    assert not re.search(r"\w \.(\s|$)", out), out


@pytest.mark.parametrize("command", EXPERIMENTS)
def test_experiment_commands_show_overrides_and_defaults_alike(command):
    out = help_of(command)
    usage = next(line for line in out.splitlines() if "Usage:" in line)
    assert usage.rstrip().endswith("[OPTIONS] [OVERRIDES]...")
    assert "OVERRIDES are Hydra key=value settings of the run's config" in out
    options = out[out.index("Options") :]
    entries = re.split(r"\n(?=\W*--)", options)  # one entry per option, continuation lines joined
    for entry in entries:  # every option that takes a value shows its default
        if re.match(r"^\W*--(?!help|multirun|quiet|debug|cfg)[a-z]", entry):
            assert "[default: " in entry, entry
    assert sum("[default: " in e for e in entries) >= 4


def test_translate_defaults_come_from_the_schema():
    out = " ".join(help_of("translate").split())
    assert "rnn | transformer. [default: rnn]" in out
    assert "Training epochs. [default: 8]" in out
    assert "greedy). [default: 1]" in out


def test_translate_help_names_every_preset():
    """``translate --help`` names each preset of ``configs/recipe/`` (read from the folder, so a
    new preset file shows up without a code change). Guards presets a user cannot discover."""
    from attnrun.cli.launch import config_dir

    out = " ".join(help_of("translate").split())
    presets = sorted(p.stem for p in (config_dir() / "recipe").glob("*.yaml"))
    assert {"coref", "multi30k", "multi30k_rnn"} <= set(presets)
    for name in presets:
        assert f"recipe={name}" in out


def _imported_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint('HEAVY:', *(m for m in {HEAVY!r} if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return r.stdout[r.stdout.rindex("HEAVY:") :].split()[1:]


def test_import_attnrun_cli_imports_no_heavy_module():
    assert _imported_after("import attnrun.cli") == []


def test_top_level_help_imports_no_heavy_module():
    code = "from attnrun.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    assert _imported_after(code) == []


def test_version_is_one_line_from_the_one_version_home_and_imports_no_torch():
    """``attnrun --version`` (and ``-V``) prints attnrun's, Python's and torch's versions and
    exits 0, importing none of the heavy modules; the installed metadata's version is
    ``attnrun.__version__`` (pyproject reads it from there). Planted bugs caught: the version
    printed but the command going on (exit 2, "Missing command"); torch imported for its
    version."""
    import platform
    from importlib.metadata import version

    import attnrun

    want = f"attnrun {attnrun.__version__} (Python {platform.python_version()}, torch "
    want += f"{version('torch')})\n"
    for flag in ("--version", "-V"):
        r = subprocess.run([sys.executable, "-m", "attnrun", flag], capture_output=True, text=True)
        assert (r.returncode, r.stdout, r.stderr) == (0, want, "")
    assert version("attnrun") == attnrun.__version__
    code = "from attnrun.cli import main\ntry:\n    main(['-V'])\nexcept SystemExit:\n    pass"
    assert _imported_after(code) == []


def test_quiet_sweep_hides_hydra_job_lines(tmp_path):
    args = ["regress", "--root", str(tmp_path), "-m", "kernel=gaussian,boxcar"]
    r = subprocess.run(
        [sys.executable, "-m", "attnrun", *args, "-q", "train.threads=1", "data.n_train=20"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "HYDRA" not in r.stdout + r.stderr
    assert r.stdout.count("regress completed") == 2


def test_a_mistyped_command_suggests_the_closest():
    """Commands are built lazily; the suggestion must still see all of them."""
    r = runner.invoke(app, ["regres"])
    assert r.exit_code == 2
    assert r.stderr == "attnrun: error: No such command 'regres'. Did you mean 'regress'?\n"


def test_ctrl_c_in_any_command_is_one_line_and_exit_130(tmp_path, monkeypatch):
    """Ctrl-C in a command that is not a run (here ``attnrun report``): exit 130 and
    ``attnrun: interrupted`` on stderr, no traceback. Typer turns Ctrl-C into a silent exit 130;
    planted bug caught: the line not printed for it."""
    import attnrun.report

    def stop(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(attnrun.report, "make_report", stop)
    (tmp_path / "run").mkdir()
    r = runner.invoke(app, ["report", str(tmp_path / "run")])
    assert (r.exit_code, r.stderr) == (130, "attnrun: interrupted\n")
