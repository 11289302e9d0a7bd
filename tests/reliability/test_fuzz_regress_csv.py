"""Fuzzing the regress CSV loader: it loads or names file:line — never a traceback."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnrun.errors import DataError
from attnrun.regression.data import load_csv

_LINE = re.compile(r"\.csv(:\d+)?: ")


def _check(path):
    try:
        x, y = load_csv(path)
    except DataError as e:
        msg = str(e)
        assert "\n" not in msg and _LINE.search(msg), msg
        return
    assert x.numel() == y.numel() >= 3
    assert bool(x.isfinite().all()) and bool(y.isfinite().all())


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=400))
def test_random_bytes(tmp_path, data):
    p = tmp_path / "f.csv"
    p.write_bytes(data)
    _check(p)


_cell = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers().map(str),
    st.text(max_size=6),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(st.lists(_cell, min_size=0, max_size=3), max_size=8),
    bom=st.booleans(),
    crlf=st.booleans(),
    latin1=st.booleans(),
)
def test_structured_rows(tmp_path, rows, bom, crlf, latin1):
    nl = "\r\n" if crlf else "\n"
    text = nl.join(["x,y", *(",".join(r) for r in rows)]) + nl
    data = text.encode("latin-1", errors="replace") if latin1 else text.encode("utf-8")
    if bom:
        data = b"\xef\xbb\xbf" + data
    p = tmp_path / "f.csv"
    p.write_bytes(data)
    _check(p)


def test_crlf_and_bom_load(tmp_path):
    p = tmp_path / "ok.csv"
    p.write_bytes(b"\xef\xbb\xbfx,y\r\n1,2\r\n\r\n3,4\r\n5,6\r\n")
    x, y = load_csv(p)
    assert x.tolist() == [1, 3, 5] and y.tolist() == [2, 4, 6]


def test_latin1_is_named_with_its_line(tmp_path):
    """Guards against a decoding error that names neither the line nor the cause."""
    p = tmp_path / "l1.csv"
    p.write_bytes("x,y\r\n1,2\r\n3,4\r\n5,6\r\n# caf\xe9\r\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"l1\.csv:5: not UTF-8 text \(byte 0xe9 at column 6\)"):
        load_csv(p)
