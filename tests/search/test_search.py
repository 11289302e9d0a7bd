"""Optuna search through Hydra (``-m hparams_search=regress``): objective, study, continuation,
failed and interrupted trials, bad input, and the report of a search. Regress at 20 points."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from attnrun.cli import app
from attnrun.experiments import experiments
from attnrun.runs.record import read_metrics
from attnrun.search import load_search, read_spec
from attnrun.search.spec import SEARCH_FILE, STUDY_DB

TINY = ["data.n_train=20", "train.threads=1"]


def search(root: Path, *extra: str, n: int = 3) -> tuple[object, Path | None]:
    """Run a regress search under ``root``; (the CLI result, the search folder if one)."""
    args = ["regress", "-m", "hparams_search=regress", f"hydra.sweeper.n_trials={n}", *TINY]
    r = CliRunner().invoke(app, [*args, *extra, "--root", str(root), "-q"])
    folders = list((root / "multirun").glob("search-regress-*"))
    return r, (folders[0] if len(folders) == 1 else None)


def study_of(folder: Path) -> optuna.Study:
    return optuna.load_study(study_name="regress", storage=f"sqlite:///{folder / STUDY_DB}")


def states(study: optuna.Study) -> list[str]:
    return [t.state.name for t in study.trials]


def test_trials_return_the_registered_objective(tmp_path: Path) -> None:
    """Each COMPLETE trial's value is its run's test_mse (regress's registered objective,
    minimised), its run folder is recorded, and the summary names the smallest."""
    r, folder = search(tmp_path, n=3)
    assert r.exit_code == 0, r.output
    study = study_of(folder)
    assert states(study) == ["COMPLETE"] * 3
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    for t in study.trials:
        m = read_metrics(folder / t.user_attrs["run_dir"])
        assert m["status"] == "completed"
        assert t.value == pytest.approx(m["test_mse"], rel=1e-12)
        assert m["kernel"] == t.params["kernel"]
        assert float(m["bandwidth"]) == pytest.approx(t.params["bandwidth"])
    best = min(study.trials, key=lambda t: t.value)
    assert f"best test_mse={best.value:.6g} at trial {best.number}" in r.output
    spec = read_spec(folder)
    assert spec.objective == "test_mse" and spec.direction == "minimize"
    assert set(spec.space) == {"kernel", "bandwidth"}


def test_same_command_continues_the_study(tmp_path: Path) -> None:
    """A second session runs only the missing trials (counts add up), never re-runs a completed
    one, and proposes new parameters rather than the first session's again."""
    r, folder = search(tmp_path, n=2)
    assert r.exit_code == 0, r.output
    first = {p.name: read_metrics(p)["started_at"] for p in folder.iterdir() if p.name.isdigit()}
    r, again = search(tmp_path, n=4)
    assert r.exit_code == 0, r.output
    assert again == folder
    study = study_of(folder)
    assert states(study) == ["COMPLETE"] * 4
    assert sorted(p.name for p in folder.iterdir() if p.name.isdigit()) == ["0", "1", "2", "3"]
    assert {n: read_metrics(folder / n)["started_at"] for n in first} == first
    old = [t.params for t in study.trials[:2]]
    assert all(t.params not in old for t in study.trials[2:])
    r = CliRunner().invoke(app, ["resume", str(folder), "-q"])  # nothing left to run
    assert r.exit_code == 0, r.output
    assert len(study_of(folder).trials) == 4 and "4/4 trials" in r.output


def test_failed_trial_is_recorded_and_the_search_goes_on(tmp_path, monkeypatch) -> None:
    """A trial whose run fails is FAIL in the study with the run's error; its run folder says
    failed; the other trials complete and the command exits 0."""
    exp = experiments.get("regress")
    body = exp.body

    def flaky(cfg, out_dir, ctx):
        if cfg.kernel == "boxcar":
            raise RuntimeError("planted failure")
        return body(cfg, out_dir, ctx)

    monkeypatch.setattr(exp, "body", flaky)
    r, folder = search(tmp_path, n=4)
    assert r.exit_code == 0, r.output
    study = study_of(folder)
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    assert failed and len(failed) < 4
    for t in study.trials:
        m = read_metrics(folder / t.user_attrs["run_dir"])
        if t.params["kernel"] == "boxcar":
            assert t.state.name == "FAIL" and t.user_attrs["status"] == "failed"
            assert "planted failure" in t.user_attrs["error"]
            assert m["status"] == "failed" and "planted failure" in m["error"]
        else:
            assert t.state.name == "COMPLETE" and m["status"] == "completed"
    assert "trial failed: RuntimeError: planted failure" in r.output


def test_interrupted_trial_is_rerun_when_continued(tmp_path, monkeypatch, ctrl_c_in_run) -> None:
    """Ctrl-C in trial 1: the command exits 130, trial 1 is FAIL/interrupted with its run folder
    marked interrupted; continuing runs its parameters again and completes n_trials trials."""
    exp = experiments.get("regress")
    body = ctrl_c_in_run("regress", 2)
    r, folder = search(tmp_path, n=3)
    assert r.exit_code == 130, r.output
    assert r.stderr.endswith(
        f"attnrun: interrupted; continue the search with: attnrun resume {folder}\n"
    )
    study = study_of(folder)
    assert states(study) == ["COMPLETE", "FAIL", "WAITING"]
    stopped = study.trials[1]
    assert stopped.user_attrs["status"] == "interrupted"
    assert read_metrics(folder / "1")["status"] == "interrupted"
    monkeypatch.setattr(exp, "body", body)
    r = CliRunner().invoke(app, ["resume", str(folder), "-q"])
    assert r.exit_code == 0, r.output
    study = study_of(folder)
    assert [s for s in states(study) if s == "COMPLETE"] == ["COMPLETE"] * 3
    assert study.trials[2].params == stopped.params  # the interrupted configuration, again
    assert "3/3 trials" in r.output


def test_killed_search_leaves_running_trials_that_are_rerun(tmp_path: Path) -> None:
    """A trial still RUNNING when the study is opened again (the search was killed) is closed as
    interrupted and its parameters run again."""
    r, folder = search(tmp_path, n=1)
    assert r.exit_code == 0, r.output
    study = study_of(folder)
    ghost = study.ask()
    ghost.suggest_categorical("kernel", ["gaussian", "boxcar", "epanechnikov"])
    ghost.suggest_float("bandwidth", 0.01, 2.0, log=True)
    r, _ = search(tmp_path, n=2)
    assert r.exit_code == 0, r.output
    study = study_of(folder)
    assert states(study) == ["COMPLETE", "FAIL", "COMPLETE"]
    assert study.trials[1].user_attrs["status"] == "interrupted"
    assert study.trials[2].params == study.trials[1].params


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["hydra.sweeper.params.nope=choice(1,2)"], "'nope' is not a key of the regress config"),
        (["hydra.sweeper.n_trials=0"], "hydra.sweeper.n_trials=0 is not valid"),
        (["hydra.sweeper.objective=bleu"], "hydra.sweeper.objective='bleu' is not valid"),
        (["hydra.sweeper.direction=maximize"], "hydra.sweeper.direction='maximize'"),
        (["hydra.sweeper.params.kernel=choice(gaussian,nope)"], "kernel='nope' is not valid"),
        (["hydra.sweeper.params.bandwidth=interval(-1,2)"], "bandwidth='-1.0' is not valid"),
        (["kernel=gaussian", "bandwidth=0.5"], "the search space is empty"),
    ],
)
def test_bad_search_input_is_one_line_exit_2(tmp_path: Path, extra, message) -> None:
    """Checked before anything runs: one line, exit code 2, no folder."""
    args = ["regress", "-m", "hparams_search=regress", *TINY, *extra, "--root", str(tmp_path)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2, r.output
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 1 and message in lines[0], r.output
    assert not (tmp_path / "multirun").exists()


def test_study_of_another_experiment_is_refused(tmp_path: Path) -> None:
    """A folder holding a regress search is not continued as a selfattn search."""
    folder = tmp_path / "s"
    r, _ = search(tmp_path, f"hydra.sweep.dir={folder}", n=1)
    assert r.exit_code == 0, r.output
    args = ["selfattn", "-m", "hparams_search=selfattn", f"hydra.sweep.dir={folder}"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2
    assert "holds a search of experiment regress, not selfattn" in r.output


def test_changed_config_is_refused(tmp_path: Path) -> None:
    """Continuing a search whose definition changed (a fixed override, or the space of the YAML
    since it started) is refused, and the study is left as it was."""
    folder = tmp_path / "s"
    r, _ = search(tmp_path, f"hydra.sweep.dir={folder}", n=1)
    assert r.exit_code == 0, r.output
    r, _ = search(tmp_path, f"hydra.sweep.dir={folder}", "data.noise=0.1", n=2)
    assert r.exit_code == 2 and "the search's config changed" in r.output
    assert "fixed" in r.output and "config" in r.output
    record = json.loads((folder / SEARCH_FILE).read_text())
    record["space"]["bandwidth"] = "tag(log, interval(0.1, 1.0))"  # as if the YAML was edited
    (folder / SEARCH_FILE).write_text(json.dumps(record))
    r = CliRunner().invoke(app, ["resume", str(folder)])
    assert r.exit_code == 2 and "changed since it started (space)" in r.output
    assert len(study_of(folder).trials) == 1


def test_space_on_the_command_line(tmp_path: Path) -> None:
    """``hydra.sweeper.params.K=interval(a,b)`` given on the command line is the space used."""
    r, folder = search(tmp_path, "hydra.sweeper.params.bandwidth=interval(0.2,0.3)", n=3)
    assert r.exit_code == 0, r.output
    values = [t.params["bandwidth"] for t in study_of(folder).trials]
    assert len(values) == 3 and all(0.2 <= v <= 0.3 for v in values)


def test_report_of_a_search(tmp_path: Path) -> None:
    """report.md / report.html / console carry the best trial (the smallest test_mse of the
    run folders) and its config, the trials, and Optuna's three figures."""
    r, folder = search(tmp_path, n=4)
    assert r.exit_code == 0, r.output
    mse = {p.name: read_metrics(p)["test_mse"] for p in folder.iterdir() if p.name.isdigit()}
    best_dir = min(mse, key=mse.get)
    r = CliRunner().invoke(app, ["report", str(folder)])
    assert r.exit_code == 0, r.output
    assert f"test_mse={mse[best_dir]:.6g}" in r.output and f"run folder {best_dir}." in r.output
    md = (folder / "report.md").read_text()
    assert "## Search" in md and f"run folder {best_dir}." in md and "```yaml" in md
    page = (folder / "report.html").read_text()
    assert 'id="search"' in page and page.count("<tr>") >= 4 + 4
    for name in ("history", "importances", "slice"):
        png = folder / f"report_search_{name}.png"
        assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"
        assert f"report_search_{name}.png" in md
    search_ = load_search(folder)
    assert search_.best.run_dir == best_dir
    assert math.isclose(search_.best.value, mse[best_dir])


@pytest.mark.slow  # two worker processes start
def test_trials_in_parallel_through_joblib(tmp_path: Path) -> None:
    """n_jobs=2 with the joblib launcher: two trials at a time, values from the workers."""
    r, folder = search(
        tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_jobs=2"
    )
    assert r.exit_code == 0, r.output
    study = study_of(folder)
    assert states(study) == ["COMPLETE"] * 3
    for t in study.trials:
        assert t.value == pytest.approx(read_metrics(folder / t.user_attrs["run_dir"])["test_mse"])


def test_every_experiment_has_an_objective_and_a_search_config() -> None:
    """The registry names each experiment's objectives with a direction, and
    configs/hparams_search holds a search for each experiment."""
    from attnrun.cli.launch import config_dir

    for name, exp in experiments.items():
        assert exp.objectives, name
        assert set(exp.objectives.values()) <= {"minimize", "maximize"}
        assert (config_dir() / "hparams_search" / f"{name}.yaml").is_file(), name
    assert experiments.get("regress").objectives == {"test_mse": "minimize"}
    assert next(iter(experiments.get("translate").objectives)) == "bleu"
