"""Teacher-forced evaluation of a trained model: perplexity and the attention of forced decoding."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from attnrun.translate.batching import Example, make_batch, sorted_chunks
from attnrun.translate.tokenize import PAD


@torch.no_grad()
def perplexity(model, examples: Sequence[Example], batch_size: int, device="cpu") -> float:
    """``exp`` of the mean per-token cross-entropy under teacher forcing (EOS included)."""
    model.eval()
    total, count = 0.0, 0
    for idx in sorted_chunks([len(e[0]) for e in examples], batch_size):
        b = make_batch(examples, idx).to(device)
        logits, _ = model(b.src, b.src_lens, b.tgt_in)
        total += float(
            F.cross_entropy(
                logits.flatten(0, 1), b.tgt_out.flatten(), ignore_index=PAD, reduction="sum"
            )
        )
        count += b.n_tokens
    return math.exp(min(total / max(1, count), 50.0))


@torch.no_grad()
def forced_attention(
    model, examples: Sequence[Example], batch_size: int, device="cpu", kind: str = "cross"
) -> list[torch.Tensor] | None:
    """Attention ``(layers, heads, Tq, Tk)`` of each example when the decoder is fed its
    reference. ``kind="cross"``: rows are the reference tokens incl. EOS, columns the source
    tokens incl. EOS (an RNN decoder has one layer and one head; the Transformer gives every
    layer and head); ``"encoder_self"`` / ``"decoder_self"``: the Transformer's self-attention
    (None for a model without it)."""
    model.eval()
    if kind != "cross" and not hasattr(model, "attention_maps"):
        return None
    out: list[torch.Tensor | None] = [None] * len(examples)
    for idx in sorted_chunks([len(e[0]) for e in examples], batch_size):
        b = make_batch(examples, idx).to(device)
        if hasattr(model, "attention_maps"):
            w = model.attention_maps(b.src, b.src_lens, b.tgt_in)[kind]  # (B, L, H, Tq, Tk)
        else:
            _, w = model(b.src, b.src_lens, b.tgt_in, need_weights=True)  # (B, T, S)
            w = w[:, None, None]
        for row, i in enumerate(idx):
            s, t = examples[i]
            q, k = {"cross": (t, s), "encoder_self": (s, s), "decoder_self": (t, t)}[kind]
            out[i] = w[row, :, :, : len(q), : len(k)].cpu()
    return out  # type: ignore[return-value]
