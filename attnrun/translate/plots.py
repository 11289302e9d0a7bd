"""Figures of a translation run, drawn with the shared plotting layer (:mod:`attnrun.viz`):
the loss curve and the attention heatmaps and viewers of the sample sentences."""

from __future__ import annotations

from pathlib import Path

from attnrun.runs.files import AttentionSample
from attnrun.viz.curves import buckets_figure, curves_figure
from attnrun.viz.heatmaps import heatmap_grid, save_figure
from attnrun.viz.viewer import (
    AttentionSentence,
    AttentionView,
    write_attention_index_html,
    write_attention_views_html,
)

__all__ = ["plot_bleu_by_length", "plot_loss", "sentence_views", "write_attention_figures"]


def plot_loss(history: list[dict], path: Path) -> None:
    """Training and validation loss per epoch (left axis) and validation BLEU (right axis); with
    weight averaging the validation curves are the averaged weights' and the raw weights' ones
    are drawn beside them."""
    left = {
        "train loss": [h["train_loss"] for h in history],
        "val loss": [h.get("val_loss") for h in history],
    }
    right = {"val BLEU": [h["val_bleu"] for h in history]}
    if history and "raw_val_bleu" in history[0]:
        left = {"train loss": left["train loss"], "val loss (averaged)": left["val loss"],
                "val loss (raw)": [h.get("raw_val_loss") for h in history]}  # fmt: skip
        right = {"val BLEU (averaged)": right["val BLEU"],
                 "val BLEU (raw)": [h.get("raw_val_bleu") for h in history]}  # fmt: skip
    fig = curves_figure(
        left,
        right=right,
        x=[h["epoch"] for h in history],
        ylabel="cross-entropy per token",
        right_label="validation BLEU",
        title="training",
        right_from_zero=True,
    )
    save_figure(fig, path)


#: The kinds one sentence's viewer shows, in the Kind picker's order (cross-attention first, shown
#: first), with the labels of their query and key columns.
VIEW_COLUMNS = {
    "cross": ("target", "source"),
    "encoder_self": ("source", "source"),
    "decoder_self": ("target input", "target input"),
    "encoder_rollout": ("source", "source"),
}


def sentence_views(cross: AttentionSample, samples: list[AttentionSample]) -> list[AttentionView]:
    """The viewer's views of ``cross``'s sentence: its cross-attention, then the
    ``encoder_self`` / ``decoder_self`` samples named after it (``"<name> <kind>"``, as
    :meth:`Translator.attention_samples` names them; an RNN run has none)."""
    by_name = {s.name: s for s in samples}
    views = []
    for kind, (query_label, key_label) in VIEW_COLUMNS.items():
        s = cross if kind == "cross" else by_name.get(f"{cross.name} {kind}")
        if s is None or s.kind != kind:
            continue
        views.append(AttentionView(
            kind, s.queries, s.keys, s.weights, s.layer_names, query_label=query_label,
            key_label=key_label, initial_layer=s.layer if s.layer is not None else 0,
        ))  # fmt: skip
    return views


def write_attention_figures(out_dir: Path, samples: list[AttentionSample]) -> list[Path]:
    """Per cross-attention sample ``attention_<i>.png`` (heatmap of the shown layer: source on x,
    target on y), ``attention_<i>_heads.png`` (every layer × head, when there are several) and
    ``attention_<i>.html`` (the viewer, with layer and head pickers, and for a Transformer a Kind
    picker over the sentence's cross-, encoder self- and decoder self-attention, opening on
    cross-attention); ``attention.html`` is the index: every sample's viewer behind a Sentence
    picker, each linking to its own page. Returns the PNG paths of the heatmaps."""
    pngs, sentences = [], []
    for i, s in enumerate(x for x in samples if x.kind == "cross"):
        matrix, rows, cols = s.panel()
        png = Path(out_dir) / f"attention_{i}.png"
        fig = heatmap_grid(
            matrix, xlabel="source", ylabel="target", x_tokens=cols, y_tokens=rows,
            title=s.title, vmax=1.0, cell_size=0.4,
        )  # fmt: skip
        save_figure(fig, png)
        pngs.append(png)
        if s.weights.shape[0] * s.weights.shape[1] > 1:  # every layer and head (d2l's layout)
            heads = [f"head {h + 1}" for h in range(s.weights.shape[1])]
            grid = heatmap_grid(
                s.weights, xlabel="source", ylabel="target", x_tokens=s.keys, y_tokens=s.queries,
                row_titles=s.layer_names, col_titles=heads, title=s.title,
            )  # fmt: skip
            save_figure(grid, Path(out_dir) / f"attention_{i}_heads.png")
        views = sentence_views(s, samples)
        page = f"attention_{i}.html"
        write_attention_views_html(
            Path(out_dir) / page, views, title=s.title or s.name, initial_kind="cross"
        )
        source = " ".join(k for k in s.keys if k != "<eos>")
        label = f"{source} \u2192 {s.title}" if s.title else source  # the picker's entry
        sentences.append(AttentionSentence(label, views, "cross", page))
    if sentences:
        title = f"attention of {len(sentences)} test sentence{'s' if len(sentences) > 1 else ''}"
        write_attention_index_html(Path(out_dir) / "attention.html", sentences, title=title)
    return pngs


def plot_bleu_by_length(curves: dict[str, list[dict]], path: Path) -> None:
    """Lowercased BLEU against the source-length bucket, one line per named ``bleu_by_length``
    list (the picture of Bahdanau et al. 2015, Fig. 2)."""
    first = next(iter(curves.values()))
    fig = buckets_figure(
        {name: [r["bleu_lowercase"] for r in rows] for name, rows in curves.items()},
        [f"{r['range']}\n(n={r['sentences']})" for r in first],
        xlabel="source sentence length (words)", ylabel="BLEU (lowercased)",
        title="BLEU by source length",
    )  # fmt: skip
    save_figure(fig, path)
