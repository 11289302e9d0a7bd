"""The encoder-decoder without attention (``decoder=none``): the baseline attention improves on.

Sutskever et al. 2014; Cho et al. 2014; d2l 9.7. The whole source is squeezed into the encoder's
final state: it initialises the decoder and, as the fixed context ``c``, is fed with the embedding
at every step, ``s_t = RNN([E y_{t-1}; c], s_{t-1})``, ``p(y_t) = softmax(W_o s_t)``. The longer
the sentence, the more that one vector must hold — the bottleneck Bahdanau et al. (2015, Fig. 2)
measured, and ``bleu_by_length`` shows.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnrun.core.dropout import Dropout
from attnrun.translate.models.decoders import (
    DecoderState,
    Memory,
    _top,
    decoders,
    output_size,
)
from attnrun.translate.models.encoder import make_rnn
from attnrun.translate.tokenize import PAD

__all__ = ["PlainDecoder"]


@decoders.register("none")
class PlainDecoder(nn.Module):
    """The RNN decoder of d2l 9.7 with the interface of the attention decoders
    (``forward`` for teacher forcing, ``step`` for search); its weights are ``None`` in training
    and zeros in search: it attends to nothing."""

    has_attention = False
    uses_feed = False

    def __init__(
        self,
        vocab_size: int,
        embed_size: int,
        num_hiddens: int,
        num_layers: int,
        cell: str = "gru",
        dropout: float = 0.0,
        attention: nn.Module | None = None,  # unused: the registry passes one to every decoder
        input_feeding: bool = False,
        tie_embeddings: bool = False,
    ) -> None:
        super().__init__()
        out_dim = output_size(embed_size, num_hiddens, tie_embeddings)
        self.embedding = nn.Embedding(vocab_size, embed_size, padding_idx=PAD)
        self.dropout = Dropout(dropout)
        self.rnn = make_rnn(cell, embed_size + num_hiddens, num_hiddens, num_layers, dropout)
        self.bridge = nn.Identity() if out_dim == num_hiddens else nn.Linear(num_hiddens, out_dim)
        self.out = nn.Linear(out_dim, vocab_size)
        if tie_embeddings:  # Press & Wolf 2017
            self.out.weight = self.embedding.weight

    def memory(self, enc_outputs: Tensor, src_lens: Tensor) -> Memory:
        return Memory(enc_outputs, None, src_lens)

    def init_state(self, memory: Memory, enc_state) -> DecoderState:
        """The encoder's final state starts the decoder; its top layer is the context ``c``
        (carried in ``feed``, so beam search reorders it with the state)."""
        return DecoderState(enc_state, _top(enc_state).squeeze(1), 0)

    def forward(
        self,
        tgt_in: Tensor,
        memory: Memory,
        state: DecoderState,
        need_weights: bool = False,
        project: bool = True,
    ):
        assert state.feed is not None  # the context c, set by init_state
        emb = self.dropout(self.embedding(tgt_in))  # (B, T, E)
        context = state.feed.unsqueeze(1).expand(-1, tgt_in.shape[1], -1)  # (B, T, H)
        outputs, _ = self.rnn(torch.cat([emb, context], -1), state.hidden)  # (B, T, H)
        feats = self.dropout(self.bridge(outputs))
        return (self.out(feats) if project else feats), None

    def step(self, y_prev: Tensor, memory: Memory, state: DecoderState):
        assert state.feed is not None  # the context c, set by init_state
        x = torch.cat([self.embedding(y_prev), state.feed], -1).unsqueeze(1)  # (B, 1, E + H)
        s, hidden = self.rnn(x, state.hidden)
        logits = self.out(self.bridge(s)).squeeze(1)  # (B, V)
        nothing = memory.keys.new_zeros(memory.keys.shape[:2])  # (B, S): no attention
        return logits, DecoderState(hidden, state.feed, state.t + 1), nothing
