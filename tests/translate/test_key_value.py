"""Key-value attention in the RNN decoders (``attention.key_value``; Daniluk et al. 2017).

Keys ``k_j = tanh(W_k h_j + b_k)`` feed the score and values ``v_j = tanh(W_v h_j + b_v)`` the
context; with identity transforms the model is the ``key_value=false`` one.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attnrun.errors import ConfigError
from attnrun.experiments import experiments
from attnrun.translate.models import build_model
from attnrun.translate.search import beam_search, greedy
from attnrun.translate.tokenize import EOS, PAD

V_SRC, V_TGT, H = 23, 19, 12


def _cfg(key_value: bool, **kw):
    model = {"embed_size": 8, "num_hiddens": H, "num_layers": 2, "dropout": 0.0}
    model.update(kw.pop("model", {}))
    attention = {"key_value": key_value, **kw.pop("attention", {})}
    return experiments.get("translate").make_config({"model": model, "attention": attention, **kw})


def _model(key_value: bool, **kw):
    torch.manual_seed(0)
    return build_model(_cfg(key_value, **kw), V_SRC, V_TGT).eval()


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
    {"score": "additive"},  # bahdanau, the fused GRU recurrence
    {"score": "additive", "model": {"cell": "lstm"}},  # bahdanau, the step-by-step RNN module
    {"score": "general"},  # luong, one RNN call
    {"score": "dot", "model": {"input_feeding": True}},
    {"score": "general", "attention": {"kind": "local_m", "window": 1}},
    {"score": "general", "attention": {"kind": "local_p", "window": 2}},
    {"score": "scaled_dot", "attention": {"hard": True}},
]
IDS = [str(v) for v in VARIANTS]


def _as_identity(model) -> None:
    """f_k = f_v = identity: ``W = I``, ``b = 0`` and the tanh replaced by ``nn.Identity``."""
    dec = model.decoder
    for f in (dec.f_k, dec.f_v):
        with torch.no_grad():
            f[0].weight.copy_(torch.eye(H))
            f[0].bias.zero_()
        f[1] = nn.Identity()


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
def test_identity_transforms_give_the_plain_model_exactly(variant):
    """With ``f_k = f_v = id`` and the other weights of a ``key_value=false`` model, logits and
    weights (teacher forcing and step by step) are exactly the plain model's.

    Planted bug it catches: ``memory()`` passing its fields out of order, ``Memory(keys, values,
    src_lens, projected)`` (the score's projection ``W k`` pooled as the values)."""
    plain = _model(False, **variant)
    kv = _model(True, **variant)
    missing, unexpected = kv.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(k.startswith(("decoder.f_k", "decoder.f_v")) for k in missing)
    _as_identity(kv)
    src, lens, tgt = _batch()
    with torch.no_grad():
        ref_logits, ref_w = plain(src, lens, tgt, need_weights=True)
        logits, w = kv(src, lens, tgt, need_weights=True)
        assert torch.equal(logits, ref_logits) and torch.equal(w, ref_w)
        (m0, s0), (m1, s1) = plain.encode(src, lens), kv.encode(src, lens)
        for t in range(tgt.shape[1]):
            l0, s0, w0 = plain.decoder.step(tgt[:, t], m0, s0)
            l1, s1, w1 = kv.decoder.step(tgt[:, t], m1, s1)
            assert torch.equal(l1, l0) and torch.equal(w1, w0)


def _perturb(f: nn.Sequential) -> None:
    with torch.no_grad():
        f[0].weight.add_(torch.randn_like(f[0].weight, generator=torch.Generator().manual_seed(3)))


@pytest.mark.parametrize("score", ["additive", "general"])
def test_values_come_from_f_v_and_keys_from_f_k(score):
    """Changing ``f_v`` changes the context and the logits but not the weights; changing ``f_k``
    changes the weights (Luong without input feeding: the weights never see the context).

    Planted bug it catches: ``_attend`` pooling the keys (``memory.keys`` passed as the values),
    so ``f_v`` is dead weight."""
    kw = {"score": score, "decoder": "luong", "attention": {"key_size": 7, "value_size": 5}}
    m = _model(True, **kw)
    src, lens, tgt = _batch()
    with torch.no_grad():
        memory, _ = m.encode(src, lens)
        query = torch.randn(3, 1, H, generator=torch.Generator().manual_seed(2))
        c0, w0 = m.decoder._attend(query, memory, 0, True)
        logits0, ww0 = m(src, lens, tgt, need_weights=True)
        assert c0.shape == (3, 1, 5) and memory.values.shape == (3, 7, 5)
        assert memory.keys.shape == (3, 7, 7)

        _perturb(m.decoder.f_v)
        memory, _ = m.encode(src, lens)
        c1, w1 = m.decoder._attend(query, memory, 0, True)
        logits1, ww1 = m(src, lens, tgt, need_weights=True)
        assert not torch.allclose(c1, c0) and not torch.allclose(logits1, logits0)
        torch.testing.assert_close(w1, w0, rtol=0, atol=0)
        torch.testing.assert_close(ww1, ww0, rtol=0, atol=0)

        _perturb(m.decoder.f_k)
        memory, _ = m.encode(src, lens)
        _, w2 = m.decoder._attend(query, memory, 0, True)
        _, ww2 = m(src, lens, tgt, need_weights=True)
        assert not torch.allclose(w2, w1) and not torch.allclose(ww2, ww1)


@pytest.mark.parametrize("decoder", ["bahdanau", "luong"])
def test_bahdanau_context_also_comes_from_f_v(decoder):
    """Both decoders pool the values: ``f_v`` moves the logits, and the first step's weights
    (scored on the encoder's final state, before any context) stay put.

    Planted bug it catches: as above, for the Bahdanau recurrences (GRU fast path)."""
    m = _model(True, score="additive", decoder=decoder, attention={"value_size": 5})
    src, lens, tgt = _batch()
    with torch.no_grad():
        logits0, w0 = m(src, lens, tgt, need_weights=True)
        _perturb(m.decoder.f_v)
        logits1, w1 = m(src, lens, tgt, need_weights=True)
    assert not torch.allclose(logits1, logits0)
    torch.testing.assert_close(w1[:, 0], w0[:, 0], rtol=0, atol=0)


@pytest.mark.parametrize(
    "variant",
    [
        {"score": "additive", "attention": {"key_size": 7, "value_size": 5}},
        {"score": "general", "attention": {"key_size": 7, "value_size": 5}},
        {"score": "dot", "model": {"input_feeding": True}, "attention": {"value_size": 5}},
    ],
    ids=["bahdanau", "luong", "luong-feed"],
)
def test_beam_search_with_key_value(variant):
    """Beam 1 is greedy search and beam 3 gives 3 sorted hypotheses; :meth:`Memory.select`
    reorders the values like the keys (beam search reorders the memory with it).

    Planted bug it catches: ``Memory.select`` dropping the values (the context then pools the
    ``dk``-wide keys)."""
    m = _model(True, **variant)
    src, lens, tgt = _batch()
    memory, _ = m.encode(src, lens)
    index = torch.tensor([2, 0, 2, 1])
    picked = memory.select(index)
    assert picked.values is not None
    torch.testing.assert_close(picked.values, memory.values[index], rtol=0, atol=0)
    torch.testing.assert_close(picked.keys, memory.keys[index], rtol=0, atol=0)
    g = greedy(m, src, lens, max_len=9)
    b1 = beam_search(m, src, lens, max_len=9, beam=1)
    for gh, bh in zip(g, b1):
        assert gh.ids == bh[0].ids
        torch.testing.assert_close(gh.weights, bh[0].weights)
    b3 = beam_search(m, src, lens, max_len=9, beam=3, n_best=3)
    for hyps in b3:
        assert len(hyps) == 3
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)


@pytest.mark.parametrize(
    "variant",
    [
        {"score": "additive", "attention": {"key_size": 7, "value_size": 5}},
        {"score": "general", "attention": {"value_size": 5}},
        {"score": "general", "model": {"input_feeding": True}, "attention": {"value_size": 5}},
    ],
    ids=["bahdanau", "luong", "luong-feed"],
)
def test_teacher_forcing_equals_step_by_step(variant):
    """Teacher forcing (Bahdanau's fused GRU recurrence, Luong's one RNN call or input feeding)
    equals the step function, with values of their own size ``dv != H``.

    Planted bug it catches: the fused GRU path slicing ``W_c`` as the last ``H`` columns of
    ``W_ih`` (``w_ih0[:, -H:]``) instead of the ``dv`` after the embedding's."""
    m = _model(True, **variant)
    src, lens, tgt = _batch()
    with torch.no_grad():
        logits, w = m(src, lens, tgt, need_weights=True)
        memory, state = m.encode(src, lens)
        for t in range(tgt.shape[1]):
            step_logits, state, sw = m.decoder.step(tgt[:, t], memory, state)
            torch.testing.assert_close(step_logits, logits[:, t], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(sw, w[:, t], rtol=1e-5, atol=1e-5)


def test_layers_reading_the_context_take_the_value_size():
    """Bahdanau's RNN input and deep output, Luong's ``W_c``: ``dv`` wide; the score ``dk``."""
    attention = {"key_size": 7, "value_size": 5}
    b = _model(True, score="additive", attention=attention).decoder
    assert b.rnn.input_size == 8 + 5 and b.pre_output.in_features == H + 5 + 8
    assert b.attention.score.key_dim == 7
    lu = _model(True, score="general", attention=attention).decoder
    assert lu.combine.in_features == 5 + H and lu.attention.score.key_dim == 7


def test_plain_decoder_ignores_key_value():
    """``decoder=none`` attends to nothing: no transforms, the same model as without."""
    m = _model(True, decoder="none", attention={"value_size": 5})
    assert not any("f_k" in k or "f_v" in k for k in m.state_dict())
    src, lens, tgt = _batch()
    logits, _ = m(src, lens, tgt)
    assert logits.shape == (3, 5, V_TGT)


def test_toy_run_with_key_value_reloads(tmp_path):
    """A tiny toy run with ``attention.key_value`` completes, and its saved model (with ``f_k``,
    ``f_v``) reloads through :meth:`Translator.from_run` and translates as the run did.

    Planted bug it catches: ``build_rnn`` ignoring ``attention.key_value`` (no transforms saved)."""
    from attnrun.translate.translator import Translator

    cfg = {
        "data": {"n_train": 120, "n_val": 8, "n_test": 8},
        "model": {"embed_size": 8, "num_hiddens": 12},
        "train": {"epochs": 1, "batch_size": 32},
        "decode": {"max_len": 12},
        "plot": {"heatmaps": 1},
        "attention": {"key_value": True, "value_size": 6},
    }
    metrics = experiments.get("translate")(cfg, tmp_path)
    assert metrics["decoder"] == "bahdanau"
    loaded = Translator.from_run(tmp_path)
    dec = loaded.model.decoder
    assert dec.f_k is not None and dec.f_v[0].out_features == 6
    rows = [r.split("\t") for r in (tmp_path / "translations.tsv").read_text().splitlines()[1:3]]
    texts, _ = loaded.translate([r[0] for r in rows])
    assert texts == [r[2] for r in rows]


@pytest.mark.parametrize(
    ("over", "match"),
    [
        (
            {"model": {"arch": "transformer"}, "attention": {"key_value": True}},
            r"attention\.key_value.*Transformer always has keys and values",
        ),
        ({"attention": {"key_size": 0}}, r"attention\.key_size=0"),
        ({"attention": {"value_size": 0}}, r"attention\.value_size=0"),
        (
            {"score": "dot", "attention": {"key_value": True, "key_size": 7}},
            r"attention\.key_size=7.*decoder state size",
        ),
        (
            {"score": "scaled_dot", "attention": {"key_value": True, "key_size": 7}},
            r"attention\.key_size=7.*decoder state size",
        ),
    ],
    ids=["transformer", "key_size", "value_size", "dot", "scaled_dot"],
)
def test_config_errors_name_the_option(over, match):
    """One line naming the option.

    Planted bug it catches: the transformer check dropped (``key_value`` silently ignored)."""
    with pytest.raises(ConfigError, match=match):
        experiments.get("translate").make_config(over)


def test_config_accepts_other_key_sizes_for_general_and_additive():
    for score in ("general", "additive"):
        cfg = experiments.get("translate").make_config(
            {"score": score, "attention": {"key_value": True, "key_size": 7}}
        )
        assert cfg.attention.key_size == 7
