"""``attnrun predict RUN_DIR TEXT``: use a trained run on new input (dispatches on the run's
experiment; see :mod:`attnrun.predictors`)."""

from __future__ import annotations

from pathlib import Path

import typer

from attnrun.cli import common
from attnrun.errors import AttnrunError


def register(app: typer.Typer) -> None:
    @app.command(
        "predict",
        help=(
            "Run a trained model on your input, e.g. attnrun predict outputs/DATE/TIME "
            '"The dog didn\'t cross the road because it was too busy ." Figures go into a new '
            "folder RUN_DIR/predictions/..."
        ),
    )
    def predict(
        run_dir: Path = typer.Argument(..., help="A completed run folder.", show_default=False),
        text: str = typer.Argument(..., help="The input (a sentence with one 'it' for selfattn)."),
        debug: bool = common.DEBUG,
    ) -> None:
        from attnrun.predictors import predict as run_predictor

        try:
            prediction, out_dir = run_predictor(run_dir, text)
        except AttnrunError as e:
            if debug:
                raise
            common.fail(str(e))
        for line in prediction.lines:
            print(line)
        print(f"files: {out_dir}")
