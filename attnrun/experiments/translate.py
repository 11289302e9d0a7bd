"""``translate``: an encoder-decoder with attention, trained and evaluated end to end.

Bahdanau et al. 2015 (additive attention on the previous decoder state) and Luong et al. 2015
(attention on the current state; global, local-m, local-p windows; input feeding). The steps are
those of :func:`attnrun.translate.pipeline.run_translate`: data → tokenizers → model → train →
evaluate → write. The config is :class:`attnrun.translate.config.TranslateConfig`.
"""

from __future__ import annotations

from attnrun.experiments.base import experiment
from attnrun.translate.config import TranslateConfig, check_inputs
from attnrun.translate.pipeline import run_translate
from attnrun.translate.predict import translate_predictor

__all__ = ["TranslateConfig", "run"]

run = experiment(
    "translate",
    TranslateConfig,
    key_metrics=(
        "bleu",
        "bleu_lowercase",
        "chrf",
        "aer",
        "pronoun_accuracy",
        "coref_head_mass",
        "train_tokens_per_s",
    ),  # fmt: skip
    help="RNN encoder-decoder with attention (Bahdanau 2015 / Luong 2015) on a parallel corpus.",
    predictor=translate_predictor,
    check=check_inputs,
    objectives={"bleu": "maximize", "chrf": "maximize", "bleu_lowercase": "maximize"},
)(run_translate)
