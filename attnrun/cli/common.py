"""Options every experiment command shares, and the call that turns a command into a run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from attnrun.errors import AttnrunError

MULTIRUN = typer.Option(
    False, "--multirun", "-m", help="Sweep: comma-separated values run as separate jobs."
)
CFG = typer.Option(
    None,
    "--cfg",
    help="Print the composed config (job, hydra or all) and exit.",
    metavar="job|hydra|all",
)
QUIET = typer.Option(False, "--quiet", "-q", help="No progress output; one summary line per run.")
DEBUG = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors.")
ROOT = typer.Option(Path("."), "--root", help="Folder under which outputs/ and multirun/ are made.")
SEED = typer.Option(None, "--seed", help="Seed for every random number generator.")
DEVICE = typer.Option(None, "--device", help="auto | cpu | cuda (auto picks CUDA when present).")

EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


def choices(names: list[str]) -> str:
    return " | ".join(names)


def to_override(key: str, value: Any) -> str:
    if isinstance(value, bool):
        value = str(value).lower()
    return f"{key}={value}"


def run_command(
    name: str,
    typed: dict[str, Any],
    overrides: list[str],
    *,
    multirun: bool,
    cfg: str | None,
    quiet: bool,
    debug: bool,
    root: Path,
) -> None:
    """Launch experiment ``name``; typed options (None = not given) go before raw overrides.

    Exit codes: 0 all jobs completed; 2 bad input (config, data, files); 1 an unexpected failure.
    """
    from attnrun.cli.launch import launch

    given = [to_override(k, v) for k, v in typed.items() if v is not None]
    stray = next((o for o in overrides if o.startswith("-")), None)
    if stray is not None:
        fail(
            f"no such option: {stray.split('=')[0]} (see 'attnrun {name} --help'; "
            "options go before the key=value overrides)"
        )
    try:
        result = launch(
            name,
            [*given, *overrides],
            multirun=multirun,
            cfg=cfg,
            root=root,
            quiet=quiet,
            debug=debug,
        )
    except AttnrunError as e:
        if debug:
            raise
        fail(str(e))
    if result.failures:
        for folder, message, _ in result.failures:
            print(f"attnrun: error: {message} (run folder: {folder})", file=sys.stderr)
        user = all(is_user for _, _, is_user in result.failures)
        if not user and not debug:
            print("attnrun: run again with --debug for the traceback", file=sys.stderr)
        raise typer.Exit(2 if user else 1)


def fail(message: str, code: int = 2) -> None:
    """Print ``attnrun: error: message`` on one line to stderr and exit with ``code``."""
    print(f"attnrun: error: {message}", file=sys.stderr)
    raise typer.Exit(code)
