"""The ``attnrun`` command line (Typer)."""

from attnrun.cli.app import app, main

__all__ = ["app", "main"]
