"""Figures of a translation run: the loss curve and attention heatmaps (files only; no models)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from attnrun.io import save_with  # noqa: E402
from attnrun.runs.files import AttentionSample  # noqa: E402
from attnrun.viz.viewer import write_attention_html  # noqa: E402


def _save(fig, path: Path) -> None:
    save_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)


def plot_loss(history: list[dict], path: Path) -> None:
    """Training loss per epoch (left axis) and validation BLEU (right axis)."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["train_loss"] for h in history], "o-", label="train loss")
    if any(h.get("val_loss") is not None for h in history):
        ax.plot(epochs, [h.get("val_loss") for h in history], "s--", label="val loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy per token")
    ax2 = ax.twinx()
    ax2.plot(epochs, [h["val_bleu"] for h in history], "^-", color="tab:green", label="val BLEU")
    ax2.set_ylabel("validation BLEU")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="center right")
    ax.set_title("training")
    _save(fig, path)


def plot_attention(
    weights, src_tokens: list[str], tgt_tokens: list[str], path: Path, title: str = ""
) -> None:
    """Heatmap of ``weights (len(tgt_tokens), len(src_tokens))``: source on x, target on y."""
    w = weights[: len(tgt_tokens), : len(src_tokens)]
    w = w.detach().cpu().numpy() if hasattr(w, "detach") else w
    width = max(4.0, 0.45 * len(src_tokens) + 1.5)
    height = max(3.0, 0.38 * len(tgt_tokens) + 1.2)
    fig, ax = plt.subplots(figsize=(width, height))
    im = ax.imshow(w, cmap="Reds", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(src_tokens)))
    ax.set_xticklabels(src_tokens, rotation=60, ha="right", fontsize=9)
    ax.set_yticks(range(len(tgt_tokens)))
    ax.set_yticklabels(tgt_tokens, fontsize=9)
    ax.set_xlabel("source")
    ax.set_ylabel("target")
    if title:
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04)
    _save(fig, path)


def write_attention_figures(out_dir: Path, samples: list[AttentionSample]) -> list[Path]:
    """Per sample ``attention_<i>.png`` (heatmap) and ``attention_<i>.html`` (the viewer); the
    first sample's viewer is also ``attention.html``. Returns the PNG paths."""
    pngs = []
    for i, s in enumerate(samples):
        matrix, rows, cols = s.panel()
        png = Path(out_dir) / f"attention_{i}.png"
        plot_attention(matrix, cols, rows, png, title=s.title)
        pngs.append(png)
        for name in (["attention.html"] if i == 0 else []) + [f"attention_{i}.html"]:
            write_attention_html(
                Path(out_dir) / name, s.keys, s.queries, s.weights, title=s.title or s.name,
                layer_names=s.layer_names, query_label="target", key_label="source",
            )  # fmt: skip
    return pngs
