"""One home for what a run folder holds: the file names, their formats, and saving and loading.

Every experiment, ``predict``, ``evaluate``, ``resume``, ``show`` and ``report`` go through this
module, so a file has one name and one format everywhere:

==========================  ==========================================================  ========
file                        what                                                        written
==========================  ==========================================================  ========
``config.yaml``             the resolved config (:data:`CONFIG`)                         frame
``metrics.json``            status, meta data and metrics (:mod:`attnrun.runs.record`)   frame
``history.json``            per-epoch series (:func:`write_history`)                     experiment
``model.pt``                the trained **weights** only, a ``state_dict``               experiment
``checkpoint.pt``           the resumable training **checkpoint** (:mod:`.checkpoint`)    experiment
``attention.json``          attention samples in one format (:class:`AttentionSample`)   experiment
``tokenizer.<side>.json``   translate's tokenizers (:func:`tokenizer_file`)              translate
``vocab.json``              selfattn's vocabulary (:data:`VOCAB`)                        selfattn
``train.csv``               regress's training points ``x,y`` (:func:`read_points`)      regress
``ablations/D/T/``          ``attnrun ablate``'s folders: ``ablation.json`` and figures  ablate
==========================  ==========================================================  ========

"Checkpoint" names one thing: the resumable state in ``checkpoint.pt``. ``model.pt`` holds weights.
Both load with ``torch.load(weights_only=True)`` through :func:`safe_load`: a file carrying
pickled code is refused without running it, a truncated one is a one-line
:class:`~attnrun.errors.DataError` naming the file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from attnrun.errors import DataError
from attnrun.io import save_torch, write_json

if TYPE_CHECKING:  # torch is imported where it is used: listing runs stays fast
    import torch

CONFIG = "config.yaml"
METRICS = "metrics.json"
HISTORY = "history.json"
WEIGHTS = "model.pt"
CHECKPOINT = "checkpoint.pt"
ATTENTION = "attention.json"
VOCAB = "vocab.json"
RUN_LOG = "run.log"
TRAIN_POINTS = "train.csv"
ABLATIONS = "ablations"
ABLATION = "ablation.json"

#: Version of ``ablation.json``; readers skip other versions.
ABLATION_FORMAT = "attnrun.ablation/1"

#: Version of ``attention.json``; readers refuse other major versions.
ATTENTION_FORMAT = "attnrun.attention/1"


def tokenizer_file(side: str) -> str:
    """``tokenizer.src.json`` / ``tokenizer.tgt.json``."""
    return f"tokenizer.{side}.json"


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- torch files ------------------------------------------------------------------------------


def safe_load(path: str | Path, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with one-line errors for bad files."""
    import torch

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
            reason = f"truncated or not a torch file ({text[:120]})"
        raise DataError(f"{path}: cannot load: {reason}") from None


def state_dict_cpu(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of ``model``'s state dict (safe to keep while training goes on)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def save_weights(run_dir: str | Path, state: torch.nn.Module | dict[str, torch.Tensor]) -> str:
    """Write ``model.pt`` (a module's weights, or a ready state dict); returns its SHA-256."""
    import torch

    path = Path(run_dir) / WEIGHTS
    if isinstance(state, torch.nn.Module):
        state = state_dict_cpu(state)
    save_torch(path, state)
    return sha256(path)


def load_state_dict(model: torch.nn.Module, state: Any, where: Path) -> None:
    """``model.load_state_dict(state)`` with a one-line DataError when it does not fit."""
    import torch

    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(f"{where}: not a state_dict of tensors")
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise DataError(f"{where}: does not fit the run's model config ({first[:200]})") from None


def load_weights(
    model: torch.nn.Module, run_dir: str | Path, expected_sha256: str | None = None
) -> torch.nn.Module:
    """Load ``run_dir/model.pt`` into ``model`` (the one weights-only loader of attnrun).

    With ``expected_sha256`` (recorded in ``metrics.json`` as ``model_sha256``) an edited or
    truncated file is refused before it is read.
    """
    path = Path(run_dir) / WEIGHTS
    if not path.is_file():
        raise DataError(f"{path}: missing; the run folder is incomplete")
    if expected_sha256 is not None and sha256(path) != expected_sha256:
        raise DataError(
            f"{path}: does not match the checksum recorded at training (truncated or modified); "
            "retrain or restore the file"
        )
    load_state_dict(model, safe_load(path), path)
    return model


# --- config and history -----------------------------------------------------------------------


def read_config(run_dir: str | Path):
    """``config.yaml`` of a run as a DictConfig; a missing or unreadable file is a DataError."""
    from omegaconf import OmegaConf

    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise DataError(f"{Path(run_dir)}: not a run folder (no {CONFIG})")
    try:
        return OmegaConf.load(path)
    except Exception as e:  # YAML and OmegaConf raise several types
        raise DataError(f"{path}: unreadable ({type(e).__name__}: {e})") from None


def read_json(path: str | Path, missing: str = "missing; the run folder is incomplete") -> Any:
    """A run file's JSON object; a missing, unreadable or non-object file is one DataError line
    naming it (``missing`` says what a missing file means)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {missing}")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a JSON object")
    return obj


def write_history(run_dir: str | Path, history: dict[str, list] | list[dict]) -> Path:
    """``history.json``: ``{"loss": [...], ...}`` (one number per epoch) or per-epoch records."""
    path = Path(run_dir) / HISTORY
    write_json(path, history)
    return path


def read_history(run_dir: str | os.PathLike) -> dict[str, list] | list[dict] | None:
    """``history.json`` as written, or None when missing or unreadable."""
    try:
        return json.loads((Path(run_dir) / HISTORY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_points(run_dir: str | Path, name: str = TRAIN_POINTS) -> tuple[list[float], list[float]]:
    """The ``x`` and ``y`` columns of a run's ``x,y`` table (regress's ``train.csv``); a missing
    or malformed file is one DataError line naming it."""
    import csv

    path = Path(run_dir) / name
    if not path.is_file():
        raise DataError(f"{path}: missing; the run folder is incomplete")
    xs, ys = [], []
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = csv.reader(f)
            if [c.strip() for c in next(rows, [])] != ["x", "y"]:
                raise ValueError("the header is not x,y")
            for row in rows:
                x, y = (float(v) for v in row)
                xs.append(x)
                ys.append(y)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DataError(f"{path}: unreadable ({e})") from None
    if len(xs) < 2 or not all(map(math.isfinite, xs + ys)):
        raise DataError(f"{path}: needs at least 2 finite points")
    return xs, ys


# --- attention samples ------------------------------------------------------------------------


def weights_array(weights: np.ndarray | torch.Tensor) -> np.ndarray:
    """Attention weights as a numpy array (a tensor detached and moved to the CPU), the step
    :class:`AttentionSample` starts with; it then keeps a float64 copy."""
    if hasattr(weights, "detach"):
        return weights.detach().cpu().numpy()
    return np.asarray(weights, dtype=float)


@dataclass
class AttentionSample:
    """One input's attention, as every experiment writes it and ``report`` reads it.

    Attributes:
        name: which sample (``"test 0"``, ``"tired"``, ``"grid"``).
        kind: ``cross`` (target × source), ``self``, ``encoder_self``, ``decoder_self`` or
            ``kernel`` (regression queries × keys).
        queries: the ``Tq`` row labels (attending tokens, or query x values).
        keys: the ``Tk`` column labels.
        weights: ``(layers, heads, Tq, Tk)`` weights (a ``(Tq, Tk)`` map is one layer, one head).
        layer_names: one name per layer.
        focus: a query row to show on its own (selfattn: the row of "it"), else None.
        layer: the layer a one-panel view shows (e.g. the best-aligned one); None: the last.
        title: a caption (the translation, the sentence).
    """

    name: str
    kind: str
    queries: list[str]
    keys: list[str]
    weights: np.ndarray
    layer_names: list[str] = field(default_factory=list)
    focus: int | None = None
    layer: int | None = None
    title: str = ""

    def __post_init__(self) -> None:
        w = weights_array(self.weights)
        if w.ndim == 2:
            w = w[None, None]
        if w.ndim != 4 or w.shape[2:] != (len(self.queries), len(self.keys)):
            raise ValueError(
                f"attention sample {self.name!r}: weights {w.shape} do not fit "
                f"{len(self.queries)} queries × {len(self.keys)} keys as (layers, heads, Tq, Tk)"
            )
        self.weights = w.astype(np.float64)
        self.queries = [str(t) for t in self.queries]
        self.keys = [str(t) for t in self.keys]
        if not self.layer_names:
            self.layer_names = [f"layer {i + 1}" for i in range(w.shape[0])]
        if len(self.layer_names) != w.shape[0]:
            raise ValueError(f"{len(self.layer_names)} layer names for {w.shape[0]} layers")

    def panel(self) -> tuple[np.ndarray, list[str], list[str]]:
        """The one 2-D map a report shows: ``(matrix, row_labels, column_labels)``.

        With a ``focus`` row: that query's row in every layer and head (rows ``L1 H1``, ...);
        otherwise the head-averaged map of ``layer`` (default the last).
        """
        layers, heads = self.weights.shape[:2]
        if self.focus is not None:
            rows = self.weights[:, :, self.focus, :].reshape(layers * heads, -1)
            labels = [f"L{i + 1} H{h + 1}" for i in range(layers) for h in range(heads)]
            return rows, labels, list(self.keys)
        layer = self.layer if self.layer is not None else layers - 1
        return self.weights[layer].mean(axis=0), list(self.queries), list(self.keys)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "queries": self.queries,
            "keys": self.keys,
            "layer_names": self.layer_names,
            "focus": self.focus,
            "layer": self.layer,
            "title": self.title,
            "weights": np.round(self.weights, 5).tolist(),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> AttentionSample:
        return cls(
            name=str(obj["name"]),
            kind=str(obj["kind"]),
            queries=list(obj["queries"]),
            keys=list(obj["keys"]),
            weights=np.asarray(obj["weights"], dtype=float),
            layer_names=list(obj.get("layer_names") or []),
            focus=obj.get("focus"),
            layer=obj.get("layer"),
            title=str(obj.get("title") or ""),
        )


def write_attention(run_dir: str | Path, samples: Sequence[AttentionSample]) -> Path:
    """Write ``attention.json`` (``{"format": ..., "samples": [...]}``) atomically."""
    path = Path(run_dir) / ATTENTION
    for s in samples:
        if not np.isfinite(s.weights).all():
            raise ValueError(f"attention sample {s.name!r} holds NaN or inf")
    write_json(path, {"format": ATTENTION_FORMAT, "samples": [s.to_json() for s in samples]})
    return path


def read_attention(run_dir: str | Path) -> list[AttentionSample]:
    """The samples of ``run_dir/attention.json``; empty when there is none or it is damaged
    (a damaged artefact only loses its own panel, never a whole report)."""
    try:
        raw = json.loads((Path(run_dir) / ATTENTION).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(raw, dict) or str(raw.get("format", "")).split(".")[0:1] != ["attnrun"]:
        return []
    if raw.get("format") != ATTENTION_FORMAT:
        return []
    out = []
    for item in raw.get("samples") or []:
        try:
            out.append(AttentionSample.from_json(item))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def number_labels(values: Sequence[float], digits: int = 3) -> list[str]:
    """Axis labels for numeric queries / keys (regression inputs)."""
    return [f"{v:.{digits}g}" if math.isfinite(v) else "nan" for v in values]


# --- ablations (attnrun ablate) ----------------------------------------------------------------


def reserve_ablation_dir(run_dir: str | Path) -> Path:
    """A new ``run_dir/ablations/YYYY-MM-DD/HH-MM-SS`` folder (never one that exists)."""
    from attnrun.runs.folders import reserve_run_dir

    return reserve_run_dir(Path(run_dir) / ABLATIONS)


def write_ablation(out_dir: str | Path, record: dict[str, Any]) -> Path:
    """Write ``ablation.json`` (``{"format": ..., ...}``) atomically into an ablation folder."""
    path = Path(out_dir) / ABLATION
    write_json(path, {"format": ABLATION_FORMAT, **record})
    return path


def read_ablations(run_dir: str | Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every readable ``ablation.json`` under ``run_dir/ablations``, oldest first, as
    ``(folder, record)``; damaged or foreign files are skipped (they lose only their own row)."""
    out = []
    for path in sorted((Path(run_dir) / ABLATIONS).glob(f"*/*/{ABLATION}")):
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(obj, dict) and obj.get("format") == ABLATION_FORMAT:
            out.append((path.parent, obj))
    return out


def latest_ablation(run_dir: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest readable ``ablation.json`` of the run (:func:`read_ablations`' last), or None."""
    found = read_ablations(run_dir)
    return found[-1] if found else None
