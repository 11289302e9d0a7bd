"""What a translation model learned about "it" on the ``coref`` corpus, measured, not drawn.

No loss term looks at attention: the model is trained to translate, and "it" becomes "il" or
"elle" only if the model finds which noun "it" is (:mod:`attnrun.translate.data.coref`). Measured:

- **pronoun accuracy** (the first il / elle of the translation is the reference's) and
  **agreement accuracy** (the predicate adjective has the antecedent's gender; adjectives that
  inflect only), on the held-out (noun, adjective) pairs of the test split;
- **head masses**: for every encoder self-attention layer × head, the attention mass from "it"
  onto the antecedent's head noun and onto the other candidate; the best head is chosen on the
  validation split (highest mass on the antecedent), then its test mass and how often its argmax
  from "it" is the antecedent are reported (Clark et al. 2019 score BERT's coreference heads so);
  the same from the predicate adjective (``coref_adjective_*``): the other word a model can
  gather the antecedent's gender into;
- **rollout mass** (``coref_rollout_mass``): the same from "it" through every encoder layer by
  attention rollout (Abnar & Zuidema 2020), heads averaged and the residual stream counted;
- **cross-attention mass** on the antecedent at the decoder step that emits il / elle (forced
  decoding of the reference), per decoder layer, for the RNN and Transformer decoders;
- **baselines**: the nearest-noun rule, the adjective-only rule (the majority pronoun of each
  adjective in training) — both at chance by construction — and the same model untrained.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch

from attnrun.core.heads import attention_rollout
from attnrun.errors import DataError
from attnrun.translate.data.coref import AGENT, Note
from attnrun.translate.evaluation import KINDS, forced_attention, forced_maps
from attnrun.translate.tokenize import Tokenizer, unknown_words, word_split

__all__ = [
    "baselines", "check_sentence", "coref_metrics", "explain_it", "head_masses", "pronoun_scores",
    "word_spans",
]  # fmt: skip


def _pronoun(words: Sequence[str]) -> str | None:
    return next((w for w in words if w in ("il", "elle")), None)


def pronoun_scores(hyps: Sequence[str], notes: Sequence[Note]) -> dict[str, float]:
    """Pronoun accuracy over every pair; agreement accuracy over pairs whose adjective inflects
    (right when the hypothesis has the antecedent's form and not the other one)."""
    right, agree, inflecting = 0, 0, 0
    for hyp, note in zip(hyps, notes, strict=True):
        words = word_split(hyp)
        right += _pronoun(words) == note.pronoun
        m, f = note.adjective_forms
        if m != f:
            inflecting += 1
            gold, wrong = (m, f) if note.gender == "m" else (f, m)
            agree += gold in words and wrong not in words
    return {
        "pronoun_accuracy": round(right / max(1, len(notes)), 4),
        "agreement_accuracy": round(agree / max(1, inflecting), 4),
    }


def baselines(train: Sequence[Note], test: Sequence[Note]) -> dict[str, float]:
    """Pronoun accuracy of rules that do not resolve "it": the gender of the noun nearest to "it"
    (the preceding one on a tie), and the adjective's majority pronoun in training."""
    nearest = 0
    for n in test:
        _, gender = min(n.nouns, key=lambda ig: (abs(ig[0] - n.it_index), ig[0] > n.it_index))
        nearest += gender == n.gender
    counts: dict[str, Counter] = {}
    for n in train:
        counts.setdefault(n.adjective, Counter())[n.gender] += 1
    by_adjective = sum(
        (counts[n.adjective].most_common(1)[0][0] if n.adjective in counts else "m") == n.gender
        for n in test
    )
    total = max(1, len(test))
    return {
        "baseline_nearest_noun": round(nearest / total, 4),
        "baseline_adjective_only": round(by_adjective / total, 4),
    }


def word_spans(tok: Tokenizer, words: Sequence[str]) -> list[tuple[int, int]]:
    """The token range ``[start, end)`` of each word (one token per word for word vocabularies,
    the word's pieces for BPE)."""
    spans, start = [], 0
    for w in words:
        n = max(1, len(tok.encode(w)))
        spans.append((start, start + n))
        start += n
    return spans


def head_masses(
    maps: Sequence[torch.Tensor], queries, targets, others
) -> dict[str, torch.Tensor | float]:
    """Per layer × head ``(L, H)``: mean mass from each example's query span onto its target span
    and its other span, and how often the argmax lands in the target span (``0.0`` each without
    any example).

    ``maps[i]``: ``(L, H, Tq, Tk)``; ``queries[i]``, ``targets[i]``, ``others[i]``: token ranges.
    """
    mass: torch.Tensor | int = 0
    other: torch.Tensor | int = 0
    hits: torch.Tensor | int = 0
    for w, (q0, q1), (t0, t1), (o0, o1) in zip(maps, queries, targets, others, strict=True):
        rows = w[:, :, q0:q1].float().mean(2)  # (L, H, Tk): the query word's attention
        mass = mass + rows[..., t0:t1].sum(-1)
        other = other + rows[..., o0:o1].sum(-1)
        best = rows.argmax(-1)
        hits = hits + ((best >= t0) & (best < t1)).float()
    n = max(1, len(maps))
    return {"mass": mass / n, "other": other / n, "argmax": hits / n}


def _rounded(t: torch.Tensor) -> list:
    return [[round(float(x), 4) for x in row] for row in t]


def _source_spans(tok, pairs, notes, query: str = "it"):
    q, t, o = [], [], []
    for (src, _), n in zip(pairs, notes, strict=True):
        spans = word_spans(tok, src.split())
        q.append(spans[n.it_index if query == "it" else n.adjective_index])
        t.append(spans[n.antecedent_index])
        o.append(spans[n.other_index])
    return q, t, o


def encoder_heads(maps, tok, pairs, notes) -> dict:
    """:func:`head_masses` of the encoder self-attention ``maps`` from "it", from the adjective
    (``"adjective"``) and from "it" onto the agent vs the place (``"agent"``)."""
    queries, targets, others = _source_spans(tok, pairs, notes)
    out: dict[str, Any] = head_masses(maps, queries, targets, others)
    out["adjective"] = head_masses(maps, *_source_spans(tok, pairs, notes, "adjective"))
    agent = [(t, o) if n.kind == AGENT else (o, t) for t, o, n in zip(targets, others, notes)]
    out["agent"] = head_masses(maps, queries, *map(list, zip(*agent)))  # agent vs place
    return out


def cross_at_pronoun(maps, src_tok, tgt_tok, pairs, notes) -> dict:
    """:func:`head_masses` of the cross-attention ``maps`` at the step that emits il / elle."""
    queries = [
        word_spans(tgt_tok, tgt.split())[n.pronoun_index] for (_, tgt), n in zip(pairs, notes)
    ]
    _, targets, others = _source_spans(src_tok, pairs, notes)
    return head_masses(maps, queries, targets, others)


def decoder_at_pronoun(maps, tgt_tok, pairs, notes) -> dict:
    """:func:`head_masses` of the decoder self-attention ``maps`` at the step that emits il / elle
    onto the French nouns already written (input position ``j + 1`` holds target word ``j``; a
    noun written after the pronoun gets nothing, by the causal mask)."""
    q, t, o = [], [], []
    for (_, tgt), n in zip(pairs, notes, strict=True):
        spans = [(a + 1, b + 1) for a, b in word_spans(tgt_tok, tgt.split())]
        q.append((spans[n.pronoun_index][0] - 1, spans[n.pronoun_index][1] - 1))
        t.append(spans[n.antecedent_target])
        o.append(spans[n.other_target])
    return head_masses(maps, q, t, o)


def rollout_masses(maps, tok, pairs, notes) -> dict[str, float]:
    """Attention rollout (Abnar & Zuidema 2020) of each example's encoder self-attention maps
    ``(L, H, S, S)``: the mass flowing into "it"'s top-layer position from the antecedent
    (``coref_rollout_mass``) and from the other noun (``coref_rollout_other_mass``) — attention
    followed through every layer, where one head's map shows one step."""
    rolled = [attention_rollout(w.double())[None, None] for w in maps]  # (1, 1, S, S)
    r = head_masses(rolled, *_source_spans(tok, pairs, notes))
    mass, other = r["mass"], r["other"]
    assert isinstance(mass, torch.Tensor) and isinstance(other, torch.Tensor)  # maps not empty
    return {
        "coref_rollout_mass": round(float(mass[0, 0]), 4),
        "coref_rollout_other_mass": round(float(other[0, 0]), 4),
    }


def _argmax_head(table: torch.Tensor) -> tuple[int, int]:
    """``(layer, head)`` of the largest entry of an ``(L, H)`` table (0-based)."""
    return divmod(int(table.flatten().argmax()), table.shape[1])


def role_heads(val: dict, test: dict) -> dict:
    """The head that attends most from "it" to the *agent* whatever the adjective, and the one to
    the *place* (chosen on validation): a model can carry both nouns into "it" and choose
    later, which resolves the pronoun without any head pointing at the antecedent."""
    out = {}
    for role, key in (("agent", "mass"), ("place", "other")):
        layer, head = _argmax_head(val[key])
        out[role] = {"head": [layer + 1, head + 1], "mass": round(float(test[key][layer, head]), 4)}
    return out


def _best(val: dict, test: dict, prefix: str) -> dict:
    """The head with the highest validation mass, and its test figures, as ``prefix_*`` keys."""
    layer, head = _argmax_head(val["mass"])
    return {
        f"{prefix}_best_head": [layer + 1, head + 1],
        f"{prefix}_head_mass": round(float(test["mass"][layer, head]), 4),
        f"{prefix}_head_other_mass": round(float(test["other"][layer, head]), 4),
        f"{prefix}_head_argmax_accuracy": round(float(test["argmax"][layer, head]), 4),
        f"{prefix}_mass_by_head": _rounded(test["mass"]),
    }


def by_template(hyps: Sequence[str], notes: Sequence[Note]) -> dict[str, float]:
    """Pronoun accuracy per template (``fronted``: the French pronoun comes before both nouns, so
    the decoder cannot read the gender off an article it has already written)."""
    out = {}
    for name in sorted({n.template for n in notes}):
        pick = [(h, n) for h, n in zip(hyps, notes) if n.template == name]
        out[name] = pronoun_scores([h for h, _ in pick], [n for _, n in pick])["pronoun_accuracy"]
    return out


def coref_metrics(translator, corpus, hyps, val_ex, test_ex, untrained=None) -> dict:
    """Every figure of the module docstring, as ``metrics.json`` keys (``coref_*``): each model's
    attention of each split comes from one forced-decoding pass (:func:`forced_maps`)."""
    notes = corpus.extra["coref"]
    src_tok, tgt_tok = translator.src_tok, translator.tgt_tok
    out: dict[str, Any] = {
        **pronoun_scores(hyps, notes["test"]),
        **baselines(notes["train"], notes["test"]),
    }
    out["baseline_chance"] = 0.5
    out["pronoun_accuracy_by_template"] = by_template(hyps, notes["test"])
    examples = {"val": val_ex, "test": test_ex}
    pairs = {"val": corpus.val, "test": corpus.test}
    kinds = KINDS if translator.attends else KINDS[1:]  # decoder=none has no cross-attention
    maps = {
        k: forced_maps(translator.model, examples[k], 128, translator.device, kinds) for k in pairs
    }
    if "encoder_self" in maps["test"]:  # the Transformer: self-attention from "it"
        enc = {
            k: encoder_heads(maps[k]["encoder_self"], src_tok, pairs[k], notes[k]) for k in pairs
        }
        out.update(_best(enc["val"], enc["test"], "coref"))
        out.update(
            coref_val_mass_by_head=_rounded(enc["val"]["mass"]),
            coref_other_mass_by_head=_rounded(enc["test"]["other"]),
            coref_argmax_by_head=_rounded(enc["test"]["argmax"]),
            coref_role_heads=role_heads(enc["val"]["agent"], enc["test"]["agent"]),
        )
        out.update(_best(enc["val"]["adjective"], enc["test"]["adjective"], "coref_adjective"))
        test_maps = maps["test"]["encoder_self"]
        out.update(rollout_masses(test_maps, src_tok, corpus.test, notes["test"]))
        if untrained is not None:
            raw = {
                k: forced_attention(untrained, examples[k], 128, translator.device, "encoder_self")
                for k in pairs
            }
            u = {k: encoder_heads(raw[k], src_tok, pairs[k], notes[k]) for k in pairs}
            out.update(_best(u["val"], u["test"], "coref_untrained"))
        dec = {
            k: decoder_at_pronoun(maps[k]["decoder_self"], tgt_tok, pairs[k], notes[k])
            for k in pairs
        }
        out.update(_best(dec["val"], dec["test"], "coref_decoder"))
    if translator.attends:
        cross = cross_at_pronoun(
            maps["test"]["cross"], src_tok, tgt_tok, corpus.test, notes["test"]
        )
        out["coref_cross_mass_by_layer"] = [round(float(x), 4) for x in cross["mass"].mean(1)]
        out["coref_cross_other_mass_by_layer"] = [
            round(float(x), 4) for x in cross["other"].mean(1)
        ]  # heads averaged: (L,)
        if cross["mass"].shape[1] > 1:
            out["coref_cross_mass_by_head"] = _rounded(cross["mass"])
    return out


# -- attnrun predict on a coref run --------------------------------------------------------------


def check_sentence(tok: Tokenizer, text: str) -> list[str]:
    """The sentence's words; a one-line :class:`DataError` without "it" or with words the model
    never saw."""
    words = word_split(text)
    if "it" not in words:
        raise DataError(f'no "it" in {text!r}: a coref sentence needs the pronoun to resolve')
    unknown = unknown_words(tok, text)
    if unknown:
        raise DataError(
            f"word(s) the model never saw: {', '.join(unknown)} (the coref lexicon's words: "
            "attnrun.translate.data.coref.Lexicon)"
        )
    return words


def explain_it(sample, tok: Tokenizer, words: Sequence[str], best_head, lexicon) -> str:
    """Which noun of the sentence the best head (1-based ``[layer, head]``) attends to from "it",
    from an ``encoder_self`` attention sample of the sentence (word pieces summed per word)."""
    layer, head = best_head[0] - 1, best_head[1] - 1
    spans = word_spans(tok, words)
    q0, q1 = spans[words.index("it")]
    row = torch.as_tensor(sample.weights[layer, head, q0:q1]).float().mean(0)  # (S,) source tokens
    mass = [float(row[a:b].sum()) for a, b in spans]
    nouns = [i for i, w in enumerate(words) if lexicon.gender_of(w) is not None]
    where = f"encoder layer {layer + 1} head {head + 1}, chosen on validation"
    if not nouns:
        return f"it → no noun of the lexicon in the sentence ({where})"
    best = max(nouns, key=lambda i: mass[i])
    return f'it → {words[best]} ({mass[best]:.2f} of "it"\'s attention; {where})'
