"""Run folders are reserved atomically: concurrent runs never share one."""

from __future__ import annotations

import multiprocessing as mp
from datetime import datetime
from pathlib import Path

from attnrun.runs.folders import reserve_run_dir

NOW = datetime(2026, 11, 24, 18, 30, 5)


def test_layout_is_date_then_time(tmp_path):
    d = reserve_run_dir(tmp_path / "outputs", NOW)
    assert d == tmp_path / "outputs" / "2026-11-24" / "18-30-05"
    assert d.is_dir()


def test_collisions_get_suffixes_and_existing_folders_are_untouched(tmp_path):
    first = reserve_run_dir(tmp_path, NOW)
    (first / "mine.txt").write_text("user data")
    second = reserve_run_dir(tmp_path, NOW)
    third = reserve_run_dir(tmp_path, NOW)
    assert [first.name, second.name, third.name] == ["18-30-05", "18-30-05_1", "18-30-05_2"]
    assert (first / "mine.txt").read_text() == "user data"
    assert list(second.iterdir()) == []


def _reserve(args):
    root, barrier = args
    barrier.wait()
    return str(reserve_run_dir(root, NOW))


def test_eight_processes_started_together_get_eight_folders(tmp_path):
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(8)
        with ctx.Pool(8) as pool:
            dirs = pool.map(_reserve, [(tmp_path, barrier)] * 8)
    assert len(set(dirs)) == 8
    assert all(Path(d).is_dir() for d in dirs)
