"""``attnrun resume RUN_DIR``: continue an interrupted, failed or killed run from its checkpoint."""

from __future__ import annotations

import sys
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
        """Continue an interrupted, failed or killed run from its last checkpoint to the end,
        or a search (a sweep folder with search.json) to its n_trials."""
        from attnrun.cli.launch import continue_line
        from attnrun.runs.resume import resume_run
        from attnrun.search import read_spec

        try:
            spec = read_spec(run_dir) if run_dir.is_dir() else None
            if spec is not None:
                common.run_command(
                    spec.experiment,
                    {},
                    [*spec.overrides, f"hydra.sweep.dir={run_dir}"],
                    multirun=True,
                    cfg=None,
                    quiet=quiet,
                    debug=debug,
                    root=run_dir,
                )
                return
            resume_run(run_dir, quiet=quiet)
        except KeyboardInterrupt:  # stopped again: the run recorded itself interrupted
            print(continue_line(run_dir), file=sys.stderr)
            raise SystemExit(130) from None
        except AttnrunError as e:
            if debug:
                raise
            fail(str(e))
