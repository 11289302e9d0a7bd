"""The runs a server holds, and what it does with each: load once, answer many requests.

A :class:`ServedRun` wraps one completed run folder and an *engine* for its experiment:

- :class:`TranslateEngine`: the run's :class:`~attnrun.translate.translator.Translator` (loaded
  by :meth:`Translator.from_run`, as ``attnrun predict`` does); a request is decoded by
  :func:`~attnrun.translate.predict.translate_with_attention`, the function ``predict`` writes
  ``translations.json`` and ``attention.json`` from, so the answer is ``predict``'s;
- :class:`SelfAttnEngine`: the model and vocabulary of :func:`attnrun.selfattn.predict.load_trained`
  read by :func:`attnrun.selfattn.train.read_sentence`, as ``predict`` does;
- :class:`RegressEngine`: the training points (``train.csv``), kernel and bandwidth of a
  ``regress`` run; a request refits Nadaraya-Watson (:func:`attnrun.regression.nadaraya_watson`)
  at any bandwidth, the weights of one query from
  :func:`~attnrun.regression.nadaraya_watson.attention_weights`.

Switching heads off is :mod:`attnrun.core.heads`: the heads of a request become an
:class:`~attnrun.core.heads.Interventions` made active with :func:`~attnrun.core.heads.intervene`
around that request's forward passes only (a ContextVar: other requests, in other threads, never
see it). A multi-head site loses the head (Michel et al. 2019); an RNN decoder's one attention has
no head to remove, so "off" replaces its weights by uniform ones over the source (Wiegreffe &
Pinter 2019's baseline). A removed head's map is answered as zeros: it contributes nothing.
Attention rollout (Abnar & Zuidema 2020; :func:`~attnrun.core.heads.attention_rollout`) is one
more kind for every stack of self-attention, over the heads still on.

Nothing here writes a file except :meth:`ServedRun.save`, which is ``attnrun predict``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attnrun.core.heads import Head, Interventions, attention_rollout, head_sites, intervene
from attnrun.errors import AttnrunError, ConfigError, DataError
from attnrun.runs import files

__all__ = [
    "MAX_CHARS",
    "MAX_TOKENS",
    "PredictRequest",
    "RegressEngine",
    "RequestError",
    "SelfAttnEngine",
    "ServedRun",
    "TranslateEngine",
    "load_runs",
]

#: The longest text a request may hold, in characters.
MAX_CHARS = 1000
#: The most tokens of a sentence a request may hold (a run allows fewer when it was trained on
#: shorter sentences: translate's ``data.max_len - 1``, selfattn's ``max_len``).
MAX_TOKENS = 200
#: The widest beam a request may ask for.
MAX_BEAM = 10

KIND_ORDER = ("encoder_self", "cross", "decoder_self", "self")
ROLLOUT_KIND = {"encoder_self": "encoder_rollout", "decoder_self": "decoder_rollout"}
ROLLOUT_LABELS = {
    "encoder_rollout": "encoder rollout (Abnar & Zuidema 2020)",
    "decoder_rollout": "decoder rollout (Abnar & Zuidema 2020)",
    "rollout": "rollout of the blocks (Abnar & Zuidema 2020)",
}


class RequestError(AttnrunError):
    """A request the run cannot answer as asked: a 4xx with this one-line message."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PredictRequest:
    """One parsed ``POST /api/predict`` body (:mod:`attnrun.serve.api` checks the types).

    ``heads``: the heads to switch off; ``query`` and ``bandwidth``: regress only."""

    run: str
    text: str = ""
    beam: int | None = None
    heads: tuple[Head, ...] = ()
    query: float | None = None
    bandwidth: float | None = None


def _weights_json(w: np.ndarray) -> list:
    """Weights as ``attention.json`` writes them (5 decimals), so answers equal predict's files."""
    return np.round(np.asarray(w, dtype=np.float64), 5).tolist()


def _check_text(text: str, need_text: bool = True) -> str:
    text = text.strip()
    if need_text and not text:
        raise RequestError("the text is empty; type a sentence")
    if len(text) > MAX_CHARS:
        raise RequestError(
            f"the text has {len(text)} characters; at most {MAX_CHARS} per request", 413
        )
    if "\n" in text:
        raise RequestError("one sentence per request (the text holds a line break)")
    return text


def _check_tokens(n: int, limit: int) -> None:
    if n > limit:
        raise RequestError(f"the sentence has {n} tokens; this run takes at most {limit}", 413)


class HeadSwitch:
    """Which heads of a model can be switched off and how (see the module docstring)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.sites = head_sites(model)  # (kind, layer) -> heads, in module order
        self.gated = {
            m.site for m in model.modules() if getattr(m, "site", None) and hasattr(m, "num_heads")
        }

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


def _zero_heads(kind: str, w: np.ndarray, heads: Sequence[Head]) -> np.ndarray:
    """``w (L, H, Tq, Tk)`` with the removed heads' maps zeroed (gated heads only)."""
    out = np.array(w, dtype=np.float64)
    for h in heads:
        if h.kind == kind and h.layer < out.shape[0] and h.head < out.shape[1]:
            out[h.layer, h.head] = 0.0
    return out


def _rollout(w: np.ndarray, heads: Sequence[Head], kind: str) -> np.ndarray:
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
        out = {"queries": self.queries, "keys": self.keys, "layer_names": self.layer_names}
        if self.label:
            out["label"] = self.label
        return out


def _answer(views: Sequence[View], heads: Sequence[Head], **extra: Any) -> dict[str, Any]:
    """The JSON answer's attention part: ``attention`` (kind → weights), ``tokens``, ``ablate``."""
    return {
        **extra,
        "attention": {v.kind: _weights_json(v.weights) for v in views},
        "views": {v.kind: v.to_json() for v in views},
        "ablate": [{"kind": h.kind, "layer": h.layer, "head": h.head} for h in heads],
    }


# -- translate ----------------------------------------------------------------------------------


class TranslateEngine:
    """A translate run: decode a sentence, every kind of attention the model has."""

    experiment = "translate"

    def __init__(self, run_dir: Path, device: torch.device) -> None:
        from attnrun.translate.models import decoder_name
        from attnrun.translate.predict import coref_run
        from attnrun.translate.translator import Translator

        self.run_dir = Path(run_dir)
        self.translator = Translator.from_run(run_dir, device)
        cfg = files.read_config(run_dir)
        self.coref = coref_run(run_dir)  # (lexicon, best head) on the coref corpus, else None
        self.switch = HeadSwitch(self.translator.model)
        self.max_tokens = min(MAX_TOKENS, int(self.translator.max_len) - 1)
        m = cfg.model
        self.settings = {"model": decoder_name(cfg), "dataset": cfg.get("dataset")}
        if m.arch == "transformer":
            self.settings.update(layers=m.num_layers, heads=m.num_heads)
        elif self.translator.attends:
            self.settings.update(score=cfg.get("score"), attention=cfg.attention.get("kind"))
        self.settings["tokenizer"] = cfg.tokenizer.kind
        self.example = self._example()

    def describe(self) -> dict[str, Any]:
        return {
            "input": "text",
            "beam": int(self.translator.decode.beam),
            "it": self.coref is not None,
            "heads": self.switch.kinds(),
            "heads_removable": sorted({k for k, _ in self.switch.gated}),
            "max_tokens": self.max_tokens,
            "example": self.example,
        }

    def _example(self) -> str:
        """A sentence to start from: the coref template's, else the source of the run's first
        cross-attention sample (word vocabularies: its tokens are words)."""
        if self.coref is not None:
            return "the cat didn't cross the street because it was too tired ."
        if self.settings["tokenizer"] != "word":
            return ""
        sample = next((s for s in files.read_attention(self.run_dir) if s.kind == "cross"), None)
        words = [] if sample is None else [k for k in sample.keys if k != "<eos>"]
        return " ".join(words) if words and "<unk>" not in words else ""

    def predict(self, req: PredictRequest) -> dict[str, Any]:
        from attnrun.translate.predict import for_predict, translate_with_attention
        from attnrun.translate.tokenize import UNK, word_split

        text = _check_text(req.text)
        if req.beam is not None and not 1 <= req.beam <= MAX_BEAM:
            raise RequestError(f"beam must be 1..{MAX_BEAM}; got {req.beam}")
        tok = self.translator.src_tok
        ids = tok.encode(text)
        _check_tokens(len(ids), self.max_tokens)
        iv = self.switch.interventions(req.heads)
        translator = for_predict(self.translator, req.beam)
        with torch.inference_mode(), intervene(iv):
            hyps, samples = translate_with_attention(translator, [text])
        views = [self._view(s, req.heads) for s in samples]
        views += [self._rollout(v, req.heads) for v in views if v.kind in ROLLOUT_KIND]
        cross = next((v for v in views if v.kind == "cross"), None)
        src = cross.keys if cross else tok.pieces(ids) + ["<eos>"]
        tgt = (
            cross.queries
            if cross
            else self.translator.tgt_tok.pieces(self.translator.tgt_tok.encode(hyps[0]))
        )
        unknown = [w for w in dict.fromkeys(word_split(text)) if UNK in tok.encode(w)]
        out = _answer(
            views, req.heads, output=hyps[0], source_tokens=src, target_tokens=tgt,
            unknown=unknown, beam=int(translator.decode.beam),
        )  # fmt: skip
        if self.coref is not None:
            out["it"] = self._explain_it(text, samples, req.heads)
        return out

    def _view(self, sample: files.AttentionSample, heads: Sequence[Head]) -> View:
        w = sample.weights
        if sample.kind in {k for k, _ in self.switch.gated}:
            w = _zero_heads(sample.kind, w, heads)
        return View(sample.kind, sample.queries, sample.keys, w, sample.layer_names)

    def _rollout(self, view: View, heads: Sequence[Head]) -> View:
        kind = ROLLOUT_KIND[view.kind]
        w = _rollout(view.weights, heads, view.kind)
        return View(kind, view.queries, view.keys, w, ["all layers"], ROLLOUT_LABELS[kind])

    def _explain_it(self, text: str, samples, heads: Sequence[Head]) -> str:
        """Which noun "it" attends to (``predict``'s line), or why there is none."""
        from attnrun.translate.coref import explain_it
        from attnrun.translate.tokenize import word_split

        words = word_split(text)
        if "it" not in words:
            return 'no "it" in the sentence: nothing to resolve'
        lexicon, best = self.coref
        selfs = [s for s in samples if s.kind == "encoder_self"]
        if best is None or not selfs:
            return '"it": no encoder self-attention to read in this model'
        if Head("encoder_self", best[0] - 1, best[1] - 1) in heads:
            return (
                f'"it": the head that reads it (encoder layer {best[0]} head {best[1]}, chosen '
                "on validation) is switched off"
            )
        return explain_it(selfs[0], self.translator.src_tok, words, best, lexicon)

    def save_options(self, req: PredictRequest) -> dict[str, Any]:
        return {"beam": req.beam}


# -- selfattn -----------------------------------------------------------------------------------


class SelfAttnEngine:
    """A selfattn run: which noun "it" refers to, and every block's and the pointer's attention."""

    experiment = "selfattn"

    def __init__(self, run_dir: Path, device: torch.device, metrics: dict[str, Any]) -> None:
        from attnrun.selfattn.predict import load_trained

        self.model, self.vocab = load_trained(run_dir, metrics.get("model_sha256"))
        self.model.to(device)
        self.device = device
        self.switch = HeadSwitch(self.model)
        self.max_tokens = min(MAX_TOKENS, int(self.model.positional.max_len))
        cfg = files.read_config(run_dir).model
        self.settings = {
            "score": cfg.score, "layers": cfg.num_layers, "heads": cfg.num_heads,
            "positional": cfg.positional,
        }  # fmt: skip

    def describe(self) -> dict[str, Any]:
        return {
            "input": "text",
            "it": True,
            "heads": self.switch.kinds(),
            "heads_removable": ["self"],
            "max_tokens": self.max_tokens,
            "example": "the animal didn't cross the street because it was too tired .",
        }

    def predict(self, req: PredictRequest) -> dict[str, Any]:
        from attnrun.selfattn.data import tokenize
        from attnrun.selfattn.predict import ANSWERED_BY, check_sentence
        from attnrun.selfattn.train import read_sentence

        text = _check_text(req.text)
        if req.beam not in (None, 1):
            raise RequestError("beam search is for translate runs; this is a selfattn run")
        tokens = tokenize(text)
        _check_tokens(len(tokens), self.max_tokens)
        try:
            check_sentence(tokens)
        except DataError as e:
            raise RequestError(str(e)) from None
        unknown = self.vocab.unknown(tokens)
        if unknown:
            shown = ["<unk>" if t in unknown else t for t in tokens]
            raise RequestError(
                f"word(s) the model never saw: {', '.join(unknown)} (read as "
                f"{' '.join(shown)}); it knows the {len(self.vocab) - 1} words of its training "
                "sentences"
            )
        iv = self.switch.interventions(req.heads)
        with torch.inference_mode(), intervene(iv):
            reading = read_sentence(self.model, self.vocab, tokens, self.device)
        names = self.model.layer_names
        w = _zero_heads("self", reading.attention.numpy(), req.heads)
        views = [View("self", tokens, tokens, w, names)]
        blocks = len(names) - 1
        roll = _rollout(w[:blocks], req.heads, "self")
        views.append(View("rollout", tokens, tokens, roll, ["blocks"], ROLLOUT_LABELS["rollout"]))
        top = torch.topk(reading.probs, k=min(3, len(tokens)))
        candidates = [
            {"position": int(i), "token": tokens[int(i)], "probability": round(float(p), 4)}
            for p, i in zip(top.values, top.indices)
        ]
        answer = candidates[0]
        return _answer(
            views, req.heads, output=f'"it" refers to "{answer["token"]}"',
            source_tokens=tokens, target_tokens=[], it_index=reading.it_index,
            antecedent=answer["token"], candidates=candidates, answered_by=ANSWERED_BY,
            unknown=[],
        )  # fmt: skip

    def save_options(self, req: PredictRequest) -> dict[str, Any]:
        return {}


# -- regress ------------------------------------------------------------------------------------

#: Points of the fitted curve a regress answer draws.
GRID_POINTS = 200


class RegressEngine:
    """A regress run: the training points are the model; any bandwidth refits it."""

    experiment = "regress"

    def __init__(self, run_dir: Path, metrics: dict[str, Any]) -> None:
        x, y = files.read_points(run_dir, files.TRAIN_POINTS)
        self.x, self.y = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
        cfg = files.read_config(run_dir)
        self.kernel, self.pooling = str(cfg.kernel), str(cfg.pooling)
        h = metrics.get("bandwidth")
        self.bandwidth = float(h) if isinstance(h, (int, float)) and math.isfinite(h) else None
        if self.pooling == "parametric":
            self.bandwidth = _learned_bandwidth(run_dir, self.kernel, metrics)
        lo, hi = float(self.x.min()), float(self.x.max())
        pad = 0.05 * (hi - lo or 1.0)
        self.lo, self.hi = lo - pad, hi + pad
        self.settings = {"pooling": self.pooling, "kernel": self.kernel, "n_train": len(x)}
        self.switch = None

    def describe(self) -> dict[str, Any]:
        return {
            "input": "query",
            "heads": {},
            "heads_removable": [],
            "bandwidth": self.bandwidth,
            "x_range": [self.lo, self.hi],
            "example": "",
        }

    def predict(self, req: PredictRequest) -> dict[str, Any]:
        from attnrun.regression.nadaraya_watson import attention_weights, nadaraya_watson

        if req.heads:
            raise RequestError("a regress run has no heads to switch off; change the bandwidth")
        if req.text.strip():
            raise RequestError('a regress run takes a "query" (a number), not text')
        h = self.bandwidth if req.bandwidth is None else req.bandwidth
        if self.pooling == "average":
            if req.bandwidth is not None:
                raise RequestError("average pooling has no bandwidth (every weight is 1/n)")
        elif h is None or not (math.isfinite(h) and h > 0):
            raise RequestError(f"bandwidth must be a finite number > 0; got {h}")
        q = (self.lo + self.hi) / 2 if req.query is None else float(req.query)
        if not math.isfinite(q):
            raise RequestError(f"query must be a finite number; got {req.query}")
        grid = torch.linspace(self.lo, self.hi, GRID_POINTS, dtype=torch.float64)
        queries = torch.cat([grid, torch.tensor([q], dtype=torch.float64)])
        if self.pooling == "average":
            fit = self.y.mean().expand(queries.numel())
            weights = torch.full((self.x.numel(),), 1.0 / self.x.numel(), dtype=torch.float64)
        else:
            fit = nadaraya_watson(queries, self.x, self.y, self.kernel, h)
            weights = attention_weights(queries[-1:], self.x, self.kernel, h)[0]
        fit = [None if not math.isfinite(v) else round(v, 6) for v in fit.tolist()]
        return {
            "output": "undefined (no training point in the kernel's reach)"
            if fit[-1] is None
            else f"f({q:.4g}) = {fit[-1]:.4g}",
            "kernel": self.kernel,
            "pooling": self.pooling,
            "bandwidth": None if self.pooling == "average" else h,
            "run_bandwidth": self.bandwidth,
            "train": {"x": self.x.tolist(), "y": self.y.tolist()},
            "grid": {"x": grid.tolist(), "y": fit[:-1]},
            "query": q,
            "prediction": fit[-1],
            "weights": [round(float(v), 6) for v in weights.nan_to_num(0.0).tolist()],
            "ablate": [],
        }

    def save_options(self, req: PredictRequest) -> dict[str, Any]:
        raise RequestError("regress runs have no predict command to save with")


def _learned_bandwidth(run_dir: Path, kernel: str, metrics: dict[str, Any]) -> float:
    """``h = 1/|w|`` of a parametric run's ``model.pt`` (checked as predict checks weights)."""
    from attnrun.regression.models import ParametricNW

    model = ParametricNW(kernel)
    files.load_weights(model, run_dir, metrics.get("model_sha256"))
    return model.bandwidth


# -- the runs -----------------------------------------------------------------------------------


@dataclass
class ServedRun:
    """One loaded run: ``id`` (``r1``, ``r2``, ... in path order), its folder and its engine."""

    id: str
    path: Path
    experiment: str
    engine: Any
    metrics: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """What ``GET /api/runs`` says about the run."""
        kinds = self.engine.describe()
        return {
            "id": self.id,
            "path": str(self.path),
            "name": self.path.name,
            "experiment": self.experiment,
            "settings": self.settings,
            "metrics": self.metrics,
            **kinds,
        }

    def predict(self, req: PredictRequest) -> dict[str, Any]:
        """The answer to one request (run it off the event loop: it runs the model)."""
        return {"run": self.id, "experiment": self.experiment, **self.engine.predict(req)}

    def save(self, req: PredictRequest) -> Path:
        """``attnrun predict`` on the request's text, with its heads off: a new
        ``predictions/DATE/TIME`` folder as ``predict`` writes it (plus ``ablation.json`` naming
        the heads switched off, when there are)."""
        from attnrun.io import write_json
        from attnrun.predictors import predict

        options = {k: v for k, v in self.engine.save_options(req).items() if v is not None}
        self.engine.predict(req)  # the same checks as the page's request, before any folder
        iv = self.engine.switch.interventions(req.heads) if self.engine.switch else None
        with intervene(iv):
            _, out_dir = predict(self.path, req.text.strip(), **options)
        if req.heads:
            write_json(
                out_dir / "ablation.json",
                {"ablate": [{"kind": h.kind, "layer": h.layer, "head": h.head} for h in req.heads],
                 "attention_off": "uniform" if iv and iv.weights else "removed"},
            )  # fmt: skip
        return out_dir


def _engine(run_dir: Path, metrics: dict[str, Any], device: torch.device) -> Any:
    name = metrics.get("experiment")
    if name == "translate":
        return TranslateEngine(run_dir, device)
    if name == "selfattn":
        return SelfAttnEngine(run_dir, device, metrics)
    if name == "regress":
        return RegressEngine(run_dir, metrics)
    raise DataError(f"{run_dir}: serve cannot show a {name!r} run")


def load_runs(
    paths: Sequence[str | Path], device: torch.device
) -> tuple[list[ServedRun], list[str]]:
    """Every completed run folder under ``paths`` loaded read-only, and one line per folder that
    could not be (``"<folder>: <why>"``). An unknown path is an :class:`AttnrunError`."""
    from attnrun.report.collect import find_run_dirs, key_metrics, load_run, swept_keys
    from attnrun.runs.prediction import completed_metrics

    runs, skipped, records = [], [], []
    for run_dir in sorted(find_run_dirs(paths)):
        try:
            metrics = completed_metrics(run_dir)
            engine = _engine(run_dir, metrics, device)
        except AttnrunError as e:
            skipped.append(str(e) if str(run_dir) in str(e) else f"{run_dir}: {e}")
            continue
        record = load_run(run_dir)
        runs.append(ServedRun(f"r{len(runs) + 1}", run_dir, record.experiment, engine))
        records.append(record)
    swept = swept_keys(records)
    for run, record in zip(runs, records):
        names = key_metrics([record])
        run.metrics = {k: record.metrics[k] for k in names if _number(record.metrics.get(k))}
        shown = [
            k
            for k in swept
            if k in record.config and k.split(".")[0] in _SWEPT_SHOWN and k not in _SHOWN_BY_ENGINES
        ]
        run.settings = {**run.engine.settings, **{k: record.config[k] for k in shown[:4]}}
    return runs, skipped


#: Config sections whose swept values name a run beside its engine's settings (a sweep over
#: ``score`` or ``model.num_heads``; not data sizes or training lengths).
_SWEPT_SHOWN = {"score", "decoder", "kernel", "pooling", "bandwidth", "model", "attention"}
#: Config keys the engines' own settings already show (as ``model``, ``layers``, ``heads``, ...).
_SHOWN_BY_ENGINES = {
    "decoder", "score", "kernel", "pooling", "model.arch", "model.num_layers", "model.num_heads",
    "model.score", "model.positional",
}  # fmt: skip


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
