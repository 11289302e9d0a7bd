"""attnrun.open_run / open_report: what a notebook gets (the browser test: tests/viz)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pytest
from fakes import sample, write_run

import attnrun
from attnrun.errors import AttnrunError

NETWORK = re.compile(r"""(?:src|href|action)\s*=\s*["']?\s*(?:[a-z]+:)?//|url\(|@import""", re.I)


def _srcdoc(fragment: str) -> str:
    (doc,) = re.findall(r'<iframe srcdoc="([^"]*)"', fragment)
    return html.unescape(doc)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    tokens = ["the", "animal", '"><script>x</script>', "it"]
    return write_run(
        tmp_path / "run",
        {"model": {"heads": 2}, "seed": 3},
        {"supervised_accuracy": 0.75},
        experiment="selfattn",
        history={"loss": [1.0, 0.5]},
        attention=[sample("tired", tokens, tokens, seed=0, kind="self", heads=2, focus=3)],
        viewer=True,
    )


def test_open_run_reads_metrics_config_attention_and_history(run_dir: Path) -> None:
    run = attnrun.open_run(run_dir)
    assert run.status == "completed" and run.experiment == "selfattn"
    assert run.metrics["supervised_accuracy"] == 0.75 and run.config == {
        "model": {"heads": 2},
        "seed": 3,
    }
    assert run.history == {"loss": [1.0, 0.5]}
    (s,) = run.attention
    assert (s.name, s.kind, s.focus) == ("tired", "self", 3) and s.weights.shape == (1, 2, 4, 4)
    assert "supervised_accuracy=0.75" in repr(run)


def test_a_selfattn_run_made_before_the_supervised_names_opens(tmp_path: Path) -> None:
    """Guards against open_run (and the report's key metrics) failing on a selfattn run written
    before its metrics were renamed supervised_*: it opens, with its old keys as they were."""
    old = write_run(tmp_path / "old", {"seed": 0}, {"accuracy": 0.9, "it_attention": 0.8},
                    experiment="selfattn")  # fmt: skip
    run = attnrun.open_run(old)
    assert run.metrics["accuracy"] == 0.9 and run.key_metrics == {}
    assert "selfattn" in repr(run)


def test_open_run_inlines_the_runs_own_viewer_exactly(run_dir: Path) -> None:
    """Guards against a viewer that loses characters (or lets them end the attribute) on the
    way into srcdoc: unescaped, the iframe holds the run's attention.html byte for byte."""
    fragment = attnrun.open_run(run_dir)._repr_html_()
    assert _srcdoc(fragment) == (run_dir / "attention.html").read_text(encoding="utf-8")
    assert 'sandbox="allow-scripts allow-popups"' in fragment
    assert not NETWORK.search(fragment) and not NETWORK.search(_srcdoc(fragment))


def test_open_run_builds_a_viewer_when_the_run_has_none(run_dir: Path) -> None:
    (run_dir / "attention.html").unlink()
    run = attnrun.open_run(run_dir)
    page = _srcdoc(run._repr_html_())
    assert "attention-data" in page and not NETWORK.search(page)
    assert run.viewer_html("tired") == page and run.viewer_html("nope") is None


def test_open_run_without_attention_is_a_summary(tmp_path: Path) -> None:
    run = attnrun.open_run(write_run(tmp_path / "r", {"seed": 0}, {"test_mse": 0.5}))
    fragment = run._repr_html_()
    assert "<iframe" not in fragment and "saved no attention" in fragment
    assert "test_mse" in fragment and run.attention == [] and run.viewer_html() is None


def test_open_run_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(AttnrunError, match="no such folder"):
        attnrun.open_run(tmp_path / "missing")
    write_run(tmp_path / "sweep" / "0", {"seed": 0}, {"x": 1.0})
    with pytest.raises(AttnrunError, match="holds 1 runs"):
        attnrun.open_run(tmp_path / "sweep")


def test_open_report_builds_in_memory_and_saves_only_when_asked(tmp_path: Path) -> None:
    """Guards against open_report writing report files into the user's run folders."""
    root = tmp_path / "sweep"
    for seed in (0, 1):
        for k in ("a", "b"):
            s = sample("x", ["q"], ["k1", "k2"], seed=seed)
            write_run(
                root / f"{k}{seed}",
                {"k": k, "seed": seed},
                {"m": float(seed)},
                history={"loss": [1.0, 0.5]},
                attention=[s],
            )
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    view = attnrun.open_report(root)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert len(view.runs) == 4 and view.report.swept == ["k"]
    page = _srcdoc(view._repr_html_())
    assert page == view.html and page.count("data:image/png;base64,") == 2  # loss, attention
    assert not NETWORK.search(page)
    assert view.save(tmp_path) == tmp_path / "report.html"
    assert (tmp_path / "report.html").read_text(encoding="utf-8") == view.html
    two = attnrun.open_report([root / "a0", root / "b1"])
    assert len(two.runs) == 2


def test_open_report_of_nothing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(AttnrunError, match="no runs under"):
        attnrun.open_report(tmp_path)


def test_attention_samples_are_the_files_own(run_dir: Path) -> None:
    from attnrun.runs import files

    (saved,) = files.read_attention(run_dir)
    np.testing.assert_array_equal(attnrun.open_run(run_dir).attention[0].weights, saved.weights)
