"""Comparison plots: attnrun.report.plots and make_report."""

from __future__ import annotations

import io
import json
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from fakes import sample, write_run

from attnrun.report import make_report
from attnrun.report.collect import collect
from attnrun.report.plots import (
    attention_panels,
    attention_plot,
    load_history,
    loss_plot,
    metric_plots,
    plot_attention_grid,
)
from attnrun.report.table import build
from attnrun.runs import files


def _is_png(data: Path | bytes) -> bool:
    raw = data.read_bytes() if isinstance(data, Path) else data
    img = mpimg.imread(io.BytesIO(raw), format="png")
    return raw[:8] == b"\x89PNG\r\n\x1a\n" and img.shape[0] > 50 and img.shape[1] > 50


def _report(root: Path):
    return build(collect([root]), root)


def test_make_report_writes_tables_and_plots(sweep: Path) -> None:
    files = make_report([sweep])
    names = sorted(p.name for p in files.plots)
    assert names == ["report_loss.png", "report_metric_bandwidth.png", "report_metric_test_mse.png"]
    assert all(_is_png(p) for p in files.plots)
    assert files.csv == sweep / "report.csv" and files.markdown == sweep / "report.md"
    assert "![report_loss](report_loss.png)" in files.markdown.read_text()
    assert files.html == sweep / "report.html" and files.html.stat().st_size > 1000
    assert "[report.html](report.html)" in files.markdown.read_text()
    assert not list(sweep.glob(".*.tmp"))


def test_one_metric_panel_per_swept_key(tmp_path: Path) -> None:
    for k in ("gaussian", "boxcar"):
        for bw in (0.5, 1.0, 2.0):
            for seed in (0, 1):
                write_run(
                    tmp_path / f"{k}{bw}{seed}",
                    {"kernel": k, "bw": bw, "seed": seed},
                    {"test_mse": bw + seed},
                )
    (plot,) = metric_plots(_report(tmp_path))
    assert plot.name == "report_metric_test_mse.png" and _is_png(plot.png)


def test_no_metric_plot_without_swept_values(tmp_path: Path) -> None:
    for seed in (0, 1):
        write_run(tmp_path / str(seed), {"seed": seed}, {"test_mse": 1.0})
    assert metric_plots(_report(tmp_path)) == []


def test_history_json_through_files(tmp_path: Path) -> None:
    """history.json is read through files.read_history; loss.csv is no longer a source."""
    assert load_history(tmp_path) is None
    (tmp_path / "loss.csv").write_text("epoch,loss\n1,1.0\n")
    assert load_history(tmp_path) is None
    files.write_history(tmp_path, {"loss": [3, None], "lr": 0.1, "epoch": [1, 2]})
    h = load_history(tmp_path)
    assert list(h) == ["loss"] and h["loss"][0] == 3.0 and np.isnan(h["loss"][1])
    (tmp_path / "history.json").write_text("{")
    assert load_history(tmp_path) is None


def test_history_as_per_epoch_records(tmp_path: Path) -> None:
    records = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 2.0 / e} for e in (1, 2)]
    (tmp_path / "history.json").write_text(json.dumps(records))
    assert load_history(tmp_path) == {"train_loss": [1.0, 0.5], "val_loss": [2.0, 1.0]}


def test_loss_plot_reads_train_loss_records(tmp_path: Path) -> None:
    for seed in (0, 1):
        run = write_run(
            tmp_path / str(seed),
            {"seed": seed, "score": "dot"},
            {"bleu": 1.0},
            experiment="translate",
        )
        records = [{"epoch": e, "train_loss": 1.0 / e + seed, "val_loss": 2.0 / e} for e in (1, 2)]
        (run / "history.json").write_text(json.dumps(records))
    plot = loss_plot(_report(tmp_path))
    assert plot.name == "report_loss.png" and _is_png(plot.png)


def test_no_loss_plot_without_histories(tmp_path: Path) -> None:
    write_run(tmp_path / "a", {"seed": 0, "k": 1}, {"x": 1.0})
    assert loss_plot(_report(tmp_path)) is None


SRC = ["the", "cat", "sat", "<eos>"]
TGT = ["le", "chat", "<eos>"]


def _translate_runs(root: Path, samples_of) -> None:
    """Two settings (score dot / general) x two seeds; ``samples_of(score, seed)`` -> samples."""
    for score in ("dot", "general"):
        for seed in (0, 1):
            write_run(
                root / f"{score}{seed}",
                {"model": {"score": score}, "seed": seed},
                {"bleu": 10.0},
                experiment="translate",
                attention=samples_of(score, seed),
            )


def test_attention_panels_show_the_same_sample_in_every_setting(tmp_path: Path) -> None:
    """Guards against drawing each run's first sample: the dot runs saved another sample first,
    so the panels would compare different inputs."""

    def samples_of(score: str, seed: int):
        mine = sample("test 0", TGT, SRC, seed={"dot": 0, "general": 10}[score] + seed)
        other = sample("test 1", ["y"], ["x"], seed=1)
        return [other, mine] if score == "dot" else [mine]

    _translate_runs(tmp_path, samples_of)
    panels = attention_panels(_report(tmp_path))
    assert [p.setting for p in panels] == ["score=dot", "score=general"]
    assert [p.run.path.name for p in panels] == ["dot0", "general0"]  # the first seed of each
    for p in panels:
        assert (p.sample.name, p.sample.kind) == ("test 0", "cross")
        saved = next(s for s in files.read_attention(p.run.path) if s.name == "test 0")
        np.testing.assert_allclose(p.sample.panel()[0], saved.panel()[0])
    # the two settings' maps differ: the panels are the runs' own, not one map repeated
    assert not np.allclose(panels[0].sample.panel()[0], panels[1].sample.panel()[0])
    plot = attention_plot(_report(tmp_path))
    assert plot.name == "report_attention.png" and _is_png(plot.png)


def test_a_sample_name_of_another_kind_is_not_mixed_in(tmp_path: Path) -> None:
    """Guards against matching samples by name alone: the dot runs' first "test 0" is the
    encoder self-attention, the general runs' only one the cross-attention."""

    def samples_of(score: str, seed: int):
        cross = sample("test 0", TGT, SRC, seed=seed)
        encoder = sample("test 0", SRC, SRC, seed=seed, kind="encoder_self")
        return [encoder, cross] if score == "dot" else [cross]

    _translate_runs(tmp_path, samples_of)
    panels = attention_panels(_report(tmp_path))
    assert len(panels) == 2 and {p.sample.kind for p in panels} == {"cross"}


def test_settings_without_the_sample_are_left_out(tmp_path: Path) -> None:
    def samples_of(score: str, seed: int):
        return [sample("grid", ["q1", "q2"], ["k1", "k2", "k3"], seed=seed, kind="kernel")]

    _translate_runs(tmp_path, samples_of)
    write_run(
        tmp_path / "additive0",
        {"model": {"score": "additive"}, "seed": 0},
        {"bleu": 1.0},
        experiment="translate",
        attention=[sample("other", ["a"], ["b"], seed=0)],
    )
    panels = attention_panels(_report(tmp_path))
    assert [p.setting for p in panels] == ["score=dot", "score=general"]


def test_focus_sample_draws_one_row_per_layer_and_head(tmp_path: Path, monkeypatch) -> None:
    """selfattn's "it" row: the panel is (layers x heads) rows over the keys."""
    tokens = ["the", "animal", "was", "tired", "it"]
    _translate_runs(
        tmp_path,
        lambda score, seed: [
            sample("tired", tokens, tokens, seed=seed, kind="self", layers=2, heads=3, focus=4)
        ],
    )
    import attnrun.report.plots as plots

    drawn = []
    real = plots.plot_attention_grid
    monkeypatch.setattr(
        plots, "plot_attention_grid", lambda g, *a, **k: drawn.append(g) or real(g, *a, **k)
    )
    plot = attention_plot(_report(tmp_path))
    assert _is_png(plot.png)
    (grid,) = drawn
    for _title, matrix, rows, cols in grid:
        assert matrix.shape == (6, 5) and rows[0] == "L1 H1" and cols == tokens


def test_old_attention_files_are_not_read(tmp_path: Path) -> None:
    """Guards against a second attention loader: only attention.json in the one format counts
    (the old tolerant src/tgt spellings and attention*.pt are gone)."""
    w = np.full((3, 4), 0.25)
    for score in ("dot", "general"):
        run = write_run(
            tmp_path / score, {"score": score, "seed": 0}, {"bleu": 1.0}, experiment="translate"
        )
        (run / "attention.json").write_text(
            json.dumps({"src_tokens": SRC, "tgt_tokens": TGT, "weights": w.tolist()})
        )
        (run / "attention_samples.json").write_text(
            json.dumps({"format": files.ATTENTION_FORMAT, "samples": []})
        )
    assert attention_plot(_report(tmp_path)) is None


def test_mathtext_in_tokens_and_settings_is_drawn_as_text(tmp_path: Path) -> None:
    """Guards against passing run text to matplotlib unescaped: "$\\frac{$" is broken mathtext
    and would stop savefig with a ParseError (a "$x$" token would silently turn into math)."""
    toks = ["$\\frac{$", "$x$", "<eos>"]
    for score in ("$dot$", "$\\sqrt{$"):
        write_run(
            tmp_path / score.strip("$\\{"),
            {"score": score, "seed": 0},
            {"bleu": 1.0},
            experiment="translate",
            history={"loss": [2.0, 1.0]},
            attention=[sample("s", toks, toks, seed=0)],
        )
    rep = _report(tmp_path)
    assert _is_png(attention_plot(rep).png)
    assert _is_png(loss_plot(rep).png)
    assert all(_is_png(p.png) for p in metric_plots(rep))


def test_attention_grid_from_plain_lists() -> None:
    rng = np.random.default_rng(1)
    panels = [(f"score={n}", rng.random((3, 4)), TGT, SRC) for n in ("dot", "general")]
    assert _is_png(plot_attention_grid(panels, ("target", "source"), suptitle="t"))
    many = [
        (str(i), rng.random((50, 50)), [str(j) for j in range(50)] * 1, list(map(str, range(50))))
        for i in range(6)
    ]
    assert _is_png(plot_attention_grid(many))  # two rows of panels, thinned tick labels
    with pytest.raises(ValueError):
        plot_attention_grid([])


def test_no_attention_plot_without_files(sweep: Path) -> None:
    assert attention_plot(_report(sweep)) is None


def test_bleu_by_length_is_overlaid_per_setting_mean_over_seeds(
    tmp_path: Path, monkeypatch
) -> None:
    """Guards against the length plot taking one run per setting or mixing settings: each line is
    the mean over that setting's completed seeds, bucket by bucket."""
    from attnrun.report import plots as plots_mod
    from attnrun.report.collect import collect
    from attnrun.report.table import build

    def rows(*bleus):
        names = ["1-10", "11-20", "21-30", "31+"]
        return [
            {"range": n, "sentences": 5, "bleu": b, "bleu_lowercase": b}
            for n, b in zip(names, bleus)
        ]

    for i, (decoder, seed, b) in enumerate(
        [
            ("none", 0, (30, 20, 10, 5)),
            ("none", 1, (32, 22, 12, 7)),
            ("bahdanau", 0, (31, 30, 29, 28)),
        ]
    ):
        write_run(
            tmp_path / str(i), {"decoder": decoder, "seed": seed},
            {"bleu_by_length": rows(*b)}, experiment="translate",
        )  # fmt: skip
    seen = {}

    def capture(curves, buckets, **kw):
        seen.update(curves=curves, buckets=buckets)
        return real(curves, buckets, **kw)

    real = plots_mod.buckets_figure
    monkeypatch.setattr(plots_mod, "buckets_figure", capture)
    plot = plots_mod.length_plot(build(collect([tmp_path]), tmp_path))
    assert plot is not None and plot.name == "report_bleu_by_length.png"
    assert seen["buckets"] == ["1-10", "11-20", "21-30", "31+"]
    assert seen["curves"] == {"decoder=none": [31, 21, 11, 6], "decoder=bahdanau": [31, 30, 29, 28]}


def _figures(monkeypatch) -> list:
    """Figures the report's plots render (captured at ``_png``), for inspection."""
    from attnrun.report import plots as plots_mod

    seen = []
    real = plots_mod._png
    monkeypatch.setattr(plots_mod, "_png", lambda fig: seen.append(fig) or real(fig))
    return seen


def test_categorical_values_are_grouped_bars_numeric_ones_a_line(tmp_path, monkeypatch) -> None:
    """Guards against dots (or a line) over categories: a decoder sweep's metric is one bar per
    category and setting of the other swept key, of height the mean over seeds with the sample
    std as error bar; a numeric key (lr) keeps its line."""
    bleu = {("none", 0.1): (10, 12), ("none", 0.2): (11, 15), ("bahdanau", 0.1): (20, 22),
            ("bahdanau", 0.2): (30, 36)}  # fmt: skip
    for (decoder, lr), values in bleu.items():
        for seed, b in enumerate(values):
            write_run(tmp_path / f"{decoder}{lr}{seed}", {"decoder": decoder, "lr": lr,
                      "seed": seed}, {"bleu": float(b)}, experiment="lab")  # fmt: skip
    seen = _figures(monkeypatch)
    (plot,) = metric_plots(_report(tmp_path))
    by_decoder, by_lr = [ax for ax in seen[0].axes if ax.get_visible()]
    assert by_decoder.get_xlabel() == "decoder" and by_lr.get_xlabel() == "lr"
    bars = by_decoder.patches
    assert len(bars) == 4 and not [ln for ln in by_decoder.lines if ln.get_linestyle() == "-"]
    heights = sorted(round(b.get_height(), 6) for b in bars)
    assert heights == sorted(np.mean(v) for v in bleu.values())
    # error bars: one vertical segment per bar, as long as 2 sample stds
    segments = [seg for c in by_decoder.collections for seg in c.get_segments()]
    lengths = sorted(round(float(np.ptp(seg[:, 1])), 6) for seg in segments)
    assert lengths == sorted(round(2 * float(np.std(v, ddof=1)), 6) for v in bleu.values())
    # the bars of one lr sit side by side within each decoder's slot
    for tick in (0, 1):
        assert sum(abs(b.get_x() + b.get_width() / 2 - tick) < 0.5 for b in bars) == 2
    assert not by_lr.patches and [len(ln.get_xdata()) for ln in by_lr.lines if
                                  ln.get_linestyle() == "-"] == [2, 2]  # fmt: skip


def test_a_metric_at_one_swept_value_only_gets_no_plot(tmp_path: Path) -> None:
    """aer exists for the attending decoder alone: one bar compares nothing."""
    for decoder in ("none", "bahdanau"):
        metrics = {"bleu": 1.0 + (decoder == "none")}
        if decoder != "none":
            metrics["aer"] = 0.3
        write_run(tmp_path / decoder, {"decoder": decoder, "seed": 0}, metrics, experiment="lab")
    names = [p.name for p in metric_plots(_report(tmp_path))]
    assert names == ["report_metric_bleu.png"]


def test_runs_without_attention_are_listed_with_why(tmp_path: Path) -> None:
    """Guards against a decoder=none setting silently missing from the panels: it is a gap with
    its reason, as are a setting with no completed run and one that saved another sample."""
    from attnrun.report.plots import attention_gaps

    for decoder, seed in (("none", 0), ("none", 1), ("bahdanau", 0), ("luong", 0), ("dot", 0)):
        att = [sample("test 0", TGT, SRC, seed=seed)] if decoder == "bahdanau" else None
        if decoder == "dot":
            att = [sample("test 9", TGT, SRC, seed=1)]
        write_run(tmp_path / f"{decoder}{seed}", {"decoder": decoder, "seed": seed},
                  {"bleu": 1.0, "decoder": decoder}, experiment="translate", attention=att,
                  status="failed" if decoder == "luong" else "completed")  # fmt: skip
    rep = _report(tmp_path)
    plot = attention_plot(rep)
    assert [p.setting for p in plot.panels] == ["decoder=bahdanau"]
    gaps = dict(plot.gaps)
    assert plot.gaps == attention_gaps(rep) and set(gaps) == {
        "decoder=none", "decoder=luong", "decoder=dot",
    }  # fmt: skip
    assert gaps["decoder=none"] == "decoder=none: a model without attention"
    assert gaps["decoder=luong"] == "no completed run (failed)"
    assert gaps["decoder=dot"] == "no cross attention of sample 'test 0' saved"
    assert "that has it" in plot.caption


def test_render_all_puts_the_key_figures_first(tmp_path: Path) -> None:
    from attnrun.report.plots import render_all

    rows = [{"range": "1-10", "sentences": 3, "bleu": 5.0, "bleu_lowercase": 5.0}]
    for score in ("dot", "general"):
        write_run(tmp_path / score, {"score": score, "seed": 0},
                  {"bleu": 1.0 + (score == "dot"), "bleu_by_length": rows},
                  experiment="translate", history={"loss": [2.0, 1.0]},
                  attention=[sample("test 0", TGT, SRC, seed=0)])  # fmt: skip
    names = [p.name for p in render_all(_report(tmp_path))]
    assert names == ["report_bleu_by_length.png", "report_attention.png",
                     "report_metric_bleu.png", "report_loss.png"]  # fmt: skip


@pytest.mark.parametrize("losses, log", [([4.0, 3.6], False), ([40.0, 0.5], True)])
def test_loss_axis_is_log_only_over_a_wide_range(tmp_path, monkeypatch, losses, log) -> None:
    """A loss from 4.0 to 3.6 on a log axis reads 3.6×10⁰ ... 4×10⁰: linear there."""
    write_run(tmp_path / "a", {"seed": 0, "k": 1}, {"x": 1.0}, history={"loss": losses})
    seen = _figures(monkeypatch)
    loss_plot(_report(tmp_path))
    assert (seen[0].axes[0].get_yscale() == "log") is log
