"""Ablating a translate run: heads of the Transformer, the attention of an RNN decoder.

The split is decoded with the run's own :class:`~attnrun.translate.translator.Translator` (test:
the run's decode settings; val: greedy, as training validated) and scored with the run's own
metrics (sacreBLEU through :func:`~attnrun.translate.metrics.corpus_scores`, teacher-forced
perplexity, and on the coref corpus :func:`~attnrun.translate.coref.pronoun_scores`), so the
intact figures are the recorded ones.

RNN decoders have one attention and no heads to remove: their weights are replaced (uniform over
the valid source positions, permuted over them — Jain & Wallace 2019 —, another sentence's, and
hard argmax) and the BLEU compared with the sweep's ``decoder=none`` run when there is one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from attnrun.ablate.base import AblationTarget, ExtraContext, ablators
from attnrun.ablate.coref import coref_sections
from attnrun.core.heads import (
    HeadRecorder,
    Interventions,
    Site,
    head_sites,
    intervene,
    weight_replacements,
)
from attnrun.errors import DataError
from attnrun.runs import files
from attnrun.translate.batching import encode_pairs, make_batch, sorted_chunks
from attnrun.translate.config import TranslateConfig
from attnrun.translate.coref import pronoun_scores
from attnrun.translate.data import datasets
from attnrun.translate.evaluation import perplexity
from attnrun.translate.metrics import corpus_scores
from attnrun.translate.tokenize import PAD, word_split
from attnrun.translate.translator import Translator
from attnrun.validation import one_of, typed_config

SPLITS = ("test", "val")
BATCH = 128  # perplexity's and forced passes' batch size (as the pipeline's)
#: What :meth:`TranslateTarget.evaluate` returns, the default ranking metric first.
METRICS = ("bleu", "bleu_lowercase", "chrf", "perplexity")
COREF_METRICS = ("pronoun_accuracy", *METRICS, "agreement_accuracy", "bleu_other_words")


class TranslateTarget(AblationTarget):
    """A translate run on ``split`` (its first ``limit`` pairs)."""

    lower_is_better = frozenset({"perplexity"})

    def __init__(self, run_dir: Path, run_metrics: dict, split: str, limit: int | None) -> None:
        self.cfg = typed_config(TranslateConfig, files.read_config(run_dir))
        self.translator = Translator.from_run(run_dir)  # weights_only, one-line errors
        if not self.translator.attends:
            raise DataError(f"{run_dir}: a decoder=none run has no attention to ablate")
        corpus = datasets.get(self.cfg.dataset)(self.cfg.data, self.cfg.seed)
        pairs = corpus.test if split == "test" else corpus.val
        notes = corpus.extra.get("coref", {}).get(split)
        self.limited = limit is not None and limit < len(pairs)
        self.pairs = pairs[:limit] if limit else pairs
        self.notes = notes[: len(self.pairs)] if notes is not None else None
        self.split, self.examples = split, len(self.pairs)
        self.run_metrics = run_metrics
        t = self.translator
        self.ex = encode_pairs(self.pairs, t.src_tok, t.tgt_tok, self.cfg.data.max_len)
        if split == "val":  # as Trainer._validate: greedy, one hypothesis
            t = t.with_decode(beam=1, n_best=1, batch_size=max(self.cfg.train.batch_size, BATCH))
        self.decoder = t
        self.model = t.model
        self.rnn = not hasattr(self.model, "attention_maps")
        self.sites = {} if self.rnn else head_sites(self.model)
        self.metrics = COREF_METRICS if self.notes is not None else METRICS

    # -- evaluation ---------------------------------------------------------------------------

    def evaluate(self, interventions: Interventions | None) -> dict[str, float]:
        with torch.no_grad(), intervene(interventions):
            hyps, _ = self.decoder.translate([s for s, _ in self.pairs])
            ppl = perplexity(self.model, self.ex, BATCH, self.translator.device)
        return self.score(hyps, ppl)

    def score(self, hyps: list[str], ppl: float | None = None) -> dict[str, float]:
        refs = [t for _, t in self.pairs]
        s = corpus_scores(hyps, refs)
        out: dict[str, Any] = {k: s[k] for k in ("bleu", "bleu_lowercase", "chrf")}
        if ppl is not None:
            out["perplexity"] = round(ppl, 3)
        if self.notes is not None:
            out.update(pronoun_scores(hyps, self.notes))
            # BLEU without il / elle on either side: does the removal break only the pronoun?
            other = corpus_scores(_drop_pronouns(hyps), _drop_pronouns(refs))
            out["bleu_other_words"] = other["bleu"]
        return out

    def recorded(self) -> dict[str, float]:
        m = self.run_metrics
        if self.limited:
            return {}
        if self.split == "val":
            return {"bleu_lowercase": m["val_bleu"]} if "val_bleu" in m else {}
        keys = ("bleu", "bleu_lowercase", "chrf", "perplexity", "pronoun_accuracy",
                "agreement_accuracy")  # fmt: skip
        return {k: m[k] for k in keys if k in m}

    # -- gradient importance and means ----------------------------------------------------------

    def importance(self) -> dict[Site, Tensor]:
        """Per-example gates ``(B, H)`` of ones on every site; ``L(x)`` the mean cross-entropy
        per target token of sentence ``x`` under teacher forcing; one backward per batch gives
        every ``∂L(x)/∂ξ_{x,h}`` (Michel et al. 2019, eq. 2)."""
        model, device = self.model, self.translator.device
        totals = {s: torch.zeros(n, dtype=torch.float64) for s, n in self.sites.items()}
        grads = [p.requires_grad for p in model.parameters()]
        for p in model.parameters():
            p.requires_grad_(False)  # only the gates need gradients
        try:
            for idx in sorted_chunks([len(e[0]) for e in self.ex], BATCH):
                b = make_batch(self.ex, idx).to(device)
                n = len(idx)
                gates = {
                    s: torch.ones(n, h, device=device, requires_grad=True)
                    for s, h in self.sites.items()
                }
                with torch.enable_grad(), intervene(Interventions(gates=gates)):
                    logits, _ = model(b.src, b.src_lens, b.tgt_in)  # (B, T, V)
                    ce = F.cross_entropy(
                        logits.transpose(1, 2), b.tgt_out, ignore_index=PAD, reduction="none"
                    )  # (B, T)
                    per_example = ce.sum(1) / (b.tgt_out != PAD).sum(1).clamp_min(1)
                    per_example.sum().backward()
                for s, gate in gates.items():
                    assert gate.grad is not None  # every gate is on the loss's graph
                    totals[s] += gate.grad.abs().sum(0).double().cpu()  # (H,)
        finally:
            for p, g in zip(model.parameters(), grads):
                p.requires_grad_(g)
        return {s: (t / max(1, self.examples)).float() for s, t in totals.items()}

    @torch.no_grad()
    def means(self) -> dict[Site, Tensor]:
        """Each head's context averaged over the split's valid positions, teacher forced:
        source positions for ``encoder_self``, target positions for the decoder's kinds."""
        rec = HeadRecorder()
        device = self.translator.device
        for idx in sorted_chunks([len(e[0]) for e in self.ex], BATCH):
            b = make_batch(self.ex, idx).to(device)
            src_valid = torch.arange(b.src.shape[1], device=device) < b.src_lens[:, None]
            tgt_valid = b.tgt_out != PAD
            rec.query_valid = {"encoder_self": src_valid, "decoder_self": tgt_valid,
                               "cross": tgt_valid}  # fmt: skip
            with intervene(Interventions(recorder=rec)):
                self.model(b.src, b.src_lens, b.tgt_in)
        return rec.means()

    # -- extra sections --------------------------------------------------------------------------

    def extras(self, ctx: ExtraContext) -> dict[str, Any]:
        out: dict[str, Any] = {"replaced_weights": self.replaced_weights()}
        if self.rnn and ctx.run_dir is not None and self.split == "test":
            out["decoder_none"] = decoder_none_baseline(ctx.run_dir, self.cfg.dataset)
        if self.notes is not None and self.sites:
            out["coref"] = coref_sections(self, ctx)
        return out

    def replaced_weights(self) -> dict[str, dict[str, float]]:
        """The figures with every cross-attention's weights replaced (each registered
        replacement: uniform, permute, other, argmax; Jain & Wallace 2019, Wiegreffe & Pinter
        2019). The RNN decoder has one; for the Transformer every layer's cross-attention."""
        layers = 1 if self.rnn else sum(1 for k, _ in head_sites(self.model) if k == "cross")
        out = {}
        for name in weight_replacements.names():
            gen = torch.Generator().manual_seed(0)
            iv = Interventions(weights={("cross", i): name for i in range(layers)}, generator=gen)
            out[name] = self.evaluate(iv)
        return out


def _drop_pronouns(texts: list[str]) -> list[str]:
    return [" ".join(w for w in word_split(t) if w not in ("il", "elle")) for t in texts]


def decoder_none_baseline(run_dir: Path, dataset: str) -> dict[str, Any] | None:
    """The test BLEU of a completed ``decoder=none`` run beside ``run_dir`` in its sweep (same
    dataset), or None when the sweep has none."""
    for other in sorted(Path(run_dir).parent.iterdir()):
        if other == Path(run_dir) or not other.is_dir():
            continue
        try:
            m = files.read_json(other / files.METRICS)
            cfg = files.read_config(other)
        except DataError:
            continue
        none = m.get("status") == "completed" and m.get("decoder") == "none"
        if none and cfg.get("dataset") == dataset:
            return {"run": str(other), "bleu": m.get("bleu"), "chrf": m.get("chrf")}
    return None


@ablators.register("translate")
def load_translate(run_dir: Path, metrics: dict, split: str, limit: int | None) -> TranslateTarget:
    one_of("--split", split, SPLITS)
    return TranslateTarget(run_dir, metrics, split, limit)
