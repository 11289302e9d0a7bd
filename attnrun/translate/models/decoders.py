"""Attention decoders (Bahdanau et al. 2015; Luong et al. 2015) on :class:`attnrun.core.Attention`.

Each decoder offers

- ``forward(tgt_in (B, T), memory, state, need_weights) -> (logits (B, T, V), weights (B, T, S))``
  for teacher forcing (``project=False``: the features ``(B, T, H)`` before the vocabulary
  projection ``self.out``, so training can project only the non-pad positions), and
- ``step(y_prev (B,), memory, state) -> (logits (B, V), state, weights (B, S))`` for search,

where ``memory`` (:class:`Memory`) holds the encoder annotations, their keys and values and the
score's key projection, computed once per source, and ``state`` (:class:`DecoderState`) the RNN
state, the previous attentional vector (Luong input feeding) and the step ``t`` (for local
windows). The weights of step ``t`` are
the alignment of target token ``t``.

Key-value attention (``key_value=True``; Daniluk et al. 2017, "Frustratingly short attention spans
in neural language modeling", sec. 3.1; d2l sec. 11.1 "Queries, Keys, and Values"): the annotation
``h_j`` no longer plays both parts. Keys ``k_j = tanh(W_k h_j + b_k)`` ``(B, S, dk)`` feed the score
and values ``v_j = tanh(W_v h_j + b_v)`` ``(B, S, dv)`` the context ``c_t = Σ_j α_tj v_j``, both
computed once per source in :meth:`memory`. Without it ``k_j = v_j = h_j`` (the papers' decoders).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnrun.core import Attention
from attnrun.core.dropout import Dropout, dropout
from attnrun.registry import Registry
from attnrun.translate.models.encoder import make_rnn
from attnrun.translate.tokenize import PAD

if TYPE_CHECKING:
    from attnrun.translate.models.plain import PlainDecoder

#: name → decoder class ``(vocab_size, embed_size, num_hiddens, num_layers, cell, dropout,
#: attention, input_feeding, tie_embeddings, key_value)``: an attention decoder (a subclass of
#: ``BahdanauDecoder`` or ``LuongDecoder``) or ``PlainDecoder``.
decoders: Registry[Callable[..., _AttentionDecoder | PlainDecoder]] = Registry("decoder")


def select(x, index: Tensor):
    """Rows ``index`` of a tensor (batch first), an RNN state ``(L, B, H)`` or a tuple of them."""
    if x is None:
        return None
    if isinstance(x, tuple):
        return tuple(select(s, index) for s in x)
    return x.index_select(0, index)


def _select_state(h, index: Tensor):
    if isinstance(h, tuple):
        return tuple(s.index_select(1, index) for s in h)
    return h.index_select(1, index)


def _top(hidden) -> Tensor:
    """The last layer's hidden state ``(B, 1, H)`` (for LSTM, of ``h``)."""
    h = hidden[0] if isinstance(hidden, tuple) else hidden
    return h[-1].unsqueeze(1)


@dataclass
class Memory:
    """The encoded source: keys ``(B, S, dk)``, their projection for the score, valid lengths
    ``(B,)`` and the values ``(B, S, dv)`` the context pools (``None``: the keys themselves)."""

    keys: Tensor
    projected: Tensor | None
    valid_lens: Tensor
    values: Tensor | None = None

    def select(self, index: Tensor) -> Memory:
        return Memory(
            select(self.keys, index),
            select(self.projected, index),
            select(self.valid_lens, index),
            select(self.values, index),
        )


@dataclass
class DecoderState:
    """RNN state ``(L, B, H)`` or ``(h, c)``; Luong's fed-back ``h̃_{t-1}`` ``(B, H)``; step."""

    hidden: Tensor | tuple[Tensor, Tensor]
    feed: Tensor | None
    t: int

    def select(self, index: Tensor) -> DecoderState:
        return DecoderState(_select_state(self.hidden, index), select(self.feed, index), self.t)


def output_size(embed_size: int, num_hiddens: int, tie_embeddings: bool) -> int:
    """Width of the features the vocabulary projection reads: ``embed_size`` when it is tied to
    the target embedding, ``num_hiddens`` otherwise."""
    return embed_size if tie_embeddings else num_hiddens


def key_value_transform(num_hiddens: int, size: int) -> nn.Sequential:
    """``f(h) = tanh(W h + b)``, ``(..., num_hiddens) → (..., size)``: a key or value transform of
    key-value attention (Daniluk et al. 2017, eq. 5-6, without the split of ``h``)."""
    return nn.Sequential(nn.Linear(num_hiddens, size), nn.Tanh())


class _AttentionDecoder(nn.Module):
    """Shared parts: embedding, attention, the output layer and memory construction.

    ``key_value``: ``None`` (keys = values = ``h_j``) or ``(dk, dv)``, the sizes of the learned
    key and value transforms ``f_k``, ``f_v`` (:func:`key_value_transform`).
    """

    uses_feed = False

    def __init__(
        self,
        vocab_size: int,
        embed_size: int,
        num_hiddens: int,
        num_layers: int,
        cell: str,
        dropout: float,
        attention: Attention,
        rnn_input: int,
        tie_embeddings: bool = False,
        key_value: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.f_k: nn.Sequential | None = None
        self.f_v: nn.Sequential | None = None
        if key_value is not None:
            self.f_k = key_value_transform(num_hiddens, key_value[0])  # k_j = f_k(h_j)
            self.f_v = key_value_transform(num_hiddens, key_value[1])  # v_j = f_v(h_j)
        out_dim = output_size(embed_size, num_hiddens, tie_embeddings)
        self.embedding = nn.Embedding(vocab_size, embed_size, padding_idx=PAD)
        self.dropout = Dropout(dropout)
        self.attention = attention
        self.attention.site = ("cross", 0)  # the attnrun.core.heads hook point (one map, no heads)
        self.rnn = make_rnn(cell, rnn_input, num_hiddens, num_layers, dropout)
        self.out = nn.Linear(out_dim, vocab_size)
        if tie_embeddings:
            # Press & Wolf 2017: the output layer reuses the target embedding (out_dim must be
            # embed_size). The vocabulary projection is the largest product of a step; tying
            # makes it embed_size wide and halves the target-side parameters.
            self.out.weight = self.embedding.weight

    def memory(self, enc_outputs: Tensor, src_lens: Tensor) -> Memory:
        """Keys, values and the score's key projection ``W_k k_j``, once per source (not once per
        decoder step); ``enc_outputs`` ``(B, S, H)``."""
        if self.f_k is None:
            return Memory(enc_outputs, self.attention.project_keys(enc_outputs), src_lens)
        assert self.f_v is not None  # set together with f_k
        keys, values = self.f_k(enc_outputs), self.f_v(enc_outputs)  # (B, S, dk), (B, S, dv)
        return Memory(keys, self.attention.project_keys(keys), src_lens, values)

    def init_state(self, memory: Memory, enc_state) -> DecoderState:
        feed = None
        if self.uses_feed:
            feed = memory.keys.new_zeros(memory.keys.shape[0], self.out.in_features)
        return DecoderState(enc_state, feed, 0)

    def _attend(self, queries: Tensor, memory: Memory, positions, need_weights: bool):
        return self.attention(
            queries,
            memory.keys,
            memory.keys if memory.values is None else memory.values,
            memory.valid_lens,
            need_weights=need_weights,
            positions=positions,
            projected_keys=memory.projected,
        )


def _gru_cell(gi: Tensor, h: Tensor, w_hh_t: Tensor, b_hh: Tensor) -> Tensor:
    """One GRU step from the input's gate projection ``gi = W_ih x + b_ih`` ``(B, 3H)``, with
    ``w_hh_t = W_hhᵀ`` ``(H, 3H)``:
    ``r, z = σ(gi_rz + W_hr,hz h + b)``, ``n = tanh(gi_n + r ⊙ (W_hn h + b_hn))``,
    ``h' = n + z ⊙ (h − n)`` (Cho et al. 2014, in PyTorch's gate order and arithmetic)."""
    gh = torch.addmm(b_hh, h, w_hh_t)  # (B, 3H)
    hidden = h.shape[-1]
    # split, not slices: its backward is one cat, where each slice's is a zero-filled (B, 3H).
    gi_rz, gi_n = gi.split([2 * hidden, hidden], 1)
    gh_rz, gh_n = gh.split([2 * hidden, hidden], 1)
    r, z = torch.sigmoid(gi_rz + gh_rz).split(hidden, 1)  # r and z in one pass
    n = torch.tanh(gi_n + r * gh_n)
    return n + z * (h - n)


@decoders.register("bahdanau")
class BahdanauDecoder(_AttentionDecoder):
    """Bahdanau et al. 2015 (sec. 3.1, appendix A.2).

    At step ``t``: ``c_t = Σ_j α_tj v_j`` with ``α_t = attend(s_{t-1}, k)`` (eq. 5-6, the score on
    the *previous* state; ``k_j = v_j = h_j`` unless ``key_value``, see the module docstring);
    ``s_t = RNN([E y_{t-1}; c_t], s_{t-1})`` (eq. 4); the output layer sees
    ``t_t = tanh(W_o [s_t; c_t; E y_{t-1}])`` (the paper's deep output, without maxout), all steps
    projected to the vocabulary in one matrix product after the loop. ``c_t`` is ``dv`` wide
    (``num_hiddens`` without ``key_value``): the RNN input and ``W_o`` take that width.
    """

    def __init__(
        self,
        vocab_size,
        embed_size,
        num_hiddens,
        num_layers,
        cell="gru",
        dropout=0.0,
        attention: Attention | None = None,
        input_feeding: bool = False,
        tie_embeddings: bool = False,
        key_value: tuple[int, int] | None = None,
    ) -> None:
        assert attention is not None  # build_rnn gives every decoder one; None is PlainDecoder's
        value_size = num_hiddens if key_value is None else key_value[1]  # dv: c_t's width
        super().__init__(
            vocab_size,
            embed_size,
            num_hiddens,
            num_layers,
            cell,
            dropout,
            attention,
            embed_size + value_size,
            tie_embeddings,
            key_value,
        )
        self.pre_output = nn.Linear(num_hiddens + value_size + embed_size, self.out.in_features)

    def _features(self, s: Tensor, c: Tensor, e: Tensor) -> Tensor:
        """Deep-output features ``tanh(W_o [s; c; e])`` (before the vocabulary projection)."""
        return torch.tanh(self.pre_output(torch.cat([s, c, e], -1)))

    def forward(
        self,
        tgt_in: Tensor,
        memory: Memory,
        state: DecoderState,
        need_weights: bool = False,
        project: bool = True,
    ):
        emb = self.dropout(self.embedding(tgt_in))  # (B, T, E)
        fast = isinstance(self.rnn, nn.GRU) and self.rnn.bias and not self.rnn.bidirectional
        recur = self._recur_gru if fast else self._recur
        s, c, weights = recur(emb, memory, state, need_weights)  # (B, T, H) each
        feats = self.dropout(self._features(s, c, emb))
        w = torch.stack(weights, 1) if need_weights and weights[0] is not None else None
        return (self.out(feats) if project else feats), w  # (B, T, V) or (B, T, H)

    def _recur(self, emb: Tensor, memory: Memory, state: DecoderState, need_weights: bool):
        """Eq. 4-6 step by step with the RNN module: states ``s_t`` and contexts ``c_t``
        ``(B, T, H)`` and ``(B, T, dv)``, and the per-step weights ``[(B, S) or None] * T``. The
        reference for :meth:`_recur_gru`, and the path for LSTM cells."""
        hidden, query = state.hidden, _top(state.hidden)  # query s_{t-1} (B, 1, H)
        outs, ctxs, weights = [], [], []
        # unbind, not emb[:, t]: one backward node for all steps instead of one (B, T, E)
        # zero-filled gradient per step.
        for t, e in enumerate(emb.unbind(1)):  # e (B, E)
            c, w = self._attend(query, memory, state.t + t, need_weights)  # (B, 1, H)
            query, hidden = self.rnn(torch.cat([e.unsqueeze(1), c], -1), hidden)  # (B, 1, H)
            outs.append(query)
            ctxs.append(c)
            weights.append(None if w is None else w.squeeze(1))
        return torch.cat(outs, 1), torch.cat(ctxs, 1), weights

    def _recur_gru(self, emb: Tensor, memory: Memory, state: DecoderState, need_weights: bool):
        """:meth:`_recur` for a GRU, on the module's own weights, in fewer and larger products.

        The first layer's input projection ``W_ih [e_t; c_t] + b_ih`` is split as
        ``(W_e e_t + b_ih) + W_c c_t``: the embedding part does not depend on the recurrence,
        so it is one ``(B·T, E) × (E, 3H)`` product for all steps before the loop. Each layer's
        cell is PyTorch's GRU (gates ``r, z, n``; ``h' = n + z ⊙ (h − n)``, as ATen computes
        it), with the module's dropout between layers in training.
        """
        rnn, e_size, hidden = self.rnn, emb.shape[-1], state.hidden
        assert isinstance(rnn, nn.GRU) and isinstance(hidden, Tensor)  # as forward checks
        w_ih0, _, b_ih0, _ = rnn.all_weights[0]  # w_ih0 (3H, E + dv): columns for [e; c]
        gates_e = F.linear(emb, w_ih0[:, :e_size], b_ih0)  # (B, T, 3H)
        w_c = w_ih0[:, e_size:].t()  # (dv, 3H)
        # Transposed once, not per step: each step's weight gradient then adds into one view's
        # buffer, instead of being transposed and copied into the parameter's gradient T times.
        layers = [
            (getattr(rnn, f"weight_ih_l{i}").t(), getattr(rnn, f"weight_hh_l{i}").t())
            + (getattr(rnn, f"bias_ih_l{i}"), getattr(rnn, f"bias_hh_l{i}"))
            for i in range(rnn.num_layers)
        ]
        drop = rnn.dropout if self.training else 0.0
        hs = list(hidden.unbind(0))  # per layer (B, H)
        outs, ctxs, weights = [], [], []
        for t, gates_t in enumerate(gates_e.unbind(1)):  # (B, 3H)
            c, w = self._attend(hs[-1].unsqueeze(1), memory, state.t + t, need_weights)
            c = c.squeeze(1)  # (B, dv)
            for i, (w_ih, w_hh, b_ih, b_hh) in enumerate(layers):
                if i == 0:
                    gi = torch.addmm(gates_t, c, w_c)  # (B, 3H)
                else:
                    x = dropout(hs[i - 1], drop) if drop else hs[i - 1]
                    gi = torch.addmm(b_ih, x, w_ih)
                hs[i] = _gru_cell(gi, hs[i], w_hh, b_hh)
            outs.append(hs[-1])
            ctxs.append(c)
            weights.append(None if w is None else w.squeeze(1))
        return torch.stack(outs, 1), torch.stack(ctxs, 1), weights

    def step(self, y_prev: Tensor, memory: Memory, state: DecoderState):
        e = self.embedding(y_prev).unsqueeze(1)  # (B, 1, E)
        c, w = self._attend(_top(state.hidden), memory, state.t, True)
        s, hidden = self.rnn(torch.cat([e, c], -1), state.hidden)
        logits = self.out(self._features(s, c, e)).squeeze(1)  # (B, V)
        return logits, DecoderState(hidden, None, state.t + 1), w.squeeze(1)


@decoders.register("luong")
class LuongDecoder(_AttentionDecoder):
    """Luong et al. 2015 (sec. 3): attention on the *current* state.

    ``h_t = RNN(x_t, h_{t-1})``; ``c_t = attend(h_t, h̄)`` (``Σ_s α_ts v_s`` with the score on the
    keys; ``k_s = v_s = h̄_s`` unless ``key_value``); ``h̃_t = tanh(W_c [c_t; h_t])`` (eq. 5, ``W_c``
    takes the ``dv + H`` wide input);
    ``p(y_t) = softmax(W_s h̃_t)`` (eq. 6). With input feeding (sec. 3.3) ``x_t = [E y_{t-1};
    h̃_{t-1}]`` and the RNN runs step by step; without it ``x_t = E y_{t-1}`` and, in training, the
    RNN runs over the whole target in one call and attention over all steps in one batched product.
    """

    def __init__(
        self,
        vocab_size,
        embed_size,
        num_hiddens,
        num_layers,
        cell="gru",
        dropout=0.0,
        attention: Attention | None = None,
        input_feeding: bool = False,
        tie_embeddings: bool = False,
        key_value: tuple[int, int] | None = None,
    ) -> None:
        assert attention is not None  # build_rnn gives every decoder one; None is PlainDecoder's
        feed = output_size(embed_size, num_hiddens, tie_embeddings) if input_feeding else 0  # h̃
        value_size = num_hiddens if key_value is None else key_value[1]  # dv: c_t's width
        super().__init__(
            vocab_size,
            embed_size,
            num_hiddens,
            num_layers,
            cell,
            dropout,
            attention,
            embed_size + feed,
            tie_embeddings,
            key_value,
        )
        self.uses_feed = input_feeding
        self.combine = nn.Linear(value_size + num_hiddens, self.out.in_features, bias=False)  # W_c

    def _attentional(self, h: Tensor, memory: Memory, positions, need_weights: bool):
        c, w = self._attend(h, memory, positions, need_weights)
        return torch.tanh(self.combine(torch.cat([c, h], -1))), w  # h̃ (B, T, H)

    def forward(
        self,
        tgt_in: Tensor,
        memory: Memory,
        state: DecoderState,
        need_weights: bool = False,
        project: bool = True,
    ):
        emb = self.dropout(self.embedding(tgt_in))  # (B, T, E)
        if not self.uses_feed:
            h, _ = self.rnn(emb, state.hidden)  # (B, T, H): one call for all steps
            steps = torch.arange(state.t, state.t + tgt_in.shape[1], device=tgt_in.device)
            h_tilde, w = self._attentional(h, memory, steps, need_weights)
            feats = self.dropout(h_tilde)
            return (self.out(feats) if project else feats), w
        hidden, feed = state.hidden, state.feed
        assert feed is not None  # h̃_0, from init_state with input feeding
        tildes, weights = [], []
        for t in range(tgt_in.shape[1]):
            x = torch.cat([emb[:, t : t + 1], feed.unsqueeze(1)], -1)
            h, hidden = self.rnn(x, hidden)
            h_tilde, w = self._attentional(h, memory, state.t + t, need_weights)
            feed = h_tilde.squeeze(1)
            tildes.append(h_tilde)
            weights.append(w)
        w = torch.cat(weights, 1) if need_weights and weights[0] is not None else None
        feats = self.dropout(torch.cat(tildes, 1))
        return (self.out(feats) if project else feats), w

    def step(self, y_prev: Tensor, memory: Memory, state: DecoderState):
        x = self.embedding(y_prev).unsqueeze(1)  # (B, 1, E)
        if self.uses_feed:
            assert state.feed is not None  # h̃_{t-1}, carried with input feeding
            x = torch.cat([x, state.feed.unsqueeze(1)], -1)
        h, hidden = self.rnn(x, state.hidden)
        h_tilde, w = self._attentional(h, memory, state.t, True)
        feed = h_tilde.squeeze(1) if self.uses_feed else None
        return self.out(h_tilde).squeeze(1), DecoderState(hidden, feed, state.t + 1), w.squeeze(1)
