"""Transformer blocks against torch.nn.TransformerEncoderLayer / TransformerDecoderLayer with copied
weights, against selfattn's original encoder block, and the decoder's cached incremental steps."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn
from torch.testing import assert_close

from attnrun.core import Dropout, MultiHeadAttention
from attnrun.core.blocks import DecoderBlock, EncoderBlock, KeyValues, causal_mask

PROPERTY = settings(max_examples=15, deadline=None, derandomize=True)
D, HEADS, FFN = 12, 3, 20


def _randomise(module: nn.Module) -> None:
    """Random values for every parameter, LayerNorm's ones and zeros included (a swapped or
    skipped norm would otherwise go unseen)."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.5)


def _copy_attention(ref: nn.MultiheadAttention, ours: MultiHeadAttention) -> list:
    """Copy ``ref`` into ``ours``; returns ``(our parameter, ref gradient getter)`` pairs."""
    e = ref.embed_dim
    pairs = []
    with torch.no_grad():
        for i, lin in enumerate((ours.W_q, ours.W_k, ours.W_v)):
            rows = slice(i * e, (i + 1) * e)
            lin.weight.copy_(ref.in_proj_weight[rows])
            lin.bias.copy_(ref.in_proj_bias[rows])
            pairs.append((lin.weight, lambda r=rows: ref.in_proj_weight.grad[r]))
            pairs.append((lin.bias, lambda r=rows: ref.in_proj_bias.grad[r]))
        ours.W_o.weight.copy_(ref.out_proj.weight)
        ours.W_o.bias.copy_(ref.out_proj.bias)
    pairs.append((ours.W_o.weight, lambda: ref.out_proj.weight.grad))
    pairs.append((ours.W_o.bias, lambda: ref.out_proj.bias.grad))
    return pairs


def _copy_same(pairs_of_modules) -> list:
    pairs = []
    with torch.no_grad():
        for ref, ours in pairs_of_modules:
            for name, p in ours.named_parameters():
                r = dict(ref.named_parameters())[name]
                p.copy_(r)
                pairs.append((p, lambda r=r: r.grad))
    return pairs


def _padding(lens: Tensor, t: int) -> Tensor:
    return torch.arange(t) >= lens[:, None]  # torch's key_padding_mask: True = ignore


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_block_matches_torch_forward_and_backward(norm_first, need_weights):
    """Values and gradients (inputs and every weight) equal torch's TransformerEncoderLayer, with
    source padding, post- and pre-norm, on the weights path and the fused (SDPA) path.

    Planted bugs caught: pre-norm applying LN after the residual add; norm1/norm2 swapped;
    padding mask dropped (``valid_lens`` not passed); the residual around the FFN left out."""
    ref = nn.TransformerEncoderLayer(
        D, HEADS, FFN, dropout=0.0, activation="relu", batch_first=True, norm_first=norm_first
    )
    _randomise(ref)
    ours = EncoderBlock(D, HEADS, FFN, 0.0, norm_first=norm_first, bias=True)
    pairs = _copy_attention(ref.self_attn, ours.attention)
    pairs += _copy_same(
        [
            (ref.linear1, ours.ffn[0]),
            (ref.linear2, ours.ffn[2]),
            (ref.norm1, ours.norm1),
            (ref.norm2, ours.norm2),
        ]
    )
    x = torch.randn(3, 6, D)
    lens = torch.tensor([6, 4, 1])
    x_ref, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_ref = ref(x_ref, src_key_padding_mask=_padding(lens, 6))  # train mode: no fast path
    out, w = ours(x_ours, lens, need_weights=need_weights)
    assert_close(out, out_ref)
    if need_weights:
        assert w.shape == (3, HEADS, 6, 6)
        assert_close(w[2, :, :, 1:], torch.zeros(HEADS, 6, 5))
    else:
        assert w is None
    g = torch.randn_like(out)
    (out_ref * g).sum().backward()
    (out * g).sum().backward()
    assert_close(x_ours.grad, x_ref.grad)
    for p, ref_grad in pairs:
        assert_close(p.grad, ref_grad())


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_block_matches_torch_forward_and_backward(norm_first, need_weights):
    """DecoderBlock equals torch's TransformerDecoderLayer (causal ``tgt_mask``, target and memory
    key padding), values and gradients of the target, the memory and every weight.

    Planted bugs caught: causal mask off by one (``<`` for ``<=``); no causal mask; source
    padding not passed to the cross-attention; norm3 used for the cross-attention sublayer."""
    ref = nn.TransformerDecoderLayer(
        D, HEADS, FFN, dropout=0.0, activation="relu", batch_first=True, norm_first=norm_first
    )
    _randomise(ref)
    ours = DecoderBlock(D, HEADS, FFN, 0.0, norm_first=norm_first, bias=True)
    pairs = _copy_attention(ref.self_attn, ours.self_attention)
    pairs += _copy_attention(ref.multihead_attn, ours.cross_attention)
    pairs += _copy_same(
        [
            (ref.linear1, ours.ffn[0]),
            (ref.linear2, ours.ffn[2]),
            (ref.norm1, ours.norm1),
            (ref.norm2, ours.norm2),
            (ref.norm3, ours.norm3),
        ]
    )
    tgt, mem = torch.randn(3, 5, D), torch.randn(3, 7, D)
    tgt_lens, src_lens = torch.tensor([5, 3, 2]), torch.tensor([7, 2, 5])
    leaves = [t.clone().requires_grad_() for t in (tgt, mem, tgt, mem)]
    out_ref = ref(
        leaves[0],
        leaves[1],
        tgt_mask=~torch.ones(5, 5, dtype=torch.bool).tril(),  # True = may not attend
        tgt_key_padding_mask=_padding(tgt_lens, 5),
        memory_key_padding_mask=_padding(src_lens, 7),
    )
    o = ours(leaves[2], leaves[3], src_lens, need_weights=need_weights, tgt_lens=tgt_lens)
    assert_close(o.out, out_ref)
    assert o.cache.keys.shape == (3, HEADS, 5, D // HEADS)
    if need_weights:
        assert o.self_weights.shape == (3, HEADS, 5, 5)
        assert o.cross_weights.shape == (3, HEADS, 5, 7)
    else:
        assert o.self_weights is None and o.cross_weights is None
    g = torch.randn_like(out_ref)
    (out_ref * g).sum().backward()
    (o.out * g).sum().backward()
    assert_close(leaves[2].grad, leaves[0].grad)
    assert_close(leaves[3].grad, leaves[1].grad)
    for p, ref_grad in pairs:
        assert_close(p.grad, ref_grad())


class _OriginalSelfattnBlock(nn.Module):
    """attnrun.selfattn.model.EncoderBlock as it was when selfattn runs were saved (frozen here
    as the reference, so the comparison stays independent once selfattn uses the core block)."""

    def __init__(self, num_hiddens, num_heads, ffn_hiddens, dropout, score, score_options=None):
        super().__init__()
        self.attention = MultiHeadAttention(
            num_hiddens, num_heads, dropout, score, **(score_options or {})
        )
        self.norm1 = nn.LayerNorm(num_hiddens)
        self.ffn = nn.Sequential(
            nn.Linear(num_hiddens, ffn_hiddens), nn.ReLU(), nn.Linear(ffn_hiddens, num_hiddens)
        )
        self.norm2 = nn.LayerNorm(num_hiddens)
        self.dropout = Dropout(dropout)  # the core's mask (was nn.Dropout's before 2026-12-04)

    def forward(self, X, valid_lens):
        attended, weights = self.attention(X, X, X, valid_lens)
        Y = self.norm1(X + self.dropout(attended))
        return self.norm2(Y + self.dropout(self.ffn(Y))), weights


@pytest.mark.parametrize(
    "score, options, dropout",
    [("scaled_dot", None, 0.0), ("cosine", {"learn_beta": True}, 0.0), ("scaled_dot", None, 0.2)],
)
def test_encoder_block_loads_selfattn_state_dict_and_computes_the_same(score, options, dropout):
    """A state dict of selfattn's original block loads strictly into EncoderBlock (same names and
    shapes) and gives the same outputs and weights — in training mode with dropout too, under the
    same seed. Planted bugs caught: projection biases on by default, an extra Dropout inside
    ``ffn`` (shifts ``ffn.2`` to ``ffn.3``)."""
    old = _OriginalSelfattnBlock(D, HEADS, FFN, dropout, score, options)
    _randomise(old)
    new = EncoderBlock(D, HEADS, FFN, dropout, score, options)
    assert list(new.state_dict()) == list(old.state_dict())
    new.load_state_dict(old.state_dict(), strict=True)
    x, lens = torch.randn(2, 5, D), torch.tensor([5, 3])
    torch.manual_seed(3)
    out_old, w_old = old(x, lens)
    torch.manual_seed(3)
    out_new, w_new = new(x, lens)
    assert_close(out_new, out_old)
    assert_close(w_new, w_old)


def test_selfattn_experiment_block_state_dict_loads():
    """The block the selfattn experiment builds today (whatever it is) loads into ours and
    matches: guards against the two drifting apart."""
    from attnrun.selfattn.model import EncoderBlock as SelfattnBlock

    old = SelfattnBlock(D, HEADS, FFN, 0.0, "scaled_dot")
    _randomise(old)
    new = EncoderBlock(D, HEADS, FFN, 0.0, "scaled_dot")
    new.load_state_dict(old.state_dict(), strict=True)
    x, lens = torch.randn(2, 5, D), torch.tensor([5, 2])
    assert_close(new(x, lens)[0], old(x, lens)[0])


def test_causal_mask():
    """Query ``i`` at position ``offset + i`` keeps keys ``<= offset + i``; one query at the end
    of the keys needs no mask. Planted bug caught: ``<`` for ``<=`` (no row may be empty)."""
    assert torch.equal(causal_mask(4, 4), torch.ones(4, 4, dtype=torch.bool).tril())
    assert torch.equal(causal_mask(2, 5, offset=3), torch.ones(5, 5, dtype=torch.bool).tril()[3:])
    assert causal_mask(1, 6, offset=5) is None
    assert causal_mask(1, 6, offset=2).tolist() == [[True, True, True, False, False, False]]


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_causality_and_source_padding(norm_first):
    """Changing target position ``t + 1`` leaves outputs ``<= t`` unchanged; changing the memory
    at padded source positions changes nothing. Planted bugs caught: no causal mask;
    ``src_lens`` not passed to the cross-attention."""
    block = DecoderBlock(D, HEADS, FFN, 0.0, norm_first=norm_first).eval()
    _randomise(block)
    x, mem, src_lens = torch.randn(2, 6, D), torch.randn(2, 4, D), torch.tensor([4, 2])
    base = block(x, mem, src_lens).out
    for t in range(5):
        x2 = x.clone()
        x2[:, t + 1] += torch.randn(2, D)
        out = block(x2, mem, src_lens).out
        assert_close(out[:, : t + 1], base[:, : t + 1], rtol=0, atol=1e-6)
        assert not torch.allclose(out[:, t + 1], base[:, t + 1])
    mem2 = mem.clone()
    mem2[1, 2:] = torch.randn(2, D) * 10
    assert_close(block(x, mem2, src_lens).out, base, rtol=0, atol=1e-6)


def test_encoder_padding_changes_nothing_valid():
    """Padded source positions do not reach the valid positions' outputs. Planted bug caught:
    ``valid_lens`` dropped in EncoderBlock.forward."""
    block = EncoderBlock(D, HEADS, FFN).eval()
    _randomise(block)
    x, lens = torch.randn(2, 5, D), torch.tensor([5, 3])
    base, _ = block(x, lens)
    x2 = x.clone()
    x2[1, 3:] = torch.randn(2, D) * 10
    out, _ = block(x2, lens)
    assert_close(out[1, :3], base[1, :3], rtol=0, atol=1e-6)
    assert_close(out[0], base[0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("score", ["scaled_dot", "general"])
@pytest.mark.parametrize("norm_first", [False, True])
def test_cached_steps_equal_one_full_pass(norm_first, score):
    """Feeding the target one position at a time, each call given the previous call's cache and
    the memory projected once, gives the full causal pass's outputs and weights; the cache grows
    by one position per step. Planted bugs caught: the new position's keys not appended to the
    cache, the causal offset of a step taken as 0, the projected keys of ``general`` (its
    ``W k``) not appended along with the keys."""
    block = DecoderBlock(D, HEADS, FFN, 0.0, score, norm_first=norm_first).eval()
    _randomise(block)
    x, mem, src_lens = torch.randn(2, 5, D), torch.randn(2, 4, D), torch.tensor([4, 3])
    full = block(x, mem, src_lens, need_weights=True)
    memory = block.memory(mem)  # once per source
    cache = None
    for t in range(5):
        o = block(x[:, t : t + 1], memory, src_lens, cache, need_weights=True)
        cache = o.cache
        assert cache.length == t + 1
        assert_close(o.out[:, 0], full.out[:, t])
        assert_close(o.cross_weights[:, :, 0], full.cross_weights[:, :, t])
        assert_close(o.self_weights[:, :, 0], full.self_weights[:, :, t, : t + 1])
    assert_close(cache.keys, full.cache.keys)
    assert_close(cache.values, full.cache.values)


def test_key_values_select_reorders_rows():
    """``select`` picks batch rows of keys, values and projected keys (beam search's reorder).
    Planted bug caught: ``select`` returning the cache unchanged."""
    k, v, p = torch.randn(3, 2, 4, 5), torch.randn(3, 2, 4, 5), torch.randn(3, 2, 4, 5)
    idx = torch.tensor([2, 0, 0])
    s = KeyValues(k, v, p).select(idx)
    assert torch.equal(s.keys, k[idx]) and torch.equal(s.values, v[idx])
    assert torch.equal(s.projected, p[idx])
    assert KeyValues(k, v).select(idx).projected is None


@PROPERTY
@given(
    tgt=st.integers(1, 5),
    lens=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    norm_first=st.booleans(),
)
def test_decoder_weights_are_distributions_with_masked_zeros(tgt, lens, norm_first):
    """Every row of both attentions sums to one; future target keys and padded source keys get
    exactly zero weight."""
    torch.manual_seed(0)
    block = DecoderBlock(D, HEADS, FFN, 0.0, norm_first=norm_first).eval()
    b, s = len(lens), max(lens)
    src_lens = torch.tensor(lens)
    o = block(torch.randn(b, tgt, D), torch.randn(b, s, D), src_lens, need_weights=True)
    for w in (o.self_weights, o.cross_weights):
        assert_close(w.sum(-1), torch.ones(w.shape[:-1]))
    future = ~torch.ones(tgt, tgt, dtype=torch.bool).tril()
    assert torch.all(o.self_weights[..., future] == 0)
    padded = torch.arange(s) >= src_lens[:, None]  # (B, S)
    assert torch.all(o.cross_weights.masked_select(padded[:, None, None, :]) == 0)


@pytest.mark.parametrize("block_class", [EncoderBlock, DecoderBlock])
def test_attention_dropout_drops_the_attention_weights_and_nothing_else(block_class):
    """``attention_dropout`` replaces ``dropout`` on the attention weights of every attention of
    the block, and only there. With the sublayer dropout at 0, a training-mode forward is
    random exactly when the attention dropout is above 0 (and equals the eval-mode one at 0);
    ``None`` keeps ``dropout`` on the weights, as before the option. Planted bugs caught: the
    decoder's cross-attention built with ``dropout`` (its rate stays 0.5); the option ignored."""
    torch.manual_seed(0)
    x, mem, src_lens = torch.randn(2, 6, D), torch.randn(2, 4, D), torch.tensor([4, 2])

    def run(block: nn.Module) -> Tensor:
        if block_class is EncoderBlock:
            return block(x, torch.tensor([6, 3]), need_weights=False)[0]
        return block(x, mem, src_lens).out

    def rates(block: nn.Module) -> set[float]:
        return {m.attention.dropout.p for m in block.modules() if isinstance(m, MultiHeadAttention)}

    for p_attn, random in ((0.5, True), (0.0, False)):
        block = block_class(D, HEADS, FFN, 0.0, attention_dropout=p_attn)
        _randomise(block)
        assert rates(block) == {p_attn}
        first, second = run(block.train()), run(block)
        assert (not torch.allclose(first, second)) is random
        if not random:
            assert_close(first, run(block.eval()), rtol=0, atol=1e-6)
    mixed = block_class(D, HEADS, FFN, 0.5, attention_dropout=0.0)
    assert rates(mixed) == {0.0} and mixed.dropout.p == 0.5
    assert rates(block_class(D, HEADS, FFN, 0.3)) == {0.3}
