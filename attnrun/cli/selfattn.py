"""``attnrun selfattn``: self-attention resolves "it"; ``attnrun selfattn demo``: the untrained
identity-plus-noise heatmap."""

from __future__ import annotations

from pathlib import Path

import typer

from attnrun.cli import common
from attnrun.core import positional_encodings, score_functions


def run_demo(seed: int, root: Path) -> Path:
    """Write the demo heatmap and viewer into a new folder ``root/outputs/...``."""
    import torch

    from attnrun.runs import reserve_run_dir
    from attnrun.selfattn.figures import demo_figures, positional_figures

    out_dir = reserve_run_dir(Path(root) / "outputs")
    generator = torch.Generator().manual_seed(seed)
    demo_figures(out_dir, generator)
    positional_figures(out_dir, num_hiddens=32, num_steps=60)
    return out_dir


def register(app: typer.Typer) -> None:
    @common.experiment_command(
        app,
        "selfattn",
        options_metavar="[demo] [OPTIONS] [OVERRIDES]...",
        help=(
            "Self-attention resolves 'it' in \"the animal didn't cross the street because it was "
            'too tired/wide": trains a small encoder, reports held-out accuracy and which head '
            "attends from 'it' to the right noun.\n\n"
            "'attnrun selfattn demo' draws the untrained identity-plus-noise heatmap instead.\n\n"
            "Extra arguments are Hydra overrides, e.g. train.epochs=4 data.n_train=500 "
            "model.dropout=0.1."
        ),
    )
    def selfattn(
        ctx: typer.Context,
        layers: int = typer.Option(
            None, "--layers", "-l", help="model.num_layers: encoder blocks (1-6)."
        ),
        heads: int = typer.Option(None, "--heads", help="model.num_heads."),
        hiddens: int = typer.Option(
            None, "--hiddens", help="model.num_hiddens (a multiple of heads)."
        ),
        positional: str = typer.Option(
            None,
            "--positional",
            help=f"Positional encoding: {common.choices(positional_encodings.names())}.",
        ),
        score: str = typer.Option(
            None, "--score", help=f"Score: {common.choices(score_functions.names())}."
        ),
        *,
        shared: common.Shared,
    ) -> dict | None:
        args = list(ctx.args)
        if args[:1] == ["demo"]:
            given = [layers, heads, hiddens, positional, score, shared.device, shared.cfg]
            if len(args) > 1 or shared.multirun or any(v is not None for v in given):
                common.fail("'selfattn demo' takes only --seed, --root and --quiet")
            out_dir = run_demo(0 if shared.seed is None else shared.seed, shared.root)
            print(f"selfattn demo: {out_dir / 'demo.png'} {out_dir / 'attention.html'}")
            return None
        return {
            "model.num_layers": layers, "model.num_heads": heads, "model.num_hiddens": hiddens,
            "model.positional": positional, "model.score": score,
        }  # fmt: skip
