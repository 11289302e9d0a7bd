"""The selfattn predictor: resolve "it" in the user's sentence with a trained run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from attnrun.errors import DataError
from attnrun.io import write_json
from attnrun.runs.prediction import Prediction
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
    """Point from "it" to its antecedent in each line of ``text``; write the heatmap grid, the
    viewer and ``prediction.json`` into ``out_dir`` (``attention_<i>…``, ``prediction_<i>.json``
    for the ``i``-th of several sentences). Every sentence is checked before any is run."""
    sentences = [line.strip() for line in text.splitlines() if line.strip()] or [text]
    token_lists = [tokenize(s) for s in sentences]
    wheres = [f"sentence {i + 1}: " if len(sentences) > 1 else "" for i in range(len(sentences))]
    for where, tokens in zip(wheres, token_lists):
        try:
            check_sentence(tokens)
        except DataError as e:
            raise DataError(f"{where}{e}") from None
    model, vocab, cfg = checkpoint.load(run_dir, metrics.get("model_sha256"))
    for where, tokens in zip(wheres, token_lists):
        unknown = vocab.unknown(tokens)
        if unknown:
            raise DataError(
                f"{where}unknown word(s) {', '.join(repr(w) for w in unknown)}; the model knows "
                f"the {len(vocab) - 1} words of its training sentences "
                f"({run_dir / checkpoint.VOCAB_FILE})"
            )
        if len(tokens) > model.positional.max_len:
            raise DataError(
                f"{where}the sentence has {len(tokens)} tokens; at most {model.positional.max_len}"
            )
    lines: list[str] = []
    files: list[Path] = []
    for i, (text_i, tokens) in enumerate(zip(sentences, token_lists)):
        suffix = f"_{i}" if len(sentences) > 1 else ""
        line, written = _predict_one(model, vocab, text_i, tokens, out_dir, suffix, metrics)
        lines.append(line)
        files.extend(written)
    return Prediction(lines, files)


def _predict_one(model, vocab, text, tokens, out_dir: Path, suffix: str, metrics):
    reading = read_sentence(model, vocab, tokens, torch.device("cpu"))
    best = tuple(metrics.get("it_attention_best") or (len(model.layer_names) - 1, 0))
    files = sentence_figures(out_dir, f"attention{suffix}", reading, model.layer_names, best)
    top = torch.topk(reading.probs, k=min(3, len(tokens)))
    candidates = [
        {"position": int(i), "token": tokens[int(i)], "probability": round(float(p), 4)}
        for p, i in zip(top.values, top.indices)
    ]
    answer = candidates[0]
    path = out_dir / f"prediction{suffix}.json"
    write_json(path, {
        "sentence": text, "tokens": tokens, "it_index": reading.it_index,
        "antecedent": answer["token"], "antecedent_index": answer["position"],
        "candidates": candidates,
    })  # fmt: skip
    files.append(path)
    others = ", ".join(f"{c['token']} {c['probability']:.2f}" for c in candidates[1:])
    prefix = f"{text}\t" if suffix else ""
    line = (
        f'{prefix}"it" refers to "{answer["token"]}" (p={answer["probability"]:.2f}; then {others})'
    )
    return line, files
