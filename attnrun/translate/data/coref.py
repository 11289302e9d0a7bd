"""``coref``: English → French sentences whose pronoun needs coreference ("it" → il / elle).

"The animal didn't cross the street because it was too tired" → "l'animal n'a pas traversé la rue
car il était trop fatigué ."; with "too wide" the pronoun is the street: "... car elle était trop
large .". The Transformer's announcement (Uszkoreit 2017) showed an encoder head whose attention
from "it" lands on the antecedent, learned from translation alone; this corpus lets a model learn
exactly that, and lets attnrun measure it.

The design is the ``selfattn`` generator's (:mod:`attnrun.selfattn.data`): sentence templates
(clause order, passive voice, a distractor object, openings that shift every position), multi-word
nouns, and held-out (noun, adjective) pairs, here with French on the other side:

- every noun has its real French gender; agents and places each hold seven masculine and seven
  feminine nouns, and the *other* candidate always has the other gender, so "il" / "elle" says
  which noun "it" is, and a rule blind to coreference (the nearest noun, the adjective alone, the
  noun's role) is right about half the time;
- the predicate adjective agrees with the pronoun (fatigué / fatiguée); a few French adjectives do
  not inflect (large, raide, sombre, malade, faible), as in French;
- every French word keeps the English words it aligns to: one *sure* link or more, and *possible*
  links over a phrase that corresponds as a whole (Och & Ney 2003), as in the ``toy`` language.

Held-out pairs: for each noun, a quarter of the adjectives that make it the antecedent never occur
with it in training; half of those form the validation pairs and half the test pairs, so the
validation split (where attnrun chooses the best head) and the test split (where it is measured)
share no (noun, adjective) pair and no sentence with training or each other.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from attnrun.errors import DataError
from attnrun.registry import Registry
from attnrun.translate.data import Corpus, datasets, describe

AGENT, PLACE, OBJECT = "agent", "place", "object"
GENDERS = ("m", "f")
PRONOUNS = {"m": "il", "f": "elle"}
VOWELS = tuple("aâàeéèêiîoôuûh")


@dataclass(frozen=True)
class Noun:
    """An English noun phrase and its French translation; ``en[-1]`` is the head noun.

    ``links[j]``: the English words (indices into ``en``) French word ``j`` aligns to.
    """

    en: tuple[str, ...]
    fr: tuple[str, ...]
    gender: str
    links: tuple[tuple[int, ...], ...] = ()

    def __post_init__(self) -> None:
        if self.gender not in GENDERS:
            raise DataError(
                f"coref lexicon: noun {' '.join(self.en)!r} has no French gender "
                f"(got {self.gender!r}; valid: m | f)"
            )
        if not self.links:  # one word each, or the head to the head
            links = tuple((min(j, len(self.en) - 1),) for j in range(len(self.fr)))
            object.__setattr__(self, "links", links)

    @property
    def head(self) -> str:
        return self.en[-1]


def _n(en: str, fr: str, gender: str, *links: tuple[int, ...]) -> Noun:
    return Noun(tuple(en.split()), tuple(fr.split()), gender, tuple(links))


@dataclass(frozen=True)
class Adjective:
    """A predicate adjective: English, French masculine and feminine forms."""

    en: str
    m: str
    f: str

    def form(self, gender: str) -> str:
        return self.m if gender == "m" else self.f

    @property
    def inflects(self) -> bool:
        return self.m != self.f


def _adjectives(text: str) -> tuple[Adjective, ...]:
    """``"en m f, en m, ..."`` (one form: the adjective does not inflect)."""
    out = []
    for entry in text.split(","):
        en, m, *f = entry.split()
        out.append(Adjective(en, m, f[0] if f else m))
    return tuple(out)


@dataclass(frozen=True)
class Lexicon:
    """The nouns and words the templates draw from (selfattn's English, with French beside it)."""

    agents: tuple[Noun, ...] = (
        _n("animal", "animal", "m"), _n("dog", "chien", "m"), _n("cat", "chat", "m"),
        _n("horse", "cheval", "m"), _n("donkey", "âne", "m"),
        _n("guinea pig", "cochon d'inde", "m", (1,), (0,)),
        _n("polar bear", "ours polaire", "m", (1,), (0,)),
        _n("cow", "vache", "f"), _n("goat", "chèvre", "f"), _n("mouse", "souris", "f"),
        _n("hen", "poule", "f"), _n("owl", "chouette", "f"), _n("sheep", "brebis", "f"),
        _n("turtle", "tortue", "f"),
    )  # fmt: skip
    places: tuple[Noun, ...] = (
        _n("street", "rue", "f"), _n("road", "route", "f"), _n("river", "rivière", "f"),
        _n("highway", "autoroute", "f"), _n("lane", "ruelle", "f"), _n("square", "place", "f"),
        _n("bike path", "piste cyclable", "f", (1,), (0,)),
        _n("bridge", "pont", "m"), _n("field", "champ", "m"), _n("canal", "canal", "m"),
        _n("stream", "ruisseau", "m"), _n("park", "parc", "m"), _n("ford", "gué", "m"),
        _n("train track", "chemin de fer", "m", (1,), (0, 1), (0,)),
    )  # fmt: skip
    objects: tuple[Noun, ...] = (
        _n("bag", "sac", "m"), _n("hat", "chapeau", "m"), _n("collar", "collier", "m"),
        _n("basket", "panier", "m"), _n("ball", "balle", "f"), _n("bell", "cloche", "f"),
        _n("lamp", "lampe", "f"), _n("box", "boîte", "f"),
    )  # fmt: skip
    agent_adjectives: tuple[Adjective, ...] = _adjectives(
        "tired fatigué fatiguée, scared effrayé effrayée, hungry affamé affamée, "
        "sleepy endormi endormie, lazy paresseux paresseuse, afraid apeuré apeurée, "
        "nervous nerveux nerveuse, exhausted épuisé épuisée, slow lent lente, "
        "frightened terrifié terrifiée, sick malade, weak faible"
    )
    place_adjectives: tuple[Adjective, ...] = _adjectives(
        "wide large, busy fréquenté fréquentée, icy glacé glacée, crowded bondé bondée, "
        "steep raide, muddy boueux boueuse, slippery glissant glissante, deep profond profonde, "
        "long long longue, flooded inondé inondée, dark sombre, noisy bruyant bruyante"
    )
    #: English modifier → (masculine, masculine before a vowel, feminine); before the noun.
    modifiers: tuple[tuple[str, str, str, str], ...] = (
        ("old", "vieux", "vieil", "vieille"), ("big", "grand", "grand", "grande"),
        ("small", "petit", "petit", "petite"), ("new", "nouveau", "nouvel", "nouvelle"),
    )  # fmt: skip
    modifier_probability: float = 0.25

    def nouns(self, kind: str) -> tuple[Noun, ...]:
        return {AGENT: self.agents, PLACE: self.places, OBJECT: self.objects}[kind]

    def adjectives(self, kind: str) -> tuple[Adjective, ...]:
        return self.agent_adjectives if kind == AGENT else self.place_adjectives

    def gender_of(self, head: str) -> str | None:
        """The French gender of the English head noun ``head`` (None: not a noun of this
        lexicon)."""
        for group in (self.agents, self.places, self.objects):
            for noun in group:
                if noun.head == head:
                    return noun.gender
        return None

    def check(self) -> None:
        """Each kind needs both genders (else il / elle would follow from the role alone) and
        head nouns must be unique (they name the held-out pairs)."""
        heads = [n.head for g in (self.agents, self.places, self.objects) for n in g]
        dup = sorted({h for h in heads if heads.count(h) > 1})
        if dup:
            raise DataError(f"coref lexicon: head noun(s) {', '.join(dup)} appear twice")
        for kind in (AGENT, PLACE):
            if {n.gender for n in self.nouns(kind)} != set(GENDERS):
                raise DataError(f"coref lexicon: the {kind}s need masculine and feminine nouns")
            if len(self.adjectives(kind)) < 4:
                raise DataError(f"coref lexicon: the {kind}s need at least 4 adjectives")


DEFAULT_LEXICON = Lexicon()

# -- one sentence pair -------------------------------------------------------------------------


@dataclass
class Note:
    """What the coreference metrics need of one pair (indices over whitespace-split words)."""

    it_index: int  # "it" in the English sentence
    antecedent_index: int  # head noun "it" refers to
    other_index: int  # head noun of the other candidate
    gender: str  # the antecedent's French gender: il (m) or elle (f)
    kind: str  # AGENT or PLACE: the antecedent's role
    adjective: str  # English predicate adjective
    adjective_forms: tuple[str, str]  # its French (masculine, feminine) forms
    pronoun_index: int  # il / elle in the French reference
    template: str
    nouns: list[tuple[int, str]] = field(default_factory=list)  # every head noun: (index, gender)
    # the French head nouns of the antecedent and of the other candidate in the reference
    antecedent_target: int = -1
    other_target: int = -1

    @property
    def pronoun(self) -> str:
        return PRONOUNS[self.gender]

    @property
    def adjective_index(self) -> int:
        """The predicate adjective in the English sentence: every template says "it COPULA too
        ADJECTIVE"."""
        return self.it_index + 3


class _Pair:
    """Source words, target words, and the links between them, built phrase by phrase."""

    def __init__(self) -> None:
        self.src: list[str] = []
        self.tgt: list[str] = []
        self.sure: set[tuple[int, int]] = set()
        self.possible: set[tuple[int, int]] = set()

    def phrase(self, en: Sequence[str], fr: Sequence[str], links=None, block=False) -> int:
        """Append ``en`` and ``fr``; ``links[j]`` are the ``en`` words (local indices) French word
        ``j`` aligns to (default: word ``j`` or the last one); ``block``: every pair of the two
        phrases is a possible link (a phrase that corresponds as a whole). Returns where ``en``
        starts."""
        s0, t0 = len(self.src), len(self.tgt)
        self.src += en
        self.tgt += fr
        links = links or [(min(j, len(en) - 1),) for j in range(len(fr))]
        for j, srcs in enumerate(links):
            self.sure |= {(s0 + i, t0 + j) for i in srcs}
        if block:
            self.possible |= {(s0 + i, t0 + j) for i in range(len(en)) for j in range(len(fr))}
        return s0

    def noun_phrase(self, lex: Lexicon, rng: random.Random, noun: Noun, prep: str = "") -> int:
        """ "the [modifier] noun" → "le / la / l' [modifier] nom" (after ``prep="de"``: du, de la,
        de l'); returns the English head noun's index."""
        mod = rng.choice(lex.modifiers) if rng.random() < lex.modifier_probability else None
        en = ["the", *((mod[0],) if mod else ()), *noun.en]
        off = len(en) - len(noun.en)
        fr = [(w, tuple(off + i for i in ls)) for w, ls in zip(noun.fr, noun.links)]
        if mod:
            form = mod[3] if noun.gender == "f" else mod[2 if noun.fr[0].startswith(VOWELS) else 1]
            fr.insert(0, (form, (1,)))
        elided = fr[0][0].startswith(VOWELS)
        if elided:  # l'animal: one word, aligned to the noun (and possibly to "the")
            fr[0] = ("l'" + fr[0][0], fr[0][1])
        else:
            fr.insert(0, ({"m": "le", "f": "la"}[noun.gender], (0,)))
        if prep == "de":
            if fr[0][0] == "le":
                fr[0] = ("du", (0,))
            else:
                fr.insert(0, ("de", (0,)))
        start = self.phrase(en, [w for w, _ in fr], [ls for _, ls in fr])
        if elided:
            self.possible.add((start, len(self.tgt) - len(fr) + (prep == "de")))
        return start + len(en) - 1


# -- templates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slots:
    agent: Noun
    place: Noun
    adjective: Adjective
    kind: str  # the antecedent's role


#: ``(pair, lexicon, rng, slots) -> (it, il/elle, antecedent, other, [(object, gender)])``: the
#: template appends both sentences to ``pair`` and returns where its words went.
Template = Callable[[_Pair, Lexicon, random.Random, Slots], tuple[int, int, int, int, list]]
templates: Registry[Template] = Registry("template")

VERBS = (  # English, French, links (French word -> English words)
    ("didn't cross", "n'a pas traversé", [(0,), (0,), (1,)]),
    ("did not cross", "n'a pas traversé", [(0, 1), (1,), (2,)]),
    ("didn't walk across", "n'a pas traversé", [(0,), (0,), (1, 2)]),
    ("couldn't get across", "n'a pas pu traverser", [(0,), (0,), (0,), (1, 2)]),
    ("refused to cross", "a refusé de traverser", [(0,), (0,), (1,), (2,)]),
    ("would not run across", "ne voulait pas traverser", [(1,), (0,), (1,), (2, 3)]),
    ("never crossed", "n'a jamais traversé", [(1,), (0,), (1,)]),
)
PASSIVE_VERBS = (  # the participle agrees with the place: traversé / traversée
    ("was not crossed by", "n'a pas été traversé par", [(0, 1), (1,), (0,), (2,), (3,)]),
    ("wasn't crossed by", "n'a pas été traversé par", [(0,), (0,), (0,), (1,), (2,)]),
    ("could not be crossed by", "n'a pas pu être traversé par",
     [(1,), (1,), (0,), (2,), (3,), (4,)]),
)  # fmt: skip
#: English, French, links (French word -> English words; None: _Pair.phrase's default)
OPENINGS: tuple[tuple[str, str, list[tuple[int, ...]] | None], ...] = (
    ("", "", []), ("", "", []), ("yesterday ,", "hier ,", [(0,), (1,)]),
    ("this morning ,", "ce matin ,", [(0,), (1,), (2,)]),
    ("in the end ,", "finalement ,", [(0, 1, 2), (3,)]), ("sadly ,", "malheureusement ,", None),
)  # fmt: skip
CONNECTORS = {"because": "car", "since": "comme", "as": "comme"}
COPULAS = {"was": "était", "seemed": "semblait", "looked": "paraissait"}


def _words(pair: _Pair, en: str, fr: str, links=None, block=False) -> int:
    return pair.phrase(en.split(), fr.split(), links, block) if en else len(pair.src)


def _verb(pair: _Pair, rng: random.Random, verbs=VERBS, gender: str = "m") -> None:
    en, fr, links = rng.choice(verbs)
    fr = fr.replace("traversé ", "traversée ") if gender == "f" and "été" in fr else fr
    _words(pair, en, fr, links, block=True)


def _opening(pair: _Pair, rng: random.Random) -> None:
    en, fr, links = rng.choice(OPENINGS)
    _words(pair, en, fr, links, block=True)


def _because(pair: _Pair, rng, s: Slots, connector: str | None = None) -> tuple[int, int]:
    """ "because it was too ADJ" → "car il était trop ADJ"; returns (it index, pronoun index)."""
    en = connector or rng.choice(list(CONNECTORS))
    cop = rng.choice(list(COPULAS))
    gender = (s.agent if s.kind == AGENT else s.place).gender
    fr = "comme" if connector else CONNECTORS[en]
    start = pair.phrase(
        [en, "it", cop, "too", s.adjective.en],
        [fr, PRONOUNS[gender], COPULAS[cop], "trop", s.adjective.form(gender)],
    )
    return start + 1, len(pair.tgt) - 4


def _answer(s: Slots, agent: int, place: int) -> tuple[int, int]:
    return (agent, place) if s.kind == AGENT else (place, agent)


@templates.register("plain")
def _plain(pair: _Pair, lex: Lexicon, rng: random.Random, s: Slots):
    """[opening] the A didn't cross the P because it was too ADJ ."""
    _opening(pair, rng)
    agent = pair.noun_phrase(lex, rng, s.agent)
    _verb(pair, rng)
    place = pair.noun_phrase(lex, rng, s.place)
    it, pron = _because(pair, rng, s)
    _words(pair, ".", ".")
    return (it, pron, *_answer(s, agent, place), [])


@templates.register("fronted")
def _fronted(pair: _Pair, lex: Lexicon, rng: random.Random, s: Slots):
    """because it was too ADJ , the A didn't cross the P .  ("it" before its antecedent)"""
    it, pron = _because(pair, rng, s, connector=rng.choice(list(CONNECTORS)))
    _words(pair, ",", ",")
    agent = pair.noun_phrase(lex, rng, s.agent)
    _verb(pair, rng)
    place = pair.noun_phrase(lex, rng, s.place)
    _words(pair, ".", ".")
    return (it, pron, *_answer(s, agent, place), [])


@templates.register("passive")
def _passive(pair: _Pair, lex: Lexicon, rng: random.Random, s: Slots):
    """[opening] the P was not crossed by the A because it was too ADJ .  (roles swap sides)"""
    _opening(pair, rng)
    place = pair.noun_phrase(lex, rng, s.place)
    _verb(pair, rng, PASSIVE_VERBS, s.place.gender)
    agent = pair.noun_phrase(lex, rng, s.agent)
    it, pron = _because(pair, rng, s)
    _words(pair, ".", ".")
    return (it, pron, *_answer(s, agent, place), [])


@templates.register("distractor")
def _distractor(pair: _Pair, lex: Lexicon, rng: random.Random, s: Slots):
    """the A with the O didn't cross the P because ...  /  ... the P near the O because ..."""
    _opening(pair, rng)
    obj = rng.choice(lex.objects)
    agent = pair.noun_phrase(lex, rng, s.agent)
    if rng.random() < 0.5:
        _words(pair, "with", "avec")
        o = pair.noun_phrase(lex, rng, obj)
        _verb(pair, rng)
        place = pair.noun_phrase(lex, rng, s.place)
    else:
        _verb(pair, rng)
        place = pair.noun_phrase(lex, rng, s.place)
        _words(pair, "near", "près")
        o = pair.noun_phrase(lex, rng, obj, prep="de")
    it, pron = _because(pair, rng, s)
    _words(pair, ".", ".")
    return (it, pron, *_answer(s, agent, place), [(o, obj.gender)])


def make_pair(lex: Lexicon, rng: random.Random, s: Slots, template: str):
    """One ``(english, french, sure, possible, note)``."""
    pair = _Pair()
    it, pron, antecedent, other, objects = templates.get(template)(pair, lex, rng, s)
    antecedent_noun, other_noun = (s.agent, s.place) if s.kind == AGENT else (s.place, s.agent)
    gender, other_gender = antecedent_noun.gender, other_noun.gender
    note = Note(
        it, antecedent, other, gender, s.kind, s.adjective.en,
        (s.adjective.m, s.adjective.f), pron, template,
        sorted([(antecedent, gender), (other, other_gender), *objects]),
        _french_head(pair, antecedent), _french_head(pair, other),
    )  # fmt: skip
    possible = pair.possible | pair.sure
    return " ".join(pair.src), " ".join(pair.tgt), pair.sure, possible, note


def _french_head(pair: _Pair, source: int) -> int:
    """The first French word of the noun linked to English head noun ``source`` (not the
    article)."""
    linked = sorted(t for s, t in pair.sure if s == source)
    return next(t for t in linked if pair.tgt[t] not in ("le", "la", "du", "de"))


# -- splits ------------------------------------------------------------------------------------


def heldout_pairs(lex: Lexicon, rng: random.Random, fraction: float = 0.25):
    """Per noun, ``fraction`` of its kind's adjectives (at least 2) held out of training, cut into
    validation and test pairs: two disjoint sets of ``(head noun, adjective)``."""
    val, test = set(), set()
    for kind in (AGENT, PLACE):
        names = [a.en for a in lex.adjectives(kind)]
        k = min(len(names) - 1, max(2, round(fraction * len(names))))
        for noun in lex.nouns(kind):
            held = rng.sample(names, k)
            val |= {(noun.head, a) for a in held[: k // 2]}
            test |= {(noun.head, a) for a in held[k // 2 :]}
    return frozenset(val), frozenset(test)


def _draw(lex: Lexicon, rng: random.Random, n: int, combos: list, names: list[str]) -> list:
    out = []
    for _ in range(n):
        noun, adjective, kind = rng.choice(combos)
        role = PLACE if kind == AGENT else AGENT
        others = [o for o in lex.nouns(role) if o.gender != noun.gender]  # il / elle tells
        other = rng.choice(others)
        agent, place = (noun, other) if kind == AGENT else (other, noun)
        out.append(make_pair(lex, rng, Slots(agent, place, adjective, kind), rng.choice(names)))
    return out


def generate(lex: Lexicon, n_train: int, n_val: int, n_test: int, seed: int = 0) -> dict:
    """``{"train" | "val" | "test": [(en, fr, sure, possible, note)]}`` and the held-out pairs."""
    lex.check()
    rng = random.Random(seed)
    val_pairs, test_pairs = heldout_pairs(lex, rng)
    combos: dict[str, list] = {"train": [], "val": [], "test": []}
    for kind in (AGENT, PLACE):
        for noun in lex.nouns(kind):
            for adj in lex.adjectives(kind):
                key = (noun.head, adj.en)
                split = "val" if key in val_pairs else "test" if key in test_pairs else "train"
                combos[split].append((noun, adj, kind))
    names = templates.names()
    out: dict[str, list | dict[str, list]] = {
        split: _draw(lex, random.Random(f"{seed}-{split}"), n, combos[split], names)
        for split, n in (("train", n_train), ("val", n_val), ("test", n_test))
    }
    out["heldout"] = {"val": sorted(val_pairs), "test": sorted(test_pairs)}
    return out


def load_lexicon(path: str | None) -> Lexicon:
    """The default lexicon, or one whose ``agents`` / ``places`` / ``objects`` come from a JSON
    file: ``{"agents": [{"en": "guinea pig", "fr": "cochon d'inde", "gender": "m"}, ...]}``."""
    if path is None:
        return DEFAULT_LEXICON
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DataError(f"data.path: cannot read the coref lexicon {path}: {e}") from None
    if not isinstance(obj, dict):
        raise DataError(f"data.path: {path} must hold a JSON object with agents / places")
    groups = {}
    for key in ("agents", "places", "objects"):
        if key not in obj:
            continue
        try:
            groups[key] = tuple(
                Noun(tuple(e["en"].split()), tuple(e["fr"].split()), e.get("gender"))
                for e in obj[key]
            )
        except (TypeError, KeyError, AttributeError):
            raise DataError(
                f"data.path: {key} must be a list of {{'en', 'fr', 'gender'}} objects"
            ) from None
    return replace(
        DEFAULT_LEXICON,
        agents=groups.get("agents", DEFAULT_LEXICON.agents),
        places=groups.get("places", DEFAULT_LEXICON.places),
        objects=groups.get("objects", DEFAULT_LEXICON.objects),
    )


def check_coref(cfg) -> None:
    """The lexicon of ``data.path`` (if given) reads."""
    load_lexicon(cfg.path).check()


@datasets.register("coref")
def load_coref(cfg, seed: int) -> Corpus:
    """``data.n_train`` (default 6000), ``n_val`` and ``n_test`` generated pairs; ``data.path``:
    an optional JSON lexicon (:func:`load_lexicon`). The generator's seed is fixed, so every run
    seed sees the same corpus (seeds then vary the model alone)."""
    lex = load_lexicon(cfg.path)
    n_train = cfg.n_train if cfg.n_train is not None else 6000
    data = generate(lex, n_train, cfg.n_val, cfg.n_test)

    def texts(split):
        return [(en, fr) for en, fr, *_ in data[split]]

    return Corpus(
        "coref", texts("train"), texts("val"), texts("test"), "test",
        test_alignments=[p[2] for p in data["test"]], test_possible=[p[3] for p in data["test"]],
        val_alignments=[p[2] for p in data["val"]], val_possible=[p[3] for p in data["val"]],
        extra={"coref": {s: [p[4] for p in data[s]] for s in ("train", "val", "test")},
               "lexicon": lex, "heldout": data["heldout"]},
    )  # fmt: skip


describe(load_coref, check=check_coref)
