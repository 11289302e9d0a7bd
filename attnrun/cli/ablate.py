"""``attnrun ablate RUN``: remove each attention head, measure, rank (see :mod:`attnrun.ablate`).

The command only maps options to :func:`attnrun.ablate.ablate` and prints its ranked table.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import typer

from attnrun.cli import common
from attnrun.errors import AttnrunError

COMMANDS = {
    "ablate": (
        "Does attention matter? Remove each attention head of a trained run (zero or mean "
        "ablation), measure the run's metrics, rank heads by effect and by gradient "
        "importance (Michel et al. 2019), draw the pruning curve; RNN decoders: attention "
        "replaced by uniform / permuted / other / argmax weights; regress: uniform weights "
        "and half / twice the bandwidth. Files go into a new RUN_DIR/ablations/DATE/TIME."
    ),
}


def register(app: typer.Typer) -> None:
    from attnrun.ablate.base import ablation_modes

    modes = ablation_modes.names()

    @app.command("ablate", help=COMMANDS["ablate"])
    def ablate(
        run_dir: Path = typer.Argument(..., help="A completed run folder.", show_default=False),
        split: str = typer.Option("test", "--split", help="test | val (selfattn, regress: test)."),
        mode: str = typer.Option(
            "zero", "--mode", help=f"What a removed head outputs: {common.choices(modes)}."
        ),
        metric: str = typer.Option(
            None, "--metric", help="Metric to rank by (default: the run's first key metric)."
        ),
        limit: int = typer.Option(None, "--limit", help="Use only the split's first N examples."),
        orders: int = typer.Option(3, "--orders", help="Random orders of the pruning curve."),
        threads: int = typer.Option(
            None, "--threads", help="torch CPU threads (default: every core; 1 on a shared CPU)."
        ),
        quiet: bool = common.QUIET,
        debug: bool = common.DEBUG,
    ) -> None:
        from attnrun.ablate import ablate as run_ablate
        from attnrun.device import cpu_threads

        # sacreBLEU warns on every corpus score of tokenised text (hundreds of lines here);
        # training sends it to run.log, ablate has no log: keep its errors only
        logging.getLogger("sacrebleu").setLevel(logging.ERROR)

        def say(line: str) -> None:
            if not quiet:
                print(line, file=sys.stderr)

        try:
            if threads is not None and threads < 0:
                common.fail(f"--threads={threads!r} is not valid; allowed: an integer >= 0")
            with cpu_threads(threads or 0):
                record, out_dir = run_ablate(
                    run_dir, split=split, mode=mode, metric=metric, limit=limit, orders=orders,
                    progress=say,
                )  # fmt: skip
        except AttnrunError as e:
            if debug:
                raise
            common.fail(str(e))
        print_table(record)
        print(f"files: {out_dir}")


def ranked(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The removed heads, the most harmful removal first."""
    metric = record["metric"]
    sign = 1.0 if metric in record.get("lower_is_better", []) else -1.0
    return sorted(record["heads"], key=lambda r: -sign * r["deltas"].get(metric, 0.0))


def print_table(record: dict[str, Any]) -> None:
    """The ranked table (rich), then the experiment's sections as short lines."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=120, highlight=False)
    metric = record["metric"]
    intact = record["intact"]
    names = [metric, *[k for k in record.get("metric_names", []) if k != metric]][:4]
    console.print(
        f"{record['experiment']} run, {record['split']} split ({record['examples']} examples), "
        f"{record['mode']} ablation, ranked by {metric}"
    )
    if record["heads"]:
        table = Table(show_edge=False)
        for col in ("rank", "head", *names, f"Δ {metric}", "importance"):
            table.add_column(col, justify="left" if col == "head" else "right", no_wrap=True)
        table.add_row("", "intact", *[_fmt(intact[k]) for k in names], "", "")
        for i, r in enumerate(ranked(record), 1):
            imp = r.get("importance")
            table.add_row(
                str(i), r["label"], *[_fmt(r["metrics"].get(k)) for k in names],
                _fmt(r["deltas"].get(metric), signed=True), "" if imp is None else f"{imp:.4g}",
            )  # fmt: skip
        console.print(table)
        rho = record.get("spearman_importance_effect")
        console.print(
            "Spearman ρ(gradient importance, removal effect): "
            + ("n/a" if rho is None else f"{rho:.3f}")
        )
    else:
        console.print("intact: " + ", ".join(f"{k} {_fmt(intact[k])}" for k in names))
    if record.get("recorded"):
        same = all(intact.get(k) == v for k, v in record["recorded"].items())
        verdict = "equal" if same else "DIFFER"
        console.print(f"recorded by the run: {record['recorded']} ({verdict})")
    for name, figures in (record.get("replaced_weights") or {}).items():
        shown = [k for k in names if k in figures] or list(figures)
        console.print(f"weights {name}: " + ", ".join(f"{k} {_fmt(figures[k])}" for k in shown))
    if record.get("decoder_none"):
        console.print(f"decoder=none in this sweep: bleu {record['decoder_none'].get('bleu')}")
    coref = record.get("coref")
    if coref:
        for key in ("any_head", "cross_heads"):
            s = coref.get(key)
            if s and not s["heads"]:
                console.print(f"coref: the intact model is already at pronoun accuracy <= "
                              f"{coref['threshold']}; no head set to look for")  # fmt: skip
                break
            if s:
                verb = "reach" if s["reached"] else "do not reach"
                console.print(
                    f"coref, smallest {key.replace('_', ' ')} set: {', '.join(s['heads'])} "
                    f"({verb} pronoun accuracy <= {coref['threshold']}): "
                    f"pronoun {s['metrics'].get('pronoun_accuracy')}, bleu other words "
                    f"{s['metrics'].get('bleu_other_words')}"
                )


def _fmt(v: Any, signed: bool = False) -> str:
    if not isinstance(v, (int, float)):
        return "" if v is None else str(v)
    return f"{v:+.4g}" if signed else f"{v:.4g}"
