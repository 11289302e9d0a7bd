"""The coref question asked causally: which heads decide il / elle, and do they look at the noun?

For a Transformer trained on the coref corpus (:mod:`attnrun.translate.data.coref`):

- the **smallest head set** whose removal brings pronoun accuracy to chance (≤ 0.6): greedy —
  heads added in the order of their own removal's effect on pronoun accuracy (ties: gradient
  importance) until the accuracy reaches the threshold —, then checked — each head of the set is
  dropped again if the set reaches the threshold without it —; with that set removed, BLEU on the
  words other than il / elle (``bleu_other_words``) tells "resolves it" from "breaks everything";
- the same search among the cross-attention heads alone (the decoder reading the source at the
  il / elle step);
- where each head of a set ranks in the run's attention-mass table of its kind
  (``coref_mass_by_head``: encoder self-attention from "it" onto the antecedent;
  ``coref_decoder_mass_by_head``; ``coref_cross_mass_by_head``: cross-attention at the il / elle
  step): is the head that decides the head that looks?
"""

from __future__ import annotations

from typing import Any

from attnrun.ablate.base import AblationTarget, ExtraContext
from attnrun.core.heads import Head, Interventions

CHANCE = 0.6
METRIC = "pronoun_accuracy"
#: kind → the run's ``metrics.json`` table of attention mass on the antecedent, (L, H).
MASS_TABLES = {
    "encoder_self": "coref_mass_by_head",
    "decoder_self": "coref_decoder_mass_by_head",
    "cross": "coref_cross_mass_by_head",
}


def coref_sections(target: AblationTarget, ctx: ExtraContext) -> dict[str, Any]:
    """``ablation.json``'s ``coref`` section (see the module docstring)."""
    heads = list(ctx.by_head)
    out: dict[str, Any] = {
        "threshold": CHANCE,
        "intact_pronoun_accuracy": ctx.intact[METRIC],
        "pronoun_accuracy_by_head": {h.label(): ctx.by_head[h][METRIC] for h in heads},
        "any_head": smallest_set(target, ctx, heads),
    }
    cross = [h for h in heads if h.kind == "cross"]
    if cross:
        out["cross_heads"] = c = smallest_set(target, ctx, cross)
        a = out["any_head"]
        if c["reached"] and (not a["reached"] or len(c["heads"]) < len(a["heads"])):
            # the greedy order is a heuristic: when no single head matters it can take more
            # heads than the cross-attention search found; the smaller set answers for both
            out["any_head"] = {**c, "found_by": "the cross-attention search"}
    return out


def smallest_set(
    target: AblationTarget, ctx: ExtraContext, candidates: list[Head]
) -> dict[str, Any]:
    """Greedy, then checked (module docstring): ``{"heads", "reached", "metrics",
    "mass_rank", "evaluations"}``."""
    seen: dict[frozenset, dict] = {}

    def run(heads: list[Head]) -> dict:
        key = frozenset(heads)
        if key not in seen:
            seen[key] = target.evaluate(Interventions.remove(heads, target.sites, ctx.means))
        return seen[key]

    order = sorted(
        candidates, key=lambda h: (ctx.by_head[h][METRIC], -ctx.importance.get(h, 0.0), h)
    )
    chosen: list[Head] = []
    accuracy = ctx.intact[METRIC]
    for h in order:
        if accuracy <= CHANCE:
            break
        chosen.append(h)
        accuracy = (ctx.by_head[h] if len(chosen) == 1 else run(chosen))[METRIC]
    reached = accuracy <= CHANCE
    if reached:
        for h in list(chosen):  # checked: is every head needed?
            trial = [x for x in chosen if x != h]
            if trial and run(trial)[METRIC] <= CHANCE:
                chosen = trial
    final = ctx.by_head[chosen[0]] if len(chosen) == 1 else run(chosen) if chosen else ctx.intact
    singles_fail = all(ctx.by_head[h][METRIC] > CHANCE for h in candidates)
    return {
        "heads": [h.label() for h in chosen],
        # irreducible by the check; of the smallest possible size when it has one head, or two
        # while no single head reaches the threshold (larger sets: not searched exhaustively)
        "smallest_size_proven": reached
        and (len(chosen) <= 1 or (len(chosen) == 2 and singles_fail)),
        "records": [{"kind": h.kind, "layer": h.layer, "head": h.head} for h in chosen],
        "reached": reached,
        "metrics": final,
        "mass_rank": [mass_rank(h, ctx.run_metrics) for h in chosen],
        "evaluations": len(seen),
    }


def mass_rank(head: Head, run_metrics: dict[str, Any]) -> dict[str, Any] | None:
    """Where ``head`` ranks (1 = most mass) in the run's mass table of its kind, or None when
    the run has no such table."""
    key = MASS_TABLES.get(head.kind)
    table = run_metrics.get(key) if key else None
    if not table:
        return None
    flat = sorted((v for row in table for v in row), reverse=True)
    mass = table[head.layer][head.head]
    return {
        "head": head.label(),
        "table": key,
        "mass": mass,
        "rank": flat.index(mass) + 1,
        "of": len(flat),
    }
