"""The training loop: teacher forcing, Adam, gradient clipping, validation BLEU, early stopping.

Per epoch: length-bucketed batches (:func:`~attnrun.translate.batching.bucket_batches`), a loss
that is the mean cross-entropy per target token (optionally label-smoothed), then greedy decoding of
the validation split scored with sacreBLEU. The best epoch's weights are kept in memory and in
``model.pt``. The learning rate follows ``train.lr_schedule``: ``plateau`` multiplies it by
``train.lr_decay`` after an epoch without progress; ``linear`` and ``cosine`` anneal it to 0 over
the run's budget — whichever of ``train.epochs`` and ``train.max_minutes`` runs out first
(budget-aware annealing, Li et al. 2020, "Budgeted training"). A time budget
(``train.max_minutes``) stops after the current batch. A non-finite loss
raises :class:`~attnrun.errors.TrainingError`; ``model.pt`` then still holds the last good epoch.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from attnrun.errors import TrainingError
from attnrun.translate.artifacts import CHECKPOINT, save_weights
from attnrun.translate.batching import Example, bucket_batches, make_batch
from attnrun.translate.evaluation import perplexity, translate_texts
from attnrun.translate.loss import linear_cross_entropy
from attnrun.translate.metrics import corpus_scores

LR_SCHEDULES = ("plateau", "linear", "cosine")


def lr_factor(schedule: str, progress: float) -> float:
    """The learning-rate multiplier at ``progress`` ∈ [0, 1] of the budget (1 for ``plateau``,
    whose decay is applied per epoch)."""
    p = min(max(progress, 0.0), 1.0)
    if schedule == "linear":
        return 1.0 - p
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * p))
    return 1.0


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_val_bleu: float = -1.0
    tokens: int = 0
    seconds: float = 0.0
    stopped: str = "epochs"  # epochs | early_stopping | time_budget

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def token_loss(model, features, targets, label_smoothing: float = 0.0, bf16: bool = False):
    """Mean (label-smoothed) cross-entropy per target token of ``model.decoder.out(features)``:
    features ``(N, H_out)``, targets ``(N,)`` (pads already removed)."""
    out = model.decoder.out
    return linear_cross_entropy(
        features,
        out.weight,
        out.bias,
        targets,
        label_smoothing,
        compute_dtype=torch.bfloat16 if bf16 else torch.float32,
    )


def training_loss(model, batch, label_smoothing: float = 0.0, bf16: bool = False):
    """The loss of one training batch under teacher forcing (bf16: autocast matrix products)."""
    with torch.autocast(batch.src.device.type, torch.bfloat16, enabled=bf16):
        feats, targets = model.token_features(
            batch.src, batch.src_lens, batch.tgt_in, batch.tgt_out
        )
    return token_loss(model, feats, targets, label_smoothing, bf16)


def train_model(
    model,
    train_ex: list[Example],
    val_pairs,
    val_ex: list[Example],
    src_tok,
    tgt_tok,
    cfg,
    ctx,
    out_dir: Path,
) -> TrainResult:
    tc = cfg.train
    device = ctx.device
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr)
    result = TrainResult()
    best_state = None
    bad_epochs = 0
    best_val_loss = math.inf
    start = time.monotonic()
    deadline = start + 60 * tc.max_minutes if tc.max_minutes else math.inf
    annealed = tc.lr_schedule != "plateau"
    for epoch in range(1, tc.epochs + 1):
        model.train()
        batches = bucket_batches(train_ex, tc.batch_size, ctx.generator)
        loss_sum, loss_tokens = 0.0, 0
        with ctx.reporter.task(f"epoch {epoch}", len(batches)) as task:
            for i, idx in enumerate(batches):
                t0 = time.perf_counter()
                if annealed:
                    progress = max(
                        (epoch - 1 + i / len(batches)) / tc.epochs,
                        (time.monotonic() - start) / (deadline - start),
                    )
                    for group in opt.param_groups:
                        group["lr"] = tc.lr * lr_factor(tc.lr_schedule, progress)
                b = make_batch(train_ex, idx).to(device)
                loss = training_loss(model, b, tc.label_smoothing, tc.precision == "bf16")
                if not torch.isfinite(loss):
                    where = (
                        f"model.pt keeps epoch {result.best_epoch}"
                        if best_state is not None
                        else "no checkpoint was saved yet"
                    )
                    raise TrainingError(
                        f"loss became {loss.item()} at epoch {epoch}, batch {i + 1}; training "
                        f"stopped ({where}); try a lower train.lr or train.clip"
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if tc.clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), tc.clip)
                opt.step()
                dt = time.perf_counter() - t0
                result.tokens += b.n_tokens
                result.seconds += dt
                loss_sum += loss.item() * b.n_tokens
                loss_tokens += b.n_tokens
                task.advance(1, loss=round(loss.item(), 3), tok_s=round(b.n_tokens / dt))
                if time.monotonic() > deadline:
                    result.stopped = "time_budget"
                    break
        val_hyps, _ = translate_texts(
            model,
            src_tok,
            tgt_tok,
            [s for s, _ in val_pairs],
            max_len=cfg.data.max_len,
            decode_max_len=cfg.decode.max_len,
            batch_size=max(tc.batch_size, 128),
            device=device,
        )
        val_bleu = float(corpus_scores(val_hyps, [t for _, t in val_pairs])["bleu_lowercase"])
        val_loss = math.log(perplexity(model, val_ex, 128, device))
        row = {
            "epoch": epoch,
            "train_loss": loss_sum / max(1, loss_tokens),
            "val_loss": val_loss,
            "val_bleu": val_bleu,
            "tokens_per_s": result.tokens_per_s,
            "lr": opt.param_groups[0]["lr"],
        }
        result.history.append(row)
        ctx.reporter.info(
            f"epoch {epoch}: train loss {row['train_loss']:.3f}, val loss {val_loss:.3f}, "
            f"val BLEU {val_bleu:.2f}, {result.tokens_per_s:.0f} target tokens/s"
        )
        # better BLEU, or equal BLEU (e.g. 100 on toy) with a lower validation loss
        if (val_bleu, -val_loss) > (result.best_val_bleu, -best_val_loss):
            result.best_val_bleu, result.best_epoch, bad_epochs = val_bleu, epoch, 0
            best_val_loss = val_loss
            best_state = copy.deepcopy(model.state_dict())
            save_weights(model, out_dir / CHECKPOINT)
        else:
            bad_epochs += 1
            if not annealed:
                for group in opt.param_groups:  # reduce on plateau
                    group["lr"] *= tc.lr_decay
        ctx.record.update(epoch=epoch, val_bleu=val_bleu, best_epoch=result.best_epoch)
        if result.stopped == "time_budget":
            break
        if tc.patience and bad_epochs >= tc.patience:
            result.stopped = "early_stopping"
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return result
