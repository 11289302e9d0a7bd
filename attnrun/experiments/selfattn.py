"""``selfattn``: which head learns what "it" refers to (Vaswani et al. 2017; d2l 11.6).

"The animal didn't cross the street because it was too tired": "it" is the animal, and with "too
wide" the street. A small self-attention encoder with a self-attention pointer is trained on
templated sentences (:mod:`attnrun.selfattn.data`) to point from "it" to its antecedent, and is
tested on noun/adjective combinations it never saw.

The pointer's row for "it" is the prediction and is trained with cross-entropy on the antecedent's
position, so its figures are *supervised* and their metric names say so (``supervised_…``, the
table row ``pointer (supervised)``). The learned counterpart, attention trained by translation
alone, is ``attnrun selfattn --task translate`` (= ``attnrun translate recipe=coref``).

Steps of :func:`run`:

1. generate the training and held-out sentences from the seeded data generator;
2. build :class:`~attnrun.selfattn.model.PronounResolver` and train it (progress bar "train");
3. evaluate: held-out ``supervised_accuracy`` and the per-layer × per-head attention from "it" to
   the antecedent (``supervised_it_attention_table``; ``supervised_it_attention`` is its best
   cell). With ``train.average`` these are the averaged weights' figures (``weights`` says which;
   ``raw_supervised_accuracy`` is the raw weights' held-out accuracy);
4. save ``model.pt`` (its SHA-256 is ``model_sha256`` in ``metrics.json``) + ``vocab.json``, the
   attention of the motivating sentences as samples in ``attention.json`` (always), and, with
   ``plot.enabled``, their heatmap grids and HTML viewers and the positional-encoding plots.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from attnrun.averaging import check_average, make_averager
from attnrun.core import make_score, score_functions
from attnrun.core.heads import attention_rollout
from attnrun.experiments.base import BaseConfig, RunContext, experiment
from attnrun.runs import files
from attnrun.selfattn.data import Vocab, make_splits, templates, tokenize
from attnrun.selfattn.figures import positional_figures, sentence_figures
from attnrun.selfattn.model import build_model, positional_encodings
from attnrun.selfattn.predict import predict_selfattn, write_vocab
from attnrun.selfattn.train import SentenceAttention, evaluate, read_sentence, train
from attnrun.throughput import watch_for
from attnrun.validation import one_of, require

MOTIVATING = (  # (sample name, figure file stem, sentence): attention.html is the first
    ("tired", "attention", "The animal didn't cross the street because it was too tired ."),
    ("wide", "attention_wide", "The animal didn't cross the street because it was too wide ."),
)


@dataclass
class DataConfig:
    n_train: int = 2000
    n_test: int = 1000
    heldout_fraction: float = 0.25  # share of each noun's (noun, adjective) pairs held out
    # every registered template unless the run names some (data.templates=[plain,passive]);
    # the registry is the only list, so configs/selfattn.yaml does not repeat it
    templates: list[str] = field(default_factory=lambda: list(templates.names()))
    max_len: int = 64  # longest sentence the positional encoding covers (predict too)

    def __post_init__(self) -> None:
        require(self.n_train >= 1, "data.n_train", self.n_train, "an integer >= 1")
        require(self.n_test >= 1, "data.n_test", self.n_test, "an integer >= 1")
        require(0.0 < self.heldout_fraction < 1.0, "data.heldout_fraction",
                self.heldout_fraction, "0 < x < 1")  # fmt: skip
        require(len(self.templates) > 0, "data.templates", self.templates,
                f"a non-empty list of {', '.join(templates.names())}")  # fmt: skip
        for name in self.templates:
            one_of("data.templates", name, templates)
        require(self.max_len >= 32, "data.max_len", self.max_len, "an integer >= 32")


@dataclass
class ModelConfig:
    num_layers: int = 2  # encoder blocks before the self-attention pointer
    num_heads: int = 4
    num_hiddens: int = 32
    ffn_hiddens: int = 64
    positional: str = "sinusoidal"  # a name in attnrun.selfattn.model.positional_encodings
    score: str = "scaled_dot"  # any name in attnrun.core.score_functions
    score_options: dict[str, Any] = field(default_factory=dict)  # +model.score_options.beta=4
    dropout: float = 0.0

    def __post_init__(self) -> None:
        require(1 <= self.num_layers <= 6, "model.num_layers", self.num_layers, "1..6")
        require(self.num_heads >= 1, "model.num_heads", self.num_heads, "an integer >= 1")
        require(
            self.num_hiddens >= 1 and self.num_hiddens % self.num_heads == 0,
            "model.num_hiddens", self.num_hiddens,
            f"a positive multiple of model.num_heads={self.num_heads}",
        )  # fmt: skip
        require(self.ffn_hiddens >= 1, "model.ffn_hiddens", self.ffn_hiddens, "an integer >= 1")
        one_of("model.positional", self.positional, positional_encodings)
        one_of("model.score", self.score, score_functions)
        head_dim = self.num_hiddens // self.num_heads
        make_score(self.score, head_dim, head_dim, head_dim, **dict(self.score_options))
        require(0.0 <= self.dropout < 1.0, "model.dropout", self.dropout, "0 <= x < 1")


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.005
    weight_decay: float = 0.0
    # torch CPU threads (0 = every core this process may use). Measured with `attnrun selfattn -q
    # train.threads=1` vs `=2`, 3 interleaved pairs on the idle 2-core development machine
    # (2026-12-01, load 0.8-1.1): median 19.0 s with 1 thread, 17.1 s with 2 — no measurable gain
    # from one thread when the cores are free, so the default is every core. Under load from other
    # jobs 2 threads were 2.3-6.5x slower (33 s vs 198 s medians): on a shared CPU set 1.
    threads: int = 0
    # the weights evaluated and saved: none | last:N (mean of the last N epochs') | ema:DECAY
    # (moving average updated every step); attnrun.averaging
    average: str = "none"

    def __post_init__(self) -> None:
        check_average(self.average, trains=True)
        require(self.epochs >= 1, "train.epochs", self.epochs, "an integer >= 1")
        require(self.batch_size >= 1, "train.batch_size", self.batch_size, "an integer >= 1")
        require(self.lr > 0, "train.lr", self.lr, "a number > 0")
        require(self.weight_decay >= 0, "train.weight_decay", self.weight_decay, "a number >= 0")
        require(self.threads >= 0, "train.threads", self.threads, "an integer >= 0")


@dataclass
class PlotConfig:
    enabled: bool = True  # heatmaps, viewers and positional-encoding plots


@dataclass
class SelfAttnConfig(BaseConfig):
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    plot: PlotConfig = field(default_factory=PlotConfig)

    def __post_init__(self) -> None:
        super().__post_init__()


@experiment(
    "selfattn",
    SelfAttnConfig,
    key_metrics=(
        "supervised_accuracy",
        "supervised_it_attention",
        "supervised_it_attention_head",
    ),
    help="Self-attention resolves 'it' with a pointer supervised on the antecedent's position.",
    predictor=predict_selfattn,
    objectives={"supervised_accuracy": "maximize", "supervised_it_attention": "maximize"},
)
def run(cfg: SelfAttnConfig, out_dir: Path, ctx: RunContext) -> dict:
    # 1. data
    splits = make_splits(
        cfg.data.n_train, cfg.data.n_test, ctx.generator,
        heldout_fraction=cfg.data.heldout_fraction, template_names=cfg.data.templates,
    )  # fmt: skip
    vocab = Vocab.for_lexicon(splits.lexicon, splits.train + splits.test)
    longest = max(len(ex.tokens) for ex in splits.train + splits.test)
    require(longest <= cfg.data.max_len, "data.max_len", cfg.data.max_len, f">= {longest}")
    ctx.reporter.info(
        f"selfattn: {len(splits.train)} training / {len(splits.test)} held-out sentences, "
        f"{len(splits.heldout_pairs)} held-out (noun, adjective) pairs, vocabulary {len(vocab)}"
    )

    # 2. model and training
    model = build_model(cfg.model, len(vocab), cfg.data.max_len).to(ctx.device)
    steps = cfg.train.epochs * -(-len(splits.train) // cfg.train.batch_size)
    average = make_averager(cfg.train.average)
    t0 = time.perf_counter()
    watch = watch_for(ctx.device, "batches")  # one hint when CPU threads collapse under load

    def on_step(loss: float) -> None:
        task.advance(1, loss=round(loss, 4))
        if hint := watch.lap(1, time.perf_counter()):
            ctx.reporter.info(hint)
            logging.getLogger("attnrun").warning(hint)  # run.log keeps it under -q too

    with ctx.reporter.task("train", steps) as task:
        watch.lap(0, time.perf_counter())
        history = train(
            model, splits.train, vocab, epochs=cfg.train.epochs,
            batch_size=cfg.train.batch_size, lr=cfg.train.lr,
            weight_decay=cfg.train.weight_decay, generator=ctx.generator, device=ctx.device,
            on_step=on_step,
            checkpoint=ctx.checkpoint, average=average,
        )  # fmt: skip
    files.write_history(out_dir, {"loss": history})
    train_time = time.perf_counter() - t0
    weights = weights_figures(cfg, average, model, splits.test, vocab, ctx.device)

    # 3. evaluation
    held = evaluate(model, splits.test, vocab, ctx.device)
    table = held.it_attention  # (layers + 1, heads)
    best_flat = int(table.argmax())
    best = divmod(best_flat, table.shape[1])  # (layer, head)
    names = model.layer_names
    blocks = table[:-1]  # the encoder blocks alone, without the pointer
    # every figure that includes the pointer is named supervised: its attention is the prediction,
    # trained on the antecedent's position (the blocks alone are trained through that loss too)
    train_accuracy = evaluate(model, splits.train, vocab, ctx.device).accuracy
    metrics = {
        "supervised_accuracy": round(held.accuracy, 4),
        "supervised_it_attention": round(float(table.max()), 4),
        "supervised_it_attention_head": f"{names[best[0]]}, head {best[1] + 1}",
        "supervised_it_attention_best": [best[0], best[1]],  # (layer, head) into the table
        "supervised_it_attention_table": {
            name: [round(float(v), 4) for v in row] for name, row in zip(names, table)
        },
        "it_attention_blocks_max": round(float(blocks.max()), 4),
        "supervised_pointer_gate": [
            round(float(g), 4) for g in model.gate_logits.detach().softmax(0)
        ],
        "supervised_train_accuracy": round(train_accuracy, 4),
        "train_loss": round(history[-1], 6),
        "train_time_s": round(train_time, 2),
        "n_train": len(splits.train),
        "n_test": len(splits.test),
        "parameters": sum(p.numel() for p in model.parameters()),
        **weights,
    }
    ctx.record.update(**metrics)

    # 4. artefacts: weights and vocabulary, the motivating sentences' attention (data, always
    # written), then their figures
    model = model.cpu()
    metrics["model_sha256"] = files.save_weights(out_dir, model)
    write_vocab(out_dir, vocab, cfg.data.max_len)
    readings = [
        (name, stem, read_sentence(model, vocab, tokenize(sentence), torch.device("cpu")))
        for name, stem, sentence in MOTIVATING
    ]
    samples = [attention_sample(name, r, names, best[0]) for name, _, r in readings]
    samples += [rollout_sample(name, r) for name, _, r in readings]
    files.write_attention(out_dir, samples)
    if cfg.plot.enabled:
        for _, stem, reading in readings:
            sentence_figures(out_dir, stem, reading, names, best)
        positional_figures(out_dir, cfg.model.num_hiddens, cfg.data.max_len)
    return metrics


def weights_figures(cfg: SelfAttnConfig, average, model, test, vocab, device) -> dict:
    """Put the averaged weights (``train.average``) into ``model``, after scoring the raw ones on
    the held-out sentences; say which weights every other figure comes from (``metrics.json``)."""
    span = average.span()
    out: dict[str, Any] = {"weights": average.describe(cfg.train.epochs, span)}
    if average.active:
        raw = evaluate(model, test, vocab, device).accuracy
        model.load_state_dict(average.averaged(model))
        out.update(average=cfg.train.average, **span, raw_supervised_accuracy=round(raw, 4))
    return out


def attention_sample(
    name: str, reading: SentenceAttention, layer_names: list[str], layer: int
) -> files.AttentionSample:
    """One sentence's self-attention in every layer and head, ``(layers + 1, heads, T, T)``,
    focused on the row of "it" and opened at ``layer`` (the best one), as ``report`` reads it."""
    return files.AttentionSample(
        name=name, kind="self", queries=reading.tokens, keys=reading.tokens,
        weights=files.weights_array(reading.attention), layer_names=list(layer_names),
        focus=reading.it_index, layer=layer, title=reading.title,
    )  # fmt: skip


def rollout_sample(name: str, reading: SentenceAttention) -> files.AttentionSample:
    """The encoder blocks' attention rollout (Abnar & Zuidema 2020; the pointer left out: it is
    the supervised prediction, not a layer the tokens flow through), ``(1, 1, T, T)``, kind
    ``encoder_rollout``, focused on the row of "it"."""
    blocks = reading.attention[:-1].double()  # (layers, heads, T, T)
    return files.AttentionSample(
        name=f"{name} encoder_rollout", kind="encoder_rollout", queries=reading.tokens,
        keys=reading.tokens, weights=files.weights_array(attention_rollout(blocks)),
        layer_names=["rollout"], focus=reading.it_index, title=reading.title,
    )  # fmt: skip
