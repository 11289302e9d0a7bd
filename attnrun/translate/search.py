"""Batched greedy and beam search over a :class:`~attnrun.translate.models.Seq2Seq`.

Both return, per source, hypotheses as :class:`Hypothesis` (ids without BOS/EOS, the attention
weights of each emitted token including EOS ``(len + 1, S)``, and the score).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from attnrun.translate.batching import pad, sorted_chunks
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
    search = _BeamSearch(model, src, src_lens, beam, alpha)
    for _ in range(max_len):
        if not search.step():
            break
    return search.results(n_best)


class _BeamSearch:
    """The state of :func:`beam_search`: per row ``b`` of the batch, ``K`` live hypotheses
    (rows ``b·K .. b·K + K - 1`` of the decoder batch) and its finished ones."""

    def __init__(self, model, src: Tensor, src_lens: Tensor, beam: int, alpha: float) -> None:
        self.model, self.k, self.alpha = model, beam, alpha
        self.batch, device = src.shape[0], src.device
        self.lens = [int(n) for n in src_lens]
        memory, state = model.encode(src, src_lens)
        expand = torch.arange(self.batch, device=device).repeat_interleave(beam)  # (B·K,)
        self.memory, self.state = memory.select(expand), state.select(expand)
        self.y = torch.full((self.batch * beam,), BOS, dtype=torch.long, device=device)
        # only the first copy of each row is live at the start
        self.scores = torch.full((self.batch, beam), float("-inf"), device=device)
        self.scores[:, 0] = 0.0
        self.history = torch.zeros(self.batch * beam, 0, dtype=torch.long, device=device)
        self.att = torch.zeros(self.batch * beam, 0, src.shape[1], device=device)  # (B·K, t, S)
        self.finished: list[list[Hypothesis]] = [[] for _ in range(self.batch)]
        self.active = [True] * self.batch

    def step(self) -> bool:
        """Extend every live hypothesis by one token; False when every row is done."""
        logits, self.state, w = self.model.decoder.step(self.y, self.memory, self.state)
        logp = logits.log_softmax(-1)  # (B·K, V)
        vocab = logp.shape[-1]
        cand = (self.scores.view(-1, 1) + logp).view(self.batch, self.k * vocab)
        top_scores, top_idx = cand.topk(min(2 * self.k, self.k * vocab), dim=1)  # (B, 2K)
        origin, token = (top_idx // vocab).tolist(), (top_idx % vocab).tolist()
        rows, tokens, scores = [], [], []
        for b, ranked in enumerate(top_scores.tolist()):
            r, t, s = self._next_beam(b, ranked, origin[b], token[b], w)
            rows += r
            tokens += t
            scores += s
        if not any(self.active):
            return False
        device = self.y.device
        index = torch.tensor(rows, device=device)
        self.y = torch.tensor(tokens, device=device)
        self.scores = torch.tensor(scores, device=device).view(self.batch, self.k)
        self.history = torch.cat([self.history.index_select(0, index), self.y[:, None]], 1)
        self.att = torch.cat(
            [self.att.index_select(0, index), w.index_select(0, index)[:, None]], 1
        )
        self.state = self.state.select(index)
        return True

    def _next_beam(self, b: int, ranked: list[float], origin: list[int], token: list[int], w):
        """Row ``b``'s new beam (decoder rows, tokens, scores), finishing the EOS extensions."""
        k = self.k
        rows: list[int] = []
        toks: list[int] = []
        scs: list[float] = []
        for rank, sc in enumerate(ranked):
            if sc == float("-inf"):
                break
            src_row, tok = b * k + origin[rank], token[rank]
            if tok == EOS:
                if rank < k and self.active[b]:
                    weights = torch.cat([self.att[src_row], w[src_row : src_row + 1]], 0)
                    self._finish(b, self.history[src_row].tolist(), weights, sc, extra=1)
                continue
            if len(rows) < k:
                rows.append(src_row)
                toks.append(tok)
                scs.append(sc)
        if len(self.finished[b]) >= k:
            self.active[b] = False
        pad = k - len(rows)  # pad a row's beam with dead copies
        rows, toks, scs = rows + [b * k] * pad, toks + [EOS] * pad, scs + [float("-inf")] * pad
        if not self.active[b]:
            scs = [float("-inf")] * k
        return rows, toks, scs

    def _finish(self, b: int, ids: list[int], weights: Tensor, logp: float, extra: int) -> None:
        """A finished hypothesis of row ``b``: ``extra`` is 1 when it ended with EOS."""
        score = logp / length_penalty(len(ids) + extra, self.alpha)
        self.finished[b].append(Hypothesis(ids, weights[:, : self.lens[b]].cpu(), score))

    def results(self, n_best: int) -> list[list[Hypothesis]]:
        """The ``n_best`` best per row; rows that ran out of steps keep their live hypotheses."""
        for b in range(self.batch):
            if len(self.finished[b]) < n_best:
                for j, sc in enumerate(self.scores[b].tolist()):
                    if sc != float("-inf"):
                        row = b * self.k + j
                        self._finish(b, self.history[row].tolist(), self.att[row], sc, extra=0)
            self.finished[b].sort(key=lambda h: h.score, reverse=True)
        return [f[:n_best] for f in self.finished]


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
