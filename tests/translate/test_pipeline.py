"""The translate pipeline's figures, recomputed independently from the files the run wrote: BLEU and
chrF of hypotheses against references, AER of the attention argmax over source words for each
target word, and the same seed giving the same metrics."""

from __future__ import annotations

import csv
import json

import pytest
import sacrebleu
import torch

from attnrun.experiments import experiments
from attnrun.runs.record import comparable
from attnrun.translate.batching import encode_pairs, make_batch
from attnrun.translate.config import DataConfig
from attnrun.translate.data.toy import load_toy
from attnrun.translate.translator import Translator

run = experiments.get("translate")

TINY = {
    "data": {"n_train": 300, "n_val": 16, "n_test": 40},
    "model": {"embed_size": 16, "num_hiddens": 24},
    "train": {"epochs": 2, "batch_size": 32, "threads": 1},
    "decode": {"max_len": 20},
    "plot": {"heatmaps": 1},
}


def _with_seed(seed: int) -> dict:
    return {**json.loads(json.dumps(TINY)), "seed": seed}


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy")
    return out, run(_with_seed(0), out)


def _translations(out) -> tuple[list[str], list[str]]:
    with open(out / "translations.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [r["hypothesis"] for r in rows], [r["reference"] for r in rows]


def test_bleu_and_chrf_score_hypotheses_against_references(toy_run):
    """Guards against swapping hypotheses and references in the pipeline's BLEU/chrF call: the
    figures equal sacreBLEU's on (hypotheses, [references]) and differ from the swapped call."""
    out, m = toy_run
    hyps, refs = _translations(out)
    bleu = sacrebleu.corpus_bleu(hyps, [refs]).score
    chrf = sacrebleu.corpus_chrf(hyps, [refs]).score
    assert m["bleu"] == pytest.approx(bleu, abs=0.006)
    assert m["chrf"] == pytest.approx(chrf, abs=0.006)
    # the fixture is sensitive to the order: swapped, both figures move
    assert abs(sacrebleu.corpus_bleu(refs, [hyps]).score - bleu) > 0.05
    assert abs(sacrebleu.corpus_chrf(refs, [hyps]).score - chrf) > 0.05


def _aer(pred, sure, possible) -> float:
    a_s = sum(len(a & s) for a, s in zip(pred, sure))
    a_p = sum(len(a & p) for a, p in zip(pred, possible))
    return 1 - (a_s + a_p) / (sum(map(len, pred)) + sum(map(len, sure)))


def test_aer_of_the_run_is_recomputed_from_its_model(toy_run):
    """AER recomputed from the reloaded model's forced-decoding attention (rows = target words,
    columns = source words, EOS left out) equals the run's."""
    out, m = toy_run
    translator = Translator.from_run(out)
    corpus = load_toy(DataConfig(**TINY["data"]), 0)
    examples = encode_pairs(corpus.test, translator.src_tok, translator.tgt_tok, 50)
    links = []
    with torch.no_grad():
        for i, (src, tgt) in enumerate(corpus.test):
            b = make_batch(examples, [i])
            _, w = translator.model(b.src, b.src_lens, b.tgt_in, need_weights=True)
            n_src, n_tgt = len(src.split()), len(tgt.split())
            links.append({(int(w[0, t, :n_src].argmax()), t) for t in range(n_tgt)})
    assert m["aer"] == pytest.approx(
        _aer(links, corpus.test_alignments, corpus.test_possible), abs=1e-4
    )


def test_aer_reads_rows_as_target_words_and_columns_as_source_words(monkeypatch):
    """Guards against swapping source and target lengths in the pipeline's AER call. Fixture:
    sentences of unequal length, attention that puts all weight on each target word's gold source
    word (beyond the first target-length columns): AER 0; read with the lengths swapped it is not.
    """
    from types import SimpleNamespace

    from attnrun.translate import pipeline
    from attnrun.translate.data import Corpus

    pairs = [("a b c d e", "x y"), ("a b c", "x y z w v"), ("a b c d", "x")]
    sure = [{(3, 0), (4, 1)}, {(2, 0), (0, 1), (1, 2), (2, 3), (0, 4)}, {(3, 0)}]
    gold = []
    for (src, tgt), links in zip(pairs, sure):
        w = torch.zeros(len(tgt.split()) + 1, len(src.split()) + 1)  # (T + EOS, S + EOS)
        for s_, t in links:
            w[t, s_] = 1.0
        w[-1, -1] = 1.0  # EOS attends to EOS
        gold.append(w)
    corpus = Corpus("fixture", pairs, pairs, pairs, test_alignments=sure, test_possible=sure)
    monkeypatch.setattr(pipeline, "forced_attention", lambda *a, **k: gold)
    translator = SimpleNamespace(model=None, device="cpu")
    scores = pipeline.alignment_scores(translator, corpus, None)
    assert scores["aer"] == 0.0 and scores["aer_sure_only"] == 0.0 and scores["aer_layer"] == 1
    swapped = [
        {(int(w[t, : len(tgt.split())].argmax()), t) for t in range(min(len(src.split()), len(w)))}
        for w, (src, tgt) in zip(gold, pairs)
    ]
    assert _aer(swapped, sure, sure) > 0.5


def test_same_seed_same_metrics_other_seed_differs(toy_run, tmp_path):
    """Guards against an unseeded source of randomness in translate (data order, dropout, init)."""
    _, m0 = toy_run
    again = run(_with_seed(0), tmp_path / "again")
    other = run(_with_seed(1), tmp_path / "other")
    assert comparable(again) == comparable(m0)
    assert comparable(other)["perplexity"] != comparable(m0)["perplexity"]


def test_attention_samples_are_written_in_the_run_file_format(toy_run):
    """Guards against translate writing no attention samples for report (or a wrong layout)."""
    from attnrun.runs.files import read_attention

    out, _ = toy_run
    [sample] = read_attention(out)
    assert sample.kind == "cross" and sample.keys[-1] == "<eos>"
    assert sample.weights.shape[2:] == (len(sample.queries), len(sample.keys))
    rows = sample.weights[0, 0].sum(-1)
    assert rows == pytest.approx([1.0] * len(rows), abs=1e-4)  # softmax over source positions


def test_aer_layer_is_chosen_on_validation_and_scored_on_test(monkeypatch):
    """Guards against picking the AER layer on the test split (or reporting the test's best):
    with layer 1 right on validation and layer 2 right on test, ``aer_layer`` is 1 and ``aer`` is
    layer 1's test figure; every layer and head is scored."""
    from types import SimpleNamespace

    from attnrun.translate import pipeline
    from attnrun.translate.data import Corpus

    pairs = [("a b c d e", "x y"), ("a b c", "x y z w v")]
    sure = [{(3, 0), (4, 1)}, {(2, 0), (0, 1), (1, 2), (2, 3), (0, 4)}]

    def maps(gold_layer: int) -> list[torch.Tensor]:
        out = []
        for (src, tgt), links in zip(pairs, sure):
            w = torch.full((2, 3, len(tgt.split()) + 1, len(src.split()) + 1), 0.01)
            w[:, :, :, 0] = 0.5  # every head, every layer: the first source word ...
            for s_, t in links:
                w[gold_layer, :, t, s_] = 1.0  # ... except the gold layer
            out.append(w)
        return out

    calls = iter([maps(1), maps(0)])  # test first (layer 2 gold), then validation (layer 1)
    monkeypatch.setattr(pipeline, "forced_attention", lambda *a, **k: next(calls))
    corpus = Corpus(
        "fixture", pairs, pairs, pairs, test_alignments=sure, test_possible=sure,
        val_alignments=sure, val_possible=sure,
    )  # fmt: skip
    scores = pipeline.alignment_scores(SimpleNamespace(model=None, device="cpu"), corpus, [], [])
    assert scores["aer_layer"] == 1
    assert scores["aer_by_layer"][1] == 0.0 and scores["aer"] == scores["aer_by_layer"][0] > 0.3
    assert len(scores["aer_by_head"]) == 2 and len(scores["aer_by_head"][0]) == 3


def test_transformer_run_scores_every_layer_and_head(tmp_path):
    """A tiny Transformer toy run reports AER per layer and per head and names the chosen layer."""
    cfg = json.loads(json.dumps(TINY))
    cfg["model"] = {"arch": "transformer", "num_hiddens": 16, "num_heads": 2, "num_layers": 2,
                    "ffn_hiddens": 16}  # fmt: skip
    m = run(cfg, tmp_path)
    assert len(m["aer_by_layer"]) == 2 and [len(r) for r in m["aer_by_head"]] == [2, 2]
    assert m["aer"] == m["aer_by_layer"][m["aer_layer"] - 1]
    from attnrun.runs.files import read_attention

    samples = {s.name: s for s in read_attention(tmp_path)}
    cross, enc = samples["test 0"], samples["test 0 encoder_self"]
    assert cross.kind == "cross" and cross.weights.shape[:2] == (2, 2)
    assert cross.weights.shape[2:] == (len(cross.queries), len(cross.keys))
    assert enc.queries == enc.keys == cross.keys
    assert samples["test 0 decoder_self"].queries[0] == "<bos>"
    assert (tmp_path / "attention_0_heads.png").is_file()


def test_references_and_hypotheses_are_spaced_the_same_way(toy_run):
    """Guards against translations.tsv showing references as the corpus spaces them ("noir !")
    beside hypotheses as the word tokenizer joins them ("noir!"): every toy sentence ends in
    . ! or ?, and neither column has a space before it."""
    import re

    out, _ = toy_run
    hyps, refs = _translations(out)
    assert refs and all(re.search(r"\S[.!?]$", r) for r in refs), refs[:3]
    assert not any(re.search(r" [.,!?;:]", t) for t in hyps + refs)
