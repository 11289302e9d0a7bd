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

from attnrun.runs import files
from attnrun.translate.batching import encode_sources
from attnrun.translate.config import DecodeConfig, TranslateConfig
from attnrun.translate.models import Seq2Seq, build_model
from attnrun.translate.search import Hypothesis, translate_ids
from attnrun.translate.tokenize import Tokenizer, load_tokenizer
from attnrun.validation import typed_config

__all__ = ["Translator"]


@dataclass
class Translator:
    """``model`` with its tokenizers; ``max_len`` source ids per sentence (incl. EOS)."""

    model: Seq2Seq
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
        src_tok, tgt_tok = load_tokenizer(run_dir, "src"), load_tokenizer(run_dir, "tgt")
        model = build_model(cfg, src_tok.size, tgt_tok.size)
        files.load_weights(model, run_dir)
        device = torch.device(device)
        return cls(model.to(device).eval(), src_tok, tgt_tok, cfg.data.max_len, cfg.decode, device)

    @property
    def attends(self) -> bool:
        """Whether the decoder attends to the source (``decoder=none`` does not)."""
        return getattr(self.model.decoder, "has_attention", True)

    def with_decode(self, **changes) -> Translator:
        """A translator with some decode settings changed (``beam=5``, ``n_best=1``, ...)."""
        given = {k: v for k, v in changes.items() if v is not None}
        return replace(self, decode=replace(self.decode, **given)) if given else self

    def translate(self, texts: Sequence[str]) -> tuple[list[str], list[list[Hypothesis]]]:
        """Detokenised best translations and every hypothesis (``decode.n_best`` per text)."""
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
        return [self.tgt_tok.decode(h[0].ids) for h in hyps], hyps

    def attention_samples(
        self, texts: Sequence[str], hyps: Sequence[Hypothesis], name: str = "sentence"
    ) -> list[files.AttentionSample]:
        """Cross-attention samples (emitted target pieces × source pieces, EOS on both sides
        where decoding reached it) in the run-file format report and the viewer read."""
        samples = []
        for i, (text, h) in enumerate(zip(texts, hyps)):
            n_src = h.weights.shape[1]
            src = self.src_tok.pieces(self.src_tok.encode(text)[: n_src - 1]) + ["<eos>"]
            ended = h.weights.shape[0] > len(h.ids)  # False when decoding stopped at max_len
            tgt = self.tgt_tok.pieces(h.ids) + (["<eos>"] if ended else [])
            samples.append(
                files.AttentionSample(
                    name=f"{name} {i}",
                    kind="cross",
                    queries=tgt,
                    keys=src,
                    weights=h.weights[: len(tgt), : len(src)],
                    layer_names=["attention"],
                    title=self.tgt_tok.decode(h.ids),
                )
            )
        return samples
