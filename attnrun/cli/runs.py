"""``attnrun runs [PATH]`` lists recent runs; ``attnrun show RUN_DIR`` shows one run."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from attnrun.cli import common
from attnrun.errors import AttnrunError

DEFAULT_ROOTS = (Path("outputs"), Path("multirun"))

COMMANDS = {
    "runs": (
        "List recent runs, newest first: time, experiment, status, result (the key metric, "
        "or why a run failed), folder."
    ),
    "show": (
        "Show one run: why it failed (if it did), its metrics and artefacts; --config adds "
        "its config."
    ),
}

PATHS = typer.Argument(
    None, help="Folders to search.", show_default="./outputs and ./multirun", metavar="PATH"
)
LIMIT = typer.Option(20, "--limit", "-n", min=1, help="Show at most N runs.")
STATUS = typer.Option(
    None,
    "--status",
    "-s",
    help="Only runs with this status: completed | failed | running | interrupted | unreadable.",
)
CONFIG = typer.Option(False, "--config", "-c", help="Print the run's config.yaml too.")
RUN_DIR = typer.Argument(
    ...,
    help="A run folder (holds metrics.json and config.yaml).",
    show_default=False,
    metavar="RUN_DIR",
)


def register(app: typer.Typer) -> None:
    @app.command("runs", help=COMMANDS["runs"])
    def runs(paths: list[Path] = PATHS, limit: int = LIMIT, status: str = STATUS) -> None:
        from attnrun.report import listing

        try:
            rows = listing.recent_runs(paths or None, DEFAULT_ROOTS, status=status)
        except AttnrunError as e:
            common.fail(str(e))
        if not rows:
            where = " ".join(str(p) for p in (paths or DEFAULT_ROOTS))
            extra = f" with status {status}" if status else ""
            print(f"no runs{extra} under {where}", file=sys.stderr)
            return
        listing.print_runs(rows[:limit], total=len(rows), rich=sys.stdout.isatty())

    @app.command("show", help=COMMANDS["show"])
    def show(run_dir: Path = RUN_DIR, config: bool = CONFIG) -> None:
        from attnrun.report import listing

        try:
            listing.show_run(run_dir, rich=sys.stdout.isatty(), config=config)
        except AttnrunError as e:
            common.fail(str(e))
