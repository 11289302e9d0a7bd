"""Coreference metrics (attnrun.translate.coref) on hand-made inputs, and a tiny coref run end to
end through the CLI (train, metrics, figures, predict, bad input)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from attnrun.translate.coref import head_masses, pronoun_scores, word_spans
from attnrun.translate.data.coref import Note
from attnrun.translate.tokenize import WordTokenizer


def _note(gender="m", forms=("fatigué", "fatiguée")) -> Note:
    return Note(7, 1, 5, gender, "agent", "tired", forms, 8, "plain", [(1, gender), (5, "f")])


def test_pronoun_and_agreement_accuracy_on_hand_made_translations():
    """Guards counting the wrong pronoun (planted: the gold one anywhere in the output → fails)
    and agreement counted when both forms appear, or over invariant adjectives."""
    notes = [_note("m"), _note("f"), _note("m"), _note("f", ("large", "large"))]
    hyps = [
        "le chien ... car il était trop fatigué .",  # both right
        "la vache ... car il était trop fatiguée .",  # pronoun wrong, adjective right
        "le chien ... car elle était trop fatigué fatiguée , il .",  # first pronoun wrong;
        # both forms: wrong
        "la rue ... car elle était trop large .",  # pronoun right; invariant: not counted
    ]
    scores = pronoun_scores(hyps, notes)
    assert scores["pronoun_accuracy"] == 0.5
    assert scores["agreement_accuracy"] == round(2 / 3, 4)


def test_a_head_on_the_antecedent_gives_mass_one_and_argmax_one():
    """Guards the mass read from the wrong row (the key "it" instead of the query), the wrong
    span, or the argmax counted outside the antecedent's span."""
    S = 10
    exact = torch.zeros(2, 3, S, S)  # (L, H, Tq, Tk)
    exact[:, :, :, 0] = 1.0  # every row on token 0 by default
    exact[1, 2, 7] = 0.0
    exact[1, 2, 7, 3] = 1.0  # layer 2 head 3: "it" (row 7) → the antecedent (token 3)
    out = head_masses([exact, exact], [(7, 8)] * 2, [(3, 4)] * 2, [(5, 6)] * 2)
    assert out["mass"][1, 2] == 1.0 and out["argmax"][1, 2] == 1.0
    assert out["other"][1, 2] == 0.0
    assert out["mass"][0, 0] == 0.0 and out["argmax"][0, 0] == 0.0


def test_a_uniform_head_gives_the_span_share_and_multi_piece_words_sum():
    """A uniform row gives span/length; a two-piece antecedent sums both pieces."""
    S = 8
    uniform = torch.full((1, 1, S, S), 1 / S)
    out = head_masses([uniform], [(6, 7)], [(2, 4)], [(4, 5)])
    assert out["mass"].item() == pytest.approx(2 / S)
    assert out["other"].item() == pytest.approx(1 / S)


def test_word_spans_follow_the_tokenizer():
    tok = WordTokenizer.train(["the cow didn't cross it ."], min_freq=1)
    words = ["the", "cow", "didn't", "cross", "it", "."]
    assert word_spans(tok, words) == [(i, i + 1) for i in range(6)]


# -- end to end ----------------------------------------------------------------------------------

TINY = [
    "model.num_hiddens=32", "model.num_heads=2", "model.ffn_hiddens=64", "model.num_layers=2",
    "train.epochs=1", "data.n_train=300", "data.n_val=40", "data.n_test=40", "train.threads=1",
    "plot.heatmaps=1",
]  # fmt: skip


def _attnrun(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "attnrun", *args], cwd=cwd, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip


@pytest.fixture(scope="module")
def coref_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("coref")
    run = root / "run"
    p = _attnrun(
        "translate", "--dataset", "coref", "--model", "transformer", *TINY,
        f"hydra.run.dir={run}", cwd=root,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    return run


def test_tiny_transformer_coref_run_writes_every_coref_figure_and_metric(coref_run):
    """Guards the coref step not reached from the pipeline, or a metric or figure missing."""
    m = json.loads((coref_run / "metrics.json").read_text())
    for key in ("pronoun_accuracy", "agreement_accuracy", "baseline_nearest_noun",
                "baseline_adjective_only", "coref_best_head", "coref_head_mass",
                "coref_head_argmax_accuracy", "coref_untrained_head_mass",
                "coref_cross_mass_by_layer", "aer"):  # fmt: skip
        assert key in m, key
    assert len(m["coref_mass_by_head"]) == 2 and len(m["coref_mass_by_head"][0]) == 2
    layer, head = m["coref_best_head"]
    val = m["coref_val_mass_by_head"]
    assert val[layer - 1][head - 1] == max(max(row) for row in val)  # chosen on validation
    for name in ("coref_it.png", "coref_heads.png", "coref_cross_0.png", "coref_tired.html"):
        assert (coref_run / name).stat().st_size > 0, name


def test_predict_names_the_noun_it_attends_to_and_refuses_bad_sentences(coref_run):
    """Predict prints the French and the noun the best head attends to from "it"; a sentence
    without "it" or with a word the model never saw is one line and exit 2."""
    p = _attnrun(
        "predict",
        str(coref_run),
        "the cow didn't cross the bridge because it was too tired .",
        cwd=coref_run,
    )
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("the cow didn't cross the bridge") and "\t" in lines[0]
    assert lines[1].strip().startswith("it → ") and lines[1].split()[2] in ("cow", "bridge")
    no_it = "the cow didn't cross the bridge ."
    unseen = "the zebra didn't cross the bridge because it was too tired ."
    for bad, words in ((no_it, 'no "it"'), (unseen, "zebra")):
        p = _attnrun("predict", str(coref_run), bad, cwd=coref_run)
        assert p.returncode == 2 and words in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_rnn_decoder_on_coref_reports_cross_attention_at_the_pronoun(tmp_path):
    """The RNN family has no encoder self-attention: the head table is absent, the decoder's
    cross-attention mass at the il/elle step is there."""
    run = tmp_path / "rnn"
    p = _attnrun(
        "translate", "--dataset", "coref", "model.num_hiddens=32", "model.embed_size=16",
        "train.epochs=1", "data.n_train=200", "data.n_val=20", "data.n_test=20",
        "train.threads=1", "plot.heatmaps=1", f"hydra.run.dir={run}", cwd=tmp_path,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    m = json.loads((run / "metrics.json").read_text())
    assert "coref_best_head" not in m and len(m["coref_cross_mass_by_layer"]) == 1
    assert (run / "coref_cross_0.png").exists() and not (run / "coref_it.png").exists()


def test_lexicon_noun_without_gender_is_exit_2(tmp_path):
    lex = tmp_path / "lex.json"
    lex.write_text(json.dumps({"places": [{"en": "lake", "fr": "lac"}]}), encoding="utf-8")
    p = _attnrun("translate", "--dataset", "coref", f"data.path={lex}", *TINY, cwd=tmp_path)
    assert p.returncode == 2
    assert "'lake' has no French gender" in p.stderr and "Traceback" not in p.stderr


def test_decoder_mass_reads_the_pronoun_step_and_the_shifted_noun():
    """Decoder self-attention: the step that emits il/elle is row ``pronoun_index``; target word
    ``j`` is input position ``j + 1`` (after BOS). Guards an off-by-one on either side (planted:
    no shift of the noun → mass 0)."""
    from attnrun.translate import coref

    tgt = "la vache n'a pas traversé le pont car elle était trop fatiguée ."
    words = tgt.split()
    note = _note("f")
    note.pronoun_index, note.antecedent_target, note.other_target = 9, 1, 6
    T = len(words) + 1  # + EOS
    w = torch.zeros(1, 1, T, T)
    w[0, 0, :, 0] = 1.0
    w[0, 0, 9] = 0.0
    w[0, 0, 9, 2] = 1.0  # the step emitting "elle" looks at input 2 = "vache"
    tok = WordTokenizer.train([tgt], min_freq=1)
    out = coref.decoder_at_pronoun([w], tok, [("", tgt)], [note])
    assert out["mass"].item() == 1.0 and out["other"].item() == 0.0


def test_role_heads_name_the_agent_and_the_place_head():
    """A head that always attends to the agent and one that always attends to the place are
    found whatever the antecedent is (the mechanism that resolves il/elle without a coreference
    head)."""
    from attnrun.translate.coref import role_heads

    agent = {"mass": torch.tensor([[0.9, 0.1]]), "other": torch.tensor([[0.05, 0.8]])}
    out = role_heads(agent, agent)
    assert out["agent"] == {"head": [1, 1], "mass": 0.9}
    assert out["place"]["head"] == [1, 2]
