"""Fenced blocks of the documentation (``docs/**/*.md`` and ``README.md``), for the docs tests.

A block opts out of the tests with the marker ``<!-- docs-test: skip (reason) -->`` on the line
right before its opening fence; the reason is required.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIP = re.compile(r"^<!-- docs-test: skip \((.+)\) -->$")
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    skip: str | None  # the reason given by a skip marker

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def doc_files() -> list[Path]:
    files = sorted((ROOT / "docs").rglob("*.md"))
    return [*files, ROOT / "README.md"]


def blocks(path: Path) -> list[Block]:
    """Every fenced block of a markdown file, with its language and skip marker."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.groups()
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j])
            j += 1
        marker = SKIP.match(lines[i - 1].strip()) if i > 0 else None
        if i > 0 and lines[i - 1].strip().startswith("<!-- docs-test") and not marker:
            raise ValueError(f"{path}:{i}: malformed marker {lines[i - 1].strip()!r}")
        out.append(Block(path, i + 1, lang, "\n".join(body), marker.group(1) if marker else None))
        i = j + 1
    return out


def commands(block: Block) -> list[str]:
    """The ``attnrun …`` commands of a bash or console block: one per line (``\\``
    continuations joined); in a console block only the lines after a ``$ `` prompt."""
    if block.lang not in ("bash", "sh", "shell", "console"):
        return []
    logical: list[str] = []
    pending = ""
    for raw in block.text.splitlines():
        line = raw.rstrip()
        if block.lang == "console" and not pending:
            if not line.startswith("$ "):
                continue
            line = line[2:]
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    return [c.strip() for c in logical if c.strip().startswith("attnrun ")]


def split(command: str) -> tuple[list[str], str | None]:
    """``shlex`` words without the trailing comment, and the file of a ``< FILE`` redirect."""
    words = shlex.split(command, comments=True)
    stdin = None
    if "<" in words:
        k = words.index("<")
        stdin = words[k + 1]
        words = words[:k] + words[k + 2 :]
    return words, stdin


def all_commands(exclude: tuple[str, ...] = ()) -> list[tuple[Block, str]]:
    found = []
    for path in doc_files():
        if str(path.relative_to(ROOT)) in exclude:
            continue
        for block in blocks(path):
            for command in commands(block):
                found.append((block, command))
    return found
