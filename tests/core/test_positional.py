"""Sinusoidal positional encoding and learned positional embeddings."""

import math

import pytest
import torch
from torch.testing import assert_close

from attnrun.core import (
    LearnedPositionalEmbedding,
    SinusoidalPositionalEncoding,
    positional_encoding_matrix,
)
from attnrun.errors import ConfigError


@pytest.mark.parametrize("d", [6, 7])
def test_matrix_formula(d):
    P = positional_encoding_matrix(20, d)
    assert P.shape == (20, d)
    for i in (0, 1, 13):
        for j in range(d):
            angle = i / 10000 ** ((j - j % 2) / d)
            expected = math.sin(angle) if j % 2 == 0 else math.cos(angle)
            assert P[i, j].item() == pytest.approx(expected, abs=1e-6)


def test_sinusoidal_module_adds_rows_with_offset():
    pe = SinusoidalPositionalEncoding(8, dropout=0.1, max_len=50).eval()
    x = torch.randn(2, 5, 8)
    P = positional_encoding_matrix(50, 8)
    assert_close(pe(x), x + P[:5])
    assert_close(pe(x[:, :1], offset=3), x[:, :1] + P[3:4])
    assert "P" not in pe.state_dict()  # recomputed, not saved


def test_dropout_in_training():
    pe = SinusoidalPositionalEncoding(8, dropout=0.5)
    out = pe(torch.ones(4, 10, 8))
    assert (out == 0).any()


def test_learned_embedding_trains():
    emb = LearnedPositionalEmbedding(6, max_len=10)
    x = torch.zeros(2, 4, 6)
    out = emb(x, offset=2)
    assert_close(out, emb.embedding.weight[2:6].expand(2, 4, 6))
    out.sum().backward()
    grad = emb.embedding.weight.grad
    assert (grad[2:6] != 0).all() and (grad[:2] == 0).all() and (grad[6:] == 0).all()


@pytest.mark.parametrize("cls", [SinusoidalPositionalEncoding, LearnedPositionalEmbedding])
def test_bad_inputs_raise(cls):
    module = cls(8, max_len=5)
    with pytest.raises(ConfigError, match=r"positions 0..5 exceed max_len=5"):
        module(torch.zeros(1, 6, 8))
    with pytest.raises(ValueError, match=r"\(B, T, 8\); got \(1, 3, 4\)"):
        module(torch.zeros(1, 3, 4))
    with pytest.raises(ConfigError):
        positional_encoding_matrix(0, 4)
