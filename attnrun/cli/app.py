"""The Typer application: one command per experiment, plus run-management commands.

Errors are one line on stderr (``attnrun: error: ...``) with exit code 2 for bad input, never a
traceback (``--debug`` shows it). Click's multi-line usage errors are folded into that form too.

Commands are built lazily: each module of :mod:`attnrun.cli` names its commands in ``COMMANDS``
(name → help) and adds them in ``register(app)``, which is where it imports the registries (and
so torch). ``attnrun --help`` and ``import attnrun.cli`` import none of them; ``attnrun regress``
builds only ``regress``.
"""

from __future__ import annotations

import difflib
import importlib
import os
import pkgutil
import sys
from functools import cache
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from attnrun.cli import help_format
from attnrun.errors import AttnrunError

help_format.apply()


#: modules of :mod:`attnrun.cli` that hold no command (``launch`` imports Hydra and torch)
_NOT_COMMANDS = ("app", "common", "help_format", "launch")


@cache
def command_modules() -> dict[str, tuple[str, str]]:
    """Command name → (the :mod:`attnrun.cli` module that registers it, its help), in module
    order. A module's ``COMMANDS`` names them without running ``register``; a module with only
    ``register`` is built at once to learn its commands (it works, at its import cost)."""
    import attnrun.cli as pkg

    out: dict[str, tuple[str, str]] = {}
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_") or info.name in _NOT_COMMANDS:
            continue
        module = importlib.import_module(f"attnrun.cli.{info.name}")
        if not hasattr(module, "register"):
            continue
        commands = getattr(module, "COMMANDS", None)
        if commands is None:
            commands = {name: cmd.help or "" for name, cmd in _built(module.__name__).items()}
        for name, text in commands.items():
            out[name] = (module.__name__, text)
    return out


@cache
def _built(module_name: str) -> dict[str, TyperCommand]:
    """The click commands a module's ``register`` adds, on a Typer of their own."""
    own = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    importlib.import_module(module_name).register(own)
    own.callback()(lambda: None)  # a group even for a module with one command
    built: dict[str, TyperCommand] = {}
    for name, cmd in typer.main.get_group(own).commands.items():
        assert isinstance(cmd, TyperCommand), name  # register() adds commands, not groups
        built[name] = cmd
    return built


def build_command(name: str) -> TyperCommand:
    """The click command ``name``, built by its module's ``register``."""
    return _built(command_modules()[name][0])[name]


def click_usage_error() -> type[Exception]:
    """The UsageError class of the click this Typer uses (vendored or not)."""
    import typer.core as core

    click = getattr(core, "_click", None) or importlib.import_module("click")
    return click.exceptions.UsageError


class _OneLineErrors(TyperGroup):
    """Runs the CLI in non-standalone mode and turns every error into one line and an exit code.

    Commands come from :func:`command_modules`; the top-level help lists them from their
    ``COMMANDS`` help without building any."""

    _listing = False

    def list_commands(self, ctx) -> list[str]:
        return list(command_modules())

    def get_command(self, ctx, cmd_name: str):
        modules = command_modules()
        if cmd_name not in modules:
            return None
        if self._listing:  # the top-level help needs only each command's help text
            return TyperCommand(cmd_name, help=modules[cmd_name][1])
        return build_command(cmd_name)

    def resolve_command(self, ctx, args):
        """Click's lookup; an unknown name suggests the closest commands (Typer's own
        suggestion looks only at commands already built)."""
        try:
            return super().resolve_command(ctx, args)
        except click_usage_error() as e:
            close = difflib.get_close_matches(args[0], list(command_modules())) if args else []
            if close and "Did you mean" not in e.message:
                names = ", ".join(repr(c) for c in close)
                e.message = f"{e.message.rstrip('.')}. Did you mean {names}?"
            raise

    def format_help(self, ctx, formatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        debug = os.environ.get("ATTNRUN_DEBUG") == "1" or "--debug" in (args or sys.argv[1:])
        try:
            rv = super().main(
                args=args,
                prog_name=prog_name or "attnrun",
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except typer.TyperException as e:  # click's UsageError, BadParameter, ...
            name = type(e).__name__
            if name == "NoArgsIsHelpError":
                print(e.ctx.get_help() if getattr(e, "ctx", None) else str(e))
                sys.exit(0)
            print(f"attnrun: error: {e.format_message()}", file=sys.stderr)
            sys.exit(getattr(e, "exit_code", 2) or 2)
        except (KeyboardInterrupt, typer.Abort):
            print("attnrun: interrupted", file=sys.stderr)
            sys.exit(130)
        except AttnrunError as e:
            if debug:
                raise
            print(f"attnrun: error: {e}", file=sys.stderr)
            sys.exit(2)
        except Exception as e:
            if debug:
                raise
            print(
                f"attnrun: internal error: {type(e).__name__}: {e} (run with --debug for the "
                "traceback)",
                file=sys.stderr,
            )
            sys.exit(1)
        code = rv if isinstance(rv, int) else 0
        if code == 130:  # typer turns Ctrl-C into a silent exit 130; run commands say more first
            print("attnrun: interrupted", file=sys.stderr)
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(
    name="attnrun",
    cls=_OneLineErrors,
    help=(
        "Run, measure and compare attention mechanisms: kernel regression, translation, "
        "self-attention."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def version_line() -> str:
    """``attnrun VERSION (Python X.Y.Z, torch V)``: what a bug report needs, read from the
    installed metadata, so ``--version`` imports no torch."""
    from importlib.metadata import PackageNotFoundError, version

    from attnrun import __version__

    try:
        torch = version("torch")
    except PackageNotFoundError:
        torch = "not installed"
    return f"attnrun {__version__} (Python {sys.version.split()[0]}, torch {torch})"


def _print_version(value: bool) -> None:
    if value:
        print(version_line())
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        callback=_print_version,
        is_eager=True,
        help="Print attnrun's, Python's and torch's versions and exit.",
    ),
) -> None:
    """Run, measure and compare attention mechanisms: kernel regression, translation,
    self-attention."""


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point."""
    return app(args=argv)
