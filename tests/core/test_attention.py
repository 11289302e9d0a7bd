"""Attention: pooling, fused vs plain path, hard attention, decoding, equivariance, errors."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from attnrun.core import Attention, HardNormaliser
from attnrun.errors import ConfigError

PROPERTY = settings(max_examples=20, deadline=None, derandomize=True)


def qkv(b=2, tq=3, tk=5, d=4, dv=6, requires_grad=False):
    return tuple(
        torch.randn(*s, requires_grad=requires_grad) for s in ((b, tq, d), (b, tk, d), (b, tk, dv))
    )


@pytest.mark.parametrize(
    "score", ["dot", "scaled_dot", "cosine", "general", "additive", "location"]
)
def test_context_is_weights_times_values(score):
    q, k, v = qkv()
    ctx, w = Attention(score, 4, 4, num_hiddens=8)(q, k, v, torch.tensor([2, 5]))
    assert w.shape == (2, 3, 5) and ctx.shape == (2, 3, 6)
    assert_close(ctx, w @ v)
    assert (w[0, :, 2:] == 0).all()


@pytest.mark.parametrize("score", ["dot", "scaled_dot", "cosine", "general"])
@pytest.mark.parametrize("masking", ["none", "lens", "lens_per_query", "mask_with_empty_row"])
def test_fused_path_matches_plain_path_with_gradients(score, masking):
    q, k, v = qkv(requires_grad=True)
    lens = mask = None
    if masking == "lens":
        lens = torch.tensor([2, 5])
    elif masking == "lens_per_query":
        lens = torch.tensor([[1, 2, 3], [5, 4, 0]])
    elif masking == "mask_with_empty_row":
        mask = torch.rand(2, 3, 5) > 0.4
        mask[1, 2] = False
    torch.manual_seed(1)
    plain = Attention(score, 4, backend="plain")
    fused = Attention(score, 4, backend="fused")
    fused.load_state_dict(plain.state_dict())
    ctx_p, w = plain(q, k, v, lens, mask=mask)
    ctx_f, none = fused(q, k, v, lens, need_weights=False, mask=mask)
    assert none is None
    assert_close(ctx_f, ctx_p)
    grads_p = torch.autograd.grad(ctx_p.square().sum(), (q, k, v))
    grads_f = torch.autograd.grad(ctx_f.square().sum(), (q, k, v))
    for gp, gf in zip(grads_p, grads_f, strict=True):
        assert torch.isfinite(gf).all()
        assert_close(gf, gp)


@pytest.mark.parametrize("score", ["dot", "scaled_dot", "cosine", "general"])
@pytest.mark.parametrize("masking", ["none", "lens_with_empty_row", "lens_per_query", "mask"])
@pytest.mark.parametrize("heads", [False, True])
def test_weights_path_matches_plain_path_to_second_order(score, masking, heads):
    """The one-Function weights path (auto backend) against autograd's composition (plain)."""
    torch.manual_seed(2)
    shape = (2, 3) if heads else (2,)
    q = torch.randn(*shape, 3, 4, dtype=torch.float64, requires_grad=True)
    k = torch.randn(*shape, 5, 4, dtype=torch.float64, requires_grad=True)
    v = torch.randn(*shape, 5, 6, dtype=torch.float64, requires_grad=True)
    lens = mask = None
    if masking == "lens_with_empty_row":
        lens = torch.tensor([0, 3])
    elif masking == "lens_per_query":
        lens = torch.tensor([[1, 2, 3], [5, 4, 0]])
    elif masking == "mask":
        mask = torch.rand(*shape[:1], *(1,) * len(shape), 5) > 0.3  # (B, [1,] 1, Tk)
    plain = Attention(score, 4, backend="plain").double()
    auto = Attention(score, 4).double()
    auto.load_state_dict(plain.state_dict())
    outs_p, outs_a = plain(q, k, v, lens, mask=mask), auto(q, k, v, lens, mask=mask)
    for p, a in zip(outs_p, outs_a, strict=True):
        assert_close(a, p)
    seeds = [torch.randn_like(t) for t in outs_p]
    grads_p = torch.autograd.grad(outs_p, (q, k, v), seeds)
    grads_a = torch.autograd.grad(outs_a, (q, k, v), seeds)
    for gp, ga in zip(grads_p, grads_a, strict=True):
        assert_close(ga, gp)
    if masking == "lens_with_empty_row":
        assert (outs_a[1][0] == 0).all() and (grads_a[0][0] == 0).all()

    def attend(q, k, v):
        return auto(q, k, v, lens, mask=mask)

    if score == "scaled_dot":  # the slow checks once per masking; the Function is the same
        assert torch.autograd.gradcheck(attend, (q, k, v))
        assert torch.autograd.gradgradcheck(attend, (q, k, v))


def test_auto_backend_returns_weights_when_asked():
    q, k, v = qkv()
    ctx, w = Attention("dot", 4)(q, k, v)
    assert w is not None
    ctx2, w2 = Attention("dot", 4)(q, k, v, need_weights=False)
    assert w2 is None
    assert_close(ctx2, ctx)


def test_dropout_applies_to_pooling_only_and_eval_is_deterministic():
    q, k, v = qkv()
    attn = Attention("dot", 4, dropout=0.5)
    ctx, w = attn(q, k, v)
    assert_close(w.sum(-1), torch.ones(2, 3))  # returned weights are pre-dropout
    assert not torch.allclose(ctx, w @ v)
    attn.eval()
    ctx, w = attn(q, k, v)
    assert_close(ctx, w @ v)
    assert_close(attn(q, k, v, need_weights=False)[0], ctx)


def test_autocast_bfloat16_forward():
    q, k, v = qkv()
    lens = torch.tensor([0, 3])
    for need_weights in (True, False):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            ctx, _ = Attention("scaled_dot", 4)(q, k, v, lens, need_weights=need_weights)
        assert torch.isfinite(ctx).all() and (ctx[0] == 0).all()


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_cpu_autocast_takes_the_plain_path_and_float32_the_fused_one(monkeypatch, dropout):
    """Without the weights, a float32 call goes through SDPA (``fused._sdpa``) and a call under
    CPU autocast (the bf16 training step) does not: there SDPA's CPU kernels are slower than the
    plain path (:func:`~attnrun.core.fused.prefer_fused`). Both give the same context (dropout
    off). Planted bug caught: the old rule, SDPA whenever the weights are not needed."""
    from attnrun.core import fused

    calls = []
    real = fused._sdpa

    def counting(*args, **kwargs):
        calls.append(torch.is_autocast_enabled("cpu"))
        return real(*args, **kwargs)

    monkeypatch.setattr(fused, "_sdpa", counting)
    q, k, v = qkv()
    lens = torch.tensor([2, 5])
    attn = Attention("scaled_dot", 4, dropout=dropout).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        attn(q, k, v, lens, need_weights=False)
    attn(q, k, v, lens, need_weights=False)
    assert calls == [False]
    attn.eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16, _ = attn(q, k, v, lens, need_weights=False)
    assert_close(bf16.float(), attn(q, k, v, lens, need_weights=False)[0], atol=3e-2, rtol=3e-2)


def test_head_dimensions_pass_through():
    q, k, v = (torch.randn(2, 3, n, 4) for n in (5, 7, 7))
    ctx, w = Attention("scaled_dot", 4)(q, k, v, torch.tensor([3, 7]))
    assert ctx.shape == (2, 3, 5, 4) and w.shape == (2, 3, 5, 7)
    assert (w[0, ..., 3:] == 0).all()


def test_decoder_steps_with_projected_keys_match_one_call():
    q, k, v = qkv(tq=4)
    lens = torch.tensor([3, 5])
    attn = Attention("additive", 4, 4, num_hiddens=8)
    ctx, w = attn(q, k, v, lens)
    proj = attn.project_keys(k)
    for t in range(4):
        ctx_t, w_t = attn(q[:, t : t + 1], k, v, lens, projected_keys=proj)
        assert_close(ctx_t[:, 0], ctx[:, t])
        assert_close(w_t[:, 0], w[:, t])


def test_hard_attention_eval_is_argmax_one_hot():
    q, k, v = qkv()
    lens = torch.tensor([2, 5])
    soft = Attention("general", 4)
    hard = Attention("general", 4, normaliser="hard").eval()
    hard.load_state_dict(soft.state_dict())
    _, w_soft = soft(q, k, v, lens)
    ctx, w = hard(q, k, v, lens)
    expected = torch.nn.functional.one_hot(w_soft.argmax(-1), 5).float()
    assert_close(w, expected)
    assert_close(ctx, expected @ v)


def test_hard_attention_training_samples_from_the_weights_with_gradients():
    q, k, v = qkv(b=1, tq=1, tk=4)
    attn = Attention("general", 4, normaliser="hard", normaliser_options={"tau": 0.5})
    lens = torch.tensor([3])
    soft = Attention("general", 4)
    soft.load_state_dict(attn.state_dict())
    probs = soft(q, k, v, lens)[1].detach()[0, 0]
    counts = torch.zeros(4)
    for _ in range(2000):
        _, w = attn(q, k, v, lens)
        assert ((w == 0) | (w == 1)).all() and w.sum() == 1
        counts += w.detach()[0, 0]
    assert counts[3] == 0  # masked: never sampled
    assert_close(counts / counts.sum(), probs, atol=0.04, rtol=0)
    ctx, _ = attn(q, k, v, lens)
    ctx.sum().backward()
    assert attn.score.W.weight.grad.abs().sum() > 0  # straight-through gradient


def test_hard_attention_empty_rows_are_zero():
    q, k, v = qkv()
    for train in (True, False):
        attn = Attention("dot", 4, normaliser=HardNormaliser()).train(train)
        ctx, w = attn(q, k, v, torch.tensor([0, 2]))
        assert (w[0] == 0).all() and (ctx[0] == 0).all() and (w[1, :, 2:] == 0).all()


@PROPERTY
@given(t=st.integers(2, 7), seed=st.integers(0, 2**16), score=st.sampled_from(["dot", "cosine"]))
def test_self_attention_is_permutation_equivariant(t, seed, score):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, t, 4, generator=g)
    perm = torch.randperm(t, generator=g)
    attn = Attention(score, 4)
    ctx, w = attn(x, x, x)
    ctx_p, w_p = attn(x[:, perm], x[:, perm], x[:, perm])
    assert_close(ctx_p, ctx[:, perm])
    assert_close(w_p, w[:, perm][:, :, perm])


@PROPERTY
@given(seed=st.integers(0, 2**16), tk=st.integers(1, 6), score=st.sampled_from(["additive", "dot"]))
def test_weights_are_a_distribution_over_valid_keys(seed, tk, score):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(3, n, 4, generator=g) for n in (2, tk, tk))
    lens = torch.randint(0, tk + 1, (3,), generator=g)
    _, w = Attention(score, 4)(q, k, v, lens)
    assert (w >= 0).all()
    for b in range(3):
        assert (w[b, :, lens[b] :] == 0).all()
        expected = torch.full((2,), 1.0 if lens[b] > 0 else 0.0)
        assert_close(w[b].sum(-1), expected)


def test_bad_settings_raise_value_errors():
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"\(2, 3, 4\), \(2, 5, 4\), \(2, 4, 6\)"):
        Attention("dot", 4)(q, k, v[:, :4])
    with pytest.raises(ValueError, match=r"same number of dimensions"):
        Attention("dot", 4)(q[0], k, v)
    with pytest.raises(ValueError, match="valid: dot, scaled_dot"):
        Attention("nope", 4)
    with pytest.raises(ValueError, match="valid: soft, hard"):
        Attention("dot", 4, normaliser="gentle")
    with pytest.raises(ValueError, match="valid: global, local_m, local_p"):
        Attention("dot", 4, window="somewhere")
    with pytest.raises(ValueError, match="valid: auto, fused, plain"):
        Attention("dot", 4, backend="triton")
    with pytest.raises(ValueError, match=r"dropout"):
        Attention("dot", 4, dropout=1.5)
    with pytest.raises(ConfigError, match="tau"):
        Attention("dot", 4, normaliser="hard", normaliser_options={"tau": 0})
    with pytest.raises(ValueError, match=r"\[0, Tk=5\]"):
        Attention("dot", 4)(q, k, v, torch.tensor([6, 1]))


@pytest.mark.parametrize("heads", [False, True])
@pytest.mark.parametrize("need_weights", [True, False])
def test_ragged_row_by_row_path_matches_plain_to_second_order(monkeypatch, heads, need_weights):
    """Valid lengths with enough padding run row by row on each row's valid keys only
    (``_RaggedDotAttention``); forced on here for a small shape, it must equal the plain path,
    zero-length rows included, and support double backward."""
    import attnrun.core.fused as fused

    monkeypatch.setattr(fused, "prefer_ragged", lambda *a, **kw: True)
    torch.manual_seed(3)
    shape = (3, 2) if heads else (3,)
    q = torch.randn(*shape, 4, 5, dtype=torch.float64, requires_grad=True)
    k = torch.randn(*shape, 6, 5, dtype=torch.float64, requires_grad=True)
    v = torch.randn(*shape, 6, 2, dtype=torch.float64, requires_grad=True)
    lens = torch.tensor([0, 6, 2])
    plain = Attention("scaled_dot", 5, backend="plain").double()
    auto = Attention("scaled_dot", 5).double()
    ctx_a, w_a = auto(q, k, v, lens, need_weights=need_weights)
    assert type(ctx_a.grad_fn).__name__ == "_RaggedDotAttentionBackward"
    ctx_p, w_p = plain(q, k, v, lens)
    assert_close(ctx_a, ctx_p)
    assert (w_a is None) == (not need_weights)
    if need_weights:
        assert_close(w_a, w_p)
        assert (w_a[0] == 0).all() and (w_a[2, ..., 2:] == 0).all()
    outs_a = (ctx_a, w_a) if need_weights else (ctx_a,)
    outs_p = (ctx_p, w_p) if need_weights else (ctx_p,)
    seeds = [torch.randn_like(t) for t in outs_p]
    for ga, gp in zip(
        torch.autograd.grad(outs_a, (q, k, v), seeds),
        torch.autograd.grad(outs_p, (q, k, v), seeds),
        strict=True,
    ):
        assert_close(ga, gp)

    def attend(q, k, v):
        out = auto(q, k, v, lens, need_weights=need_weights)
        return out if need_weights else out[0]

    assert torch.autograd.gradcheck(attend, (q, k, v))
    assert torch.autograd.gradgradcheck(attend, (q, k, v))


def test_ragged_path_is_chosen_only_for_long_padded_rows():
    attn = Attention("scaled_dot", 8)
    q, k, v = qkv(b=2, tq=256, tk=256, d=8, dv=8, requires_grad=True)
    padded, full = torch.tensor([40, 100]), torch.tensor([256, 256])
    assert type(attn(q, k, v, padded)[0].grad_fn).__name__ == "_RaggedDotAttentionBackward"
    assert type(attn(q, k, v, full)[0].grad_fn).__name__ == "_DotAttentionBackward"
    small = qkv(b=2, tq=16, tk=16, d=8, dv=8, requires_grad=True)
    assert type(attn(*small, torch.tensor([2, 3]))[0].grad_fn).__name__ == "_DotAttentionBackward"


def _plain_dot_attention(q, k, v, keep, scale):
    """``softmax(scale · q kᵀ)`` over the kept keys (``-inf`` fill, empty rows 0), then ``w v``:
    the formula composed of autograd's own ops, independent of attnrun's Functions."""
    keep = keep.expand(*q.shape[:-1], k.shape[-2])
    empty = ~keep.any(-1, keepdim=True)
    s = (scale * q @ k.transpose(-1, -2)).masked_fill(~keep, float("-inf")).masked_fill(empty, 0)
    w = torch.softmax(s, -1).masked_fill(empty, 0.0)
    return w @ v, w


def _attention_second_order(attend, inputs, seeds, probes):
    """First derivatives ``∂(q, k, v)`` of ``outputs · seeds`` built with create_graph, then the
    gradients of ``Σ ∂x · probe_x`` wrt the inputs and wrt the seeds (the upstream gradients)."""
    outs = attend(*inputs)
    first = torch.autograd.grad(outs, inputs, seeds, create_graph=True)
    total = sum((f * p).sum() for f, p in zip(first, probes, strict=True))
    return (*first, *torch.autograd.grad(total, (*inputs, *seeds)))


@pytest.mark.parametrize("path", ["dot_function", "ragged_function"])
@pytest.mark.parametrize("heads", [False, True])
def test_dot_functions_double_backward_matches_the_plain_formula(monkeypatch, path, heads):
    """The dot-attention Functions' second derivatives equal autograd's composition of the formula.

    Guards against a wrong double-backward formula in ``_DotAttention`` / ``_RaggedDotAttention``
    (their backward is differentiable when the gradient's graph is built, through
    ``masking.softmax_backward``): gradgradcheck and the plain-backend comparison share that code
    and pass such a bug; here the values — first derivatives under create_graph and the
    derivatives of their probe-weighted sum wrt q, k, v and the upstream gradients of context and
    weights — are checked against ``torch.softmax`` of the ``-inf``-filled scores.
    """
    import attnrun.core.fused as fused

    monkeypatch.setattr(fused, "prefer_ragged", lambda *a, **kw: path == "ragged_function")
    torch.manual_seed(4)
    shape = (3, 2) if heads else (3,)
    q = torch.randn(*shape, 4, 5, dtype=torch.float64, requires_grad=True)
    k = torch.randn(*shape, 6, 5, dtype=torch.float64, requires_grad=True)
    v = torch.randn(*shape, 6, 2, dtype=torch.float64, requires_grad=True)
    lens = torch.tensor([0, 6, 2])
    keep = (torch.arange(6) < lens.reshape(3, *(1,) * len(shape))).unsqueeze(-2)  # (B,[1,]1,Tk)
    attn = Attention("scaled_dot", 5).double()
    ctx, w = attn(q, k, v, lens)
    expected = "_RaggedDotAttentionBackward" if path == "ragged_function" else "_DotAttention"
    assert type(ctx.grad_fn).__name__.startswith(expected)
    seeds = [torch.randn_like(ctx, requires_grad=True), torch.randn_like(w, requires_grad=True)]
    probes = [torch.randn_like(x) for x in (q, k, v)]
    ours = _attention_second_order(lambda *x: attn(*x, lens), (q, k, v), seeds, probes)
    ref = _attention_second_order(
        lambda *x: _plain_dot_attention(*x, keep, attn.score.scale), (q, k, v), seeds, probes
    )
    for a, b in zip(ours, ref, strict=True):
        assert torch.isfinite(a).all()
        assert_close(a, b)
    assert all(x.abs().sum() > 0 for x in ours[3:])  # every second-order term is non-trivial
