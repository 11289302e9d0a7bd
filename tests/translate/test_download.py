"""Downloads are verified by SHA-256; bad or partial files never stay; tested with file:// URLs."""

from __future__ import annotations

import hashlib
import io
import urllib.error

import pytest

from attnrun.errors import DataError
from attnrun.translate.data import multi30k
from attnrun.translate.data.download import fetch


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_fetch_file_url_verifies_and_caches(tmp_path):
    src = tmp_path / "remote.gz"
    src.write_bytes(b"payload")
    dest = tmp_path / "cache" / "x.gz"
    assert fetch(src.as_uri(), dest, _sha(b"payload")) == dest
    assert dest.read_bytes() == b"payload"

    # a good cached copy is neither downloaded again nor overwritten
    def never(url):
        raise AssertionError("should not download")

    assert fetch("file:///nowhere", dest, _sha(b"payload"), opener=never) == dest


def test_fetch_mismatch_deletes_partial_and_bad_cache(tmp_path):
    src = tmp_path / "remote.gz"
    src.write_bytes(b"evil")
    dest = tmp_path / "cache" / "x.gz"
    dest.parent.mkdir()
    dest.write_bytes(b"corrupt cached copy")
    with pytest.raises(DataError, match="does not match"):
        fetch(src.as_uri(), dest, _sha(b"good"))
    assert not dest.exists()
    assert not (dest.parent / "x.gz.part").exists()


def test_fetch_failure_midway_leaves_nothing(tmp_path):
    class Broken(io.BytesIO):
        def read(self, n=-1):
            raise ConnectionResetError("peer went away")

    dest = tmp_path / "c" / "x.gz"
    with pytest.raises(DataError, match=r"put x\.gz into"):
        fetch("https://example.invalid/x.gz", dest, _sha(b"x"), opener=lambda url: Broken())
    assert list(dest.parent.iterdir()) == []


def test_no_network_message_names_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNRUN_CACHE", str(tmp_path))

    def offline(url):
        raise urllib.error.URLError("no network")

    with pytest.raises(DataError, match=str(tmp_path / "multi30k")):
        multi30k.locate("val", "en", None, opener=offline)


def test_multi30k_download_uses_pattern_and_sums(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNRUN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(multi30k.SHA256, "val.en.gz", _sha(b"data"))
    seen = []

    def opener(url):
        seen.append(url)
        return io.BytesIO(b"data")

    path = multi30k.locate("val", "en", None, opener=opener)
    assert seen == [
        "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw/val.en.gz"
    ]
    assert path.read_bytes() == b"data"


def test_multi30k_root_missing_file_says_where(tmp_path):
    with pytest.raises(DataError, match="put the Multi30k"):
        multi30k.locate("train", "fr", str(tmp_path))
