"""Downloads into a cache folder, verified by checksum, never leaving a partial or bad file.

:func:`fetch` keeps a cached file whose checksum matches (it is never downloaded again or
overwritten), deletes a cached file that does not match, downloads to ``<name>.part`` beside the
destination, checks the digest and only then renames it into place. Any failure removes the partial
file and raises :class:`~attnrun.errors.DataError` saying where the file can be put by hand.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO

from attnrun.errors import DataError

__all__ = ["DownloadError", "cache_root", "cached", "fetch", "file_digest"]

Opener = Callable[[str], IO[bytes]]


class DownloadError(DataError):
    """A download failed; ``reason`` says why in a few words (``URLError: ...``)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def cache_root() -> Path:
    """``$ATTNRUN_CACHE`` or ``~/.cache/attnrun``."""
    env = os.environ.get("ATTNRUN_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "attnrun"


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cached(dest: Path, digest: str, algorithm: str = "sha256") -> bool:
    """Whether ``dest`` is a good copy (its checksum matches)."""
    return dest.is_file() and file_digest(dest, algorithm) == digest


def _default_opener(url: str) -> IO[bytes]:
    return urllib.request.urlopen(url, timeout=60)  # noqa: S310 - https/file URLs from our tables


def fetch(
    url: str,
    dest: Path,
    digest: str,
    *,
    algorithm: str = "sha256",
    opener: Opener | None = None,
) -> Path:
    """``dest``, downloaded from ``url`` unless a verified copy is already there.

    Raises:
        DataError: the download failed or its checksum does not match (the message names the
            folder to put the file in by hand).
    """
    dest = Path(dest)
    if cached(dest, digest, algorithm):
        return dest
    if dest.is_file():
        dest.unlink()  # a corrupt cached copy: never use it
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    opener = opener or _default_opener
    try:
        with opener(url) as response, open(part, "wb") as out:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
    except Exception as e:  # URLError, HTTPError, timeouts, OSError: all mean "no file"
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
        reason = f"{type(e).__name__}: {e}"
        raise DownloadError(
            f"could not download {url} ({reason}); without network, put {dest.name} into "
            f"{dest.parent}",
            reason,
        ) from None
    got = file_digest(part, algorithm)
    if got != digest:
        part.unlink()
        raise DataError(
            f"{url}: {algorithm} {got} does not match the expected {digest}; the download was "
            f"deleted. Put a good copy of {dest.name} into {dest.parent}"
        )
    os.replace(part, dest)
    return dest
