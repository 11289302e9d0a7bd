"""PronounResolver: shapes, masking, the pointer is the gated row of "it", and it learns."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attnrun.device import cpu_threads
from attnrun.errors import ConfigError
from attnrun.selfattn.data import Vocab, encode_batch, make_splits
from attnrun.selfattn.model import PronounResolver
from attnrun.selfattn.train import evaluate, read_sentence, train

CPU = torch.device("cpu")


def _batch(seed: int = 0, n: int = 6):
    splits = make_splits(n, 2, torch.Generator().manual_seed(seed))
    vocab = Vocab.for_lexicon(splits.lexicon, splits.train + splits.test)
    return splits, vocab, encode_batch(splits.train, vocab)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), layers=st.integers(1, 2), heads=st.sampled_from([1, 2, 4]),
       positional=st.sampled_from(["sinusoidal", "learned"]))  # fmt: skip
def test_shapes_rows_sum_to_one_and_padding_gets_nothing(seed, layers, heads, positional):
    torch.manual_seed(seed)
    _, vocab, b = _batch(seed)
    model = PronounResolver(len(vocab), 16, heads, layers, 32, positional).eval()
    out = model(b.tokens, b.valid_lens, b.it_index)
    B, T = b.tokens.shape
    assert out.attention.shape == (B, layers + 1, heads, T, T)
    assert out.log_probs.shape == (B, T)
    pad = torch.arange(T) >= b.valid_lens.unsqueeze(1)  # (B, T)
    for i in range(B):
        n = int(b.valid_lens[i])
        rows = out.attention[i, :, :, :n, :]  # real queries
        torch.testing.assert_close(rows.sum(-1), torch.ones_like(rows.sum(-1)))
        assert (out.attention[i, :, :, :, n:] == 0).all()
    assert torch.isneginf(out.log_probs[pad]).all()
    torch.testing.assert_close(out.log_probs.exp().sum(1), torch.ones(B))


def test_pointer_is_the_gate_weighted_attention_row_of_it():
    torch.manual_seed(0)
    _, vocab, b = _batch()
    model = PronounResolver(len(vocab), 16, 4, 2).eval()
    with torch.no_grad():
        model.gate_logits.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0]))
    out = model(b.tokens, b.valid_lens, b.it_index)
    gate = torch.softmax(model.gate_logits.detach(), 0)
    for i in range(len(b.tokens)):
        pointer = out.attention[i, -1, :, int(b.it_index[i])]  # (heads, T)
        expected = (gate[:, None] * pointer).sum(0)
        n = int(b.valid_lens[i])
        torch.testing.assert_close(out.log_probs[i, :n].exp(), expected[:n])


def test_heads_must_divide_hiddens_and_unknown_names_list_the_valid_ones():
    with pytest.raises(ConfigError, match="num_heads=3 must divide num_hiddens=16"):
        PronounResolver(10, 16, 3)
    with pytest.raises(ConfigError, match="unknown positional encoding 'rope'; valid: sinusoidal"):
        PronounResolver(10, positional="rope")


def _tiny(seed: int, epochs: int = 8, threads: int = 1):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    splits = make_splits(600, 200, g)
    vocab = Vocab.for_lexicon(splits.lexicon, splits.train + splits.test)
    model = PronounResolver(len(vocab), 32, 4, 2, 64)
    with cpu_threads(threads):  # the numbers differ a little between thread counts
        history = train(model, splits.train, vocab, epochs=epochs, batch_size=32, lr=0.005,
                        weight_decay=0.0, generator=g, device=CPU)  # fmt: skip
    return model, splits, vocab, history


def test_learns_unseen_combinations_on_a_tiny_budget():
    """600 sentences, 8 epochs: the pointer resolves "it" in (noun, adjective) pairs it never saw.

    Thresholds sit below the worst of seeds 0-4 × threads 1, 2 (measured 2026-12-01 on the 2-core
    development machine): accuracy 0.875 (seed 0, 1 thread; 0.915 with 2; others >= 0.975),
    best it_attention 0.884, last/first epoch loss 0.074. Chance is at most 0.5 (two nouns or
    more). Guards against a model that does not learn (e.g. a pointer reading the wrong row)."""
    model, splits, vocab, history = _tiny(0)
    assert history[-1] < history[0] / 5
    held = evaluate(model, splits.test, vocab, CPU)
    assert held.accuracy >= 0.75
    assert float(held.it_attention.max()) >= 0.6
    ex = splits.test[0]
    reading = read_sentence(model, vocab, ex.tokens, CPU)
    assert reading.prediction == held.predictions[0]
    assert reading.attention.shape == (3, 4, len(ex.tokens), len(ex.tokens))


def test_training_is_deterministic_given_the_seed():
    a, *_ = _tiny(3, epochs=2)
    b, *_ = _tiny(3, epochs=2)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name
