"""Positional information for attention, which alone ignores order (Vaswani et al. 2017, 3.5)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from attnrun.core.dropout import Dropout
from attnrun.errors import ConfigError
from attnrun.registry import Registry

__all__ = [
    "LearnedPositionalEmbedding",
    "SinusoidalPositionalEncoding",
    "positional_encoding_matrix",
    "positional_encodings",
]

#: name → class ``(num_hiddens, dropout, max_len)``: ``model.positional`` of selfattn and the
#: Transformer.
positional_encodings: Registry[type[nn.Module]] = Registry("positional encoding")


def positional_encoding_matrix(
    max_len: int, num_hiddens: int, base: float = 10000.0, dtype=torch.float32, device=None
) -> Tensor:
    """The sinusoidal matrix ``P (max_len, num_hiddens)`` of Vaswani et al. 2017, eq. in 3.5.

    ``P[i, 2j] = sin(i / base^(2j/d))`` and ``P[i, 2j+1] = cos(i / base^(2j/d))``; an odd
    ``num_hiddens`` ends with a sine column.
    """
    if max_len < 1 or num_hiddens < 1:
        raise ConfigError(f"max_len and num_hiddens must be >= 1; got {max_len}, {num_hiddens}")
    pos = torch.arange(max_len, dtype=torch.float64, device=device).unsqueeze(1)  # (L, 1)
    two_j = torch.arange(0, num_hiddens, 2, dtype=torch.float64, device=device)  # (ceil(d/2),)
    angles = pos * torch.exp(-math.log(base) * two_j / num_hiddens)  # (L, ceil(d/2))
    P = torch.empty(max_len, num_hiddens, dtype=torch.float64, device=device)
    P[:, 0::2] = torch.sin(angles)
    P[:, 1::2] = torch.cos(angles[:, : num_hiddens // 2])
    return P.to(dtype)


def _check_len(name: str, x: Tensor, offset: int, max_len: int, num_hiddens: int) -> None:
    if x.ndim != 3 or x.shape[-1] != num_hiddens:
        raise ConfigError(f"{name}: input must be (B, T, {num_hiddens}); got {tuple(x.shape)}")
    if offset < 0 or offset + x.shape[1] > max_len:
        raise ConfigError(
            f"{name}: positions {offset}..{offset + x.shape[1] - 1} exceed max_len={max_len}"
        )


@positional_encodings.register("sinusoidal")
class SinusoidalPositionalEncoding(nn.Module):
    """``dropout(X + P[offset : offset + T])``, fixed sinusoidal ``P`` (Vaswani et al. 2017).

    Args:
        num_hiddens: model size ``d``.
        dropout: dropout after the addition.
        max_len: the longest sequence (rows of ``P``).

    ``forward(X (B, T, d), offset=0) -> (B, T, d)``; ``offset`` is the first position (a decoder
    running one step at a time passes its step).
    """

    P: Tensor  # (max_len, d), a non-persistent buffer

    def __init__(self, num_hiddens: int, dropout: float = 0.0, max_len: int = 1000) -> None:
        super().__init__()
        self.num_hiddens, self.max_len = num_hiddens, max_len
        self.dropout = Dropout(dropout)
        self.register_buffer(
            "P", positional_encoding_matrix(max_len, num_hiddens), persistent=False
        )

    def forward(self, X: Tensor, offset: int = 0) -> Tensor:
        _check_len("sinusoidal positional encoding", X, offset, self.max_len, self.num_hiddens)
        return self.dropout(X + self.P[offset : offset + X.shape[1]].to(X.dtype))


@positional_encodings.register("learned")
class LearnedPositionalEmbedding(nn.Module):
    """``dropout(X + E[offset : offset + T])`` with a learned table ``E (max_len, d)``
    (Gehring et al. 2017; BERT, Devlin et al. 2019).

    ``forward(X (B, T, d), offset=0) -> (B, T, d)``.
    """

    def __init__(self, num_hiddens: int, dropout: float = 0.0, max_len: int = 1000) -> None:
        super().__init__()
        self.num_hiddens, self.max_len = num_hiddens, max_len
        self.dropout = Dropout(dropout)
        self.embedding = nn.Embedding(max_len, num_hiddens)
        nn.init.normal_(self.embedding.weight, std=0.02)

    def forward(self, X: Tensor, offset: int = 0) -> Tensor:
        _check_len("learned positional embedding", X, offset, self.max_len, self.num_hiddens)
        return self.dropout(X + self.embedding.weight[offset : offset + X.shape[1]])
