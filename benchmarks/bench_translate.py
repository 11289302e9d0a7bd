"""Training speed of ``attnrun translate`` against the d2l recipe on Multi30k (target tokens/s).

Both sides train on the same Multi30k en→fr training pairs at the d2l recipe's sizes (batch 128,
embedding 256, hidden 256, 2 GRU layers, dropout 0.2, Adam, clipping 1.0) for a fixed wall-clock
budget each, with the same number of torch CPU threads, and count target tokens including
end-of-sentence and excluding padding.

- ``d2l``: the peer's own training loop (``../shared/peers/d2l_multi30k.py``: d2l 1.0.3's
  ``Seq2SeqEncoder`` and a Bahdanau decoder on d2l's ``AdditiveAttention``, one step at a time),
  skipped when the peers folder is missing;
- ``attnrun`` rows: attnrun's model and batching (:mod:`attnrun.translate`) in attnrun's training
  step, for several decoders.

usage: python benchmarks/bench_translate.py [--budget 60] [--threads 1] [--shared DIR] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = {"embed_size": 256, "num_hiddens": 256, "num_layers": 2, "dropout": 0.2}

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
}


def peer_tokens_per_s(shared: Path, data: Path, budget: float, threads: int) -> float | None:
    script = shared / "peers" / "d2l_multi30k.py"
    if not script.is_file():
        return None
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    out = subprocess.run(
        [sys.executable, str(script), str(data), "en", "fr", str(budget), "--speed-only"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["train_tok_per_s"])


def ours_tokens_per_s(data: Path, variant: dict, budget: float, threads: int) -> float:
    from attnrun.experiments import experiments
    from attnrun.translate.batching import bucket_batches, encode_pairs, make_batch
    from attnrun.translate.data.readers import read_parallel
    from attnrun.translate.models import build_model
    from attnrun.translate.tokenize import WordTokenizer
    from attnrun.translate.train import token_loss

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    pairs = read_parallel(data / "train.en.gz", data / "train.fr.gz")
    src_tok = WordTokenizer.train([s for s, _ in pairs], min_freq=2)
    tgt_tok = WordTokenizer.train([t for _, t in pairs], min_freq=2)
    examples = encode_pairs(pairs, src_tok, tgt_tok, max_len=31)  # d2l's recipe: 30 + EOS
    model_cfg = {**SIZES, **variant.get("model", {})}
    cfg = experiments.get("translate").make_config({**variant, "model": model_cfg})
    model = build_model(cfg, src_tok.size, tgt_tok.size).train()
    opt = torch.optim.Adam(model.parameters(), lr=0.005)
    tokens, seconds = 0, 0.0
    batches = bucket_batches(examples, 128, torch.Generator().manual_seed(0))
    for idx in batches:
        t0 = time.perf_counter()
        b = make_batch(examples, idx)
        logits, targets = model.token_logits(b.src, b.src_lens, b.tgt_in, b.tgt_out)
        loss = token_loss(logits, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        seconds += time.perf_counter() - t0
        tokens += b.n_tokens
        if seconds > budget:
            break
    return tokens / seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", type=float, default=60.0, help="seconds of training per row")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (both sides)")
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    ap.add_argument("--only", default=None, help="run only rows whose name contains this")
    args = ap.parse_args(argv)
    data = args.shared / "data" / "multi30k"
    if not (data / "train.en.gz").is_file():
        print(f"no Multi30k under {data}; pass --shared", file=sys.stderr)
        return 2
    rows: dict[str, float] = {}
    if args.only is None or "d2l" in args.only:
        peer = peer_tokens_per_s(args.shared, data, args.budget, args.threads)
        if peer is None:
            print("(peer row skipped: no", args.shared / "peers", ")")
        else:
            rows["d2l recipe (peer)"] = peer
            print(f"d2l recipe (peer): {peer:,.0f} target tokens/s", flush=True)
    for name, variant in VARIANTS.items():
        if args.only and args.only not in name:
            continue
        rows[name] = ours_tokens_per_s(data, variant, args.budget, args.threads)
        print(f"{name}: {rows[name]:,.0f} target tokens/s", flush=True)
    base = rows.get("d2l recipe (peer)")
    print(
        f"\nMulti30k en->fr, batch 128, embed 256, hidden 256, 2 GRU layers, dropout 0.2, "
        f"{args.threads} thread(s), {args.budget:.0f} s per row"
    )
    print(f"{'row':55s} {'tokens/s':>10s} {'vs d2l':>7s}")
    for name, v in rows.items():
        ratio = f"{v / base:6.2f}x" if base else "   n/a"
        print(f"{name:55s} {v:10,.0f} {ratio:>7s}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"threads": args.threads, "budget_s": args.budget, "tokens_per_s": rows}, indent=2
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
