"""Runs and reports in Jupyter: ``attnrun.open_run(path)`` and ``attnrun.open_report(paths)``.

Both return objects whose ``_repr_html_`` shows the run's viewer or the report page inline, and
offline: the page travels inside an ``<iframe srcdoc="...">`` (escaped as an attribute value), so
it needs no server, no CDN and no file next to the notebook — bertviz's blank cell, when its CDN
scripts do not load, cannot happen. The iframe is sandboxed (``allow-scripts`` only: its script
cannot reach the notebook). Nothing is written into the user's folders unless asked
(:meth:`ReportView.save`).
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnrun.report.collect import Run, key_metrics, load_run
from attnrun.report.table import Report, fmt
from attnrun.runs.files import AttentionSample, read_attention, read_history

VIEWER = "attention.html"
SANDBOX = "allow-scripts allow-popups"


def iframe(page: str, height: int, title: str) -> str:
    """``page`` (a whole HTML document) inline as a sandboxed ``<iframe srcdoc>``."""
    return (
        f'<iframe srcdoc="{html.escape(page, quote=True)}" sandbox="{SANDBOX}" '
        f'title="{html.escape(title, quote=True)}" '
        f'style="width: 100%; height: {int(height)}px; border: 1px solid #d0d7de;"></iframe>'
    )


def _e(s: Any) -> str:
    return html.escape(str(s), quote=True)


@dataclass
class RunView:
    """One run folder, read: what ``attnrun.open_run`` returns.

    Attributes:
        path: the run folder.
        status: ``completed``, ``failed``, ... (``unreadable`` for a damaged metrics.json).
        experiment: the experiment's name.
        config: the resolved ``config.yaml`` as nested dicts.
        metrics: the whole ``metrics.json`` (status and meta data included).
        attention: the run's attention samples (``attention.json``), maybe empty.
        history: ``history.json`` as written, or None.
    """

    path: Path
    status: str
    experiment: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    attention: list[AttentionSample] = field(default_factory=list)
    history: dict | list | None = None

    @property
    def key_metrics(self) -> dict[str, Any]:
        """The experiment's headline metrics that the run recorded."""
        run = Run(self.path, {}, self.metrics, self.status)
        return {m: self.metrics[m] for m in key_metrics([run]) if m in self.metrics}

    def viewer_html(self, sample: int | str | None = None) -> str | None:
        """An interactive viewer page, or None when the run saved no attention.

        ``sample=None``: the run's own ``attention.html`` when it has one, else the first sample;
        an index or a sample name: that sample of ``attention.json``, built in memory.
        """
        own = self.path / VIEWER
        if sample is None and own.is_file():
            return own.read_text(encoding="utf-8")
        chosen = self._sample(0 if sample is None else sample)
        if chosen is None:
            return None
        from attnrun.viz.viewer import attention_html

        return attention_html(
            chosen.keys,
            chosen.queries,
            chosen.weights,
            title=chosen.title or f"{self.experiment}: {chosen.name}",
            layer_names=chosen.layer_names,
            initial_layer=chosen.layer if chosen.layer is not None else 0,
        )

    def _sample(self, sample: int | str) -> AttentionSample | None:
        if isinstance(sample, int):
            return (
                self.attention[sample]
                if -len(self.attention) <= sample < len(self.attention)
                else None
            )
        return next((s for s in self.attention if s.name == sample), None)

    def summary_html(self) -> str:
        rows = [
            ("folder", str(self.path)),
            ("experiment", self.experiment),
            ("status", self.status),
        ]
        rows += [(k, fmt(v)) for k, v in self.key_metrics.items()]
        if self.attention:
            names = ", ".join(f"{s.name} ({s.kind})" for s in self.attention)
            rows.append(("attention samples", names))
        body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
        return (
            '<table class="attnrun-run" style="border-collapse: collapse; text-align: left;">'
            f"{body}</table>"
        )

    def _repr_html_(self) -> str:
        page = self.viewer_html()
        if page is None:
            return self.summary_html() + "<p>This run saved no attention to show.</p>"
        sample = self.attention[0] if self.attention else None
        tokens = max(len(sample.queries), len(sample.keys)) if sample else 12
        height = min(1200, 220 + 24 * tokens)
        return self.summary_html() + iframe(page, height, f"attention viewer of {self.path}")

    def __repr__(self) -> str:
        metrics = ", ".join(f"{k}={fmt(v)}" for k, v in self.key_metrics.items())
        return f"RunView({str(self.path)!r}, {self.experiment}, {self.status}, {metrics})"


def open_run(path: str | os.PathLike) -> RunView:
    """Read one run folder for a notebook: metrics, config, attention samples, history.

    Displaying the result shows the run's interactive attention viewer inline (offline).
    Raises :class:`~attnrun.errors.AttnrunError` when ``path`` is not a run folder.
    """
    from omegaconf import OmegaConf

    from attnrun.report.listing import check_run_dir
    from attnrun.runs.files import read_config

    path = Path(path)
    check_run_dir(path)
    run = load_run(path)
    container = OmegaConf.to_container(read_config(path), resolve=False)
    # a run's config.yaml is a mapping with string keys (Hydra's top-level groups and keys)
    config = {str(k): v for k, v in container.items()} if isinstance(container, dict) else {}
    return RunView(
        path=path,
        status=run.status,
        experiment=run.experiment,
        config=config,
        metrics=dict(run.metrics),
        attention=read_attention(path),
        history=read_history(path),
    )


@dataclass
class ReportView:
    """A report built in memory: what ``attnrun.open_report`` returns.

    Attributes:
        report: the tables' data (runs, swept keys, metrics, seed groups).
        html: the whole ``report.html`` page.
    """

    report: Report
    html: str

    @property
    def runs(self) -> list[Run]:
        return self.report.runs

    def save(self, path: str | os.PathLike) -> Path:
        """Write the page to ``path`` (a file name, or a folder for ``report.html``)."""
        from attnrun.io import write_text

        path = Path(path)
        if path.is_dir():
            path = path / "report.html"
        write_text(path, self.html)
        return path

    def _repr_html_(self) -> str:
        rep = self.report
        height = 260 + 30 * (len(rep.runs) + len(rep.groups)) + 480 * (len(rep.metrics) + 2)
        return iframe(self.html, min(height, 2400), "attnrun report")

    def __repr__(self) -> str:
        return f"ReportView({len(self.report.runs)} runs, swept: {', '.join(self.report.swept)})"


def open_report(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> ReportView:
    """The report of every run under ``paths`` (a folder or a list), built in memory.

    Displaying the result shows the same page ``attnrun report`` writes as ``report.html``;
    viewer links are relative to the current folder (the notebook's, in Jupyter). Raises
    :class:`~attnrun.errors.AttnrunError` when a path is missing or holds no run.
    """
    from attnrun.report import build_report, render_page

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    rep = build_report(list(paths))
    return ReportView(rep, render_page(rep, Path.cwd()))


__all__ = ["ReportView", "RunView", "open_report", "open_run"]
