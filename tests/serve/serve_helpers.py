"""Helpers of the serve tests: tiny trained runs of every kind ``attnrun serve`` shows, and a
real server on a free port.

The runs are trained once per session (a few seconds, one thread): a Transformer on the coref
corpus (2 + 2 layers, 2 heads), a Bahdanau RNN and a ``decoder=none`` model on the toy corpus, a
selfattn resolver and a nonparametric regress run. The server is ``python -m attnrun serve ...
--port 0`` in a subprocess, stopped with SIGINT when its test module ends.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

TINY_TRANSLATE = {
    "train": {"epochs": 1, "threads": 1},
    "data": {"n_train": 300, "n_val": 30, "n_test": 30},
    "plot": {"heatmaps": 1},
}
SENTENCE = "the cat didn't cross the street because it was too tired ."


def train_runs(root: Path) -> dict[str, Path]:
    from attnrun.experiments.regress import run as regress
    from attnrun.experiments.selfattn import run as selfattn
    from attnrun.experiments.translate import run as translate

    small = {"num_hiddens": 32, "embed_size": 16}
    runs = {
        "transformer": (translate, {
            **TINY_TRANSLATE, "dataset": "coref",
            "model": {"arch": "transformer", "num_hiddens": 32, "num_heads": 2,
                      "ffn_hiddens": 64, "num_layers": 2},
        }),
        "rnn": (translate, {**TINY_TRANSLATE, "dataset": "coref", "model": small}),
        "none": (translate, {**TINY_TRANSLATE, "decoder": "none", "model": small}),
        "selfattn": (selfattn, {
            "data": {"n_train": 300, "n_test": 50},
            "train": {"epochs": 2, "batch_size": 32, "threads": 1}, "plot": {"enabled": False},
        }),
        "regress": (regress, {"train": {"threads": 1}}),
    }  # fmt: skip
    out = {}
    for name, (experiment, cfg) in runs.items():
        experiment(cfg, root / name)
        out[name] = root / name
    return out


#: The tiny Transformer's heads per kind (layers × heads), as ``GET /api/runs`` lists them.
TRANSFORMER_HEADS = {"encoder_self": [2, 2], "cross": [2, 2], "decoder_self": [2, 2]}


def write_test_ablation(
    run_dir: Path, folder: str = "2026-01-02/00-00-00", metric: str = "bleu", base: float = 0.0
) -> dict:
    """An ``ablation.json`` (through the files helper) in ``run_dir/ablations/<folder>`` with a
    different ``metric`` delta for every head of :data:`TRANSFORMER_HEADS` (so a head read at
    the wrong index shows a wrong number); returns the record."""
    from attnrun.runs import files

    heads = []
    for k, (kind, layers) in enumerate(TRANSFORMER_HEADS.items()):
        for layer, n in enumerate(layers):
            for head in range(n):
                delta = round(base - (10 * k + 3 * layer + head + 1) / 100, 4)
                heads.append({
                    "kind": kind, "layer": layer, "head": head,
                    "label": f"{kind} L{layer + 1} H{head + 1}",
                    "metrics": {metric: 2.0 + delta, "perplexity": 71.0},
                    "deltas": {metric: delta, "perplexity": 1.0},
                    "importance": round(0.5 - delta, 6),
                })  # fmt: skip
    record = {
        "run": str(run_dir), "experiment": "translate", "limit": None, "split": "test",
        "examples": 30, "mode": "zero", "metric": metric, "metric_names": [metric, "perplexity"],
        "lower_is_better": ["perplexity"], "intact": {metric: 2.0, "perplexity": 70.0},
        "heads": heads,
    }  # fmt: skip
    out_dir = run_dir / files.ABLATIONS / folder
    out_dir.mkdir(parents=True)
    files.write_ablation(out_dir, record)
    return record


def tree_digest(root: Path) -> dict[str, str]:
    """path → SHA-256 of every file under ``root`` (what "unchanged" compares)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


class Server:
    """A running ``attnrun serve`` subprocess and its URL."""

    def __init__(self, *args: str, timeout: float = 60.0, env: dict | None = None) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "attnrun", "serve", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        self.url = self._read_url(timeout)

    def _read_url(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                if "http://" in line:
                    return "http://" + line.split("http://")[1].split()[0]
            if self.proc.poll() is not None:
                break
        self.stop()
        raise AssertionError(f"serve did not start: {self.proc.stderr.read()}")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def get(self, path: str) -> tuple[int, dict | str]:
        return self.request("GET", path)

    def post(self, path: str, body, content_type: str = "application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.request("POST", path, data, {"Content-Type": content_type})

    def request(self, method: str, path: str, data: bytes | None = None, headers=None):
        req = urllib.request.Request(
            self.url + path.lstrip("/"), data, headers or {}, method=method
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                status, raw = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read().decode()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw
