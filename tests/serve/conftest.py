"""Fixtures of the serve tests: the trained runs (once per session) and a server per module
(helpers in serve_helpers.py, imported by name)."""

from __future__ import annotations

from pathlib import Path

import pytest
from serve_helpers import Server, train_runs


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> dict[str, Path]:
    """name → run folder, all under one root (``trained["transformer"].parent``)."""
    return train_runs(tmp_path_factory.mktemp("served_runs"))


@pytest.fixture(scope="module")
def server(trained):
    """A server over every trained run (ids in path order: none, regress, rnn, selfattn,
    transformer → r1..r5)."""
    s = Server(str(trained["transformer"].parent), "--port", "0")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def run_ids(server) -> dict[str, str]:
    """run name (folder name) → id."""
    _, body = server.get("/api/runs")
    return {r["name"]: r["id"] for r in body["runs"]}
