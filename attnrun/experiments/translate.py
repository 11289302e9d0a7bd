"""``translate``: an RNN encoder-decoder with attention, trained and evaluated end to end.

Bahdanau et al. 2015 (additive attention on the previous decoder state) and Luong et al. 2015
(attention on the current state; global, local-m, local-p windows; input feeding). The run:

1. loads the corpus (``dataset=``), trains the tokenizers on its training split;
2. trains with teacher forcing, validating with BLEU each epoch (:mod:`attnrun.translate.train`);
3. translates the test split (greedy or beam), scores sacreBLEU BLEU / chrF, perplexity and, for
   ``toy``, the alignment error rate of the attention argmax;
4. writes ``translations.tsv``, ``loss.png``, attention heatmaps, ``model.pt`` and the tokenizers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnrun.errors import ConfigError
from attnrun.experiments.base import BaseConfig, experiment
from attnrun.translate.predict import translate_predictor


def _require(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r} is not valid; {allowed}")


@dataclass
class DataConfig:
    root: str | None = None  # multi30k: folder of the .gz files (unset: download into the cache)
    path: str | None = None  # tsv: the file; tatoeba: fra.txt (unset: download d2l's zip)
    src: str = "en"
    tgt: str = "fr"
    test_split: str = "test_2016_flickr"  # multi30k's test set
    skip_bad: bool = False  # drop (and count) bad lines instead of stopping
    n_train: int | None = None  # cap on training pairs (toy: how many to generate, 6000)
    n_val: int = 300
    n_test: int = 300  # toy / tsv / tatoeba (multi30k: the whole test split)
    max_len: int = 50  # ids per sentence incl. EOS; longer ones are cut

    def __post_init__(self) -> None:
        _require(self.n_train is None or self.n_train >= 1, "data.n_train", self.n_train, ">= 1")
        _require(self.n_val >= 1, "data.n_val", self.n_val, "allowed: >= 1")
        _require(self.n_test >= 1, "data.n_test", self.n_test, "allowed: >= 1")
        _require(self.max_len >= 2, "data.max_len", self.max_len, "allowed: >= 2")


@dataclass
class TokenizerConfig:
    kind: str = "word"  # word | bpe
    min_freq: int = 2
    vocab_size: int = 8000  # bpe
    lowercase: bool = True

    def __post_init__(self) -> None:
        from attnrun.translate.tokenize import tokenizers

        _require(
            self.kind in tokenizers,
            "tokenizer.kind",
            self.kind,
            f"valid: {', '.join(tokenizers.names())}",
        )
        _require(self.min_freq >= 1, "tokenizer.min_freq", self.min_freq, "allowed: >= 1")
        _require(self.vocab_size >= 8, "tokenizer.vocab_size", self.vocab_size, "allowed: >= 8")


@dataclass
class ModelConfig:
    cell: str = "gru"  # gru | lstm
    bidirectional: bool = False  # toy maps are sharpest unidirectional (AER 0.05 vs 0.09)
    embed_size: int = 64
    num_hiddens: int = 128
    num_layers: int = 1
    dropout: float = 0.1
    input_feeding: bool = False  # luong only
    attn_hiddens: int | None = None  # additive score's hidden size (default num_hiddens)
    tie_embeddings: bool = False  # output layer shares the target embedding (Press & Wolf 2017)

    def __post_init__(self) -> None:
        from attnrun.translate.models.encoder import CELLS

        _require(self.cell in CELLS, "model.cell", self.cell, f"valid: {', '.join(CELLS)}")
        for key in ("embed_size", "num_hiddens", "num_layers"):
            _require(getattr(self, key) >= 1, f"model.{key}", getattr(self, key), "allowed: >= 1")
        _require(
            not self.bidirectional or self.num_hiddens % 2 == 0,
            "model.num_hiddens",
            self.num_hiddens,
            "must be even with a bidirectional encoder",
        )
        _require(0.0 <= self.dropout < 1.0, "model.dropout", self.dropout, "allowed: [0, 1)")
        _require(
            self.attn_hiddens is None or self.attn_hiddens >= 1,
            "model.attn_hiddens",
            self.attn_hiddens,
            "allowed: >= 1",
        )


@dataclass
class AttentionConfig:
    kind: str = "global"  # global | local_m | local_p (Luong 2015 sec. 3.2)
    window: int = 5  # D: local windows cover [p_t - D, p_t + D]
    hard: bool = False  # one-hot attention (straight-through Gumbel) instead of the softmax

    def __post_init__(self) -> None:
        from attnrun.translate.models import WINDOWS

        _require(self.kind in WINDOWS, "attention.kind", self.kind, f"valid: {', '.join(WINDOWS)}")
        _require(self.window >= 1, "attention.window", self.window, "allowed: >= 1")


@dataclass
class TrainConfig:
    epochs: int = 8
    batch_size: int = 64
    lr: float = 0.003
    clip: float = 1.0  # max gradient norm (0: off)
    label_smoothing: float = 0.0
    max_minutes: float | None = None  # time budget: stop after the current batch
    patience: int = 3  # epochs without a better validation BLEU before stopping (0: off)
    lr_decay: float = 0.5  # multiply the learning rate by this after an epoch without progress
    lr_schedule: str = "plateau"  # plateau (x lr_decay) | linear | cosine (to 0 over the budget)
    threads: int = 1  # CPU threads for torch (0: torch's default, one per core)
    precision: str = "fp32"  # fp32 | bf16 (autocast: bfloat16 matrix products, fp32 weights)

    def __post_init__(self) -> None:
        _require(self.epochs >= 1, "train.epochs", self.epochs, "allowed: >= 1")
        _require(self.batch_size >= 1, "train.batch_size", self.batch_size, "allowed: >= 1")
        _require(self.lr > 0, "train.lr", self.lr, "allowed: > 0")
        _require(self.clip >= 0, "train.clip", self.clip, "allowed: >= 0")
        _require(
            0.0 <= self.label_smoothing < 1.0,
            "train.label_smoothing",
            self.label_smoothing,
            "allowed: [0, 1)",
        )
        _require(
            self.max_minutes is None or self.max_minutes > 0,
            "train.max_minutes",
            self.max_minutes,
            "allowed: > 0 or null",
        )
        _require(self.patience >= 0, "train.patience", self.patience, "allowed: >= 0")
        _require(0 < self.lr_decay <= 1, "train.lr_decay", self.lr_decay, "allowed: (0, 1]")
        _require(self.threads >= 0, "train.threads", self.threads, "allowed: >= 0")
        from attnrun.translate.train import LR_SCHEDULES

        _require(
            self.lr_schedule in LR_SCHEDULES,
            "train.lr_schedule",
            self.lr_schedule,
            f"valid: {', '.join(LR_SCHEDULES)}",
        )
        _require(
            self.precision in ("fp32", "bf16"),
            "train.precision",
            self.precision,
            "valid: fp32, bf16",
        )


@dataclass
class DecodeConfig:
    beam: int = 1  # 1: greedy
    length_penalty: float = 0.0  # GNMT alpha
    n_best: int = 1
    max_len: int = 60  # generated tokens per sentence
    batch_size: int = 128

    def __post_init__(self) -> None:
        _require(self.beam >= 1, "decode.beam", self.beam, "allowed: >= 1")
        _require(
            1 <= self.n_best <= self.beam,
            "decode.n_best",
            self.n_best,
            "allowed: 1 <= n_best <= decode.beam",
        )
        _require(
            self.length_penalty >= 0, "decode.length_penalty", self.length_penalty, "allowed: >= 0"
        )
        _require(self.max_len >= 1, "decode.max_len", self.max_len, "allowed: >= 1")
        _require(self.batch_size >= 1, "decode.batch_size", self.batch_size, "allowed: >= 1")


@dataclass
class PlotConfig:
    heatmaps: int = 4  # attention heatmaps of the first test sentences


@dataclass
class TranslateConfig(BaseConfig):
    score: str = "additive"  # any core score: additive (=concat), dot, general, scaled_dot, ...
    decoder: str = "auto"  # auto | bahdanau | luong (auto: bahdanau for additive)
    dataset: str = "toy"  # toy | multi30k | tatoeba | tsv
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    plot: PlotConfig = field(default_factory=PlotConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        from attnrun.core import score_functions
        from attnrun.translate.data import datasets
        from attnrun.translate.models.decoders import decoders

        _require(
            self.score in score_functions,
            "score",
            self.score,
            f"valid: {', '.join(score_functions.names())}",
        )
        _require(
            self.decoder == "auto" or self.decoder in decoders,
            "decoder",
            self.decoder,
            f"valid: auto, {', '.join(decoders.names())}",
        )
        _require(
            self.dataset in datasets,
            "dataset",
            self.dataset,
            f"valid: {', '.join(datasets.names())}",
        )


@experiment(
    "translate",
    TranslateConfig,
    key_metrics=("bleu", "bleu_lowercase", "chrf", "aer", "train_tokens_per_s"),
    help="RNN encoder-decoder with attention (Bahdanau 2015 / Luong 2015) on a parallel corpus.",
    predictor=translate_predictor,
)
def run(cfg: TranslateConfig, out_dir: Path, ctx) -> dict[str, Any]:
    from attnrun.translate.pipeline import run_translate

    return run_translate(cfg, out_dir, ctx)
