"""The comparison tables: one row per run, and runs grouped over seeds (mean ± std, n).

:func:`build` turns collected runs into a :class:`Report`; the renderers write it as CSV (one row
per run), Markdown (both tables) and rich tables for the terminal. Writers are atomic, so two
``attnrun report`` processes on one folder leave one whole ``report.csv``, never a mix.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from attnrun.io import atomic_open, write_text
from attnrun.report.collect import UNREADABLE, Run, as_number, key_metrics, swept_keys

STATUS_STYLE = {
    "completed": "green",
    "running": "yellow",
    "failed": "red",
    "interrupted": "magenta",
    "unreadable": "red dim",
}


@dataclass
class Stat:
    """A metric over a group's completed runs: mean, sample std (None when n < 2), n."""

    mean: float | None
    std: float | None
    n: int

    def text(self) -> str:
        if self.mean is None:
            return ""
        if self.std is None:
            return fmt(self.mean)
        return f"{fmt(self.mean)} ± {fmt(self.std, 2)}"


@dataclass
class Group:
    """Runs of one experiment with the same swept values, differing only by seed."""

    experiment: str
    values: tuple[Any, ...]  # one per Report.swept key
    runs: list[Run] = field(default_factory=list)

    def stat(self, metric: str) -> Stat:
        xs = [
            x for r in self.runs if r.status == "completed" and (x := r.metric(metric)) is not None
        ]
        if not xs:
            return Stat(None, None, 0)
        std = statistics.stdev(xs) if len(xs) > 1 else None
        return Stat(statistics.fmean(xs), std, len(xs))

    @property
    def seeds(self) -> list[Any]:
        return [r.seed for r in self.runs]

    def status_text(self) -> str:
        counts: dict[str, int] = {}
        for r in self.runs:
            counts[r.status] = counts.get(r.status, 0) + 1
        return ", ".join(f"{n} {s}" for s, n in counts.items())


@dataclass
class Report:
    """Everything the tables and plots need."""

    runs: list[Run]  # sorted by experiment, swept values, seed
    swept: list[str]
    metrics: list[str]
    groups: list[Group]
    base: Path  # run folders are shown relative to this
    # metrics left out of ``metrics`` because they equal an earlier one in every run
    # (``bleu_lowercase`` when nothing is cased): dropped -> kept; report.csv still has them
    same_as: dict[str, str] = field(default_factory=dict)
    all_metrics: list[str] = field(default_factory=list)  # metrics and same_as, in their order
    search: Any = None  # attnrun.search.Search when the report is of one search folder

    @property
    def several_experiments(self) -> bool:
        return len({r.experiment for r in self.runs if r.status != UNREADABLE}) > 1

    @property
    def has_seed_groups(self) -> bool:
        return any(len(g.runs) > 1 for g in self.groups)

    def label(self, metric: str) -> str:
        """A metric's column name; ``metrics.<name>`` when a swept config key has the same name."""
        return f"metrics.{metric}" if metric in self.swept or metric == "seed" else metric

    def folder(self, run: Run) -> str:
        rel = os.path.relpath(run.path, self.base.resolve())
        return run.path.as_posix() if rel.startswith("..") else Path(rel).as_posix()


def build(runs: Sequence[Run], base: str | os.PathLike) -> Report:
    """Sort runs, find the swept keys and key metrics, and group runs over seeds."""
    runs = list(runs)
    readable = [r for r in runs if r.status != UNREADABLE]
    swept = swept_keys(readable or runs)
    all_metrics = key_metrics(runs)
    same_as = same_metrics(readable, all_metrics)
    metrics = [m for m in all_metrics if m not in same_as]

    def order(r: Run) -> tuple:
        return (
            r.status == UNREADABLE,
            r.experiment,
            *(sort_key(r.config.get(k)) for k in swept),
            sort_key(r.seed),
            str(r.path),
        )

    runs.sort(key=order)
    groups: dict[tuple, Group] = {}
    for r in runs:
        if r.status == UNREADABLE:  # listed in the runs table, but has nothing to group
            continue
        values = tuple(r.config.get(k) for k in swept)
        key = (r.experiment, tuple(map(str, values)))
        groups.setdefault(key, Group(r.experiment, values)).runs.append(r)
    return Report(runs, swept, metrics, list(groups.values()), Path(base), same_as, all_metrics)


def same_metrics(runs: Sequence[Run], metrics: Sequence[str]) -> dict[str, str]:
    """``{later: earlier}`` for each metric whose value equals an earlier metric's in every run
    (both missing counts as equal; at least one run must have a value): a column that repeats
    another says nothing, e.g. ``bleu_lowercase`` beside ``bleu`` when no text is cased."""
    out: dict[str, str] = {}
    for i, m in enumerate(metrics):
        for kept in metrics[:i]:
            if kept in out:
                continue
            pairs = [(r.metrics.get(kept), r.metrics.get(m)) for r in runs]
            if any(a is not None for a, _ in pairs) and all(a == b for a, b in pairs):
                out[m] = kept
                break
    return out


def same_as_text(rep: Report) -> str:
    """``"bleu_lowercase = bleu in every run (one column shown)"``, or ""."""
    if not rep.same_as:
        return ""
    pairs = ", ".join(f"{m} = {k}" for m, k in rep.same_as.items())
    return f"{pairs} in every run (one column shown; report.csv has both)"


def sort_key(v: Any) -> tuple:
    """Numbers before text, numbers by value, None last."""
    if v is None:
        return (2, "")
    x = as_number(v)
    return (0, x, "") if x is not None else (1, 0.0, str(v))


def fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return f"{v:.{digits}g}"
    return str(v)


# --- rows ------------------------------------------------------------------------------------


def run_header(rep: Report) -> list[str]:
    exp = ["experiment"] if rep.several_experiments else []
    return ["run", *exp, *rep.swept, "seed", *map(rep.label, rep.metrics), "status"]


def run_rows(rep: Report, exact: bool = False) -> list[list[str]]:
    """One row per run; ``exact`` keeps full float precision (for CSV)."""
    rows = []
    for r in rep.runs:
        show = repr if exact else fmt
        exp = [r.experiment] if rep.several_experiments else []
        metrics = [
            "" if (x := r.metrics.get(m)) is None else (show(x) if isinstance(x, float) else fmt(x))
            for m in rep.metrics
        ]
        swept = [fmt(r.config.get(k)) for k in rep.swept]
        rows.append([rep.folder(r), *exp, *swept, fmt(r.seed), *metrics, r.status])
    return rows


def group_header(rep: Report) -> list[str]:
    exp = ["experiment"] if rep.several_experiments else []
    return [*exp, *rep.swept, "seeds", "n", *map(rep.label, rep.metrics), "status"]


def group_rows(rep: Report) -> list[list[str]]:
    rows = []
    for g in rep.groups:
        exp = [g.experiment] if rep.several_experiments else []
        stats = [g.stat(m) for m in rep.metrics]
        n = max((s.n for s in stats), default=0)
        seeds = ",".join(fmt(s) for s in g.seeds)
        rows.append(
            [*exp, *map(fmt, g.values), seeds, str(n), *(s.text() for s in stats), g.status_text()]
        )
    return rows


# --- writers ---------------------------------------------------------------------------------


CSV_EXTRA = ["started_at", "wall_time_s", "error"]


def write_csv(rep: Report, path: str | os.PathLike) -> None:
    """``report.csv``: one row per run, full precision, plus start time, wall time and error;
    every key metric, also those the other tables leave out as equal to another."""
    rep = dataclasses.replace(rep, metrics=rep.all_metrics or rep.metrics)
    header = run_header(rep)
    if not rep.several_experiments:
        header.insert(1, "experiment")
    with atomic_open(path, "w") as f:
        w = csv.writer(f)
        w.writerow([*header, *CSV_EXTRA])
        for r, row in zip(rep.runs, run_rows(rep, exact=True), strict=True):
            if not rep.several_experiments:
                row.insert(1, r.experiment)
            w.writerow([*row, *(fmt(r.metrics.get(k)) for k in CSV_EXTRA)])


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def cell(s: str) -> str:
        return s.replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(map(cell, header)) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def markdown(rep: Report, plots: Sequence[str | os.PathLike] = (), page: str | None = None) -> str:
    """``report.md``: the runs table, the seed-grouped table, links to the plots and the page."""
    parts = [
        f"# attnrun report\n\n{len(rep.runs)} runs under `{rep.base.resolve()}`"
        + (f"; swept: {', '.join(rep.swept)}" if rep.swept else "")
        + (f"; metrics: {', '.join(rep.metrics)}" if rep.metrics else "")
        + (f"; {same_as_text(rep)}" if rep.same_as else ""),
        "## Runs\n\n" + markdown_table(run_header(rep), run_rows(rep)),
    ]
    if rep.has_seed_groups:
        parts.append(
            "## Grouped over seeds (mean ± std, n)\n\n"
            + markdown_table(group_header(rep), group_rows(rep))
        )
    if rep.search is not None:
        from attnrun.report.search import markdown as search_markdown

        parts.append(search_markdown(rep.search))
    if plots:
        parts.append(
            "## Plots\n\n" + "\n".join(f"![{Path(p).stem}]({Path(p).name})" for p in plots)
        )
    if page:
        parts.append(f"The same report as one page, with sortable tables: [{page}]({page})")
    return "\n\n".join(parts) + "\n"


def write_markdown(
    rep: Report, path: str | os.PathLike, plots: Sequence = (), page: str | None = None
) -> None:
    write_text(path, markdown(rep, plots, page))


def rich_tables(rep: Report) -> list[Table]:
    """The runs table (and the grouped table when seeds repeat) for a terminal."""
    runs = Table(title=f"{len(rep.runs)} runs", title_justify="left")
    metric_cols = set(map(rep.label, rep.metrics))
    for name in run_header(rep):
        if name == "seed":
            runs.add_column(name, style="dim", justify="right")
        elif name in metric_cols:
            runs.add_column(name, justify="right")
        elif name in rep.swept:
            runs.add_column(name, style="cyan")
        else:
            runs.add_column(name)
    for row in run_rows(rep):
        # Text, not markup: config values such as "[1, 2]" must print as they are
        status = row[-1]
        runs.add_row(*map(Text, row[:-1]), Text(status, style=STATUS_STYLE.get(status, "")))
    tables = [runs]
    if rep.has_seed_groups:
        grouped = Table(title="grouped over seeds (mean ± std, n)", title_justify="left")
        for name in group_header(rep):
            grouped.add_column(
                name,
                justify="right" if name in metric_cols or name == "n" else "left",
                style="cyan" if name in rep.swept else None,
            )
        for row in group_rows(rep):
            grouped.add_row(*map(Text, row))
        tables.append(grouped)
    return tables
