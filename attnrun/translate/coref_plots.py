"""Figures of a ``coref`` run (:mod:`attnrun.translate.coref`), drawn with the plotting layer:

- ``coref_it.png``: the Transformer announcement's picture (Uszkoreit 2017) — a "tired" and a
  "wide" sentence side by side, lines from "it" to every source token in the best encoder head,
  width ∝ weight, the model's French beneath; ``coref_tired.html`` / ``coref_wide.html``: the
  viewer opened on that head;
- ``coref_heads.png``: the layer × head table of the mass from "it" onto the antecedent, trained
  and untrained;
- ``coref_cross_<i>.png``: cross-attention of the test sentences the run shows (``plot.heatmaps``)
  with the il / elle row marked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from attnrun.viz.heatmaps import heatmap_grid, save_figure
from attnrun.viz.viewer import write_attention_html

__all__ = ["DEMO", "write_coref_figures"]

#: The seed notes' pair: the adjective alone moves "it" from the animal to the street.
DEMO = {
    "tired": "the animal didn't cross the street because it was too tired .",
    "wide": "the animal didn't cross the street because it was too wide .",
}


def it_lines(ax, tokens: list[str], row: np.ndarray, it: int, title: str, french: str) -> None:
    """Two columns of ``tokens``; a line from "it" (left) to each token (right), width ∝ weight."""
    n = len(tokens)
    for j, w in enumerate(row):
        if w > 0.01:
            ax.plot([0.3, 0.7], [it, j], color="#1f77b4", lw=8 * float(w), alpha=0.8)
    for i, tok in enumerate(tokens):
        bold = {"fontweight": "bold", "color": "#cf222e"} if i == it else {}
        ax.text(0.28, i, tok, ha="right", va="center", fontsize=10, **bold)
        box = {"facecolor": (0.12, 0.47, 0.71, min(0.75, float(row[i]))), "edgecolor": "none"}
        ax.text(0.72, i, tok, ha="left", va="center", fontsize=10, bbox=box)
    ax.set_xlim(-0.1, 1.1)
    ax.set_ylim(n - 0.5, -1.2)
    ax.axis("off")
    ax.set_title(title, fontsize=10)
    ax.text(0.5, n + 0.2, french, ha="center", va="top", fontsize=10, style="italic", wrap=True)


def announcement_figure(panels: list[dict], head_label: str) -> Figure:
    """``panels``: ``{"tokens", "row" (Tk,), "it", "title", "french"}`` each."""
    fig = Figure(figsize=(5.2 * len(panels), 0.36 * max(len(p["tokens"]) for p in panels) + 1.6))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, p in zip(axes, panels):
        it_lines(ax, p["tokens"], p["row"], p["it"], p["title"], p["french"])
    fig.suptitle(f'attention from "it" — {head_label}', fontsize=11)
    return fig


def mass_figure(tables: dict[str, list[list[float]]]) -> Figure:
    """Heatmaps of ``(L, H)`` masses (one per named table), each cell written out."""
    arrays = np.array([tables[k] for k in tables], dtype=float)[None]  # (1, tables, L, H)
    layers, heads = arrays.shape[2:]
    fig = heatmap_grid(
        arrays, xlabel="head", ylabel="encoder layer", vmax=1.0, cell_size=0.6,
        colorbar_label="attention mass on the antecedent",
        x_tokens=[str(h + 1) for h in range(heads)], y_tokens=[str(i + 1) for i in range(layers)],
        col_titles=list(tables), title='attention mass from "it" onto its antecedent (test)',
    )  # fmt: skip
    for ax, table in zip(fig.axes, arrays[0]):
        for (i, h), v in np.ndenumerate(table):
            ax.text(h, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if v > 0.6 else "black")  # fmt: skip
    return fig


def cross_figure(sample, pronoun_rows: list[int]) -> Figure:
    """A cross-attention heatmap (source × target) with the il / elle rows outlined."""
    matrix, rows, cols = sample.panel()
    fig = heatmap_grid(
        matrix, xlabel="source", ylabel="target", x_tokens=cols, y_tokens=rows,
        title=sample.title, vmax=1.0, cell_size=0.4,
    )  # fmt: skip
    ax = fig.axes[0]
    for r in pronoun_rows:
        ax.add_patch(Rectangle((-0.5, r - 0.5), len(cols), 1, fill=False, ec="#2ca02c", lw=2))
    return fig


def write_coref_figures(out_dir: Path, translator, metrics: dict, samples) -> None:
    """The module docstring's figures; ``samples``: the test sentences' attention samples the run
    already wrote (the announcement picture needs an encoder with self-attention: the
    Transformer)."""
    out_dir = Path(out_dir)
    if "coref_mass_by_head" in metrics:
        tables = {"trained": metrics["coref_mass_by_head"]}
        if "coref_untrained_mass_by_head" in metrics:
            tables["untrained"] = metrics["coref_untrained_mass_by_head"]
        save_figure(mass_figure(tables), out_dir / "coref_heads.png")
        _announcement(out_dir, translator, metrics["coref_best_head"])
    for i, s in enumerate(x for x in samples if x.kind == "cross"):
        marked = [r for r, tok in enumerate(s.queries) if tok in ("il", "elle")]
        save_figure(cross_figure(s, marked), out_dir / f"coref_cross_{i}.png")


def _announcement(out_dir: Path, translator, best_head: list[int]) -> None:
    layer, head = best_head[0] - 1, best_head[1] - 1
    texts = list(DEMO.values())
    hyps, all_hyps = translator.translate(texts)
    samples = translator.attention_samples(texts, [h[0] for h in all_hyps], "demo")
    selfs = [s for s in samples if s.kind == "encoder_self"]
    panels = []
    if not all("it" in s.keys for s in selfs):  # a subword vocabulary may split "it"
        return
    for name, s, french in zip(DEMO, selfs, hyps):
        it = s.keys.index("it")
        row = np.asarray(s.weights[layer, head, it], dtype=float)
        panels.append(
            {"tokens": list(s.keys), "row": row, "it": it, "title": f'"... too {name}"',
             "french": french}
        )  # fmt: skip
        write_attention_html(
            out_dir / f"coref_{name}.html", s.keys, s.queries, s.weights, title=french,
            layer_names=s.layer_names, query_label="source", key_label="source",
            initial_layer=layer, initial_head=head,
        )  # fmt: skip
    label = f"encoder layer {layer + 1}, head {head + 1} (chosen on validation)"
    save_figure(announcement_figure(panels, label), out_dir / "coref_it.png")
