"""Typer's help in click's conventions, applied once when :mod:`attnrun.cli.app` is imported.

This Typer prints a value hint after every flag (``--quiet <bool>``), arguments in usage
lines as ``{run_dir}`` / ``[paths]...`` and a default given as text in parentheses
(``[default: (gaussian)]``). attnrun's help shows no hint for a flag (it takes no value),
arguments as ``RUN_DIR`` / ``[PATHS]...`` and every default as ``[default: gaussian]``, as click
and most tools do. Each patch checks that what it wraps exists, so another Typer only loses the
polish.
"""

from __future__ import annotations

import typer.core
from typer.core import TyperArgument, TyperOption


def apply() -> None:
    """Patch :class:`TyperOption` and :class:`TyperArgument` (idempotent)."""
    if getattr(TyperOption, "_attnrun_help", False):
        return
    # setattr (noqa B010): deliberate patches of Typer's classes, which mypy rejects as plain
    # assignments (an attribute the class does not declare; assigning to a method)
    setattr(TyperOption, "_attnrun_help", True)  # noqa: B010
    if hasattr(TyperOption, "display_type_rich"):
        type_hint = TyperOption.display_type_rich

        def display_type_rich(self, ctx):
            return None if self.is_flag else type_hint(self, ctx)

        setattr(TyperOption, "display_type_rich", display_type_rich)  # noqa: B010
    if hasattr(TyperArgument, "_usage_display_name"):
        setattr(TyperArgument, "_usage_display_name", usage_name)  # noqa: B010
    if hasattr(typer.core, "_get_default_string"):
        default_string = typer.core._get_default_string

        def plain_default(obj, *, ctx, show_default_is_str, default_value):
            if show_default_is_str:  # show_default="gaussian": the text as it is
                return str(obj.show_default)
            return default_string(
                obj, ctx=ctx, show_default_is_str=False, default_value=default_value
            )

        typer.core._get_default_string = plain_default


def usage_name(arg: TyperArgument) -> str:
    """``RUN_DIR`` (required), ``[TEXTS]...`` (optional, several): click's usage form."""
    name = (arg.metavar or arg.name or "").upper()
    if not arg.required:
        name = f"[{name}]"
    return name + ("..." if arg.nargs != 1 else "")
