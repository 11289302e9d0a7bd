"""The Typer application: one command per experiment, plus run-management commands.

Errors are one line on stderr (``attnrun: error: ...``) with exit code 2 for bad input, never a
traceback (``--debug`` shows it). Click's multi-line usage errors are folded into that form too.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from attnrun.errors import AttnrunError


class _OneLineErrors(TyperGroup):
    """Runs the CLI in non-standalone mode and turns every error into one line and an exit code."""

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


def _register_commands() -> None:
    """Every module of attnrun.cli with a ``register(app)`` function adds its command(s)."""
    import importlib
    import pkgutil

    import attnrun.cli as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name in ("app", "common", "launch") or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"attnrun.cli.{info.name}")
        if hasattr(module, "register"):
            module.register(app)


_register_commands()


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point."""
    return app(args=argv)
