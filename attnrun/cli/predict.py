"""``attnrun predict RUN_DIR [TEXT ...]``: use a trained run on new input (dispatches on the run's
experiment; see :mod:`attnrun.predictors`). Sentences come as arguments, or on stdin one per line
when none is given (or ``-``)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from attnrun.cli import common
from attnrun.errors import AttnrunError


def read_inputs(texts: list[str] | None) -> list[str]:
    """The arguments, or the non-empty lines of stdin for none / ``-``; a one-line error when
    there is nothing to read."""
    if texts and texts != ["-"]:
        return texts
    if sys.stdin is None or sys.stdin.isatty():
        common.fail("give the input as arguments or on stdin (one sentence per line)")
    lines = [line.strip() for line in sys.stdin.read().splitlines() if line.strip()]
    if not lines:
        common.fail("stdin held no sentence to use")
    return lines


COMMANDS = {
    "predict": (
        "Run a trained model on your input, e.g. attnrun predict outputs/DATE/TIME "
        '"The dog didn\'t cross the road because it was too busy." Several sentences: '
        "several arguments, or one per line on stdin. Figures go into a new folder "
        "RUN_DIR/predictions/..."
    )
}


def register(app: typer.Typer) -> None:
    @app.command("predict", help=COMMANDS["predict"])
    def predict(
        run_dir: Path = typer.Argument(
            ..., help="A completed run folder.", show_default=False, metavar="RUN_DIR"
        ),
        texts: list[str] | None = typer.Argument(
            None,
            help="Input sentences (for selfattn each with one 'it'); none or '-': read stdin.",
            show_default=False,
            metavar="TEXT",
        ),
        strict: bool = typer.Option(
            False,
            "--strict",
            help="Refuse words the model never saw (exit 2) instead of reading them as <unk>.",
        ),
        debug: bool = common.DEBUG,
    ) -> None:
        from attnrun.predictors import predict as run_predictor

        sentences = read_inputs(texts)
        try:
            prediction, out_dir = run_predictor(run_dir, "\n".join(sentences), strict=strict)
        except AttnrunError as e:
            if debug:
                raise
            common.fail(str(e))
        for warning in prediction.warnings:
            print(f"attnrun: warning: {warning}", file=sys.stderr)
        for line in prediction.lines:
            print(line)
        print(f"files: {out_dir}")
