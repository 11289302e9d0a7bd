"""A small self-attention encoder that resolves "it" by pointing at its antecedent.

``tokens → embedding · √d + positional encoding → num_layers × EncoderBlock → pointer``

- :class:`EncoderBlock` is the Transformer encoder block of Vaswani et al. 2017 (3.1, post-norm as
  in the paper and d2l 11.7): multi-head self-attention, add & norm, position-wise FFN, add & norm.
- The pointer is one more multi-head self-attention over the last block's outputs: the row of "it"
  (query = the last representation of "it", keys = every token's) is a distribution over positions
  in each head, and a learned softmax gate mixes the heads. That mixture is the prediction, trained
  with cross-entropy on the antecedent's position, so the attention weights themselves resolve "it"
  (a pointer network, Vinyals et al. 2015, built from self-attention).

Every attention is :class:`attnrun.core.MultiHeadAttention`; nothing here normalises scores itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from attnrun.core import MultiHeadAttention, positional_encodings
from attnrun.core.blocks import EncoderBlock  # the Transformer's encoder block, shared
from attnrun.core.heads import gate_heads

__all__ = [
    "POINTER", "EncoderBlock", "PronounResolver", "Resolution", "build_model",
    "positional_encodings",
]  # fmt: skip

#: The pointer's layer name: its attention is the prediction, trained on the antecedent's position.
POINTER = "pointer (supervised)"


@dataclass
class Resolution:
    """The model's output for a batch."""

    log_probs: Tensor  # (B, T): log P(antecedent = position j); padding gets -inf
    attention: Tensor  # (B, layers + 1, heads, T, T): every block's weights, then the pointer's
    gate: Tensor  # (heads,): the pointer's head mixture


class PronounResolver(nn.Module):
    """Encoder + self-attention pointer (see the module docstring).

    Args:
        vocab_size: number of token ids (0 = padding).
        num_hiddens: model size ``d`` (divisible by ``num_heads``).
        num_heads: heads in every attention, the pointer's included.
        num_layers: encoder blocks before the pointer (``>= 1``: the query of "it" must first
            gather the adjective before it can pick a noun).
        ffn_hiddens: hidden size of each block's feed-forward net.
        positional: a name in :data:`positional_encodings`.
        score: a name in :data:`attnrun.core.score_functions`.
        dropout: dropout in the blocks (0 keeps training deterministic and quick).
        max_len: longest sentence.
        score_options: options of the score (e.g. ``{"learn_beta": True}`` for ``cosine``).

    ``forward(tokens (B, T), valid_lens (B,), it_index (B,)) -> Resolution``.
    """

    def __init__(
        self,
        vocab_size: int,
        num_hiddens: int = 32,
        num_heads: int = 4,
        num_layers: int = 2,
        ffn_hiddens: int = 64,
        positional: str = "sinusoidal",
        score: str = "scaled_dot",
        dropout: float = 0.0,
        max_len: int = 64,
        score_options: dict | None = None,
    ) -> None:
        super().__init__()
        self.num_hiddens = num_hiddens
        self.embedding = nn.Embedding(vocab_size, num_hiddens, padding_idx=0)
        # With the default N(0, 1) init, embedding · √d would swamp the ±1 positional encoding and
        # "it" could not find the adjective by position: training then sits at chance for a long
        # plateau. N(0, 1/d) makes embedding · √d unit-scale, as the √d factor assumes.
        nn.init.normal_(self.embedding.weight, std=num_hiddens**-0.5)
        with torch.no_grad():
            self.embedding.weight[0].zero_()
        self.positional = positional_encodings.get(positional)(num_hiddens, dropout, max_len)
        blocks = [
            EncoderBlock(num_hiddens, num_heads, ffn_hiddens, dropout, score, score_options)
            for _ in range(num_layers)
        ]
        self.blocks = nn.ModuleList(blocks)
        self.pointer = MultiHeadAttention(
            num_hiddens, num_heads, 0.0, score, **(score_options or {})
        )
        self.gate_logits = nn.Parameter(torch.zeros(num_heads))
        for i, block in enumerate(blocks):  # attnrun.core.heads hook points, as attention.json
            block.attention.site = ("self", i)
        self.pointer.site = ("self", num_layers)

    @property
    def layer_names(self) -> list[str]:
        """Row names of every attention table and figure; the pointer's says it is trained on the
        answer, so its weights never pass for a learned head's."""
        return [f"layer {i + 1}" for i in range(len(self.blocks))] + [POINTER]

    def forward(self, tokens: Tensor, valid_lens: Tensor, it_index: Tensor) -> Resolution:
        b, t = tokens.shape
        X = self.positional(self.embedding(tokens) * math.sqrt(self.num_hiddens))  # (B, T, d)
        maps = []
        for block in self.blocks:
            X, w = block(X, valid_lens)
            maps.append(w)  # (B, heads, T, T)
        _, w = self.pointer(X, X, X, valid_lens)
        maps.append(w)
        attention = torch.stack(maps, dim=1)  # (B, layers + 1, heads, T, T)
        rows = w[
            torch.arange(b, device=tokens.device), :, it_index
        ]  # (B, heads, T): each head's row of "it"
        gate = torch.softmax(self.gate_logits, dim=0)  # (heads,)
        mix = self._gated(gate, b)  # (heads,), or (B, heads) under a head intervention
        probs = torch.einsum("h,bht->bt" if mix.ndim == 1 else "bh,bht->bt", mix, rows)  # (B, T)
        keep = torch.arange(t, device=tokens.device) < valid_lens.unsqueeze(1)  # (B, T)
        log_probs = probs.clamp_min(1e-12).log().masked_fill(~keep, float("-inf"))
        return Resolution(log_probs, attention, gate.detach())

    def _gated(self, gate: Tensor, b: int) -> Tensor:
        """The pointer's head mixture ``(heads,)``, or ``(B, heads)`` renormalised after the heads
        an intervention gates (:func:`attnrun.core.heads.gate_heads`; all removed: uniform)."""
        xi = gate_heads(self.pointer.site, gate.shape[0])
        if xi is None:
            return gate
        mixed = gate * xi.to(gate.device, gate.dtype).expand(b, gate.shape[0])  # (B, heads)
        total = mixed.sum(1, keepdim=True)
        uniform = torch.full_like(mixed, 1.0 / gate.shape[0])
        return torch.where(total > 0, mixed / total.clamp_min(1e-30), uniform)


def build_model(model_cfg, vocab_size: int, max_len: int) -> PronounResolver:
    """The :class:`PronounResolver` a run's ``model`` config section describes (any mapping with
    its fields: the typed ``ModelConfig`` in training, ``config.yaml``'s DictConfig in predict)."""
    return PronounResolver(
        vocab_size,
        num_hiddens=model_cfg.num_hiddens,
        num_heads=model_cfg.num_heads,
        num_layers=model_cfg.num_layers,
        ffn_hiddens=model_cfg.ffn_hiddens,
        positional=model_cfg.positional,
        score=model_cfg.score,
        dropout=model_cfg.dropout,
        max_len=max_len,
        score_options=dict(getattr(model_cfg, "score_options", None) or {}),
    )
