"""The search section of a report on a search folder (``attnrun report SWEEP_DIR``).

The best trial and its config, a table of every trial, and three figures drawn by Optuna's own
matplotlib visualisations from the study (``optuna.visualization.matplotlib``):

* ``report_search_history.png``: the objective of each trial and the best so far
  (``plot_optimization_history``);
* ``report_search_importances.png``: each parameter's share of the objective's variance, from a
  random forest fitted to the completed trials (``plot_param_importances`` with
  ``MeanDecreaseImpurityImportanceEvaluator``; needs two parameters and three completed trials);
* ``report_search_slice.png``: the objective against each parameter (``plot_slice``).
"""

from __future__ import annotations

import contextlib
import html
import warnings
from collections.abc import Iterator
from typing import Any

import matplotlib
import numpy as np

from attnrun.report.plots import Plot, _png
from attnrun.search.study import Search, TrialRow

MIN_IMPORTANCE_TRIALS = 3


@contextlib.contextmanager
def _optuna_matplotlib() -> Iterator[Any]:
    """Optuna 2.10's matplotlib plots call ``matplotlib.cm.get_cmap`` (gone in matplotlib 3.9):
    lend it back while they draw, and keep their global style to themselves."""
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as vm

    missing = not hasattr(matplotlib.cm, "get_cmap")
    if missing:
        # setattr (noqa B010): matplotlib's stubs no longer declare cm.get_cmap
        setattr(matplotlib.cm, "get_cmap", matplotlib.colormaps.get_cmap)  # noqa: B010
    try:  # rc_context: optuna's plt.style.use("ggplot") must not restyle later figures
        with warnings.catch_warnings(), plt.rc_context():
            warnings.simplefilter("ignore")  # optuna's ExperimentalWarning on every plot
            yield vm
    finally:
        if missing:
            delattr(matplotlib.cm, "get_cmap")


def _figure(ax: Any) -> Any:
    return (ax.flat[0] if isinstance(ax, np.ndarray) else ax).figure


def search_plots(search: Search) -> list[Plot]:
    """The three figures of the module docstring (fewer when the study cannot support them)."""
    done = search.completed
    if not done:
        return []
    study, spec = search.study, search.spec
    name = spec.objective
    plots = []
    with _optuna_matplotlib() as vm:
        fig = _figure(vm.plot_optimization_history(study, target_name=name))
        fig.set_size_inches(7, 4)
        plots.append(
            Plot(
                "report_search_history.png",
                _png(fig),
                f"{name} of each trial and the best so far ({spec.direction})",
            )
        )
        params = sorted({k for t in done for k in t.params})
        if len(params) >= 2 and len(done) >= MIN_IMPORTANCE_TRIALS:
            plots.append(_importances(vm, search, name))
        fig = _figure(vm.plot_slice(study, target_name=name))
        plots.append(
            Plot("report_search_slice.png", _png(fig), f"{name} against each searched parameter")
        )
    return plots


def _importances(vm: Any, search: Search, name: str) -> Plot:
    from optuna.importance import MeanDecreaseImpurityImportanceEvaluator

    evaluator = MeanDecreaseImpurityImportanceEvaluator(seed=0)
    fig = _figure(vm.plot_param_importances(search.study, evaluator=evaluator, target_name=name))
    fig.set_size_inches(7, 3)
    return Plot(
        "report_search_importances.png",
        _png(fig),
        f"share of {name}'s variance explained by each parameter (random-forest impurity)",
    )


def importances(search: Search) -> dict[str, float]:
    """Each parameter's importance (as in the figure); empty when the study cannot give them."""
    import optuna
    from optuna.importance import MeanDecreaseImpurityImportanceEvaluator

    done = search.completed
    if len(done) < MIN_IMPORTANCE_TRIALS or len({k for t in done for k in t.params}) < 2:
        return {}
    evaluator = MeanDecreaseImpurityImportanceEvaluator(seed=0)
    return dict(optuna.importance.get_param_importances(search.study, evaluator=evaluator))


def _value(v: Any) -> str:
    if v is None:
        return ""
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def trial_header(search: Search) -> list[str]:
    params = sorted({k for t in search.trials for k in t.params})
    return ["trial", "state", search.spec.objective, *params, "run", "error"]


def trial_rows(search: Search) -> list[list[str]]:
    params = sorted({k for t in search.trials for k in t.params})
    return [
        [
            str(t.number),
            t.state,
            _value(t.value),
            *(_value(t.params.get(k)) for k in params),
            t.run_dir or "",
            (t.error or "")[:120],
        ]
        for t in search.trials
    ]


def headline(search: Search) -> list[str]:
    """The lines that open the section: the search, its best trial, the best trial's config."""
    spec = search.spec
    counts: dict[str, int] = {}
    for t in search.trials:
        counts[t.state] = counts.get(t.state, 0) + 1
    lines = [
        f"Search of {spec.experiment}: {spec.direction} {spec.objective} over "
        + ", ".join(f"{k} ∈ {v}" for k, v in spec.space.items())
        + f"; {len(search.trials)} trials ("
        + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        + f"), n_trials={spec.n_trials}."
    ]
    best: TrialRow | None = search.best
    if best is None:
        lines.append("No trial completed.")
        return lines
    params = ", ".join(f"{k}={_value(v)}" for k, v in best.params.items())
    lines.append(
        f"Best: trial {best.number}, {spec.objective}={_value(best.value)} ({params}), "
        f"run folder {best.run_dir}."
    )
    imp = importances(search)
    if imp:
        lines.append("Importances: " + ", ".join(f"{k} {v:.2f}" for k, v in imp.items()) + ".")
    return lines


def best_config(search: Search) -> str | None:
    """The best trial's ``config.yaml`` text (its run folder's), if readable."""
    best = search.best
    if best is None or best.run_dir is None:
        return None
    path = search.folder / best.run_dir / "config.yaml"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def markdown(search: Search) -> str:
    from attnrun.report.table import markdown_table

    parts = ["## Search", "\n\n".join(headline(search))]
    config = best_config(search)
    if config is not None:
        parts.append(f"Best trial's config:\n\n```yaml\n{config.rstrip()}\n```")
    parts.append("### Trials\n\n" + markdown_table(trial_header(search), trial_rows(search)))
    return "\n\n".join(parts)


def section_html(search: Search, plots: list[Plot]) -> str:
    from attnrun.report.page import _img

    e = html.escape
    head = "".join(f"<p>{e(line)}</p>" for line in headline(search))
    config = best_config(search)
    pre = (
        f"<details><summary>Best trial's config</summary><pre>{e(config)}</pre></details>"
        if config
        else ""
    )
    header = "".join(f"<th>{e(h)}</th>" for h in trial_header(search))
    body = "".join(
        "<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in trial_rows(search)
    )
    table = (
        f'<div class="scroll"><table id="trials"><caption>Trials</caption><thead><tr>{header}'
        f"</tr></thead><tbody>{body}</tbody></table></div>"
    )
    figures = "".join(
        f"<figure>{_img(p)}<figcaption>{e(p.caption)}</figcaption></figure>" for p in plots
    )
    return f'<section id="search"><h2>Search</h2>{head}{pre}{table}{figures}</section>'
