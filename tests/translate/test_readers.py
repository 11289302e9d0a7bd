"""Loaders: clear ``file:line: reason`` errors, never misaligned pairs, fuzzed with hypothesis."""

from __future__ import annotations

import gzip

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnrun.errors import DataError
from attnrun.translate.data.readers import ReadReport, read_parallel, read_tsv


def test_tsv_reads_pairs_with_bom_crlf_and_extra_columns(tmp_path):
    p = tmp_path / "pairs.tsv"
    p.write_bytes("\ufeffhello .\tbonjour .\tCC-BY\r\nbye\tsalut\r\n".encode())
    assert read_tsv(p) == [("hello .", "bonjour ."), ("bye", "salut")]


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        (b"a\tb\nno tab here\n", 2, "no tab"),
        (b"a\tb\n\nc\td\n", 2, "empty line"),
        (b"a\tb\ncaf\xe9\tx\n", 2, "not UTF-8"),
        (b"a\t\n", 1, "empty line"),
    ],
)
def test_tsv_bad_line_names_file_and_line(tmp_path, content, line, reason):
    p = tmp_path / "bad.tsv"
    p.write_bytes(content)
    with pytest.raises(DataError, match=rf"bad\.tsv:{line}: .*{reason}"):
        read_tsv(p)


def test_tsv_skip_bad_counts(tmp_path):
    p = tmp_path / "bad.tsv"
    p.write_bytes(b"a\tb\nno tab\n\xff\xfe\tx\nc\td\n")
    report = ReadReport()
    assert read_tsv(p, skip_bad=True, report=report) == [("a", "b"), ("c", "d")]
    assert report.skipped == 2


def test_empty_file(tmp_path):
    p = tmp_path / "empty.tsv"
    p.write_bytes(b"")
    with pytest.raises(DataError, match="empty file"):
        read_tsv(p)


def _gz(path, data: bytes):
    with gzip.open(path, "wb") as f:
        f.write(data)


def test_parallel_gz_and_length_mismatch(tmp_path):
    _gz(tmp_path / "a.en.gz", b"one\ntwo\n")
    _gz(tmp_path / "a.fr.gz", b"un\ndeux\n")
    assert read_parallel(tmp_path / "a.en.gz", tmp_path / "a.fr.gz") == [
        ("one", "un"),
        ("two", "deux"),
    ]
    _gz(tmp_path / "b.fr.gz", b"un\n")
    with pytest.raises(DataError, match="has 2 lines but .*has 1"):
        read_parallel(tmp_path / "a.en.gz", tmp_path / "b.fr.gz")


def test_parallel_skip_drops_the_pair_not_one_side(tmp_path):
    (tmp_path / "s.txt").write_bytes(b"one\n\nthree\n")
    (tmp_path / "t.txt").write_bytes(b"un\ndeux\ntrois\n")
    with pytest.raises(DataError, match=r"s\.txt:2: empty line"):
        read_parallel(tmp_path / "s.txt", tmp_path / "t.txt")
    pairs = read_parallel(tmp_path / "s.txt", tmp_path / "t.txt", skip_bad=True)
    assert pairs == [("one", "un"), ("three", "trois")]


def test_truncated_gz(tmp_path):
    p = tmp_path / "t.gz"
    _gz(p, b"line\n" * 5000)
    p.write_bytes(p.read_bytes()[:-30])
    (tmp_path / "u.txt").write_bytes(b"x\n" * 5000)
    with pytest.raises(DataError, match=r"t\.gz:\d+: damaged or truncated gzip"):
        read_parallel(p, tmp_path / "u.txt")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_tsv(tmp_path / "nope.tsv")


lines = st.lists(
    st.one_of(
        st.binary(max_size=40),
        st.text(max_size=30).map(lambda s: s.encode("utf-8")),
        st.text(max_size=30).map(lambda s: s.encode("latin-1", "replace")),
        st.just(b""),
        st.just(b"\xef\xbb\xbfbom\tline"),
        st.just(b"a\tb"),
        st.just(b"x" * 5000 + b"\t" + b"y" * 5000),
    ),
    max_size=12,
)
endings = st.sampled_from([b"\n", b"\r\n"])
FIXTURE = [HealthCheck.function_scoped_fixture]


@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURE)
@given(lines=lines, end=endings, gz=st.booleans(), cut=st.integers(0, 20), skip=st.booleans())
def test_fuzz_tsv_never_crashes(tmp_path_factory, lines, end, gz, cut, skip):
    """Any bytes give pairs (each with a non-empty source and target) or a one-line DataError."""
    folder = tmp_path_factory.mktemp("fuzz")
    data = end.join(lines)
    p = folder / ("f.tsv.gz" if gz else "f.tsv")
    if gz:
        _gz(p, data)
        if cut:
            p.write_bytes(p.read_bytes()[:-cut])
    else:
        p.write_bytes(data)
    try:
        pairs = read_tsv(p, skip_bad=skip)
    except DataError as e:
        assert "\n" not in str(e)
        assert str(p) in str(e)
        return
    assert all(s and t and "\t" not in s for s, t in pairs)


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURE)
@given(src=lines, tgt=lines, skip=st.booleans())
def test_fuzz_parallel_never_misaligns(tmp_path_factory, src, tgt, skip):
    folder = tmp_path_factory.mktemp("fuzzp")
    # tag each line with its number so alignment is checkable
    s = [b"%d " % i + x.replace(b"\n", b" ").replace(b"\r", b" ") for i, x in enumerate(src)]
    t = [b"%d " % i + x.replace(b"\n", b" ").replace(b"\r", b" ") for i, x in enumerate(tgt)]
    (folder / "s").write_bytes(b"\n".join(s))
    (folder / "t").write_bytes(b"\n".join(t))
    try:
        pairs = read_parallel(folder / "s", folder / "t", skip_bad=skip)
    except DataError as e:
        assert "\n" not in str(e)
        return
    assert len(s) == len(t)
    for a, b in pairs:
        assert a.split()[0] == b.split()[0]
