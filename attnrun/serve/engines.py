"""One engine per experiment: load a run once, answer many requests.

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

Every engine has ``settings`` (what names the run), ``describe()`` (``GET /api/runs``),
``predict(request) -> dict`` (the model runs under the request's interventions only:
:func:`~attnrun.core.heads.intervene`, a ContextVar, so other requests in other threads never see
them) and ``save_options(request)`` (what ``attnrun predict`` takes to save it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from attnrun.core.heads import Head, intervene
from attnrun.errors import DataError
from attnrun.runs import files
from attnrun.serve.answers import (
    ROLLOUT_KIND,
    ROLLOUT_LABELS,
    HeadSwitch,
    View,
    answer,
    rollout,
    zero_heads,
)
from attnrun.serve.requests import (
    MAX_BEAM,
    MAX_TOKENS,
    PredictRequest,
    RequestError,
    check_text,
    check_tokens,
)

__all__ = ["RegressEngine", "SelfAttnEngine", "TranslateEngine"]

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

        text = check_text(req.text)
        if req.beam is not None and not 1 <= req.beam <= MAX_BEAM:
            raise RequestError(f"beam must be 1..{MAX_BEAM}; got {req.beam}")
        tok = self.translator.src_tok
        ids = tok.encode(text)
        check_tokens(len(ids), self.max_tokens)
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
        out = answer(
            views, req.heads, output=hyps[0], source_tokens=src, target_tokens=tgt,
            unknown=unknown, beam=int(translator.decode.beam),
        )  # fmt: skip
        if self.coref is not None:
            out["it"] = self._explain_it(text, samples, req.heads)
        return out

    def _view(self, sample: files.AttentionSample, heads: Sequence[Head]) -> View:
        w = sample.weights
        if sample.kind in {k for k, _ in self.switch.gated}:
            w = zero_heads(sample.kind, w, heads)
        return View(sample.kind, sample.queries, sample.keys, w, sample.layer_names)

    def _rollout(self, view: View, heads: Sequence[Head]) -> View:
        kind = ROLLOUT_KIND[view.kind]
        w = rollout(view.weights, heads, view.kind)
        return View(kind, view.queries, view.keys, w, ["all layers"], ROLLOUT_LABELS[kind])

    def _explain_it(self, text: str, samples, heads: Sequence[Head]) -> str:
        """Which noun "it" attends to (``predict``'s line), or why there is none."""
        from attnrun.translate.coref import explain_it
        from attnrun.translate.tokenize import word_split

        words = word_split(text)
        if "it" not in words:
            return 'no "it" in the sentence: nothing to resolve'
        assert self.coref is not None  # predict() asks only a coref run
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
        from attnrun.core.positional import LearnedPositionalEmbedding, SinusoidalPositionalEncoding
        from attnrun.selfattn.predict import load_trained

        self.model, self.vocab = load_trained(run_dir, metrics.get("model_sha256"))
        self.model.to(device)
        self.device = device
        self.switch = HeadSwitch(self.model)
        positional = self.model.positional
        assert isinstance(positional, (SinusoidalPositionalEncoding, LearnedPositionalEmbedding))
        self.max_tokens = min(MAX_TOKENS, int(positional.max_len))
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

        text = check_text(req.text)
        if req.beam not in (None, 1):
            raise RequestError("beam search is for translate runs; this is a selfattn run")
        tokens = tokenize(text)
        check_tokens(len(tokens), self.max_tokens)
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
        w = zero_heads("self", reading.attention.numpy(), req.heads)
        views = [View("self", tokens, tokens, w, names)]
        blocks = len(names) - 1
        roll = rollout(w[:blocks], req.heads, "self")
        views.append(View("rollout", tokens, tokens, roll, ["blocks"], ROLLOUT_LABELS["rollout"]))
        top = torch.topk(reading.probs, k=min(3, len(tokens)))
        candidates = [
            {"position": int(i), "token": tokens[int(i)], "probability": round(float(p), 4)}
            for p, i in zip(top.values, top.indices)
        ]
        best = candidates[0]
        return answer(
            views, req.heads, output=f'"it" refers to "{best["token"]}"',
            source_tokens=tokens, target_tokens=[], it_index=reading.it_index,
            antecedent=best["token"], candidates=candidates, answered_by=ANSWERED_BY,
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
        h = self._bandwidth(req)
        q = (self.lo + self.hi) / 2 if req.query is None else float(req.query)
        grid = torch.linspace(self.lo, self.hi, GRID_POINTS, dtype=torch.float64)
        fit, weights = self._fit(torch.cat([grid, torch.tensor([q], dtype=torch.float64)]), h)
        return {
            "output": "undefined (no training point in the kernel's reach)"
            if fit[-1] is None
            else f"f({q:.4g}) = {fit[-1]:.4g}",
            "kernel": self.kernel,
            "pooling": self.pooling,
            "bandwidth": h,
            "run_bandwidth": self.bandwidth,
            "train": {"x": self.x.tolist(), "y": self.y.tolist()},
            "grid": {"x": grid.tolist(), "y": fit[:-1]},
            "query": q,
            "prediction": fit[-1],
            "weights": weights,
            "ablate": [],
        }

    def _bandwidth(self, req: PredictRequest) -> float | None:
        """The bandwidth to fit with (the run's unless the request asks another); checks the
        request asks nothing a regress run lacks."""
        if req.heads:
            raise RequestError("a regress run has no heads to switch off; change the bandwidth")
        if req.text.strip():
            raise RequestError('a regress run takes a "query" (a number), not text')
        if self.pooling == "average":
            if req.bandwidth is not None:
                raise RequestError("average pooling has no bandwidth (every weight is 1/n)")
            return None
        h = self.bandwidth if req.bandwidth is None else req.bandwidth
        if h is None or not (math.isfinite(h) and h > 0):
            raise RequestError(f"bandwidth must be a finite number > 0; got {h}")
        return h

    def _fit(self, queries: torch.Tensor, h: float | None) -> tuple[list, list[float]]:
        """The fit at ``queries (n,)`` (None where undefined) and the last query's weights over
        the training points: ``f(q) = Σ_j α_j(q) y_j`` (Nadaraya 1964, Watson 1964)."""
        from attnrun.regression.nadaraya_watson import attention_weights, nadaraya_watson

        if h is None:  # average pooling: α_j = 1/n
            fit = self.y.mean().expand(queries.numel())
            weights = torch.full((self.x.numel(),), 1.0 / self.x.numel(), dtype=torch.float64)
        else:
            out = nadaraya_watson(queries, self.x, self.y, self.kernel, h)
            assert isinstance(out, torch.Tensor)  # return_weights=False: the predictions alone
            fit = out
            weights = attention_weights(queries[-1:], self.x, self.kernel, h)[0]
        values = [None if not math.isfinite(v) else round(v, 6) for v in fit.tolist()]
        return values, [round(float(v), 6) for v in weights.nan_to_num(0.0).tolist()]

    def save_options(self, req: PredictRequest) -> dict[str, Any]:
        raise RequestError("regress runs have no predict command to save with")


def _learned_bandwidth(run_dir: Path, kernel: str, metrics: dict[str, Any]) -> float:
    """``h = 1/|w|`` of a parametric run's ``model.pt`` (checked as predict checks weights)."""
    from attnrun.regression.models import ParametricNW

    model = ParametricNW(kernel)
    files.load_weights(model, run_dir, metrics.get("model_sha256"))
    return model.bandwidth
