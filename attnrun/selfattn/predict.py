"""The selfattn predictor: resolve "it" in the user's sentence with a trained run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from attnrun.errors import DataError
from attnrun.io import write_json
from attnrun.predictors import Prediction
from attnrun.selfattn import checkpoint
from attnrun.selfattn.data import PRONOUN, tokenize
from attnrun.selfattn.figures import sentence_figures
from attnrun.selfattn.train import read_sentence


def check_sentence(tokens: list[str]) -> None:
    """Exactly one "it" (a DataError saying what is wrong otherwise)."""
    if not tokens:
        raise DataError("the sentence is empty")
    n = tokens.count(PRONOUN)
    if n == 0:
        raise DataError('the sentence has no "it" to resolve')
    if n > 1:
        raise DataError(f'the sentence has {n} "it"s; give a sentence with exactly one')


def predict_selfattn(
    run_dir: Path, text: str, out_dir: Path, metrics: dict[str, Any]
) -> Prediction:
    """Point from "it" to its antecedent; write the heatmap grid, the viewer and
    ``prediction.json`` into ``out_dir``."""
    tokens = tokenize(text)
    check_sentence(tokens)
    model, vocab, cfg = checkpoint.load(run_dir, metrics.get("model_sha256"))
    unknown = vocab.unknown(tokens)
    if unknown:
        raise DataError(
            f"unknown word(s) {', '.join(repr(w) for w in unknown)}; the model knows the "
            f"{len(vocab) - 1} words of its training sentences ({run_dir / checkpoint.VOCAB_FILE})"
        )
    if len(tokens) > model.positional.max_len:
        raise DataError(
            f"the sentence has {len(tokens)} tokens; at most {model.positional.max_len}"
        )
    reading = read_sentence(model, vocab, tokens, torch.device("cpu"))
    best = tuple(metrics.get("it_attention_best") or (len(model.layer_names) - 1, 0))
    files = sentence_figures(out_dir, "attention", reading, model.layer_names, best)
    top = torch.topk(reading.probs, k=min(3, len(tokens)))
    candidates = [
        {"position": int(i), "token": tokens[int(i)], "probability": round(float(p), 4)}
        for p, i in zip(top.values, top.indices)
    ]
    answer = candidates[0]
    write_json(out_dir / "prediction.json", {
        "sentence": text, "tokens": tokens, "it_index": reading.it_index,
        "antecedent": answer["token"], "antecedent_index": answer["position"],
        "candidates": candidates,
    })  # fmt: skip
    files.append(out_dir / "prediction.json")
    others = ", ".join(f"{c['token']} {c['probability']:.2f}" for c in candidates[1:])
    return Prediction(
        [f'"it" refers to "{answer["token"]}" (p={answer["probability"]:.2f}; then {others})'],
        files,
    )
