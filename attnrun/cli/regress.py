"""``attnrun regress``: Nadaraya-Watson kernel regression as attention pooling (d2l 10.2)."""

from __future__ import annotations

from pathlib import Path

import typer

from attnrun.cli import common
from attnrun.regression.bandwidth import bandwidth_rules
from attnrun.regression.kernels import kernels
from attnrun.regression.models import poolings


def register(app: typer.Typer) -> None:
    @app.command(
        "regress",
        context_settings=common.EXTRA,
        help=(
            "Nadaraya-Watson kernel regression as attention pooling (d2l 10.2).\n\n"
            "Extra arguments are Hydra overrides, e.g. data.n_train=500 bandwidth=loo "
            "data.path=points.csv train.epochs=20."
        ),
    )
    def regress(
        ctx: typer.Context,
        kernel: str = typer.Option(
            None, "--kernel", "-k", help=f"Kernel: {common.choices(kernels.names())}."
        ),
        pooling: str = typer.Option(
            None, "--pooling", "-p", help=f"Pooling: {common.choices(poolings.names())}."
        ),
        bandwidth: str = typer.Option(
            None,
            "--bandwidth",
            "-b",
            help=f"A positive number or a rule: {common.choices(bandwidth_rules.names())}.",
        ),
        seed: int = common.SEED,
        device: str = common.DEVICE,
        multirun: bool = common.MULTIRUN,
        cfg: str = common.CFG,
        quiet: bool = common.QUIET,
        debug: bool = common.DEBUG,
        root: Path = common.ROOT,
    ) -> None:
        typed = {
            "kernel": kernel,
            "pooling": pooling,
            "bandwidth": bandwidth,
            "seed": seed,
            "device": device,
        }
        common.run_command(
            "regress",
            typed,
            list(ctx.args),
            multirun=multirun,
            cfg=cfg,
            quiet=quiet,
            debug=debug,
            root=root,
        )
