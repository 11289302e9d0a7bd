"""Atomic writers leave the old file in place when writing fails."""

from __future__ import annotations

import json
import math

import pytest

from attnrun.io import save_with, write_json, write_text


def test_write_json_round_trip_and_non_finite_as_null(tmp_path):
    p = tmp_path / "m.json"
    write_json(p, {"a": 1.5, "b": math.nan, "c": [math.inf, 2]})
    assert json.loads(p.read_text()) == {"a": 1.5, "b": None, "c": [None, 2]}


def test_failed_write_keeps_the_good_file_and_leaves_no_temp(tmp_path):
    p = tmp_path / "good.txt"
    write_text(p, "good")

    def broken(tmp):
        tmp.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        save_with(p, broken)
    assert p.read_text() == "good"
    assert [f.name for f in tmp_path.iterdir()] == ["good.txt"]


def test_disk_full_during_json_write(tmp_path, monkeypatch):
    p = tmp_path / "metrics.json"
    write_json(p, {"status": "completed"})
    import attnrun.io as io_mod

    real_fsync = io_mod.os.fsync

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(io_mod.os, "fsync", full)
    with pytest.raises(OSError):
        write_json(p, {"status": "running"})
    monkeypatch.setattr(io_mod.os, "fsync", real_fsync)
    assert json.loads(p.read_text()) == {"status": "completed"}
    assert len(list(tmp_path.iterdir())) == 1


def test_files_get_the_usual_mode_not_0600(tmp_path):
    import os

    p = tmp_path / "a.txt"
    write_text(p, "x")
    mask = os.umask(0)
    os.umask(mask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~mask


def test_save_torch_is_byte_identical_for_identical_objects(tmp_path):
    import torch

    from attnrun.io import save_torch

    state = {"w": torch.arange(6.0).reshape(2, 3)}
    save_torch(tmp_path / "a.pt", state)
    save_torch(tmp_path / "b.pt", state)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    torch.testing.assert_close(torch.load(tmp_path / "a.pt", weights_only=True)["w"], state["w"])
