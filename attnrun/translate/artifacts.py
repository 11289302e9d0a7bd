"""Run files of a translation run: weights-only checkpoints, tokenizers, and reloading a run.

A run folder holds ``config.yaml`` (written by the run frame), ``model.pt`` (a ``state_dict``
only, loadable with ``torch.load(weights_only=True)``) and ``tokenizer.src.json`` /
``tokenizer.tgt.json``.
:func:`load_run` rebuilds the model from those three; a missing, truncated or tampered file raises
:class:`~attnrun.errors.DataError` with one line naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from attnrun.errors import DataError
from attnrun.io import save_torch
from attnrun.translate.tokenize import Tokenizer, load_tokenizer

CHECKPOINT = "model.pt"


def save_weights(model: torch.nn.Module, path: Path) -> None:
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    save_torch(path, state)


def load_weights(model: torch.nn.Module, path: Path) -> None:
    """Load a weights-only checkpoint into ``model``; any damage is a one-line DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: missing checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, pickled code refused by weights_only, garbage
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise DataError(
            f"{path}: damaged or not a weights-only checkpoint ({type(e).__name__}: {first[:200]})"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(f"{path}: not a state_dict of tensors")
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise DataError(f"{path}: does not fit the run's model config ({first[:200]})") from None


@dataclass
class LoadedRun:
    cfg: object  # TranslateConfig
    model: torch.nn.Module
    src_tok: Tokenizer
    tgt_tok: Tokenizer


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> LoadedRun:
    """The trained model and tokenizers of a translate run folder."""
    from omegaconf import OmegaConf

    from attnrun.experiments import experiments
    from attnrun.translate.models import build_model

    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise DataError(f"{run_dir}: not a run folder (no config.yaml)")
    try:
        raw = OmegaConf.load(cfg_path)
    except Exception as e:
        raise DataError(f"{cfg_path}: unreadable ({type(e).__name__}: {e})") from None
    cfg = experiments.get("translate").make_config(raw)
    src_tok, tgt_tok = load_tokenizer(run_dir, "src"), load_tokenizer(run_dir, "tgt")
    model = build_model(cfg, src_tok.size, tgt_tok.size)
    load_weights(model, run_dir / CHECKPOINT)
    model.to(device).eval()
    return LoadedRun(cfg, model, src_tok, tgt_tok)
