"""Ids → padded tensors: length-bucketed training batches and order-keeping eval batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from attnrun.translate.tokenize import BOS, EOS, PAD, UNK, Tokenizer

Example = tuple[list[int], list[int]]


def encode_pairs(pairs, src_tok: Tokenizer, tgt_tok: Tokenizer, max_len: int) -> list[Example]:
    """``(source ids + EOS, target ids + EOS)``, each cut to ``max_len`` ids including EOS."""
    return [
        (src_tok.encode(s)[: max_len - 1] + [EOS], tgt_tok.encode(t)[: max_len - 1] + [EOS])
        for s, t in pairs
    ]


def encode_sources(texts: Sequence[str], src_tok: Tokenizer, max_len: int) -> list[list[int]]:
    return [src_tok.encode(s)[: max_len - 1] + [EOS] for s in texts]


def pad(seqs: Sequence[Sequence[int]]) -> Tensor:
    """``(B, max_len)`` long tensor, padded with :data:`PAD`."""
    width = max(len(s) for s in seqs)
    out = torch.full((len(seqs), width), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out


@dataclass
class Batch:
    """Padded tensors. src ``(B, S)``, src_lens ``(B,)``, tgt_in ``(B, T)`` = BOS + target[:-1],
    tgt_out ``(B, T)`` = target (ending in EOS); ``n_tokens`` counts non-pad target tokens."""

    src: Tensor
    src_lens: Tensor
    tgt_in: Tensor
    tgt_out: Tensor
    n_tokens: int
    index: list[int]

    def to(self, device) -> Batch:
        return Batch(
            self.src.to(device),
            self.src_lens.to(device),
            self.tgt_in.to(device),
            self.tgt_out.to(device),
            self.n_tokens,
            self.index,
        )


def make_batch(examples: Sequence[Example], index: list[int]) -> Batch:
    srcs = [examples[i][0] for i in index]
    tgts = [examples[i][1] for i in index]
    tgt_out = pad(tgts)
    tgt_in = torch.cat([torch.full((len(index), 1), BOS, dtype=torch.long), tgt_out[:, :-1]], 1)
    return Batch(
        pad(srcs),
        torch.tensor([len(s) for s in srcs]),
        tgt_in,
        tgt_out,
        sum(len(t) for t in tgts),
        list(index),
    )


def drop_words(src: Tensor, p: float) -> Tensor:
    """Source word dropout: each source id but :data:`PAD` and :data:`EOS` becomes :data:`UNK`
    with probability ``p``; src ``(B, S)`` → ``(B, S)``, a new tensor.

    Training only, a regulariser for small corpora (Sennrich & Zhang 2019; Araabi & Monz 2020,
    "source word dropout"): the model learns to translate around a word it cannot read, which is
    what ``<unk>`` asks of it at test time. Draws from torch's global generator, which every
    checkpoint saves, so a resumed run drops the same words.
    """
    if p <= 0:
        return src
    hit = torch.rand(src.shape, device=src.device) < p
    return src.masked_fill(hit & (src != PAD) & (src != EOS), UNK)


def bucket_batches(
    examples: Sequence[Example], batch_size: int, generator: torch.Generator | None = None
) -> list[list[int]]:
    """Index lists of similar-length examples (less padding), in a shuffled batch order.

    Examples are shuffled, then sorted by (source, target) length inside pools of 50 batches, cut
    into batches, and the batches shuffled: lengths within a batch are close, order still random.
    """
    n = len(examples)
    perm = torch.randperm(n, generator=generator).tolist()
    pool = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, n, pool):
        chunk = sorted(
            perm[start : start + pool], key=lambda i: (len(examples[i][0]), len(examples[i][1]))
        )
        batches += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
    order = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in order]


def sorted_chunks(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Index lists in length order (for decoding); callers put results back by index."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    for j in range(0, len(order), batch_size):
        yield order[j : j + batch_size]
