"""A trained translation model with its tokenizers and decode settings: text in, text out.

:class:`Translator` is what training validates with, what the test split is decoded with, and what
``attnrun predict`` / ``attnrun evaluate`` load from a run folder (:meth:`Translator.from_run`), so
the decode settings are gathered in one place instead of a keyword block rebuilt at every call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from attnrun.core.heads import attention_rollout
from attnrun.runs import files
from attnrun.translate.batching import encode_sources
from attnrun.translate.config import DecodeConfig, TranslateConfig, check_replace_unk
from attnrun.translate.models import build_model
from attnrun.translate.search import Hypothesis, translate_ids
from attnrun.translate.tokenize import BOS, EOS, Tokenizer, load_tokenizer, replace_unknown
from attnrun.validation import typed_config

__all__ = ["Translator"]


@dataclass
class Translator:
    """``model`` with its tokenizers; ``max_len`` source ids per sentence (incl. EOS). ``model``
    is what :func:`~attnrun.translate.models.build_model` gives: a ``Seq2Seq`` or, with
    ``model.arch=transformer``, a ``TransformerSeq2Seq``."""

    model: nn.Module
    src_tok: Tokenizer
    tgt_tok: Tokenizer
    max_len: int
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @classmethod
    def from_run(cls, run_dir: str | Path, device: str | torch.device = "cpu") -> Translator:
        """The trained model and tokenizers of a translate run folder (weights from model.pt).

        A missing, truncated or tampered file is a one-line :class:`~attnrun.errors.DataError`.
        """
        cfg = typed_config(TranslateConfig, files.read_config(run_dir))
        src_tok = load_tokenizer(run_dir, "src")
        # tokenizer.shared: one vocabulary for both sides, as in training (runs from before the
        # option read it as false and load two)
        tgt_tok = src_tok if cfg.tokenizer.shared else load_tokenizer(run_dir, "tgt")
        model = build_model(cfg, src_tok.size, tgt_tok.size)
        files.load_weights(model, run_dir)
        device = torch.device(device)
        return cls(model.to(device).eval(), src_tok, tgt_tok, cfg.data.max_len, cfg.decode, device)

    @property
    def attends(self) -> bool:
        """Whether the decoder attends to the source (``decoder=none`` does not)."""
        return getattr(self.model.decoder, "has_attention", True)

    def with_decode(self, **changes) -> Translator:
        """A translator with some decode settings changed (``beam=5``, ``n_best=1``, ...);
        ``None`` keeps the run's. ``replace_unk=True`` on a BPE or attention-less run is a
        :class:`~attnrun.errors.ConfigError`, as it is in a config."""
        given = {k: v for k, v in changes.items() if v is not None}
        check_replace_unk(given.get("replace_unk", False), self.tgt_tok.kind, self.attends)
        return replace(self, decode=replace(self.decode, **given)) if given else self

    def translate(self, texts: Sequence[str]) -> tuple[list[str], list[list[Hypothesis]]]:
        """The best translations as text (:meth:`text`) and every hypothesis (``decode.n_best``
        per text)."""
        d = self.decode
        ids = encode_sources(texts, self.src_tok, self.max_len)
        hyps = translate_ids(
            self.model,
            ids,
            batch_size=d.batch_size,
            max_len=d.max_len,
            beam=d.beam,
            alpha=d.length_penalty,
            n_best=d.n_best,
            device=self.device,
        )
        return [self.text(h[0], t) for h, t in zip(hyps, texts)], hyps

    def text(self, hyp: Hypothesis, source: str) -> str:
        """Hypothesis ``hyp`` of ``source`` as text; with ``decode.replace_unk`` each ``<unk>``
        is the source word it attended to most (:func:`.tokenize.replace_unknown`)."""
        if self.decode.replace_unk:
            return replace_unknown(self.tgt_tok, hyp.ids, hyp.weights, source, self.src_tok)
        return self.tgt_tok.decode(hyp.ids)

    def attention_samples(
        self, texts: Sequence[str], hyps: Sequence[Hypothesis], name: str = "sentence"
    ) -> list[files.AttentionSample]:
        """Cross-attention samples (emitted target pieces × source pieces, EOS on both sides
        where decoding reached it) in the run-file format report and the viewer read. A model
        with every layer's maps (the Transformer) gives ``(layers, heads, T, S)`` cross-attention
        under forced decoding of its own output, ``encoder_self`` / ``decoder_self`` samples
        too, and ``encoder_rollout``: the encoder's attention rollout (Abnar & Zuidema 2020),
        ``(1, 1, S, S)``; an RNN decoder gives its one map."""
        samples = []
        for i, (text, h) in enumerate(zip(texts, hyps)):
            n_src = h.weights.shape[1]
            src_ids = self.src_tok.encode(text)[: n_src - 1]
            src = self.src_tok.pieces(src_ids) + ["<eos>"]
            ended = h.weights.shape[0] > len(h.ids)  # False when decoding stopped at max_len
            tgt = self.tgt_tok.pieces(h.ids) + (["<eos>"] if ended else [])
            title = self.tgt_tok.decode(h.ids)
            if not hasattr(self.model, "attention_maps"):
                w = files.weights_array(h.weights[: len(tgt), : len(src)])
                samples.append(files.AttentionSample(
                    f"{name} {i}", "cross", tgt, src, w, ["attention"], title=title
                ))  # fmt: skip
                continue
            maps = self._forced_maps(src_ids + [EOS], h.ids)
            layers = [f"layer {k + 1}" for k in range(maps["cross"].shape[0])]
            inputs = ["<bos>", *self.tgt_tok.pieces(h.ids)][: len(tgt)]
            for kind, q, k in (("cross", tgt, src), ("encoder_self", src, src),
                               ("decoder_self", inputs, inputs)):  # fmt: skip
                w = files.weights_array(maps[kind][:, :, : len(q), : len(k)])
                suffix = "" if kind == "cross" else f" {kind}"
                samples.append(
                    files.AttentionSample(f"{name} {i}{suffix}", kind, q, k, w, layers, title=title)
                )
            rollout = attention_rollout(maps["encoder_self"][:, :, : len(src), : len(src)].double())
            samples.append(files.AttentionSample(
                f"{name} {i} encoder_rollout", "encoder_rollout", src, src,
                files.weights_array(rollout), ["rollout"], title=title,
            ))  # fmt: skip
        return samples

    @torch.no_grad()
    def _forced_maps(self, src_ids: list[int], tgt_ids: list[int]) -> dict[str, torch.Tensor]:
        """Every layer's and head's maps ``(L, H, Tq, Tk)`` when the decoder is fed ``tgt_ids``."""
        src = torch.tensor([src_ids], device=self.device)
        tgt_in = torch.tensor([[BOS, *tgt_ids]], device=self.device)
        lens = torch.tensor([len(src_ids)], device=self.device)
        attention_maps = getattr(self.model, "attention_maps", None)
        assert attention_maps is not None  # attention_samples asks only such a model
        maps = attention_maps(src, lens, tgt_in)
        return {kind: w[0].cpu() for kind, w in maps.items()}
