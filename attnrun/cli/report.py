"""``attnrun report PATH...``: compare runs in a table, CSV, Markdown, plots and one HTML page."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from attnrun.cli import common
from attnrun.errors import AttnrunError

COMMANDS = {
    "report": (
        "Compare every run under PATH(s): a table with the swept parameters and key metrics, "
        "runs that differ only by seed grouped (mean ± std, n), and report.csv, report.md, "
        "report_*.png and report.html (one self-contained page: sortable tables, the plots, "
        "links to each run's viewer) written into the first PATH (or --out)."
    )
}

PATHS = typer.Argument(
    ..., help="Run, sweep or output folders.", show_default=False, metavar="PATH"
)
OUT = typer.Option(
    None,
    "--out",
    "-o",
    help="Folder for report.csv/.md/.html and report_*.png.",
    show_default="the first PATH",
)
PLOTS = typer.Option(True, "--plots/--no-plots", help="Draw the report_*.png plots.")


def register(app: typer.Typer) -> None:
    @app.command("report", help=COMMANDS["report"])
    def report(
        paths: list[Path] = PATHS,
        out: Path = OUT,
        plots: bool = PLOTS,
        quiet: bool = common.QUIET,
        debug: bool = common.DEBUG,
    ) -> None:
        from attnrun.report import make_report

        try:
            files = make_report(paths, out=out, plots=plots)
        except AttnrunError as e:
            if debug:
                raise
            common.fail(str(e))
        except OSError as e:
            if debug:
                raise
            common.fail(f"cannot write the report into {out or paths[0]}: {e.strerror or e}")
        if not quiet:
            _print_tables(files.report)
        names = [files.csv.name, files.markdown.name, files.html.name]
        names += [p.name for p in files.plots]
        print(
            f"report: {len(files.report.runs)} runs -> {files.csv.parent}/ ({', '.join(names)})",
            flush=True,
        )


def _print_tables(rep) -> None:
    """Rich tables on a terminal; the Markdown tables (plain text) when piped."""
    from attnrun.report import table

    if sys.stdout.isatty():
        from rich.console import Console

        console = Console()
        for t in table.rich_tables(rep):
            console.print(t)
        if rep.same_as:
            console.print(table.same_as_text(rep), highlight=False)
        _print_search(rep)
        return
    print(table.markdown_table(table.run_header(rep), table.run_rows(rep)))
    if rep.has_seed_groups:
        print("\ngrouped over seeds (mean ± std, n):")
        print(table.markdown_table(table.group_header(rep), table.group_rows(rep)))
    if rep.same_as:
        print(table.same_as_text(rep))
    _print_search(rep)
    print(flush=True)


def _print_search(rep) -> None:
    """A search's headline (best trial, importances) and its trials, as plain text."""
    if rep.search is None:
        return
    from attnrun.report import search, table

    print()
    for line in search.headline(rep.search):
        print(line)
    print(table.markdown_table(search.trial_header(rep.search), search.trial_rows(rep.search)))
