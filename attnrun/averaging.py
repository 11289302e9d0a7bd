"""Weight averaging: the weights a run evaluates and keeps can be an average of the trained ones.

``train.average`` picks one member of :data:`averagers` by the text before the colon:

* ``none`` — the raw weights (the default);
* ``last:N`` — the plain mean of the weights at the end of the last ``N`` epochs, what fairseq's
  ``scripts/average_checkpoints.py --num-epoch-checkpoints N`` computes (Vaswani et al. 2017 §6.1
  average the last 5 checkpoints of the base model); fewer than ``N`` epochs done: the mean of
  those there are;
* ``ema:DECAY`` — an exponential moving average updated after every optimizer step (Polyak &
  Juditsky 1992; the EMA of Kingma & Ba 2015 §7.2, with their bias correction):
  ``m_t = d m_{t-1} + (1 - d) θ_t`` from ``m_0 = 0``, evaluated as ``m_t / (1 - d^t)`` — the mean
  of ``θ_1 … θ_t`` weighted by ``d^(t-i)``, so no weight goes to the untrained initial ``θ_0``.

Only the parameters are averaged. Buffers (positional tables, and anything non-float) are copied
from the raw weights, as ``torch.optim.swa_utils.AveragedModel`` does by default; the models of
attnrun have no BatchNorm statistics that would need recomputing. Tied parameters (one tensor
under two names) are averaged once and appear under both names.

An averager's :meth:`Averager.state_dict` goes into the training checkpoint beside the raw weights,
so a resumed run averages exactly as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch

from attnrun.errors import ConfigError
from attnrun.registry import Registry

__all__ = ["Averager", "EMA", "LastEpochs", "averagers", "check_average", "make_averager"]

#: mode (the text before ``:``) → :class:`Averager` subclass.
averagers: Registry[type[Averager]] = Registry("weight averaging mode")

KEY = "train.average"


def _forms() -> str:
    return ", ".join(averagers.get(name).form for name in averagers.names())


def _bad(text: str, allowed: str) -> ConfigError:
    """The wording of :func:`attnrun.validation.require` for ``train.average``."""
    return ConfigError(f"{KEY}={text!r} is not valid; allowed: {allowed}")


def make_averager(text: str) -> Averager:
    """The averager ``train.average=text`` asks for; a :class:`ConfigError` of one line for an
    unknown mode or an argument out of range (``last:0``, ``ema:1``)."""
    mode, _, arg = str(text).strip().partition(":")
    if mode not in averagers:
        raise _bad(text, _forms())
    return averagers.get(mode).parse(str(text), arg)


def check_average(text: str, trains: bool, why: str = "") -> None:
    """Validate ``train.average``; with ``trains=False`` (an experiment or setting that does not
    train, said in ``why``) only ``none`` is allowed."""
    if make_averager(text).active and not trains:
        raise _bad(text, f"none ({why})" if why else "none")


class Averager:
    """No averaging (``none``): the raw weights are the model's. The base of every mode.

    The training loop calls :meth:`after_step` after every optimizer step and :meth:`after_epoch`
    at the end of every epoch; :meth:`applied` puts the averaged weights into the model for a
    block (validation), :meth:`averaged` gives them as a CPU state dict (``model.pt``).
    """

    form = "none"
    active = False

    @classmethod
    def parse(cls, text: str, arg: str) -> Averager:
        if arg:
            raise _bad(text, _forms())
        return cls()

    def after_step(self, model: torch.nn.Module) -> None:
        """Called after every optimizer step."""

    def after_epoch(self, model: torch.nn.Module, epoch: int) -> None:
        """Called at the end of epoch ``epoch`` (1-based), before validation."""

    def _mean(self) -> dict[str, torch.Tensor]:
        """The averaged parameters, by their first name in ``named_parameters``."""
        raise NotImplementedError

    def averaged(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """A full CPU state dict: averaged parameters, the raw model's buffers, one tensor per
        key (no storage shared between keys, as :func:`attnrun.runs.files.state_dict_cpu`)."""
        raw = model.state_dict(keep_vars=True)
        if not self.ready():
            return {k: v.detach().to("cpu", copy=True) for k, v in raw.items()}
        mean = self._mean()
        names = {id(p): name for name, p in model.named_parameters()}
        out = {}
        for key, value in raw.items():
            source = mean[names[id(value)]] if id(value) in names else value.detach()
            out[key] = source.to("cpu", value.dtype, copy=True)
        return out

    @contextlib.contextmanager
    def applied(self, model: torch.nn.Module) -> Iterator[None]:
        """Inside the block the model holds the averaged weights; the raw ones come back after
        (copied in place, so an optimizer's references to the parameters stay valid)."""
        if not self.active:
            yield
            return
        raw = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.averaged(model))
        try:
            yield
        finally:
            model.load_state_dict(raw)

    def ready(self) -> bool:
        """Whether there is an average yet (before the first step or epoch there is none and the
        averaged weights are the raw ones)."""
        return self.active

    def span(self) -> dict:
        """Which weights the average now holds, for ``history.json`` rows and ``metrics.json``
        (``averaged_epochs`` ``[first, last]`` or ``ema_steps``); {} for raw weights."""
        return {}

    def describe(self, epoch: int, span: dict) -> str:
        """Which weights a figure at the end of epoch ``epoch`` comes from, in words (``span``:
        what :meth:`span` said then)."""
        return f"raw weights of epoch {epoch}"

    def state_dict(self) -> dict:
        """What the checkpoint keeps (tensors, numbers, lists, dicts only)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (``attnrun resume``)."""


averagers.register("none")(Averager)


def _params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's distinct parameters by name (a tied tensor once), detached."""
    return {name: p.detach() for name, p in model.named_parameters()}


@averagers.register("last")
class LastEpochs(Averager):
    """``last:N``: the mean of the parameters at the end of the last ``N`` epochs (fairseq's
    ``average_checkpoints.py``), kept as ``N`` CPU snapshots."""

    form = "last:N"
    active = True

    def __init__(self, n: int) -> None:
        self.n = n
        self.epochs: list[int] = []
        self.snapshots: list[dict[str, torch.Tensor]] = []

    @classmethod
    def parse(cls, text: str, arg: str) -> Averager:
        try:
            n = int(arg)
        except ValueError:
            raise _bad(text, "last:N with a whole number N >= 1 (epochs)") from None
        if n < 1:
            raise _bad(text, "last:N with N >= 1 (epochs)")
        return cls(n)

    def after_epoch(self, model: torch.nn.Module, epoch: int) -> None:
        snapshot = {k: v.to("cpu", copy=True) for k, v in _params(model).items()}
        self.epochs, self.snapshots = (
            [*self.epochs, epoch][-self.n :],
            [*self.snapshots, snapshot][-self.n :],
        )

    def ready(self) -> bool:
        return bool(self.snapshots)

    def _mean(self) -> dict[str, torch.Tensor]:
        k = len(self.snapshots)
        return {
            name: torch.stack([s[name] for s in self.snapshots]).sum(0) / k  # (k, ...) → (...)
            for name in self.snapshots[-1]
        }

    def span(self) -> dict:
        return {"averaged_epochs": [self.epochs[0], self.epochs[-1]]} if self.epochs else {}

    def describe(self, epoch: int, span: dict) -> str:
        if "averaged_epochs" not in span:
            return super().describe(epoch, span)
        first, last = span["averaged_epochs"]
        which = f"epoch {last}" if first == last else f"epochs {first}-{last}"
        return f"mean of the weights of {which} ({KEY}=last:{self.n})"

    def state_dict(self) -> dict:
        return {"epochs": list(self.epochs), "snapshots": list(self.snapshots)}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            return
        self.epochs = [int(e) for e in state["epochs"]]
        self.snapshots = list(state["snapshots"])


@averagers.register("ema")
class EMA(Averager):
    """``ema:DECAY``: the bias-corrected exponential moving average of the parameters, updated
    after every optimizer step (module docstring); kept on the model's device."""

    form = "ema:DECAY"
    active = True

    def __init__(self, decay: float) -> None:
        self.decay = decay
        self.steps = 0
        self.sums: dict[str, torch.Tensor] = {}  # m_t by parameter name

    @classmethod
    def parse(cls, text: str, arg: str) -> Averager:
        try:
            decay = float(arg)
        except ValueError:
            raise _bad(text, "ema:DECAY with a number 0 < DECAY < 1") from None
        if not (math.isfinite(decay) and 0.0 < decay < 1.0):
            raise _bad(text, "ema:DECAY with 0 < DECAY < 1")
        return cls(decay)

    @torch.no_grad()
    def after_step(self, model: torch.nn.Module) -> None:
        params = _params(model)
        if not self.sums:
            self.sums = {k: torch.zeros_like(p) for k, p in params.items()}
        first = next(iter(params))
        if self.sums[first].device != params[first].device:  # resumed: the sums load on the CPU
            self.sums = {k: v.to(params[k].device) for k, v in self.sums.items()}
        names = list(self.sums)
        # m ← m + (1 - d)(θ - m) = d m + (1 - d) θ, one fused kernel over every tensor
        torch._foreach_lerp_([self.sums[k] for k in names], [params[k] for k in names],
                             1.0 - self.decay)  # fmt: skip
        self.steps += 1

    def _mean(self) -> dict[str, torch.Tensor]:
        correction = 1.0 - self.decay**self.steps
        return {k: m / correction for k, m in self.sums.items()}

    def ready(self) -> bool:
        return self.steps > 0

    def span(self) -> dict:
        return {"ema_steps": self.steps}

    def describe(self, epoch: int, span: dict) -> str:
        if not span.get("ema_steps"):
            return super().describe(epoch, span)
        return (
            f"EMA of the weights over {span['ema_steps']} steps to epoch {epoch}, decay "
            f"{self.decay} ({KEY}=ema:{self.decay})"
        )

    def state_dict(self) -> dict:
        sums = {k: v.to("cpu", copy=True) for k, v in self.sums.items()}
        return {"steps": self.steps, "sums": sums}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            return
        self.steps = int(state["steps"])
        self.sums = dict(state["sums"])
