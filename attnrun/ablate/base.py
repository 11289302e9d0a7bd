"""What ``attnrun ablate`` asks of an experiment: an :class:`AblationTarget`.

A target is a trained run opened on one split: it names its heads (``sites``, as
:func:`attnrun.core.heads.head_sites` gives them), evaluates the run's own metrics under an
:class:`~attnrun.core.heads.Interventions` (``None``: intact) through the experiment's own
evaluation code, gives each head's gradient importance (Michel et al. 2019, eq. 2) and mean output
over the split (for mean-ablation), and the figures the run recorded for the same split.

Each experiment that can be ablated registers a loader in :data:`ablators`
(``load(run_dir, metrics, split, limit) -> AblationTarget``); the registry is the only list.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import Tensor

from attnrun.core.heads import Head, Interventions, Site
from attnrun.registry import Registry

__all__ = ["AblationTarget", "ablation_modes", "ablators"]


class AblationTarget(ABC):
    """A trained run on one split, ready to be evaluated with heads removed.

    Attributes:
        split: the split evaluated (``"test"``, ``"val"``).
        examples: how many examples of the split are used.
        sites: ``(kind, layer)`` → heads that can be removed (``{}``: none, e.g. an RNN decoder).
        metrics: names of the figures :meth:`evaluate` returns, the default ranking one first.
        lower_is_better: those of ``metrics`` where smaller is better (perplexity, MSE).
    """

    split: str
    examples: int
    sites: dict[Site, int]
    metrics: tuple[str, ...]
    lower_is_better: frozenset[str] = frozenset()

    @abstractmethod
    def evaluate(self, interventions: Interventions | None) -> dict[str, float]:
        """The run's key metrics on the split with ``interventions`` in force."""

    @abstractmethod
    def recorded(self) -> dict[str, float]:
        """The figures the run recorded for this split and decode settings (``{}`` when the run
        recorded none, e.g. with ``--limit``): the intact evaluation must equal them."""

    def importance(self) -> dict[Site, Tensor]:
        """``I_h = E_x |∂L(x)/∂ξ_h|`` per site ``(H,)`` from one pass over the split."""
        return {}

    def means(self) -> dict[Site, Tensor]:
        """Each head's mean output ``(H, hd)`` over the split (for ``--mode mean``)."""
        return {}

    def extras(self, ctx: ExtraContext) -> dict[str, Any]:
        """Experiment-specific sections of ``ablation.json`` (coref, RNN, regress)."""
        return {}

    def heads(self) -> list[Head]:
        return [Head(k, i, h) for (k, i), n in self.sites.items() for h in range(n)]


class ExtraContext:
    """What :meth:`AblationTarget.extras` may use: the intact figures, each removed head's, the
    chosen metric, the replacements of ``--mode`` and the run folder."""

    def __init__(
        self,
        intact: dict[str, float],
        by_head: dict[Head, dict[str, float]],
        importance: dict[Head, float],
        means: dict[Site, Tensor] | None,
        run_dir: Path | None,
        run_metrics: dict[str, Any],
    ) -> None:
        self.intact = intact
        self.by_head = by_head
        self.importance = importance
        self.means = means
        self.run_dir = run_dir
        self.run_metrics = run_metrics


#: experiment name → ``load(run_dir, metrics, split, limit) -> AblationTarget``.
ablators: Registry[Callable[..., AblationTarget]] = Registry("ablatable experiment")


def _zero(target: AblationTarget) -> dict[Site, Tensor] | None:
    """A removed head outputs 0 (Michel et al. 2019)."""
    return None


def _mean(target: AblationTarget) -> dict[Site, Tensor] | None:
    """A removed head outputs its mean over the split (a HeadRecorder pass)."""
    return target.means()


#: ``--mode`` → what a removed head outputs instead: ``means(target) -> site → (H, hd) | None``.
ablation_modes: Registry[Callable[[AblationTarget], dict[Site, Tensor] | None]] = Registry(
    "ablation mode"
)
ablation_modes.register("zero")(_zero)
ablation_modes.register("mean")(_mean)
