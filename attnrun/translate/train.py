"""The training loop: teacher forcing, Adam, gradient clipping, validation BLEU, early stopping,
and a resumable checkpoint that lets ``attnrun resume`` continue exactly.

Per epoch: length-bucketed batches (:func:`~attnrun.translate.batching.bucket_batches`), a loss
that is the mean cross-entropy per target token (optionally label-smoothed), then greedy decoding
of the validation split scored with sacreBLEU. The best epoch's weights are kept in memory, in
``model.pt`` and in the checkpoint. The learning rate follows ``train.lr_schedule``
(:mod:`attnrun.translate.schedules`). A time budget (``train.max_minutes``, counted over every
resume) stops after the current batch. A non-finite loss raises
:class:`~attnrun.errors.TrainingError`; ``model.pt`` then still holds the last good epoch.

Resuming: :class:`TrainState` is everything the loop needs to go on — epochs and batches done,
the epoch's running loss, the best-so-far figures and counters, the data order's RNG state at the
start of the epoch (the epoch's batches are drawn again from it), training time — and is saved
with the model, the optimizer, the best weights and every RNG at the end of each epoch and every
``train.checkpoint_minutes`` inside one (:class:`~attnrun.runs.checkpoint.Checkpointer`).

Averaging (``train.average``, :mod:`attnrun.averaging`): the averaged weights are what validation
scores, early stopping and best-epoch selection read and what ``model.pt`` holds; the raw weights
are validated too (``raw_val_bleu`` / ``raw_val_loss`` in ``history.json``) and stay the model
that trains, in the checkpoint beside the averager's state, so a resume averages exactly on. The
``plateau`` schedule reads the raw weights' validation: the rate is the raw model's, and it halves
after an epoch in which the raw weights did not improve on their best.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from attnrun.averaging import make_averager
from attnrun.errors import TrainingError
from attnrun.runs import files
from attnrun.throughput import watch_for
from attnrun.translate.batching import Example, bucket_batches, drop_words, make_batch
from attnrun.translate.evaluation import perplexity
from attnrun.translate.loss import linear_cross_entropy
from attnrun.translate.metrics import corpus_scores
from attnrun.translate.schedules import decays_on_plateau, lr_factor, precisions
from attnrun.translate.translator import Translator

log = logging.getLogger("attnrun")

__all__ = ["TrainState", "Trainer", "lr_factor", "token_loss", "training_loss"]


@dataclass
class TrainState:
    """Where training stands; saved in every checkpoint (see the module docstring)."""

    epoch: int = 0  # epochs completed
    step: int = 0  # batches done of epoch ``epoch + 1``
    loss_sum: float = 0.0  # of the current epoch, weighted by tokens
    loss_tokens: int = 0
    tokens: int = 0  # target tokens trained on, all epochs
    seconds: float = 0.0  # time spent in training steps (for tokens/s)
    elapsed: float = 0.0  # training wall time over every resume (for the time budget)
    best_val_bleu: float = -1.0
    best_val_loss: float = math.inf
    best_raw_val_bleu: float = -1.0  # with train.average: the raw weights' best (plateau reads it)
    best_raw_val_loss: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped: str = ""  # "" while training; then epochs | early_stopping | time_budget
    history: list[dict] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def numbers(self) -> dict:
        """The scalar fields, for the checkpoint (history is stored on its own)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "history"}


def _improves(bleu: float, loss: float, best_bleu: float, best_loss: float) -> bool:
    """Better validation BLEU, or equal BLEU (e.g. 100 on toy) with a lower validation loss."""
    return (bleu, -loss) > (best_bleu, -best_loss)


def token_loss(model, features, targets, label_smoothing: float = 0.0, dtype=None):
    """Mean (label-smoothed) cross-entropy per target token of ``model.decoder.out(features)``:
    features ``(N, H_out)``, targets ``(N,)`` (pads already removed); ``dtype`` of the products."""
    out = model.decoder.out
    return linear_cross_entropy(
        features, out.weight, out.bias, targets, label_smoothing, compute_dtype=dtype
    )


def training_loss(model, batch, label_smoothing: float = 0.0, dtype=None):
    """The loss of one training batch under teacher forcing (``dtype``: autocast products)."""
    with torch.autocast(batch.src.device.type, dtype or torch.bfloat16, enabled=dtype is not None):
        feats, targets = model.token_features(
            batch.src, batch.src_lens, batch.tgt_in, batch.tgt_out
        )
    return token_loss(model, feats, targets, label_smoothing, dtype or torch.float32)


def make_optimizer(model: torch.nn.Module, tc) -> torch.optim.Optimizer:
    """Adam with ``train.adam_beta2``; AdamW (decoupled decay) when ``train.weight_decay`` > 0.
    Fused: one kernel for every parameter (the same update; +5% a training step, measured)."""
    betas = (0.9, tc.adam_beta2)
    if tc.weight_decay > 0:
        return torch.optim.AdamW(
            model.parameters(), lr=tc.lr, betas=betas, weight_decay=tc.weight_decay, fused=True
        )
    return torch.optim.Adam(model.parameters(), lr=tc.lr, betas=betas, fused=True)


class Trainer:
    """Trains ``translator.model`` on ``train_ex``, validating on ``val_pairs`` / ``val_ex``.

    ``run()`` restores the checkpoint when the run is resumed, trains to the end of the budget,
    loads the best epoch's weights and returns the final :class:`TrainState`.
    """

    def __init__(self, translator: Translator, train_ex, val_pairs, val_ex, cfg, ctx) -> None:
        self.translator, self.model = translator, translator.model
        self.train_ex: list[Example] = train_ex
        self.val_pairs, self.val_ex = val_pairs, val_ex
        self.tc, self.ctx = cfg.train, ctx
        self.dtype = precisions.get(self.tc.precision)
        self.annealed = not decays_on_plateau(self.tc.lr_schedule)
        self.budget = 60 * self.tc.max_minutes if self.tc.max_minutes else math.inf
        self.model.to(ctx.device)
        self.opt = make_optimizer(self.model, self.tc)
        self.state = TrainState()
        self.average = make_averager(self.tc.average)
        self.best: dict[str, torch.Tensor] | None = None
        self.epoch_rng: torch.Tensor | None = None  # data RNG at the start of the epoch
        # one line suggesting train.threads=1 when CPU threads collapse on a busy machine
        self.watch = watch_for(ctx.device, "target tokens")

    # 1. the loop -------------------------------------------------------------------------------

    def run(self) -> TrainState:
        self._restore()
        st = self.state
        self._clock = time.monotonic() - st.elapsed
        self._last_save = time.monotonic()
        while not st.stopped:
            self._epoch()
            self._end_epoch()
            self._save()
        if self.best is not None:
            self.model.load_state_dict(self.best)
        return st

    def _epoch(self) -> None:
        """Train on the batches of epoch ``epoch + 1`` from batch ``step`` on."""
        st, gen = self.state, self.ctx.generator
        if st.step == 0:
            self.epoch_rng = gen.get_state()
        else:  # resumed inside the epoch: draw the same batches again
            gen.set_state(self.epoch_rng)
        batches = bucket_batches(self.train_ex, self.tc.batch_size, gen)
        self.model.train()
        with self.ctx.reporter.task(f"epoch {st.epoch + 1}", len(batches)) as task:
            if st.step:
                task.advance(st.step)
            while st.step < len(batches):
                loss, n, dt = self._step(batches, st.step)
                st.step += 1
                task.advance(1, loss=round(loss, 3), tok_s=round(n / dt))
                if hint := self.watch.observe(n, dt):
                    self.ctx.reporter.info(hint)
                    log.warning(hint)  # run.log keeps it under -q too
                if self._elapsed() > self.budget:
                    st.stopped = "time_budget"
                    break
                if time.monotonic() - self._last_save >= 60 * self.tc.checkpoint_minutes:
                    self._save()

    def _step(self, batches: list[list[int]], i: int) -> tuple[float, int, float]:
        """One optimizer step on batch ``i``; returns (loss, target tokens, seconds)."""
        st, tc = self.state, self.tc
        t0 = time.perf_counter()
        if self.annealed:
            share = max((st.epoch + i / len(batches)) / tc.epochs, self._elapsed() / self.budget)
            step = st.epoch * len(batches) + i + 1
            factor = lr_factor(tc.lr_schedule, share, step, tc.warmup_steps, tc.cooldown)
            for group in self.opt.param_groups:
                group["lr"] = tc.lr * factor
        b = make_batch(self.train_ex, batches[i])
        b.src = drop_words(b.src, tc.word_dropout)  # on the CPU: the checkpoint's generator
        b = b.to(self.ctx.device)
        loss = training_loss(self.model, b, tc.label_smoothing, self.dtype)
        if not torch.isfinite(loss):
            where = f"model.pt keeps epoch {st.best_epoch}" if st.best_epoch else "nothing saved"
            raise TrainingError(
                f"loss became {loss.item()} at epoch {st.epoch + 1}, batch {i + 1}; training "
                f"stopped ({where}); try a lower train.lr or train.clip"
            )
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if tc.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc.clip)
        self.opt.step()
        self.average.after_step(self.model)
        dt = time.perf_counter() - t0
        value = loss.item()
        st.tokens += b.n_tokens
        st.seconds += dt
        st.loss_sum += value * b.n_tokens
        st.loss_tokens += b.n_tokens
        return value, b.n_tokens, dt

    # 2. validation, selection, stopping --------------------------------------------------------

    def _end_epoch(self) -> None:
        """Validate (the averaged weights with ``train.average``, and the raw ones beside them),
        keep the best weights, decay or stop; the epoch is then complete."""
        st, tc = self.state, self.tc
        self.average.after_epoch(self.model, st.epoch + 1)
        row = {"epoch": st.epoch + 1, "train_loss": st.loss_sum / max(1, st.loss_tokens)}
        raw_better = None
        if self.average.active:
            raw_bleu, raw_loss = self._validate()
            row.update(raw_val_loss=raw_loss, raw_val_bleu=raw_bleu)
            raw_better = _improves(raw_bleu, raw_loss, st.best_raw_val_bleu, st.best_raw_val_loss)
            if raw_better:
                st.best_raw_val_bleu, st.best_raw_val_loss = raw_bleu, raw_loss
        with self.average.applied(self.model):
            val_bleu, val_loss = self._validate()
            better = _improves(val_bleu, val_loss, st.best_val_bleu, st.best_val_loss)
            if better:
                self.best = files.state_dict_cpu(self.model)
        row.update(val_loss=val_loss, val_bleu=val_bleu, **self.average.span())
        row.update(tokens_per_s=st.tokens_per_s, lr=self.opt.param_groups[0]["lr"])
        st.history.append(row)
        st.epoch, st.step, st.loss_sum, st.loss_tokens = st.epoch + 1, 0, 0.0, 0
        raw = f" (raw weights {row['raw_val_bleu']:.2f})" if self.average.active else ""
        self.ctx.reporter.info(
            f"epoch {st.epoch}: train loss {row['train_loss']:.3f}, val loss {val_loss:.3f}, "
            f"val BLEU {val_bleu:.2f}{raw}, {st.tokens_per_s:.0f} target tokens/s"
        )
        if better:
            st.best_val_bleu, st.best_val_loss, st.best_epoch = val_bleu, val_loss, st.epoch
            st.bad_epochs = 0
            assert self.best is not None  # kept above whenever ``better``
            files.save_weights(self.ctx.out_dir, self.best)
        else:
            st.bad_epochs += 1
        # reduce on plateau of the weights that train: with averaging the raw ones, since the
        # average lags and smooths them and hides the plateaus the rule reacts to (issue 21: an
        # RNN recipe whose averaged validation never stalled never had its rate halved)
        if not self.annealed and not (better if raw_better is None else raw_better):
            for group in self.opt.param_groups:
                group["lr"] *= tc.lr_decay
        self.ctx.record.update(epoch=st.epoch, val_bleu=val_bleu, best_epoch=st.best_epoch)
        if not st.stopped and tc.patience and st.bad_epochs >= tc.patience:
            st.stopped = "early_stopping"
        if not st.stopped and st.epoch >= tc.epochs:
            st.stopped = "epochs"

    def weights_figures(self) -> dict:
        """What ``metrics.json`` says about the weights its figures come from: ``weights`` in
        words, and with averaging ``average``, the best epoch's ``averaged_epochs`` or
        ``ema_steps``, and ``raw_val_bleu``, the raw weights' validation BLEU at that epoch."""
        st = self.state
        row = st.history[st.best_epoch - 1] if st.best_epoch else {}
        span = {k: row[k] for k in ("averaged_epochs", "ema_steps") if k in row}
        out: dict[str, Any] = {"weights": self.average.describe(st.best_epoch, span)}
        if self.average.active:
            out.update(average=self.tc.average, **span, raw_val_bleu=row.get("raw_val_bleu"))
        return out

    def _validate(self) -> tuple[float, float]:
        """Greedy validation BLEU (lowercased) and validation loss (nats per token)."""
        greedy = self.translator.with_decode(
            beam=1, n_best=1, batch_size=max(self.tc.batch_size, 128)
        )
        hyps, _ = greedy.translate([s for s, _ in self.val_pairs])
        bleu = float(corpus_scores(hyps, [t for _, t in self.val_pairs])["bleu_lowercase"])
        return bleu, math.log(perplexity(self.model, self.val_ex, 128, self.ctx.device))

    # 3. checkpoints ----------------------------------------------------------------------------

    def _elapsed(self) -> float:
        return time.monotonic() - self._clock

    def _save(self) -> None:
        st = self.state
        st.elapsed = self._elapsed()
        self.ctx.checkpoint.save(
            st.epoch,
            self.model,
            self.opt,
            st.history,
            step=st.step,
            state=st.numbers(),
            best=self.best,
            epoch_rng=self.epoch_rng,
            average=self.average.state_dict(),
        )
        self._last_save = time.monotonic()

    def _restore(self) -> None:
        _, history, extra = self.ctx.checkpoint.restore(self.model, self.opt)
        if not extra:
            return
        self.state = TrainState(**extra["state"], history=list(history))
        self.best, self.epoch_rng = extra.get("best"), extra.get("epoch_rng")
        self.average.load_state_dict(extra.get("average") or {})
