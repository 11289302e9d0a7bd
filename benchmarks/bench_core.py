"""Benchmark the shared attention core against the textbook (d2l 1.0.3) formulation.

Every row is forward + backward, timed on the same device in the same run, with peer and ours
repeats interleaved and medians taken (other jobs share the machine). Prints a markdown table and
writes ``benchmarks/results/core.json``.

    python benchmarks/bench_core.py                  # CPU, all rows
    python benchmarks/bench_core.py --device cuda    # CUDA rows (adds T = 1024)
    python benchmarks/bench_core.py --quick          # fewer repeats
    python benchmarks/bench_core.py --crossover      # fused-vs-plain sweep behind prefer_fused

The peer is found in ``<shared>/peers`` where ``<shared>`` is ``--shared``, ``$ATTNRUN_SHARED`` or
``../shared`` next to the repository; without it the peer rows are skipped (ours still timed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from attnrun.core import Attention, MultiHeadAttention, masked_softmax  # noqa: E402
from attnrun.device import available_cores, thread_count  # noqa: E402


def _load(avg: tuple[float, float, float]) -> str:
    """``os.getloadavg()`` as ``1-min / 5-min / 15-min``."""
    return " / ".join(f"{x:.2f}" for x in avg)


def load_peer(shared: Path):
    """d2l's torch module via the shared peer helper, or ``None`` when it is not available."""
    peers = shared / "peers"
    if not (peers / "d2l_peer.py").exists():
        return None
    sys.path.insert(0, str(peers))
    try:
        from d2l_peer import import_d2l

        return import_d2l()
    except Exception as err:  # the peer is optional: report and go on without it
        print(f"peer unavailable: {err}", file=sys.stderr)
        return None


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_once(fn: Callable[[], None], device: torch.device, min_s: float) -> float:
    """Milliseconds per call of ``fn``, averaged over enough calls to take ``min_s`` seconds."""
    n, elapsed = 0, 0.0
    sync(device)
    start = time.perf_counter()
    while elapsed < min_s or n < 2:
        fn()
        n += 1
        sync(device)
        elapsed = time.perf_counter() - start
    return 1000.0 * elapsed / n


def compare(fns: dict[str, Callable[[], None]], device, repeats: int, min_s: float) -> dict:
    """Interleaved medians (ms) of several closures."""
    for fn in fns.values():  # warm-up (allocator, lazy modules, kernels)
        fn()
        fn()
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            samples[name].append(time_once(fn, device, min_s))
    return {k: statistics.median(v) for k, v in samples.items()}


def fwd_bwd(forward: Callable[[], torch.Tensor], params: list[torch.Tensor]):
    def step() -> None:
        for p in params:
            p.grad = None
        forward().sum().backward()

    return step


def matmul_rate(device, dtype, min_s: float) -> float:
    """Best-of FLOP/s of a large square matmul: the machine's matmul rate."""
    n = 1024 if device.type == "cpu" else 8192
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = min(time_once(lambda: a @ b, device, min_s) for _ in range(5))
    return 2 * n**3 / (best / 1000.0)


def call_ours(attn, qkv, valid_lens, need_weights):
    return attn(*qkv, valid_lens, need_weights)[0]


def dot_rows(d2l, device, dtype, shapes, repeats, min_s):
    """Scaled-dot attention, unmasked and with valid lengths: peer vs ours (+/- weights)."""
    rows = []
    for bh, t, d in shapes:
        g = torch.Generator(device="cpu").manual_seed(0)
        q, k, v = (
            torch.randn(bh, t, d, generator=g).to(device, dtype).requires_grad_() for _ in "qkv"
        )
        lens = torch.randint(1, t + 1, (bh,), generator=g).to(device)
        ours = Attention("scaled_dot", d).to(device)
        for masked in (False, True):
            vl = lens if masked else None
            qkv = [q, k, v]
            fns = {
                "ours": fwd_bwd(partial(call_ours, ours, qkv, vl, False), qkv),
                "ours_w": fwd_bwd(partial(call_ours, ours, qkv, vl, True), qkv),
            }
            if d2l is not None:
                peer = d2l.DotProductAttention(0.0).to(device)
                fns["peer"] = fwd_bwd(partial(peer, q, k, v, vl), qkv)
            res = compare(fns, device, repeats, min_s)
            name = f"scaled_dot {'valid_lens' if masked else 'no mask'} B·H={bh} T={t} d={d}"
            rows.append(row(name, res.get("peer"), res["ours"], note="need_weights=False"))
            rows.append(row(name, res.get("peer"), res["ours_w"], note="need_weights=True"))
    return rows


def softmax_rows(d2l, device, dtype, repeats, min_s):
    bh, t = (256, 256) if device.type == "cpu" else (512, 1024)
    g = torch.Generator(device="cpu").manual_seed(1)
    x = torch.randn(bh, t, t, generator=g).to(device, dtype).requires_grad_()
    lens = torch.randint(1, t + 1, (bh,), generator=g).to(device)
    # d2l's masked_softmax writes into a reshaped view of its input, so feed it a fresh copy.
    fns = {"ours": fwd_bwd(lambda: masked_softmax(x * 1.0, lens), [x])}
    if d2l is not None:
        fns["peer"] = fwd_bwd(lambda: d2l.masked_softmax(x * 1.0, lens), [x])
    res = compare(fns, device, repeats, min_s)
    return [row(f"masked_softmax valid_lens B={bh} T={t}", res.get("peer"), res["ours"])]


def additive_rows(d2l, device, dtype, repeats, min_s):
    """One additive-attention call, and a 20-step decode with keys projected once."""
    b, tk, dk, dq, h, steps = 64, 50, 256, 256, 256, 20
    g = torch.Generator(device="cpu").manual_seed(2)
    keys = torch.randn(b, tk, dk, generator=g).to(device, dtype).requires_grad_()
    qs = torch.randn(steps, b, 1, dq, generator=g).to(device, dtype).requires_grad_()
    lens = torch.randint(1, tk + 1, (b,), generator=g).to(device)
    ours = Attention("additive", dq, dk, h).to(device, dtype)
    params = [keys, qs, *ours.parameters()]

    def ours_decode():
        proj = ours.project_keys(keys)  # once per source sequence
        ctx = [ours(qs[i], keys, keys, lens, projected_keys=proj)[0] for i in range(steps)]
        return torch.cat(ctx, 1)

    q_all = qs[:, :, 0].transpose(0, 1)  # (B, steps, dq): every query at once
    fns = {
        "ours_decode": fwd_bwd(ours_decode, params),
        "ours_call": fwd_bwd(lambda: ours(q_all, keys, keys, lens)[0], params),
    }
    if d2l is not None:
        peer = d2l.AdditiveAttention(h, 0.0).to(device)
        with torch.no_grad():  # materialise the lazy layers in fp32, then cast
            peer(qs[0].float(), keys.float(), keys.float(), lens)
        peer.to(dtype)
        pparams = [keys, qs, *peer.parameters()]

        def peer_decode():
            ctx = [peer(qs[i], keys, keys, lens) for i in range(steps)]
            return torch.cat(ctx, 1)

        fns["peer_decode"] = fwd_bwd(peer_decode, pparams)
        fns["peer_call"] = fwd_bwd(lambda: peer(q_all, keys, keys, lens), pparams)
    res = compare(fns, device, repeats, min_s)
    return [
        row(
            f"additive call B={b} Tq={steps} Tk={tk} d={dk} h={h}",
            res.get("peer_call"),
            res["ours_call"],
        ),
        row(
            f"additive decode {steps} steps B={b} Tk={tk} d={dk} h={h}",
            res.get("peer_decode"),
            res["ours_decode"],
            note="keys projected once",
        ),
    ]


def multihead_rows(d2l, device, dtype, repeats, min_s):
    b, t, h, heads = 32, 64, 256, 8
    g = torch.Generator(device="cpu").manual_seed(3)
    x = torch.randn(b, t, h, generator=g).to(device, dtype).requires_grad_()
    lens = torch.randint(1, t + 1, (b,), generator=g).to(device)
    torch.manual_seed(3)
    ours = MultiHeadAttention(h, heads).to(device, dtype)
    fns = {"ours": fwd_bwd(lambda: ours(x, x, x, lens, need_weights=False)[0], [x])}
    if d2l is not None:
        peer = d2l.MultiHeadAttention(h, heads, 0.0).to(device)
        with torch.no_grad():  # materialise the lazy layers in fp32, then cast
            peer(x.float(), x.float(), x.float(), lens)
        peer.to(dtype)
        fns["peer"] = fwd_bwd(lambda: peer(x, x, x, lens), [x])
    res = compare(fns, device, repeats, min_s)
    return [
        row(f"multi-head valid_lens B={b} T={t} h={h} heads={heads}", res.get("peer"), res["ours"])
    ]


def flop_rate_row(device, dtype, repeats, min_s, mm_rate):
    """Achieved FLOP/s of scaled-dot self-attention (ours, fused-eligible) vs the matmul rate."""
    bh, t, d = (256, 256, 64) if device.type == "cpu" else (256, 1024, 64)
    g = torch.Generator(device="cpu").manual_seed(4)
    q, k, v = (torch.randn(bh, t, d, generator=g).to(device, dtype) for _ in "qkv")
    ours = Attention("scaled_dot", d).to(device)
    qg, kg, vg = (x.clone().requires_grad_() for x in (q, k, v))
    res = compare(
        {
            "fwd": lambda: ours(q, k, v, need_weights=False),
            "fwd_bwd": fwd_bwd(lambda: ours(qg, kg, vg, need_weights=False)[0], [qg, kg, vg]),
        },
        device,
        repeats,
        min_s,
    )
    flops_fwd = 4 * bh * t * t * d  # QKᵀ and AV
    fwd_rate = flops_fwd / (res["fwd"] / 1000)
    bwd_rate = 3 * flops_fwd / (res["fwd_bwd"] / 1000)  # backward = 2× forward matmul FLOPs
    return {
        "shape": f"B·H={bh} T={t} d={d}",
        "matmul_gflops": mm_rate / 1e9,
        "forward_ms": res["fwd"],
        "forward_gflops": fwd_rate / 1e9,
        "forward_fraction": fwd_rate / mm_rate,
        "fwd_bwd_ms": res["fwd_bwd"],
        "fwd_bwd_gflops": bwd_rate / 1e9,
        "fwd_bwd_fraction": bwd_rate / mm_rate,
    }


def crossover(device, dtype, repeats, min_s):
    """Fused (SDPA) vs plain per shape: the measurements behind ``prefer_fused``."""
    out = []
    for bh, t, d in [(32, 32, 64), (32, 64, 64), (64, 96, 64), (64, 128, 64), (32, 192, 64),
                     (256, 256, 64), (16, 512, 64)]:  # fmt: skip
        g = torch.Generator(device="cpu").manual_seed(5)
        q, k, v = (
            torch.randn(bh, t, d, generator=g).to(device, dtype).requires_grad_() for _ in "qkv"
        )
        lens = torch.randint(1, t + 1, (bh,), generator=g).to(device)
        fused = Attention("scaled_dot", d, backend="fused").to(device)
        plain = Attention("scaled_dot", d, backend="plain").to(device)
        for vl in (None, lens):
            qkv = [q, k, v]
            fns = {
                "plain": fwd_bwd(partial(call_ours, plain, qkv, vl, False), qkv),
                "fused": fwd_bwd(partial(call_ours, fused, qkv, vl, False), qkv),
            }
            res = compare(fns, device, repeats, min_s)
            tag = "valid_lens" if vl is not None else "no mask"
            ratio = res["plain"] / res["fused"]
            out.append(dict(shape=f"B·H={bh} T={t} d={d} {tag}", **res, ratio=ratio))
            print(f"| {out[-1]['shape']} | {res['plain']:.2f} | {res['fused']:.2f} | {ratio:.2f} |")
    return out


def row(name, peer_ms, ours_ms, note=""):
    return {
        "shape": name,
        "peer_ms": peer_ms,
        "ours_ms": ours_ms,
        "speedup": None if peer_ms is None else peer_ms / ours_ms,
        "note": note,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--min-s", type=float, default=0.2, help="seconds per timing sample")
    ap.add_argument("--quick", action="store_true", help="3 repeats of 0.1 s")
    ap.add_argument("--crossover", action="store_true", help="only the fused-vs-plain sweep")
    ap.add_argument(
        "--shared",
        type=Path,
        default=Path(
            os.environ.get("ATTNRUN_SHARED", Path(__file__).resolve().parents[2] / "shared")
        ),
    )
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "core.json")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: every core)")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats, args.min_s = 3, 0.1
    torch.set_num_threads(thread_count(args.threads))
    load_before = os.getloadavg()
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)

    if args.crossover:
        print("| shape | plain ms | fused ms | plain/fused |\n|---|---|---|---|")
        crossover(device, dtype, args.repeats, args.min_s)
        return 0

    d2l = load_peer(args.shared)
    if d2l is None:
        print(f"(no peer at {args.shared}/peers: peer rows skipped)")
    if device.type == "cpu":
        shapes = [(32, 64, 64), (64, 128, 64), (256, 256, 64), (16, 512, 64)]
    else:
        shapes = [(32, 64, 64), (256, 256, 64), (64, 1024, 64), (16, 2048, 64)]
    rows = []
    rows += softmax_rows(d2l, device, dtype, args.repeats, args.min_s)
    rows += dot_rows(d2l, device, dtype, shapes, args.repeats, args.min_s)
    rows += additive_rows(d2l, device, dtype, args.repeats, args.min_s)
    rows += multihead_rows(d2l, device, dtype, args.repeats, args.min_s)
    mm = matmul_rate(device, dtype, args.min_s)
    flops = flop_rate_row(device, dtype, args.repeats, args.min_s, mm)

    load_after = os.getloadavg()
    print(
        f"\ndevice={device} dtype={args.dtype} threads={torch.get_num_threads()} "
        f"(of {available_cores()} cores) torch={torch.__version__} repeats={args.repeats} "
        f"(forward+backward, median ms); load average {_load(load_before)} at the start, "
        f"{_load(load_after)} at the end\n"
    )
    print("| shape | peer ms (d2l) | ours ms | speedup (peer/ours) | note |")
    print("|---|---|---|---|---|")
    for r in rows:
        peer = "—" if r["peer_ms"] is None else f"{r['peer_ms']:.2f}"
        speed = "—" if r["speedup"] is None else f"{r['speedup']:.2f}×"
        print(f"| {r['shape']} | {peer} | {r['ours_ms']:.2f} | {speed} | {r['note']} |")
    print(
        f"\nscaled-dot self-attention {flops['shape']}: matmul rate {flops['matmul_gflops']:.1f} "
        f"GFLOP/s; forward {flops['forward_gflops']:.1f} GFLOP/s "
        f"({100 * flops['forward_fraction']:.0f}% of matmul), forward+backward "
        f"{flops['fwd_bwd_gflops']:.1f} GFLOP/s ({100 * flops['fwd_bwd_fraction']:.0f}%)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(
        device=str(device),
        device_name=torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor(),
        dtype=args.dtype,
        threads=torch.get_num_threads(),
        cores=available_cores(),
        load_average=[load_before, load_after],
        torch=torch.__version__,
        repeats=args.repeats,
        min_s=args.min_s,
        peer=d2l is not None,
    )
    args.out.write_text(json.dumps({"meta": meta, "rows": rows, "flop_rate": flops}, indent=2))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
