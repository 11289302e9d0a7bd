"""The positional-encoding plots of d2l 11.6: a few encoding columns over positions, and the
whole encoding matrix as a heatmap (Vaswani et al. 2017, 3.5)."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

from attnrun.core import positional_encoding_matrix

__all__ = ["encoding_columns_figure", "encoding_heatmap_figure"]


def encoding_columns_figure(
    num_steps: int = 60, num_hiddens: int = 32, columns: Sequence[int] = (6, 7, 8, 9)
) -> Figure:
    """Columns ``columns`` of ``P (num_steps, num_hiddens)`` against the row (position)."""
    P = positional_encoding_matrix(num_steps, num_hiddens).numpy()
    fig = Figure(figsize=(6.0, 2.8))
    ax = fig.subplots()
    for col in columns:
        if 0 <= col < num_hiddens:
            ax.plot(range(num_steps), P[:, col], label=f"col {col}")
    ax.set_xlabel("Row (position)")
    ax.set_title(f"Sinusoidal positional encoding, d={num_hiddens}")
    ax.legend(loc="upper right", fontsize=8)
    return fig


def encoding_heatmap_figure(num_steps: int = 60, num_hiddens: int = 32) -> Figure:
    """``P`` as a heatmap: rows are positions, columns encoding dimensions (d2l's Fig. 11.6.2)."""
    P = positional_encoding_matrix(num_steps, num_hiddens).numpy()
    fig = Figure(figsize=(4.0, 5.0))
    ax = fig.subplots()
    image = ax.imshow(P, cmap="Blues", aspect="auto")
    ax.set_xlabel("Column (encoding dimension)")
    ax.set_ylabel("Row (position)")
    ax.set_title("Positional encoding matrix")
    fig.colorbar(image, ax=ax, shrink=0.7, label="encoding value")
    return fig
