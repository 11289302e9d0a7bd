"""Line readers that never misalign pairs and never show a traceback for a bad file.

Every problem becomes a :class:`~attnrun.errors.DataError` whose message starts with ``file:line:``
(bad encoding, empty line, missing tab, a truncated ``.gz``), unless the caller allows skipping bad
pairs, in which case the pair is dropped and counted. Text may be plain or gzip'd (``.gz``), UTF-8
with or without a byte-order mark, with ``\\n`` or ``\\r\\n`` line ends.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from attnrun.errors import DataError

__all__ = ["BadLine", "ReadReport", "read_lines", "read_parallel", "read_tsv"]


class BadLine(Exception):
    """One bad line: the reason, for ``file:line: reason`` messages."""


@dataclass
class ReadReport:
    """What a reader skipped (only when skipping is allowed)."""

    skipped: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, where: str) -> None:
        self.skipped += 1
        if len(self.examples) < 3:
            self.examples.append(where)


def _raw_lines(path: Path) -> Iterator[bytes]:
    """Raw lines of a plain or gzip'd file; a damaged ``.gz`` raises DataError."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    opener = gzip.open if path.suffix == ".gz" else open
    n = 0
    try:
        with opener(path, "rb") as f:
            for n, line in enumerate(f, start=1):  # noqa: B007 - n is used after the loop
                yield line
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as e:
        raise DataError(f"{path}:{n + 1}: damaged or truncated gzip data ({e})") from None


def _decode(raw: bytes, first: bool) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadLine(f"not UTF-8 (byte {e.start}: {raw[e.start : e.start + 1]!r})") from None
    if first and text.startswith("\ufeff"):
        text = text[1:]
    return text.rstrip("\r\n")


def read_lines(path: str | Path) -> Iterator[tuple[int, str | BadLine]]:
    """``(line_number, text)`` per line, or ``(line_number, BadLine)`` for undecodable ones."""
    path = Path(path)
    for n, raw in enumerate(_raw_lines(path), start=1):
        try:
            yield n, _decode(raw, n == 1)
        except BadLine as e:
            yield n, e


def _check_text(text: str | BadLine) -> str:
    if isinstance(text, BadLine):
        raise text
    if not text.strip():
        raise BadLine("empty line")
    if "\x00" in text:
        raise BadLine("NUL byte in the text (a binary file?)")
    return text.strip()


def read_parallel(
    src_path: str | Path,
    tgt_path: str | Path,
    *,
    skip_bad: bool = False,
    report: ReadReport | None = None,
) -> list[tuple[str, str]]:
    """Pairs ``(source, target)`` from two line-aligned files (line N with line N).

    Different line counts are always an error (the pairs would be misaligned). A bad line (empty,
    not UTF-8) raises ``DataError("file:line: reason")``, or with ``skip_bad`` drops that pair.
    """
    src_path, tgt_path = Path(src_path), Path(tgt_path)
    src = list(read_lines(src_path))
    tgt = list(read_lines(tgt_path))
    if len(src) != len(tgt):
        raise DataError(
            f"{src_path} has {len(src)} lines but {tgt_path} has {len(tgt)}: the files must be "
            "line-aligned (line N of one translates line N of the other)"
        )
    if not src:
        raise DataError(f"{src_path}: empty file")
    report = report if report is not None else ReadReport()
    pairs = []
    for (n, s), (_, t) in zip(src, tgt):
        try:
            where = src_path
            a = _check_text(s)
            where = tgt_path
            b = _check_text(t)
        except BadLine as e:
            if not skip_bad:
                raise DataError(f"{where}:{n}: {e} (data.skip_bad=true drops bad pairs)") from None
            report.add(f"{where}:{n}")
            continue
        pairs.append((a, b))
    if not pairs:
        raise DataError(f"{src_path}: no usable lines")
    return pairs


def read_tsv(
    path: str | Path, *, skip_bad: bool = False, report: ReadReport | None = None
) -> list[tuple[str, str]]:
    """Pairs from ``source<TAB>target[<TAB>anything]`` lines (extra columns are ignored)."""
    path = Path(path)
    report = report if report is not None else ReadReport()
    pairs = []
    seen = 0
    for n, text in read_lines(path):
        seen += 1
        try:
            if isinstance(text, BadLine):
                raise text
            if not text.strip():
                raise BadLine("empty line")
            cols = text.split("\t")
            if len(cols) < 2:
                raise BadLine("no tab: expected 'source<TAB>target'")
            pairs.append((_check_text(cols[0]), _check_text(cols[1])))
        except BadLine as e:
            if not skip_bad:
                raise DataError(f"{path}:{n}: {e} (data.skip_bad=true drops bad lines)") from None
            report.add(f"{path}:{n}")
    if seen == 0:
        raise DataError(f"{path}: empty file")
    if not pairs:
        raise DataError(f"{path}: no usable lines ({report.skipped} bad)")
    return pairs
