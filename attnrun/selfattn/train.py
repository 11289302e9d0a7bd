"""Training and evaluation of :class:`~attnrun.selfattn.model.PronounResolver`.

The loss is the cross-entropy of the pointer's distribution at the antecedent's head noun, so the
pointer's accuracy and attention are *supervised* figures (the encoder blocks are trained through
that same loss). The ``it_attention`` table reads, for every layer and head, the mean attention
weight from the row of "it" to the column of the antecedent's head noun over the held-out
sentences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from attnrun.averaging import Averager
from attnrun.errors import TrainingError
from attnrun.runs.checkpoint import Checkpointer
from attnrun.selfattn.data import PRONOUN, Example, Vocab, encode_batch
from attnrun.selfattn.model import PronounResolver


@dataclass
class Evaluation:
    """Accuracy and attention statistics of a model on a list of examples."""

    accuracy: float
    it_attention: torch.Tensor  # (layers + 1, heads): mean weight from "it" to the antecedent
    predictions: list[int]  # predicted antecedent position per example


def train(
    model: PronounResolver,
    examples: Sequence[Example],
    vocab: Vocab,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    generator: torch.Generator,
    device: torch.device,
    on_step=None,
    checkpoint: Checkpointer | None = None,
    average: Averager | None = None,
) -> list[float]:
    """Adam on shuffled mini-batches (order drawn from ``generator``); returns the mean loss of
    each epoch. ``on_step(loss)`` is called after every optimiser step (for progress).

    With a ``checkpoint``, training starts after the epochs it holds (``attnrun resume``) and a
    checkpoint is written at the end of every epoch, so an interrupted run continues exactly.
    With an ``average`` (:mod:`attnrun.averaging`) it is updated after every step and epoch and
    kept in the checkpoint; the model still ends with its raw weights (the caller applies it).
    """
    average = average or Averager()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    done, saved, extra = checkpoint.restore(model, opt) if checkpoint else (0, {}, {})
    average.load_state_dict(extra.get("average") or {})
    history = list(saved.get("loss", []))
    model.train()
    for epoch in range(done, epochs):
        order = torch.randperm(len(examples), generator=generator).tolist()
        total, count = 0.0, 0
        for start in range(0, len(order), batch_size):
            chunk = [examples[i] for i in order[start : start + batch_size]]
            b = encode_batch(chunk, vocab)
            out = model(b.tokens.to(device), b.valid_lens.to(device), b.it_index.to(device))
            loss = F.nll_loss(out.log_probs, b.target.to(device))
            if not torch.isfinite(loss):
                raise TrainingError(f"the loss became {loss.item()}; try a smaller train.lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            average.after_step(model)
            total += loss.item() * len(chunk)
            count += len(chunk)
            if on_step is not None:
                on_step(loss.item())
        history.append(total / count)
        average.after_epoch(model, epoch + 1)
        if checkpoint is not None:
            checkpoint.save(epoch + 1, model, opt, {"loss": history}, **_average_state(average))
    model.eval()
    return history


def _average_state(average: Averager) -> dict:
    """The checkpoint's ``extra`` for the averager: nothing without averaging, so checkpoints of
    runs without it stay as they were."""
    return {"average": average.state_dict()} if average.active else {}


@torch.no_grad()
def evaluate(
    model: PronounResolver,
    examples: Sequence[Example],
    vocab: Vocab,
    device: torch.device,
    batch_size: int = 512,
) -> Evaluation:
    """Accuracy of the pointer and the per-layer × per-head attention from "it" to the answer."""
    model.eval()
    correct, mass, preds = 0, None, []
    for start in range(0, len(examples), batch_size):
        b = encode_batch(examples[start : start + batch_size], vocab)
        out = model(b.tokens.to(device), b.valid_lens.to(device), b.it_index.to(device))
        pred = out.log_probs.argmax(dim=1).cpu()
        correct += int((pred == b.target).sum())
        preds += pred.tolist()
        rows = torch.arange(len(b.target))
        # attention (B, L+1, H, T, T) → row of "it", column of the answer → (B, L+1, H)
        it_rows = out.attention.cpu()[rows, :, :, b.it_index]  # (B, L+1, H, T)
        picked = it_rows[rows, :, :, b.target]  # (B, L+1, H)
        batch_sum = picked.sum(dim=0)
        mass = batch_sum if mass is None else mass + batch_sum
    accuracy = correct / len(examples)
    assert mass is not None  # at least one batch
    return Evaluation(accuracy, mass / len(examples), preds)


@dataclass
class SentenceAttention:
    """The model's reading of one sentence."""

    tokens: list[str]
    it_index: int
    probs: torch.Tensor  # (T,) pointer distribution over positions
    attention: torch.Tensor  # (layers + 1, heads, T, T)

    @property
    def prediction(self) -> int:
        return int(self.probs.argmax())

    @property
    def title(self) -> str:
        """The sentence and the supervised pointer's answer, the caption of its figures and
        sample."""
        return (
            f"{' '.join(self.tokens)}  →  supervised pointer: it = {self.tokens[self.prediction]}"
        )


@torch.no_grad()
def read_sentence(
    model: PronounResolver, vocab: Vocab, tokens: Sequence[str], device: torch.device
) -> SentenceAttention:
    """Run the model on one tokenised sentence containing "it" exactly once."""
    ids = torch.tensor([vocab.encode(tokens)], device=device)  # (1, T)
    it = list(tokens).index(PRONOUN)
    model.eval()
    out = model(ids, torch.tensor([len(tokens)], device=device), torch.tensor([it], device=device))
    return SentenceAttention(list(tokens), it, out.log_probs[0].exp().cpu(), out.attention[0].cpu())
