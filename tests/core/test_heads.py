"""Head interventions and rollout (attnrun.core.heads) against plain re-implementations.

The references never use the hook: removing head ``h`` is checked against a copy of the model whose
``W_o`` input slice of that head is zeroed by a forward pre-hook (the plain "zero the head's slice
before the output projection"); mean-ablation against the same hook writing the mean there.
"""

import copy
import threading

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from attnrun.core import Attention
from attnrun.core.heads import (
    Head,
    HeadRecorder,
    Interventions,
    attention_rollout,
    head_sites,
    intervene,
    weight_replacements,
)
from attnrun.errors import ConfigError
from attnrun.selfattn.model import PronounResolver
from attnrun.translate.models import Seq2Seq
from attnrun.translate.models.decoders import BahdanauDecoder
from attnrun.translate.models.encoder import Encoder
from attnrun.translate.models.transformer import TransformerSeq2Seq

KINDS = ("encoder_self", "decoder_self", "cross")


def _transformer(norm_first: bool) -> TransformerSeq2Seq:
    return TransformerSeq2Seq(
        11, 13, num_hiddens=16, num_heads=4, num_layers=2, ffn_hiddens=24, dropout=0.0,
        norm_first=norm_first,
    ).eval()  # fmt: skip


def _batch():
    src = torch.randint(1, 11, (3, 6))
    src_lens = torch.tensor([6, 4, 2])
    src[1, 4:] = 0
    src[2, 2:] = 0
    tgt_in = torch.randint(1, 13, (3, 5))
    return src, src_lens, tgt_in


def _mha(model: TransformerSeq2Seq, kind: str, layer: int):
    if kind == "encoder_self":
        return model.encoder.blocks[layer].attention
    block = model.decoder.blocks[layer]
    return block.self_attention if kind == "decoder_self" else block.cross_attention


def _slice_hook(mha, head: int, value: torch.Tensor | None = None):
    """The plain reference: the head's slice of ``W_o``'s input set to 0 (or ``value``)."""
    hd = mha.head_dim

    def hook(_module, args):
        x = args[0].clone()
        x[..., head * hd : (head + 1) * hd] = 0.0 if value is None else value
        return (x,)

    return mha.W_o.register_forward_pre_hook(hook)


def _num_heads(model) -> dict:
    return {(k, i): 4 for k in KINDS for i in range(2)}


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layer", [0, 1])
def test_removing_a_head_equals_zeroing_its_slice_before_w_o(norm_first, kind, layer):
    """Guards the gate's axis and place: a gate on Tq instead of heads, or after W_o, or on the
    wrong layer's module, changes the logits away from the plain reference."""
    model = _transformer(norm_first)
    src, src_lens, tgt_in = _batch()
    ref = copy.deepcopy(model)
    _slice_hook(_mha(ref, kind, layer), head=2)
    with torch.no_grad():
        want, _ = ref(src, src_lens, tgt_in)
        intact, _ = model(src, src_lens, tgt_in)
        with intervene(Interventions.remove([Head(kind, layer, 2)], _num_heads(model))):
            got, _ = model(src, src_lens, tgt_in)
            maps = model.attention_maps(src, src_lens, tgt_in)  # the weights path (plain kernels)
    assert_close(got, want)
    assert not torch.allclose(got, intact)  # the head mattered, so the check has teeth
    assert maps["cross"].shape[1:3] == (2, 4)


@pytest.mark.parametrize("norm_first", [False, True])
def test_removal_applies_in_cached_greedy_steps_as_in_teacher_forcing(norm_first):
    """Guards the cached decoding path (attend_projected): a step that forgets the hook decodes
    with the head still in."""
    model = _transformer(norm_first)
    src, src_lens, tgt_in = _batch()
    iv = Interventions.remove(
        [Head("decoder_self", 1, 0), Head("cross", 0, 3), Head("encoder_self", 0, 1)],
        _num_heads(model),
    )
    with torch.no_grad(), intervene(iv):
        forced, _ = model(src, src_lens, tgt_in)
        memory, state = model.encode(src, src_lens)
        steps = []
        for t in range(tgt_in.shape[1]):
            logits, state, _ = model.decoder.step(tgt_in[:, t], memory, state)
            steps.append(logits)
    assert_close(torch.stack(steps, 1), forced, rtol=1e-5, atol=1e-5)


def test_mean_ablation_writes_the_mean_into_the_slice():
    """Guards the replacement: ``ξ·c + (1-ξ)·m`` with m the head's mean, broadcast over B and Tq."""
    model = _transformer(False)
    src, src_lens, tgt_in = _batch()
    mean = torch.randn(4, 4)
    ref = copy.deepcopy(model)
    _slice_hook(_mha(ref, "cross", 1), head=1, value=mean[1])
    iv = Interventions.remove([Head("cross", 1, 1)], _num_heads(model), means={("cross", 1): mean})
    with torch.no_grad():
        want, _ = ref(src, src_lens, tgt_in)
        with intervene(iv):
            got, _ = model(src, src_lens, tgt_in)
    assert_close(got, want)


def test_no_intervention_and_all_ones_gate_change_nothing():
    model = _transformer(True)
    src, src_lens, tgt_in = _batch()
    with torch.no_grad():
        intact, _ = model(src, src_lens, tgt_in)
        ones = {(k, i): torch.ones(4) for k in KINDS for i in range(2)}
        with intervene(Interventions(gates=ones)):
            gated, _ = model(src, src_lens, tgt_in)
        after, _ = model(src, src_lens, tgt_in)
    assert torch.equal(intact, gated)
    assert torch.equal(intact, after)  # nothing stays on the modules after the block


def test_gate_gradient_is_the_derivative_of_the_loss():
    """Michel et al. 2019's I_h: d L / d ξ_h at ξ = 1, checked by central differences."""
    model = _transformer(False).double()
    src, src_lens, tgt_in = _batch()
    tgt_out = torch.randint(1, 13, (3, 5))

    def loss(gate):
        with intervene(Interventions(gates={("encoder_self", 1): gate})):
            logits, _ = model(src, src_lens, tgt_in)
        return torch.nn.functional.cross_entropy(logits.reshape(-1, 13), tgt_out.reshape(-1))

    xi = torch.ones(4, dtype=torch.double, requires_grad=True)
    loss(xi).backward()
    eps = 1e-6
    for h in range(4):
        up, down = torch.ones(4, dtype=torch.double), torch.ones(4, dtype=torch.double)
        up[h] += eps
        down[h] -= eps
        with torch.no_grad():
            numeric = (loss(up) - loss(down)) / (2 * eps)
        assert abs(float(xi.grad[h]) - float(numeric)) < 1e-6


def test_per_example_gates_apply_row_by_row():
    model = _transformer(False)
    src, src_lens, tgt_in = _batch()
    gates = torch.ones(3, 4)
    gates[1, 2] = 0.0  # remove head 3 for sentence 2 only
    with torch.no_grad():
        with intervene(Interventions(gates={("cross", 0): gates})):
            got, _ = model(src, src_lens, tgt_in)
        intact, _ = model(src, src_lens, tgt_in)
        with intervene(Interventions.remove([Head("cross", 0, 2)], _num_heads(model))):
            removed, _ = model(src, src_lens, tgt_in)
    assert_close(got[[0, 2]], intact[[0, 2]])
    assert_close(got[1], removed[1])


def test_interventions_stay_in_their_thread():
    """Guards serve's isolation: the gate lives in a ContextVar, not on the module."""
    model = _transformer(False)
    src, src_lens, tgt_in = _batch()
    with torch.no_grad():
        intact, _ = model(src, src_lens, tgt_in)
    barrier = threading.Barrier(2)
    results = {}

    def ablated():
        with torch.no_grad(), intervene(Interventions.remove([Head("cross", 1, 0)], _num_heads(0))):
            barrier.wait()
            results["ablated"] = model(src, src_lens, tgt_in)[0]
            barrier.wait()

    def plain():
        with torch.no_grad():
            barrier.wait()
            results["plain"] = model(src, src_lens, tgt_in)[0]
            barrier.wait()

    threads = [threading.Thread(target=ablated), threading.Thread(target=plain)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert torch.equal(results["plain"], intact)
    assert not torch.allclose(results["ablated"], intact)


def test_remove_refuses_unknown_sites_and_heads():
    with pytest.raises(ConfigError, match="valid: cross layer 1"):
        Interventions.remove([Head("encoder_self", 0, 0)], {("cross", 0): 2})
    with pytest.raises(ConfigError, match=r"heads 1\.\.2; got head 3"):
        Interventions.remove([Head("cross", 0, 2)], {("cross", 0): 2})
    with pytest.raises(ConfigError, match="unknown weight replacement 'flat'"):
        Interventions(weights={("cross", 0): "flat"})


def test_recorder_mean_counts_only_valid_query_positions():
    ctx = torch.randn(2, 3, 4, 5)  # (B, H, Tq, hd)
    valid = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]], dtype=torch.bool)
    rec = HeadRecorder()
    for b in range(2):  # two batches of one sentence: the mean is over the split, not per batch
        rec.query_valid["encoder_self"] = valid[b : b + 1]
        rec.add(("encoder_self", 0), ctx[b : b + 1])
    rows = torch.cat([ctx[0, :, :3], ctx[1, :, :1]], 1)  # (H, 4 valid positions, hd)
    assert_close(rec.means()[("encoder_self", 0)], rows.mean(1))


# -- weight replacements (RNN decoders; Jain & Wallace 2019) ---------------------------------


def _weights_and_keep():
    keep = torch.tensor([[True] * 5, [True] * 3 + [False] * 2]).unsqueeze(1).expand(2, 4, 5)
    w = torch.softmax(torch.randn(2, 4, 5).masked_fill(~keep, float("-inf")), -1)
    return w, keep


def test_uniform_weights_are_one_over_the_valid_keys():
    w, keep = _weights_and_keep()
    u = weight_replacements.get("uniform")(w, keep, None)
    assert_close(u[0], torch.full((4, 5), 0.2))
    assert_close(u[1, :, :3], torch.full((4, 3), 1 / 3))
    assert (u[1, :, 3:] == 0).all()


def test_permuted_weights_keep_each_rows_values_on_valid_keys():
    w, keep = _weights_and_keep()
    p = weight_replacements.get("permute")(w, keep, torch.Generator().manual_seed(1))
    assert (p[1, :, 3:] == 0).all()
    for b in range(2):
        for q in range(4):
            assert_close(p[b, q].sort().values, w[b, q].sort().values)
    assert not torch.equal(p, w)


def test_argmax_and_other_sentence_weights():
    w, keep = _weights_and_keep()
    a = weight_replacements.get("argmax")(w, keep, None)
    assert torch.equal(a.argmax(-1), w.argmax(-1))
    assert_close(a.sum(-1), torch.ones(2, 4))
    o = weight_replacements.get("other")(w, keep, None)
    assert_close(o[0], w[1])  # sentence 1's weights on sentence 0's (wider) keys: already sum 1
    cut = w[0, :, :3] / w[0, :, :3].sum(-1, keepdim=True)
    assert_close(o[1, :, :3], cut)  # sentence 0's weights cut to sentence 1's 3 keys


@pytest.mark.parametrize("name", ["uniform", "argmax"])
def test_rnn_decoder_attention_is_replaced_before_pooling(name):
    """Guards the weight hook: the decoder's returned weights and its context both change."""
    torch.manual_seed(0)
    attention = Attention("additive", 8, 8, 8, backend="plain")
    decoder = BahdanauDecoder(13, 6, 8, 1, "gru", 0.0, attention=attention)
    model = Seq2Seq(Encoder(11, 6, 8, 1, "gru", True), decoder).eval()
    src, src_lens, tgt_in = _batch()
    with torch.no_grad():
        logits, w = model(src, src_lens, tgt_in, need_weights=True)
        with intervene(Interventions(weights={("cross", 0): name})):
            logits2, w2 = model(src, src_lens, tgt_in, need_weights=True)
    keep = torch.arange(6) < src_lens[:, None, None]
    assert_close(w2, weight_replacements.get(name)(w, keep.expand_as(w), None))
    assert not torch.allclose(logits, logits2)


# -- selfattn's pointer ---------------------------------------------------------------------


def test_pointer_head_removal_remixes_the_remaining_heads():
    model = PronounResolver(20, num_hiddens=16, num_heads=4, num_layers=2).eval()
    with torch.no_grad():
        model.gate_logits.copy_(torch.randn(4))
    tokens = torch.randint(1, 20, (2, 7))
    lens, it = torch.tensor([7, 5]), torch.tensor([4, 3])
    with torch.no_grad():
        r = model(tokens, lens, it)
        with intervene(Interventions.remove([Head("self", 2, 1)], {("self", 2): 4})):
            r2 = model(tokens, lens, it)
    gate = torch.softmax(model.gate_logits, 0).clone()
    gate[1] = 0
    gate = gate / gate.sum()
    rows = r.attention[torch.arange(2), 2, :, it]  # (B, heads, T): the pointer's rows of "it"
    want = torch.einsum("h,bht->bt", gate, rows)
    assert_close(r2.log_probs.exp(), want)


# -- rollout (Abnar & Zuidema 2020) ---------------------------------------------------------


def _rollout_numpy(weights: np.ndarray, residual: float) -> np.ndarray:
    """Plain loops: per layer mean over heads, add residual·I, renormalise rows, multiply."""
    layers, _, t, _ = weights.shape
    r = np.eye(t)
    for layer in range(layers):
        a = weights[layer].mean(0)
        a = residual * np.eye(t) + (1 - residual) * a
        a = a / a.sum(1, keepdims=True)
        r = a @ r
    return r


@pytest.mark.parametrize("residual", [0.0, 0.5, 1.0])
def test_rollout_matches_the_plain_product(residual):
    w = torch.softmax(torch.randn(3, 2, 5, 5, dtype=torch.double), -1)
    got = attention_rollout(w, residual)
    assert_close(got, torch.from_numpy(_rollout_numpy(w.numpy(), residual)))
    assert_close(got.sum(-1), torch.ones(5, dtype=torch.double))
    batched = attention_rollout(torch.stack([w, w.flip(0)]), residual)
    assert_close(batched[0], got)


def test_rollout_order_is_bottom_layer_first():
    """Guards the product's order: Â_2·Â_1 differs from Â_1·Â_2 for non-commuting maps."""
    w = torch.softmax(torch.randn(2, 1, 4, 4, dtype=torch.double), -1)
    want = (0.5 * torch.eye(4) + 0.5 * w[1, 0]) @ (0.5 * torch.eye(4) + 0.5 * w[0, 0])
    assert_close(attention_rollout(w), want)


def test_rollout_refuses_non_square_maps():
    with pytest.raises(ConfigError, match="rollout needs"):
        attention_rollout(torch.ones(2, 2, 3, 4))


def test_head_sites_name_every_attention_with_its_head_count():
    sites = head_sites(_transformer(False))
    assert sites == {(k, i): 4 for k in ("encoder_self", "decoder_self", "cross") for i in (0, 1)}
    attention = Attention("additive", 8, 8, 8, backend="plain")
    decoder = BahdanauDecoder(13, 6, 8, 1, "gru", 0.0, attention=attention)
    assert head_sites(Seq2Seq(Encoder(11, 6, 8, 1, "gru", True), decoder)) == {("cross", 0): 1}
    resolver = PronounResolver(20, num_hiddens=16, num_heads=4, num_layers=2)
    assert head_sites(resolver) == {("self", 0): 4, ("self", 1): 4, ("self", 2): 4}
