"""Transformer encoder and decoder blocks (Vaswani et al. 2017, section 3.1; d2l 11.7).

Both blocks are residual sublayers around :class:`~attnrun.core.MultiHeadAttention` and a
position-wise feed-forward net (section 3.3), each followed by dropout and a LayerNorm:

- post-norm (``norm_first=False``, the paper and d2l): ``x = LN(x + dropout(sublayer(x)))``;
- pre-norm (``norm_first=True``, Wang et al. 2019; Xiong et al. 2020): ``x = x +
  dropout(sublayer(LN(x)))`` — a stack of pre-norm blocks needs one final LayerNorm after it,
  which the model that stacks them owns.

The decoder block can run one position at a time (:meth:`DecoderBlock.forward` with a ``cache``):
the projected keys and values of the positions already decoded are kept per layer
(:class:`KeyValues`), so step ``t`` projects only the new token and attends over ``t`` cached keys
— ``O(t)`` work instead of re-running the prefix's ``O(t²)``. The cross-attention keys and values
are projected once per source (:meth:`DecoderBlock.memory`) and reused at every step.

Every attention goes through the shared core (:class:`~attnrun.core.Attention`, held by each
:class:`~attnrun.core.MultiHeadAttention` as ``.attention``); nothing here masks or normalises
scores itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from attnrun.core.dropout import Dropout
from attnrun.core.multihead import MultiHeadAttention

__all__ = [
    "DecoderBlock",
    "DecoderOutput",
    "EncoderBlock",
    "KeyValues",
    "attend_projected",
    "causal_mask",
    "position_wise_ffn",
    "project_key_values",
]


def position_wise_ffn(num_hiddens: int, ffn_hiddens: int) -> nn.Sequential:
    """``FFN(x) = max(0, x W_1 + b_1) W_2 + b_2`` (Vaswani et al. 2017, eq. 2), applied to each
    position alike: ``(..., d) -> (..., d)``. ``Sequential(Linear, ReLU, Linear)``: the parameter
    names ``0.*`` and ``2.*`` are those of saved selfattn runs."""
    return nn.Sequential(
        nn.Linear(num_hiddens, ffn_hiddens), nn.ReLU(), nn.Linear(ffn_hiddens, num_hiddens)
    )


def causal_mask(tq: int, tk: int, offset: int = 0, device=None) -> Tensor | None:
    """Keep-mask ``(Tq, Tk)``: query ``i`` (at position ``offset + i``) may attend key ``j`` iff
    ``j <= offset + i`` (Vaswani et al. 2017, 3.2.3). ``None`` when nothing is masked (one query at
    the end of the keys: an incremental step), which lets the core take an unmasked kernel."""
    if tq == 1 and offset == tk - 1:
        return None
    q_pos = torch.arange(offset, offset + tq, device=device).unsqueeze(1)  # (Tq, 1)
    return torch.arange(tk, device=device) <= q_pos  # (Tq, Tk)


@dataclass
class KeyValues:
    """Keys and values of one attention, projected and split into heads.

    ``keys``, ``values`` ``(B, heads, T, hd)``; ``projected``: the score's key transform
    (:meth:`~attnrun.core.Attention.project_keys`) of ``keys``, or ``None`` when it is the
    identity (``scaled_dot``). For self-attention ``T`` grows by one per decoded position
    (:meth:`append`); for cross-attention ``T`` is the source length and never changes.
    """

    keys: Tensor
    values: Tensor
    projected: Tensor | None = None

    @property
    def length(self) -> int:
        return self.keys.shape[2]

    def append(self, new: KeyValues) -> KeyValues:
        """This cache followed by ``new``'s positions (along ``T``)."""
        projected = None
        if self.projected is not None:
            assert new.projected is not None  # the same attention projects both or neither
            projected = torch.cat([self.projected, new.projected], 2)
        return KeyValues(
            torch.cat([self.keys, new.keys], 2), torch.cat([self.values, new.values], 2), projected
        )

    def select(self, index: Tensor) -> KeyValues:
        """Rows ``index`` of the batch (beam search reorders hypotheses with it)."""
        projected = None if self.projected is None else self.projected.index_select(0, index)
        return KeyValues(
            self.keys.index_select(0, index), self.values.index_select(0, index), projected
        )


def _split_heads(mha: MultiHeadAttention, x: Tensor) -> Tensor:
    b, t, _ = x.shape
    return x.view(b, t, mha.num_heads, mha.head_dim).transpose(1, 2)  # (B, heads, T, hd)


def project_key_values(mha: MultiHeadAttention, keys: Tensor, values: Tensor) -> KeyValues:
    """``mha``'s key and value projections ``W_k``, ``W_v`` of ``(B, T, d)`` inputs, split into
    heads, plus the score's key transform: the part of multi-head attention that can be cached."""
    k = _split_heads(mha, mha.W_k(keys))  # (B, heads, T, hd)
    v = _split_heads(mha, mha.W_v(values))  # (B, heads, T, hd)
    projected = mha.attention.project_keys(k)
    return KeyValues(k, v, None if projected is k else projected)


def attend_projected(
    mha: MultiHeadAttention,
    queries: Tensor,
    kv: KeyValues,
    valid_lens: Tensor | None,
    need_weights: bool,
    mask: Tensor | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Multi-head attention of ``queries (B, Tq, d)`` over already projected ``kv``:
    ``W_o · Concat_heads(Attn(Q W_q, K, V))`` — :class:`MultiHeadAttention`'s forward with its
    key/value projection done beforehand. Returns ``(out (B, Tq, d), weights (B, heads, Tq, Tk)
    or None)``."""
    q = _split_heads(mha, mha.W_q(queries))  # (B, heads, Tq, hd)
    context, weights = mha.attention(
        q, kv.keys, kv.values, valid_lens, need_weights, mask=mask, projected_keys=kv.projected
    )  # (B, heads, Tq, hd)
    return mha.merge_heads(context), weights  # (B, Tq, d)


class _Block(nn.Module):
    """Residual sublayer plumbing shared by both blocks."""

    norm_first: bool
    dropout: Dropout
    ffn: nn.Sequential

    def _sublayer(self, x: Tensor, norm: nn.LayerNorm, fn) -> tuple[Tensor, Tensor | None]:
        """Post-norm ``LN(x + dropout(f(x)))`` or pre-norm ``x + dropout(f(LN(x)))``; ``fn``
        returns ``(y, weights)``."""
        if self.norm_first:
            y, weights = fn(norm(x))
            return x + self.dropout(y), weights
        y, weights = fn(x)
        return norm(x + self.dropout(y)), weights

    def _ffn(self, x: Tensor) -> tuple[Tensor, None]:
        return self.ffn(x), None


class EncoderBlock(_Block):
    """Transformer encoder block (Vaswani et al. 2017, 3.1; d2l 11.7.2).

    Post-norm: ``Y = LN_1(X + dropout(MHA(X, X, X)))``, ``out = LN_2(Y + dropout(FFN(Y)))``;
    pre-norm: ``Y = X + dropout(MHA(LN_1(X)))``, ``out = Y + dropout(FFN(LN_2(Y)))``.

    ``forward(X (B, T, d), valid_lens (B,) or None, need_weights=True) ->
    (out (B, T, d), weights (B, heads, T, T) or None)``; keys at or past ``valid_lens`` get zero
    weight (the source padding). With ``need_weights=False`` the core may take a fused kernel and
    the weights are ``None``.

    Args:
        num_hiddens: model size ``d`` (divisible by ``num_heads``).
        num_heads: attention heads.
        ffn_hiddens: hidden size of the ReLU feed-forward net.
        dropout: on the attention weights and on each sublayer's output.
        attention_dropout: on the attention weights instead, when given (fairseq's
            ``--attention-dropout``; at 0 a training step draws no mask for the weights).
        score: the heads' score (a name in :data:`attnrun.core.score_functions`).
        score_options: options of the score (and of :class:`~attnrun.core.Attention`).
        norm_first: pre-norm instead of the paper's post-norm.
        bias: biases in the four attention projections (``torch.nn.MultiheadAttention`` has them;
            selfattn's saved runs do not).

    With the defaults the parameters (``attention``, ``norm1``, ``ffn``, ``norm2``) and the
    arithmetic are those of the selfattn experiment's original block, so its runs load unchanged.
    """

    def __init__(
        self,
        num_hiddens: int,
        num_heads: int,
        ffn_hiddens: int,
        dropout: float = 0.0,
        score: str = "scaled_dot",
        score_options: dict | None = None,
        *,
        norm_first: bool = False,
        bias: bool = False,
        attention_dropout: float | None = None,
    ) -> None:
        super().__init__()
        self.norm_first = norm_first
        p_attn = dropout if attention_dropout is None else attention_dropout
        self.attention = MultiHeadAttention(
            num_hiddens, num_heads, p_attn, score, bias, **(score_options or {})
        )
        self.norm1 = nn.LayerNorm(num_hiddens)
        self.ffn = position_wise_ffn(num_hiddens, ffn_hiddens)
        self.norm2 = nn.LayerNorm(num_hiddens)
        self.dropout = Dropout(dropout)

    def forward(
        self, X: Tensor, valid_lens: Tensor | None = None, need_weights: bool = True
    ) -> tuple[Tensor, Tensor | None]:
        Y, weights = self._sublayer(
            X, self.norm1, lambda x: self.attention(x, x, x, valid_lens, need_weights)
        )  # (B, T, d), (B, heads, T, T)
        out, _ = self._sublayer(Y, self.norm2, self._ffn)  # (B, T, d)
        return out, weights

    def extra_repr(self) -> str:
        return f"norm_first={self.norm_first}"


@dataclass
class DecoderOutput:
    """What a :class:`DecoderBlock` returns: ``out (B, Tq, d)``; ``cache``, the self-attention
    keys/values of every position so far ``(B, heads, t + Tq, hd)``; ``self_weights``
    ``(B, heads, Tq, t + Tq)`` and ``cross_weights`` ``(B, heads, Tq, S)`` (``None`` when not
    asked for)."""

    out: Tensor
    cache: KeyValues
    self_weights: Tensor | None
    cross_weights: Tensor | None


class DecoderBlock(_Block):
    """Transformer decoder block (Vaswani et al. 2017, 3.1; d2l 11.7.3).

    Three sublayers, each residual + dropout + LayerNorm (post- or pre-norm as in
    :class:`EncoderBlock`):

    1. causal (masked) multi-head self-attention: position ``i`` sees positions ``<= i``;
    2. cross-attention: queries from 1, keys and values the encoder output, source padding
       masked by ``src_lens``;
    3. the position-wise ReLU FFN.

    ``forward(X (B, Tq, d), memory, src_lens (B,), cache=None, need_weights=True, tgt_lens=None)
    -> DecoderOutput`` (``need_weights=False``: no weights, and the core may take a fused
    kernel). ``memory`` is the encoder output ``(B, S, d)`` or, better, its projection
    :meth:`memory` (computed once per source). ``cache`` holds the self-attention keys/values of
    the ``t`` positions decoded before ``X`` (``None``: ``X`` starts at position 0); the output's
    ``cache`` extends it by ``X``'s positions. Teacher forcing is one call with the whole target;
    greedy or beam search is one call per token with the cache of the previous call: both compute
    the same numbers. ``tgt_lens`` (``(B,)``, optional) also masks padded target keys.

    Args: as :class:`EncoderBlock`. Parameters: ``self_attention``, ``cross_attention``,
    ``norm1`` .. ``norm3``, ``ffn``.
    """

    def __init__(
        self,
        num_hiddens: int,
        num_heads: int,
        ffn_hiddens: int,
        dropout: float = 0.0,
        score: str = "scaled_dot",
        score_options: dict | None = None,
        *,
        norm_first: bool = False,
        bias: bool = False,
        attention_dropout: float | None = None,
    ) -> None:
        super().__init__()
        self.norm_first = norm_first
        options = score_options or {}
        p_attn = dropout if attention_dropout is None else attention_dropout
        self.self_attention = MultiHeadAttention(
            num_hiddens, num_heads, p_attn, score, bias, **options
        )
        self.norm1 = nn.LayerNorm(num_hiddens)
        self.cross_attention = MultiHeadAttention(
            num_hiddens, num_heads, p_attn, score, bias, **options
        )
        self.norm2 = nn.LayerNorm(num_hiddens)
        self.ffn = position_wise_ffn(num_hiddens, ffn_hiddens)
        self.norm3 = nn.LayerNorm(num_hiddens)
        self.dropout = Dropout(dropout)

    def memory(self, enc_outputs: Tensor) -> KeyValues:
        """The cross-attention keys/values ``(B, heads, S, hd)`` of the encoder output
        ``(B, S, d)``: projected once per source, reused at every decoder step."""
        return project_key_values(self.cross_attention, enc_outputs, enc_outputs)

    def forward(
        self,
        X: Tensor,
        memory: Tensor | KeyValues,
        src_lens: Tensor | None,
        cache: KeyValues | None = None,
        need_weights: bool = True,
        tgt_lens: Tensor | None = None,
    ) -> DecoderOutput:
        if not isinstance(memory, KeyValues):
            memory = self.memory(memory)
        new_cache: list[KeyValues] = []

        def self_attend(x: Tensor) -> tuple[Tensor, Tensor | None]:
            kv = project_key_values(self.self_attention, x, x)  # (B, heads, Tq, hd)
            kv = kv if cache is None else cache.append(kv)  # (B, heads, t + Tq, hd)
            new_cache.append(kv)
            offset = kv.length - x.shape[1]  # position of the first query
            mask = causal_mask(x.shape[1], kv.length, offset, x.device)
            return attend_projected(self.self_attention, x, kv, tgt_lens, need_weights, mask)

        def cross_attend(x: Tensor) -> tuple[Tensor, Tensor | None]:
            return attend_projected(self.cross_attention, x, memory, src_lens, need_weights)

        Y, self_w = self._sublayer(X, self.norm1, self_attend)  # (B, Tq, d)
        Z, cross_w = self._sublayer(Y, self.norm2, cross_attend)  # (B, Tq, d)
        out, _ = self._sublayer(Z, self.norm3, self._ffn)  # (B, Tq, d)
        return DecoderOutput(out, new_cache[0], self_w, cross_w)

    def extra_repr(self) -> str:
        return f"norm_first={self.norm_first}"
