"""Shared by the docs tests: one workspace with the files the docs name and trained runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attnrun.cli import app

from .blocks import ROOT, blocks

#: a dated run or sweep folder, or a placeholder for one
DATED = re.compile(r"^(outputs|multirun)/(\d{4}-\d\d-\d\d/\d\d-\d\d-\d\d|DATE/TIME|<date>/<time>)$")


def json_blocks(page: str):
    for block in blocks(ROOT / page):
        if block.lang == "json":
            yield block.text


def run_of(ws: Path, kind: str) -> str:
    [run] = (ws / "fixture-runs" / kind).glob("outputs/*/*")
    return str(run)


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> Path:
    """A folder with the files the docs name, a trained selfattn and translate run and a sweep."""
    ws = tmp_path_factory.mktemp("docs-commands")
    rows = ["x,y"] + [f"{i * 0.08:.2f},{(i * 0.08) ** 0.8 + (i % 7) * 0.1:.3f}" for i in range(60)]
    (ws / "points.csv").write_text("\n".join(rows) + "\n")
    nouns = ["cat", "dog", "man", "woman", "bird", "child"]
    french = ["chat", "chien", "homme", "femme", "oiseau", "enfant"]
    verbs = [("sees", "voit"), ("eats", "mange"), ("likes", "aime")]
    pairs = [
        f"the {a} {v} the {b} .\tle {fa} {fv} le {fb} ."
        for a, fa in zip(nouns, french)
        for b, fb in zip(nouns, french)
        for v, fv in verbs
    ]
    (ws / "pairs.tsv").write_text("\n".join(pairs) + "\n")
    (ws / "sentences.txt").write_text("the boy is happy .\nthe woman does not eat .\n")
    (ws / "test.en").write_text("the boy is happy .\nthe old woman eats .\n")
    (ws / "test.fr").write_text("le garçon est heureux .\nla vieille femme mange .\n")
    lexicon = next(json_blocks("docs/guides/your-data.md"))
    (ws / "lexicon.json").write_text(lexicon)
    runs = ws / "fixture-runs"
    for argv in (
        ["selfattn", *_tiny("selfattn"), "--root", str(runs / "selfattn"), "-q"],
        ["translate", *_tiny("translate"), "--root", str(runs / "translate"), "-q"],
        ["regress", "-m", "kernel=gaussian,boxcar", "--root", str(ws), "-q"],
    ):
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 0, result.output
    return ws


def interrupted_run(ws: Path) -> str:
    """A fresh selfattn run stopped (as by Ctrl-C) after its first of two epochs: what
    ``attnrun resume`` continues. One per call: a resumed run is completed."""
    from attnrun.runs.checkpoint import Checkpointer

    real_save = Checkpointer.save

    def save_then_stop(self, epoch, *args, **kwargs):
        real_save(self, epoch, *args, **kwargs)
        raise KeyboardInterrupt

    root = ws / "fixture-runs" / f"interrupted-{len(list(ws.glob('fixture-runs/interrupted-*')))}"
    argv = ["selfattn", *_tiny("selfattn"), "train.epochs=2", "--root", str(root), "-q"]
    Checkpointer.save = save_then_stop  # type: ignore[method-assign]
    try:
        result = CliRunner().invoke(app, argv)
    finally:
        Checkpointer.save = real_save  # type: ignore[method-assign]
    assert result.exit_code == 130, result.output
    [run] = root.glob("outputs/*/*")
    return str(run)


def _tiny(experiment: str) -> list[str]:
    from .test_commands import TINY

    return [f"{k}={v}" for k, v in TINY[experiment].items()]
