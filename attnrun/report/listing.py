"""What ``attnrun runs`` and ``attnrun show`` print: recent runs, and one run in full."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from attnrun.errors import AttnrunError, ConfigError
from attnrun.report.collect import (
    UNREADABLE,
    Run,
    find_run_dirs,
    flatten,
    is_run_dir,
    key_metrics,
    load_run,
)
from attnrun.report.table import STATUS_STYLE, fmt
from attnrun.runs.files import CONFIG
from attnrun.runs.record import STATUSES

LIST_HEADER = ["time", "experiment", "status", "result", "folder"]
#: a failure's reason is cut to this many characters in the list (``show`` prints it whole);
#: on a terminal's table to fewer, so the folder keeps its room
REASON_WIDTH = 72
RICH_REASON_WIDTH = 32


def recent_runs(
    paths: Sequence[str | os.PathLike] | None,
    defaults: Sequence[Path],
    status: str | None = None,
) -> list[Run]:
    """Runs under ``paths`` (or those of ``defaults`` that exist), newest first, maybe filtered."""
    valid = (*STATUSES, UNREADABLE)
    if status is not None and status not in valid:
        raise ConfigError(f"--status {status!r} is not valid; valid: {', '.join(valid)}")
    roots = list(paths) if paths else [p for p in defaults if p.is_dir()]
    runs = [load_run(d) for d in find_run_dirs(roots)] if roots else []
    if status is not None:
        runs = [r for r in runs if r.status == status]
    runs.sort(key=lambda r: (r.started, str(r.path)), reverse=True)
    return runs


def failure_reason(run: Run) -> str:
    """The one-line reason a failed or interrupted run recorded in ``metrics.json``, or empty."""
    if run.status not in ("failed", "interrupted"):
        return ""
    return " ".join(str(run.metrics.get("error") or "").split())


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def headline(run: Run) -> str:
    """``name=value`` of the run's first key metric present; for a failed or interrupted run
    its reason (cut to :data:`REASON_WIDTH`); else empty."""
    reason = failure_reason(run)
    if reason:
        return _cut(reason, REASON_WIDTH)
    for name in key_metrics([run]):
        if run.metrics.get(name) is not None:
            return f"{name}={fmt(run.metrics[name])}"
    return ""


def display_path(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def list_rows(runs: Sequence[Run]) -> list[list[str]]:
    return [
        [
            r.started.strftime("%Y-%m-%d %H:%M:%S"),
            r.experiment if r.metrics else "?",
            r.status,
            headline(r),
            display_path(r.path),
        ]
        for r in runs
    ]


def print_runs(runs: Sequence[Run], total: int, rich: bool) -> None:
    rows = list_rows(runs)
    more = f"{len(runs)} of {total} runs (--limit to see more)" if total > len(runs) else ""
    if rich:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(title=f"{total} runs, newest first", title_justify="left")
        for name in LIST_HEADER:
            table.add_column(
                name,
                justify="left",
                no_wrap=name in ("time", "status"),
                overflow="fold",  # a long folder wraps instead of losing its end
            )
        for row in rows:
            table.add_row(
                Text(row[0]),
                Text(row[1]),
                Text(row[2], STATUS_STYLE.get(row[2], "")),
                Text(_cut(row[3], RICH_REASON_WIDTH)),
                Text(row[4]),
            )
        console = Console()
        console.print(table)
        if more:
            console.print(more, style="dim")
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(LIST_HEADER)]
    for row in [LIST_HEADER, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    if more:
        print(more)


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def artefacts(run_dir: Path) -> list[tuple[str, int]]:
    """Every file in the run folder (``.hydra/`` included, temporary files left out), with size."""
    out = []
    for root, dirs, files in os.walk(run_dir):
        dirs.sort()
        for name in sorted(files):
            if name.startswith(".") and name.endswith(".tmp"):
                continue  # an atomic write in progress
            p = Path(root) / name
            try:
                out.append((p.relative_to(run_dir).as_posix(), p.stat().st_size))
            except OSError:
                continue
    return out


def check_run_dir(run_dir: Path) -> None:
    """Raise a one-line :class:`AttnrunError` unless ``run_dir`` is a run folder."""
    if not run_dir.exists():
        raise AttnrunError(f"{run_dir}: no such folder")
    if not run_dir.is_dir():
        raise AttnrunError(f"{run_dir}: not a folder")
    if is_run_dir(run_dir):
        return
    inside = find_run_dirs([run_dir])
    if inside:
        raise AttnrunError(
            f"{run_dir} is not a run folder but holds {len(inside)} runs; "
            f"try: attnrun runs {run_dir}  or  attnrun report {run_dir}"
        )
    raise AttnrunError(
        f"{run_dir}: not a run folder (a run folder has metrics.json and config.yaml)"
    )


def show_run(run_dir: str | os.PathLike, rich: bool, config: bool = False) -> None:
    """Print a run's status (and a failure's reason), metrics and artefacts; then its config
    (YAML) with ``config``, else one line saying how to see it."""
    run_dir = Path(run_dir)
    check_run_dir(run_dir)
    run = load_run(run_dir)
    try:
        config_text = (run_dir / CONFIG).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        config_text = f"# config.yaml could not be read: {e}\n"
    metrics = flatten(run.metrics) if run.metrics else {}
    if not run.metrics:
        metrics = {"status": f"{UNREADABLE} (metrics.json is missing, partial or not JSON)"}
    metric_rows = [[k, fmt(v) if v is not None else "null"] for k, v in metrics.items()]
    files = [[name, human_size(size)] for name, size in artefacts(run_dir)]
    reason = failure_reason(run)
    n_lines = len(config_text.rstrip("\n").splitlines())
    config_note = f"{CONFIG}: {n_lines} lines (attnrun show {display_path(run_dir)} --config)"
    ablations = ablation_rows(run_dir)
    if rich:
        shown_config = config_text if config else ""
        _show_rich(run_dir, run.status, reason, metric_rows, files, shown_config, ablations)
        if not config:
            from rich.console import Console

            Console().print(config_note, style="dim")
        return
    print(f"run: {display_path(run_dir)}")
    if reason:
        print(f"{run.status}: {reason}")
    print("\nmetrics:")
    print(plain_table(metric_rows))
    print("\nartefacts:")
    print(plain_table(files, right=(1,)))
    if ablations:
        print("\nablations (attnrun ablate):")
        print(plain_table([list(ABLATION_COLUMNS), *ablations]))
    if config:
        print(f"\n{CONFIG}:")
        print(config_text.rstrip("\n"))
    else:
        print(f"\n{config_note}")


def plain_table(rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """Rows as aligned columns, two spaces apart, each cell as it is (no Markdown escapes)."""
    if not rows:
        return "  (none)"
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))
        ]
        lines.append(("  " + "  ".join(cells)).rstrip())
    return "\n".join(lines)


def _show_rich(run_dir, status, reason, metric_rows, files, config_text, ablations) -> None:
    from rich.console import Console
    from rich.syntax import Syntax
    from rich.table import Table
    from rich.text import Text

    console = Console()
    console.rule(f"[bold]{display_path(run_dir)}")
    if reason:
        console.print(Text(f"{status}: {reason}", style=STATUS_STYLE.get(status, "")))
    mt = Table(title="metrics", title_justify="left", show_header=False)
    mt.add_column("key", style="bold")
    mt.add_column("value")
    for k, v in metric_rows:
        style = STATUS_STYLE.get(v, "") if k == "status" else ""
        mt.add_row(Text(k), Text(v, style=style))
    console.print(mt)
    ft = Table(title="artefacts", title_justify="left")
    ft.add_column("file")
    ft.add_column("size", justify="right")
    for name, size in files:
        ft.add_row(Text(name), size)
    console.print(ft)
    if ablations:
        at = Table(title="ablations (attnrun ablate)", title_justify="left")
        for col in ABLATION_COLUMNS:
            at.add_column(col)
        for row in ablations:
            at.add_row(*(Text(c) for c in row))
        console.print(at)
    if config_text:
        console.print(Text(CONFIG, style="bold"))
        console.print(
            Syntax(config_text.rstrip("\n"), "yaml", theme="ansi_dark", background_color="default")
        )


ABLATION_COLUMNS = ("folder", "split", "mode", "metric", "intact", "most harmful removal", "ρ")


def ablation_rows(run_dir: Path) -> list[list[str]]:
    """One row per ``ablation.json`` under ``run_dir/ablations``: its folder, split (examples),
    mode, metric, intact value, the head whose removal hurt most and the Spearman ρ of gradient
    importance and removal effect."""
    from attnrun.runs.files import read_ablations

    rows = []
    for folder, rec in read_ablations(run_dir):
        metric = str(rec.get("metric"))
        worse = 1.0 if metric in (rec.get("lower_is_better") or []) else -1.0
        heads = [h for h in rec.get("heads") or [] if metric in (h.get("deltas") or {})]
        top = max(heads, key=lambda h: worse * h["deltas"][metric], default=None)
        harmful = f"{top['label']} ({top['deltas'][metric]:+.4g})" if top else "no heads"
        intact = (rec.get("intact") or {}).get(metric)
        swaps = {k: v.get(metric) for k, v in (rec.get("replaced_weights") or {}).items()}
        swaps = {k: v for k, v in swaps.items() if isinstance(v, (int, float))}
        if top is None and swaps and isinstance(intact, (int, float)):
            name = max(swaps, key=lambda k: worse * (swaps[k] - intact))
            harmful = f"{name} weights ({swaps[name] - intact:+.4g})"
        rho = rec.get("spearman_importance_effect")
        rows.append([
            str(folder.relative_to(run_dir)), f"{rec.get('split')} ({rec.get('examples')})",
            str(rec.get("mode")), metric, fmt((rec.get("intact") or {}).get(metric)), harmful,
            "n/a" if rho is None else f"{rho:.2f}",
        ])  # fmt: skip
    return rows
