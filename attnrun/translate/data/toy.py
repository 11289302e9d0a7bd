"""``toy``: a generated English → "French-like" language whose word alignments are known.

Rules that make the attention maps interesting (non-monotonic, not one-to-one):

- adjectives follow the noun, in reversed order: "the big red dog" → "le chien rouge grand";
- "very" goes with its adjective: "a very old cat" → "un chat très vieux";
- negation is one-to-many and drops a word: "does not see" → "ne voit pas" ("does" has no word
  of its own, "not" aligns to both "ne" and "pas");
- an optional time adverb moves to the front: "... today ." → "aujourd'hui ... .";
- the sentence ends in ".", "!" or "?", copied, so the last target word depends on the source.

Every target word keeps the index of the source word it came from, so the generator knows the gold
alignment of each pair: one *sure* link per target word, plus, as in the Och & Ney (2003) annotation
scheme, *possible* links where a phrase corresponds as a whole — "does not" ↔ "ne … pas" makes
does–ne and does–pas possible (the do-support "does" is part of the negation phrase).
"""

from __future__ import annotations

import random

from attnrun.translate.data import Corpus, datasets

NOUNS = {
    "dog": "chien", "cat": "chat", "man": "homme", "woman": "femme", "bird": "oiseau",
    "child": "enfant", "car": "voiture", "house": "maison", "ball": "balle", "horse": "cheval",
    "boy": "garçon", "girl": "fille", "tree": "arbre", "book": "livre",
}  # fmt: skip
ADJECTIVES = {
    "big": "grand", "small": "petit", "red": "rouge", "black": "noir", "white": "blanc",
    "old": "vieux", "young": "jeune", "happy": "heureux", "green": "vert",
}  # fmt: skip
VERBS = {  # base form → (3rd person singular, French)
    "see": ("sees", "voit"), "like": ("likes", "aime"), "eat": ("eats", "mange"),
    "follow": ("follows", "suit"), "find": ("finds", "trouve"), "watch": ("watches", "regarde"),
}  # fmt: skip
DETERMINERS = {"the": "le", "a": "un"}
ADVERBS = {"today": "aujourd'hui", "often": "souvent", "again": "encore"}
PUNCTUATION = {".": ".", "!": "!", "?": "?"}  # copied, so even the last word needs attention


class _Builder:
    """Source words and target words with the source index each target word aligns to."""

    def __init__(self) -> None:
        self.src: list[str] = []
        self.tgt: list[tuple[str, int | None]] = []

    def word(self, en: str) -> int:
        self.src.append(en)
        return len(self.src) - 1


def _noun_phrase(b: _Builder, rng: random.Random) -> list[tuple[str, int]]:
    det = rng.choice(list(DETERMINERS))
    out = [(DETERMINERS[det], b.word(det))]
    adjs: list[tuple[str, int]] = []
    for _ in range(rng.choice([0, 0, 1, 1, 2])):
        if rng.random() < 0.2:
            very = b.word("very")
            adj = rng.choice(list(ADJECTIVES))
            adjs.append(("très", very))
            adjs.append((ADJECTIVES[adj], b.word(adj)))
        else:
            adj = rng.choice(list(ADJECTIVES))
            adjs.append((ADJECTIVES[adj], b.word(adj)))
    noun = rng.choice(list(NOUNS))
    out.append((NOUNS[noun], b.word(noun)))
    # adjectives after the noun, last adjective first ("very" stays before its adjective)
    groups: list[list[tuple[str, int]]] = []
    for w in adjs:
        if groups and groups[-1][-1][0] == "très":
            groups[-1].append(w)
        else:
            groups.append([w])
    for g in reversed(groups):
        out += g
    return out


def _clause(b: _Builder, rng: random.Random, extra: list[tuple[int, str]]) -> list[tuple[str, int]]:
    """One clause "[adverb] subject verb object" (target words with their source indices); the
    adverb goes to the front of the French clause."""
    subject = _noun_phrase(b, rng)
    verb = rng.choice(list(VERBS))
    third, fr = VERBS[verb]
    if rng.random() < 0.3:
        does = b.word("does")  # dropped: no target word of its own
        neg = b.word("not")
        extra += [(does, "ne"), (does, "pas")]
        v = b.word(verb)
        predicate = [("ne", neg), (fr, v), ("pas", neg)]
    else:
        predicate = [(fr, b.word(third))]
    obj = _noun_phrase(b, rng)
    front: list[tuple[str, int]] = []
    if rng.random() < 0.25:
        adv = rng.choice(list(ADVERBS))
        front = [(ADVERBS[adv], b.word(adv))]
    return front + subject + predicate + obj


def generate_pair(rng: random.Random, max_clauses: int = 1) -> tuple[str, str, set, set]:
    """One ``(english, french, sure_links, possible_links)``; links are ``(src, tgt)`` indices and
    ``possible ⊇ sure``. With ``max_clauses > 1`` a sentence joins 1..max_clauses clauses with
    "and" / "et" (long sentences, for BLEU by source length)."""
    b = _Builder()
    extra: list[tuple[int, str]] = []  # (source index, target word) possible links
    n = rng.randint(1, max_clauses) if max_clauses > 1 else 1
    tgt: list[tuple[str, int]] = []
    for k in range(n):
        if k:
            tgt.append(("et", b.word("and")))
        tgt += _clause(b, rng, extra)
    mark = rng.choice(list(PUNCTUATION))
    tgt.append((PUNCTUATION[mark], b.word(mark)))
    sure = {(s, t) for t, (_, s) in enumerate(tgt)}
    possible = sure | {(s, t) for s, word in extra for t, (w, _) in enumerate(tgt) if w == word}
    return " ".join(b.src), " ".join(w for w, _ in tgt), sure, possible


def generate(
    n: int, seed: int, max_clauses: int = 1
) -> tuple[list[tuple[str, str]], list[set], list[set]]:
    """``n`` pairs with their sure and possible alignments."""
    rng = random.Random(seed)
    pairs, sure, possible = [], [], []
    for _ in range(n):
        s, t, g, p = generate_pair(rng, max_clauses)
        pairs.append((s, t))
        sure.append(g)
        possible.append(p)
    return pairs, sure, possible


@datasets.register("toy")
def load_toy(cfg, seed: int) -> Corpus:
    """Generated pairs: ``data.n_train`` (default 6000), ``n_val`` and ``n_test`` of them, of up
    to ``data.max_clauses`` clauses each.

    Train, validation and test are drawn from separate seeds; the generator is independent of the
    run's seed so runs with different seeds see the same language.
    """
    n_train = cfg.n_train if cfg.n_train is not None else 6000
    train, _, _ = generate(n_train, 1, cfg.max_clauses)
    val, val_sure, val_possible = generate(cfg.n_val, 2, cfg.max_clauses)
    test, sure, possible = generate(cfg.n_test, 3, cfg.max_clauses)
    return Corpus(
        "toy", train, val, test, "test", test_alignments=sure, test_possible=possible,
        val_alignments=val_sure, val_possible=val_possible,
    )  # fmt: skip
