"""Model shapes, masks, decoding consistency, local windows, beam search."""

from __future__ import annotations

import pytest
import torch

from attnrun.experiments.translate import TranslateConfig
from attnrun.translate.models import build_model
from attnrun.translate.search import beam_search, greedy
from attnrun.translate.tokenize import EOS, PAD

V_SRC, V_TGT = 23, 19


def _cfg(**kw) -> TranslateConfig:
    model = {"embed_size": 8, "num_hiddens": 12, "num_layers": 2, "dropout": 0.0}
    model.update(kw.pop("model", {}))
    d = {"model": model, **kw}
    from attnrun.experiments import experiments

    return experiments.get("translate").make_config(d)


def _model(**kw):
    torch.manual_seed(0)
    m = build_model(_cfg(**kw), V_SRC, V_TGT)
    return m.eval()


def _batch():
    g = torch.Generator().manual_seed(1)
    src = torch.randint(4, V_SRC, (3, 7), generator=g)
    lens = torch.tensor([7, 4, 2])
    for i, n in enumerate(lens):
        src[i, n - 1] = EOS
        src[i, n:] = PAD
    tgt = torch.randint(4, V_TGT, (3, 5), generator=g)
    return src, lens, tgt


VARIANTS = [
    {"score": "additive"},
    {"score": "dot"},
    {"score": "general", "model": {"input_feeding": True}},
    {"score": "concat", "decoder": "luong", "model": {"cell": "lstm"}},
    {"score": "general", "attention": {"kind": "local_m", "window": 1}},
    {"score": "general", "attention": {"kind": "local_p", "window": 2}},
    {"score": "additive", "model": {"bidirectional": False, "cell": "lstm"}},
    {"score": "scaled_dot", "attention": {"kind": "global", "hard": True}},
]
TIED = [
    {"score": "additive", "model": {"tie_embeddings": True}},
    {"score": "general", "model": {"input_feeding": True, "tie_embeddings": True}},
]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: str(v))
def test_shapes_and_padding_invariance(variant):
    m = _model(**variant)
    src, lens, tgt = _batch()
    logits, w = m(src, lens, tgt, need_weights=True)
    assert logits.shape == (3, 5, V_TGT)
    assert w.shape == (3, 5, 7)
    # no weight on padded source positions
    for i, n in enumerate(lens):
        assert torch.all(w[i, :, n:] == 0)
    # extra padding changes nothing
    wide = torch.cat([src, torch.full((3, 4), PAD)], 1)
    logits2, _ = m(wide, lens, tgt)
    torch.testing.assert_close(logits, logits2, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", VARIANTS[:6] + TIED, ids=lambda v: str(v))
def test_teacher_forcing_equals_step_by_step(variant):
    """forward over the whole target (one RNN call for Luong without input feeding) equals the
    decoder's step function applied token by token."""
    m = _model(**variant)
    src, lens, tgt = _batch()
    logits, w = m(src, lens, tgt, need_weights=True)
    memory, state = m.encode(src, lens)
    for t in range(tgt.shape[1]):
        step_logits, state, sw = m.decoder.step(tgt[:, t], memory, state)
        torch.testing.assert_close(step_logits, logits[:, t], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(sw, w[:, t], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", VARIANTS[:4], ids=lambda v: str(v))
def test_beam_one_equals_greedy(variant):
    m = _model(**variant)
    src, lens, _ = _batch()
    g = greedy(m, src, lens, max_len=9)
    b = beam_search(m, src, lens, max_len=9, beam=1)
    for gh, bh in zip(g, b):
        assert gh.ids == bh[0].ids
        torch.testing.assert_close(gh.weights, bh[0].weights)


@pytest.mark.parametrize("variant", TIED, ids=lambda v: str(v))
def test_tied_output_layer_is_the_target_embedding(variant):
    m = _model(**variant)
    dec = m.decoder
    assert dec.out.weight is dec.embedding.weight
    assert dec.out.in_features == 8  # embed_size, not num_hiddens (12)
    untied = _model(**{**variant, "model": {**variant["model"], "tie_embeddings": False}})
    n = sum(p.numel() for p in m.parameters())
    assert sum(p.numel() for p in untied.parameters()) - n >= V_TGT * 8
    src, lens, tgt = _batch()
    logits, _ = m(src, lens, tgt)
    logits.sum().backward()
    assert dec.embedding.weight.grad is not None and dec.embedding.weight.grad.abs().sum() > 0


def test_beam_nbest_sorted_and_not_worse_than_greedy():
    m = _model(score="dot")
    src, lens, _ = _batch()
    g = greedy(m, src, lens, max_len=9)
    b = beam_search(m, src, lens, max_len=9, beam=4, n_best=3)
    for gh, hs in zip(g, b):
        assert 1 <= len(hs) <= 3
        assert [h.score for h in hs] == sorted((h.score for h in hs), reverse=True)
        if EOS in gh.ids or len(gh.ids) < 9:
            assert hs[0].score >= gh.score - 1e-4


@pytest.mark.parametrize("kind", ["local_m", "local_p"])
def test_local_attention_is_zero_outside_window(kind):
    window = 1
    m = _model(score="general", attention={"kind": kind, "window": window})
    src, lens, tgt = _batch()
    _, w = m(src, lens, tgt, need_weights=True)  # (B, T, S)
    if kind == "local_m":
        for t in range(w.shape[1]):
            s = torch.arange(w.shape[2])
            outside = (s - t).abs() > window
            assert torch.all(w[:, t, outside] == 0)
    else:
        nonzero = (w > 0).sum(-1)
        assert int(nonzero.max()) <= 2 * window + 1


def test_bidirectional_needs_even_hidden():
    from attnrun.errors import ConfigError

    with pytest.raises(ConfigError, match="num_hiddens=13"):
        _cfg(model={"num_hiddens": 13, "bidirectional": True})


@pytest.mark.parametrize("layers", [1, 2])
def test_bahdanau_gru_recurrence_matches_the_rnn_module_with_gradients(layers):
    """The Bahdanau decoder's GRU fast path (the embedding's share of the input projection for
    all steps in one product, PyTorch's GRU cell on the module's weights) equals the plain step
    loop through ``nn.GRU`` — logits and every parameter's gradient.

    Guards against a wrong split of ``W_ih [e; c]`` (columns swapped, bias dropped or counted
    twice), a gate-order or update-formula slip in ``_gru_cell``, and weight gradients lost
    through the transposed views.
    """
    m = _model(score="additive", model={"bidirectional": False, "num_layers": layers}).train()
    src, lens, tgt = _batch()
    dec = m.decoder
    assert type(dec).__name__ == "BahdanauDecoder" and isinstance(dec.rnn, torch.nn.GRU)

    def run(recur):
        m.zero_grad()
        memory, state = m.encode(src, lens)
        s, c, w = recur(dec.dropout(dec.embedding(tgt)), memory, state, True)
        logits = dec.out(dec._features(s, c, dec.embedding(tgt)))
        (logits * torch.linspace(-1, 1, logits.numel()).view_as(logits)).sum().backward()
        grads = {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}
        return logits, torch.stack(w, 1), grads

    fast, plain = run(dec._recur_gru), run(dec._recur)
    torch.testing.assert_close(fast[0], plain[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fast[1], plain[1], rtol=1e-5, atol=1e-6)
    assert fast[2].keys() == plain[2].keys() and "decoder.rnn.weight_ih_l0" in fast[2]
    for name, g in plain[2].items():
        torch.testing.assert_close(fast[2][name], g, rtol=1e-4, atol=1e-6, msg=name)
