"""Run and seed-grouped tables: attnrun.report.table."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

from fakes import MSE, write_run
from rich.console import Console

from attnrun.report.collect import collect
from attnrun.report.table import (
    build,
    group_header,
    group_rows,
    markdown,
    rich_tables,
    run_header,
    write_csv,
)


def test_rows_are_sorted_and_show_swept_seed_metrics_status(sweep: Path) -> None:
    rep = build(collect([sweep]), sweep)
    assert rep.swept == ["kernel"]
    assert run_header(rep) == ["run", "kernel", "seed", "test_mse", "bandwidth", "status"]
    assert [(r.config["kernel"], r.seed) for r in rep.runs] == [
        (k, s) for k in ("boxcar", "gaussian") for s in (0, 1, 2)
    ]


def test_groups_over_seeds_give_mean_std_n(sweep: Path) -> None:
    rep = build(collect([sweep]), sweep)
    assert [g.values for g in rep.groups] == [("boxcar",), ("gaussian",)]
    for g in rep.groups:
        xs = [MSE[(g.values[0], s)] for s in (0, 1, 2)]
        stat = g.stat("test_mse")
        assert stat.n == 3
        assert abs(stat.mean - statistics.fmean(xs)) < 1e-12
        assert abs(stat.std - statistics.stdev(xs)) < 1e-12
    header = group_header(rep)
    row = dict(zip(header, group_rows(rep)[1], strict=True))
    assert row["kernel"] == "gaussian"
    assert row["n"] == "3"
    assert row["seeds"] == "0,1,2"
    assert row["test_mse"] == "0.2 ± 0.1"


def test_failed_and_unreadable_runs_are_listed_but_not_averaged(sweep: Path) -> None:
    write_run(
        sweep / "6",
        {"kernel": "gaussian", "seed": 3, "device": "auto", "data": {"n_train": 20}},
        {},
        status="failed",
    )
    bad = write_run(sweep / "7", {"kernel": "gaussian", "seed": 4})
    (bad / "metrics.json").write_text('{"status": "comp')
    rep = build(collect([sweep]), sweep)
    assert [r.status for r in rep.runs][-1] == "unreadable"  # listed last
    assert "failed" in [r.status for r in rep.runs]
    gauss = next(g for g in rep.groups if g.values == ("gaussian",))
    assert gauss.stat("test_mse").n == 3
    assert gauss.status_text() == "3 completed, 1 failed"
    assert rep.swept == ["kernel"]  # the unreadable run's missing keys are not "swept"


def test_csv_has_one_row_per_run_at_full_precision(sweep: Path, tmp_path: Path) -> None:
    rep = build(collect([sweep]), sweep)
    write_csv(rep, tmp_path / "report.csv")
    with open(tmp_path / "report.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6
    assert {(r["kernel"], int(r["seed"]), float(r["test_mse"])) for r in rows} == {
        (k, s, v) for (k, s), v in MSE.items()
    }
    assert all(r["experiment"] == "regress" and r["status"] == "completed" for r in rows)
    assert rows[0]["run"] == "3"  # relative to the report's base folder


def test_metric_named_like_a_swept_key_gets_its_own_column(tmp_path: Path) -> None:
    for i, bw in enumerate(["silverman", "1.0"]):
        write_run(
            tmp_path / str(i), {"bandwidth": bw, "seed": 0}, {"test_mse": 1.0, "bandwidth": 0.3}
        )
    rep = build(collect([tmp_path]), tmp_path)
    header = run_header(rep)
    assert "bandwidth" in header and "metrics.bandwidth" in header
    assert len(header) == len(set(header))


def test_markdown_has_both_tables_and_escapes_pipes(sweep: Path) -> None:
    write_run(
        sweep / "6",
        {"kernel": "a|b", "seed": 0, "device": "auto", "data": {"n_train": 20}},
        {"test_mse": 1.0},
    )
    text = markdown(build(collect([sweep]), sweep), plots=["x/report_loss.png"])
    assert "## Runs" in text and "## Grouped over seeds" in text
    assert "a\\|b" in text
    assert "0.2 ± 0.1" in text
    assert "![report_loss](report_loss.png)" in text


def test_no_grouped_table_without_repeated_seeds(tmp_path: Path) -> None:
    for k in ("gaussian", "boxcar"):
        write_run(tmp_path / k, {"kernel": k, "seed": 0}, {"test_mse": 1.0})
    rep = build(collect([tmp_path]), tmp_path)
    assert not rep.has_seed_groups
    assert "Grouped" not in markdown(rep)


def test_several_experiments_get_an_experiment_column(tmp_path: Path) -> None:
    write_run(tmp_path / "a", {"seed": 0, "kernel": "gaussian"}, {"test_mse": 1.0})
    write_run(
        tmp_path / "b",
        {"seed": 0, "model": {"score": "dot"}},
        {"bleu": 20.0},
        experiment="translate",
    )
    rep = build(collect([tmp_path]), tmp_path)
    assert run_header(rep)[1] == "experiment"
    assert {"test_mse", "bleu"} <= set(rep.metrics)


def test_rich_tables_print_config_values_literally(tmp_path: Path) -> None:
    for i, dims in enumerate(["[bold]x", "[1, 2]"]):
        write_run(tmp_path / str(i), {"seed": 0, "dims": dims}, {"test_mse": 1.0})
    console = Console(record=True, width=200, force_terminal=False)
    for t in rich_tables(build(collect([tmp_path]), tmp_path)):
        console.print(t)
    out = console.export_text()
    assert "[bold]x" in out and "[1, 2]" in out


def test_readers_never_see_a_partial_csv_while_writers_race(sweep: Path, tmp_path: Path) -> None:
    """Writers replace report.csv over and over while a reader parses it: always whole."""
    import threading

    rep = build(collect([sweep]), sweep)
    path = tmp_path / "report.csv"
    write_csv(rep, path)
    stop = threading.Event()

    def writer() -> None:
        for _ in range(40):
            write_csv(rep, path)
        stop.set()

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    seen = 0
    while not stop.is_set() or seen == 0:
        with open(path, newline="") as f:
            assert len(list(csv.DictReader(f))) == 6
        seen += 1
    for t in threads:
        t.join()
    assert not list(tmp_path.glob(".report.csv.*"))


def _translate_sweep(root: Path, lowercase_differs_in: str | None = None) -> Path:
    """decoder in {none, bahdanau} x seed in {0, 1}; bleu_lowercase equals bleu unless the run
    named ``lowercase_differs_in`` (a cased hypothesis) differs."""
    for decoder in ("none", "bahdanau"):
        for seed in (0, 1):
            name = f"{decoder}{seed}"
            bleu = 10.0 + seed + (decoder == "bahdanau")
            low = bleu + 0.5 if name == lowercase_differs_in else bleu
            metrics = {"bleu": bleu, "bleu_lowercase": low, "chrf": 30.0 + seed}
            write_run(root / name, {"decoder": decoder, "seed": seed}, metrics,
                      experiment="translate")  # fmt: skip
    return root


def test_a_metric_equal_to_another_in_every_run_is_shown_once(tmp_path: Path) -> None:
    """Guards against a bleu_lowercase column repeating bleu when nothing is cased, and against
    dropping it when one run differs; report.csv keeps both columns either way."""
    root = _translate_sweep(tmp_path / "same")
    rep = build(collect([root]), root)
    assert rep.metrics == ["bleu", "chrf"] and rep.same_as == {"bleu_lowercase": "bleu"}
    assert "bleu_lowercase" not in run_header(rep) and "bleu_lowercase" not in group_header(rep)
    md = markdown(rep)
    assert "bleu_lowercase = bleu in every run" in md
    assert "| bleu_lowercase |" not in md
    write_csv(rep, tmp_path / "r.csv")
    with open(tmp_path / "r.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["bleu_lowercase"] for r in rows] == [r["bleu"] for r in rows]

    root = _translate_sweep(tmp_path / "cased", lowercase_differs_in="bahdanau1")
    rep = build(collect([root]), root)
    assert rep.metrics == ["bleu", "bleu_lowercase", "chrf"] and rep.same_as == {}
    assert "in every run" not in markdown(rep)


def test_same_metrics_needs_a_value_and_counts_missing_as_equal(tmp_path: Path) -> None:
    from attnrun.report.table import same_metrics

    write_run(tmp_path / "a", {"k": 1, "seed": 0}, {"x": 1.0, "y": 1.0}, experiment="lab")
    write_run(tmp_path / "b", {"k": 2, "seed": 0}, {"z": 3.0}, experiment="lab")
    runs = collect([tmp_path])
    assert same_metrics(runs, ["x", "y", "z"]) == {"y": "x"}  # both missing in run b
    assert same_metrics(runs, ["w", "v"]) == {}  # missing everywhere: nothing to compare
    assert same_metrics(runs, ["x", "y", "y2"]) == {"y": "x"}
