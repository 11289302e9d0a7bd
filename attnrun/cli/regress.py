"""``attnrun regress``: Nadaraya-Watson kernel regression as attention pooling (d2l 10.2)."""

from __future__ import annotations

import typer

from attnrun.cli import common

COMMANDS = {"regress": "Nadaraya-Watson kernel regression as attention pooling (d2l 10.2)."}


def register(app: typer.Typer) -> None:
    from attnrun.experiments.regress import RegressConfig
    from attnrun.regression.bandwidth import bandwidth_rules
    from attnrun.regression.kernels import kernels
    from attnrun.regression.models import poolings

    default = common.defaults(RegressConfig)

    @common.experiment_command(
        app,
        "regress",
        config_class=RegressConfig,
        help=COMMANDS["regress"],
        examples=(
            "data.n_train=500 bandwidth=loo data.function=x_plus_sin data.path=points.csv "
            "data.test_fraction=0 train.epochs=20 train.threads=1"
        ),
    )
    def regress(
        ctx: typer.Context,
        kernel: str = typer.Option(
            None,
            "--kernel",
            "-k",
            help=f"Kernel: {common.choices(kernels.names())}.",
            show_default=default("kernel"),
        ),
        pooling: str = typer.Option(
            None,
            "--pooling",
            "-p",
            help=f"Pooling: {common.choices(poolings.names())}.",
            show_default=default("pooling"),
        ),
        bandwidth: str = typer.Option(
            None,
            "--bandwidth",
            "-b",
            help=f"A positive number or a rule: {common.choices(bandwidth_rules.names())}.",
            show_default=default("bandwidth"),
        ),
        *,
        shared: common.Shared,
    ) -> dict:
        return {"kernel": kernel, "pooling": pooling, "bandwidth": bandwidth}
