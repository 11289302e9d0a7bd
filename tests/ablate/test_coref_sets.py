"""The coref head-set search (attnrun.ablate.coref) on a fake target whose pronoun accuracy is a
plain function of the removed heads: no model, so the search's logic is checked on its own."""

from __future__ import annotations

from attnrun.ablate.base import AblationTarget, ExtraContext
from attnrun.ablate.coref import mass_rank, smallest_set
from attnrun.core.heads import Head

A, B, C, D = (Head("encoder_self", 0, 0), Head("encoder_self", 0, 1), Head("cross", 0, 0),
              Head("cross", 0, 1))  # fmt: skip


class Fake(AblationTarget):
    """Pronoun accuracy 1.0, 0.5 once both A and B are gone; C alone hurts most (0.7) but is
    not needed: greedy takes it first, the check must drop it."""

    split, examples, metrics = "test", 10, ("pronoun_accuracy",)
    sites = {("encoder_self", 0): 2, ("cross", 0): 2}

    def __init__(self) -> None:
        self.calls = 0

    def evaluate(self, interventions):
        self.calls += 1
        removed = set()
        for (kind, layer), gate in (interventions.gates if interventions else {}).items():
            removed |= {Head(kind, layer, h) for h in range(len(gate)) if gate[h] == 0}
        acc = 0.5 if {A, B} <= removed else 0.7 if C in removed else 1.0
        return {"pronoun_accuracy": acc, "bleu_other_words": 90.0}

    def recorded(self):
        return {}


def _ctx(target) -> ExtraContext:
    from attnrun.core.heads import Interventions

    by_head = {h: target.evaluate(Interventions.remove([h], target.sites)) for h in target.heads()}
    table = {"coref_mass_by_head": [[0.1, 0.4]], "coref_cross_mass_by_head": [[0.3, 0.2]]}
    return ExtraContext(target.evaluate(None), by_head, {A: 0.2, B: 0.1}, None, None, table)


def test_greedy_then_checked_drops_the_head_the_set_does_not_need():
    """Guards the check step: without it the set would be {C, A, B}."""
    target = Fake()
    s = smallest_set(target, _ctx(target), [A, B, C, D])
    assert s["reached"] and s["metrics"]["pronoun_accuracy"] == 0.5
    assert sorted(s["heads"]) == sorted([A.label(), B.label()])
    assert s["smallest_size_proven"]  # no single head reaches 0.6
    assert [r["rank"] for r in s["mass_rank"]] == [2, 1]  # A has 0.1 of (0.4, 0.1): rank 2


def test_a_set_that_cannot_reach_chance_says_so():
    target = Fake()
    s = smallest_set(target, _ctx(target), [C, D])
    assert not s["reached"] and s["metrics"]["pronoun_accuracy"] == 0.7
    assert not s["smallest_size_proven"]


def test_mass_rank_without_a_table_is_none():
    assert mass_rank(Head("decoder_self", 0, 0), {}) is None


def test_the_smaller_cross_set_answers_for_every_head():
    """Guards reporting a larger set for "any head" than the cross-attention search found."""
    from attnrun.ablate.coref import coref_sections

    class CrossOnly(Fake):
        """Accuracy 0.5 once {A, B, C} are gone, or {C, D} while A stays (heads interact);
        every single removal keeps 1.0 and importance puts A, B first, so the greedy order ends
        at the irreducible {A, B, C} while the cross search finds {C, D}."""

        def evaluate(self, interventions):
            out = super().evaluate(interventions)
            removed = set()
            for (kind, layer), gate in (interventions.gates if interventions else {}).items():
                removed |= {Head(kind, layer, h) for h in range(len(gate)) if gate[h] == 0}
            low = {A, B, C} <= removed or ({C, D} <= removed and A not in removed)
            out["pronoun_accuracy"] = 0.5 if low else 1.0
            return out

    target = CrossOnly()
    ctx = _ctx(target)
    ctx.importance = {A: 0.9, B: 0.8, C: 0.2, D: 0.1}
    out = coref_sections(target, ctx)
    assert sorted(out["any_head"]["heads"]) == sorted([C.label(), D.label()])
