"""Figures of a translation run, drawn with the shared plotting layer (:mod:`attnrun.viz`):
the loss curve and the attention heatmaps and viewers of the sample sentences."""

from __future__ import annotations

from pathlib import Path

from attnrun.runs.files import AttentionSample
from attnrun.viz.curves import buckets_figure, curves_figure
from attnrun.viz.heatmaps import heatmap_grid, save_figure
from attnrun.viz.viewer import AttentionView, write_attention_views_html

__all__ = ["plot_bleu_by_length", "plot_loss", "sentence_views", "write_attention_figures"]


def plot_loss(history: list[dict], path: Path) -> None:
    """Training and validation loss per epoch (left axis) and validation BLEU (right axis)."""
    fig = curves_figure(
        {
            "train loss": [h["train_loss"] for h in history],
            "val loss": [h.get("val_loss") for h in history],
        },
        right={"val BLEU": [h["val_bleu"] for h in history]},
        x=[h["epoch"] for h in history],
        ylabel="cross-entropy per token",
        right_label="validation BLEU",
        title="training",
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
    cross-attention); the first sample's viewer is also ``attention.html``. Returns the PNG paths
    of the heatmaps."""
    pngs = []
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
        for name in (["attention.html"] if i == 0 else []) + [f"attention_{i}.html"]:
            write_attention_views_html(
                Path(out_dir) / name, views, title=s.title or s.name, initial_kind="cross"
            )
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
