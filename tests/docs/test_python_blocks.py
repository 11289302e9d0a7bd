"""Every ``python`` block of the docs runs without an error.

Guards the API pages and guides against examples that no longer run: a renamed function, a changed
signature or return shape. Each block runs on its own, in the docs workspace (see
``conftest.py``), with ``RUN_DIR`` bound to a trained run and dated run folders in strings
replaced by real ones. Blocks of ``docs/develop/extending.md`` are module code, run by
``test_extending.py``; a block can opt out with ``<!-- docs-test: skip (reason) -->``.
"""

from __future__ import annotations

import re

import matplotlib
import pytest

from .blocks import blocks, doc_files
from .conftest import run_of

EXCLUDE = ("extending.md",)
PYTHON = [
    b
    for path in doc_files()
    if path.name not in EXCLUDE
    for b in blocks(path)
    if b.lang in ("python", "py", "pycon")
]


def _fill(code: str, ws) -> str:
    code = re.sub(r"outputs/\d{4}-\d\d-\d\d/\d\d-\d\d-\d\d", run_of(ws, "selfattn"), code)
    sweep = sorted(ws.glob("multirun/*/*"), key=lambda p: p.stat().st_mtime)[-1]
    return re.sub(r"multirun/\d{4}-\d\d-\d\d/\d\d-\d\d-\d\d", str(sweep), code)


@pytest.mark.parametrize("block", PYTHON, ids=[b.where for b in PYTHON])
def test_python_block_runs(block, workspace, monkeypatch):
    if block.skip:
        pytest.skip(f"{block.where}: {block.skip}")
    matplotlib.use("Agg")
    monkeypatch.chdir(workspace)
    namespace = {"__name__": "__docs__", "RUN_DIR": run_of(workspace, "selfattn")}
    exec(compile(_fill(block.text, workspace), block.where, "exec"), namespace)


def test_the_api_pages_have_python_blocks():
    """The collector finds the API page's and the notebook guide's examples."""
    pages = {b.path.name for b in PYTHON}
    assert {"api.md", "notebooks.md", "multihead.md"} <= pages
