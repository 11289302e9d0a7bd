"""``attnrun selfattn``: self-attention resolves "it"; ``attnrun selfattn demo``: the untrained
identity-plus-noise heatmap.

``--task`` picks what resolves "it": ``supervised-pointer`` (the default, the selfattn
experiment: a pointer trained on the antecedent's position) or ``translate`` (the translate
experiment with ``recipe=coref``: attention learned from translation alone, no loss on it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer

from attnrun.cli import common

COMMANDS = {
    "selfattn": (
        "Self-attention resolves 'it' in \"the animal didn't cross the street because it was "
        'too tired/wide": trains a small encoder ending in a pointer supervised on the '
        "antecedent's position, reports its held-out supervised accuracy and which head "
        "attends from 'it' to the right noun.\n\n"
        "For attention that learns 'it' with no loss on it, run 'attnrun selfattn --task "
        "translate' (= 'attnrun translate recipe=coref'): the Transformer, or an RNN decoder "
        "with model.arch=rnn, translates the coref corpus EN→FR and il/elle shows what 'it' "
        "was resolved to.\n\n"
        "'attnrun selfattn demo' draws the untrained identity-plus-noise heatmap instead."
    )
}


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


@dataclass(frozen=True)
class Task:
    """What ``--task`` runs: an experiment, the overrides put in front of the user's, and why
    ``--score`` means nothing there (empty: it sets ``model.score``)."""

    experiment: str
    preset: tuple[str, ...] = ()
    score_error: str = ""


#: The only list of tasks: the option's help and its error read it.
TASKS: dict[str, Task] = {
    "supervised-pointer": Task("selfattn"),
    "translate": Task(
        "translate",
        preset=("recipe=coref",),
        score_error=(
            "--score has no meaning with --task translate: the Transformer's attention is "
            "scaled dot-product (Vaswani 2017); for an RNN decoder give model.arch=rnn "
            "score=<name>"
        ),
    ),
}
DEFAULT_TASK = "supervised-pointer"


def register(app: typer.Typer) -> None:
    from attnrun.core import positional_encodings, score_functions
    from attnrun.experiments.selfattn import SelfAttnConfig

    default = common.defaults(SelfAttnConfig)

    @common.experiment_command(
        app,
        "selfattn",
        config_class=SelfAttnConfig,
        options_metavar="[demo] " + common.OPTIONS_METAVAR,
        help=COMMANDS["selfattn"],
        examples="train.epochs=4 data.n_train=500 model.dropout=0.1 train.threads=1",
    )
    def selfattn(
        ctx: typer.Context,
        task: str = typer.Option(
            DEFAULT_TASK,
            "--task",
            help=(
                f"{common.choices(list(TASKS))}. supervised-pointer: the pointer's row for 'it' "
                "is the prediction, trained with cross-entropy on the antecedent's position, so "
                "its accuracy and attention are supervised (metrics supervised_*). translate: "
                "the learned one, 'attnrun translate recipe=coref' (metrics pronoun_accuracy, "
                "coref_head_mass, ...; translate's options go in as overrides)."
            ),
        ),
        layers: int = typer.Option(
            None,
            "--layers",
            "-l",
            help="model.num_layers: encoder blocks (1-6).",
            show_default=default("model.num_layers"),
        ),
        heads: int = typer.Option(
            None, "--heads", help="model.num_heads.", show_default=default("model.num_heads")
        ),
        hiddens: int = typer.Option(
            None,
            "--hiddens",
            help="model.num_hiddens (a multiple of heads).",
            show_default=default("model.num_hiddens"),
        ),
        positional: str = typer.Option(
            None,
            "--positional",
            help=f"Positional encoding: {common.choices(positional_encodings.names())}.",
            show_default=default("model.positional"),
        ),
        score: str = typer.Option(
            None,
            "--score",
            help=f"Score: {common.choices(score_functions.names())} (supervised-pointer only).",
            show_default=default("model.score"),
        ),
        *,
        shared: common.Shared,
    ) -> dict | None:
        args = list(ctx.args)
        if args[:1] == ["demo"]:
            given = [layers, heads, hiddens, positional, score, shared.device, shared.cfg]
            if task != DEFAULT_TASK:
                given.append(task)
            if len(args) > 1 or shared.multirun or any(v is not None for v in given):
                common.fail("'selfattn demo' takes only --seed, --root and --quiet")
            out_dir = run_demo(0 if shared.seed is None else shared.seed, shared.root)
            print(f"selfattn demo: {out_dir / 'demo.png'} {out_dir / 'attention.html'}")
            return None
        if task not in TASKS:
            common.fail(f"--task {task!r} is not valid; valid: {common.choices(list(TASKS))}")
        typed = {
            "model.num_layers": layers, "model.num_heads": heads, "model.num_hiddens": hiddens,
            "model.positional": positional, "model.score": score,
        }  # fmt: skip
        chosen = TASKS[task]
        if chosen.experiment == "selfattn":
            return typed
        if score is not None and chosen.score_error:
            common.fail(chosen.score_error)
        common.run_command(
            chosen.experiment,
            {**typed, "seed": shared.seed, "device": shared.device},
            [*chosen.preset, *args],
            multirun=shared.multirun, cfg=shared.cfg, quiet=shared.quiet, debug=shared.debug,
            root=shared.root,
        )  # fmt: skip
        return None
