"""The slowdown hint (attnrun/throughput.py): exact thresholds, once per run, fake loads."""

from __future__ import annotations

import math

import pytest
import torch

from attnrun.throughput import (
    BASELINE_SECONDS,
    BASELINE_STEPS,
    SLOW_FRACTION,
    WARMUP_STEPS,
    WINDOW_SECONDS,
    WINDOW_STEPS,
    ThroughputWatch,
    watch_for,
)

BASE = 1000.0  # units per second of the baseline batches


class FakeLoad:
    """A load average that the test sets; counts how often it is read."""

    def __init__(self, value: float) -> None:
        self.value, self.reads = value, 0

    def __call__(self) -> float:
        self.reads += 1
        return self.value


def primed(load: float = 3.0, cores: int = 2, threads: int = 2) -> ThroughputWatch:
    """A watch past its warm-up with a baseline of exactly ``BASE`` units per second."""
    w = ThroughputWatch(threads, cores, "tokens", load=FakeLoad(load))
    for _ in range(WARMUP_STEPS):  # slow first steps: left out of the baseline
        assert w.observe(1.0, 10.0) is None
    step = 0.25  # exact in binary, so the pooled seconds reach BASELINE_SECONDS exactly
    n = max(BASELINE_STEPS, math.ceil(BASELINE_SECONDS / step))
    for _ in range(n):
        assert w.observe(BASE * step, step) is None
    assert w.baseline == pytest.approx(BASE)
    return w


def window(w: ThroughputWatch, rate: float) -> list[str | None]:
    """One judging window at ``rate`` units/s: WINDOW_STEPS steps of WINDOW_SECONDS in all."""
    step = WINDOW_SECONDS / WINDOW_STEPS
    return [w.observe(rate * step, step) for _ in range(WINDOW_STEPS)]


def test_warmup_steps_do_not_set_the_baseline():
    """Guards against the first (slow) calls dragging the baseline down, which would hide a
    later collapse: 10 s warm-up steps are skipped, the baseline is the later steps' rate."""
    w = primed()
    assert w.baseline == pytest.approx(BASE)  # not pulled towards 1 unit / 10 s


def test_slow_window_on_a_busy_machine_gives_one_hint_naming_threads():
    w = primed(load=3.0, cores=2, threads=2)
    got = window(w, 0.2 * BASE)
    assert got[:-1] == [None] * (WINDOW_STEPS - 1)  # judged only when the window is full
    hint = got[-1]
    assert hint is not None and "train.threads=1" in hint
    assert "200 tokens/s" in hint and "20%" in hint and "1,000" in hint
    assert "load 3.0 on 2 cores" in hint and "\n" not in hint


def test_hint_comes_once_per_run():
    """Guards against a hint every window (a wall of repeated lines on a long run)."""
    w = primed()
    hints = [h for _ in range(5) for h in window(w, 0.1 * BASE) if h]
    assert len(hints) == 1 and not w.active


def test_speed_boundary_is_strict():
    """Exactly SLOW_FRACTION of the baseline is not "far below"; just under it is."""
    w = primed()
    assert window(w, SLOW_FRACTION * BASE)[-1] is None
    assert window(w, SLOW_FRACTION * BASE * 0.999)[-1] is not None


@pytest.mark.parametrize("load, hinted", [(2.0, False), (2.01, True), (0.5, False)])
def test_load_boundary_is_strict(load, hinted):
    """Load equal to the usable cores is a busy but not oversubscribed machine: no hint."""
    w = primed(load=load, cores=2)
    assert (window(w, 0.1 * BASE)[-1] is not None) is hinted


def test_no_hint_while_fast_even_under_load_and_load_read_only_when_slow():
    w = primed(load=9.0)
    for _ in range(4):
        assert window(w, 0.9 * BASE) == [None] * WINDOW_STEPS
    assert w.load.reads == 0  # the cheap path: no system call while training keeps its speed


def test_one_thread_never_hints():
    """The hint suggests one thread: a run already on one thread has nothing to change."""
    w = ThroughputWatch(1, 2, load=FakeLoad(9.0))
    assert not w.active
    steps = [w.observe(BASE, 1.0) for _ in range(20)] + [w.observe(1.0, 1.0) for _ in range(20)]
    assert steps == [None] * 40 and w.load.reads == 0


def test_windows_need_both_steps_and_seconds():
    """One very slow step (a long batch, a pause) is not a window: it needs WINDOW_STEPS steps
    and WINDOW_SECONDS seconds; each window is judged apart, so a slow one is not averaged
    away by the fast ones before it."""
    w = primed()
    assert w.observe(0.0, 10 * WINDOW_SECONDS) is None  # one step, however slow
    for _ in range(WINDOW_STEPS - 2):
        assert w.observe(0.0, 0.0) is None
    assert w.observe(0.0, 0.0) is not None  # the WINDOW_STEPS-th step closes a slow window
    w = primed()
    for _ in range(3):
        window(w, BASE)
    assert window(w, 0.1 * BASE)[-1] is not None


def test_lap_uses_the_gap_between_calls_from_a_fake_clock():
    w = ThroughputWatch(2, 2, load=FakeLoad(5.0))
    clock = 100.0
    assert w.lap(0, clock) is None  # starts the clock
    hints = []
    for gap in [1.0] * (WARMUP_STEPS + BASELINE_STEPS) + [4.0] * 20:  # 1 batch/s, then 0.25
        clock += gap
        hints.append(w.lap(1, clock))
    assert w.baseline == pytest.approx(1.0)
    assert sum(h is not None for h in hints) == 1
    assert "0.25 batches/s, 25% of the first batches' 1," in next(h for h in hints if h)


def test_watch_for_reads_the_threads_in_force_and_is_silent_on_a_gpu():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert watch_for(torch.device("cpu"), "tokens").threads == 2
        torch.set_num_threads(1)
        assert not watch_for(torch.device("cpu"), "tokens").active
        torch.set_num_threads(2)
        assert not watch_for(torch.device("cuda"), "tokens").active
    finally:
        torch.set_num_threads(before)
