"""Training speed of ``attnrun translate`` against the d2l recipe on Multi30k (target tokens/s).

Both sides train on the Multi30k en→fr training pairs at the d2l recipe's sizes (batch 128,
embedding 256, hidden 256, 2 GRU layers, dropout 0.2, Adam, gradient clipping 1.0) with the same
number of torch CPU threads, counting target tokens including end-of-sentence and excluding padding.

- ``d2l recipe (peer)``: the peer's own pieces from ``../shared/peers`` — d2l 1.0.3's
  ``Seq2SeqEncoder``, the Bahdanau decoder on d2l's ``AdditiveAttention`` (one GRU step and one
  attention call per target position), and ``d2l_multi30k.py``'s tokenizer, vocabulary and random
  (unbucketed) batches — in the same training step as ``d2l_multi30k.py``; skipped when the peers
  folder is missing;
- ``attnrun ...`` rows: attnrun's model, length-bucketed batching and training step
  (:mod:`attnrun.translate`) for several decoders.

The machine may be shared, so the rows are *interleaved*: each round trains every row for a few
batches, one batch of each row in turn, and a row's figure is its tokens over its own training
time summed over the rounds; the ratios to the peer are also given per round (median, range).

``--watch`` adds the Bahdanau row again with the slowdown watch of the training loop
(:class:`attnrun.throughput.ThroughputWatch`, which suggests ``train.threads=1`` when threads
collapse under load) called after every step as the trainer calls it, and times one
``observe`` call on its own: what the hint costs a run that never needs it.

Each row is measured at 1 thread and at the thread count a user gets by default
(``train.threads=0``: every core this process may use; the d2l recipe, which sets none, uses every
core too); ``--threads N [N ...]`` measures other counts instead.

usage: python benchmarks/bench_translate.py [--rounds 4] [--batches 8] [--threads N [N ...]]
           [--shared DIR] [--json FILE] [--only SUBSTRING] [--watch]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attnrun.device import available_cores  # noqa: E402

SIZES = {"embed_size": 256, "num_hiddens": 256, "num_layers": 2, "dropout": 0.2}
PEER = "d2l recipe (peer)"
VARIANTS = {
    "attnrun bahdanau (additive, uni GRU)": {
        "score": "additive",
        "decoder": "bahdanau",
        "model": {"bidirectional": False},
    },
    "attnrun luong general, no input feeding (uni GRU)": {
        "score": "general",
        "decoder": "luong",
        "model": {"bidirectional": False},
    },
    "attnrun luong general, no input feeding (bi GRU)": {
        "score": "general",
        "decoder": "luong",
        "model": {"bidirectional": True},
    },
    # not the same arithmetic as the peer (bfloat16 matrix products): reported apart
    "attnrun luong general, no input feeding (bi GRU, bf16 autocast)": {
        "score": "general",
        "decoder": "luong",
        "model": {"bidirectional": True},
        "train": {"precision": "bf16"},
    },
}

Step = Callable[[], int]  # one training step; returns the target tokens it trained on


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def peer_step(shared: Path, data: Path) -> Step | None:
    """The d2l recipe's training step, as in ``d2l_multi30k.py`` (random batches, lr 0.005)."""
    peers = shared / "peers"
    if not (peers / "d2l_multi30k.py").is_file():
        return None
    sys.path.insert(0, str(peers))
    recipe = _load(peers / "d2l_multi30k.py", "d2l_multi30k")
    d2l = recipe.import_d2l()
    torch.manual_seed(0)
    random.seed(0)
    src = [recipe.tok(x) for x in recipe.read(f"{data}/train.en.gz")]
    tgt = [recipe.tok(x) for x in recipe.read(f"{data}/train.fr.gz")]
    sv, tv = recipe.Vocab(src), recipe.Vocab(tgt)
    enc = d2l.Seq2SeqEncoder(len(sv.itos), 256, 256, 2, 0.2)
    dec = recipe.BahdanauDecoder(d2l, len(tv.itos), 256, 256, 2, 0.2)
    xs, vl, xd, _ = next(recipe.batches(src[:4], tgt[:4], sv, tv, 4))
    eo, es = enc(xs)
    dec(xd, eo, es, vl)  # materialise the lazy output layer
    params = list(enc.parameters()) + list(dec.parameters())
    opt = torch.optim.Adam(params, lr=0.005)
    lossf = torch.nn.CrossEntropyLoss(ignore_index=0)

    def forever() -> Iterator:
        while True:
            yield from recipe.batches(src, tgt, sv, tv, 128)

    it = forever()

    def step() -> int:
        xs, vl, xd, y = next(it)
        opt.zero_grad()
        eo, es = enc(xs)
        out, _ = dec(xd, eo, es, vl)
        loss = lossf(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return int((y != 0).sum())

    return step


WATCHED = "attnrun bahdanau (additive, uni GRU) + slowdown watch"


def ours_step(data: Path, variant: dict, watch: bool = False) -> Step:
    from attnrun.experiments import experiments
    from attnrun.throughput import ThroughputWatch
    from attnrun.translate.batching import bucket_batches, encode_pairs, make_batch
    from attnrun.translate.data.readers import read_parallel
    from attnrun.translate.models import build_model
    from attnrun.translate.schedules import precisions
    from attnrun.translate.tokenize import WordTokenizer
    from attnrun.translate.train import training_loss

    torch.manual_seed(0)
    pairs = read_parallel(data / "train.en.gz", data / "train.fr.gz")
    src_tok = WordTokenizer.train([s for s, _ in pairs], min_freq=2)
    tgt_tok = WordTokenizer.train([t for _, t in pairs], min_freq=2)
    examples = encode_pairs(pairs, src_tok, tgt_tok, max_len=31)  # the recipe's 30 + EOS
    cfg = experiments.get("translate").make_config(
        {**variant, "model": {**SIZES, **variant.get("model", {})}}
    )
    model = build_model(cfg, src_tok.size, tgt_tok.size).train()
    opt = torch.optim.Adam(model.parameters(), lr=0.005)
    gen = torch.Generator().manual_seed(0)
    dtype = precisions.get(cfg.train.precision)  # None: plain float32, as the peer

    def forever() -> Iterator[list[int]]:
        while True:
            yield from bucket_batches(examples, 128, gen)

    it = forever()
    # threads=2: the watch stays active whatever count is measured (the cost of a run it watches)
    watcher = ThroughputWatch(2, available_cores(), "target tokens") if watch else None

    def step() -> int:
        t0 = time.perf_counter()
        b = make_batch(examples, next(it))
        loss = training_loss(model, b, 0.0, dtype=dtype)  # attnrun's own training step
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if watcher is not None:  # as the trainer does after each step
            watcher.observe(b.n_tokens, time.perf_counter() - t0)
        return b.n_tokens

    return step


def observe_cost(calls: int = 200_000) -> float:
    """Seconds per :meth:`ThroughputWatch.observe` call on a watch that never hints (the
    steady state of a run at its baseline speed)."""
    from attnrun.throughput import ThroughputWatch

    w = ThroughputWatch(2, available_cores(), "target tokens")
    t0 = time.perf_counter()
    for _ in range(calls):
        w.observe(1000.0, 0.1)
    return (time.perf_counter() - t0) / calls


def default_threads() -> int:
    """The thread count a user gets: ``train.threads``'s default resolved as the frame does."""
    from attnrun.device import thread_count
    from attnrun.experiments import experiments

    return thread_count(experiments.get("translate").make_config({}).train.threads)


def _short(row: str) -> str:
    return row.split(" (")[0] + (" + watch" if row == WATCHED else "")


def _loadavg() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=4, help="interleaved rounds")
    ap.add_argument("--batches", type=int, default=8, help="batches per row per round")
    ap.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=None,
        help="torch CPU thread counts to measure, each for every row (default: 1 and the default "
        "a user gets, train.threads=0: every core)",
    )
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    ap.add_argument("--only", default=None, help="only attnrun rows containing this (peer kept)")
    ap.add_argument(
        "--watch", action="store_true", help="add the Bahdanau row with the slowdown watch"
    )
    args = ap.parse_args(argv)
    default = default_threads()
    counts = sorted(set(args.threads or [1, default]))
    data = args.shared / "data" / "multi30k"
    if not (data / "train.en.gz").is_file():
        print(f"no Multi30k under {data}; pass --shared", file=sys.stderr)
        return 2
    load_start = _loadavg()
    steps: dict[str, Step] = {}
    peer = peer_step(args.shared, data)
    if peer is None:
        print(f"(peer row skipped: no {args.shared / 'peers'})")
    else:
        steps[PEER] = peer
    for name, variant in VARIANTS.items():
        if args.only is None or args.only in name:
            steps[name] = ours_step(data, variant)
    if args.watch:
        steps[WATCHED] = ours_step(data, VARIANTS["attnrun bahdanau (additive, uni GRU)"], True)
    runs = [(n, name) for n in counts for name in steps]  # (threads, row)
    for n in counts:  # warm-up, at every thread count
        torch.set_num_threads(n)
        for step in steps.values():
            step()
    tokens = dict.fromkeys(runs, 0)
    seconds = dict.fromkeys(runs, 0.0)
    ratios: dict[tuple[int, str], list[float]] = {key: [] for key in runs}  # per round, vs peer

    def rate_of(n: int, name: str) -> float:
        return tokens[n, name] / seconds[n, name]

    for r in range(args.rounds):
        for n in counts:
            torch.set_num_threads(n)
            got = dict.fromkeys(steps, 0)
            took = dict.fromkeys(steps, 0.0)
            for _ in range(args.batches):
                for name, step in steps.items():  # round-robin: load changes hit every row
                    t0 = time.perf_counter()
                    got[name] += step()
                    took[name] += time.perf_counter() - t0
            for name in steps:
                tokens[n, name] += got[name]
                seconds[n, name] += took[name]
                if PEER in steps:
                    ratios[n, name].append(got[name] / took[name] / (got[PEER] / took[PEER]))
        line = "; ".join(
            f"{n}t " + ", ".join(f"{_short(m)} {rate_of(n, m):,.0f}" for m in steps) for n in counts
        )
        print(f"round {r + 1}/{args.rounds} (load {_loadavg()}): {line}", flush=True)
    rate = {key: tokens[key] / seconds[key] for key in runs}
    print(
        f"\nMulti30k en->fr training, batch 128, embed 256, hidden 256, 2 GRU layers, dropout "
        f"0.2, fp32; {args.rounds} interleaved rounds x {args.batches} batches per row; "
        f"torch {torch.__version__}; {available_cores()} cores, default threads {default}; "
        f"load average (1 / 5 / 15 min) {load_start} at the start, {_loadavg()} at the end"
    )
    for n in counts:
        base = rate.get((n, PEER))
        note = " (the default)" if n == default else ""
        print(f"\n{n} thread(s){note}\n{'row':64s} {'tokens/s':>10s} {'vs d2l':>7s}")
        for name in steps:
            v = rate[n, name]
            ratio = f"{v / base:6.2f}x" if base else "   n/a"
            print(f"{name:64s} {v:10,.0f} {ratio:>7s}")
    if args.watch:
        plain = "attnrun bahdanau (additive, uni GRU)"
        per_call = observe_cost()
        print(f"\nslowdown watch: {per_call * 1e9:,.0f} ns per observe() call (one per batch)")
        for n in counts:
            if (n, plain) in rate:
                batch_s = seconds[n, plain] / (args.rounds * args.batches)
                print(
                    f"  {n} thread(s): watched / plain row {rate[n, WATCHED] / rate[n, plain]:.3f}"
                    f"x; one call is {per_call / batch_s:.1e} of a batch ({batch_s:.3f} s)"
                )
    if PEER in steps:
        print(
            "\nREADME rows: vs the peer measured in this run at the same thread count, over all "
            "rounds [median, min-max of the per-round ratios]:"
        )
        print(f"| row | {' | '.join(f'{n} thread(s)' for n in counts)} |")
        print(f"|---|{'---|' * len(counts)}")
        for name in steps:
            cells = " | ".join(
                f"{rate[n, name] / rate[n, PEER]:.2f}× [{statistics.median(ratios[n, name]):.2f}, "
                f"{min(ratios[n, name]):.2f}-{max(ratios[n, name]):.2f}]"
                for n in counts
            )
            print(f"| {name} | {cells} |")
    if args.json:
        rows = [
            {
                "threads": n,
                "row": name,
                "tokens_per_s": rate[n, name],
                "tokens": tokens[n, name],
                "round_ratios_vs_peer": ratios[n, name],
            }
            for n, name in runs
        ]
        meta = {"torch": torch.__version__, "cores": available_cores(), "default_threads": default}
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
