"""masked_softmax: masks (True = keep), valid lengths, empty rows, autocast, errors."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from attnrun.core.masking import keep_mask, masked_softmax, valid_lens_mask
from attnrun.errors import ConfigError

PROPERTY = settings(max_examples=25, deadline=None, derandomize=True)


def reference(scores, keep):
    """Row by row: softmax over the kept entries, zero elsewhere (and for empty rows)."""
    out = torch.zeros_like(scores)
    keep = keep.expand(scores.shape)
    flat_s, flat_k, flat_o = (x.reshape(-1, scores.shape[-1]) for x in (scores, keep, out))
    for i in range(flat_s.shape[0]):
        idx = flat_k[i].nonzero().flatten()
        if len(idx):
            e = torch.exp(flat_s[i, idx] - flat_s[i, idx].max())
            flat_o[i, idx] = e / e.sum()
    return flat_o.reshape(scores.shape)


def test_no_mask_is_softmax():
    s = torch.randn(2, 3, 4)
    assert_close(masked_softmax(s), torch.softmax(s, -1))


def test_valid_lens_per_row():
    s = torch.randn(2, 3, 4)
    w = masked_softmax(s, torch.tensor([1, 3]))
    keep = torch.zeros(2, 3, 4, dtype=torch.bool)
    keep[0, :, :1] = True
    keep[1, :, :3] = True
    assert_close(w, reference(s, keep))


def test_valid_lens_per_query():
    s = torch.randn(2, 3, 4)
    lens = torch.tensor([[1, 2, 4], [0, 3, 1]])
    keep = torch.arange(4) < lens[..., None]
    assert_close(masked_softmax(s, lens), reference(s, keep))


def test_valid_lens_broadcast_over_heads():
    s = torch.randn(2, 5, 3, 4)  # (B, heads, Tq, Tk)
    lens = torch.tensor([2, 4])
    w = masked_softmax(s, lens)
    for h in range(5):
        assert_close(w[:, h], masked_softmax(s[:, h], lens))
    lens2 = torch.tensor([[1, 2, 3], [4, 0, 2]])
    w2 = masked_softmax(s, lens2)
    for h in range(5):
        assert_close(w2[:, h], masked_softmax(s[:, h], lens2))


def test_bool_mask_true_means_keep_and_combines_with_lens():
    s = torch.randn(2, 3, 4)
    mask = torch.tensor([True, False, True, True])  # broadcasts to (B, Tq, Tk)
    w = masked_softmax(s, torch.tensor([3, 4]), mask=mask)
    keep = mask & (torch.arange(4) < torch.tensor([3, 4])[:, None, None])
    assert_close(w, reference(s, keep))
    assert (w[..., 1] == 0).all()


def test_fully_masked_rows_are_zero_without_nan_in_grad():
    s = torch.randn(2, 3, 4, requires_grad=True)
    w = masked_softmax(s, torch.tensor([0, 2]))
    assert (w[0] == 0).all()
    (w * torch.randn_like(w)).sum().backward()
    assert torch.isfinite(s.grad).all()
    assert (s.grad[0] == 0).all()
    mask = torch.zeros(2, 3, 4, dtype=torch.bool)
    assert (masked_softmax(s, mask=mask) == 0).all()


def test_autocast_bfloat16_cpu():
    s = torch.randn(2, 3, 8)
    lens = torch.tensor([0, 5])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores = s @ torch.eye(8)  # a bf16 matmul output, as inside attention
        w = masked_softmax(scores, lens)
    assert w.dtype == torch.bfloat16
    assert not torch.isnan(w).any()
    assert (w[0] == 0).all() and (w[1, :, 5:] == 0).all()
    assert_close(w.float(), masked_softmax(s, lens), atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_low_and_high_precision_inputs(dtype):
    s = (torch.randn(2, 3, 5) * 30).to(dtype)
    w = masked_softmax(s, torch.tensor([0, 3]))
    assert w.dtype == dtype and not torch.isnan(w).any()
    assert_close(w[1].sum(-1).float(), torch.ones(3), atol=1e-2, rtol=0)


@pytest.mark.parametrize(
    "lens, match",
    [
        (torch.tensor([5, 1]), r"\[0, Tk=4\].*\(2, 3, 4\)"),
        (torch.tensor([-1, 1]), r"\[0, Tk=4\]"),
        (torch.tensor([1, 1, 1]), r"\(3,\).*\(2, 3, 4\)"),
        (torch.ones(2, 4), r"\(2, 4\).*\(B, Tq\)=\(2, 3\)"),
    ],
)
def test_bad_valid_lens_raise_with_shapes(lens, match):
    with pytest.raises(ValueError, match=match):
        masked_softmax(torch.randn(2, 3, 4), lens)


def test_bad_masks_and_scores_raise():
    with pytest.raises(ConfigError, match=r"\(5,\).*\(2, 3, 4\)"):
        masked_softmax(torch.randn(2, 3, 4), mask=torch.ones(5, dtype=torch.bool))
    with pytest.raises(ConfigError, match="boolean"):
        masked_softmax(torch.randn(2, 3, 4), mask=torch.ones(4))
    with pytest.raises(ConfigError, match=r"\(B, Tq, Tk\).*\(3, 4\)"):
        valid_lens_mask(torch.tensor([1]), (3, 4))


def test_keep_mask_none_without_masks():
    assert keep_mask((2, 3, 4)) is None


@PROPERTY
@given(
    b=st.integers(1, 3),
    tq=st.integers(1, 4),
    tk=st.integers(1, 6),
    per_query=st.booleans(),
    data=st.data(),
)
def test_properties(b, tq, tk, per_query, data):
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 2**16)))
    s = torch.randn(b, tq, tk, generator=g) * 5
    shape = (b, tq) if per_query else (b,)
    lens = torch.randint(0, tk + 1, shape, generator=g)
    w = masked_softmax(s, lens)
    keep = valid_lens_mask(lens, s.shape).expand_as(s)
    assert (w >= 0).all() and not torch.isnan(w).any()
    assert (w[~keep] == 0).all()
    sums = w.sum(-1)
    nonempty = keep.any(-1)
    assert_close(sums[nonempty], torch.ones_like(sums[nonempty]))
    assert (sums[~nonempty] == 0).all()
    assert_close(w, reference(s, keep))


def plain_masked_softmax(scores, keep):
    """The formula composed of autograd's own ops: ``softmax(s.masked_fill(~keep, -inf))``, with
    rows that keep nothing set to 0 (their scores replaced by 0 first, so no NaN appears)."""
    keep = keep.expand(scores.shape)
    empty = ~keep.any(-1, keepdim=True)
    filled = scores.masked_fill(~keep, float("-inf")).masked_fill(empty, 0.0)
    return torch.softmax(filled, -1).masked_fill(empty, 0.0)


def _second_order(softmax, scores, upstream, probe):
    """``∂s = (∂softmax/∂s)ᵀ g`` built with create_graph, then the gradients of ``(∂s · probe)``
    with respect to the scores (the Hessian term) and to the upstream gradient ``g``."""
    (grad_s,) = torch.autograd.grad(softmax(scores), scores, upstream, create_graph=True)
    second = torch.autograd.grad((grad_s * probe).sum(), (scores, upstream))
    return (grad_s, *second)


@pytest.mark.parametrize("masking", ["none", "lens_with_empty_row", "lens_per_query", "mask"])
def test_double_backward_matches_the_plain_formula(masking):
    """Second derivatives of masked_softmax equal those of autograd's composition of the formula.

    Guards against a wrong double-backward formula (e.g. a wrong term in the differentiable branch
    of ``masking.softmax_backward``, the one used when the graph of the gradient is built):
    gradgradcheck compares the Function with itself and passes such a bug; this compares values —
    the create_graph gradient, its derivative wrt the scores and wrt the upstream gradient — with
    the plain formula's, masked positions and fully masked rows included.
    """
    s = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
    probe = torch.randn(2, 3, 5, dtype=torch.float64)
    lens = mask = None
    if masking == "lens_with_empty_row":
        lens = torch.tensor([0, 3])
    elif masking == "lens_per_query":
        lens = torch.tensor([[1, 2, 5], [5, 4, 0]])
    elif masking == "mask":
        mask = torch.rand(2, 3, 5) > 0.4
        mask[1, 2] = False
    keep = keep_mask(s.shape, lens, mask)
    keep = torch.ones(s.shape, dtype=torch.bool) if keep is None else keep
    ours = _second_order(lambda x: masked_softmax(x, lens, mask=mask), s, g, probe)
    ref = _second_order(lambda x: plain_masked_softmax(x, keep), s, g, probe)
    for a, b in zip(ours, ref, strict=True):
        assert torch.isfinite(a).all()
        assert_close(a, b)
    assert ours[1].abs().sum() > 0 and ours[2].abs().sum() > 0  # the check is not vacuous
