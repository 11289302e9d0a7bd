"""``attnrun ablate`` (attnrun.ablate) on tiny runs trained here, against plain references.

The references never go through the head hook: a removed head is a model copy whose ``W_o``
input slice of that head is zeroed by a forward pre-hook; the mean over the split is gathered by
the same pre-hook; the gradient importance is one example at a time with an ``(H,)`` gate.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from torch.testing import assert_close

from attnrun.ablate import ablate, open_target
from attnrun.ablate.engine import pruning_counts, spearman
from attnrun.core.heads import Head, Interventions
from attnrun.experiments import experiments
from attnrun.runs import files
from attnrun.translate.batching import make_batch
from attnrun.translate.tokenize import PAD

COREF = {
    "dataset": "coref",
    "model": {"arch": "transformer", "num_hiddens": 32, "num_heads": 2, "ffn_hiddens": 64,
              "num_layers": 2},
    "train": {"epochs": 2, "threads": 1},
    "data": {"n_train": 400, "n_val": 24, "n_test": 24},
    "plot": {"heatmaps": 1},
}  # fmt: skip
RNN = {
    "data": {"n_train": 240, "n_val": 16, "n_test": 16},
    "model": {"embed_size": 16, "num_hiddens": 24},
    "train": {"epochs": 1, "batch_size": 32, "threads": 1},
    "decode": {"max_len": 20},
    "plot": {"heatmaps": 1},
}
SELFATTN = {"data": {"n_train": 200, "n_test": 40}, "train": {"epochs": 2, "threads": 1},
            "plot": {"enabled": False}}  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ablate")
    out = {}
    for name, exp, cfg in (
        ("coref", "translate", COREF),
        ("rnn", "translate", RNN),
        ("none", "translate", {**RNN, "decoder": "none"}),
        ("selfattn", "selfattn", SELFATTN),
        ("regress", "regress", {"train": {"threads": 1}}),
    ):
        sweep = root / ("sweep" if name in ("rnn", "none") else name)
        out[name] = sweep / name
        experiments.get(exp)(cfg, out[name])
    return out


def _slice_hook(mha, head: int, value=None):
    hd = mha.head_dim

    def hook(_module, args):
        x = args[0].clone()
        x[..., head * hd : (head + 1) * hd] = 0.0 if value is None else value
        return (x,)

    return mha.W_o.register_forward_pre_hook(hook)


def _mha(model, kind: str, layer: int):
    if kind == "encoder_self":
        return model.encoder.blocks[layer].attention
    block = model.decoder.blocks[layer]
    return block.self_attention if kind == "decoder_self" else block.cross_attention


# -- intact = recorded -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["coref", "rnn", "selfattn", "regress"])
def test_ablating_nothing_changes_nothing(runs, name):
    """Guards a second evaluation path: another split, decode setting, batch or BLEU would move
    the intact figures away from what the run recorded in metrics.json."""
    target, metrics = open_target(runs[name], "test")
    intact = target.evaluate(None)
    recorded = target.recorded()
    assert recorded, "the run records figures for its test split"
    for key, value in recorded.items():
        assert intact[key] == pytest.approx(value, abs=1e-9), key
    assert intact == target.evaluate(Interventions())  # an empty intervention is intact too


def test_validation_split_equals_the_recorded_validation_bleu(runs):
    """Guards --split val: greedy decoding of the validation pairs, as training scored them."""
    target, metrics = open_target(runs["coref"], "val")
    assert target.evaluate(None)["bleu_lowercase"] == metrics["val_bleu"]
    assert target.examples == COREF["data"]["n_val"]


# -- removal, mean, importance against plain references ------------------------------------------


@pytest.mark.parametrize("kind", ["encoder_self", "decoder_self", "cross"])
def test_removed_head_metrics_equal_a_model_with_the_slice_zeroed(runs, kind):
    """Guards the head hook through ablate's whole evaluation (greedy decoding with the cache,
    perplexity, pronoun scores): the same figures as a plain model copy with the head's slice of
    W_o's input zeroed."""
    target, _ = open_target(runs["coref"], "test", limit=12)
    head = Head(kind, 1, 1)
    got = target.evaluate(Interventions.remove([head], target.sites))
    plain = copy.deepcopy(target.model)
    _slice_hook(_mha(plain, kind, 1), 1)
    target.model = target.decoder.model = plain
    want = target.evaluate(None)
    assert got == want


def test_mean_ablation_uses_the_mean_over_the_split(runs):
    """Guards means taken per batch or over padding: the reference gathers W_o's input slices at
    the valid query positions of every sentence of the split and averages them."""
    target, _ = open_target(runs["coref"], "test")
    model, ex = target.model, target.ex
    want = {}
    for kind in ("encoder_self", "cross"):
        mha = _mha(model, kind, 0)
        rows: list[torch.Tensor] = []
        for i in range(len(ex)):
            b = make_batch(ex, [i])
            valid = len(ex[i][0]) if kind == "encoder_self" else len(ex[i][1])

            def grab(_m, args, valid=valid, rows=rows):
                rows.append(args[0][0, :valid].detach())

            h = mha.W_o.register_forward_pre_hook(grab)
            with torch.no_grad():
                model(b.src, b.src_lens, b.tgt_in)
            h.remove()
        want[kind] = torch.cat(rows).mean(0).view(mha.num_heads, -1)  # (H, hd)
    got = target.means()
    for kind, mean in want.items():
        assert_close(got[(kind, 0)], mean, rtol=1e-4, atol=1e-5)


def test_gradient_importance_equals_per_example_gradients(runs):
    """Michel et al. 2019's I_h = mean_x |∂L(x)/∂ξ_h|: guards |Σ grad| instead of Σ |grad|
    (signs cancel across examples) and a batch-mean loss in place of each example's."""
    target, _ = open_target(runs["coref"], "test", limit=10)
    got = target.importance()
    model = target.model
    site = ("cross", 1)
    total = torch.zeros(2)
    for i in range(len(target.ex)):
        b = make_batch(target.ex, [i])
        gate = torch.ones(2, requires_grad=True)
        from attnrun.core.heads import intervene

        with intervene(Interventions(gates={site: gate})):
            logits, _ = model(b.src, b.src_lens, b.tgt_in)
        F.cross_entropy(logits[0], b.tgt_out[0], ignore_index=PAD).backward()
        total += gate.grad.abs()
        model.zero_grad(set_to_none=True)
    assert_close(got[site], total / len(target.ex), rtol=1e-4, atol=1e-6)


def test_spearman_matches_scipy_with_ties():
    x = [0.1, 0.4, 0.4, 0.2, 0.9, 0.0]
    y = [1.0, 2.0, 3.0, 3.0, 5.0, -1.0]
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic)
    assert spearman([1, 2], [2, 1]) is None and spearman([1, 1, 1], [1, 2, 3]) is None


def test_pruning_counts_cover_zero_and_all():
    assert pruning_counts(5, 12) == [0, 1, 2, 3, 4, 5]
    counts = pruning_counts(36, 12)
    assert counts[0] == 0 and counts[-1] == 36 and len(counts) == 13


# -- the command end to end ---------------------------------------------------------------------


def test_ablation_json_names_every_head_as_attention_json_does(runs):
    """One record per head of every kind, with attention.json's kind names and 0-based numbering;
    deltas are removed − intact; the figures and nothing else land in a new ablations folder."""
    before = sorted(p.name for p in runs["coref"].iterdir())
    record, out = ablate(runs["coref"], limit=8, orders=1, steps=3)
    assert out.parent.parent == runs["coref"] / "ablations"
    assert sorted(p.name for p in runs["coref"].iterdir()) == sorted([*before, "ablations"])
    assert {p.name for p in out.iterdir()} == {"ablation.json", "head_importance.png",
                                               "pruning.png"}  # fmt: skip
    saved = json.loads((out / "ablation.json").read_text())
    assert saved["format"] == files.ABLATION_FORMAT and saved["metric"] == "pronoun_accuracy"
    kinds = ("encoder_self", "decoder_self", "cross")  # (encoder_rollout: no heads)
    shapes = {s.kind: s.weights.shape[:2] for s in files.read_attention(runs["coref"])
              if s.kind in kinds}  # fmt: skip
    heads = {(r["kind"], r["layer"], r["head"]) for r in saved["heads"]}
    want = {(k, i, h) for k, (n, m) in shapes.items() for i in range(n) for h in range(m)}
    assert heads == want
    for r in saved["heads"]:
        for k, d in r["deltas"].items():
            assert d == pytest.approx(r["metrics"][k] - saved["intact"][k], abs=1e-3)
    assert saved["pruning"]["counts"] == [0, 4, 8, 12] and len(saved["pruning"]["random"]) == 1
    assert set(saved["replaced_weights"]) == {"uniform", "permute", "other", "argmax"}
    assert "coref" in saved and files.read_ablations(runs["coref"])[-1][0] == out


def test_rnn_run_gets_weight_replacements_and_the_sweeps_decoder_none(runs):
    record, _ = ablate(runs["rnn"], orders=1)
    assert record["heads"] == [] and "pruning" not in record
    assert set(record["replaced_weights"]) == {"uniform", "permute", "other", "argmax"}
    none = json.loads((runs["none"] / "metrics.json").read_text())
    assert record["decoder_none"]["bleu"] == none["bleu"]


def test_regress_variants_order_as_bandwidth_says(runs):
    """Uniform weights are average pooling: the MSE of predicting the training mean."""
    record, _ = ablate(runs["regress"])
    target, _ = open_target(runs["regress"])
    d = target.data
    mean_mse = float(((d.y_train.mean() - d.y_test) ** 2).mean())
    assert record["replaced_weights"]["uniform"]["test_mse"] == pytest.approx(mean_mse)
    h = json.loads((runs["regress"] / "metrics.json").read_text())["bandwidth"]
    from attnrun.regression.nadaraya_watson import nadaraya_watson

    for name, factor in (("half_bandwidth", 0.5), ("twice_bandwidth", 2.0)):
        got = record["replaced_weights"][name]
        assert got["bandwidth"] == pytest.approx(factor * h)
        pred = nadaraya_watson(d.x_test, d.x_train, d.y_train, "gaussian", factor * h)
        assert got["test_mse"] == pytest.approx(float(((pred - d.y_test) ** 2).mean()))


def _attnrun(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "attnrun", *args], cwd=cwd, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


def _bad(run: Path, *args, match: str):
    before = sorted(p for p in run.rglob("*") if p.is_file() or p.is_dir())
    p = _attnrun("ablate", str(run), "--threads", "1", *args, cwd=run.parent)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("attnrun: error:") and match in lines[0], lines
    assert sorted(p for p in run.rglob("*") if p.is_file() or p.is_dir()) == before


def test_bad_input_is_one_line_exit_2_and_writes_nothing(runs, tmp_path):
    """decoder=none, running and failed runs, unknown split / metric / mode, --limit 0, and
    tampered weights: one line, exit code 2, no ablation folder."""
    _bad(runs["none"], match="decoder=none run has no attention")
    _bad(runs["coref"], "--split", "train", match="--split='train' is not valid; valid: test, val")
    _bad(runs["coref"], "--metric", "aer", match="--metric='aer' is not valid")
    _bad(runs["coref"], "--mode", "noise", match="--mode='noise' is not valid; valid: zero, mean")
    _bad(runs["coref"], "--limit", "0", match="--limit=0 is not valid")
    _bad(runs["selfattn"], "--split", "val", match="valid: test")
    for status in ("running", "failed"):
        run = tmp_path / status
        _copy_run(runs["selfattn"], run)
        m = json.loads((run / "metrics.json").read_text())
        (run / "metrics.json").write_text(json.dumps({**m, "status": status}))
        _bad(run, match=f"the run is {status}, not completed")
    tampered = tmp_path / "tampered"
    _copy_run(runs["selfattn"], tampered)
    raw = bytearray((tampered / "model.pt").read_bytes())
    raw[-40] ^= 0xFF
    (tampered / "model.pt").write_bytes(bytes(raw))
    _bad(tampered, match="does not match the checksum")
    truncated = tmp_path / "truncated"
    _copy_run(runs["coref"], truncated)
    (truncated / "model.pt").write_bytes((truncated / "model.pt").read_bytes()[:200])
    _bad(truncated, match="cannot load")


def _copy_run(src: Path, dst: Path) -> None:
    import shutil

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("ablations"))


def test_cli_prints_the_ranked_table_and_the_folder(runs):
    p = _attnrun("ablate", str(runs["selfattn"]), "--threads", "1", "-q", "--orders", "1",
                 cwd=runs["selfattn"].parent)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "ranked by supervised_accuracy" in p.stdout and "self L1 H1" in p.stdout
    assert "(equal)" in p.stdout and "files: " in p.stdout
    folder = Path(p.stdout.strip().splitlines()[-1].removeprefix("files: "))
    assert (runs["selfattn"].parent / folder).is_dir()
    shown = _attnrun("show", str(runs["selfattn"]), cwd=runs["selfattn"].parent)
    assert "ablations (attnrun ablate)" in shown.stdout
    table = shown.stdout.split("ablations (attnrun ablate)")[1]
    row = next(line for line in table.splitlines() if folder.name in line)
    assert row.split()[1:5] == ["test", "(40)", "zero", "supervised_accuracy"]


# -- rollout (Abnar & Zuidema 2020) in the run's own files ---------------------------------------


def test_transformer_runs_write_the_encoder_rollout_for_viewer_and_report(runs):
    """Guards the rollout sample: the product of (I + Ā_l)/2 with the bottom layer first, over the
    same sentence's encoder self-attention, shown in the viewer's Kind picker; and the coref
    rollout masses in metrics.json."""
    samples = files.read_attention(runs["coref"])
    enc = next(s for s in samples if s.kind == "encoder_self")
    roll = next(s for s in samples if s.kind == "encoder_rollout")
    assert roll.name == enc.name.replace("encoder_self", "encoder_rollout")
    w = enc.weights
    want = np.eye(w.shape[-1])
    for layer in w:
        a = 0.5 * np.eye(w.shape[-1]) + 0.5 * layer.mean(0)
        want = (a / a.sum(1, keepdims=True)) @ want
    np.testing.assert_allclose(roll.weights[0, 0], want, atol=2e-5)
    assert '"encoder_rollout"' in (runs["coref"] / "attention_0.html").read_text()
    m = json.loads((runs["coref"] / "metrics.json").read_text())
    assert 0 <= m["coref_rollout_mass"] <= 1 and 0 <= m["coref_rollout_other_mass"] <= 1


def test_report_draws_the_importance_grid_and_overlays_pruning_curves(runs, tmp_path):
    """Guards the report reading ablations: a grid per ablated run, one pruning overlay."""
    from attnrun.report import make_report

    ablate(runs["selfattn"], orders=1, steps=2)
    out = make_report([runs["selfattn"].parent, runs["regress"].parent], tmp_path / "rep")
    names = {p.name for p in out.plots}
    assert {"report_importance_0.png", "report_pruning.png", "report_rollout.png"} <= names
    assert "report_importance_1.png" not in names  # regress has no heads: no grid
    plain = make_report([runs["regress"].parent], tmp_path / "plain")
    assert not {p.name for p in plain.plots} & {"report_rollout.png", "report_pruning.png"}
