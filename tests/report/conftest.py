"""Fixtures for report tests (helpers live in fakes.py, imported by name)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import MSE, write_run


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """A sweep folder: kernel in {gaussian, boxcar} x seed in {0, 1, 2}, with loss histories."""
    root = tmp_path / "multirun" / "2026-01-01" / "10-00-00"
    for job, ((kernel, seed), mse) in enumerate(MSE.items()):
        write_run(
            root / str(job),
            {"kernel": kernel, "seed": seed, "device": "auto", "data": {"n_train": 20}},
            {"test_mse": mse, "bandwidth": 1.0},
            started_at=f"2026-01-01T10:00:0{job}+00:00",
            history={"loss": [1.0, 0.5 + seed / 10, 0.25], "val_loss": [1.1, 0.6, 0.3]},
        )
        (root / str(job) / ".hydra").mkdir()
    (root / "multirun.yaml").write_text("hydra: {}\n", encoding="utf-8")
    return root
