"""Templated "it" sentences whose adjective decides the antecedent (the Winograd-style example).

"The animal didn't cross the street because it was too tired": "it" is the animal; with "too wide"
it is the street. Each template writes one sentence shape (clause order, passive voice, a distractor
noun, an opening phrase that shifts every position); the slots are filled from a :class:`Lexicon`:

- an *agent* noun phrase (animals: tired, scared, hungry, ... apply to it),
- a *place* noun phrase (street, river, ...: wide, busy, icy, ... apply to it),
- an *object* noun phrase as a distractor (never the answer),
- one adjective, from the agent or the place list: the adjective's kind picks the antecedent.

Noun phrases may be several words ("guinea pig", "the old dog"): the label is the position of the
*head* noun, the phrase's last word.

Held-out split: a fraction of the (noun, adjective) pairs that make a noun the antecedent is held
out. Training sentences contain no held-out pair for any of their nouns; every test sentence's
(antecedent, adjective) pair is held out, so the test split measures resolution of unseen
combinations and the two splits never share a sentence.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch

from attnrun.errors import DataError
from attnrun.registry import Registry

AGENT, PLACE = "agent", "place"
PRONOUN = "it"
PAD = "<pad>"

Phrase = tuple[str, ...]


@dataclass(frozen=True)
class Lexicon:
    """The words the templates draw from. Nouns are phrases; their last word is the head noun."""

    agents: tuple[Phrase, ...] = (
        ("animal",), ("dog",), ("cat",), ("horse",), ("cow",), ("fox",), ("goat",), ("deer",),
        ("rabbit",), ("chicken",), ("donkey",), ("pony",), ("puppy",), ("mouse",),
        ("guinea", "pig"), ("polar", "bear"),
    )  # fmt: skip
    places: tuple[Phrase, ...] = (
        ("street",), ("road",), ("river",), ("bridge",), ("field",), ("stream",), ("highway",),
        ("lane",), ("square",), ("canal",), ("railway",), ("motorway",),
        ("train", "track"), ("bike", "path"),
    )  # fmt: skip
    objects: tuple[Phrase, ...] = (
        ("bag",), ("hat",), ("ball",), ("bell",), ("collar",), ("basket",), ("lamp",), ("box",),
    )  # fmt: skip
    agent_adjectives: tuple[str, ...] = (
        "tired", "scared", "hungry", "sleepy", "weak", "lazy", "afraid", "nervous", "exhausted",
        "slow", "frightened", "sick",
    )  # fmt: skip
    place_adjectives: tuple[str, ...] = (
        "wide", "busy", "icy", "crowded", "steep", "muddy", "slippery", "deep", "long", "flooded",
        "dark", "noisy",
    )  # fmt: skip
    modifiers: tuple[str, ...] = ("old", "big", "small", "new")
    verbs: tuple[Phrase, ...] = (
        ("didn't", "cross"), ("did", "not", "cross"), ("didn't", "walk", "across"),
        ("couldn't", "get", "across"), ("refused", "to", "cross"),
        ("would", "not", "run", "across"), ("never", "crossed"),
    )  # fmt: skip
    passive_verbs: tuple[Phrase, ...] = (
        ("was", "not", "crossed", "by"), ("wasn't", "crossed", "by"),
        ("could", "not", "be", "crossed", "by"),
    )  # fmt: skip
    connectors: tuple[str, ...] = ("because", "since", "as")
    copulas: tuple[str, ...] = ("was", "seemed", "looked")
    openings: tuple[Phrase, ...] = (
        (), (), ("yesterday", ","), ("this", "morning", ","), ("in", "the", "end", ","),
        ("sadly", ","),
    )  # fmt: skip
    modifier_probability: float = 0.25

    def nouns(self, kind: str) -> tuple[Phrase, ...]:
        return self.agents if kind == AGENT else self.places

    def adjectives(self, kind: str) -> tuple[str, ...]:
        return self.agent_adjectives if kind == AGENT else self.place_adjectives

    def words(self) -> set[str]:
        """Every word the lexicon can put into a sentence."""
        out = set(self.agent_adjectives) | set(self.place_adjectives) | set(self.modifiers)
        out |= set(self.connectors) | set(self.copulas)
        for group in (self.agents, self.places, self.objects, self.verbs, self.passive_verbs,
                      self.openings):  # fmt: skip
            out |= {w for phrase in group for w in phrase}
        return out


DEFAULT_LEXICON = Lexicon()


@dataclass(frozen=True)
class Example:
    """One sentence and its answer: ``tokens[antecedent_index]`` is the head noun "it" refers to."""

    tokens: tuple[str, ...]
    it_index: int
    antecedent_index: int
    other_index: int  # head noun of the other candidate (agent or place)
    adjective: str
    kind: str  # AGENT or PLACE: the antecedent's kind
    template: str

    @property
    def antecedent(self) -> str:
        return self.tokens[self.antecedent_index]


class _Draw:
    """Uniform choices from a seeded ``torch.Generator`` (so data depend on the seed alone)."""

    def __init__(self, generator: torch.Generator) -> None:
        self.g = generator

    def index(self, n: int) -> int:
        return int(torch.randint(n, (1,), generator=self.g))

    def choice(self, seq: Sequence):
        return seq[self.index(len(seq))]

    def chance(self, p: float) -> bool:
        return float(torch.rand((), generator=self.g)) < p


# Markers a template places between literal words; realise() fills them in and records positions.
_A, _P, _O, _ADJ = "<agent>", "<place>", "<object>", "<adjective>"

Template = Callable[[Lexicon, _Draw], list]
templates: Registry[Template] = Registry("template")


@templates.register("plain")
def _plain(lex: Lexicon, d: _Draw) -> list:
    """[opening] the A didn't cross the P because it was too ADJ ."""
    return [*d.choice(lex.openings), "the", _A, *d.choice(lex.verbs), "the", _P,
            d.choice(lex.connectors), PRONOUN, d.choice(lex.copulas), "too", _ADJ, "."]  # fmt: skip


@templates.register("fronted")
def _fronted(lex: Lexicon, d: _Draw) -> list:
    """because it was too ADJ , the A didn't cross the P .  ("it" before its antecedent)"""
    return [d.choice(lex.connectors), PRONOUN, d.choice(lex.copulas), "too", _ADJ, ",",
            "the", _A, *d.choice(lex.verbs), "the", _P, "."]  # fmt: skip


@templates.register("passive")
def _passive(lex: Lexicon, d: _Draw) -> list:
    """[opening] the P was not crossed by the A because it was too ADJ .  (roles swap sides)"""
    return [*d.choice(lex.openings), "the", _P, *d.choice(lex.passive_verbs), "the", _A,
            d.choice(lex.connectors), PRONOUN, d.choice(lex.copulas), "too", _ADJ, "."]  # fmt: skip


@templates.register("distractor")
def _distractor(lex: Lexicon, d: _Draw) -> list:
    """the A with the O didn't cross the P because ...  /  ... the P near the O because ..."""
    if d.chance(0.5):
        head = ["the", _A, "with", "the", _O, *d.choice(lex.verbs), "the", _P]
    else:
        head = ["the", _A, *d.choice(lex.verbs), "the", _P, "near", "the", _O]
    return [*d.choice(lex.openings), *head, d.choice(lex.connectors), PRONOUN,
            d.choice(lex.copulas), "too", _ADJ, "."]  # fmt: skip


def _phrase(lex: Lexicon, d: _Draw, noun: Phrase) -> Phrase:
    return (d.choice(lex.modifiers), *noun) if d.chance(lex.modifier_probability) else noun


def realise(
    parts: list,
    lex: Lexicon,
    d: _Draw,
    agent: Phrase,
    place: Phrase,
    adjective: str,
    kind: str,
    template: str,
) -> Example:
    """Fill a template's markers and record where "it" and both candidate head nouns are."""
    tokens: list[str] = []
    heads: dict[str, int] = {}
    fill = {_A: _phrase(lex, d, agent), _P: _phrase(lex, d, place), _ADJ: (adjective,)}
    for part in parts:
        if part == _O:
            tokens += _phrase(lex, d, d.choice(lex.objects))
        elif part in fill:
            tokens += fill[part]
            heads[part] = len(tokens) - 1
        else:
            tokens.append(part)
    answer, other = (_A, _P) if kind == AGENT else (_P, _A)
    return Example(tuple(tokens), tokens.index(PRONOUN), heads[answer], heads[other], adjective,
                   kind, template)  # fmt: skip


@dataclass
class Splits:
    """Training and held-out examples, and the held-out (head noun, adjective) pairs."""

    train: list[Example]
    test: list[Example]
    heldout_pairs: frozenset[tuple[str, str]]
    lexicon: Lexicon = field(default=DEFAULT_LEXICON)


def heldout_pairs(lex: Lexicon, fraction: float, d: _Draw) -> frozenset[tuple[str, str]]:
    """For each noun, ``fraction`` of the adjectives that make it the antecedent (at least one,
    never all), as ``(head noun, adjective)``."""
    out = set()
    for kind in (AGENT, PLACE):
        adjectives = lex.adjectives(kind)
        k = min(len(adjectives) - 1, max(1, round(fraction * len(adjectives))))
        for noun in lex.nouns(kind):
            order = torch.randperm(len(adjectives), generator=d.g).tolist()
            out |= {(noun[-1], adjectives[i]) for i in order[:k]}
    return frozenset(out)


def sample(
    n: int,
    lex: Lexicon,
    pairs: Sequence[tuple[Phrase, str, str]],
    names: Sequence[str],
    d: _Draw,
) -> list[Example]:
    """``n`` sentences: each draws a template, an (antecedent, adjective, kind) from ``pairs``, and
    the other candidate of the other kind uniformly."""
    out = []
    for _ in range(n):
        name = d.choice(names)
        noun, adjective, kind = d.choice(pairs)
        other = d.choice(lex.nouns(PLACE if kind == AGENT else AGENT))
        agent, place = (noun, other) if kind == AGENT else (other, noun)
        parts = templates.get(name)(lex, d)
        out.append(realise(parts, lex, d, agent, place, adjective, kind, name))
    return out


def make_splits(
    n_train: int,
    n_test: int,
    generator: torch.Generator,
    *,
    heldout_fraction: float = 0.25,
    template_names: Sequence[str] | None = None,
    lexicon: Lexicon = DEFAULT_LEXICON,
) -> Splits:
    """Training and held-out sentences; see the module docstring for the split rule."""
    d = _Draw(generator)
    names = list(template_names or templates.names())
    for name in names:
        templates.get(name)  # unknown names fail here, listing the valid ones
    held = heldout_pairs(lexicon, heldout_fraction, d)
    seen: list[tuple[Phrase, str, str]] = []
    unseen: list[tuple[Phrase, str, str]] = []
    for kind in (AGENT, PLACE):
        for noun in lexicon.nouns(kind):
            for adjective in lexicon.adjectives(kind):
                (unseen if (noun[-1], adjective) in held else seen).append((noun, adjective, kind))
    train = sample(n_train, lexicon, seen, names, d)
    test = sample(n_test, lexicon, unseen, names, d)
    return Splits(train, test, held, lexicon)


# -- tokens and vocabulary ---------------------------------------------------------------------

_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|[.,!?;:]|\S")


def tokenize(text: str) -> list[str]:
    """Lower-case words (``didn't`` stays one token) and punctuation marks as tokens."""
    return _TOKEN.findall(text.lower())


class Vocab:
    """Token ↔ id; id 0 is padding. Built from a fixed word list, so it is saved as that list."""

    def __init__(self, tokens: Iterable[str]) -> None:
        words = [PAD, *sorted(set(tokens) - {PAD})]
        self.itos = words
        self.stoi = {w: i for i, w in enumerate(words)}

    @classmethod
    def for_lexicon(cls, lex: Lexicon, examples: Sequence[Example]) -> Vocab:
        return cls(lex.words() | {PRONOUN} | {t for ex in examples for t in ex.tokens})

    def __len__(self) -> int:
        return len(self.itos)

    def unknown(self, tokens: Sequence[str]) -> list[str]:
        return [t for t in dict.fromkeys(tokens) if t not in self.stoi]

    def encode(self, tokens: Sequence[str]) -> list[int]:
        missing = self.unknown(tokens)
        if missing:
            raise DataError(f"unknown word(s) {', '.join(repr(w) for w in missing)}")
        return [self.stoi[t] for t in tokens]

    def to_json(self) -> dict:
        return {"tokens": self.itos, "pad": PAD}

    @classmethod
    def from_json(cls, obj: dict) -> Vocab:
        tokens = obj.get("tokens") if isinstance(obj, dict) else None
        if (
            not isinstance(tokens, list)
            or not all(isinstance(t, str) for t in tokens)
            or (not tokens or tokens[0] != PAD)
        ):
            raise DataError("vocabulary JSON must hold {'tokens': ['<pad>', ...]}")
        vocab = cls(tokens)
        if vocab.itos != tokens:
            raise DataError("vocabulary JSON is not in attnrun's order (sorted, <pad> first)")
        return vocab


@dataclass
class Batch:
    """Padded tensors of a list of examples."""

    tokens: torch.Tensor  # (B, T) token ids, 0-padded
    valid_lens: torch.Tensor  # (B,)
    it_index: torch.Tensor  # (B,)
    target: torch.Tensor  # (B,) antecedent head-noun position


def encode_batch(examples: Sequence[Example], vocab: Vocab) -> Batch:
    """Pad ``examples`` to the longest one."""
    longest = max(len(ex.tokens) for ex in examples)
    ids = torch.zeros(len(examples), longest, dtype=torch.long)
    for i, ex in enumerate(examples):
        ids[i, : len(ex.tokens)] = torch.tensor(vocab.encode(ex.tokens))
    return Batch(
        ids,
        torch.tensor([len(ex.tokens) for ex in examples]),
        torch.tensor([ex.it_index for ex in examples]),
        torch.tensor([ex.antecedent_index for ex in examples]),
    )
