"""``attnrun serve``'s targets (issue 19): round trip, concurrency and memory.

1. ``POST /api/predict`` round trip (keep-alive connection, greedy, every kind of attention
   returned) for a 20-word sentence on a Transformer run — the coref recipe's
   (``attnrun translate recipe=coref``) — median and p90 of ``--requests`` requests, with no head
   off and with one head off. Peer: the same work in process, without HTTP (``Translator`` +
   :func:`attnrun.translate.predict.translate_with_attention` under
   :func:`attnrun.core.heads.intervene`), measured interleaved in the same run: the ratio is the
   server's overhead. Targets: ≤ 50 ms and ≤ 60 ms.
2. 32 concurrent clients, ``--per-client`` requests each with a random ablation: every one
   answered, requests per second against the sequential rate.
3. Memory: a server holding 8 toy runs (trained here, tiny, one thread): VmRSS after loading and
   after one answer from each. Target: < 1 GB.

Usage::

    python benchmarks/bench_serve.py --run outputs/DATE/TIME [--requests 50] [--json out.json]

The server runs with ``--threads 1`` (the default). On a shared machine, note ``uptime``'s load
next to the figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SENTENCE = (
    "in the end , the old cow with the lamp would not run across the field since it seemed "
    "too lazy ."
)  # 20 words (and 2 punctuation tokens), the coref corpus's vocabulary


def start(paths: list[str]) -> tuple[subprocess.Popen, str, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "attnrun", "serve", *paths, "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    line = proc.stdout.readline()
    if "http://" not in line:
        proc.kill()
        raise SystemExit(f"serve did not start: {proc.stderr.read()}")
    host, port = line.split("http://")[1].split("/")[0].split(":")
    return proc, host, int(port)


def stop(proc: subprocess.Popen) -> None:
    import signal

    proc.send_signal(signal.SIGINT)
    proc.wait(10)


class Client:
    """One keep-alive connection."""

    def __init__(self, host: str, port: int) -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=120)

    def post(self, body: dict) -> dict:
        self.conn.request(
            "POST", "/api/predict", json.dumps(body), {"Content-Type": "application/json"}
        )
        r = self.conn.getresponse()
        data = json.loads(r.read())
        if r.status != 200:
            raise RuntimeError(data)
        return data

    def get(self, path: str) -> dict:
        self.conn.request("GET", path)
        return json.loads(self.conn.getresponse().read())


def in_process(run: str):
    """The peer: the same decode and maps, called directly."""
    import torch

    from attnrun.core.heads import Head, Interventions, head_sites, intervene
    from attnrun.translate.predict import for_predict, translate_with_attention
    from attnrun.translate.translator import Translator

    torch.set_num_threads(1)
    translator = for_predict(Translator.from_run(run))
    sites = head_sites(translator.model)

    def call(heads: list[Head]) -> None:
        iv = Interventions.remove(heads, sites) if heads else None
        with torch.inference_mode(), intervene(iv):
            translate_with_attention(translator, [SENTENCE])

    return call


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(1000 * (time.perf_counter() - t))
    return out


def summary(ms: list[float]) -> dict:
    ms = sorted(ms)
    return {
        "median_ms": round(statistics.median(ms), 2),
        "p90_ms": round(ms[int(0.9 * len(ms))], 2),
    }


def round_trips(run: str, n: int) -> dict:
    from attnrun.core.heads import Head

    proc, host, port = start([run])
    try:
        client = Client(host, port)
        (info,) = client.get("/api/runs")["runs"]
        rid = info["id"]
        head = {"kind": "encoder_self", "layer": 1, "head": 0}
        body = {"run": rid, "text": SENTENCE, "beam": 1}
        answer = client.post(body)
        peer = in_process(run)
        for _ in range(5):  # warm up both
            client.post(body)
            peer([])
        rows = {}
        for name, ablate in (("all_heads", []), ("one_head_off", [head])):
            served, direct = [], []
            heads = [Head(**h) for h in ablate]
            for _ in range(n):  # interleaved: the same machine state for both
                served += timed(lambda a=ablate: client.post({**body, "ablate": a}), 1)
                direct += timed(lambda h=heads: peer(h), 1)
            rows[name] = {
                "served": summary(served),
                "in_process": summary(direct),
                "ratio_median": round(statistics.median(served) / statistics.median(direct), 2),
            }
        tokens = {"source": len(answer["source_tokens"]), "target": len(answer["target_tokens"])}
        kinds = {k: list(map(len, (w, w[0]))) for k, w in answer["attention"].items()}
        return {"run": run, "settings": info["settings"], "tokens": tokens, "kinds": kinds,
                "answer_bytes": len(json.dumps(answer)), **rows}  # fmt: skip
    finally:
        stop(proc)


def concurrency(run: str, clients: int, per_client: int) -> dict:
    proc, host, port = start([run])
    try:
        rid = Client(host, port).get("/api/runs")["runs"][0]["id"]
        heads = [{"kind": k, "layer": i, "head": h} for k in ("encoder_self", "cross")
                 for i in range(2) for h in range(2)]  # fmt: skip
        rng = random.Random(0)
        bodies = [
            [{"run": rid, "text": SENTENCE, "ablate": rng.sample(heads, rng.randint(0, 2))}
             for _ in range(per_client)]
            for _ in range(clients)
        ]  # fmt: skip
        seq = Client(host, port)
        for b in bodies[0][:3]:
            seq.post(b)
        t = time.perf_counter()
        for b in bodies[0] * 2:
            seq.post(b)
        sequential_rps = 2 * per_client / (time.perf_counter() - t)

        def worker(bs):
            c = Client(host, port)
            return [c.post(b) is not None for b in bs]

        t = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            done = sum(sum(r) for r in pool.map(worker, bodies))
        rps = done / (time.perf_counter() - t)
        return {
            "clients": clients,
            "answered": done,
            "asked": clients * per_client,
            "concurrent_rps": round(rps, 1),
            "sequential_rps": round(sequential_rps, 1),
            "ratio": round(rps / sequential_rps, 2),
        }
    finally:
        stop(proc)


def memory(n_runs: int = 8) -> dict:
    from attnrun.experiments.translate import run as translate

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i in range(n_runs):
            arch = {"arch": "transformer", "num_heads": 2, "num_layers": 2} if i % 2 else {}
            translate({
                "dataset": "toy", "seed": i, "train": {"epochs": 1, "threads": 1},
                "data": {"n_train": 300, "n_val": 30, "n_test": 30}, "plot": {"heatmaps": 1},
                "model": {"num_hiddens": 32, "embed_size": 16, "ffn_hiddens": 64, **arch},
            }, root / f"toy{i}")  # fmt: skip
        proc, host, port = start([str(root)])
        try:
            loaded = _rss_mb(proc.pid)
            client = Client(host, port)
            for r in client.get("/api/runs")["runs"]:
                client.post({"run": r["id"], "text": "a b c"})
            return {
                "runs": n_runs,
                "rss_loaded_mb": loaded,
                "rss_after_answers_mb": _rss_mb(proc.pid),
            }
        finally:
            stop(proc)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="a Transformer translate run (recipe=coref)")
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--per-client", type=int, default=4)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    out = {
        "load_before": os.getloadavg(),
        "round_trip": round_trips(args.run, args.requests),
        "concurrency": concurrency(args.run, args.clients, args.per_client),
        "memory": memory(),
        "load_after": os.getloadavg(),
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
