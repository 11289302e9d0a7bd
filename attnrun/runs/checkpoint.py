"""End-of-epoch checkpoints that make a run resumable, loaded with ``weights_only=True``.

A checkpoint holds the model and optimizer state dicts, the epoch just finished, the metric
history, and every RNG state the run draws from (torch CPU and CUDA, the run's data generator,
Python's ``random``, NumPy), so ``attnrun resume`` continues exactly where an uninterrupted run
would be: same shuffles, same dropout masks, same numbers.

Only tensors, numbers, strings, lists and dicts are stored, so loading never unpickles code:
``torch.load(..., weights_only=True)`` refuses a file carrying pickled objects, and a truncated or
corrupted file is reported as a :class:`~attnrun.errors.DataError` naming the file.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attnrun.errors import DataError
from attnrun.io import save_torch

CHECKPOINT = "checkpoint.pt"


def safe_load(path: str | Path, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with one-line errors for bad files."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # protocol notices on foreign pickles: we refuse them
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # unpickling errors, truncated zip archives, ...
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            reason = "it carries pickled code or objects, refused without running them"
        else:
            reason = f"truncated or not a torch checkpoint ({text[:120]})"
        raise DataError(f"{path}: cannot load: {reason}") from None


def _rng_states(generator: torch.Generator | None) -> dict[str, Any]:
    py_version, py_state, py_gauss = random.getstate()
    np_state = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": [py_version, list(py_state), py_gauss],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:
        states["data"] = generator.get_state()
    return states


def _set_rng_states(states: dict[str, Any], generator: torch.Generator | None) -> None:
    torch.set_rng_state(states["torch"])
    version, state, gauss = states["python"]
    random.setstate((version, tuple(state), gauss))
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    if generator is not None and "data" in states:
        generator.set_state(states["data"])


class Checkpointer:
    """Saves and restores ``out_dir/checkpoint.pt`` for one run.

    ``resume`` says whether :meth:`restore` should load an existing checkpoint (``attnrun
    resume``) or start fresh (a new run never reads a stale file).
    """

    def __init__(
        self,
        out_dir: Path,
        generator: torch.Generator | None,
        resume: bool = False,
        on_save: Callable[[int, dict[str, list]], None] | None = None,
    ):
        self.path = Path(out_dir) / CHECKPOINT
        self.generator = generator
        self.resume = resume
        self.on_save = on_save
        self.restored_epoch = 0

    def save(
        self,
        epoch: int,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        history: dict[str, list] | None = None,
        **extra: Any,
    ) -> None:
        """Write the state after ``epoch`` (1-based) atomically; the old file stays until then."""
        state = {
            "epoch": int(epoch),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "history": history or {},
            "rng": _rng_states(self.generator),
            "extra": extra,
        }
        save_torch(self.path, state)
        self.restored_epoch = int(epoch)
        if self.on_save is not None:
            self.on_save(int(epoch), history or {})

    def restore(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
    ) -> tuple[int, dict[str, list], dict[str, Any]]:
        """Load the checkpoint into ``model``/``optimizer`` when resuming.

        Returns ``(epochs_done, history, extra)``; ``(0, {}, {})`` for a fresh run.
        """
        if not self.resume or not self.path.exists():
            return 0, {}, {}
        state = safe_load(self.path)
        try:
            model.load_state_dict(state["model"])
            if optimizer is not None and state.get("optimizer") is not None:
                optimizer.load_state_dict(state["optimizer"])
            _set_rng_states(state["rng"], self.generator)
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            raise DataError(f"{self.path}: does not fit this run's model: {e}") from None
        self.restored_epoch = int(state["epoch"])
        return self.restored_epoch, dict(state.get("history") or {}), dict(state.get("extra") or {})
