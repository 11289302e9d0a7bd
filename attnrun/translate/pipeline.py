"""The body of the ``translate`` experiment: data → tokenizers → train → evaluate → files."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from attnrun.io import write_json, write_text
from attnrun.translate.batching import encode_pairs
from attnrun.translate.data import datasets
from attnrun.translate.evaluation import forced_attention, perplexity, translate_texts
from attnrun.translate.metrics import (
    alignment_error_rate,
    argmax_alignment,
    corpus_scores,
    d2l_bleu,
    sentence_bleus,
)
from attnrun.translate.models import build_model, decoder_name
from attnrun.translate.plots import plot_attention, plot_loss
from attnrun.translate.tokenize import save_tokenizer, tokenizers
from attnrun.translate.train import train_model


def write_translations(path: Path, sources, refs, hyps, bleus) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(["source", "reference", "hypothesis", "sentence_bleu"])
    for row in zip(sources, refs, hyps, bleus):
        w.writerow(row)
    write_text(path, buf.getvalue())


def attention_figures(
    out_dir: Path, model, src_tok, tgt_tok, sources: list[str], hyps, prefix: str = "attention"
) -> list[dict]:
    """One heatmap per hypothesis (source pieces on x, emitted pieces on y); also
    ``attention.html`` through the shared viewer when :mod:`attnrun.viz` provides it."""
    items = []
    for i, (text, h) in enumerate(zip(sources, hyps)):
        src_pieces = src_tok.pieces(src_tok.encode(text)[: h.weights.shape[1] - 1]) + ["<eos>"]
        ended = h.weights.shape[0] > len(h.ids)  # False when decoding stopped at max_len
        tgt_pieces = tgt_tok.pieces(h.ids) + (["<eos>"] if ended else [])
        path = out_dir / f"{prefix}_{i}.png"
        plot_attention(h.weights, src_pieces, tgt_pieces, path, title=tgt_tok.decode(h.ids))
        items.append(
            {
                "source": src_pieces,
                "target": tgt_pieces,
                "weights": h.weights.tolist(),
                "png": path.name,
            }
        )
    try:
        from attnrun.viz.viewer import write_attention_html  # the shared viewer, when present
    except ImportError:
        return items
    for i, item in enumerate(items):
        # the viewer takes (layers, heads, Tq, Tk); one file per sentence, the first also as
        # <prefix>.html
        w = [[[row[: len(item["source"])] for row in item["weights"][: len(item["target"])]]]]
        for name in ([f"{prefix}.html"] if i == 0 else []) + [f"{prefix}_{i}.html"]:
            write_attention_html(
                out_dir / name,
                item["source"],
                item["target"],
                w,
                title=" ".join(item["target"][:-1]),
                query_label="target",
                key_label="source",
            )
    return items


def run_translate(cfg, out_dir: Path, ctx) -> dict[str, Any]:
    rep = ctx.reporter
    if cfg.train.threads:
        import torch

        torch.set_num_threads(cfg.train.threads)
    corpus = datasets.get(cfg.dataset)(cfg.data, cfg.seed)
    rep.info(
        f"{cfg.dataset}: {len(corpus.train)} train, {len(corpus.val)} val, "
        f"{len(corpus.test)} {corpus.test_name} pairs"
        + (f" ({corpus.skipped} bad lines skipped)" if corpus.skipped else "")
    )
    tk = cfg.tokenizer
    build = tokenizers.get(tk.kind)
    src_tok = build(
        [s for s, _ in corpus.train],
        min_freq=tk.min_freq,
        vocab_size=tk.vocab_size,
        lowercase=tk.lowercase,
    )
    tgt_tok = build(
        [t for _, t in corpus.train],
        min_freq=tk.min_freq,
        vocab_size=tk.vocab_size,
        lowercase=tk.lowercase,
    )
    save_tokenizer(src_tok, out_dir, "src")
    save_tokenizer(tgt_tok, out_dir, "tgt")

    max_len = cfg.data.max_len
    train_ex = encode_pairs(corpus.train, src_tok, tgt_tok, max_len)
    val_ex = encode_pairs(corpus.val, src_tok, tgt_tok, max_len)
    test_ex = encode_pairs(corpus.test, src_tok, tgt_tok, max_len)
    model = build_model(cfg, src_tok.size, tgt_tok.size)
    n_params = sum(p.numel() for p in model.parameters())
    decoder = decoder_name(cfg.decoder, cfg.score)
    rep.info(
        f"model: {decoder} decoder, {cfg.score} score, {n_params:,} parameters, vocab "
        f"{src_tok.size}/{tgt_tok.size}"
    )
    ctx.record.update(parameters=n_params, decoder=decoder)

    result = train_model(model, train_ex, corpus.val, val_ex, src_tok, tgt_tok, cfg, ctx, out_dir)
    plot_loss(result.history, out_dir / "loss.png")

    # test split
    d = cfg.decode
    device = ctx.device
    sources = [s for s, _ in corpus.test]
    refs = [t for _, t in corpus.test]
    hyps, all_hyps = translate_texts(
        model,
        src_tok,
        tgt_tok,
        sources,
        max_len=max_len,
        decode_max_len=d.max_len,
        beam=d.beam,
        alpha=d.length_penalty,
        n_best=d.n_best,
        batch_size=d.batch_size,
        device=device,
    )
    scores = corpus_scores(hyps, refs)
    write_translations(
        out_dir / "translations.tsv", sources, refs, hyps, sentence_bleus(hyps, refs)
    )
    if d.n_best > 1:
        write_json(
            out_dir / "nbest.json",
            [
                [{"translation": tgt_tok.decode(h.ids), "score": h.score} for h in hs]
                for hs in all_hyps
            ],
        )
    n_fig = min(cfg.plot.heatmaps, len(sources))
    attention_figures(
        out_dir, model, src_tok, tgt_tok, sources[:n_fig], [h[0] for h in all_hyps[:n_fig]]
    )

    metrics: dict[str, Any] = {
        "bleu": scores["bleu"],
        "bleu_lowercase": scores["bleu_lowercase"],
        "chrf": scores["chrf"],
        "chrf_lowercase": scores["chrf_lowercase"],
        "bleu_signature": scores["bleu_signature"],
        "chrf_signature": scores["chrf_signature"],
        "perplexity": round(perplexity(model, test_ex, 128, device), 3),
        "test_split": corpus.test_name,
        "test_sentences": len(sources),
        "val_bleu": result.best_val_bleu,
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "stopped": result.stopped,
        "train_tokens_per_s": round(result.tokens_per_s, 1),
        "train_seconds": round(result.seconds, 1),
        "parameters": n_params,
        "decoder": decoder,
        "skipped_lines": corpus.skipped,
    }
    if corpus.test_alignments is not None:
        weights = forced_attention(model, test_ex, 128, device)
        predicted = [
            argmax_alignment(w, len(s.split()), len(t.split()))
            for w, (s, t) in zip(weights, corpus.test)
        ]
        metrics["aer"] = round(
            alignment_error_rate(predicted, corpus.test_alignments, corpus.test_possible), 4
        )
        metrics["aer_sure_only"] = round(alignment_error_rate(predicted, corpus.test_alignments), 4)
    if "demo" in corpus.extra:
        demo_src = [s for s, _ in corpus.extra["demo"]]
        demo_hyp, demo_h = translate_texts(
            model,
            src_tok,
            tgt_tok,
            demo_src,
            max_len=max_len,
            decode_max_len=d.max_len,
            device=device,
        )
        metrics["d2l_demo"] = [
            {
                "source": s,
                "translation": " ".join(tgt_tok.pieces(h[0].ids)),
                "reference": r,
                "bleu_k2": round(d2l_bleu(" ".join(tgt_tok.pieces(h[0].ids)) or "<empty>", r), 3),
            }
            for (s, r), h in zip(corpus.extra["demo"], demo_h)
        ]
    write_json(out_dir / "history.json", result.history)
    return metrics
