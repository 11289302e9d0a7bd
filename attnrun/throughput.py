"""A training loop's speed, watched: one hint when CPU threads collapse on a busy machine.

On a CPU shared with other work, torch's OpenMP threads (``train.threads=0``: one per core) wait
for each other at every parallel region; when another job holds a core, every step waits for the
slowest thread, and training can run 5-10× slower than on one thread (README, *Benchmarks*: the
d2l peer fell from ~1,250 to 108-277 tokens/s). Nothing on screen said so. :class:`ThroughputWatch`
compares the speed of each stretch of training with the speed of the first batches and, the first
time it is far below while the machine's load exceeds its usable cores, returns one line that
suggests ``train.threads=1``. It is pure: the caller passes each step's work and seconds, and the
load is a function it may replace (tests pass fakes).
"""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = [
    "BASELINE_SECONDS",
    "BASELINE_STEPS",
    "SLOW_FRACTION",
    "WARMUP_STEPS",
    "WINDOW_SECONDS",
    "WINDOW_STEPS",
    "ThroughputWatch",
    "one_minute_load",
    "watch_for",
]

#: Steps left out before the baseline: the first calls pay for lazy initialisation, the allocator
#: and (for OpenMP) starting the thread pool, so they are slower than training will be.
WARMUP_STEPS = 2
#: The baseline is the speed of the steps after the warm-up until both at least
#: ``BASELINE_STEPS`` steps and ``BASELINE_SECONDS`` seconds of step time are pooled: enough that
#: one long-sentence bucket or a garbage-collection pause does not set it.
BASELINE_STEPS = 5
BASELINE_SECONDS = 1.0
#: Later speed is measured over windows of at least ``WINDOW_STEPS`` steps and ``WINDOW_SECONDS``
#: seconds of step time, for the same reason; each window is judged on its own.
WINDOW_STEPS = 5
WINDOW_SECONDS = 5.0
#: "Far below": a window slower than this share of the baseline (strictly). Length-bucketed
#: batches vary by some 20-30% in speed and a neighbour on one core costs one thread about half
#: its speed; threads that collapse under load lose 4-10× (the README's figures), well past 1/2.
SLOW_FRACTION = 0.5


def one_minute_load() -> float:
    """The machine's one-minute load average (``os.getloadavg()[0]``); 0 where unknown."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


class ThroughputWatch:
    """Watches training speed; :meth:`observe` returns the hint once, else None.

    Args:
        threads: torch CPU threads in force; with one thread there is nothing to suggest and
            the watch stays silent.
        cores: CPU cores this process may use (``len(os.sched_getaffinity(0))``,
            :func:`attnrun.device.available_cores`).
        unit: what ``observe``'s ``work`` counts, for the message (``"target tokens"``).
        load: returns the machine's load; read only when a window is slow.

    The hint is given when a window's speed is below ``SLOW_FRACTION`` × the baseline *and* the
    load exceeds ``cores`` (both strictly), at most once per watch (one per run).
    """

    def __init__(
        self,
        threads: int,
        cores: int,
        unit: str = "batches",
        load: Callable[[], float] = one_minute_load,
    ) -> None:
        self.threads, self.cores, self.unit, self.load = int(threads), int(cores), unit, load
        self.baseline: float | None = None  # work per second of the first batches
        self.hinted = False
        self._skipped = 0
        self._work = 0.0
        self._seconds = 0.0
        self._steps = 0
        self._last: float | None = None  # lap(): the clock at the previous call

    @property
    def active(self) -> bool:
        """Whether a hint may still come (several threads, none given yet)."""
        return self.threads > 1 and not self.hinted

    def observe(self, work: float, seconds: float) -> str | None:
        """Account one training step (``work`` units in ``seconds``); the hint line, or None."""
        if not self.active:
            return None
        if self._skipped < WARMUP_STEPS:
            self._skipped += 1
            return None
        self._work += work
        self._seconds += seconds
        self._steps += 1
        if self.baseline is None:
            if self._steps >= BASELINE_STEPS and self._seconds >= BASELINE_SECONDS:
                self.baseline = self._work / self._seconds
                self._reset()
            return None
        if self._steps < WINDOW_STEPS or self._seconds < WINDOW_SECONDS:
            return None
        rate = self._work / self._seconds
        self._reset()
        if not rate < SLOW_FRACTION * self.baseline:
            return None
        load = self.load()
        if not load > self.cores:
            return None
        self.hinted = True
        return (
            f"training slowed to {_rate(rate)} {self.unit}/s, {rate / self.baseline:.0%} of the "
            f"first batches' {_rate(self.baseline)}, while the machine is busy (load {load:.1f} on "
            f"{self.cores} cores): {self.threads} CPU threads wait on each other under load; "
            "train.threads=1 is usually faster on a shared machine"
        )

    def lap(self, work: float, now: float) -> str | None:
        """:meth:`observe` with the step's seconds taken as ``now`` minus the previous call's
        ``now`` (for loops that report after each step but do not time it); the first call only
        starts the clock."""
        last, self._last = self._last, now
        return None if last is None else self.observe(work, now - last)

    def _reset(self) -> None:
        self._work, self._seconds, self._steps = 0.0, 0.0, 0


def _rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}" if x >= 1 else f"{x:.2f}"


def watch_for(device, unit: str) -> ThroughputWatch:
    """The watch of a run on ``device`` (a ``torch.device``): torch's CPU threads in force on a
    CPU (the run frame has set them from ``train.threads``), silent on a GPU."""
    import torch

    from attnrun.device import available_cores

    threads = torch.get_num_threads() if device.type == "cpu" else 1
    return ThroughputWatch(threads, available_cores(), unit)
