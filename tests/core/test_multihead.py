"""MultiHeadAttention against torch.nn.MultiheadAttention with copied weights."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.testing import assert_close

from attnrun.core import MultiHeadAttention

PROPERTY = settings(max_examples=15, deadline=None, derandomize=True)


def copy_into_ours(ref: nn.MultiheadAttention, ours: MultiHeadAttention, bias: bool) -> None:
    e = ref.embed_dim
    with torch.no_grad():
        for i, lin in enumerate((ours.W_q, ours.W_k, ours.W_v)):
            lin.weight.copy_(ref.in_proj_weight[i * e : (i + 1) * e])
            if bias:
                lin.bias.copy_(ref.in_proj_bias[i * e : (i + 1) * e])
        ours.W_o.weight.copy_(ref.out_proj.weight)
        if bias:
            ours.W_o.bias.copy_(ref.out_proj.bias)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("need_weights", [True, False])
def test_matches_torch_multihead_attention(bias, need_weights):
    e, heads = 12, 3
    ref = nn.MultiheadAttention(e, heads, bias=bias, batch_first=True).eval()
    ours = MultiHeadAttention(e, heads, bias=bias).eval()
    copy_into_ours(ref, ours, bias)
    q, kv = torch.randn(2, 4, e), torch.randn(2, 6, e)
    lens = torch.tensor([3, 6])
    padding = torch.arange(6) >= lens[:, None]  # torch: True = ignore
    out_ref, w_ref = ref(q, kv, kv, key_padding_mask=padding, average_attn_weights=False)
    out, w = ours(q, kv, kv, lens, need_weights=need_weights)
    assert_close(out, out_ref)
    if need_weights:
        assert w.shape == (2, heads, 4, 6)
        assert_close(w, w_ref)
    else:
        assert w is None


def test_gradients_match_torch():
    e, heads = 8, 2
    ref = nn.MultiheadAttention(e, heads, bias=True, batch_first=True)
    ours = MultiHeadAttention(e, heads, bias=True)
    copy_into_ours(ref, ours, True)
    x = torch.randn(3, 5, e)
    ref(x, x, x)[0].square().sum().backward()
    ours(x, x, x, need_weights=False)[0].square().sum().backward()
    assert_close(ours.W_o.weight.grad, ref.out_proj.weight.grad)
    assert_close(ours.W_q.weight.grad, ref.in_proj_weight.grad[:e])


def test_different_input_sizes_and_per_query_lens():
    mha = MultiHeadAttention(16, 4, query_size=5, key_size=7, value_size=3)
    out, w = mha(torch.randn(2, 3, 5), torch.randn(2, 4, 7), torch.randn(2, 4, 3),
                 torch.tensor([[1, 2, 3], [4, 4, 0]]))  # fmt: skip
    assert out.shape == (2, 3, 16) and w.shape == (2, 4, 3, 4)
    assert (w[1, :, 2] == 0).all() and (w[0, :, 0, 1:] == 0).all()


@PROPERTY
@given(t=st.integers(2, 6), seed=st.integers(0, 2**16))
def test_self_attention_is_permutation_equivariant(t, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, t, 8, generator=g)
    perm = torch.randperm(t, generator=g)
    mha = MultiHeadAttention(8, 2, bias=True)
    out, _ = mha(x, x, x)
    out_p, _ = mha(x[:, perm], x[:, perm], x[:, perm])
    assert_close(out_p, out[:, perm])


def test_bad_settings_raise():
    with pytest.raises(ValueError, match=r"num_heads=3 must divide num_hiddens=16"):
        MultiHeadAttention(16, 3)
    with pytest.raises(ValueError, match=r"valid: dot, scaled_dot"):
        MultiHeadAttention(16, 4, score="nope")
    with pytest.raises(ValueError, match=r"queries must be \(B, T, d\); got \(3, 16\)"):
        MultiHeadAttention(16, 4)(torch.randn(3, 16), torch.randn(1, 3, 16), torch.randn(1, 3, 16))
