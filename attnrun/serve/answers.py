"""The attention part of an answer: which heads a request switches off, their maps, rollout.

A request's heads become an :class:`~attnrun.core.heads.Interventions` (:class:`HeadSwitch`):
a multi-head site loses the head (Michel et al. 2019); an RNN decoder's one attention has no head
to remove, so "off" replaces its weights by uniform ones over the source (Wiegreffe & Pinter
2019's baseline). A removed head's map is answered as zeros (:func:`zero_heads`): it contributes
nothing. Attention rollout (Abnar & Zuidema 2020; :func:`~attnrun.core.heads.attention_rollout`)
is one more kind for every stack of self-attention, over the heads still on (:func:`rollout`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from attnrun.core.heads import Head, Interventions, Site, attention_rollout, head_sites
from attnrun.errors import ConfigError
from attnrun.serve.requests import RequestError

__all__ = ["KIND_ORDER", "ROLLOUT_KIND", "ROLLOUT_LABELS", "HeadSwitch", "View", "answer",
           "rollout", "zero_heads"]  # fmt: skip

KIND_ORDER = ("encoder_self", "cross", "decoder_self", "self")
ROLLOUT_KIND = {"encoder_self": "encoder_rollout", "decoder_self": "decoder_rollout"}
ROLLOUT_LABELS = {
    "encoder_rollout": "encoder rollout (Abnar & Zuidema 2020)",
    "decoder_rollout": "decoder rollout (Abnar & Zuidema 2020)",
    "rollout": "rollout of the blocks (Abnar & Zuidema 2020)",
}


def weights_json(w: np.ndarray) -> list:
    """Weights as ``attention.json`` writes them (5 decimals), so answers equal predict's files."""
    return np.round(np.asarray(w, dtype=np.float64), 5).tolist()


class HeadSwitch:
    """Which heads of a model can be switched off and how (see the module docstring)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.sites = head_sites(model)  # (kind, layer) -> heads, in module order
        self.gated: set[Site] = set()  # the sites whose heads can be gated off
        for m in model.modules():
            site = getattr(m, "site", None)
            if site and hasattr(m, "num_heads"):
                self.gated.add(site)

    def kinds(self) -> dict[str, list[int]]:
        """kind → heads per layer (0-based layers in order)."""
        out: dict[str, list[int]] = {}
        for (kind, _layer), n in sorted(self.sites.items(), key=lambda s: s[0][1]):
            out.setdefault(kind, []).append(n)
        return {k: out[k] for k in KIND_ORDER if k in out}

    def interventions(self, heads: Sequence[Head]) -> Interventions | None:
        """The :class:`Interventions` removing ``heads``; a :class:`RequestError` naming the valid
        ones for an unknown kind, layer or head."""
        if not heads:
            return None
        if not self.sites:
            raise RequestError("this run has no attention to switch off (decoder=none)")
        kinds = sorted({k for k, _ in self.sites})
        for h in heads:
            if h.kind not in kinds:
                raise RequestError(f"no attention kind {h.kind!r} in this run; valid: {kinds}")
        weights = {
            h.site: "uniform" for h in heads if h.site in self.sites and h.site not in self.gated
        }
        for h in heads:
            if h.site in weights and h.head != 0:
                raise RequestError(
                    f"{h.kind} layer {h.layer + 1} is one attention without heads; use head 0"
                )
        try:
            removed = Interventions.remove([h for h in heads if h.site not in weights], self.sites)
        except ConfigError as e:
            raise RequestError(str(e)) from None
        return Interventions(gates=removed.gates, weights=weights)


def zero_heads(kind: str, w: np.ndarray, heads: Sequence[Head]) -> np.ndarray:
    """``w (L, H, Tq, Tk)`` with the removed heads' maps zeroed (gated heads only)."""
    out = np.array(w, dtype=np.float64)
    for h in heads:
        if h.kind == kind and h.layer < out.shape[0] and h.head < out.shape[1]:
            out[h.layer, h.head] = 0.0
    return out


def rollout(w: np.ndarray, heads: Sequence[Head], kind: str) -> np.ndarray:
    """Rollout ``(1, 1, T, T)`` of self-attention ``w (L, H, T, T)`` over the heads still on: a
    removed head's map is replaced by the mean of its layer's kept heads (so the mean over heads
    is the kept heads' mean), a layer with every head off by the identity (only the residual)."""
    t = torch.as_tensor(np.array(w, dtype=np.float64))  # (L, H, T, T)
    off = torch.zeros(t.shape[:2], dtype=torch.bool)
    for h in heads:
        if h.kind == kind and h.layer < t.shape[0] and h.head < t.shape[1]:
            off[h.layer, h.head] = True
    for layer in range(t.shape[0]):
        if bool(off[layer].all()):
            t[layer] = torch.eye(t.shape[-1], dtype=t.dtype)
        elif bool(off[layer].any()):
            t[layer, off[layer]] = t[layer, ~off[layer]].mean(0)
    return attention_rollout(t).numpy()[None, None]


@dataclass
class View:
    """One kind of attention in an answer: tokens, ``(L, H, Tq, Tk)`` weights, layer names."""

    kind: str
    queries: list[str]
    keys: list[str]
    weights: np.ndarray
    layer_names: list[str]
    label: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, list[str] | str] = {
            "queries": self.queries,
            "keys": self.keys,
            "layer_names": self.layer_names,
        }
        if self.label:
            out["label"] = self.label
        return out


def answer(views: Sequence[View], heads: Sequence[Head], **extra: Any) -> dict[str, Any]:
    """The JSON answer's attention part: ``attention`` (kind → weights), ``tokens``, ``ablate``."""
    return {
        **extra,
        "attention": {v.kind: weights_json(v.weights) for v in views},
        "views": {v.kind: v.to_json() for v in views},
        "ablate": [{"kind": h.kind, "layer": h.layer, "head": h.head} for h in heads],
    }
