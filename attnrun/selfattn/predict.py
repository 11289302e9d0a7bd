"""The selfattn predictor: resolve "it" in the user's sentence with a trained run.

A trained run folder holds ``config.yaml``, ``model.pt`` (weights only) and ``vocab.json`` (the
vocabulary and ``max_len``), all named by :mod:`attnrun.runs.files`. :func:`load_trained` reads
them back through that module: ``model.pt`` is checked against the ``model_sha256`` recorded in
``metrics.json`` and loaded with ``weights_only=True``, so a truncated, edited or pickled file is
refused with one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from attnrun.core.positional import LearnedPositionalEmbedding, SinusoidalPositionalEncoding
from attnrun.errors import AttnrunError, DataError
from attnrun.io import write_json
from attnrun.runs import files
from attnrun.runs.prediction import Prediction
from attnrun.selfattn.data import PRONOUN, Vocab, tokenize
from attnrun.selfattn.figures import sentence_figures
from attnrun.selfattn.model import PronounResolver, build_model
from attnrun.selfattn.train import read_sentence

#: Who gives the answer: the pointer trained on the antecedent's position, not a learned head.
ANSWERED_BY = "supervised pointer (trained with cross-entropy on the antecedent's position)"


def write_vocab(run_dir: Path, vocab: Vocab, max_len: int) -> Path:
    """``vocab.json``: the vocabulary and the longest sentence the model's positions cover
    (written by the experiment beside ``model.pt``, read back by :func:`read_vocab`)."""
    path = Path(run_dir) / files.VOCAB
    write_json(path, {**vocab.to_json(), "max_len": max_len})
    return path


def read_vocab(run_dir: Path) -> tuple[Vocab, int]:
    """``(vocabulary, max_len)`` from ``vocab.json``; a DataError naming the file otherwise."""
    path = Path(run_dir) / files.VOCAB
    obj = files.read_json(path)
    try:
        return Vocab.from_json(obj), int(obj.get("max_len", 64))
    except (DataError, TypeError, ValueError, AttributeError) as e:
        raise DataError(f"{path}: {e}") from None


def load_trained(run_dir: Path, expected_sha256: str | None) -> tuple[PronounResolver, Vocab]:
    """The trained model (in eval mode) and its vocabulary from a completed run folder.

    Raises:
        DataError: a file is missing, unreadable, truncated, tampered with, or does not fit the
            run's config.
    """
    cfg = files.read_config(run_dir)
    vocab, max_len = read_vocab(run_dir)
    try:
        model = build_model(cfg.model, len(vocab), max_len)
    except (AttnrunError, AttributeError, KeyError, TypeError, ValueError) as e:  # hand-edited
        where = Path(run_dir) / files.CONFIG
        raise DataError(f"{where}: does not describe a selfattn model ({e})") from None
    files.load_weights(model, run_dir, expected_sha256)
    return model.eval(), vocab


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
    run_dir: Path, text: str, out_dir: Path, metrics: dict[str, Any], *, strict: bool = True
) -> Prediction:
    """Point from "it" to its antecedent in each line of ``text``; write the heatmap grid, the
    viewer and ``prediction.json`` into ``out_dir`` (``attention_<i>…``, ``prediction_<i>.json``
    for the ``i``-th of several sentences). Every sentence is checked before any is run.

    The answer is the supervised pointer's (trained on the antecedent's position): each output
    line starts ``supervised pointer:`` and ``prediction.json`` says so in ``answered_by``.
    Unknown words are always an error (the vocabulary has no ``<unk>``), so ``strict`` changes
    nothing."""
    sentences = [line.strip() for line in text.splitlines() if line.strip()] or [text]
    token_lists = [tokenize(s) for s in sentences]
    wheres = [f"sentence {i + 1}: " if len(sentences) > 1 else "" for i in range(len(sentences))]
    for where, tokens in zip(wheres, token_lists):
        try:
            check_sentence(tokens)
        except DataError as e:
            raise DataError(f"{where}{e}") from None
    model, vocab = load_trained(run_dir, metrics.get("model_sha256"))
    positional = model.positional  # a member of positional_encodings (as in attnrun.serve)
    assert isinstance(positional, (SinusoidalPositionalEncoding, LearnedPositionalEmbedding))
    for where, tokens in zip(wheres, token_lists):
        unknown = vocab.unknown(tokens)
        if unknown:
            raise DataError(
                f"{where}unknown word(s) {', '.join(repr(w) for w in unknown)}; the model knows "
                f"the {len(vocab) - 1} words of its training sentences "
                f"({run_dir / files.VOCAB})"
            )
        if len(tokens) > positional.max_len:
            raise DataError(
                f"{where}the sentence has {len(tokens)} tokens; at most {positional.max_len}"
            )
    lines: list[str] = []
    paths: list[Path] = []
    for i, (text_i, tokens) in enumerate(zip(sentences, token_lists)):
        suffix = f"_{i}" if len(sentences) > 1 else ""
        line, written = _predict_one(model, vocab, text_i, tokens, out_dir, suffix, metrics)
        lines.append(line)
        paths.extend(written)
    return Prediction(lines, paths)


def _predict_one(model, vocab, text, tokens, out_dir: Path, suffix: str, metrics):
    reading = read_sentence(model, vocab, tokens, torch.device("cpu"))
    # a run made before the metrics were named supervised_* wrote it_attention_best
    best = metrics.get("supervised_it_attention_best") or metrics.get("it_attention_best")
    best = tuple(best or (len(model.layer_names) - 1, 0))
    written = sentence_figures(out_dir, f"attention{suffix}", reading, model.layer_names, best)
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
        "candidates": candidates, "answered_by": ANSWERED_BY,
    })  # fmt: skip
    written.append(path)
    others = ", ".join(f"{c['token']} {c['probability']:.2f}" for c in candidates[1:])
    prefix = f"{text}\t" if suffix else ""
    line = (
        f'{prefix}supervised pointer: "it" refers to "{answer["token"]}" '
        f"(p={answer['probability']:.2f}; then {others})"
    )
    return line, written
