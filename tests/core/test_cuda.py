"""The core on CUDA tensors: the fused path, masks and empty rows. Runs only with a GPU."""

import pytest
import torch
from torch.testing import assert_close

from attnrun.core import Attention, MultiHeadAttention, masked_softmax

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("score", ["dot", "scaled_dot", "general", "cosine", "additive"])
def test_cuda_matches_cpu_with_empty_rows(score):
    q, k, v = torch.randn(3, 4, 8), torch.randn(3, 6, 8), torch.randn(3, 6, 5)
    lens = torch.tensor([0, 3, 6])
    cpu = Attention(score, 8, num_hiddens=8, backend="plain")
    gpu = Attention(score, 8, num_hiddens=8).cuda()
    gpu.load_state_dict(cpu.state_dict())
    ctx, w = cpu(q, k, v, lens)
    args = [x.cuda() for x in (q, k, v, lens)]
    for need_weights in (True, False):
        ctx_g, w_g = gpu(*args, need_weights=need_weights)
        assert_close(ctx_g.cpu(), ctx, atol=1e-4, rtol=1e-4)
        assert torch.isfinite(ctx_g).all() and (ctx_g[0] == 0).all()
        if need_weights:
            assert_close(w_g.cpu(), w, atol=1e-5, rtol=1e-4)


def test_cuda_masked_softmax_autocast_fp16():
    s = torch.randn(2, 3, 8, device="cuda")
    lens = torch.tensor([0, 5], device="cuda")
    with torch.autocast("cuda", dtype=torch.float16):
        w = masked_softmax(s @ torch.eye(8, device="cuda"), lens)
    assert not torch.isnan(w).any() and (w[0] == 0).all() and (w[1, :, 5:] == 0).all()


def test_cuda_multihead_and_local_windows_run():
    mha = MultiHeadAttention(16, 4).cuda()
    x = torch.randn(2, 5, 16, device="cuda")
    out, w = mha(x, x, x, torch.tensor([2, 5], device="cuda"))
    assert out.is_cuda and w.shape == (2, 4, 5, 5)
    for window in ("local_m", "local_p"):
        attn = Attention("dot", 16, window=window, window_options={"half_width": 1}).cuda()
        ctx, w = attn(x, x, x, torch.tensor([2, 5], device="cuda"), positions=1)
        assert ctx.is_cuda and torch.isfinite(w).all()
