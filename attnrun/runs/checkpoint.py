"""The resumable training checkpoint, ``checkpoint.pt``: the one thing attnrun calls a checkpoint.

A checkpoint holds the model and optimizer state dicts, where training stands (``epoch``: epochs
completed; ``step``: batches done of the next epoch, 0 at an epoch boundary), the metric history,
every RNG state the run draws from (torch CPU and CUDA, the run's data generator, Python's
``random``, NumPy) and whatever else the experiment needs to go on exactly (``extra``: scheduler
and early-stopping counters, best weights, the data order's RNG at the start of the epoch, training
time so far). So ``attnrun resume`` continues where an uninterrupted run would be: same shuffles,
same dropout masks, same numbers.

It also records its format and the SHA-256 of the run's resolved config: a checkpoint written for
another config (an edited ``config.yaml``), by another format, or truncated or tampered with is
refused with one line before anything is written into the run. Only tensors, numbers, strings,
lists and dicts are stored, so loading (:func:`attnrun.runs.files.safe_load`,
``weights_only=True``) never unpickles code.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attnrun.errors import DataError
from attnrun.io import save_torch
from attnrun.runs.files import CHECKPOINT, safe_load

FORMAT = "attnrun.checkpoint/1"

__all__ = ["CHECKPOINT", "FORMAT", "Checkpointer", "config_digest", "safe_load"]


def config_digest(config_yaml: str) -> str:
    """SHA-256 of a resolved config's YAML text (what ``config.yaml`` holds)."""
    return hashlib.sha256(config_yaml.encode("utf-8")).hexdigest()


def _rng_states(generator: torch.Generator | None) -> dict[str, Any]:
    py_version, py_state, py_gauss = random.getstate()
    np_state: tuple[Any, ...] = np.random.get_state(legacy=True)  # type: ignore[assignment]
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
    resume``) or start fresh (a new run never reads a stale file). ``config_yaml`` is the run's
    resolved config; a checkpoint written for another one is refused.
    """

    def __init__(
        self,
        out_dir: Path,
        generator: torch.Generator | None,
        resume: bool = False,
        on_save: Callable[[int, Any], None] | None = None,
        config_yaml: str | None = None,
    ):
        self.path = Path(out_dir) / CHECKPOINT
        self.generator = generator
        self.resume = resume
        self.on_save = on_save
        self.config_sha = config_digest(config_yaml) if config_yaml is not None else None
        self.restored_epoch = 0
        self.restored_step = 0
        self._state: dict[str, Any] | None = None

    def load(self) -> dict[str, Any] | None:
        """The validated checkpoint when resuming (cached), or None for a fresh run / no file.

        Raises:
            DataError: truncated, tampered, of another format, or written for another config.
        """
        if not self.resume or not self.path.exists():
            return None
        if self._state is None:
            state = safe_load(self.path)
            if not isinstance(state, dict) or state.get("format") != FORMAT:
                found = state.get("format") if isinstance(state, dict) else type(state).__name__
                raise DataError(
                    f"{self.path}: not an attnrun checkpoint of format {FORMAT} (found "
                    f"{found!r}); it was written by another version and cannot be resumed"
                )
            if self.config_sha is not None and state.get("config_sha256") != self.config_sha:
                raise DataError(
                    f"{self.path}: written for another config than the run's config.yaml (edited "
                    "since?); restore config.yaml or start a new run"
                )
            for key in ("epoch", "step", "model", "rng"):
                if key not in state:
                    raise DataError(f"{self.path}: damaged checkpoint (no {key!r})")
            self._state = state
        return self._state

    def position(self) -> dict[str, int]:
        """Where a resume starts: ``{"epoch": epochs completed, "step": batches into the next}``
        (zeros when there is nothing to resume from)."""
        state = self.load()
        if state is None:
            return {"epoch": 0, "step": 0}
        return {"epoch": int(state["epoch"]), "step": int(state["step"])}

    def save(
        self,
        epoch: int,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        history: dict[str, list] | list | None = None,
        *,
        step: int = 0,
        **extra: Any,
    ) -> None:
        """Write the state after ``epoch`` epochs and ``step`` batches of the next, atomically
        (the old file stays until the new one is whole)."""
        state = {
            "format": FORMAT,
            "config_sha256": self.config_sha,
            "epoch": int(epoch),
            "step": int(step),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "history": history if history is not None else {},
            "rng": _rng_states(self.generator),
            "extra": extra,
        }
        save_torch(self.path, state)
        self.restored_epoch = int(epoch)
        if self.on_save is not None and step == 0:
            self.on_save(int(epoch), history)

    def restore(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
    ) -> tuple[int, Any, dict[str, Any]]:
        """Load the checkpoint into ``model``/``optimizer`` and every RNG when resuming.

        Returns ``(epochs_done, history, extra)``; ``(0, {}, {})`` for a fresh run. The batches
        already done of the next epoch are ``self.restored_step``.
        """
        state = self.load()
        if state is None:
            return 0, {}, {}
        try:
            model.load_state_dict(state["model"])
            if optimizer is not None and state.get("optimizer") is not None:
                optimizer.load_state_dict(state["optimizer"])
            _set_rng_states(state["rng"], self.generator)
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DataError(f"{self.path}: does not fit this run's model: {first[:200]}") from None
        self.restored_epoch = int(state["epoch"])
        self.restored_step = int(state["step"])
        history = state.get("history")
        return (
            self.restored_epoch,
            history if history is not None else {},
            dict(state.get("extra") or {}),
        )
