"""Benchmark ``attnrun regress``'s math: Nadaraya-Watson speed, accuracy, memory; LOO bandwidth.

Targets (n_train = 100,000, n_query = 10,000, gaussian, x ~ U(0, 5), 2 CPU threads):
max |error| <= 1e-4 against the dense formula (float64, in chunks), peak RSS < 500 MB for the whole
process, >= 1e10 query-key pairs/s at bandwidth 0.05 and >= 1e9 at bandwidth 1.0. LOO bandwidth
on n = 2,000: >= 50x faster than statsmodels ``KernelReg(reg_type='lc', bw='cv_ls')``
(interleaved repeats, medians). The process runs on 2 threads (attnrun's fast paths run on
torch's current count; ``attnrun regress`` sets it from ``train.threads``).

``--threads`` instead measures 1 against 2 threads on each fast path, interleaved in one process
(alternating which goes first), and prints the medians and the load average: the figures behind
the thread notes in ``attnrun/regression/nadaraya_watson.py``.

Each case runs in its own subprocess (``--case ...``), so the peak RSS it reports
(``getrusage(RUSAGE_SELF).ru_maxrss`` of that process) is that case's alone. Timings are medians of
repeats (other jobs share the cores). The d2l peer row (the book's dense recipe) is measured at a
size whose matrix fits in memory; it is skipped when ``shared/peers`` is missing.

    PYTHONPATH=. python benchmarks/bench_regress.py [--repeats 5] [--shared PATH] [--quick]
    PYTHONPATH=. python benchmarks/bench_regress.py --threads [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = Path(__file__).resolve().parents[2] / "shared"
N_TRAIN, N_QUERY = 100_000, 10_000


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _data(n_train: int, n_query: int):
    import torch

    g = torch.Generator().manual_seed(0)
    x = torch.rand(n_train, generator=g) * 5
    y = 2 * torch.sin(x) + x**0.8 + 0.5 * torch.randn(n_train, generator=g)
    q = torch.rand(n_query, generator=g) * 5
    return q, x, y


def case_speed(bw: float, repeats: int, n_train: int, n_query: int) -> dict:
    import torch

    torch.set_num_threads(2)
    from attnrun.regression.nadaraya_watson import nadaraya_watson

    q, x, y = _data(n_train, n_query)
    nadaraya_watson(q[:100], x, y, "gaussian", bw)  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        nadaraya_watson(q, x, y, "gaussian", bw)
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    return {"seconds": med, "pairs_per_s": n_train * n_query / med, "rss_mb": _rss_mb()}


def case_error(bw: float, n_train: int, n_query: int) -> dict:
    import torch

    torch.set_num_threads(2)
    from attnrun.regression.nadaraya_watson import nadaraya_watson

    q, x, y = _data(n_train, n_query)
    pred = nadaraya_watson(q, x, y, "gaussian", bw).double()
    qd, xd, yd = q.double(), x.double(), y.double()
    err = 0.0
    for s in range(0, n_query, 64):  # the dense formula, float64, 64 queries at a time
        scores = -((qd[s : s + 64, None] - xd[None, :]) ** 2) / (2 * bw * bw)
        ref = torch.softmax(scores, dim=1) @ yd
        err = max(err, float((pred[s : s + 64] - ref).abs().max()))
    return {"max_abs_error": err}


def case_peer(bw: float, repeats: int, n_train: int, n_query: int, shared: str) -> dict:
    import torch

    torch.set_num_threads(2)
    sys.path.insert(0, str(Path(shared) / "peers"))
    from d2l_peer import nw_dense

    q, x, y = _data(n_train, n_query)
    nw_dense(q[:10], x, y, w=1 / bw)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        nw_dense(q, x, y, w=1 / bw)
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    return {"seconds": med, "pairs_per_s": n_train * n_query / med, "rss_mb": _rss_mb()}


def case_loo(repeats: int, n: int, sm_repeats: int) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(2)
    from statsmodels.nonparametric.kernel_regression import KernelReg

    from attnrun.regression.bandwidth import loo_bandwidth, loo_error
    from attnrun.regression.nadaraya_watson import nadaraya_watson

    rng = np.random.default_rng(0)
    x = np.sort(rng.uniform(0, 5, n))
    y = 2 * np.sin(x) + x**0.8 + rng.normal(0, 0.5, n)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    loo_bandwidth(xt[:200], yt[:200])  # warm-up
    ours, sm_times = [], []
    for r in range(repeats):  # interleaved: both see the same load
        t = time.perf_counter()
        h = loo_bandwidth(xt, yt)
        ours.append(time.perf_counter() - t)
        if r < sm_repeats:
            t = time.perf_counter()
            kr = KernelReg(y, x, var_type="c", reg_type="lc", bw="cv_ls")
            sm_times.append(time.perf_counter() - t)
    h_sm = float(kr.bw[0])
    grid = np.linspace(0, 5, 101)
    fit_sm = KernelReg(y, x, var_type="c", reg_type="lc", bw=[h]).fit(grid)[0]
    fit_ours = nadaraya_watson(torch.from_numpy(grid), xt, yt, "gaussian", h).numpy()
    t_ours, t_sm = statistics.median(ours), statistics.median(sm_times)
    return {
        "ours_seconds": t_ours,
        "statsmodels_seconds": t_sm,
        "speedup": t_sm / t_ours,
        "h_ours": h,
        "h_statsmodels": h_sm,
        "h_rel_diff": h / h_sm - 1,
        "loo_error_ours": loo_error(xt, yt, "gaussian", h),
        "loo_error_statsmodels": loo_error(xt, yt, "gaussian", h_sm),
        "fit_max_rel_diff": float(np.max(np.abs(fit_ours - fit_sm) / np.abs(fit_sm))),
    }


def thread_cases() -> dict:
    """name -> (call, inner repeats): the fast paths from tiny to large."""
    import torch

    from attnrun.regression.bandwidth import loo_bandwidth
    from attnrun.regression.nadaraya_watson import nadaraya_watson

    def data(n_train: int, n_query: int):
        q, x, y = _data(n_train, n_query)
        return torch.sort(q)[0], x, y

    q0, x0, y0 = data(50, 50)
    _, x1, y1 = data(2000, 1)
    q2, x2, y2 = data(N_TRAIN, 1000)
    q3, x3, y3 = data(N_TRAIN, N_QUERY)
    return {
        "nadaraya_watson 50 x 50, gaussian h=1 (the book's size)": (
            lambda: nadaraya_watson(q0, x0, y0, "gaussian", 1.0),
            50,
        ),
        "loo_bandwidth n=50": (lambda: loo_bandwidth(x0, y0), 5),
        "loo_bandwidth n=2000": (lambda: loo_bandwidth(x1, y1), 1),
        "nadaraya_watson 1e3 x 1e5, gaussian h=0.05 (windowed)": (
            lambda: nadaraya_watson(q2, x2, y2, "gaussian", 0.05),
            1,
        ),
        "nadaraya_watson 1e4 x 1e5, gaussian h=1 (expansion)": (
            lambda: nadaraya_watson(q3, x3, y3, "gaussian", 1.0),
            1,
        ),
        "nadaraya_watson 1e4 x 1e5, epanechnikov h=0.05 (windowed)": (
            lambda: nadaraya_watson(q3, x3, y3, "epanechnikov", 0.05),
            1,
        ),
    }


def measure_threads(repeats: int) -> list[dict]:
    """1 vs 2 threads per case, interleaved (the order alternates each repeat), medians."""
    from attnrun.device import cpu_threads

    out = []
    for name, (call, inner) in thread_cases().items():
        call()  # warm-up
        times: dict[int, list[float]] = {1: [], 2: []}
        for r in range(repeats):
            for n in (1, 2) if r % 2 == 0 else (2, 1):
                with cpu_threads(n):
                    t = time.perf_counter()
                    for _ in range(inner):
                        call()
                    times[n].append((time.perf_counter() - t) / inner)
        one, two = statistics.median(times[1]), statistics.median(times[2])
        out.append({"case": name, "one_s": one, "two_s": two, "two_over_one": two / one})
        print(
            f"| {name} | {one * 1e3:.2f} | {two * 1e3:.2f} | {two / one:.2f} |"
            f" {min(times[1]) * 1e3:.2f}-{max(times[1]) * 1e3:.2f} /"
            f" {min(times[2]) * 1e3:.2f}-{max(times[2]) * 1e3:.2f} |",
            flush=True,
        )
    return out


def _run_case(kind: str, *args: object) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--case", kind, json.dumps(args)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", nargs="*", help=argparse.SUPPRESS)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--shared", default=str(DEFAULT_SHARED), help="folder holding peers/")
    ap.add_argument("--quick", action="store_true", help="smaller sizes, one statsmodels run")
    ap.add_argument("--threads", action="store_true", help="1 vs 2 threads per fast path only")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "regress.json"))
    a = ap.parse_args()
    if a.case is not None:  # child process: one case, one JSON line on stdout
        kind, args = a.case
        fn = {"speed": case_speed, "error": case_error, "peer": case_peer, "loo": case_loo}[kind]
        print(json.dumps(fn(*json.loads(args))))
        return

    if a.threads:
        print(f"load average: {Path('/proc/loadavg').read_text().split()[:3]}")
        print("| case | 1 thread ms | 2 threads ms | 2/1 | range 1 / range 2 |")
        print("|---|---|---|---|---|")
        measure_threads(a.repeats)
        print(f"load average: {Path('/proc/loadavg').read_text().split()[:3]}")
        return

    n_train, n_query = (20_000, 2_000) if a.quick else (N_TRAIN, N_QUERY)
    results: dict = {"n_train": n_train, "n_query": n_query, "threads": 2, "nw": {}}
    results["loadavg_start"] = Path("/proc/loadavg").read_text().split()[:3]
    rows = []
    for bw, target in ((0.05, 1e10), (1.0, 1e9)):
        sp = _run_case("speed", bw, a.repeats, n_train, n_query)
        er = _run_case("error", bw, n_train, n_query)
        results["nw"][str(bw)] = {**sp, **er, "target_pairs_per_s": target}
        rows.append(
            f"| attnrun nadaraya_watson | {bw} | {n_query}x{n_train} | "
            f"{sp.get('pairs_per_s', math.nan):.2e} (target {target:.0e}) | "
            f"{er.get('max_abs_error', math.nan):.1e} | {sp.get('rss_mb', math.nan):.0f} |"
        )
    peers = Path(a.shared) / "peers" / "d2l_peer.py"
    if peers.exists():
        pq = 50 if a.quick else 200  # the book's (n_query, n_train) matrix must fit: 200 x 1e5
        for bw in (0.05, 1.0):
            pr = _run_case("peer", bw, a.repeats, n_train, pq, a.shared)
            results.setdefault("peer_d2l_nw_dense", {})[str(bw)] = {**pr, "n_query": pq}
            rows.append(
                f"| d2l nw_dense (peer) | {bw} | {pq}x{n_train} | "
                f"{pr.get('pairs_per_s', math.nan):.2e} | - | {pr.get('rss_mb', math.nan):.0f} |"
            )
    else:
        print(f"(peer rows skipped: {peers} not found)")
    n_loo = 500 if a.quick else 2000
    loo = _run_case("loo", a.repeats, n_loo, 1 if a.quick else 3)
    results["loo_bandwidth"] = {**loo, "n": n_loo}

    print("| implementation | bandwidth | size (query x train) | pairs/s | max abs err | RSS MB |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    print()
    print(f"| loo_bandwidth, n={n_loo} | attnrun | statsmodels cv_ls |")
    print("|---|---|---|")
    if "error" in loo:
        print(f"| error | {loo['error']} | |")
    else:
        print(
            f"| seconds (median) | {loo['ours_seconds']:.3f} | {loo['statsmodels_seconds']:.2f} |"
        )
        print(f"| speed-up | {loo['speedup']:.0f}x (target 50x) | 1x |")
        print(f"| bandwidth | {loo['h_ours']:.5f} | {loo['h_statsmodels']:.5f} |")
        print(
            f"| exact LOO MSE | {loo['loo_error_ours']:.8f} | {loo['loo_error_statsmodels']:.8f} |"
        )
        print(f"| fit at equal h, max rel diff | {loo['fit_max_rel_diff']:.1e} | |")
    results["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    print(f"\nload average: start {results['loadavg_start']}, end {results['loadavg_end']}")
    from attnrun.io import write_json

    write_json(a.out, results)
    print(f"\nwrote {a.out}")


if __name__ == "__main__":
    main()
