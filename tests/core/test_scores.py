"""Score functions: each against its formula written out, SDPA, gradcheck, errors."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from attnrun.core import Attention, make_score, score_functions
from attnrun.core.scores import AdditiveScore
from attnrun.errors import ConfigError

B, TQ, TK, D = 2, 3, 5, 4


def qk(dq=D, dk=D, dtype=torch.float32):
    return torch.randn(B, TQ, dq, dtype=dtype), torch.randn(B, TK, dk, dtype=dtype)


def loop(fn, q, k):
    """Scores by the formula, one (batch, i, j) at a time."""
    out = torch.empty(q.shape[0], q.shape[1], k.shape[1], dtype=q.dtype)
    for b in range(q.shape[0]):
        for i in range(q.shape[1]):
            for j in range(k.shape[1]):
                out[b, i, j] = fn(q[b, i], k[b, j])
    return out


def test_registry_names_and_concat_alias():
    assert set(score_functions) == {
        "dot",
        "scaled_dot",
        "cosine",
        "general",
        "additive",
        "concat",
        "location",
    }
    assert score_functions.get("concat") is score_functions.get("additive") is AdditiveScore


def test_dot():
    q, k = qk()
    assert_close(make_score("dot", D, D)(q, k), loop(lambda a, b: (a * b).sum(), q, k))


def test_scaled_dot():
    q, k = qk()
    expected = loop(lambda a, b: (a * b).sum() / math.sqrt(D), q, k)
    assert_close(make_score("scaled_dot", D, D)(q, k), expected)


@pytest.mark.parametrize("learn_beta", [False, True])
def test_cosine(learn_beta):
    q, k = qk()
    score = make_score("cosine", D, D, beta=2.5, learn_beta=learn_beta)
    expected = loop(lambda a, b: 2.5 * (a @ b) / (a.norm() * b.norm()), q, k)
    assert_close(score(q, k), expected)
    assert any(p is score.log_beta for p in score.parameters()) == learn_beta


def test_general():
    q, k = qk(dq=3, dk=6)
    score = make_score("general", 3, 6)
    W = score.W.weight  # (dq, dk)
    assert_close(score(q, k), loop(lambda a, b: a @ W @ b, q, k).detach())


@pytest.mark.parametrize("name", ["additive", "concat"])
def test_additive(name):
    q, k = qk(dq=3, dk=6)
    score = make_score(name, 3, 6, num_hiddens=7)
    Wq, Wk, v = score.W_q.weight, score.W_k.weight, score.v.weight[0]
    expected = loop(lambda a, b: v @ torch.tanh(Wq @ a + Wk @ b), q, k)
    assert_close(score(q, k), expected.detach())


def test_location_depends_on_query_only():
    q, k = qk()
    score = make_score("location", D, D, max_len=8)
    Wa = score.W_a.weight  # (max_len, dq)
    expected = torch.stack([torch.stack([Wa @ q[b, i] for i in range(TQ)]) for b in range(B)])
    assert_close(score(q, k), expected[..., :TK].detach())
    assert_close(score(q, torch.randn_like(k)), score(q, k))


def test_location_max_len_default_and_error():
    score = make_score("location", D, D)
    assert score.max_len == 100
    with pytest.raises(ConfigError, match=r"max_len=100.*Tk=101"):
        score(torch.randn(1, 1, D), torch.randn(1, 101, D))


def test_scaled_dot_attention_matches_sdpa():
    q, k = qk()
    v = torch.randn(B, TK, 6)
    lens = torch.tensor([2, 5])
    keep = torch.arange(TK) < lens[:, None, None]
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
    for backend in ("plain", "fused"):
        ctx, _ = Attention("scaled_dot", D, backend=backend)(q, k, v, lens)
        assert_close(ctx, expected)


@pytest.mark.parametrize("name", ["additive", "general", "cosine"])
def test_projected_keys_give_the_same_scores(name):
    q, k = qk()
    score = make_score(name, D, D, num_hiddens=5) if name == "additive" else make_score(name, D, D)
    assert_close(score(q, k, projected_keys=score.project_keys(k)), score(q, k))


@pytest.mark.parametrize("name", sorted(score_functions.names()))
def test_gradcheck_float64(name):
    options = {"learn_beta": True} if name == "cosine" else {}
    score = make_score(name, 3, 3, num_hiddens=4, **options).double()
    q = torch.randn(2, 2, 3, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: score(a, b), (q, k))
    params = list(score.parameters())
    if params:
        assert torch.autograd.gradcheck(
            lambda *ps: torch.func.functional_call(
                score, dict(zip([n for n, _ in score.named_parameters()], ps, strict=True)), (q, k)
            ),
            tuple(p.detach().requires_grad_() for p in params),
        )


@pytest.mark.parametrize("name", sorted(score_functions.names()))
def test_scores_carry_leading_head_dims(name):
    score = make_score(name, D, D, num_hiddens=5)
    q, k = torch.randn(2, 3, TQ, D), torch.randn(2, 3, TK, D)
    out = score(q, k)
    assert out.shape == (2, 3, TQ, TK)
    assert_close(out[:, 1], score(q[:, 1], k[:, 1]))


@pytest.mark.parametrize("name", ["dot", "scaled_dot", "cosine"])
def test_same_size_scores_reject_different_dims(name):
    with pytest.raises(ValueError, match=r"query_dim=3, key_dim=4"):
        make_score(name, 3, 4)
    with pytest.raises(ValueError, match=r"\(2, 3, 5\).*\(2, 5, 4\)"):
        make_score(name, 4, 4)(torch.randn(2, 3, 5), torch.randn(2, 5, 4))


def test_batch_mismatch_names_shapes():
    with pytest.raises(ConfigError, match=r"\(2, 3, 4\).*\(3, 5, 4\)"):
        make_score("dot", 4, 4)(torch.randn(2, 3, 4), torch.randn(3, 5, 4))


def test_unknown_score_and_option_list_choices():
    with pytest.raises(ValueError, match=r"unknown score function 'bogus'; valid: dot, scaled_dot"):
        make_score("bogus", 4, 4)
    with pytest.raises(ConfigError, match=r"no option\(s\) maxlen; valid: max_len"):
        make_score("location", 4, 4, maxlen=3)
    with pytest.raises(ConfigError, match="beta must be > 0"):
        make_score("cosine", 4, 4, beta=0.0)
