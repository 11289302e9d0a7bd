"""Saving and loading a trained selfattn model: ``model.pt`` (a state_dict, ``torch.save``) and
``vocab.json`` beside the run's ``config.yaml``.

``metrics.json`` records the SHA-256 of ``model.pt``; loading checks it, so a truncated or edited
file is refused with a clear message rather than giving wrong answers. Loading goes through
:func:`attnrun.runs.checkpoint.safe_load` (``weights_only=True``): a file carrying pickled code is
refused as well.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from omegaconf import OmegaConf

from attnrun.errors import DataError
from attnrun.io import save_torch, write_json
from attnrun.runs.checkpoint import safe_load
from attnrun.selfattn.data import Vocab
from attnrun.selfattn.model import PronounResolver

MODEL_FILE, VOCAB_FILE = "model.pt", "vocab.json"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_model(model_cfg, vocab_size: int, max_len: int) -> PronounResolver:
    """The model a config describes (``model_cfg``: the ``model`` section, any mapping)."""
    return PronounResolver(
        vocab_size,
        num_hiddens=model_cfg.num_hiddens,
        num_heads=model_cfg.num_heads,
        num_layers=model_cfg.num_layers,
        ffn_hiddens=model_cfg.ffn_hiddens,
        positional=model_cfg.positional,
        score=model_cfg.score,
        dropout=model_cfg.dropout,
        max_len=max_len,
        score_options=dict(getattr(model_cfg, "score_options", None) or {}),
    )


def save(out_dir: Path, model: PronounResolver, vocab: Vocab, max_len: int) -> str:
    """Write ``model.pt`` and ``vocab.json``; returns the SHA-256 of ``model.pt``."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_torch(out_dir / MODEL_FILE, state)
    write_json(out_dir / VOCAB_FILE, {**vocab.to_json(), "max_len": max_len})
    return sha256(out_dir / MODEL_FILE)


def load(run_dir: Path, expected_sha256: str | None) -> tuple[PronounResolver, Vocab, object]:
    """The trained model, its vocabulary and the run's config from a completed run folder.

    Raises:
        DataError: a file is missing, unreadable, truncated, tampered with, or does not fit the
            run's config.
    """
    model_path, vocab_path = run_dir / MODEL_FILE, run_dir / VOCAB_FILE
    for path in (run_dir / "config.yaml", model_path, vocab_path):
        if not path.is_file():
            raise DataError(f"{path}: missing; the run folder is incomplete")
    try:
        cfg = OmegaConf.load(run_dir / "config.yaml")
    except Exception as e:  # OmegaConf/YAML raise several types
        raise DataError(f"{run_dir / 'config.yaml'}: unreadable ({type(e).__name__})") from None
    try:
        vocab_obj = json.loads(vocab_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DataError(f"{vocab_path}: not valid JSON ({e})") from None
    try:
        vocab = Vocab.from_json(vocab_obj)
    except DataError as e:
        raise DataError(f"{vocab_path}: {e}") from None
    if expected_sha256 is not None and sha256(model_path) != expected_sha256:
        raise DataError(
            f"{model_path}: does not match the checksum recorded at training (truncated or "
            "modified); retrain or restore the file"
        )
    state = safe_load(model_path)
    if not isinstance(state, dict):
        raise DataError(f"{model_path}: expected a state_dict, found {type(state).__name__}")
    max_len = int(vocab_obj.get("max_len", 64))
    try:
        model = build_model(cfg.model, len(vocab), max_len)
        model.load_state_dict(state)
    except (RuntimeError, KeyError, AttributeError) as e:
        first = str(e).strip().splitlines()[0]
        raise DataError(f"{model_path}: does not fit the run's config ({first[:160]})") from None
    model.eval()
    return model, vocab, cfg
