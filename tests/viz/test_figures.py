"""The run PNGs read the same everywhere: one attention colour map with a labelled colour bar,
BLEU axes from 0, legends that cover no line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from attnrun.viz import ATTENTION_CMAP
from attnrun.viz.heatmaps import heatmap_grid


def _capture(monkeypatch, module, name: str = "save_figure") -> list[Figure]:
    """Figures handed to ``module.<name>(fig, ...)`` instead of being written."""
    seen: list[Figure] = []
    monkeypatch.setattr(module, name, lambda fig, *a, **k: seen.append(fig))
    return seen


def _heatmap_images_and_colorbars(fig: Figure):
    images = [im for ax in fig.axes for im in ax.images]
    bars = [ax for ax in fig.axes if not ax.images and ax.get_label() == "<colorbar>"]
    return images, bars


def _one_map_and_labelled_bar(fig: Figure, label: str = "attention weight") -> None:
    images, bars = _heatmap_images_and_colorbars(fig)
    assert images and {im.get_cmap().name for im in images} == {ATTENTION_CMAP}
    assert bars and [b.get_ylabel() for b in bars] == [label] * len(bars)


def test_heatmap_grid_uses_the_attention_map_and_labels_its_colour_bar():
    """Guards against a colour bar without a word of what it measures and a grid drawn in its
    own colour map."""
    w = torch.softmax(torch.randn(2, 2, 3, 4, generator=torch.Generator().manual_seed(0)), -1)
    _one_map_and_labelled_bar(heatmap_grid(w))
    _one_map_and_labelled_bar(heatmap_grid(w, colorbar_label="mass"), "mass")


def test_every_attention_png_uses_the_same_map(monkeypatch, tmp_path):
    """The translate heatmaps, the coref mass table, the regression map and the report's panels
    (which drew viridis beside the runs' Reds)."""
    import attnrun.regression.plots as regression
    import attnrun.report.plots as report
    import attnrun.translate.plots as translate
    from attnrun.runs.files import AttentionSample
    from attnrun.translate.coref_plots import mass_figure

    seen = _capture(monkeypatch, translate)
    w = np.random.default_rng(0).dirichlet(np.ones(4), size=(2, 2, 3))  # (L, H, T, S)
    translate.write_attention_figures(
        tmp_path, [AttentionSample("s", "cross", ["a", "b", "c"], ["w", "x", "y", "z"], w)]
    )
    assert len(seen) == 2  # attention_0.png and attention_0_heads.png
    for fig in seen:
        _one_map_and_labelled_bar(fig)
    _one_map_and_labelled_bar(
        mass_figure({"trained": [[0.1, 0.9]], "untrained": [[0.5, 0.5]]}),
        "attention mass on the antecedent",
    )
    reg = _capture(monkeypatch, regression, "_save")
    x = torch.linspace(0, 1, 5)
    regression.plot_attention(tmp_path / "a.png", torch.softmax(torch.randn(5, 5), -1), x, x)
    _one_map_and_labelled_bar(reg[0])
    rep = _capture(monkeypatch, report, "_png")
    report.plot_attention_grid([("dot", np.eye(3), list("abc"), list("xyz"))])
    _one_map_and_labelled_bar(rep[0])


def _drawn(fig: Figure) -> Figure:
    FigureCanvasAgg(fig).draw()
    return fig


@pytest.mark.parametrize("bleu", [[88.0, 93.5, 99.1], [0.0, 0.4, 1.2]])
def test_loss_png_starts_bleu_at_zero_and_its_legend_covers_no_line(monkeypatch, tmp_path, bleu):
    """Guards against a validation-BLEU axis from 88 (the line seems to climb from the floor)
    and a legend drawn inside the axes over the lines."""
    import attnrun.translate.plots as translate

    seen = _capture(monkeypatch, translate)
    history = [
        {"epoch": e + 1, "train_loss": 2.0 / (e + 1), "val_loss": 2.2 / (e + 1), "val_bleu": b}
        for e, b in enumerate(bleu)
    ]
    translate.plot_loss(history, tmp_path / "loss.png")
    fig = _drawn(seen[0])
    left, right = fig.axes
    assert right.get_ylim()[0] == 0 and right.get_ylim()[1] >= max(bleu)
    assert right.get_ylabel() == "validation BLEU"
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["train loss", "val loss", "val BLEU"]
    box = legend.get_window_extent()
    for ax in (left, right):
        assert not box.overlaps(ax.get_window_extent()), "the legend covers the axes"


def test_bleu_by_length_legend_stands_outside_the_axes(monkeypatch, tmp_path):
    import attnrun.translate.plots as translate

    seen = _capture(monkeypatch, translate)
    rows = [{"range": r, "sentences": 3, "bleu_lowercase": b} for r, b in (("1-5", 40), ("6+", 20))]
    translate.plot_bleu_by_length({"a": rows, "b": rows}, tmp_path / "b.png")
    fig = _drawn(seen[0])
    (ax,) = fig.axes
    (legend,) = fig.legends
    assert ax.get_ylim()[0] == 0 and not legend.get_window_extent().overlaps(ax.get_window_extent())
