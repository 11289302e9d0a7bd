"""The fused vocabulary projection + cross-entropy against the composed PyTorch ops."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attnrun.translate.loss import linear_cross_entropy


def _inputs(n=10, h=6, v=13, dtype=torch.float32, bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, h, generator=g, dtype=dtype).requires_grad_()
    w = torch.randn(v, h, generator=g, dtype=dtype).requires_grad_()
    b = torch.randn(v, generator=g, dtype=dtype).requires_grad_() if bias else None
    y = torch.randint(0, v, (n,), generator=g)
    return x, w, b, y


def _grads(loss, params):
    return torch.autograd.grad(loss, [p for p in params if p is not None])


@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("chunk", [3, 10, 512])
def test_matches_linear_then_cross_entropy(eps, bias, chunk):
    x, w, b, y = _inputs(bias=bias)
    ours = linear_cross_entropy(x, w, b, y, eps, chunk_rows=chunk)
    ref = F.cross_entropy(F.linear(x, w, b), y, label_smoothing=eps)
    torch.testing.assert_close(ours, ref)
    for a, r in zip(_grads(ours * 2.5, [x, w, b]), _grads(ref * 2.5, [x, w, b])):
        torch.testing.assert_close(a, r)


def test_gradcheck_float64():
    x, w, b, y = _inputs(n=5, h=3, v=4, dtype=torch.float64)
    torch.autograd.gradcheck(
        lambda x, w, b: linear_cross_entropy(x, w, b, y, 0.2, chunk_rows=2), (x, w, b)
    )


def test_bf16_products_stay_close_to_autocast():
    x, w, b, y = _inputs(n=40, h=32, v=50)
    ours = linear_cross_entropy(x, w, b, y, 0.1, compute_dtype=torch.bfloat16, chunk_rows=16)
    with torch.autocast("cpu", torch.bfloat16):
        logits = F.linear(x, w, b)
    ref = F.cross_entropy(logits.float(), y, label_smoothing=0.1)
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, ref, rtol=2e-2, atol=2e-2)
    gx, gw, _ = _grads(ours, [x, w, b])
    rx, rw, _ = _grads(ref, [x, w, b])
    assert gx.dtype == x.dtype and gw.dtype == w.dtype
    torch.testing.assert_close(gx, rx, rtol=5e-2, atol=5e-3)
    torch.testing.assert_close(gw, rw, rtol=5e-2, atol=5e-3)


def test_tied_weight_gets_both_gradients():
    """With the output layer tied to an embedding, the weight's gradient is the sum of both."""
    x, w, _, y = _inputs(bias=False)
    ids = torch.tensor([1, 2, 2, 5])
    loss = linear_cross_entropy(x, w, None, y, 0.1) + w[ids].sum()
    ref = F.cross_entropy(F.linear(x, w), y, label_smoothing=0.1) + w[ids].sum()
    torch.testing.assert_close(_grads(loss, [w])[0], _grads(ref, [w])[0])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((torch.zeros(3, 4), torch.zeros(5, 3), None, torch.zeros(3, dtype=torch.long)), "(V, H)"),
        ((torch.zeros(3, 4), torch.zeros(5, 4), None, torch.zeros(2, dtype=torch.long)), "target"),
        ((torch.zeros(0, 4), torch.zeros(5, 4), None, torch.zeros(0, dtype=torch.long)), "N = 0"),
    ],
)
def test_bad_shapes_are_value_errors(args, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        linear_cross_entropy(*args)


@pytest.mark.parametrize("n", [1, 63, 64, 65, 130])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_padding_rows_change_nothing(n, dtype):
    """Chunks are padded with zero rows to a multiple of ``ROW_GRANULE``: the loss and every
    gradient still equal the composed ops at token counts on both sides of the granule.
    Guards: the padding rows' loss counted, their softmax left in ∂b, ∂x rows shifted."""
    x, w, b, y = _inputs(n=n, h=8, v=29, seed=n)
    ours = linear_cross_entropy(x, w, b, y, 0.1, compute_dtype=dtype, chunk_rows=128)
    with torch.autocast("cpu", torch.bfloat16, enabled=dtype == torch.bfloat16):
        logits = F.linear(x, w, b)
    ref = F.cross_entropy(logits.float(), y, label_smoothing=0.1)
    tol = {} if dtype == torch.float32 else {"rtol": 2e-2, "atol": 2e-2}
    torch.testing.assert_close(ours, ref, **tol)
    for a, r in zip(_grads(ours, [x, w, b]), _grads(ref, [x, w, b])):
        torch.testing.assert_close(a, r, **tol)


def test_every_product_has_a_row_count_of_the_granule():
    """The matrix products see row counts that are multiples of ``ROW_GRANULE`` whatever the
    batch's token count, so oneDNN meets a handful of shapes instead of compiling a kernel for a
    new one (~20 ms) on most steps. Guards: the last chunk left unpadded."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from attnrun.translate.loss import ROW_GRANULE

    class Shapes(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.dims: set[int] = set()  # every dimension of every product's operands

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func in (torch.ops.aten.mm.default, torch.ops.aten.addmm.default):
                self.dims.update(args[-2].shape + args[-1].shape)
            return func(*args, **(kwargs or {}))

    for n in (37, 600):
        x, w, b, y = _inputs(n=n, h=8, v=300)
        with Shapes() as seen:
            linear_cross_entropy(x, w, b, y, 0.1, compute_dtype=torch.bfloat16, chunk_rows=512)
        token_dims = seen.dims - {8, 300}  # all but H and V: the chunk's (padded) row count
        assert token_dims and all(d % ROW_GRANULE == 0 for d in token_dims), (n, seen.dims)
