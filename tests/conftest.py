"""Fixtures shared across the test packages."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from attnrun.experiments import experiments


@pytest.fixture
def ctrl_c_in_run(monkeypatch) -> Callable[[str, int], Callable]:
    """``ctrl_c_in_run(name, n)``: the ``n``-th run of experiment ``name`` in this test raises
    ``KeyboardInterrupt`` as it starts (Ctrl-C in that job of a sweep or trial of a search);
    returns the experiment's own body, to put back with ``monkeypatch.setattr``."""

    def arm(name: str, n: int) -> Callable:
        exp = experiments.get(name)
        body, calls = exp.body, []

        def stop_nth(cfg, out_dir, ctx):
            calls.append(out_dir)
            if len(calls) == n:
                raise KeyboardInterrupt
            return body(cfg, out_dir, ctx)

        monkeypatch.setattr(exp, "body", stop_nth)
        return body

    return arm
