"""Ablating a selfattn run: the encoder blocks' heads and the pointer's.

The held-out sentences are drawn again from the run's seed exactly as training drew them
(:func:`attnrun.selfattn.data.make_splits` on a generator seeded like the run's), and scored with
the run's own :func:`attnrun.selfattn.train.evaluate`: ``supervised_accuracy`` (the pointer's
answer) and the loss (NLL of the antecedent). Removing a pointer head re-mixes the others (its
gate share goes to them; all removed: uniform) — ``--mode mean`` means the same there, since the
pointer's weights, not its output, are the prediction.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from attnrun.ablate.base import AblationTarget, ablators
from attnrun.core.heads import HeadRecorder, Interventions, Site, head_sites, intervene
from attnrun.runs import files
from attnrun.selfattn.data import encode_batch, make_splits
from attnrun.selfattn.predict import load_trained
from attnrun.selfattn.train import evaluate
from attnrun.validation import one_of

SPLITS = ("test",)
BATCH = 512


class SelfAttnTarget(AblationTarget):
    metrics = ("supervised_accuracy", "loss")
    lower_is_better = frozenset({"loss"})

    def __init__(self, run_dir: Path, run_metrics: dict, split: str, limit: int | None) -> None:
        self.model, self.vocab = load_trained(run_dir, run_metrics.get("model_sha256"))
        cfg = files.read_config(run_dir)
        gen = torch.Generator().manual_seed(int(cfg.seed))
        d = cfg.data
        splits = make_splits(
            d.n_train, d.n_test, gen,
            heldout_fraction=d.heldout_fraction, template_names=list(d.templates),
        )  # fmt: skip
        self.limited = limit is not None and limit < len(splits.test)
        self.data = splits.test[:limit] if limit else splits.test
        self.split, self.examples = split, len(self.data)
        self.run_metrics = run_metrics
        self.sites = head_sites(self.model)

    def _batches(self):
        for start in range(0, len(self.data), BATCH):
            yield encode_batch(self.data[start : start + BATCH], self.vocab)

    def evaluate(self, interventions: Interventions | None) -> dict[str, float]:
        with torch.no_grad(), intervene(interventions):
            held = evaluate(self.model, self.data, self.vocab, torch.device("cpu"), BATCH)
            loss = sum(
                float(F.nll_loss(self._forward(b).log_probs, b.target, reduction="sum"))
                for b in self._batches()
            )
        return {
            "supervised_accuracy": round(held.accuracy, 4),
            "loss": round(loss / max(1, self.examples), 6),
        }

    def _forward(self, b):
        return self.model(b.tokens, b.valid_lens, b.it_index)

    def recorded(self) -> dict[str, float]:
        m = self.run_metrics
        return {} if self.limited else {"supervised_accuracy": m["supervised_accuracy"]}

    def importance(self) -> dict[Site, Tensor]:
        """Per-example gates ``(B, H)``; ``L(x)`` the NLL of sentence ``x``'s antecedent."""
        totals = {s: torch.zeros(n, dtype=torch.float64) for s, n in self.sites.items()}
        grads = [p.requires_grad for p in self.model.parameters()]
        for p in self.model.parameters():
            p.requires_grad_(False)  # only the gates need gradients
        try:
            for b in self._batches():
                n = len(b.target)
                gates = {s: torch.ones(n, h, requires_grad=True) for s, h in self.sites.items()}
                with torch.enable_grad(), intervene(Interventions(gates=gates)):
                    F.nll_loss(self._forward(b).log_probs, b.target, reduction="sum").backward()
                for s, gate in gates.items():
                    assert gate.grad is not None  # every gate is on the loss's graph
                    totals[s] += gate.grad.abs().sum(0).double()  # (H,)
        finally:
            for p, g in zip(self.model.parameters(), grads):
                p.requires_grad_(g)
        return {s: (t / max(1, self.examples)).float() for s, t in totals.items()}

    @torch.no_grad()
    def means(self) -> dict[Site, Tensor]:
        rec = HeadRecorder()
        for b in self._batches():
            rec.query_valid = {"self": torch.arange(b.tokens.shape[1]) < b.valid_lens[:, None]}
            with intervene(Interventions(recorder=rec)):
                self._forward(b)
        return rec.means()


@ablators.register("selfattn")
def load_selfattn(run_dir: Path, metrics: dict, split: str, limit: int | None) -> SelfAttnTarget:
    one_of("--split", split, SPLITS)
    return SelfAttnTarget(run_dir, metrics, split, limit)
