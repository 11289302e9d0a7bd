"""``attnrun resume RUN_DIR``: continue an interrupted, failed or killed run from its checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from attnrun.cli import common
from attnrun.cli.common import fail
from attnrun.errors import AttnrunError

COMMANDS = {
    "resume": "Continue an interrupted, failed or killed run from its last checkpoint to the end."
}


def register(app: typer.Typer) -> None:
    @app.command("resume", help=COMMANDS["resume"])
    def resume(
        run_dir: Path = typer.Argument(
            ..., help="The run folder to continue.", show_default=False, metavar="RUN_DIR"
        ),
        quiet: bool = common.QUIET,
        debug: bool = common.DEBUG,
    ) -> None:
        from attnrun.runs.resume import resume_run

        try:
            resume_run(run_dir, quiet=quiet)
        except AttnrunError as e:
            if debug:
                raise
            fail(str(e))
