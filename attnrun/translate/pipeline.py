"""The body of the ``translate`` experiment, as named steps:

1. data: load the corpus (``dataset=``);
2. tokenizers: trained on the training split, saved into the run;
3. model: built from the config, wrapped in a :class:`~attnrun.translate.translator.Translator`;
4. train: :class:`~attnrun.translate.train.Trainer` (resumable);
5. evaluate: the test split translated and scored (sacreBLEU BLEU / chrF, perplexity, and for the
   toy language the alignment error rate of the attention argmax);
6. write: ``translations.tsv`` (``nbest.json``), ``history.json``, ``loss.png``,
   ``bleu_by_length.png``, attention heatmaps, ``attention.json`` and ``attention.html``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from attnrun.io import write_json, write_text
from attnrun.runs import files
from attnrun.translate.batching import encode_pairs
from attnrun.translate.coref import coref_metrics
from attnrun.translate.coref_plots import write_coref_figures
from attnrun.translate.data import Corpus, datasets
from attnrun.translate.evaluation import forced_attention, perplexity
from attnrun.translate.metrics import (
    alignment_error_rate,
    argmax_alignment,
    bleu_by_length,
    corpus_scores,
    d2l_bleu,
    sentence_bleus,
)
from attnrun.translate.models import build_model, decoder_name
from attnrun.translate.plots import plot_bleu_by_length, plot_loss, write_attention_figures
from attnrun.translate.tokenize import save_tokenizer, tokenizers
from attnrun.translate.train import Trainer, TrainState
from attnrun.translate.translator import Translator

SCORE_KEYS = (
    "bleu",
    "bleu_lowercase",
    "chrf",
    "chrf_lowercase",
    "bleu_signature",
    "chrf_signature",
)


def run_translate(cfg, out_dir: Path, ctx) -> dict[str, Any]:
    """Steps 1-6 of the module docstring; returns the run's metrics."""
    corpus = load_corpus(cfg, ctx.reporter)
    src_tok, tgt_tok = train_tokenizers(cfg.tokenizer, corpus, out_dir)
    max_len = cfg.data.max_len
    train_ex, val_ex, test_ex = (
        encode_pairs(pairs, src_tok, tgt_tok, max_len)
        for pairs in (corpus.train, corpus.val, corpus.test)
    )
    translator = make_translator(cfg, src_tok, tgt_tok, ctx)
    trainer = Trainer(translator, train_ex, corpus.val, val_ex, cfg, ctx)
    state = trainer.run()
    scores, hyps, samples = test_scores(translator, corpus, out_dir, cfg.plot.heatmaps)
    metrics = {
        **scores,
        "perplexity": round(perplexity(translator.model, test_ex, 128, ctx.device), 3),
        **training_figures(state),
        **trainer.weights_figures(),
        "parameters": sum(p.numel() for p in translator.model.parameters()),
        "decoder": decoder_name(cfg),
        "skipped_lines": corpus.skipped,
    }
    if corpus.test_alignments is not None and translator.attends:
        metrics.update(alignment_scores(translator, corpus, test_ex, val_ex))
    if "coref" in corpus.extra:
        metrics.update(
            coref_step(cfg, translator, corpus, (hyps, samples), (val_ex, test_ex), out_dir)
        )
    if "demo" in corpus.extra:
        metrics["d2l_demo"] = demo_translations(translator, corpus.extra["demo"])
    files.write_history(out_dir, state.history)
    plot_loss(state.history, out_dir / "loss.png")
    return metrics


# 1.-3. data, tokenizers, model ----------------------------------------------------------------


def load_corpus(cfg, reporter) -> Corpus:
    corpus = datasets.get(cfg.dataset)(cfg.data, cfg.seed)
    skipped = f" ({corpus.skipped} bad lines skipped)" if corpus.skipped else ""
    reporter.info(
        f"{cfg.dataset}: {len(corpus.train)} train, {len(corpus.val)} val, "
        f"{len(corpus.test)} {corpus.test_name} pairs{skipped}"
    )
    return corpus


def train_tokenizers(tk, corpus: Corpus, out_dir: Path):
    """Source and target tokenizers trained on the training split, saved into the run. With
    ``tokenizer.shared`` one tokenizer is trained on the source and target sentences together and
    serves both sides (saved as both sides' files, so every reader of a side works unchanged)."""
    build = tokenizers.get(tk.kind)
    options = {
        "min_freq": tk.min_freq,
        "vocab_size": tk.vocab_size,
        "lowercase": tk.lowercase,
        "split_apostrophes": tk.split_apostrophes,
    }
    sources, targets = [s for s, _ in corpus.train], [t for _, t in corpus.train]
    if tk.shared:
        src_tok = tgt_tok = build(sources + targets, **options)
    else:
        src_tok, tgt_tok = build(sources, **options), build(targets, **options)
    save_tokenizer(src_tok, out_dir, "src")
    save_tokenizer(tgt_tok, out_dir, "tgt")
    return src_tok, tgt_tok


def make_translator(cfg, src_tok, tgt_tok, ctx) -> Translator:
    model = build_model(cfg, src_tok.size, tgt_tok.size).to(ctx.device)
    n_params = sum(p.numel() for p in model.parameters())
    decoder = decoder_name(cfg)
    kind = f"{decoder} decoder, {cfg.score} score"
    if not getattr(model.decoder, "has_attention", True):  # decoder=none: the score is unused
        kind = f"{decoder} decoder, no attention"
    if cfg.model.arch == "transformer":
        kind = "transformer, scaled dot-product attention"
    ctx.reporter.info(
        f"model: {kind}, {n_params:,} parameters, vocab {src_tok.size}/{tgt_tok.size}"
    )
    ctx.record.update(parameters=n_params, decoder=decoder)
    return Translator(model, src_tok, tgt_tok, cfg.data.max_len, cfg.decode, ctx.device)


# 5. evaluate -----------------------------------------------------------------------------------


def test_scores(translator: Translator, corpus: Corpus, out_dir: Path, n_samples: int):
    """Translate the test split; write translations (and n-best lists) and the attention of the
    first ``n_samples`` sentences; return sacreBLEU's scores of hypotheses against references,
    the hypotheses and those attention samples."""
    sources = [s for s, _ in corpus.test]
    refs = [t for _, t in corpus.test]
    hyps, all_hyps = translator.translate(sources)
    scores = corpus_scores(hyps, refs)
    shown = [translator.tgt_tok.detokenize(r) for r in refs]  # spaced as the hypotheses are
    write_translations(out_dir / "translations.tsv", sources, shown, hyps)
    if translator.decode.n_best > 1:
        nbest = [
            [{"translation": translator.text(h, src), "score": h.score} for h in hs]
            for hs, src in zip(all_hyps, sources)
        ]
        write_json(out_dir / "nbest.json", nbest)
    samples = []
    if translator.attends:
        n = min(n_samples, len(sources))
        samples = translator.attention_samples(sources[:n], [h[0] for h in all_hyps[:n]], "test")
        files.write_attention(out_dir, samples)
        write_attention_figures(out_dir, samples)
    by_length = bleu_by_length(sources, hyps, refs)
    plot_bleu_by_length({"this run": by_length}, out_dir / "bleu_by_length.png")
    return (
        {
            **{k: scores[k] for k in SCORE_KEYS},
            "bleu_by_length": by_length,
            "test_split": corpus.test_name,
            "test_sentences": len(sources),
        },
        hyps,
        samples,
    )


def coref_step(cfg, translator: Translator, corpus: Corpus, test, examples, out_dir) -> dict:
    """The ``coref`` corpus: pronoun and agreement accuracy, baselines, the head masses of the
    trained model and of the same model untrained (:mod:`attnrun.translate.coref`), and their
    figures. ``test``: the test split's hypotheses and attention samples."""
    hyps, samples = test
    import torch

    with torch.random.fork_rng():
        torch.manual_seed(cfg.seed)
        untrained = build_model(cfg, translator.src_tok.size, translator.tgt_tok.size)
    untrained = untrained.to(translator.device).eval()
    val_ex, test_ex = examples
    metrics = coref_metrics(translator, corpus, hyps, val_ex, test_ex, untrained=untrained)
    write_coref_figures(out_dir, translator, metrics, samples)
    return metrics


def alignment_scores(translator: Translator, corpus: Corpus, test_ex, val_ex=None) -> dict:
    """AER (Och & Ney 2003) of the argmax of forced-decoding cross-attention against the gold
    links (rows are target words, columns source words, EOS left out on both sides), for every
    layer (heads averaged) and every head. ``aer`` is the layer chosen on the validation split
    (``aer_layer``, 1-based; the last without validation links) — the penultimate layer aligns
    best in Transformers (Garg et al. 2019); an RNN decoder has one layer and one head."""
    test = _aer_table(
        translator, corpus.test, test_ex, corpus.test_alignments, corpus.test_possible
    )
    layer = len(test["by_layer"]) - 1
    if val_ex is not None and corpus.val_alignments is not None and len(test["by_layer"]) > 1:
        val = _aer_table(translator, corpus.val, val_ex, corpus.val_alignments, corpus.val_possible)
        layer = min(range(len(val["by_layer"])), key=lambda i: val["by_layer"][i])
    out = {
        "aer": test["by_layer"][layer],
        "aer_sure_only": test["sure_only"][layer],
        "aer_layer": layer + 1,
        "aer_by_layer": test["by_layer"],
    }
    if max(len(row) for row in test["by_head"]) > 1:
        out["aer_by_head"] = test["by_head"]
    return out


def _aer_table(translator, pairs, examples, sure, possible) -> dict[str, list]:
    """Test or validation AER per layer (heads averaged), per (layer, head), sure links only."""
    found = forced_attention(translator.model, examples, 128, translator.device)
    assert found is not None  # alignment_scores runs only for a model that attends
    maps = [w.view(1, 1, *w.shape) if w.ndim == 2 else w for w in found]  # (L, H, T, S)
    layers, heads = maps[0].shape[:2]
    lens = [(len(src.split()), len(tgt.split())) for src, tgt in pairs]

    def aer(weights, only_sure: bool = False) -> float:
        predicted = [argmax_alignment(w, n_src, n_tgt) for w, (n_src, n_tgt) in zip(weights, lens)]
        return round(alignment_error_rate(predicted, sure, None if only_sure else possible), 4)

    mean = [[w[i].mean(0) for w in maps] for i in range(layers)]
    return {
        "by_layer": [aer(m) for m in mean],
        "sure_only": [aer(m, only_sure=True) for m in mean],
        "by_head": [[aer([w[i, h] for w in maps]) for h in range(heads)] for i in range(layers)],
    }


def training_figures(state: TrainState) -> dict:
    return {
        "val_bleu": state.best_val_bleu,
        "best_epoch": state.best_epoch,
        "epochs_run": len(state.history),
        "stopped": state.stopped,
        "train_tokens_per_s": round(state.tokens_per_s, 1),
        "train_seconds": round(state.seconds, 1),
    }


def demo_translations(translator: Translator, demo: list[tuple[str, str]]) -> list[dict]:
    """d2l 10.7's demo sentences with d2l's own BLEU (k = 2), for side-by-side reading."""
    greedy = translator.with_decode(beam=1, n_best=1)
    _, hyps = greedy.translate([s for s, _ in demo])
    out = []
    for (src, ref), h in zip(demo, hyps):
        text = " ".join(translator.tgt_tok.pieces(h[0].ids))
        out.append(
            {
                "source": src,
                "translation": text,
                "reference": ref,
                "bleu_k2": round(d2l_bleu(text or "<empty>", ref), 3),
            }
        )
    return out


# 6. write --------------------------------------------------------------------------------------


def write_translations(path: Path, sources, refs, hyps) -> None:
    """``translations.tsv``: source, reference, hypothesis and sentence BLEU of each test pair
    (the references as the caller spaced them: like the hypotheses, see :func:`test_scores`)."""
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(["source", "reference", "hypothesis", "sentence_bleu"])
    for row in zip(sources, refs, hyps, sentence_bleus(hyps, refs)):
        w.writerow(row)
    write_text(path, buf.getvalue())
