"""The ``coref`` corpus (attnrun.translate.data.coref): genders, agreement, held-out pairs,
alignments, and the rules that must stay at chance."""

from __future__ import annotations

import json

import pytest

from attnrun.errors import DataError
from attnrun.translate.config import DataConfig
from attnrun.translate.coref import baselines
from attnrun.translate.data import datasets
from attnrun.translate.data.coref import (
    DEFAULT_LEXICON,
    PRONOUNS,
    Noun,
    generate,
    load_lexicon,
)

#: The genders the issue names, written out independently of the lexicon (French dictionaries).
GENDERS = {
    "animal": "m", "dog": "m", "cat": "m", "horse": "m", "cow": "f", "goat": "f", "mouse": "f",
    "street": "f", "road": "f", "river": "f", "bridge": "m", "field": "m", "canal": "m",
}  # fmt: skip
FRENCH = {
    "animal": "animal", "dog": "chien", "cat": "chat", "horse": "cheval", "cow": "vache",
    "goat": "chèvre", "mouse": "souris", "street": "rue", "road": "route", "river": "rivière",
    "bridge": "pont", "field": "champ", "canal": "canal",
}  # fmt: skip
#: selfattn's English words the corpus keeps (the issue's list).
ENGLISH = ["tired", "scared", "hungry", "wide", "busy", "icy"]


@pytest.fixture(scope="module")
def data():
    return generate(DEFAULT_LEXICON, 3000, 600, 600)


def _splits(data):
    return [(s, p) for s in ("train", "val", "test") for p in data[s]]


def test_lexicon_keeps_the_issue_nouns_with_their_real_french_genders():
    """Guards a noun dropped from the lexicon or given the wrong gender or French word."""
    lex = DEFAULT_LEXICON
    for en, gender in GENDERS.items():
        assert lex.gender_of(en) == gender, en
        noun = next(n for g in (lex.agents, lex.places) for n in g if n.head == en)
        assert noun.fr[0] == FRENCH[en]
    adjectives = {a.en for a in lex.agent_adjectives + lex.place_adjectives}
    assert set(ENGLISH) <= adjectives
    for kind in ("agent", "place"):  # both genders in each role, balanced
        genders = [n.gender for n in lex.nouns(kind)]
        assert genders.count("m") == genders.count("f")


def test_pronoun_and_adjective_agree_with_the_antecedent_in_every_pair(data):
    """Guards il/elle or the adjective's form taken from the wrong noun (the other candidate, the
    agent always) or a gender flipped in generation. Planted: pronoun from the other noun's
    gender → fails."""
    lex = DEFAULT_LEXICON
    for _, (en, fr, _, _, note) in _splits(data):
        src, tgt = en.split(), fr.split()
        assert src[note.it_index] == "it"
        antecedent = src[note.antecedent_index]
        assert lex.gender_of(antecedent) == note.gender
        assert lex.gender_of(src[note.other_index]) != note.gender  # il/elle decides
        assert tgt[note.pronoun_index] == PRONOUNS[note.gender]
        m, f = note.adjective_forms
        assert tgt[note.pronoun_index + 3] == (m if note.gender == "m" else f)
        assert tgt[note.pronoun_index + 2] == "trop"
        assert src[note.adjective_index] == note.adjective


def test_determiners_and_modifiers_agree_with_their_noun(data):
    """Guards "la chien" / "le vache" / "vieux vache": the article (or elided l') and any
    modifier before each French noun match the noun's gender."""
    lex = DEFAULT_LEXICON
    nouns = {n.fr[0]: n for g in (lex.agents, lex.places, lex.objects) for n in g}
    feminine = {"la", "vieille", "grande", "petite", "nouvelle"}
    masculine = {"le", "du", "vieux", "vieil", "grand", "petit", "nouveau", "nouvel"}
    checked = 0
    for _, (_, fr, _, _, _) in _splits(data)[:2000]:
        words = fr.split()
        for j, w in enumerate(words):
            noun = nouns.get(w[2:] if w.startswith("l'") else w)
            if noun is None or j == 0:
                continue
            before = words[j - 1]
            if w.startswith("l'"):
                assert noun.fr[0][0] in "aâeéio"
            elif before in feminine | masculine:
                assert (before in feminine) == (noun.gender == "f"), fr
                checked += 1
    assert checked > 1000


def test_heldout_pairs_never_occur_in_training_and_val_test_are_disjoint(data):
    """Guards held-out (noun, adjective) pairs leaking into training, or validation (where the
    best head is chosen) sharing pairs or sentences with the test split."""
    val, test = (set(map(tuple, data["heldout"][s])) for s in ("val", "test"))
    assert val and test and not (val & test)
    for split, (en, _, _, _, note) in _splits(data):
        pair = (en.split()[note.antecedent_index], note.adjective)
        if split == "train":
            assert pair not in val | test
        else:
            assert pair in (val if split == "val" else test)
    sentences = {s: {p[0] for p in data[s]} for s in ("train", "val", "test")}
    assert not (sentences["train"] & sentences["test"]) and not (
        sentences["val"] & sentences["test"]
    )


def test_alignments_are_consistent_with_the_tokens(data):
    """Guards links that point past the sentence, target words with no sure link, sure links
    missing from possible, and the it↔il/elle and antecedent↔French noun links."""
    lex = DEFAULT_LEXICON
    for _, (en, fr, sure, possible, note) in _splits(data):
        src, tgt = en.split(), fr.split()
        assert sure <= possible
        assert all(0 <= s < len(src) and 0 <= t < len(tgt) for s, t in possible)
        assert {t for _, t in sure} == set(range(len(tgt)))
        assert (note.it_index, note.pronoun_index) in sure
        noun = next(
            n for g in (lex.agents, lex.places) for n in g if n.head == src[note.antecedent_index]
        )
        linked = {tgt[t] for s, t in sure if s == note.antecedent_index}
        assert any(w.endswith(noun.fr[0]) for w in linked), (en, fr, linked)
        assert tgt[note.antecedent_target].endswith(noun.fr[0])
        other = next(
            n for g in (lex.agents, lex.places) for n in g if n.head == src[note.other_index]
        )
        assert tgt[note.other_target].endswith(other.fr[0])


def test_rules_that_do_not_resolve_it_stay_near_chance(data):
    """Guards a corpus where the pronoun follows from the nearest noun or the adjective alone
    (then a high pronoun accuracy would not show coreference). Planted: the other candidate
    drawn with any gender → the nearest-noun rule rises above 0.6."""
    rules = baselines([p[4] for p in data["train"]], [p[4] for p in data["test"]])
    assert 0.38 <= rules["baseline_nearest_noun"] <= 0.62, rules
    assert 0.38 <= rules["baseline_adjective_only"] <= 0.62, rules
    share_il = sum(p[4].gender == "m" for p in data["test"]) / len(data["test"])
    assert 0.4 <= share_il <= 0.6


def test_generation_is_fixed_by_the_seed_and_every_template_occurs():
    a = generate(DEFAULT_LEXICON, 50, 20, 20, seed=0)
    b = generate(DEFAULT_LEXICON, 50, 20, 20, seed=0)
    assert [p[:2] for p in a["train"]] == [p[:2] for p in b["train"]]
    templates = {p[4].template for p in generate(DEFAULT_LEXICON, 400, 1, 1)["train"]}
    assert templates == {"plain", "fronted", "passive", "distractor"}


def test_noun_without_french_gender_is_one_clear_error(tmp_path):
    """Bad input: a lexicon noun with no (or an unknown) French gender."""
    with pytest.raises(DataError, match="'zebra' has no French gender"):
        Noun(("zebra",), ("zèbre",), None)
    path = tmp_path / "lex.json"
    path.write_text(json.dumps({"agents": [{"en": "zebra", "fr": "zèbre"}]}), encoding="utf-8")
    with pytest.raises(DataError, match="no French gender"):
        load_lexicon(str(path))


def test_a_json_lexicon_replaces_the_nouns_it_names(tmp_path):
    entries = [
        {"en": "zebra", "fr": "zèbre", "gender": "m"},
        {"en": "cow", "fr": "vache", "gender": "f"},
    ]
    path = tmp_path / "lex.json"
    path.write_text(json.dumps({"agents": entries}), encoding="utf-8")
    cfg = DataConfig(path=str(path), n_train=30, n_val=10, n_test=10)
    corpus = datasets.get("coref")(cfg, 0)
    assert any("zebra" in s for s, _ in corpus.train + corpus.val + corpus.test)
    assert corpus.val_alignments is not None and len(corpus.extra["coref"]["test"]) == 10
