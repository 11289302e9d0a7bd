"""What the CPU changes to the training step buy: padded loss chunks, the core's dropout, and
the attention's plain path under autocast.

The Transformer recipe's bf16 training step (d 256, 4 heads, FFN 1024, 3 + 3 layers, dropout
0.1, batch 128, label smoothing 0.1, fused Adam; Multi30k en→fr word vocabularies, the data of
``bench_transformer.py``) in these variants:

- ``shipped``: as ``attnrun translate`` trains today;
- ``no_padding``: the loss's last chunk not padded to a multiple of 64 rows
  (``attnrun.translate.loss.ROW_GRANULE = 1``): a batch's target-token count is new nearly every
  step, and oneDNN compiles a kernel for each new matrix shape;
- ``torch_dropout``: the core's :class:`~attnrun.core.Dropout` drawing ``F.dropout``'s mask
  (``aten::bernoulli_``) instead of two 15-bit uniforms per random word;
- ``before``: both undone (the step before 2026-12-04);
- ``plain_bf16`` / ``sdpa_bf16``: every attention on the plain path (bmm, softmax, bmm; as
  shipped since 2026-12-05) / through SDPA (its math kernel, since the weights' dropout is on);
- ``attn0_plain_bf16`` / ``attn0_sdpa_bf16``: the same with no dropout on the attention weights
  (``model.attention_dropout=0``), where SDPA takes its flash kernel.

Each variant runs in its own process (oneDNN keeps its compiled kernels per process), trains the
batches of epoch 1 without timing them (every sequence length seen once, as in a real run), then
times the first ``--timed`` batches of epoch 2: fresh batches, as a run meets them. Rounds
alternate the variants' order; the figure is target tokens/s, the median over rounds, and its
ratio to ``before`` per round.

usage: python benchmarks/bench_train_step.py [--rounds 2] [--timed 120] [--threads 2]
           [--shared DIR] [--variants shipped before ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

VARIANTS = ("shipped", "no_padding", "torch_dropout", "before", "plain_bf16", "sdpa_bf16",
            "attn0_plain_bf16", "attn0_sdpa_bf16")  # fmt: skip


def _torch_dropout(x, p, training=True):
    return F.dropout(x, p, training) if training and p > 0 else x


def measure(variant: str, timed: int, threads: int, shared: Path) -> dict:
    """Tokens/s of ``timed`` fresh batches of epoch 2 under ``variant`` (in this process)."""
    import bench_transformer as bt

    import attnrun.core.dropout as core_dropout
    import attnrun.translate.loss as loss_mod
    from attnrun.core import MultiHeadAttention
    from attnrun.translate.batching import bucket_batches, make_batch
    from attnrun.translate.train import training_loss

    if variant in ("no_padding", "before"):
        loss_mod.ROW_GRANULE = 1
    if variant in ("torch_dropout", "before"):
        core_dropout.dropout = _torch_dropout  # what Dropout.forward calls
    if "bf16" in variant:  # the attention path under autocast, forced
        import attnrun.core.fused as fused

        fused.prefer_fused = lambda *a, **k: variant.endswith("sdpa_bf16")
    torch.set_num_threads(threads)
    examples, src_tok, tgt_tok, *_ = bt.load_data(shared / "data" / "multi30k")
    torch.manual_seed(0)
    model = bt.ours_model(src_tok.size, tgt_tok.size).train()
    if variant.startswith("attn0"):  # model.attention_dropout=0: SDPA's flash kernel, not math
        for m in model.modules():
            if isinstance(m, MultiHeadAttention):
                m.attention.dropout.p = 0.0
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True)
    gen = torch.Generator().manual_seed(0)
    epoch1, epoch2 = bucket_batches(examples, 128, gen), bucket_batches(examples, 128, gen)

    def train(batches) -> tuple[int, float]:
        tokens, t0 = 0, time.perf_counter()
        for index in batches:
            b = make_batch(examples, index)
            loss = training_loss(model, b, 0.1, torch.bfloat16)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tokens += b.n_tokens
        return tokens, time.perf_counter() - t0

    train(epoch1)
    tokens, seconds = train(epoch2[:timed])
    return {"variant": variant, "tokens": tokens, "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--timed", type=int, default=120, help="timed batches of epoch 2")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--one", choices=VARIANTS, help=argparse.SUPPRESS)  # a child process
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, args.timed, args.threads, args.shared)))
        return 0
    if not (args.shared / "data" / "multi30k" / "train.en.gz").is_file():
        print(f"no Multi30k under {args.shared}/data/multi30k; pass --shared", file=sys.stderr)
        return 2
    rates: dict[str, list[float]] = {v: [] for v in args.variants}
    for r in range(args.rounds):
        order = args.variants if r % 2 == 0 else args.variants[::-1]
        for v in order:
            cmd = [sys.executable, __file__, "--one", v, "--timed", str(args.timed)]
            cmd += ["--threads", str(args.threads), "--shared", str(args.shared)]
            out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            rates[v].append(out["tokens"] / out["seconds"])
            print(f"round {r + 1}: {v:14s} {rates[v][-1]:8,.0f} target tokens/s", flush=True)
    base = rates.get("before")
    what = f"{args.threads} threads, bf16, {args.timed} fresh batches of epoch 2"
    print(f"\n{what}, {args.rounds} rounds")
    print("| variant | target tokens/s (median) | vs before, per round |")
    print("|---|---|---|")
    for v, xs in rates.items():
        ratio = "—"
        if base and v != "before":
            per = [a / b for a, b in zip(xs, base)]
            ratio = f"{statistics.median(per):.2f}× [{min(per):.2f}–{max(per):.2f}]"
        print(f"| {v} | {statistics.median(xs):,.0f} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
