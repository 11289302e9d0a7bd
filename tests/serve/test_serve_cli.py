"""``attnrun serve``'s command line: unloadable runs skipped with one line each, none loadable is
one line and exit 2, bad options and a busy port are one line and exit 2, a non-loopback host
warns; the page's Content-Security-Policy allows only the page's own scripts."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time

import pytest
from serve_helpers import Server


def _serve(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "attnrun", "serve", *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def _damaged(trained, root):
    """A truncated model.pt, an unfinished run, a tampered selfattn model: none loadable."""
    for name in ("transformer", "rnn", "selfattn"):
        shutil.copytree(trained[name], root / name)
    weights = root / "transformer" / "model.pt"
    weights.write_bytes(weights.read_bytes()[:500])
    metrics = json.loads((root / "rnn" / "metrics.json").read_text())
    (root / "rnn" / "metrics.json").write_text(json.dumps({**metrics, "status": "running"}))
    sa = root / "selfattn" / "model.pt"
    raw = bytearray(sa.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one byte changed: the checksum recorded at training differs
    sa.write_bytes(bytes(raw))


def test_no_loadable_run_is_one_line_each_and_exit_2(trained, tmp_path):
    """Guards the loader's promises: each damaged folder named with its reason on one line, and
    with nothing left to serve one error line and exit 2 (no traceback, no server)."""
    _damaged(trained, tmp_path)
    p = _serve(str(tmp_path), "--port", "0")
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 4, lines
    assert "model.pt: cannot load: truncated" in lines[0] or "truncated" in p.stderr
    assert "not completed" in p.stderr and "checksum" in p.stderr
    assert lines[-1].startswith("attnrun: error: no run to serve under")
    assert "Traceback" not in p.stderr and p.stdout == ""


def test_a_damaged_run_is_skipped_and_the_others_served(trained, tmp_path):
    """Guards skipping: the good run is served, the bad one named once on stderr."""
    _damaged(trained, tmp_path)
    shutil.copytree(trained["regress"], tmp_path / "regress")
    s = Server(str(tmp_path), "--port", "0")
    try:
        _, body = s.get("/api/runs")
        assert [r["name"] for r in body["runs"]] == ["regress"]
    finally:
        assert s.stop() == 0
    assert s.proc.stderr.read().count("attnrun serve: skipped") == 3


@pytest.mark.parametrize(
    ("args", "words"),
    [(["--port", "70000"], "--port 70000 is not valid"),
     (["--threads", "-1"], "--threads -1 is not valid"),
     (["--device", "tpu"], "device='tpu' is not valid")],
)  # fmt: skip
def test_bad_options_are_one_line(trained, args, words):
    p = _serve(str(trained["regress"]), *args)
    assert p.returncode == 2 and words in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_missing_path_and_busy_port_are_one_line(trained, tmp_path):
    p = _serve(str(tmp_path / "nowhere"))
    assert p.returncode == 2 and "no such folder" in p.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        p = _serve(str(trained["regress"]), "--port", str(port))
    assert p.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in p.stderr


def test_a_non_loopback_host_warns_in_one_line(trained):
    """Guards the warning (the address, TEST-NET-1, cannot be bound here: nothing listens)."""
    p = _serve(str(trained["regress"]), "--host", "192.0.2.1", "--port", "0")
    lines = p.stderr.strip().splitlines()
    assert "warning: listening on 192.0.2.1: everyone who can reach" in lines[0]
    assert p.returncode == 2 and "cannot listen on 192.0.2.1" in lines[1]


def test_page_csp_allows_only_its_own_inline_script():
    """Guards the Content-Security-Policy: the hash is the page's one script, nothing else."""
    from starlette.testclient import TestClient

    from attnrun.serve.app import create_app
    from attnrun.serve.page import page_html, script_hashes

    r = TestClient(create_app([]), base_url="http://127.0.0.1").get("/")
    csp = r.headers["content-security-policy"]
    (digest,) = script_hashes(page_html())
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == digest  # no 'unsafe-inline', no other source
    assert "connect-src 'self'" in csp and r.headers["x-content-type-options"] == "nosniff"
    assert set(re.findall(r"https?://[^\"'\s]+", r.text)) == {"http://www.w3.org/2000/svg"}
    assert "<script src" not in r.text and "stylesheet" not in r.text  # nothing fetched


@pytest.mark.parametrize(
    ("header", "name"),
    [("127.0.0.1:8000", "127.0.0.1"), ("localhost", "localhost"), ("[::1]:8000", "::1"),
     ("[::1]", "::1"), ("evil.example:80", "evil.example"),
     ("127.0.0.1.evil.example", "127.0.0.1.evil.example")],
)  # fmt: skip
def test_host_names_are_read_without_the_port(header, name):
    """Guards the loopback check against IPv6 headers (a naive split at ':' gives '[')."""
    from attnrun.serve.app import host_name

    assert host_name(header) == name


def test_open_starts_the_browser_once_on_the_served_url(trained, tmp_path):
    """Guards ``--open``: the user's browser (``$BROWSER``, which Python's ``webbrowser`` reads) is
    started once, on the URL the server printed (the real port, not ``--port 0``); without
    ``--open`` it is never started."""
    seen = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" >> "{seen}"\n')
    browser.chmod(0o755)
    env = {"BROWSER": f"{browser} %s"}
    run = str(trained["regress"])
    plain = Server(run, "--port", "0", env=env)
    opened = Server(run, "--port", "0", "--open", env=env)
    try:
        deadline = time.monotonic() + 15
        while not seen.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # a second browser, or plain's, would show up by now
        assert [u.rstrip("/") for u in seen.read_text().split()] == [opened.url.rstrip("/")]
        assert plain.url != opened.url
    finally:
        plain.stop()
        opened.stop()
