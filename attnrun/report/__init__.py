"""Run management and comparison reports: collect run folders, tabulate, plot, one HTML page.

``make_report(paths)`` is what ``attnrun report`` does, callable from Python and tests;
``build_report(paths)`` and ``render_page(rep)`` give the same report in memory (the notebook API).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from attnrun.io import write_text
from attnrun.report.collect import Run, collect, find_run_dirs, load_run
from attnrun.report.table import Report, build, write_csv, write_markdown

CSV, MARKDOWN, HTML = "report.csv", "report.md", "report.html"


@dataclass
class ReportFiles:
    """What :func:`make_report` wrote."""

    report: Report
    csv: Path
    markdown: Path
    html: Path
    plots: list[Path] = field(default_factory=list)


def build_report(paths: Sequence[str | os.PathLike]) -> Report:
    """Collect the runs under ``paths`` into a :class:`Report`; writes nothing.

    Raises :class:`~attnrun.errors.AttnrunError` when a path does not exist or holds no run.
    """
    from attnrun.search import load_search

    paths = list(paths)
    runs = collect(paths)
    # folders are named relative to the deepest folder holding every PATH
    base = Path(os.path.commonpath([Path(p).resolve() for p in paths]))
    rep = build(runs, base)
    if len(paths) == 1:
        rep.search = load_search(paths[0])
    return rep


def render_page(rep: Report, page_dir: str | os.PathLike, plots: bool = True) -> str:
    """``report.html`` as a string, plots inlined; viewer links are relative to ``page_dir``."""
    from attnrun.report.page import report_page
    from attnrun.report.plots import render_all

    return report_page(rep, render_all(rep) if plots else [], page_dir)


def make_report(
    paths: Sequence[str | os.PathLike], out: str | os.PathLike | None = None, plots: bool = True
) -> ReportFiles:
    """Collect the runs under ``paths``; write report.csv, report.md, report.html and
    report_*.png into ``out`` (default: the first path).

    Raises :class:`~attnrun.errors.AttnrunError` when a path does not exist or holds no run;
    then nothing is written and no folder is made.
    """
    from attnrun.report.page import report_page
    from attnrun.report.plots import render_all, write_plots

    paths = list(paths)
    rep = build_report(paths)
    out_dir = Path(out if out is not None else paths[0])
    rendered = render_all(rep) if plots else []
    out_dir.mkdir(parents=True, exist_ok=True)
    written = write_plots(rendered, out_dir)
    csv_path, md_path, html_path = out_dir / CSV, out_dir / MARKDOWN, out_dir / HTML
    write_csv(rep, csv_path)
    write_markdown(rep, md_path, written, page=HTML)
    write_text(html_path, report_page(rep, rendered, out_dir))
    return ReportFiles(rep, csv_path, md_path, html_path, written)


__all__ = [
    "Report",
    "ReportFiles",
    "Run",
    "build",
    "build_report",
    "collect",
    "find_run_dirs",
    "load_run",
    "make_report",
    "render_page",
]
