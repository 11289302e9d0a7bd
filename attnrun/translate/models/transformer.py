"""The Transformer encoder-decoder (Vaswani et al. 2017; d2l 11.7) for ``attnrun translate``.

``src → embedding · √d + positions → N × EncoderBlock → memory``;
``tgt_in → embedding · √d + positions → N × DecoderBlock(memory) → out → logits``.

:class:`TransformerSeq2Seq` has the interface of the RNN :class:`~attnrun.translate.models.Seq2Seq`
that the trainer and the searches drive:

- ``encode(src, src_lens) -> (memory, state)``, both with ``.select(index)`` (beam search);
- ``forward(src, src_lens, tgt_in, need_weights) -> (logits (B, T, V), weights (B, T, S))``,
  teacher forcing in one pass;
- ``token_features(src, src_lens, tgt_in, tgt_out) -> (features (N, d), targets (N,))`` and the
  vocabulary projection ``decoder.out``;
- ``decoder.step(y_prev (B,), memory, state) -> (logits (B, V), state, weights (B, S))``, one
  position at a time on cached keys and values (:mod:`attnrun.core.blocks`).

The alignment weights returned with the logits (what the heatmaps and the alignment scores read)
are the last decoder layer's cross-attention, averaged over heads; :meth:`attention_maps` gives
every layer's and head's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from attnrun.core import positional_encodings
from attnrun.core.blocks import DecoderBlock, EncoderBlock, KeyValues
from attnrun.errors import ConfigError
from attnrun.translate.tokenize import PAD

__all__ = [
    "TransformerDecoder",
    "TransformerEncoder",
    "TransformerMemory",
    "TransformerSeq2Seq",
    "TransformerState",
]


def _embedding(vocab_size: int, num_hiddens: int) -> nn.Embedding:
    """Token embedding with ``N(0, 1/d)`` rows: the ``√d`` scaling (Vaswani et al. 2017, 3.4)
    then gives unit-scale inputs, level with the ±1 sinusoids (torch's default ``N(0, 1)`` would
    make them ``√d`` times larger and drown the positions), and a tied output layer starts with
    unit-scale logits."""
    emb = nn.Embedding(vocab_size, num_hiddens, padding_idx=PAD)
    nn.init.normal_(emb.weight, std=num_hiddens**-0.5)
    with torch.no_grad():
        emb.weight[PAD].zero_()
    return emb


def _check_positions(side: str, offset: int, length: int, max_len: int) -> None:
    if offset + length > max_len:
        raise ConfigError(
            f"transformer: {side} positions {offset}..{offset + length - 1} exceed "
            f"max_len={max_len} (the longest sequence the positional encoding covers)"
        )


@dataclass
class TransformerMemory:
    """The encoded source: ``outputs (B, S, d)``, each decoder layer's cross-attention keys and
    values ``kv[l]`` (:class:`~attnrun.core.blocks.KeyValues`, projected once per source) and the
    source lengths ``valid_lens (B,)``."""

    outputs: Tensor
    kv: list[KeyValues]
    valid_lens: Tensor

    def select(self, index: Tensor) -> TransformerMemory:
        return TransformerMemory(
            self.outputs.index_select(0, index),
            [kv.select(index) for kv in self.kv],
            self.valid_lens.index_select(0, index),
        )


@dataclass
class TransformerState:
    """Decoder state: per layer, the self-attention keys/values of the ``t`` positions decoded
    so far (``None`` before the first), and ``t``, the position of the next token."""

    caches: list[KeyValues | None]
    t: int

    def select(self, index: Tensor) -> TransformerState:
        return TransformerState(
            [None if c is None else c.select(index) for c in self.caches], self.t
        )


class TransformerEncoder(nn.Module):
    """``X = dropout(E src · √d + P)``, then ``num_layers`` :class:`EncoderBlock` with the source
    padding masked (and a final LayerNorm when the blocks are pre-norm).

    ``forward(src (B, S), src_lens (B,), need_weights=False) -> (outputs (B, S, d),
    [weights (B, heads, S, S) or None] * num_layers)``.
    """

    def __init__(
        self,
        vocab_size: int,
        num_hiddens: int,
        num_heads: int,
        num_layers: int,
        ffn_hiddens: int,
        dropout: float,
        positional: str,
        max_len: int,
        norm_first: bool,
        attention_dropout: float | None = None,
    ) -> None:
        super().__init__()
        self.num_hiddens, self.max_len = num_hiddens, max_len
        self.embedding = _embedding(vocab_size, num_hiddens)
        self.positional = positional_encodings.get(positional)(num_hiddens, dropout, max_len)
        blocks = [
            EncoderBlock(
                num_hiddens, num_heads, ffn_hiddens, dropout,
                norm_first=norm_first, attention_dropout=attention_dropout,
            )
            for _ in range(num_layers)
        ]  # fmt: skip
        self.blocks = nn.ModuleList(blocks)
        for i, block in enumerate(blocks):
            block.attention.site = ("encoder_self", i)  # attnrun.core.heads hook points
        # Pre-norm blocks leave their residual stream unnormalised (Xiong et al. 2020).
        self.norm = nn.LayerNorm(num_hiddens) if norm_first else nn.Identity()

    def forward(
        self, src: Tensor, src_lens: Tensor, need_weights: bool = False
    ) -> tuple[Tensor, list[Tensor | None]]:
        _check_positions("source", 0, src.shape[1], self.max_len)
        X = self.positional(self.embedding(src) * math.sqrt(self.num_hiddens))  # (B, S, d)
        weights = []
        for block in self.blocks:
            X, w = block(X, src_lens, need_weights)  # (B, S, d), (B, heads, S, S)
            weights.append(w)
        return self.norm(X), weights


@dataclass
class _Decoded:
    features: Tensor  # (B, T, d), before the vocabulary projection
    state: TransformerState
    self_weights: list[Tensor | None]  # per layer (B, heads, T, t + T)
    cross_weights: list[Tensor | None]  # per layer (B, heads, T, S)


class TransformerDecoder(nn.Module):
    """``Y = dropout(E y · √d + P[t:])``, ``num_layers`` :class:`DecoderBlock`, final LayerNorm
    (pre-norm only), and the vocabulary projection ``out`` (tied to ``E`` with
    ``tie_embeddings``, Press & Wolf 2017, as in Vaswani et al. 2017, 3.4). ``embedding``: an
    existing ``E`` to use (the encoder's, for a shared vocabulary) instead of a new one.

    - ``forward(tgt_in (B, T), memory, state, need_weights=False, project=True) ->
      (logits (B, T, V) or features (B, T, d), weights (B, T, S) or None)``: teacher forcing;
    - ``step(y_prev (B,), memory, state) -> (logits (B, V), state, weights (B, S))``: one token
      at position ``state.t`` on the cached keys and values.

    ``weights`` are the last layer's cross-attention averaged over heads.
    """

    def __init__(
        self,
        vocab_size: int,
        num_hiddens: int,
        num_heads: int,
        num_layers: int,
        ffn_hiddens: int,
        dropout: float,
        positional: str,
        max_len: int,
        norm_first: bool,
        tie_embeddings: bool,
        embedding: nn.Embedding | None = None,
        attention_dropout: float | None = None,
    ) -> None:
        super().__init__()
        self.num_hiddens, self.max_len = num_hiddens, max_len
        self.embedding = _embedding(vocab_size, num_hiddens) if embedding is None else embedding
        self.positional = positional_encodings.get(positional)(num_hiddens, dropout, max_len)
        blocks = [
            DecoderBlock(
                num_hiddens, num_heads, ffn_hiddens, dropout,
                norm_first=norm_first, attention_dropout=attention_dropout,
            )
            for _ in range(num_layers)
        ]  # fmt: skip
        self.blocks = nn.ModuleList(blocks)
        for i, block in enumerate(blocks):  # attnrun.core.heads hook points
            block.self_attention.site = ("decoder_self", i)
            block.cross_attention.site = ("cross", i)
        self.norm = nn.LayerNorm(num_hiddens) if norm_first else nn.Identity()
        self.out = nn.Linear(num_hiddens, vocab_size)
        if tie_embeddings:
            self.out.weight = self.embedding.weight

    def memory(self, enc_outputs: Tensor, src_lens: Tensor) -> TransformerMemory:
        """Every layer's cross-attention keys and values, projected once per source."""
        kv = []
        for block in self.blocks:
            assert isinstance(block, DecoderBlock)  # as __init__ builds them
            kv.append(block.memory(enc_outputs))
        return TransformerMemory(enc_outputs, kv, src_lens)

    def init_state(self) -> TransformerState:
        return TransformerState([None] * len(self.blocks), 0)

    def decode(
        self,
        tgt: Tensor,
        memory: TransformerMemory,
        state: TransformerState,
        need_weights: bool = False,
        every_layer: bool = False,
    ) -> _Decoded:
        """Tokens ``tgt (B, T)`` at positions ``state.t .. state.t + T - 1``, attending to the
        cached positions before them. Weights: of the last layer with ``need_weights``, of every
        layer with ``every_layer`` (the others are ``None``)."""
        _check_positions("target", state.t, tgt.shape[1], self.max_len)
        emb = self.embedding(tgt) * math.sqrt(self.num_hiddens)  # (B, T, d)
        X = self.positional(emb, offset=state.t)
        caches, self_ws, cross_ws = [], [], []
        last = len(self.blocks) - 1
        for i, (block, cache) in enumerate(zip(self.blocks, state.caches)):
            weights = every_layer or (need_weights and i == last)
            o = block(X, memory.kv[i], memory.valid_lens, cache, need_weights=weights)
            X = o.out  # (B, T, d)
            caches.append(o.cache)
            self_ws.append(o.self_weights)
            cross_ws.append(o.cross_weights)
        new_state = TransformerState(caches, state.t + tgt.shape[1])
        return _Decoded(self.norm(X), new_state, self_ws, cross_ws)

    def forward(
        self,
        tgt_in: Tensor,
        memory: TransformerMemory,
        state: TransformerState,
        need_weights: bool = False,
        project: bool = True,
    ) -> tuple[Tensor, Tensor | None]:
        d = self.decode(tgt_in, memory, state, need_weights)
        w = d.cross_weights[-1]
        weights = None if w is None else w.mean(1)  # (B, T, S)
        return (self.out(d.features) if project else d.features), weights

    def step(
        self, y_prev: Tensor, memory: TransformerMemory, state: TransformerState
    ) -> tuple[Tensor, TransformerState, Tensor]:
        d = self.decode(y_prev.unsqueeze(1), memory, state, need_weights=True)  # T = 1
        logits = self.out(d.features).squeeze(1)  # (B, V)
        w = d.cross_weights[-1]
        assert w is not None  # need_weights=True
        return logits, d.state, w.mean(1).squeeze(1)  # (B, S)


class TransformerSeq2Seq(nn.Module):
    """The Transformer (Vaswani et al. 2017, figure 1; d2l 11.7) with the RNN ``Seq2Seq``'s
    interface (see the module docstring).

    Args:
        src_vocab, tgt_vocab: vocabulary sizes (id 0 is padding).
        num_hiddens: model size ``d_model`` (divisible by ``num_heads``).
        num_heads: attention heads in every attention.
        num_layers: blocks in the encoder and in the decoder.
        ffn_hiddens: hidden size ``d_ff`` of the feed-forward nets.
        dropout: on the embeddings + positions, the attention weights and every sublayer output.
        attention_dropout: on the attention weights instead of ``dropout``, when given.
        positional: ``"sinusoidal"`` (fixed, 3.5) or ``"learned"`` (a name in
            :data:`attnrun.core.positional_encodings`).
        max_len: longest source and longest target (incl. EOS / BOS) the positions cover.
        norm_first: pre-norm blocks (plus a final LayerNorm per stack) instead of post-norm.
        tie_embeddings: the output projection reuses the target embedding.
        share_embeddings: one embedding matrix for source and target (a shared vocabulary,
            ``src_vocab == tgt_vocab``); with ``tie_embeddings`` the output projection is that
            matrix too — the three-way tying of Vaswani et al. 2017, 3.4 (Press & Wolf 2017).
    """

    def __init__(
        self,
        src_vocab: int,
        tgt_vocab: int,
        num_hiddens: int = 32,
        num_heads: int = 4,
        num_layers: int = 2,
        ffn_hiddens: int = 64,
        dropout: float = 0.1,
        positional: str = "sinusoidal",
        max_len: int = 128,
        norm_first: bool = False,
        tie_embeddings: bool = False,
        share_embeddings: bool = False,
        attention_dropout: float | None = None,
    ) -> None:
        super().__init__()
        if share_embeddings and src_vocab != tgt_vocab:
            raise ConfigError(
                f"transformer: shared embeddings need one vocabulary; got {src_vocab} source "
                f"and {tgt_vocab} target ids"
            )
        if num_heads < 1 or num_hiddens < 1 or num_hiddens % num_heads:
            raise ConfigError(
                f"transformer: num_heads={num_heads} must divide num_hiddens={num_hiddens}"
            )
        if num_layers < 1:
            raise ConfigError(f"transformer: num_layers must be >= 1; got {num_layers}")
        shared = (num_hiddens, num_heads, num_layers, ffn_hiddens, dropout, positional, max_len)
        p = attention_dropout
        self.encoder = TransformerEncoder(src_vocab, *shared, norm_first, attention_dropout=p)
        embedding = self.encoder.embedding if share_embeddings else None
        self.decoder = TransformerDecoder(
            tgt_vocab, *shared, norm_first, tie_embeddings, embedding, attention_dropout=p
        )

    def encode(self, src: Tensor, src_lens: Tensor) -> tuple[TransformerMemory, TransformerState]:
        outputs, _ = self.encoder(src, src_lens)  # (B, S, d)
        return self.decoder.memory(outputs, src_lens), self.decoder.init_state()

    def forward(
        self, src: Tensor, src_lens: Tensor, tgt_in: Tensor, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing: ``(logits (B, T, V), weights (B, T, S) or None)``."""
        memory, state = self.encode(src, src_lens)
        return self.decoder(tgt_in, memory, state, need_weights=need_weights)

    def token_features(
        self, src: Tensor, src_lens: Tensor, tgt_in: Tensor, tgt_out: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Features ``(N, d)`` before ``decoder.out`` and targets ``(N,)`` of the ``N`` non-pad
        target positions (the trainer projects only these, as for the RNN models)."""
        memory, state = self.encode(src, src_lens)
        feats, _ = self.decoder(tgt_in, memory, state, project=False)  # (B, T, d)
        keep = tgt_out != PAD  # (B, T)
        return feats[keep], tgt_out[keep]

    @torch.no_grad()
    def attention_maps(self, src: Tensor, src_lens: Tensor, tgt_in: Tensor) -> dict[str, Tensor]:
        """Every layer's and head's weights under teacher forcing:
        ``encoder_self (B, L, H, S, S)``, ``decoder_self (B, L, H, T, T)``,
        ``cross (B, L, H, T, S)``."""
        outputs, enc_w = self.encoder(src, src_lens, need_weights=True)
        memory = self.decoder.memory(outputs, src_lens)
        d = self.decoder.decode(tgt_in, memory, self.decoder.init_state(), every_layer=True)
        return {
            "encoder_self": torch.stack(enc_w, 1),
            "decoder_self": torch.stack(_every_layer(d.self_weights), 1),
            "cross": torch.stack(_every_layer(d.cross_weights), 1),
        }


def _every_layer(weights: list[Tensor | None]) -> list[Tensor]:
    """Per-layer weights of a decode with ``every_layer=True``: none of them is ``None``."""
    out = [w for w in weights if w is not None]
    assert len(out) == len(weights)
    return out
