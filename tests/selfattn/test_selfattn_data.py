"""The templated "it" sentences: labels are always the right noun, and the splits are disjoint."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attnrun.errors import ConfigError, DataError
from attnrun.selfattn.data import (
    AGENT,
    DEFAULT_LEXICON,
    PAD,
    PLACE,
    PRONOUN,
    Vocab,
    encode_batch,
    make_splits,
    templates,
    tokenize,
)

LEX = DEFAULT_LEXICON
AGENT_HEADS = {n[-1] for n in LEX.agents}
PLACE_HEADS = {n[-1] for n in LEX.places}


def _splits(seed: int, n_train: int = 150, n_test: int = 80, **kw):
    return make_splits(n_train, n_test, torch.Generator().manual_seed(seed), **kw)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_label_is_always_the_noun_the_adjective_describes(seed):
    splits = _splits(seed)
    for ex in splits.train + splits.test:
        assert ex.tokens.count(PRONOUN) == 1 and ex.tokens[ex.it_index] == PRONOUN
        assert ex.adjective in ex.tokens
        antecedent, other = ex.tokens[ex.antecedent_index], ex.tokens[ex.other_index]
        if ex.adjective in LEX.agent_adjectives:
            assert ex.kind == AGENT and antecedent in AGENT_HEADS and other in PLACE_HEADS
        else:
            assert ex.adjective in LEX.place_adjectives
            assert ex.kind == PLACE and antecedent in PLACE_HEADS and other in AGENT_HEADS
        # the head noun ends its phrase: the next token is never another noun word
        nxt = ex.tokens[ex.antecedent_index + 1]
        assert nxt not in AGENT_HEADS | PLACE_HEADS


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), fraction=st.floats(0.05, 0.9))
def test_splits_are_disjoint_and_hold_out_unseen_pairs(seed, fraction):
    splits = _splits(seed, heldout_fraction=fraction)
    held = splits.heldout_pairs
    for ex in splits.train:
        nouns = {ex.tokens[ex.antecedent_index], ex.tokens[ex.other_index]}
        assert all((noun, ex.adjective) not in held for noun in nouns)
    for ex in splits.test:
        assert (ex.antecedent, ex.adjective) in held
    assert not {ex.tokens for ex in splits.train} & {ex.tokens for ex in splits.test}


def test_every_noun_keeps_training_adjectives_and_loses_some():
    held = _splits(0).heldout_pairs
    for kind, nouns in ((AGENT, LEX.agents), (PLACE, LEX.places)):
        adjectives = set(LEX.adjectives(kind))
        for noun in nouns:
            out = {a for n, a in held if n == noun[-1]}
            assert out and out < adjectives


def test_same_seed_same_sentences_and_other_seed_differs():
    a, b, c = _splits(3), _splits(3), _splits(4)
    assert [e.tokens for e in a.train] == [e.tokens for e in b.train]
    assert [e.tokens for e in a.train] != [e.tokens for e in c.train]


def test_templates_vary_positions_and_put_it_before_its_antecedent_sometimes():
    splits = _splits(1, n_train=400)
    assert {ex.template for ex in splits.train} == set(templates.names())
    assert len({ex.it_index for ex in splits.train}) > 3
    assert any(ex.it_index < ex.antecedent_index for ex in splits.train)  # "fronted"
    assert any(len(LEX.agents[-1]) == 2 and LEX.agents[-1][-1] == ex.antecedent
               for ex in splits.train)  # fmt: skip


def test_multi_word_nouns_point_at_the_head_noun():
    splits = _splits(2, n_train=600)
    multi = [ex for ex in splits.train if ex.antecedent == "pig"]
    assert multi
    for ex in multi:
        assert ex.tokens[ex.antecedent_index - 1] == "guinea"


def test_unknown_template_is_a_config_error_listing_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown template 'nope'; valid: plain"):
        _splits(0, template_names=["nope"])


def test_tokenize_keeps_contractions_and_splits_punctuation():
    assert tokenize("The dog didn't cross, it was too busy.") == [
        "the", "dog", "didn't", "cross", ",", "it", "was", "too", "busy", ".",
    ]  # fmt: skip


def test_vocab_round_trips_and_names_unknown_words():
    splits = _splits(0)
    vocab = Vocab.for_lexicon(LEX, splits.train)
    assert vocab.itos[0] == PAD
    again = Vocab.from_json(vocab.to_json())
    assert again.itos == vocab.itos
    with pytest.raises(DataError, match="'zebra', 'sofa'"):
        vocab.encode(["the", "zebra", "sofa", "zebra"])
    with pytest.raises(DataError):
        Vocab.from_json({"tokens": ["b", "a"]})


def test_encode_batch_pads_and_keeps_targets():
    splits = _splits(0, n_train=10)
    vocab = Vocab.for_lexicon(LEX, splits.train)
    b = encode_batch(splits.train, vocab)
    for i, ex in enumerate(splits.train):
        assert b.valid_lens[i] == len(ex.tokens)
        assert (b.tokens[i, len(ex.tokens) :] == 0).all()
        assert vocab.itos[b.tokens[i, b.target[i]]] == ex.antecedent
