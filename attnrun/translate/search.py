"""Batched greedy and beam search over a :class:`~attnrun.translate.models.Seq2Seq`.

Both return, per source, hypotheses as :class:`Hypothesis` (ids without BOS/EOS, the attention
weights of each emitted token including EOS ``(len + 1, S)``, and the score).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from attnrun.translate.tokenize import BOS, EOS


@dataclass
class Hypothesis:
    ids: list[int]
    weights: Tensor  # (len(ids) + 1, S): rows = emitted tokens (incl. EOS), cols = source tokens
    score: float  # log-probability (beam: divided by the length penalty)


@torch.no_grad()
def greedy(model, src: Tensor, src_lens: Tensor, max_len: int) -> list[Hypothesis]:
    """Arg-max decoding of a batch: ``src (B, S)`` → one hypothesis per row."""
    memory, state = model.encode(src, src_lens)
    batch = src.shape[0]
    y = torch.full((batch,), BOS, dtype=torch.long, device=src.device)
    done = torch.zeros(batch, dtype=torch.bool, device=src.device)
    tokens, weights, scores = [], [], torch.zeros(batch, device=src.device)
    for _ in range(max_len):
        logits, state, w = model.decoder.step(y, memory, state)
        logp = logits.log_softmax(-1)
        y = logp.argmax(-1)
        scores += torch.where(done, 0.0, logp.gather(1, y[:, None]).squeeze(1))
        tokens.append(y)
        weights.append(w)
        done |= y == EOS
        if bool(done.all()):
            break
    toks = torch.stack(tokens, 1).tolist()  # (B, steps)
    ws = torch.stack(weights, 1)  # (B, steps, S)
    out = []
    for b in range(batch):
        ids = toks[b]
        n = ids.index(EOS) if EOS in ids else len(ids)
        out.append(Hypothesis(ids[:n], ws[b, : n + 1, : int(src_lens[b])].cpu(), float(scores[b])))
    return out


def length_penalty(length: int, alpha: float) -> float:
    """GNMT's ``((5 + |Y|) / 6) ** α`` (Wu et al. 2016, eq. 14); α = 0 is no penalty."""
    return ((5.0 + length) / 6.0) ** alpha


@torch.no_grad()
def beam_search(
    model,
    src: Tensor,
    src_lens: Tensor,
    max_len: int,
    beam: int = 4,
    alpha: float = 0.0,
    n_best: int = 1,
) -> list[list[Hypothesis]]:
    """Batched beam search: ``beam`` live hypotheses per source, all rows in one ``(B·K)`` batch.

    Per step, the top ``2K`` extensions of each row are ranked; those ending in EOS among the first
    ``K`` ranks are finished (scored ``logp / length_penalty``), and the first ``K`` that do not end
    become the new beam. A row stops when it has ``K`` finished hypotheses (with ``K = 1`` this is
    exactly greedy search) or after ``max_len`` steps. Returns the ``n_best`` best per source.
    """
    k = beam
    batch, device = src.shape[0], src.device
    memory, state = model.encode(src, src_lens)
    expand = torch.arange(batch, device=device).repeat_interleave(k)  # (B·K,)
    memory, state = memory.select(expand), state.select(expand)
    y = torch.full((batch * k,), BOS, dtype=torch.long, device=device)
    # only the first copy of each row is live at the start
    scores = torch.full((batch, k), float("-inf"), device=device)
    scores[:, 0] = 0.0
    history = torch.zeros(batch * k, 0, dtype=torch.long, device=device)
    att = torch.zeros(batch * k, 0, src.shape[1], device=device)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    active = [True] * batch
    for _ in range(max_len):
        logits, state, w = model.decoder.step(y, memory, state)
        logp = logits.log_softmax(-1)  # (B·K, V)
        vocab = logp.shape[-1]
        cand = (scores.view(-1, 1) + logp).view(batch, k * vocab)
        top_scores, top_idx = cand.topk(min(2 * k, k * vocab), dim=1)  # (B, 2K)
        origin = (top_idx // vocab).tolist()
        token = (top_idx % vocab).tolist()
        top_list = top_scores.tolist()
        new_rows, new_tokens, new_scores = [], [], []
        for b in range(batch):
            rows, toks, scs = [], [], []
            for rank, sc in enumerate(top_list[b]):
                if sc == float("-inf"):
                    break
                src_row = b * k + origin[b][rank]
                tok = token[b][rank]
                if tok == EOS:
                    if rank < k and active[b]:
                        ids = history[src_row].tolist()
                        weights = torch.cat([att[src_row], w[src_row : src_row + 1]], 0)
                        finished[b].append(
                            Hypothesis(
                                ids,
                                weights[:, : int(src_lens[b])].cpu(),
                                sc / length_penalty(len(ids) + 1, alpha),
                            )
                        )
                    continue
                if len(rows) < k:
                    rows.append(src_row)
                    toks.append(tok)
                    scs.append(sc)
            if len(finished[b]) >= k:
                active[b] = False
            while len(rows) < k:  # pad a row's beam with dead copies
                rows.append(b * k)
                toks.append(EOS)
                scs.append(float("-inf"))
            if not active[b]:
                scs = [float("-inf")] * k
            new_rows += rows
            new_tokens += toks
            new_scores += scs
        if not any(active):
            break
        index = torch.tensor(new_rows, device=device)
        y = torch.tensor(new_tokens, device=device)
        scores = torch.tensor(new_scores, device=device).view(batch, k)
        history = torch.cat([history.index_select(0, index), y[:, None]], 1)
        att = torch.cat([att.index_select(0, index), w.index_select(0, index)[:, None]], 1)
        state = state.select(index)
    for b in range(batch):  # rows that ran out of steps: keep their live hypotheses
        if len(finished[b]) < n_best:
            for j in range(k):
                sc = float(scores[b, j])
                if sc == float("-inf"):
                    continue
                row = b * k + j
                ids = history[row].tolist()
                finished[b].append(
                    Hypothesis(
                        ids,
                        att[row][:, : int(src_lens[b])].cpu(),
                        sc / length_penalty(len(ids), alpha),
                    )
                )
        finished[b].sort(key=lambda h: h.score, reverse=True)
    return [f[:n_best] for f in finished]


def translate_ids(
    model,
    sources: list[list[int]],
    *,
    batch_size: int,
    max_len: int,
    beam: int = 1,
    alpha: float = 0.0,
    n_best: int = 1,
    device: torch.device | str = "cpu",
) -> list[list[Hypothesis]]:
    """Decode id lists (each ending in EOS) in length-sorted batches; results in input order."""
    from attnrun.translate.batching import pad, sorted_chunks

    model.eval()
    results: list[list[Hypothesis] | None] = [None] * len(sources)
    for idx in sorted_chunks([len(s) for s in sources], batch_size):
        src = pad([sources[i] for i in idx]).to(device)
        lens = torch.tensor([len(sources[i]) for i in idx], device=device)
        if beam == 1 and n_best == 1:
            hyps = [[h] for h in greedy(model, src, lens, max_len)]
        else:
            hyps = beam_search(model, src, lens, max_len, beam, alpha, n_best)
        for i, h in zip(idx, hyps):
            results[i] = h
    return results  # type: ignore[return-value]
