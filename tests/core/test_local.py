"""Local attention windows (Luong 2015): local-m and local-p, per step and over a whole target."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from attnrun.core import (
    Attention,
    LocalPredictiveWindow,
    gaussian_weights,
    masked_softmax,
    query_positions,
    window_mask,
)
from attnrun.errors import ConfigError

PROPERTY = settings(max_examples=25, deadline=None, derandomize=True)


def test_window_mask_and_gaussian_pieces():
    centers = torch.tensor([[0.0, 2.5]])
    m = window_mask(centers, 6, 1)
    assert m.tolist() == [[[1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0]]]
    g = gaussian_weights(centers, 6, sigma=2.0)
    s = torch.arange(6.0)
    assert_close(g[0, 1], torch.exp(-((s - 2.5) ** 2) / 8.0))


def test_query_positions_forms():
    shape = (2, 3, 7)
    assert query_positions(None, shape).tolist() == [[0.0, 1.0, 2.0]]
    assert query_positions(4, shape).tolist() == [[4.0, 5.0, 6.0]]
    per_row = torch.tensor([[1, 2, 3], [0, 0, 0]])
    assert query_positions(per_row, shape).shape == (2, 3)
    assert query_positions(None, (2, 8, 3, 7)).shape == (1, 1, 3)
    with pytest.raises(ConfigError, match=r"\(4,\).*\(2, 3, 7\)"):
        query_positions(torch.arange(4), shape)


def test_local_m_matches_masked_softmax_over_the_window():
    q, k, v = torch.randn(2, 4, 3), torch.randn(2, 9, 3), torch.randn(2, 9, 5)
    lens = torch.tensor([9, 6])
    attn = Attention("dot", 3, window="local_m", window_options={"half_width": 2})
    ctx, w = attn(q, k, v, lens)
    t = torch.arange(4)[:, None]
    keep = (torch.arange(9) - t).abs() <= 2
    expected = masked_softmax(q @ k.transpose(1, 2), lens, mask=keep)
    assert_close(w, expected)
    assert_close(ctx, expected @ v)
    # the fused path takes the same window
    assert_close(attn(q, k, v, lens, need_weights=False)[0], ctx)


@pytest.mark.parametrize("window", ["local_m", "local_p"])
def test_per_step_decoding_matches_whole_target(window):
    q, k, v = torch.randn(2, 5, 3), torch.randn(2, 8, 3), torch.randn(2, 8, 4)
    lens = torch.tensor([8, 5])
    attn = Attention("general", 3, window=window, window_options={"half_width": 2})
    ctx, w = attn(q, k, v, lens)
    proj = attn.project_keys(k)
    for t in range(5):
        ctx_t, w_t = attn(q[:, t : t + 1], k, v, lens, positions=t, projected_keys=proj)
        assert_close(w_t[:, 0], w[:, t])
        assert_close(ctx_t[:, 0], ctx[:, t])
    # per-row steps, e.g. rows of a batch at different decoder steps
    steps = torch.tensor([[1], [3]])
    _, w_rows = attn(q[:, 1:2], k, v, lens, positions=steps)
    if window == "local_m":
        assert (w_rows[1, 0, :1] == 0).all() and (w_rows[1, 0, 1:6] > 0).any()


def test_local_p_formula_and_gradient():
    torch.manual_seed(3)
    q, k, v = torch.randn(2, 3, 4), torch.randn(2, 10, 4), torch.randn(2, 10, 2)
    lens = torch.tensor([10, 7])
    D = 2
    window = LocalPredictiveWindow(4, half_width=D)
    attn = Attention("dot", 4, window=window)
    ctx, w = attn(q, k, v, lens)
    Wp, vp = window.W_p.weight, window.v_p.weight[0]
    S = lens[:, None].float()
    p = S * torch.sigmoid(torch.tanh(q @ Wp.T) @ vp)  # (B, Tq), Luong eq. 9
    s = torch.arange(10.0)
    keep = (s - p[..., None]).abs() <= D
    align = masked_softmax(q @ k.transpose(1, 2), lens, mask=keep)
    expected = align * torch.exp(-((s - p[..., None]) ** 2) / (2 * (D / 2) ** 2))  # eq. 10
    assert_close(w, expected.detach())
    assert_close(ctx, (expected @ v).detach())
    ctx.sum().backward()
    assert window.W_p.weight.grad.abs().sum() > 0 and window.v_p.weight.grad.abs().sum() > 0


def test_local_p_takes_the_plain_path_even_without_weights():
    q, k, v = torch.randn(2, 3, 4), torch.randn(2, 10, 4), torch.randn(2, 10, 2)
    attn = Attention("dot", 4, window="local_p", window_options={"half_width": 2})
    ctx, w = attn(q, k, v)
    assert_close(attn(q, k, v, need_weights=False)[0], ctx)


@PROPERTY
@given(
    window=st.sampled_from(["local_m", "local_p"]),
    half_width=st.integers(1, 4),
    tq=st.integers(1, 5),
    tk=st.integers(1, 12),
    offset=st.integers(0, 10),
    seed=st.integers(0, 2**16),
)
def test_zero_weight_outside_the_window(window, half_width, tq, tk, offset, seed):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(2, n, 3, generator=g) for n in (tq, tk, tk))
    lens = torch.randint(0, tk + 1, (2,), generator=g)
    attn = Attention("scaled_dot", 3, window=window, window_options={"half_width": half_width})
    _, w = attn(q, k, v, lens, positions=offset)
    if window == "local_m":
        centers = torch.arange(offset, offset + tq).float()[None, :].expand(2, tq)
    else:
        centers = attn.window.centers(q, lens[:, None].float())
    s = torch.arange(tk)
    outside = ((s - centers[..., None]).abs() > half_width) | (s >= lens[:, None, None])
    assert (w[outside] == 0).all()
    assert (w >= 0).all() and not torch.isnan(w).any()
    if window == "local_m":  # softmax over the window: rows with anything kept sum to one
        kept = (~outside).any(-1)
        assert_close(w.sum(-1)[kept], torch.ones_like(w.sum(-1)[kept]))


def test_window_settings_raise():
    with pytest.raises(ConfigError, match="half_width"):
        Attention("dot", 3, window="local_m", window_options={"half_width": -1})
    with pytest.raises(ConfigError, match="> 0"):
        Attention("dot", 3, window="local_p", window_options={"half_width": 0})
