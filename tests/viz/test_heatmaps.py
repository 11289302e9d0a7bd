"""Heatmap grids with token labels and the positional-encoding figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnrun.core import positional_encoding_matrix
from attnrun.viz.heatmaps import heatmap_grid, save_figure
from attnrun.viz.positional import encoding_columns_figure, encoding_heatmap_figure


def test_grid_has_one_panel_per_layer_and_head_with_token_labels(tmp_path):
    tokens = ["the", "animal", "it", "tired"]
    w = torch.softmax(torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0)), -1)
    fig = heatmap_grid(w, x_tokens=tokens, y_tokens=tokens, row_titles=["layer 1", "pointer"],
                       col_titles=["head 1", "head 2", "head 3"], title="t")  # fmt: skip
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 6
    assert [t.get_text() for t in panels[-1].get_xticklabels()] == tokens
    assert [t.get_text() for t in panels[0].get_yticklabels()] == tokens
    assert panels[0].get_title() == "head 1" and "pointer" in panels[3].get_ylabel()
    np.testing.assert_allclose(panels[4].images[0].get_array(), w[1, 1].numpy())
    assert len(fig.axes) == 7  # six panels and one shared colour bar
    save_figure(fig, tmp_path / "grid.png")
    assert (tmp_path / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_single_matrix_and_bad_shapes():
    fig = heatmap_grid(np.eye(3))
    assert len([ax for ax in fig.axes if ax.images]) == 1
    with pytest.raises(ValueError, match="rows, cols, Tq, Tk"):
        heatmap_grid(np.zeros((2, 3, 3)))


def test_positional_plots_show_the_encoding_matrix():
    fig = encoding_columns_figure(60, 32, columns=(6, 7, 8, 9))
    lines = fig.axes[0].get_lines()
    P = positional_encoding_matrix(60, 32).numpy()
    assert len(lines) == 4
    np.testing.assert_allclose(lines[0].get_ydata(), P[:, 6])
    heat = encoding_heatmap_figure(60, 32)
    np.testing.assert_allclose(heat.axes[0].images[0].get_array(), P)
