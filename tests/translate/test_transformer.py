"""TransformerSeq2Seq: the RNN Seq2Seq interface, causality and padding, cached decoding against
recomputing the prefix, greedy/beam search and the trainer's loss unchanged, a tiny training run."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.testing import assert_close

from attnrun.errors import ConfigError
from attnrun.translate.batching import make_batch
from attnrun.translate.models.transformer import TransformerSeq2Seq
from attnrun.translate.search import beam_search, greedy
from attnrun.translate.tokenize import BOS, EOS, PAD
from attnrun.translate.train import token_loss, training_loss

V_SRC, V_TGT = 17, 15
VARIANTS = [
    {},
    {"norm_first": True},
    {"positional": "learned", "tie_embeddings": True},
    {"norm_first": True, "tie_embeddings": True, "num_layers": 3},
]


def _model(**kw) -> TransformerSeq2Seq:
    torch.manual_seed(0)
    options = dict(num_hiddens=16, num_heads=4, num_layers=2, ffn_hiddens=24, dropout=0.0)
    options.update(max_len=24)
    options.update(kw)
    m = TransformerSeq2Seq(V_SRC, V_TGT, **options).eval()
    if "positional" in kw:  # learned tables start near 0: make positions matter in the tests
        with torch.no_grad():
            for pos in (m.encoder.positional, m.decoder.positional):
                pos.embedding.weight.normal_()
    return m


def _batch():
    g = torch.Generator().manual_seed(1)
    src = torch.randint(4, V_SRC, (3, 7), generator=g)
    lens = torch.tensor([7, 4, 2])
    for i, n in enumerate(lens):
        src[i, n - 1] = EOS
        src[i, n:] = PAD
    tgt = torch.randint(4, V_TGT, (3, 6), generator=g)
    tgt[:, 0] = BOS
    return src, lens, tgt


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_shapes_weights_and_attention_maps(variant):
    """Logits ``(B, T, V)``; weights ``(B, T, S)`` are distributions over the valid source only;
    ``attention_maps`` stacks every layer and head, and its last cross layer averaged over heads
    is the forward's weights. Planted bug caught: weights of the first instead of the last layer."""
    m = _model(**variant)
    src, lens, tgt = _batch()
    logits, w = m(src, lens, tgt, need_weights=True)
    assert logits.shape == (3, 6, V_TGT)
    assert w.shape == (3, 6, 7)
    assert_close(w.sum(-1), torch.ones(3, 6))
    assert torch.all(w[2, :, 2:] == 0) and torch.all(w[1, :, 4:] == 0)
    assert m(src, lens, tgt)[1] is None
    maps = m.attention_maps(src, lens, tgt)
    layers = len(m.decoder.blocks)
    assert maps["encoder_self"].shape == (3, layers, 4, 7, 7)
    assert maps["decoder_self"].shape == (3, layers, 4, 6, 6)
    assert maps["cross"].shape == (3, layers, 4, 6, 7)
    assert_close(maps["cross"][:, -1].mean(1), w)
    assert torch.all(maps["decoder_self"].triu(1) == 0)


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_causality_and_source_padding(variant):
    """Changing target token ``t + 1`` leaves every logit at positions ``<= t`` unchanged;
    changing padded source tokens changes no logit at all. Planted bugs caught: no causal mask
    in the decoder's self-attention; source lengths not passed to the encoder or to the
    cross-attention."""
    m = _model(**variant)
    src, lens, tgt = _batch()
    base, _ = m(src, lens, tgt)
    for t in range(tgt.shape[1] - 1):
        tgt2 = tgt.clone()
        tgt2[:, t + 1] = (tgt2[:, t + 1] - 4 + 1) % (V_TGT - 4) + 4  # another real token
        out, _ = m(src, lens, tgt2)
        assert_close(out[:, : t + 1], base[:, : t + 1], rtol=0, atol=1e-5)
        assert not torch.allclose(out[:, t + 1], base[:, t + 1])
    src2 = src.clone()
    src2[1, 4:], src2[2, 2:] = 5, 9
    assert_close(m(src2, lens, tgt)[0], base, rtol=0, atol=1e-5)


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_cached_steps_equal_recomputing_the_prefix(variant):
    """``decoder.step`` on the cache gives, at every step, the logits and weights of running the
    whole prefix again from scratch, and the same argmax tokens (fed back greedily). Planted bugs
    caught: positions not offset by the step (``offset=state.t`` dropped), the cache not carried
    into the next state, ``t`` not advanced, the new position not appended to the cache."""
    m = _model(**variant)
    src, lens, _ = _batch()
    memory, state = m.encode(src, lens)
    prefix = torch.full((3, 1), BOS)
    for _ in range(10):
        logits, state, w = m.decoder.step(prefix[:, -1], memory, state)
        ref_logits, ref_w = m(src, lens, prefix, need_weights=True)
        assert_close(logits, ref_logits[:, -1])
        assert_close(w, ref_w[:, -1])
        assert torch.equal(logits.argmax(-1), ref_logits[:, -1].argmax(-1))
        prefix = torch.cat([prefix, logits.argmax(-1, keepdim=True)], 1)
    assert state.t == 10 and state.caches[0].length == 10


def test_a_step_projects_only_the_new_token_and_the_source_once():
    """Per step, every projection in the decoder sees one position per row (O(t) work on the
    cache, not the prefix again), and the cross-attention keys are projected at encode time only.
    Planted bug caught: the decoder passing ``memory.outputs`` instead of ``memory.kv`` to its
    blocks (the memory re-projected every step), which the equality tests above do not see."""
    m = _model()
    src, lens, _ = _batch()
    rows = {"self_k": [], "cross_k": []}
    block = m.decoder.blocks[-1]
    block.self_attention.W_k.register_forward_hook(
        lambda mod, a, out: rows["self_k"].append(a[0].shape[1])
    )
    block.cross_attention.W_k.register_forward_hook(
        lambda mod, a, out: rows["cross_k"].append(a[0].shape[1])
    )
    memory, state = m.encode(src, lens)
    y = torch.full((3,), BOS)
    for _ in range(4):
        _, state, _ = m.decoder.step(y, memory, state)
    assert rows == {"self_k": [1, 1, 1, 1], "cross_k": [7]}


@dataclass
class _PrefixMemory:
    src: Tensor
    lens: Tensor

    def select(self, index):
        return _PrefixMemory(self.src.index_select(0, index), self.lens.index_select(0, index))


@dataclass
class _PrefixState:
    prefix: Tensor  # (B, t): the tokens fed so far

    def select(self, index):
        return _PrefixState(self.prefix.index_select(0, index))


class _Recompute:
    """The reference decoder for search: every step runs the model's teacher-forcing forward on
    the whole prefix (no cache, no step code) and keeps its last position."""

    def __init__(self, model: TransformerSeq2Seq) -> None:
        self.model, self.decoder = model, self

    def encode(self, src, src_lens):
        return _PrefixMemory(src, src_lens), _PrefixState(src.new_zeros(src.shape[0], 0))

    def step(self, y_prev, memory, state):
        prefix = torch.cat([state.prefix, y_prev[:, None]], 1)
        logits, w = self.model(memory.src, memory.lens, prefix, need_weights=True)
        return logits[:, -1], _PrefixState(prefix), w[:, -1]


def _peaked(m: TransformerSeq2Seq) -> TransformerSeq2Seq:
    """Sharper output distributions, so that beam ranks have no near-ties to flip on rounding."""
    with torch.no_grad():
        m.decoder.out.bias.normal_(0, 2.0)
    return m


@pytest.mark.parametrize("variant", VARIANTS[:3], ids=str)
def test_search_with_cache_equals_recompute_reference(variant):
    """``attnrun.translate.search.greedy`` and ``beam_search``, unchanged, give the same tokens,
    scores and weights on the cached model as on the recompute reference; beam 1 equals greedy.
    Planted bugs caught: ``KeyValues.select`` / ``TransformerState.select`` not reordering the
    caches (beam search then continues the wrong hypothesis), ``TransformerMemory.select`` not
    expanding the cross keys to the beam."""
    m = _peaked(_model(**variant))
    src, lens, _ = _batch()
    ref = _Recompute(m)
    g, g_ref = greedy(m, src, lens, 9), greedy(ref, src, lens, 9)
    assert [h.ids for h in g] == [h.ids for h in g_ref]
    for h, r in zip(g, g_ref):
        assert math.isclose(h.score, r.score, rel_tol=1e-5, abs_tol=1e-5)
        assert_close(h.weights, r.weights)
    b = beam_search(m, src, lens, 9, beam=4, n_best=4)
    b_ref = beam_search(ref, src, lens, 9, beam=4, n_best=4)
    assert [[h.ids for h in hs] for hs in b] == [[h.ids for h in hs] for hs in b_ref]
    for hs, rs in zip(b, b_ref):
        assert_close(torch.tensor([h.score for h in hs]), torch.tensor([h.score for h in rs]))
    one = beam_search(m, src, lens, 9, beam=1)
    assert [hs[0].ids for hs in one] == [h.ids for h in g]
    assert len({tuple(h.ids) for h in b[0]}) == 4  # the beam really holds distinct hypotheses


@pytest.mark.parametrize("tie", [False, True])
def test_token_features_and_trainer_loss_equal_cross_entropy(tie):
    """``token_features`` + ``decoder.out`` through the trainer's ``token_loss`` and
    ``training_loss`` equal ``F.cross_entropy`` of the teacher-forced logits over the non-pad
    targets, value and gradient, and every parameter gets a gradient. Planted bugs caught: pad
    targets kept (``keep`` dropped), the output layer not tied with ``tie_embeddings``, the
    encoder output detached from the decoder."""
    m = _model(tie_embeddings=tie)
    pairs = [
        ([5, 6, 7, EOS], [8, 9, EOS]),
        ([5, EOS], [10, 11, 12, 13, EOS]),
        ([9, 9, 9, EOS], [EOS]),
    ]
    batch = make_batch(pairs, [0, 1, 2])
    feats, targets = m.token_features(batch.src, batch.src_lens, batch.tgt_in, batch.tgt_out)
    assert feats.shape == (batch.n_tokens, 16) and targets.tolist() == [
        8,
        9,
        2,
        10,
        11,
        12,
        13,
        2,
        2,
    ]
    logits, _ = m(batch.src, batch.src_lens, batch.tgt_in)
    ref = F.cross_entropy(logits.reshape(-1, V_TGT), batch.tgt_out.reshape(-1), ignore_index=PAD)
    assert_close(token_loss(m, feats, targets), ref)
    loss = training_loss(m, batch)
    assert_close(loss, ref)
    loss.backward()
    silent = [n for n, p in m.named_parameters() if p.grad is None or not p.grad.any()]
    assert not silent  # every parameter, the encoder's included, is trained
    grad = m.decoder.out.weight.grad.clone()
    m.zero_grad()
    ref.backward()
    assert_close(grad, m.decoder.out.weight.grad)
    assert (m.decoder.out.weight is m.decoder.embedding.weight) == tie


def test_embedding_is_scaled_by_sqrt_d():
    """The positional encoding receives ``E x · √d`` (Vaswani et al. 2017, 3.4) on both sides.
    Planted bug caught: the √d factor left out."""
    m = _model()
    src, lens, tgt = _batch()
    seen = {}
    for name, module in (("enc", m.encoder), ("dec", m.decoder)):
        module.positional.register_forward_hook(
            lambda mod, a, out, n=name: seen.setdefault(n, a[0])
        )
    m(src, lens, tgt)
    assert_close(seen["enc"], m.encoder.embedding(src) * 4.0)
    assert_close(seen["dec"], m.decoder.embedding(tgt) * 4.0)


def test_config_errors_name_the_option():
    """Heads that do not divide the model size, and a source or a decoded target longer than the
    positional encoding, raise a one-line ConfigError naming the option."""
    with pytest.raises(ConfigError, match="num_heads=3 must divide num_hiddens=16"):
        TransformerSeq2Seq(V_SRC, V_TGT, 16, 3)
    with pytest.raises(ConfigError, match="unknown positional encoding 'rope'"):
        TransformerSeq2Seq(V_SRC, V_TGT, 16, 4, positional="rope")
    m = _model(max_len=5)
    src, lens, tgt = _batch()
    with pytest.raises(ConfigError, match=r"source positions 0\.\.6 exceed max_len=5") as err:
        m.encode(src, lens)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"target positions 0\.\.5 exceed max_len=5"):
        m(src[:, :5], lens.clamp(max=5), tgt)
    memory, state = m.encode(src[:, :5], lens.clamp(max=5))
    greedy_steps = 0
    with pytest.raises(ConfigError, match=r"target positions 5\.\.5 exceed max_len=5"):
        y = tgt[:, 0]
        for _ in range(6):
            _, state, _ = m.decoder.step(y, memory, state)
            greedy_steps += 1
    assert greedy_steps == 5


def _reverse_pairs(n: int, seed: int) -> list[tuple[list[int], list[int]]]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        s = [rng.randrange(4, V_TGT) for _ in range(rng.randint(2, 6))]
        pairs.append((s + [EOS], s[::-1] + [EOS]))
    return pairs


@pytest.mark.parametrize("threads", [1, 2])
def test_training_on_reversal_drops_the_loss(threads):
    """A tiny run on the trainer's own loss (``training_loss``) learns to reverse: after 150 Adam
    steps on 300 pairs the mean loss of the last 10 steps is under a tenth of the first step's
    (observed: 3.08 → 0.04), and greedy search reverses at least half of 40 held-out sources
    exactly (observed: 30). Seeded; at 1 and 2 threads. Planted bug caught: no causal mask (the
    model reads the answer off its input). Not caught here (the token_features test catches it):
    the encoder output detached — the decoder still learns through random encoder features."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        m = TransformerSeq2Seq(V_SRC, V_TGT, 32, 4, 2, 64, 0.0, max_len=16).train()
        pairs = _reverse_pairs(300, seed=1)
        opt = torch.optim.Adam(m.parameters(), lr=3e-3)
        rng = random.Random(2)
        losses = []
        for _ in range(150):
            loss = training_loss(m, make_batch(pairs, rng.sample(range(len(pairs)), 32)))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert sum(losses[-10:]) / 10 < losses[0] / 10, (losses[0], losses[-10:])
        m.eval()
        test = _reverse_pairs(40, seed=3)
        batch = make_batch(test, list(range(len(test))))
        hyps = greedy(m, batch.src, batch.src_lens, 10)
        correct = sum(h.ids == t[:-1] for h, (_, t) in zip(hyps, test))
        assert correct >= 20, correct
    finally:
        torch.set_num_threads(before)


#: CLI overrides that keep a run short should a bad-input check let it start.
SMALL = ["data.n_train=40", "data.n_val=8", "data.n_test=8", "train.epochs=1",
         "model.num_hiddens=8", "model.ffn_hiddens=8", "plot.heatmaps=1"]  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["model.num_heads=3"],
            "model.num_heads=3 is not valid; allowed: a divisor of model.num_hiddens=8",
        ),
        (
            ["attention.key_value=true"],
            "attention.key_value=True is not valid; allowed: false with model.arch=transformer",
        ),
        (
            ["tokenizer.shared=true"],
            "tokenizer.shared=True is not valid; allowed: false with tokenizer.kind=word",
        ),
        (
            ["model.attention_dropout=1.0"],
            "model.attention_dropout=1.0 is not valid; allowed: [0, 1) or null",
        ),
        (
            ["model.attention_dropout=-0.1"],
            "model.attention_dropout=-0.1 is not valid; allowed: [0, 1) or null",
        ),
    ],
    ids=["heads", "key_value", "shared-word", "attention-dropout-1", "attention-dropout-neg"],
)
def test_bad_transformer_options_exit_2_before_training(tmp_path, capsys, overrides, message):
    """``attnrun translate --model transformer`` with heads that do not divide the model size,
    ``attention.key_value=true`` or ``tokenizer.shared=true`` with word vocabularies: exit 2, one
    line naming the option and what is valid, no traceback, no run folder. Planted bugs caught:
    the ``model.num_heads`` check in ``ModelConfig`` dropped (the model's own ConfigError then
    comes only after the data and tokenizers, with a run folder marked failed); the
    ``attention.key_value`` check in ``TranslateConfig`` dropped (the option silently ignored)."""
    from attnrun.cli import main

    args = ["translate", "-q", "--root", str(tmp_path), "--model", "transformer"]
    with pytest.raises(SystemExit) as exc:
        main([*args, *SMALL, *overrides])
    _, err = capsys.readouterr()
    assert exc.value.code == 2
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert message in err
    assert not (tmp_path / "outputs").exists()


def test_attention_dropout_with_an_rnn_exits_2(tmp_path, capsys):
    """``model.attention_dropout`` sets the Transformer's attention dropout; asked of the RNN
    family it is one line naming the option and what is valid, exit 2, no run folder. Planted
    bug caught: the arch check in ``ModelConfig`` dropped (the option silently ignored)."""
    from attnrun.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["translate", "-q", "--root", str(tmp_path), *SMALL, "model.attention_dropout=0"])
    _, err = capsys.readouterr()
    assert exc.value.code == 2
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert "model.attention_dropout=0.0 is not valid; allowed: null with model.arch=rnn" in err
    assert not (tmp_path / "outputs").exists()


def test_model_attention_dropout_reaches_every_attention_of_the_transformer():
    """``model.attention_dropout=0`` with ``model.dropout=0.3``: the encoder's self-attention,
    the decoder's self- and cross-attention of every layer drop no weight, every other dropout
    (embeddings + positions, sublayer outputs) stays 0.3; null keeps 0.3 everywhere, as runs
    from before the option. Planted bug caught: ``build_transformer`` not passing the option on
    (every attention keeps 0.3)."""
    from attnrun.core import MultiHeadAttention
    from attnrun.core.dropout import Dropout
    from attnrun.experiments import experiments
    from attnrun.translate.models import build_model

    run = experiments.get("translate")
    for p_attn in (0.0, None):
        model_cfg = {"arch": "transformer", "num_hiddens": 16, "num_heads": 2, "num_layers": 2,
                     "ffn_hiddens": 16, "dropout": 0.3, "attention_dropout": p_attn}  # fmt: skip
        model = build_model(run.make_config({"model": model_cfg}), 20, 20)
        mha = [m for m in model.modules() if isinstance(m, MultiHeadAttention)]
        assert len(mha) == 2 * 3  # encoder self + decoder self + cross, per layer
        in_attention = {id(m.attention.dropout) for m in mha}
        rates = {m.attention.dropout.p for m in mha}
        others = {
            m.p for m in model.modules() if isinstance(m, Dropout) and id(m) not in in_attention
        }
        assert rates == {0.3 if p_attn is None else p_attn} and others == {0.3}
