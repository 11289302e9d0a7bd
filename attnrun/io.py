"""Atomic file writing: every file attnrun writes appears whole or not at all.

Each writer writes a temporary file in the destination folder, flushes and fsyncs it, then
``os.replace``-s it over the destination. A crash or a full disk leaves the previous good file (if
any) in place and no half-written one; the temporary file is removed on failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    For writers that want a file name rather than a file object (``savefig``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; artefacts get the usual mode
    try:
        yield tmp_path
        with open(tmp_path, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """``open`` for writing, atomically (``mode`` is ``"w"`` or ``"wb"``)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports modes 'w' and 'wb', not {mode!r}")
    if mode == "w":
        kwargs.setdefault("encoding", "utf-8")
        kwargs.setdefault("newline", "")
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f
        f.flush()


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w") as f:
        f.write(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically; NaN/inf are written as ``null``."""
    write_text(path, json.dumps(_jsonable(obj), indent=2, sort_keys=False, allow_nan=False) + "\n")


def save_with(path: str | os.PathLike, saver: Callable[[Path], Any]) -> None:
    """Call ``saver(tmp_path)`` and move the result onto ``path`` atomically.

    ``save_with(p, lambda t: fig.savefig(t, format="png"))`` (for torch use :func:`save_torch`).
    """
    with atomic_path(path) as tmp:
        saver(tmp)


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    """``torch.save(obj)`` atomically, byte-identical for identical ``obj``.

    ``torch.save`` to a file name records that name inside the archive; serialising to memory
    first keeps the temporary name out, so two identical runs write identical files.
    """
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    with atomic_open(path, "wb") as f:
        f.write(buf.getbuffer())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _jsonable(obj: Any) -> Any:
    """Plain JSON types: tensors/numpy scalars to numbers, non-finite floats to None."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return _jsonable(obj.tolist())
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)
