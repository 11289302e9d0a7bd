"""``decoder=none``: the encoder-decoder without attention (d2l 9.7), the baseline of the
bottleneck experiment."""

from __future__ import annotations

import torch

from attnrun.experiments import experiments
from attnrun.translate.models import build_model
from attnrun.translate.search import beam_search, greedy


def _model(**model):
    cfg = experiments.get("translate").make_config({"decoder": "none", "model": model})
    torch.manual_seed(0)
    return build_model(cfg, 30, 25).eval()


def _batch():
    src = torch.randint(4, 30, (3, 6))
    lens = torch.tensor([6, 4, 2])
    tgt_in = torch.randint(4, 25, (3, 5))
    return src, lens, tgt_in


def test_teacher_forcing_equals_step_by_step():
    """Guards against forward and step disagreeing (training and search would see two models)."""
    for model in ({}, {"cell": "lstm", "num_layers": 2, "tie_embeddings": True}):
        m = _model(**model)
        src, lens, tgt_in = _batch()
        logits, weights = m(src, lens, tgt_in)
        assert weights is None
        memory, state = m.encode(src, lens)
        steps = []
        for t in range(tgt_in.shape[1]):
            out, state, w = m.decoder.step(tgt_in[:, t], memory, state)
            assert torch.count_nonzero(w) == 0  # it attends to nothing
            steps.append(out)
        torch.testing.assert_close(torch.stack(steps, 1), logits)


def test_only_the_final_encoder_state_reaches_the_decoder():
    """Guards against the baseline peeking at the encoder outputs (it would then be attention):
    replacing every annotation but keeping the final state leaves the logits unchanged."""
    m = _model()
    src, lens, tgt_in = _batch()
    memory, state = m.encode(src, lens)
    logits, _ = m.decoder(tgt_in, memory, state)
    memory.keys = torch.randn_like(memory.keys)
    again, _ = m.decoder(tgt_in, memory, state)
    torch.testing.assert_close(again, logits)


def test_beam_one_equals_greedy_without_attention():
    m = _model()
    src, lens, _ = _batch()
    g = greedy(m, src, lens, max_len=7)
    b = beam_search(m, src, lens, max_len=7, beam=1)
    assert [h.ids for h in g] == [hs[0].ids for hs in b]


def test_the_model_line_says_no_attention():
    """Guards the log line of a ``decoder=none`` run: not "none decoder, additive score" (the
    score is unused) but "no attention"; a decoder with attention still names its score."""
    from types import SimpleNamespace

    from attnrun.translate.pipeline import make_translator
    from attnrun.translate.tokenize import WordTokenizer

    tok = WordTokenizer.train(["a b c ."], min_freq=1)
    for decoder, expected in (("none", "none decoder, no attention"),
                              ("bahdanau", "bahdanau decoder, additive score")):  # fmt: skip
        cfg = experiments.get("translate").make_config({"decoder": decoder})
        said: list[str] = []
        ctx = SimpleNamespace(
            device=torch.device("cpu"),
            reporter=SimpleNamespace(info=said.append),
            record=SimpleNamespace(update=lambda **_: None),
        )
        make_translator(cfg, tok, tok, ctx)
        assert said[0].startswith(f"model: {expected}, "), said
