"""Console output for runs: a rich progress bar on a terminal, plain lines otherwise.

``Reporter(quiet=...)`` decides once: rich live bars and tables when stdout is a terminal, plain
text lines when it is not (pipes, CI, log files), and nothing but the final line with ``quiet``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table


class Task:
    """Handle returned by :meth:`Reporter.task`: ``advance(n, **fields)`` after each step."""

    def __init__(self, reporter: Reporter, description: str, total: int) -> None:
        self.reporter = reporter
        self.description = description
        self.total = total
        self.done = 0
        self.fields: dict[str, Any] = {}
        self._progress: Progress | None = None
        self._task_id: Any = None
        self._last_print = 0.0

    def advance(self, n: int = 1, **fields: Any) -> None:
        self.done += n
        self.fields.update(fields)
        if self._progress is not None:
            self._progress.update(self._task_id, advance=n, info=_fmt_fields(self.fields))
        elif not self.reporter.quiet:
            now = time.monotonic()
            if now - self._last_print >= 5.0 or self.done >= self.total:
                self._last_print = now
                info = _fmt_fields(self.fields)
                self.reporter.line(f"{self.description}: {self.done}/{self.total} {info}".rstrip())


class Reporter:
    """Where a run's human-readable output goes.

    ``rich`` is True when stdout is a terminal and ``quiet`` is off: live bars, coloured tables.
    Otherwise plain lines (and with ``quiet`` only the final summary line).
    """

    def __init__(self, quiet: bool = False, force_plain: bool | None = None) -> None:
        self.quiet = quiet
        self.console = Console(highlight=False, soft_wrap=True)
        plain = force_plain if force_plain is not None else not sys.stdout.isatty()
        self.rich = not quiet and not plain

    def line(self, text: str) -> None:
        if self.rich:
            self.console.print(text)
        else:
            print(text, flush=True)

    def info(self, text: str) -> None:
        """A progress message; suppressed by ``quiet``."""
        if not self.quiet:
            self.line(text)

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Task]:
        """Progress over ``total`` steps: a rich bar on a terminal, a line every 5 s otherwise."""
        task = Task(self, description, total)
        if self.rich:
            progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                console=self.console,
                transient=False,
            )
            with progress:
                task._progress = progress
                task._task_id = progress.add_task(description, total=total, info="")
                yield task
        else:
            yield task

    def summary(self, title: str, metrics: Mapping[str, Any], out_dir: str) -> None:
        """The short end-of-run summary: key metrics and the artefact folder."""
        if self.quiet:
            print(f"{title}: {_fmt_fields(metrics)} -> {out_dir}", flush=True)
            return
        if self.rich:
            table = Table(title=title, show_header=False, title_justify="left")
            table.add_column("key", style="bold")
            table.add_column("value")
            for k, v in metrics.items():
                table.add_row(k, _fmt(v))
            table.add_row("artefacts", out_dir)
            self.console.print(table)
        else:
            print(title, flush=True)
            for k, v in metrics.items():
                print(f"  {k}: {_fmt(v)}", flush=True)
            print(f"  artefacts: {out_dir}", flush=True)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _fmt_fields(fields: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={_fmt(v)}" for k, v in fields.items())
