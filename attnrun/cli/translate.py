"""``attnrun translate``: train an RNN encoder-decoder with attention; show what it attends to."""

from __future__ import annotations

import typer

from attnrun.cli import common
from attnrun.core import score_functions, windows
from attnrun.translate.data import datasets
from attnrun.translate.models import architectures
from attnrun.translate.models.decoders import decoders


def register(app: typer.Typer) -> None:
    @common.experiment_command(
        app,
        "translate",
        help=(
            "Train an encoder-decoder with attention — RNN (Bahdanau 2015 / Luong 2015, or none) "
            "or --model transformer (Vaswani 2017) — translate the test split, score it and plot "
            "the attention.\n\n"
            "Extra arguments are Hydra overrides, e.g. dataset=multi30k data.root=../shared/data/"
            "multi30k data.src=en data.tgt=fr attention.window=3 model.num_hiddens=256 "
            "train.max_minutes=20 tokenizer.kind=bpe."
        ),
    )
    def translate(
        ctx: typer.Context,
        score: str = typer.Option(
            None, "--score", "-s", help=f"Score: {common.choices(score_functions.names())}."
        ),
        model: str = typer.Option(
            None, "--model", help=f"Architecture: {common.choices(architectures.names())}."
        ),
        decoder: str = typer.Option(
            None, "--decoder", help=f"RNN decoder: auto | {common.choices(decoders.names())}."
        ),
        attention: str = typer.Option(
            None, "--attention", "-a", help=f"Window: {common.choices(windows.names())}."
        ),
        dataset: str = typer.Option(
            None, "--dataset", "-d", help=f"Dataset: {common.choices(datasets.names())}."
        ),
        epochs: int = typer.Option(None, "--epochs", help="Training epochs."),
        beam: int = typer.Option(None, "--beam", help="Beam size for the test split (1: greedy)."),
        *,
        shared: common.Shared,
    ) -> dict:
        return {
            "score": score,
            "model.arch": model,
            "decoder": decoder,
            "attention": attention,
            "dataset": dataset,
            "train.epochs": epochs,
            "decode.beam": beam,
        }
