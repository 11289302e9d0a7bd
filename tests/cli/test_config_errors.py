"""Override mistakes through the CLI: one line in :mod:`attnrun.validation`'s words, exit 2, no
run folder, never Hydra's raw text or a schema class name."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from attnrun.cli import app
from attnrun.experiments import experiments
from attnrun.validation import typed_config

runner = CliRunner()

#: words that must never reach a user: Hydra's phrasing and the schemas' class names
RAW = ("Could not override", "Error merging", "not in '", "Config'", "Key '", ".;")


def refused(tmp_path: Path, *args: str) -> str:
    """Run ``attnrun <args>`` and return its one error line; it must leave no folder at all."""
    r = runner.invoke(app, [args[0], "--root", str(tmp_path), *args[1:]])
    assert r.exit_code == 2, r.output
    err = r.stderr.strip()
    assert err.startswith("attnrun: error: ") and "\n" not in err, err
    assert not any(word in err for word in RAW), err
    assert list(tmp_path.iterdir()) == [], "a refused override left a folder"
    return err.removeprefix("attnrun: error: ")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["regress", "kernal=boxcar"],
            "kernal=boxcar is not valid: there is no key kernal (did you mean kernel?); "
            "allowed: bandwidth, data.*, device, hparams_search, kernel, logger, plot.*, pooling, "
            "seed, train.*",
        ),
        (
            ["regress", "train.epoch=3"],
            "train.epoch=3 is not valid: train has no key epoch (did you mean epochs?); "
            "allowed: average, epochs, lr, optimizer, threads",
        ),
        (
            ["translate", "model.num_hidens=3"],
            "model.num_hidens=3 is not valid: model has no key num_hidens (did you mean "
            "num_hiddens?); allowed: arch, attention_dropout, attn_hiddens,",
        ),
        (
            ["translate", "decode.bem=3"],
            "decode.bem=3 is not valid: decode has no key bem (did you mean beam?); "
            "allowed: batch_size, beam, length_penalty, max_len, n_best, replace_unk",
        ),
        (
            ["translate", "tokenizer.kind=bpe", "decode.replace_unk=true"],
            "decode.replace_unk=True is not valid; allowed: false with tokenizer.kind=bpe (only "
            "a word vocabulary emits <unk>)",
        ),
        (["translate", "tokenizer.kin=bpe"], "tokenizer has no key kin (did you mean kind?)"),
        (["translate", "attention.windw=3"], "attention has no key windw (did you mean window?)"),
        (["translate", "data.rot=x"], "data has no key rot (did you mean root?)"),
        (["selfattn", "model.num_layer=2"], "model has no key num_layer (did you mean num_layer"),
        (["selfattn", "data.n_tran=9"], "data has no key n_tran (did you mean n_train?)"),
        (["selfattn", "--task", "translate", "model.arc=rnn"], "model has no key arc"),
        # a group one experiment has and another lacks
        (["regress", "model.num_hiddens=3"], "model.num_hiddens=3 is not valid: there is no key"),
        # `+key=value` composes in Hydra; the schema still refuses it
        (["translate", "+foo=1"], "foo=1 is not valid: there is no key foo; allowed: attention.*"),
        (["regress", "train.epochs=abc"], "train.epochs=abc is not valid; allowed: an integer"),
        (["regress", "train.epochs=null"], "train.epochs=null is not valid; allowed: an integer"),
        (["translate", "train.lr=fast"], "train.lr=fast is not valid; allowed: a number"),
        (["translate", "data.n_train=many"], "allowed: an integer or null"),
        (["translate", "model.bidirectional=maybe"], "allowed: true or false"),
        (["selfattn", "train.epochs=1.5"], "train.epochs=1.5 is not valid; allowed: an integer"),
        (["translate", "model=big"], "model=big is not valid; model is a group: set its keys"),
        (["translate", "attention=locl"], "attention=locl is not valid (did you mean local_p?)"),
        (["translate", "recipe=corf"], "recipe=corf is not valid (did you mean coref?)"),
        # a config group of the experiment's defaults list is a valid top-level name too
        (["translate", "recip=coref"], "there is no key recip (did you mean recipe?)"),
    ],
)
def test_override_mistakes_read_like_validation_errors(tmp_path, args, expected):
    assert expected in refused(tmp_path, *args)


def test_a_sweep_is_checked_before_any_job(tmp_path):
    """The mistake is in the sweep's second value: no job and no sweep folder happen."""
    err = refused(tmp_path, "regress", "-m", "train.epochs=2,abc")
    assert err == "train.epochs=abc is not valid; allowed: an integer"


@pytest.mark.parametrize("name", ["regress", "translate", "selfattn"])
def test_python_api_says_the_same(name):
    """``run(cfg)`` with a dict meets the same words as the CLI."""
    exp = experiments.get(name)
    with pytest.raises(ValueError, match=r"^data\.nope=1 is not valid: data has no key nope"):
        typed_config(exp.config_class, {"data": {"nope": 1}})
    with pytest.raises(ValueError, match=r"^seed=abc is not valid; allowed: an integer$"):
        typed_config(exp.config_class, {"seed": "abc"})
