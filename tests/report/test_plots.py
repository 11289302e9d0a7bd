"""Comparison plots: attnrun.report.plots and make_report."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
import torch
from fakes import write_run

from attnrun.report import make_report
from attnrun.report.collect import collect
from attnrun.report.plots import (
    load_attention,
    load_history,
    plot_attention,
    plot_attention_grid,
    plot_losses,
    plot_metrics,
)
from attnrun.report.table import build


def _is_png(path: Path) -> bool:
    img = mpimg.imread(path)
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and img.shape[0] > 50 and img.shape[1] > 50


def test_make_report_writes_tables_and_plots(sweep: Path) -> None:
    files = make_report([sweep])
    names = sorted(p.name for p in files.plots)
    assert names == ["report_loss.png", "report_metric_bandwidth.png", "report_metric_test_mse.png"]
    assert all(_is_png(p) for p in files.plots)
    assert files.csv == sweep / "report.csv" and files.markdown == sweep / "report.md"
    assert "![report_loss](report_loss.png)" in files.markdown.read_text()
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
    rep = build(collect([tmp_path]), tmp_path)
    (path,) = plot_metrics(rep, tmp_path)
    assert path.name == "report_metric_test_mse.png" and _is_png(path)


def test_no_metric_plot_without_swept_values(tmp_path: Path) -> None:
    for seed in (0, 1):
        write_run(tmp_path / str(seed), {"seed": seed}, {"test_mse": 1.0})
    rep = build(collect([tmp_path]), tmp_path)
    assert plot_metrics(rep, tmp_path) == []


def test_history_json_then_loss_csv(tmp_path: Path) -> None:
    assert load_history(tmp_path) is None
    (tmp_path / "loss.csv").write_text("epoch,loss,val_loss\n1,1.0,2.0\n2,0.5,\n")
    assert load_history(tmp_path) == {
        "loss": [1.0, 0.5],
        "val_loss": [2.0, pytest.approx(np.nan, nan_ok=True)],
    }
    (tmp_path / "history.json").write_text(json.dumps({"loss": [3, None], "lr": 0.1}))
    h = load_history(tmp_path)
    assert list(h) == ["loss"] and h["loss"][0] == 3.0 and np.isnan(h["loss"][1])


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
    rep = build(collect([tmp_path]), tmp_path)
    assert _is_png(plot_losses(rep, tmp_path / "report_loss.png"))


def test_no_loss_plot_without_histories(tmp_path: Path) -> None:
    write_run(tmp_path / "a", {"seed": 0, "k": 1}, {"x": 1.0})
    rep = build(collect([tmp_path]), tmp_path)
    assert plot_losses(rep, tmp_path / "report_loss.png") is None
    assert not (tmp_path / "report_loss.png").exists()


SRC = ["the", "cat", "sat", "<eos>"]
TGT = ["le", "chat", "<eos>"]


def _weights(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    w = rng.random((rows, cols))
    return w / w.sum(axis=1, keepdims=True)


def test_attention_files_json_list_samples_and_pt(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    w = _weights(rng, 3, 4)
    (tmp_path / "attention.json").write_text(
        json.dumps({"src_tokens": SRC, "tgt_tokens": TGT, "weights": w.tolist()})
    )
    (tmp_path / "attention_more.json").write_text(
        json.dumps(
            {
                "samples": [
                    {"src": SRC, "tgt": TGT, "weights": w.tolist()},
                    {"src": SRC, "tgt": TGT, "weights": [[1.0]]},  # wrong shape: skipped
                ]
            }
        )
    )
    torch.save(
        [{"src_tokens": SRC, "tgt_tokens": TGT, "weights": torch.tensor(w)}],
        tmp_path / "attention_z.pt",
    )
    padded = np.pad(w, ((0, 2), (0, 1)))  # a decoder's padded rows and column are cropped
    item = {"source": SRC, "target": TGT, "weights": padded.tolist(), "png": "attention_0.png"}
    (tmp_path / "attention_samples.json").write_text(json.dumps([item]))
    (tmp_path / "attention_broken.json").write_text("{")
    samples = load_attention(tmp_path)
    assert len(samples) == 4
    for s in samples:
        assert s.src_tokens == SRC and s.tgt_tokens == TGT
        np.testing.assert_allclose(s.weights, w)


def test_attention_grid_from_plain_lists(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    panels = [
        (f"score={name}", SRC, TGT, _weights(rng, 3, 4).tolist())
        for name in ("dot", "general", "additive")
    ]
    assert _is_png(plot_attention_grid(tmp_path / "a.png", panels, suptitle="t"))
    with pytest.raises(ValueError):
        plot_attention_grid(tmp_path / "b.png", [])


def test_attention_plot_uses_the_sentence_every_run_saved(tmp_path: Path, monkeypatch) -> None:
    rng = np.random.default_rng(2)
    other = {"src_tokens": ["x"], "tgt_tokens": ["y"], "weights": [[1.0]]}
    for score in ("dot", "general"):
        for seed in (0, 1):
            run = write_run(
                tmp_path / f"{score}{seed}",
                {"model": {"score": score}, "seed": seed},
                {"bleu": 10.0},
                experiment="translate",
            )
            mine = {"src_tokens": SRC, "tgt_tokens": TGT, "weights": _weights(rng, 3, 4).tolist()}
            samples = [other, mine] if score == "dot" else [mine]
            (run / "attention_samples.json").write_text(json.dumps(samples))
    drawn = []
    import attnrun.report.plots as plots

    real = plots.plot_attention_grid
    monkeypatch.setattr(
        plots,
        "plot_attention_grid",
        lambda path, panels, suptitle=None: drawn.append(panels) or real(path, panels, suptitle),
    )
    rep = build(collect([tmp_path]), tmp_path)
    path = plot_attention(rep, tmp_path / "report_attention.png")
    assert _is_png(path)
    (panels,) = drawn
    assert [p[0] for p in panels] == ["score=dot", "score=general"]
    assert all(list(p[1]) == SRC for p in panels)


def test_no_attention_plot_without_files(sweep: Path) -> None:
    rep = build(collect([sweep]), sweep)
    assert plot_attention(rep, sweep / "report_attention.png") is None
