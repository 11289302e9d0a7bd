"""The core on CUDA tensors: the fused path, masks and empty rows; the translate Transformer on
CUDA against the same weights on the CPU. Runs only with a GPU."""

import copy

import pytest
import torch
from torch.testing import assert_close

from attnrun.core import Attention, MultiHeadAttention, fused, masked_softmax
from attnrun.translate.batching import make_batch
from attnrun.translate.models.transformer import TransformerSeq2Seq
from attnrun.translate.search import beam_search, greedy
from attnrun.translate.tokenize import BOS, EOS
from attnrun.translate.train import training_loss

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


V = 23
TRANSFORMERS = [
    {},
    {"norm_first": True, "positional": "learned"},
    {"tie_embeddings": True, "share_embeddings": True},  # three-way tying
]


def _transformer_pair(**kw) -> tuple[TransformerSeq2Seq, TransformerSeq2Seq]:
    """One Transformer on the CPU and a copy of it on CUDA, both in eval mode. The output bias is
    spread so greedy and beam ranks have no near-ties that rounding could flip."""
    torch.manual_seed(0)
    options = dict(num_hiddens=32, num_heads=4, num_layers=2, ffn_hiddens=48, dropout=0.0)
    cpu = TransformerSeq2Seq(V, V, **{**options, "max_len": 32, **kw}).eval()
    with torch.no_grad():
        cpu.decoder.out.bias.normal_(0, 2.0)
        if kw.get("positional") == "learned":  # tables start near 0: make positions matter
            for pos in (cpu.encoder.positional, cpu.decoder.positional):
                pos.embedding.weight.normal_()
    return cpu, copy.deepcopy(cpu).cuda()


def _pairs():
    g = torch.Generator().manual_seed(1)
    out = []
    for n_src, n_tgt in ((9, 7), (4, 5), (2, 9), (6, 1)):
        src = torch.randint(4, V, (n_src,), generator=g).tolist()
        tgt = torch.randint(4, V, (n_tgt,), generator=g).tolist()
        out.append((src + [EOS], tgt + [EOS]))
    return out


@pytest.mark.parametrize("variant", TRANSFORMERS, ids=str)
def test_cuda_transformer_matches_cpu(variant):
    """Teacher-forced logits and weights, the trainer's loss and its gradients on CUDA equal the
    CPU's within float32 tolerance; with three-way tying the one shared matrix stays one tensor
    on the device. Guards against CPU-only assumptions in the model, the masks, the positions and
    the trainer's loss (a tensor made without ``device=``); without a GPU here it was checked
    only as a CPU-to-CPU copy of this module."""
    cpu, gpu = _transformer_pair(**variant)
    if variant.get("share_embeddings"):
        ptr = gpu.encoder.embedding.weight.data_ptr()
        assert gpu.decoder.embedding.weight.data_ptr() == gpu.decoder.out.weight.data_ptr() == ptr
    batch = make_batch(_pairs(), [0, 1, 2, 3])
    on_gpu = batch.to("cuda")
    logits, w = cpu(batch.src, batch.src_lens, batch.tgt_in, need_weights=True)
    logits_g, w_g = gpu(on_gpu.src, on_gpu.src_lens, on_gpu.tgt_in, need_weights=True)
    assert logits_g.is_cuda and w_g.is_cuda
    assert_close(logits_g.cpu(), logits, atol=1e-4, rtol=1e-4)
    assert_close(w_g.cpu(), w, atol=1e-5, rtol=1e-4)
    loss, loss_g = training_loss(cpu, batch), training_loss(gpu, on_gpu)
    assert_close(loss_g.cpu(), loss, atol=1e-5, rtol=1e-5)
    loss.backward()
    loss_g.backward()
    grads = dict(gpu.named_parameters())
    for name, p in cpu.named_parameters():
        assert_close(grads[name].grad.cpu(), p.grad, atol=1e-4, rtol=1e-3, msg=name)


@pytest.mark.parametrize("variant", TRANSFORMERS, ids=str)
def test_cuda_cached_decoding_equals_recompute_and_cpu(variant):
    """On CUDA, every cached ``decoder.step`` gives the logits and weights of running the whole
    prefix again; greedy and beam search give the CPU's tokens and scores. Planted bug caught
    (in a CPU copy of this module, device strings swapped): positions not offset by the step
    (``offset=state.t`` dropped)."""
    cpu, gpu = _transformer_pair(**variant)
    batch = make_batch(_pairs(), [0, 1, 2, 3]).to("cuda")
    src, lens = batch.src, batch.src_lens
    with torch.no_grad():
        memory, state = gpu.encode(src, lens)
        prefix = torch.full((4, 1), BOS, device="cuda")
        for _ in range(12):
            logits, state, w = gpu.decoder.step(prefix[:, -1], memory, state)
            ref, ref_w = gpu(src, lens, prefix, need_weights=True)
            assert_close(logits, ref[:, -1], atol=1e-4, rtol=1e-4)
            assert_close(w, ref_w[:, -1], atol=1e-5, rtol=1e-4)
            prefix = torch.cat([prefix, ref[:, -1].argmax(-1, keepdim=True)], 1)
    src_c, lens_c = src.cpu(), lens.cpu()
    g, g_cpu = greedy(gpu, src, lens, 12), greedy(cpu, src_c, lens_c, 12)
    assert [h.ids for h in g] == [h.ids for h in g_cpu]
    for h, r in zip(g, g_cpu):
        assert abs(h.score - r.score) < 1e-3
        assert_close(h.weights, r.weights, atol=1e-5, rtol=1e-4)  # Hypothesis weights: on CPU
    b = beam_search(gpu, src, lens, 12, beam=3, n_best=3)
    b_cpu = beam_search(cpu, src_c, lens_c, 12, beam=3, n_best=3)
    assert [[h.ids for h in hs] for hs in b] == [[h.ids for h in hs] for hs in b_cpu]


def test_cuda_transformer_takes_the_fused_kernel_when_weights_are_not_needed(monkeypatch):
    """Without weights every attention of the Transformer (encoder self, decoder self, cross:
    3 per layer pair) runs through ``F.scaled_dot_product_attention`` (``fused._sdpa``); with
    every layer's weights asked for (``attention_maps``) none does, and the two agree. Planted bug
    caught (in a CPU copy of this module): the decoder asking every layer for its weights
    (``need_weights`` ignored), which forces the unfused path."""
    _, gpu = _transformer_pair()
    calls = []
    real = fused._sdpa

    def counting(*args, **kwargs):
        calls.append(args[0].device.type)
        return real(*args, **kwargs)

    monkeypatch.setattr(fused, "_sdpa", counting)
    batch = make_batch(_pairs(), [0, 1, 2, 3]).to("cuda")
    with torch.no_grad():
        logits, w = gpu(batch.src, batch.src_lens, batch.tgt_in)
    assert w is None and calls == ["cuda"] * (3 * len(gpu.decoder.blocks))
    calls.clear()
    gpu.attention_maps(batch.src, batch.src_lens, batch.tgt_in)
    assert calls == []
    with torch.no_grad():
        logits_w, _ = gpu(batch.src, batch.src_lens, batch.tgt_in, need_weights=True)
    assert_close(logits_w, logits, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kind", ["encoder_self", "decoder_self", "cross"])
def test_cuda_head_removal_and_mean_match_cpu(kind):
    """``core.heads`` on CUDA (what ``attnrun ablate`` and ``serve --device cuda`` run): removing
    a head, or writing a mean into its slice, gives the CPU's logits, in teacher forcing and in
    cached greedy steps. Guards a gate or mean left on the CPU (a device error) or broadcast on
    the wrong axis on one device only."""
    from attnrun.core.heads import Head, Interventions, intervene

    cpu, gpu = _transformer_pair()
    batch = make_batch(_pairs(), [0, 1, 2, 3])
    src, lens, tgt_in = batch.src, batch.src_lens, batch.tgt_in
    heads = {(k, i): 4 for k in ("encoder_self", "decoder_self", "cross") for i in range(2)}
    means = {(kind, 1): torch.randn(4, 8)}
    for iv in (
        Interventions.remove([Head(kind, 1, 2)], heads),
        Interventions.remove([Head(kind, 1, 2)], heads, means=means),
    ):
        got = {}
        for name, model in (("cpu", cpu), ("gpu", gpu)):
            dev = next(model.parameters()).device
            args = [x.to(dev) for x in (src, lens, tgt_in)]
            with torch.no_grad(), intervene(iv):
                forced, _ = model(*args)
                memory, state = model.encode(*args[:2])
                steps = []
                for t in range(tgt_in.shape[1]):
                    logits, state, _ = model.decoder.step(args[2][:, t], memory, state)
                    steps.append(logits)
            got[name] = (forced.cpu(), torch.stack(steps, 1).cpu())
        assert_close(got["gpu"][0], got["cpu"][0], atol=1e-4, rtol=1e-4)
        assert_close(got["gpu"][1], got["gpu"][0], atol=1e-4, rtol=1e-4)
    with torch.no_grad():
        intact, _ = cpu(src, lens, tgt_in)
    assert not torch.allclose(intact, got["cpu"][0])  # the head mattered: the check has teeth
