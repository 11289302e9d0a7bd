"""Speed of ``attnrun translate``'s Transformer: training against ``torch.nn.Transformer`` and
cached incremental decoding against recomputing the prefix (Multi30k en→fr, CPU, fp32).

1. **Training** (target tokens/s of one full step: forward, loss, backward, Adam step). Both rows
   get *identical* batches (the same :class:`~attnrun.translate.batching.Batch` objects, drawn by
   attnrun's length-bucketed batching, batch 128 sentences) of the Multi30k en→fr training pairs
   with the word tokenizers ``attnrun translate`` builds by default (``tokenizer.kind=word``,
   ``min_freq=2``, lowercased; ``data.max_len=50`` ids incl. EOS). Sizes: d_model 256, 4 heads,
   FFN 1024, 3 encoder + 3 decoder layers, post-norm, dropout 0.1.

   - ``attnrun TransformerSeq2Seq``: built as ``attnrun translate`` builds it
     (``model.arch=transformer``), its loss through :func:`attnrun.translate.train.training_loss`;
   - ``torch.nn.Transformer (peer)``: ``nn.Transformer(d_model=256, nhead=4, num_encoder_layers=3,
     num_decoder_layers=3, dim_feedforward=1024, dropout=0.1, batch_first=True)`` with attnrun's
     embeddings (copied: same init, ``· √d``), the same sinusoidal positions
     (:func:`attnrun.core.positional_encoding_matrix`) and embedding dropout, the same output layer
     (copied) and ``F.cross_entropy`` over the non-pad target positions; source, target and memory
     key padding masks and the causal mask (``tgt_is_causal=True``). ``nn.Transformer`` also has a
     final LayerNorm after each stack (attnrun's post-norm stacks do not): two LayerNorms more.

   Both use ``torch.optim.Adam(fused=True)`` (what attnrun's trainer uses), no gradient clipping.

2. **Incremental decoding** (untrained model at the sizes above, eval mode; the output bias of EOS
   set to -1e9 so that EOS never wins and every search runs exactly ``--steps`` steps) on the first
   ``--decode-batch`` validation sources:

   - ``cached``: :func:`attnrun.translate.search.greedy` (beam 1) and
     :func:`~attnrun.translate.search.beam_search` (beam 5), i.e. ``decoder.step`` on cached keys
     and values;
   - ``recompute``: the same search functions on a wrapper whose ``decoder.step`` runs the whole
     decoder over the prefix (``decoder.decode`` from position 0, ``need_weights=False`` so the
     core may take its fused kernel) and keeps the last position. Its attention weights are zeros.

   The greedy tokens of both are compared (they must agree).

The machine may be shared, so rows are *interleaved*: training alternates one batch of each row
(the order flips every batch) for ``--batches`` batches per round; decoding runs each row once per
round. Figures are over all rounds, with the per-round ratios [median, min-max]; the load average
is printed at the start, per round and at the end. Threads: torch's default unless ``--threads``.

On CUDA (``--device cuda``) every timing is bracketed by ``torch.cuda.synchronize``; ``--dtype
bfloat16`` runs both training rows under the same bf16 autocast (attnrun's ``train.precision=bf16``:
its loss through ``training_loss(..., dtype=torch.bfloat16)``, the peer's forward in
``torch.autocast``), fp32 master weights either way.

usage: python benchmarks/bench_transformer.py [--rounds 3] [--batches 4] [--decode-rounds 3]
           [--decode-warmup 1] [--decode-batch 32] [--steps 50] [--threads N] [--shared DIR]
           [--device cpu|cuda] [--dtype float32|bfloat16] [--profile] [--skip-train]
           [--skip-decode]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attnrun.core import positional_encoding_matrix  # noqa: E402
from attnrun.device import available_cores  # noqa: E402
from attnrun.translate.tokenize import EOS, PAD  # noqa: E402

D, HEADS, FFN, LAYERS, DROPOUT, BATCH = 256, 4, 1024, 3, 0.1, 128
OURS, PEER = "attnrun TransformerSeq2Seq", "torch.nn.Transformer (peer)"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _loadavg() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def _cell(total: float, per_round: list[float]) -> str:
    """Median of the per-round ratios [min-max], then the ratio of the totals over all rounds
    (one round slowed by another process moves the total, not the median)."""
    return (
        f"{statistics.median(per_round):.2f}× [{min(per_round):.2f}-{max(per_round):.2f}], "
        f"total {total:.2f}×"
    )


# data and models ------------------------------------------------------------------------------


def load_data(data: Path):
    """Multi30k en→fr training examples and tokenizers, as ``attnrun translate`` builds them."""
    from attnrun.experiments import experiments
    from attnrun.translate.batching import encode_pairs
    from attnrun.translate.data.readers import read_parallel
    from attnrun.translate.tokenize import tokenizers

    cfg = experiments.get("translate").make_config({})
    tk = cfg.tokenizer
    pairs = read_parallel(data / "train.en.gz", data / "train.fr.gz")
    options = {"min_freq": tk.min_freq, "vocab_size": tk.vocab_size, "lowercase": tk.lowercase}
    src_tok = tokenizers.get(tk.kind)([s for s, _ in pairs], **options)
    tgt_tok = tokenizers.get(tk.kind)([t for _, t in pairs], **options)
    examples = encode_pairs(pairs, src_tok, tgt_tok, cfg.data.max_len)
    val = read_parallel(data / "val.en.gz", data / "val.fr.gz")
    return examples, src_tok, tgt_tok, val, tk.kind, cfg.data.max_len


def ours_model(src_vocab: int, tgt_vocab: int):
    from attnrun.experiments import experiments
    from attnrun.translate.models import build_model

    model_cfg = {"arch": "transformer", "num_hiddens": D, "num_heads": HEADS}
    model_cfg.update({"num_layers": LAYERS, "ffn_hiddens": FFN, "dropout": DROPOUT})
    cfg = experiments.get("translate").make_config({"model": model_cfg})
    return build_model(cfg, src_vocab, tgt_vocab)


class TorchTransformer(nn.Module):
    """``nn.Transformer`` between attnrun's embeddings, positions and output layer (copied)."""

    def __init__(self, ours, max_len: int) -> None:
        super().__init__()
        enc_emb, dec_emb, out = ours.encoder.embedding, ours.decoder.embedding, ours.decoder.out
        self.src_emb = nn.Embedding(enc_emb.num_embeddings, D, padding_idx=PAD)
        self.tgt_emb = nn.Embedding(dec_emb.num_embeddings, D, padding_idx=PAD)
        self.out = nn.Linear(D, out.out_features)
        with torch.no_grad():
            self.src_emb.weight.copy_(enc_emb.weight)
            self.tgt_emb.weight.copy_(dec_emb.weight)
            self.out.weight.copy_(out.weight)
            self.out.bias.copy_(out.bias)
        self.register_buffer("P", positional_encoding_matrix(max_len, D), persistent=False)
        self.dropout = nn.Dropout(DROPOUT)
        self.transformer = nn.Transformer(
            d_model=D,
            nhead=HEADS,
            num_encoder_layers=LAYERS,
            num_decoder_layers=LAYERS,
            dim_feedforward=FFN,
            dropout=DROPOUT,
            batch_first=True,
        )

    def loss(self, batch) -> Tensor:
        src, tgt_in, tgt_out = batch.src, batch.tgt_in, batch.tgt_out
        S, T = src.shape[1], tgt_in.shape[1]
        scale = math.sqrt(D)
        x = self.dropout(self.src_emb(src) * scale + self.P[:S])
        y = self.dropout(self.tgt_emb(tgt_in) * scale + self.P[:T])
        dev = src.device
        src_pad = torch.arange(S, device=dev) >= batch.src_lens[:, None]  # True: ignored
        tgt_pad = tgt_in == PAD
        causal = torch.ones(T, T, dtype=torch.bool, device=dev).triu(1)  # True: not allowed
        h = self.transformer(
            x,
            y,
            tgt_mask=causal,
            src_key_padding_mask=src_pad,
            tgt_key_padding_mask=tgt_pad,
            memory_key_padding_mask=src_pad,
            tgt_is_causal=True,
        )  # (B, T, d)
        keep = tgt_out != PAD
        return F.cross_entropy(self.out(h[keep]).float(), tgt_out[keep])


# 1. training ----------------------------------------------------------------------------------


def bench_training(args, examples, max_len: int, kind: str) -> list[str]:
    from attnrun.translate.batching import bucket_batches, make_batch
    from attnrun.translate.train import training_loss

    torch.manual_seed(0)
    dev, dtype = args.device, args.amp
    ours = ours_model(*args.vocab).train()
    peer = TorchTransformer(ours, ours.encoder.max_len).train().to(dev)
    ours.to(dev)
    n_ours = sum(p.numel() for p in ours.parameters())
    n_peer = sum(p.numel() for p in peer.parameters())
    opts = {
        OURS: torch.optim.Adam(ours.parameters(), lr=1e-4, fused=True),
        PEER: torch.optim.Adam(peer.parameters(), lr=1e-4, fused=True),
    }

    def peer_loss(b) -> Tensor:
        with torch.autocast(dev.type, dtype or torch.bfloat16, enabled=dtype is not None):
            return peer.loss(b)

    losses = {
        OURS: lambda b: training_loss(ours, b, 0.0, dtype=dtype),  # attnrun's own
        PEER: peer_loss,
    }
    gen = torch.Generator().manual_seed(0)
    order = bucket_batches(examples, BATCH, gen)
    need = args.rounds * args.batches + 2
    batches = [make_batch(examples, order[i % len(order)]).to(dev) for i in range(need)]

    def step(name: str, b) -> float:
        _sync(dev)
        t0 = time.perf_counter()
        loss = losses[name](b)
        opts[name].zero_grad(set_to_none=True)
        loss.backward()
        opts[name].step()
        _sync(dev)
        return time.perf_counter() - t0

    # warm-up: on CUDA every batch once, so each padded shape's kernels are chosen before timing
    # (bf16 autocast chose them on the first sight of a shape: 3-10× slower rounds otherwise)
    for b in batches if dev.type == "cuda" else batches[:2]:
        for name in losses:
            step(name, b)
    if args.profile:
        profile_training(step, batches[:2])
    tokens = dict.fromkeys(losses, 0)
    seconds = dict.fromkeys(losses, 0.0)
    ratios: list[float] = []
    k = 2
    print(f"training: {n_ours:,} attnrun / {n_peer:,} peer parameters", flush=True)
    for r in range(args.rounds):
        took = dict.fromkeys(losses, 0.0)
        got = 0
        for i in range(args.batches):
            b = batches[k]
            k += 1
            names = [OURS, PEER] if i % 2 == 0 else [PEER, OURS]
            for name in names:
                took[name] += step(name, b)
            got += b.n_tokens
        for name in losses:
            tokens[name] += got
            seconds[name] += took[name]
        ratios.append(took[PEER] / took[OURS])  # same tokens: rate ratio = time ratio
        print(
            f"train round {r + 1}/{args.rounds} (load {_loadavg()}): "
            f"attnrun {got / took[OURS]:,.0f}, torch {got / took[PEER]:,.0f} tokens/s, "
            f"ratio {ratios[-1]:.2f}",
            flush=True,
        )
    rate = {name: tokens[name] / seconds[name] for name in losses}
    print(
        f"\nTraining: Multi30k en->fr, {kind} tokenizers (vocab {args.vocab[0]}/{args.vocab[1]}), "
        f"max_len {max_len}, batch {BATCH} sentences, d_model {D}, {HEADS} heads, FFN {FFN}, "
        f"{LAYERS}+{LAYERS} layers, dropout {DROPOUT}, {args.dtype} on {dev}, fused Adam; "
        f"{args.rounds} rounds x "
        f"{args.batches} identical batches per row ({tokens[OURS]:,} target tokens per row)"
    )
    for name in losses:
        print(f"  {name:34s} {rate[name]:10,.0f} target tokens/s")
    total = rate[OURS] / rate[PEER]
    print(f"  attnrun / torch: {_cell(total, ratios)}  (target >= 1.0x)")
    return [
        "| training step, target tokens/s, attnrun vs torch.nn.Transformer | "
        f"{_cell(total, ratios)} |"
    ]


def profile_training(step: Callable, batches) -> None:
    from torch.profiler import ProfilerActivity, profile

    for name in (OURS, PEER):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for b in batches:
                step(name, b)
        print(f"\nprofile, {name}, {len(batches)} steps (self CPU time):")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18))


# 2. incremental decoding ----------------------------------------------------------------------


@dataclass
class _Prefix:
    """Recompute 'state': the tokens decoded so far ``(B, t)`` (incl. BOS)."""

    tokens: Tensor | None

    def select(self, index: Tensor) -> _Prefix:
        return _Prefix(None if self.tokens is None else self.tokens.index_select(0, index))


class _RecomputeDecoder:
    def __init__(self, decoder) -> None:
        self.decoder = decoder

    def step(self, y_prev: Tensor, memory, state: _Prefix):
        prefix = (
            y_prev[:, None]
            if state.tokens is None
            else torch.cat([state.tokens, y_prev[:, None]], 1)
        )
        d = self.decoder.decode(prefix, memory, self.decoder.init_state(), need_weights=False)
        logits = self.decoder.out(d.features[:, -1])  # (B, V): the last position only
        weights = memory.outputs.new_zeros(prefix.shape[0], memory.outputs.shape[1])
        return logits, _Prefix(prefix), weights


class RecomputeModel:
    """The same model; ``decoder.step`` runs the whole decoder over the prefix every step."""

    def __init__(self, model) -> None:
        self.model = model
        self.decoder = _RecomputeDecoder(model.decoder)

    def encode(self, src: Tensor, src_lens: Tensor):
        memory, _ = self.model.encode(src, src_lens)
        return memory, _Prefix(None)


def bench_decoding(args, src_tok, val) -> list[str]:
    from attnrun.translate.batching import pad
    from attnrun.translate.search import beam_search, greedy

    torch.manual_seed(0)
    dev = args.device
    model = ours_model(*args.vocab).eval().to(dev)
    with torch.no_grad():
        model.decoder.out.bias[EOS] = -1e9  # EOS never wins: every search runs --steps steps
    recompute = RecomputeModel(model)
    ids = [src_tok.encode(s)[:49] + [EOS] for s, _ in val[: args.decode_batch]]
    src = pad(ids).to(dev)
    lens = torch.tensor([len(x) for x in ids], device=dev)
    n = args.steps

    def run(m, beam: int):
        if beam == 1:
            return greedy(m, src, lens, n)
        return beam_search(m, src, lens, n, beam=beam)

    rows = [(mode, beam) for beam in (1, 5) for mode in ("cached", "recompute")]
    models = {"cached": model, "recompute": recompute}
    with torch.no_grad():
        a, b = run(model, 1), run(recompute, 1)
    same = all(x.ids == y.ids for x, y in zip(a, b))
    lengths = {len(h.ids) for h in a}
    print(
        f"\ndecoding check: greedy cached == recompute tokens: {same}; hypothesis lengths "
        f"{sorted(lengths)} (forced {n})",
        flush=True,
    )
    times: dict[tuple[str, int], list[float]] = {row: [] for row in rows}
    for r in range(-args.decode_warmup, args.decode_rounds):  # r < 0: warm-up, not counted
        for mode, beam in rows:
            _sync(dev)
            t0 = time.perf_counter()
            run(models[mode], beam)
            _sync(dev)
            times[mode, beam].append(time.perf_counter() - t0)
        line = ", ".join(f"{m} b{k} {times[m, k][-1]:.2f}s" for m, k in rows)
        what = f"round {r + 1}/{args.decode_rounds}" if r >= 0 else "warm-up (not counted)"
        print(f"decode {what} (load {_loadavg()}): {line}", flush=True)
        if r < 0:
            times = {row: [] for row in rows}
    print(
        f"\nDecoding: untrained model (sizes above, eval), {len(ids)} Multi30k val sources (en, "
        f"{int(lens.min())}-{int(lens.max())} ids), {n} target tokens forced, "
        f"{args.decode_rounds} interleaved rounds"
    )
    out = []
    for beam in (1, 5):
        c, rc = times["cached", beam], times["recompute", beam]
        per_round = [y / x for x, y in zip(c, rc)]
        total = sum(rc) / sum(c)
        toks = len(ids) * beam * n
        print(
            f"  beam {beam}: cached {statistics.median(c):.3f}s [{min(c):.3f}-{max(c):.3f}] "
            f"({toks / statistics.median(c):,.0f} hypothesis tokens/s), recompute "
            f"{statistics.median(rc):.3f}s [{min(rc):.3f}-{max(rc):.3f}]; cached speed-up "
            f"{_cell(total, per_round)}  (target >= 3x)"
        )
        name = "greedy (beam 1)" if beam == 1 else f"beam {beam}"
        out.append(
            f"| {name}, {n} tokens, cached decoder.step vs recomputing the prefix | "
            f"{_cell(total, per_round)} |"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="interleaved training rounds")
    ap.add_argument("--batches", type=int, default=4, help="training batches per row per round")
    ap.add_argument("--decode-rounds", type=int, default=3, help="interleaved decoding rounds")
    ap.add_argument(
        "--decode-warmup", type=int, default=1, help="decoding rounds run first, not counted"
    )
    ap.add_argument("--decode-batch", type=int, default=32, help="validation sources decoded")
    ap.add_argument("--steps", type=int, default=50, help="target tokens decoded (forced)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--profile", action="store_true", help="profile 2 training steps of each")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--skip-decode", action="store_true")
    args = ap.parse_args(argv)
    args.device = torch.device(args.device)
    args.amp = None if args.dtype == "float32" else torch.bfloat16
    if args.device.type == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device here", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    data = args.shared / "data" / "multi30k"
    if not (data / "train.en.gz").is_file():
        print(f"no Multi30k under {data}; pass --shared", file=sys.stderr)
        return 2
    load_start = _loadavg()
    t0 = time.perf_counter()
    examples, src_tok, tgt_tok, val, kind, max_len = load_data(data)
    args.vocab = (src_tok.size, tgt_tok.size)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {available_cores()} "
        f"cores; load average (1 / 5 / 15 min) {load_start} at the start; data "
        f"{len(examples):,} pairs, {kind} tokenizers, vocab {args.vocab} "
        f"({time.perf_counter() - t0:.1f}s)",
        flush=True,
    )
    rows = []
    if not args.skip_train:
        rows += bench_training(args, examples, max_len, kind)
    if not args.skip_decode:
        rows += bench_decoding(args, src_tok, val)
    print(
        f"\nload average (1 / 5 / 15 min) {load_start} at the start, {_loadavg()} at the end; "
        f"{torch.get_num_threads()} threads"
    )
    print(
        "\nREADME rows (vs the peer measured in this run: median of the per-round ratios "
        "[min-max], and the ratio of the totals over all rounds):"
    )
    where = (
        torch.cuda.get_device_name(args.device)
        if args.device.type == "cuda"
        else f"{torch.get_num_threads()} threads"
    )
    print(f"| row | ratio ({where}, {args.dtype}) |\n|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
