"""The selfattn figures: a layer × head grid of heatmaps and the HTML viewer for one sentence,
the positional-encoding plots, and the untrained demo."""

from __future__ import annotations

from pathlib import Path

import torch

from attnrun.core import masked_softmax
from attnrun.selfattn.train import SentenceAttention
from attnrun.viz.heatmaps import heatmap_grid, save_figure
from attnrun.viz.positional import encoding_columns_figure, encoding_heatmap_figure
from attnrun.viz.viewer import write_attention_html

DEMO_SENTENCE = "I love deep learning more than machine learning"


def sentence_figures(
    out_dir: Path,
    stem: str,
    reading: SentenceAttention,
    layer_names: list[str],
    best: tuple[int, int] = (0, 0),
) -> list[Path]:
    """``{stem}_heads.png`` (every layer and head) and ``{stem}.html`` (the viewer, opened at
    ``best`` = (layer, head)); returns the paths written."""
    tokens, title = reading.tokens, reading.title
    heads = reading.attention.shape[1]
    fig = heatmap_grid(
        reading.attention,
        x_tokens=tokens,
        y_tokens=tokens,
        row_titles=layer_names,
        col_titles=[f"head {h + 1}" for h in range(heads)],
        title=title,
    )
    png, page = out_dir / f"{stem}_heads.png", out_dir / f"{stem}.html"
    save_figure(fig, png)
    write_attention_html(
        page, tokens, tokens, reading.attention, title=title, layer_names=layer_names,
        initial_layer=best[0], initial_head=best[1],
    )  # fmt: skip
    return [png, page]


def positional_figures(out_dir: Path, num_hiddens: int, num_steps: int) -> list[Path]:
    """d2l's two positional-encoding plots for this model size."""
    paths = [out_dir / "positional_encoding.png", out_dir / "positional_encoding_heatmap.png"]
    save_figure(encoding_columns_figure(num_steps, num_hiddens), paths[0])
    save_figure(encoding_heatmap_figure(num_steps, num_hiddens), paths[1])
    return paths


def demo_weights(tokens: list[str], generator: torch.Generator, noise: float = 0.3) -> torch.Tensor:
    """Untrained attention: each token mostly attends to itself. ``(1, 1, T, T)`` rows of
    ``softmax(3·I + noise·N(0, 1))``."""
    t = len(tokens)
    scores = 3.0 * torch.eye(t) + noise * torch.randn(t, t, generator=generator)  # (T, T)
    return masked_softmax(scores.unsqueeze(0)).unsqueeze(0)  # (1, 1, T, T)


def demo_figures(out_dir: Path, generator: torch.Generator) -> list[Path]:
    """The demo: identity-plus-noise weights over :data:`DEMO_SENTENCE` as a labelled heatmap
    and in the viewer."""
    tokens = DEMO_SENTENCE.split()
    weights = demo_weights(tokens, generator)
    title = "Untrained demo: identity plus noise"
    fig = heatmap_grid(weights, x_tokens=tokens, y_tokens=tokens, title=title, cell_size=0.45)
    png, page = out_dir / "demo.png", out_dir / "attention.html"
    save_figure(fig, png)
    write_attention_html(page, tokens, tokens, weights, title=title, layer_names=["demo"])
    return [png, page]
