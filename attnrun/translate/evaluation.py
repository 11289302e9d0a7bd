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


KINDS = ("cross", "encoder_self", "decoder_self")


@torch.no_grad()
def forced_maps(
    model, examples: Sequence[Example], batch_size: int, device="cpu", kinds=KINDS
) -> dict[str, list[torch.Tensor]]:
    """Attention ``(layers, heads, Tq, Tk)`` of each example when the decoder is fed its
    reference, for each of ``kinds`` the model has, from one forward pass per batch. ``cross``:
    rows are the reference tokens incl. EOS, columns the source tokens incl. EOS (an RNN decoder
    has one layer and one head; the Transformer gives every layer and head); ``encoder_self`` /
    ``decoder_self``: the Transformer's self-attention (absent for a model without it)."""
    model.eval()
    maps = hasattr(model, "attention_maps")
    kinds = [k for k in kinds if maps or k == "cross"]
    out: dict[str, list] = {k: [None] * len(examples) for k in kinds}
    if not kinds:
        return out
    for idx in sorted_chunks([len(e[0]) for e in examples], batch_size):
        b = make_batch(examples, idx).to(device)
        if maps:
            ws = model.attention_maps(b.src, b.src_lens, b.tgt_in)  # kind -> (B, L, H, Tq, Tk)
        else:
            _, w = model(b.src, b.src_lens, b.tgt_in, need_weights=True)  # (B, T, S)
            ws = {"cross": w[:, None, None]}
        for row, i in enumerate(idx):
            s, t = examples[i]
            for kind in kinds:
                q, k = {"cross": (t, s), "encoder_self": (s, s), "decoder_self": (t, t)}[kind]
                out[kind][i] = ws[kind][row, :, :, : len(q), : len(k)].cpu()
    return out


def forced_attention(
    model, examples: Sequence[Example], batch_size: int, device="cpu", kind: str = "cross"
) -> list[torch.Tensor] | None:
    """:func:`forced_maps` of one kind (None when the model has no such attention)."""
    return forced_maps(model, examples, batch_size, device, (kind,)).get(kind)
