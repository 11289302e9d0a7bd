"""``attnrun translate``: train an RNN encoder-decoder with attention; show what it attends to."""

from __future__ import annotations

import typer

from attnrun.cli import common

COMMANDS = {
    "translate": (
        "Train an encoder-decoder with attention — RNN (Bahdanau 2015 / Luong 2015, or none) "
        "or --model transformer (Vaswani 2017) — translate the test split, score it and plot "
        "the attention."
    )
}


def register(app: typer.Typer) -> None:
    from attnrun.cli.launch import config_dir
    from attnrun.core import score_functions, windows
    from attnrun.translate.config import TranslateConfig
    from attnrun.translate.data import datasets
    from attnrun.translate.models import architectures
    from attnrun.translate.models.decoders import decoders

    default = common.defaults(TranslateConfig)
    presets = sorted(p.stem for p in (config_dir() / "recipe").glob("*.yaml"))
    help_text = (
        f"{COMMANDS['translate']} Presets over the defaults (configs/recipe/): "
        f"{', '.join(f'recipe={name}' for name in presets)}; 'recipe=multi30k "
        "data.root=DIR' is the 20-minute Multi30k Transformer."
    )

    @common.experiment_command(
        app,
        "translate",
        config_class=TranslateConfig,
        help=help_text,
        examples=(
            "dataset=multi30k data.root=../shared/data/multi30k data.src=en data.tgt=fr "
            "attention.window=3 model.num_hiddens=256 train.max_minutes=20 tokenizer.kind=bpe "
            "train.threads=1"
        ),
    )
    def translate(
        ctx: typer.Context,
        score: str = typer.Option(
            None,
            "--score",
            "-s",
            help=f"Score: {common.choices(score_functions.names())}.",
            show_default=default("score"),
        ),
        model: str = typer.Option(
            None,
            "--model",
            help=f"Architecture: {common.choices(architectures.names())}.",
            show_default=default("model.arch"),
        ),
        decoder: str = typer.Option(
            None,
            "--decoder",
            help=f"RNN decoder: auto | {common.choices(decoders.names())}.",
            show_default=default("decoder"),
        ),
        attention: str = typer.Option(
            None,
            "--attention",
            "-a",
            help=f"Window: {common.choices(windows.names())}.",
            show_default=default("attention.kind"),
        ),
        dataset: str = typer.Option(
            None,
            "--dataset",
            "-d",
            help=f"Dataset: {common.choices(datasets.names())}.",
            show_default=default("dataset"),
        ),
        epochs: int = typer.Option(
            None, "--epochs", help="Training epochs.", show_default=default("train.epochs")
        ),
        beam: int = typer.Option(
            None,
            "--beam",
            help="Beam size for the test split (1: greedy).",
            show_default=default("decode.beam"),
        ),
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
