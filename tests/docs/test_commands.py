"""Every ``attnrun …`` command in a fenced block of the docs and the README runs and exits 0.

Guards against docs that lie: a command that no longer parses, an option or override that was
renamed, a file format a page promises that a command no longer reads. Each command runs in-process
(the Typer app, as ``attnrun`` runs it) in one temporary workspace, at tiny sizes: the test swaps
in small values for the keys of :data:`TINY` (appending the ones a command does not set), so a
20-minute recipe runs in seconds with every one of its options still parsed and validated.

Placeholders are filled with runs trained once for the session: ``RUN_DIR`` and dated folders
(``outputs/2026-11-24/19-48-51``, ``outputs/DATE/TIME``) become a selfattn run for a sentence
with "it", else a translate run (for ``resume``: a run just interrupted after its first epoch);
``multirun/…`` becomes the newest sweep. The files a command names
(``points.csv``, ``pairs.tsv``, …) are in the workspace. Commands that cannot run here (a cluster,
an install) carry ``<!-- docs-test: skip (reason) -->`` on the line before their fence; commands
of ``docs/develop/extending.md`` are run by ``test_extending.py`` with the toy members they need.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attnrun.cli import app

from .blocks import ROOT, all_commands, split
from .conftest import DATED, interrupted_run, json_blocks, run_of

EXCLUDE = ("docs/develop/extending.md",)

#: tiny values per experiment: replaced where a command sets the key, appended where it does not
TINY = {
    "translate": {
        "train.epochs": "1",
        "data.n_train": "120",
        "data.n_val": "10",
        "data.n_test": "10",
        "model.num_hiddens": "24",
        "model.embed_size": "16",
        "model.ffn_hiddens": "32",
        "tokenizer.vocab_size": "300",
        "train.threads": "1",
    },
    "selfattn": {"train.epochs": "1", "data.n_test": "100", "train.threads": "1"},
    "regress": {"train.epochs": "2", "train.threads": "1"},
}
#: most points a regress command may keep (larger data.n_train values are cut to this)
MAX_REGRESS_POINTS = 200


def _unique_commands() -> list[tuple[str, str, str | None]]:
    """``(where, command, skip reason)`` once per distinct command, in page order."""
    seen: set[str] = set()
    out = []
    for block, command in all_commands(exclude=EXCLUDE):
        words, stdin = split(command)
        key = " ".join(DATED.sub(r"\1/X", w) for w in words) + f" <{stdin}"
        if key in seen:
            continue
        seen.add(key)
        out.append((block.where, command, block.skip))
    return out


COMMANDS = _unique_commands()


def tiny(words: list[str]) -> list[str]:
    """The command at tiny sizes (see :data:`TINY`); ``selfattn demo`` and the run-management
    commands are left as they are."""
    cmd = words[1]
    if cmd == "selfattn" and "--task" in words and words[words.index("--task") + 1] == "translate":
        cmd = "translate"
    if cmd not in TINY or "demo" in words:
        return words
    values = dict(TINY[cmd])
    out: list[str] = []
    skip_next = False
    for i, w in enumerate(words):
        if skip_next:
            skip_next = False
            continue
        if w == "--epochs" and i + 1 < len(words):
            out += [w, values.get("train.epochs", "1")]
            skip_next = True
            continue
        key, eq, value = w.partition("=")
        if eq and cmd == "regress" and key == "data.n_train" and "," not in value:
            value = str(min(int(value), MAX_REGRESS_POINTS))
        elif eq and key in values and "," not in value:  # a swept value stays a sweep
            value = values.pop(key)
        out.append(f"{key}={value}" if eq else w)
    if cmd == "regress":
        values = {k: v for k, v in values.items() if k != "train.epochs" or "parametric" in words}
    return out + [
        f"{k}={v}" for k, v in values.items() if not any(w.startswith(f"{k}=") for w in words)
    ]


def fill(words: list[str], ws: Path) -> list[str]:
    """Placeholders → real folders of the workspace (see the module docstring)."""
    text = " ".join(words)
    kind = "selfattn" if re.search(r"\bit\b", text) and words[1] == "predict" else "translate"
    if words[1] == "show":
        kind = "selfattn"
    out = []
    for w in words:
        m = DATED.match(w)
        if words[1] == "resume" and (w in ("RUN_DIR", "RUN") or (m and m.group(1) == "outputs")):
            w = interrupted_run(ws)
        elif w in ("RUN_DIR", "RUN") or (m and m.group(1) == "outputs"):
            w = run_of(ws, kind)
        elif m:
            sweeps = sorted(ws.glob("multirun/*/*"), key=lambda p: p.stat().st_mtime)
            w = str(sweeps[-1])
        elif w.startswith("data.root=") and not Path(w.split("=", 1)[1]).is_absolute():
            root = (ROOT / w.split("=", 1)[1]).resolve()
            if not root.is_dir():
                pytest.skip(f"the data folder {root} is not on this machine")
            w = f"data.root={root}"
        out.append(w)
    return out


@pytest.mark.parametrize(
    ("where", "command", "skip"),
    COMMANDS,
    ids=[f"{w}:{c[:60]}" for w, c, _ in COMMANDS],
)
def test_command_in_the_docs_runs(where, command, skip, workspace, monkeypatch):
    """The command exits 0 at tiny sizes (or is skipped by its marker, with the reason)."""
    if skip:
        pytest.skip(f"{where}: {skip}")
    words, stdin = split(command)
    argv = fill(tiny(words), workspace)[1:]
    monkeypatch.chdir(workspace)
    text = (workspace / stdin).read_text() if stdin else None
    result = CliRunner().invoke(app, argv, input=text)
    assert result.exit_code == 0, f"{where}: attnrun {' '.join(argv)}\n{result.output}"


def test_tiny_swaps_sizes_and_keeps_sweeps():
    """The tiny rewrite replaces sizes, keeps swept values, cuts regress data, maps --epochs."""
    words = [
        "attnrun",
        "translate",
        "--epochs",
        "40",
        "train.epochs=40",
        "model.num_hiddens=384",
        "-m",
        "seed=0,1",
    ]
    out = tiny(words)
    assert out[:4] == ["attnrun", "translate", "--epochs", "1"]
    assert "train.epochs=1" in out and "model.num_hiddens=24" in out and "seed=0,1" in out
    assert out.count("train.epochs=1") == 1 and "data.n_train=120" in out
    assert "data.n_train=200" in tiny(["attnrun", "regress", "data.n_train=2000"])
    assert "train.epochs=2" not in tiny(["attnrun", "regress", "--kernel", "gaussian"])
    assert tiny(["attnrun", "selfattn", "demo"]) == ["attnrun", "selfattn", "demo"]
    coref = tiny(["attnrun", "selfattn", "--task", "translate"])
    assert "model.num_hiddens=24" in coref


def test_every_page_with_commands_is_collected():
    """The collector finds commands in the chapter, guides and README (a broken fence parser
    would silently test nothing)."""
    where = {w.split(":")[0] for w, _, _ in COMMANDS}
    assert "docs/chapter/pooling.md" in where and "docs/getting-started.md" in where
    assert len(COMMANDS) >= 30
    reasons = {s for _, _, s in COMMANDS if s}
    assert all(len(r) > 5 for r in reasons)
    assert json.loads(next(json_blocks("docs/guides/your-data.md")))["agents"]
