"""Run management and comparison reports: collect run folders, tabulate, plot.

``make_report(paths)`` is what ``attnrun report`` does, callable from Python and tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from attnrun.report.collect import Run, collect, find_run_dirs, load_run
from attnrun.report.table import Report, build, write_csv, write_markdown


@dataclass
class ReportFiles:
    """What :func:`make_report` wrote."""

    report: Report
    csv: Path
    markdown: Path
    plots: list[Path] = field(default_factory=list)


def make_report(
    paths: list[str | os.PathLike], out: str | os.PathLike | None = None, plots: bool = True
) -> ReportFiles:
    """Collect the runs under ``paths``; write report.csv, report.md and report_*.png into ``out``.

    ``out`` defaults to the first path. Raises :class:`~attnrun.errors.AttnrunError` when a path
    does not exist or holds no run.
    """
    runs = collect(paths)
    out_dir = Path(out if out is not None else paths[0])
    out_dir.mkdir(parents=True, exist_ok=True)
    # folders are named relative to the deepest folder holding every PATH
    base = Path(os.path.commonpath([Path(p).resolve() for p in paths]))
    rep = build(runs, base)
    written: list[Path] = []
    if plots:
        from attnrun.report.plots import draw_all

        written = draw_all(rep, out_dir)
    csv_path, md_path = out_dir / "report.csv", out_dir / "report.md"
    write_csv(rep, csv_path)
    write_markdown(rep, md_path, written)
    return ReportFiles(rep, csv_path, md_path, written)


__all__ = [
    "Report",
    "ReportFiles",
    "Run",
    "build",
    "collect",
    "find_run_dirs",
    "load_run",
    "make_report",
]
