"""The typed config of ``attnrun translate`` (``configs/translate.yaml`` holds the same defaults in
YAML; ``tests/test_configs.py`` checks the two agree).

Every choice is checked against its registry (score functions, decoders, windows, datasets,
tokenizers, cells, learning-rate schedules, precisions), through :mod:`attnrun.validation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from attnrun.averaging import check_average
from attnrun.core import positional_encodings, score_functions, windows
from attnrun.core.scores import make_score
from attnrun.errors import ConfigError
from attnrun.experiments.base import BaseConfig
from attnrun.translate.data import check_data, datasets, test_splits
from attnrun.translate.models import architectures
from attnrun.translate.models.decoders import decoders
from attnrun.translate.models.encoder import CELLS
from attnrun.translate.schedules import decays_on_plateau, lr_schedules, precisions
from attnrun.translate.tokenize import tokenizers
from attnrun.validation import one_of, require


@dataclass
class DataConfig:
    root: str | None = None  # multi30k: folder of the .gz files (unset: download into the cache)
    path: str | None = None  # tsv: the file; tatoeba: fra.txt (unset: download d2l's zip)
    src: str = "en"
    tgt: str = "fr"
    test_split: str | None = None  # the dataset's test split (None: its default; multi30k:
    # test_2016_flickr, test_2017_flickr or test_2017_mscoco; the others: test)
    skip_bad: bool = False  # drop (and count) bad lines instead of stopping
    n_train: int | None = None  # cap on training pairs (toy: how many to generate, 6000)
    n_val: int = 300
    n_test: int = 300  # toy / tsv / tatoeba (multi30k: the whole test split)
    max_len: int = 50  # ids per sentence incl. EOS; longer ones are cut
    max_clauses: int = 1  # toy: clauses joined by "and" per sentence, 1..max (long sentences)

    def __post_init__(self) -> None:
        require(self.max_clauses >= 1, "data.max_clauses", self.max_clauses, ">= 1")
        require(self.n_train is None or self.n_train >= 1, "data.n_train", self.n_train, ">= 1")
        require(self.n_val >= 1, "data.n_val", self.n_val, ">= 1")
        require(self.n_test >= 1, "data.n_test", self.n_test, ">= 1")
        require(self.max_len >= 2, "data.max_len", self.max_len, ">= 2")


@dataclass
class TokenizerConfig:
    kind: str = "word"  # word | bpe
    min_freq: int = 2
    vocab_size: int = 8000  # bpe
    lowercase: bool = True
    # bpe: one vocabulary trained on source + target text; the model then shares its source and
    # target embeddings (and with model.tie_embeddings the output layer: three-way tying)
    shared: bool = False
    # word: split after an apostrophe between letters (l'eau → l' eau), so elided forms share
    # their stem's entry (Moses splits French so); BPE splits apostrophes already
    split_apostrophes: bool = False

    def __post_init__(self) -> None:
        one_of("tokenizer.kind", self.kind, tokenizers)
        require(
            not self.split_apostrophes or self.kind == "word",
            "tokenizer.split_apostrophes",
            self.split_apostrophes,
            f"false with tokenizer.kind={self.kind} (it splits the words of tokenizer.kind=word; "
            "BPE splits apostrophes already)",
        )
        require(
            not self.shared or self.kind == "bpe",
            "tokenizer.shared",
            self.shared,
            f"false with tokenizer.kind={self.kind} (one vocabulary for both sides: "
            "tokenizer.kind=bpe)",
        )
        require(self.min_freq >= 1, "tokenizer.min_freq", self.min_freq, ">= 1")
        require(self.vocab_size >= 8, "tokenizer.vocab_size", self.vocab_size, ">= 8")


@dataclass
class ModelConfig:
    arch: str = "rnn"  # attnrun.translate.models.architectures: rnn | transformer
    cell: str = "gru"  # gru | lstm
    bidirectional: bool = False  # toy maps are sharpest unidirectional (AER 0.05 vs 0.09)
    embed_size: int = 64
    num_hiddens: int = 128
    num_layers: int = 1
    dropout: float = 0.1
    input_feeding: bool = False  # luong only
    attn_hiddens: int | None = None  # additive score's hidden size (default num_hiddens)
    tie_embeddings: bool = False  # output layer shares the target embedding (Press & Wolf 2017)
    num_heads: int = 4  # transformer: heads of every attention (must divide num_hiddens)
    ffn_hiddens: int = 256  # transformer: position-wise feed-forward size
    positional: str = "sinusoidal"  # transformer: attnrun.core.positional_encodings
    norm_first: bool = False  # transformer: pre-norm (False: post-norm, the paper and d2l)
    # transformer: dropout on the attention weights (null: model.dropout); at 0 a training step
    # draws no mask for them
    attention_dropout: float | None = None

    def __post_init__(self) -> None:
        one_of("model.arch", self.arch, architectures)
        one_of("model.cell", self.cell, CELLS)
        one_of("model.positional", self.positional, positional_encodings)
        require(self.num_heads >= 1, "model.num_heads", self.num_heads, ">= 1")
        require(self.ffn_hiddens >= 1, "model.ffn_hiddens", self.ffn_hiddens, ">= 1")
        require(
            self.arch != "transformer" or self.num_hiddens % self.num_heads == 0,
            "model.num_heads",
            self.num_heads,
            f"a divisor of model.num_hiddens={self.num_hiddens}",
        )
        for key in ("embed_size", "num_hiddens", "num_layers"):
            require(getattr(self, key) >= 1, f"model.{key}", getattr(self, key), ">= 1")
        require(
            not self.bidirectional or self.num_hiddens % 2 == 0,
            "model.num_hiddens",
            self.num_hiddens,
            "an even number with a bidirectional encoder",
        )
        require(0.0 <= self.dropout < 1.0, "model.dropout", self.dropout, "[0, 1)")
        p = self.attention_dropout
        require(p is None or 0.0 <= p < 1.0, "model.attention_dropout", p, "[0, 1) or null")
        require(
            p is None or self.arch == "transformer",
            "model.attention_dropout",
            p,
            f"null with model.arch={self.arch} (it sets the Transformer's attention dropout)",
        )
        require(
            self.attn_hiddens is None or self.attn_hiddens >= 1,
            "model.attn_hiddens",
            self.attn_hiddens,
            ">= 1 or null",
        )


@dataclass
class AttentionConfig:
    kind: str = "global"  # a window of attnrun.core.windows (Luong 2015 sec. 3.2)
    window: int = 5  # D: local windows cover [p_t - D, p_t + D]
    hard: bool = False  # one-hot attention (straight-through Gumbel) instead of the softmax
    # RNN decoders: learned keys f_k(h) and values f_v(h), tanh(W h + b) (Daniluk et al. 2017);
    # false: key = value = h, the papers' decoders.
    key_value: bool = False
    key_size: int | None = None  # key_value: size of the keys (null: model.num_hiddens)
    value_size: int | None = None  # key_value: size of the values, the context (null: num_hiddens)

    def __post_init__(self) -> None:
        one_of("attention.kind", self.kind, windows)
        require(self.window >= 1, "attention.window", self.window, ">= 1")
        for key in ("key_size", "value_size"):
            size = getattr(self, key)
            require(size is None or size >= 1, f"attention.{key}", size, ">= 1 or null")


@dataclass
class TrainConfig:
    epochs: int = 8
    batch_size: int = 64
    lr: float = 0.003
    clip: float = 1.0  # max gradient norm (0: off)
    label_smoothing: float = 0.0
    max_minutes: float | None = None  # time budget over all resumes: stop after the current batch
    patience: int = 3  # epochs without a better validation BLEU before stopping (0: off)
    lr_decay: float = 0.5  # multiply the learning rate by this after an epoch without progress
    lr_schedule: str = "plateau"  # attnrun.translate.schedules.lr_schedules
    warmup_steps: int = 4000  # inverse_sqrt, warmup_cosine: linear warm-up steps (Vaswani: 4000)
    # the budget's last share over which the rate falls linearly to 0 (0: off); not with plateau
    cooldown: float = 0.0
    threads: int = 0  # CPU threads for torch (0: every core this process may use)
    precision: str = "fp32"  # attnrun.translate.schedules.precisions
    checkpoint_minutes: float = 5.0  # also checkpoint inside an epoch this often (0: every batch)
    # the weights validated and kept: none | last:N (mean of the last N epochs') | ema:DECAY
    # (moving average, every step); attnrun.averaging
    average: str = "none"
    # Adam's second-moment decay (Kingma & Ba 2015: 0.999; Vaswani et al. 2017, 5.3: 0.98)
    adam_beta2: float = 0.999
    # decoupled weight decay (AdamW, Loshchilov & Hutter 2019; fairseq's --weight-decay); 0: Adam
    weight_decay: float = 0.0
    # training only: each source word becomes <unk> with this probability (source word dropout,
    # Sennrich & Zhang 2019; attnrun.translate.batching.drop_words); 0: off
    word_dropout: float = 0.0

    def __post_init__(self) -> None:
        require(self.epochs >= 1, "train.epochs", self.epochs, ">= 1")
        require(self.batch_size >= 1, "train.batch_size", self.batch_size, ">= 1")
        require(self.lr > 0, "train.lr", self.lr, "> 0")
        require(self.clip >= 0, "train.clip", self.clip, ">= 0")
        ls = self.label_smoothing
        require(0.0 <= ls < 1.0, "train.label_smoothing", ls, "[0, 1)")
        mm = self.max_minutes
        require(mm is None or mm > 0, "train.max_minutes", mm, "> 0 or null")
        require(self.patience >= 0, "train.patience", self.patience, ">= 0")
        require(0 < self.lr_decay <= 1, "train.lr_decay", self.lr_decay, "(0, 1]")
        require(self.threads >= 0, "train.threads", self.threads, ">= 0 (0: every core)")
        one_of("train.lr_schedule", self.lr_schedule, lr_schedules)
        require(self.warmup_steps >= 1, "train.warmup_steps", self.warmup_steps, ">= 1")
        cd = self.cooldown
        require(0 <= cd <= 1, "train.cooldown", cd, "[0, 1] (a share of the budget; 0: off)")
        annealed = not decays_on_plateau(self.lr_schedule)
        require(cd == 0 or annealed, "train.cooldown", cd, "0 with train.lr_schedule=plateau")
        one_of("train.precision", self.precision, precisions)
        cm = self.checkpoint_minutes
        require(cm >= 0, "train.checkpoint_minutes", cm, ">= 0 (0: after every batch)")
        check_average(self.average, trains=True)
        require(0 < self.adam_beta2 < 1, "train.adam_beta2", self.adam_beta2, "(0, 1)")
        wd = self.weight_decay
        require(wd >= 0, "train.weight_decay", wd, ">= 0 (0: plain Adam)")
        wdp = self.word_dropout
        require(0 <= wdp < 1, "train.word_dropout", wdp, "[0, 1) (0: off)")


@dataclass
class DecodeConfig:
    beam: int = 1  # 1: greedy
    length_penalty: float = 0.0  # GNMT alpha
    n_best: int = 1
    max_len: int = 60  # generated tokens per sentence
    batch_size: int = 128
    # copy, over each <unk> the model emits, the source word it attends to most (Luong et al.
    # 2015b, "Addressing the Rare Word Problem"; Jean et al. 2015): word vocabularies only
    replace_unk: bool = False

    def __post_init__(self) -> None:
        require(self.beam >= 1, "decode.beam", self.beam, ">= 1")
        require(1 <= self.n_best <= self.beam, "decode.n_best", self.n_best, "1..decode.beam")
        lp = self.length_penalty
        require(lp >= 0, "decode.length_penalty", lp, ">= 0")
        require(self.max_len >= 1, "decode.max_len", self.max_len, ">= 1")
        require(self.batch_size >= 1, "decode.batch_size", self.batch_size, ">= 1")


@dataclass
class PlotConfig:
    heatmaps: int = 4  # attention heatmaps (and attention.json samples) of the first test sentences


@dataclass
class TranslateConfig(BaseConfig):
    score: str = "additive"  # any core score: additive (=concat), dot, general, scaled_dot, ...
    decoder: str = "auto"  # auto | a name in the decoders registry (auto: bahdanau for additive)
    dataset: str = "toy"  # a name in the datasets registry
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    plot: PlotConfig = field(default_factory=PlotConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        one_of("score", self.score, score_functions)
        one_of("decoder", self.decoder, ["auto", *decoders.names()])
        one_of("dataset", self.dataset, datasets)
        if self.data.test_split is None:  # config.yaml and metrics.json then name the same split
            self.data.test_split = test_splits(self.dataset)[0]
        a = self.attention
        require(
            not a.key_value or self.model.arch != "transformer",
            "attention.key_value",
            a.key_value,
            "false with model.arch=transformer (the Transformer always has keys and values)",
        )
        key_size = a.key_size or self.model.num_hiddens
        require(
            not a.key_value or _score_accepts(self.score, self.model.num_hiddens, key_size),
            "attention.key_size",
            key_size,
            f"model.num_hiddens={self.model.num_hiddens} (the decoder state size) with "
            f"score={self.score}, which compares queries and keys of one size",
        )
        attends = self.decoder != "none" or self.model.arch == "transformer"
        check_replace_unk(self.decode.replace_unk, self.tokenizer.kind, attends)


def check_replace_unk(replace_unk: bool, tokenizer_kind: str, attends: bool) -> None:
    """``decode.replace_unk`` needs a word target (BPE spells every word: no <unk> to replace)
    and a decoder that attends (``decoder=none`` has no alignment to copy by): the config's
    check, and ``attnrun evaluate --replace-unk``'s on a trained run."""
    if not replace_unk:
        return
    require(
        tokenizer_kind == "word",
        "decode.replace_unk",
        True,
        f"false with tokenizer.kind={tokenizer_kind} (only a word vocabulary emits <unk>)",
    )
    require(
        attends,
        "decode.replace_unk",
        True,
        "false with decoder=none (no attention to say which source word an <unk> stands for)",
    )


def _score_accepts(score: str, query_dim: int, key_dim: int) -> bool:
    """Whether the score can compare queries of ``query_dim`` with keys of ``key_dim`` (dot,
    scaled_dot and cosine need them equal); built on the meta device, so no weights are made."""
    try:
        with torch.device("meta"):
            make_score(score, query_dim, key_dim)
    except ConfigError:
        return False
    return True


def check_inputs(cfg: TranslateConfig) -> None:
    """Before a run folder exists (``attnrun translate``): the dataset's files are there (or
    downloaded into the cache) and its test split exists; see
    :func:`attnrun.translate.data.check_data`."""
    check_data(cfg.dataset, cfg.data)
