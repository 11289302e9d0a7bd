"""Translate runs resume exactly: after Ctrl-C, SIGTERM and kill -9 in the middle of an epoch, the
resumed run ends with the metrics, history and model bytes of an uninterrupted one — and the
resumed process trains only the steps that were left (it does not start again). With weight
averaging (``train.average``) too: the averaged figures, the raw ones and the averaged model.pt."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from attnrun.errors import AttnrunError, DataError
from attnrun.experiments import experiments
from attnrun.runs.checkpoint import Checkpointer
from attnrun.runs.files import sha256
from attnrun.runs.record import WALL_TIME_KEYS, comparable
from attnrun.runs.resume import resume_run

REPO = Path(__file__).resolve().parents[2]
run = experiments.get("translate")

#: 240 pairs in batches of 32: 8 optimizer steps per epoch, 3 epochs, a checkpoint every batch.
TINY = {
    "data": {"n_train": 240, "n_val": 16, "n_test": 16},
    "model": {"embed_size": 16, "num_hiddens": 24},
    "train": {"epochs": 3, "batch_size": 32, "threads": 1, "checkpoint_minutes": 0},
    "decode": {"max_len": 20},
    "plot": {"heatmaps": 1},
}
STEPS = 3 * 8


def _cfg(**over) -> dict:
    cfg = json.loads(json.dumps(TINY))
    for k, v in over.items():
        cfg.setdefault(k, {}).update(v) if isinstance(v, dict) else cfg.__setitem__(k, v)
    return cfg


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def _history(run_dir: Path) -> list[dict]:
    rows = json.loads((run_dir / "history.json").read_text())
    return [{k: v for k, v in r.items() if k not in WALL_TIME_KEYS} for r in rows]


@contextmanager
def counting_steps():
    """Counts every optimizer step taken inside the block (any optimizer)."""
    count = {"n": 0}

    def hook(opt, args, kwargs):
        count["n"] += 1

    handle = register_optimizer_step_post_hook(hook)
    try:
        yield count
    finally:
        handle.remove()


def assert_same_run(resumed: Path, straight: Path) -> None:
    assert comparable(_metrics(resumed)) == comparable(_metrics(straight))
    assert _history(resumed) == _history(straight)
    assert sha256(resumed / "model.pt") == sha256(straight / "model.pt")


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """Uninterrupted runs, by configuration name, with their optimizer step counts."""
    cache: dict[str, tuple[Path, int]] = {}

    def get(name: str, cfg: dict) -> tuple[Path, int]:
        if name not in cache:
            out = tmp_path_factory.mktemp(f"straight-{name}")
            with counting_steps() as steps:
                run(cfg, out)
            cache[name] = (out, steps["n"])
        return cache[name]

    return get


CONFIGS = {
    "bahdanau-plateau": {},
    # and source word dropout: its draws come from the generator the checkpoint saves
    "luong-feed-bf16-cosine-dropout": {
        "score": "general",
        "model": {"input_feeding": True, "dropout": 0.3},
        "train": {"precision": "bf16", "lr_schedule": "cosine", "word_dropout": 0.2},
    },
    "transformer-prenorm-tied-dropout": {
        "model": {
            "arch": "transformer",
            "num_heads": 2,
            "ffn_hiddens": 32,
            "num_layers": 2,
            "norm_first": True,
            "tie_embeddings": True,
            "dropout": 0.2,
        },
    },  # fmt: skip
    # train.average: the EMA's running sums change every step (the cut is mid-epoch), the last-2
    # window's snapshots at epoch ends; both must come back from the checkpoint
    "bahdanau-ema": {"train": {"average": "ema:0.8"}},
    "transformer-last2": {
        "model": {"arch": "transformer", "num_heads": 2, "ffn_hiddens": 32, "num_layers": 1},
        # and AdamW (decoupled weight decay) with Vaswani's beta2: its state resumes too
        "train": {
            "average": "last:2",
            "lr_schedule": "cosine",
            "adam_beta2": 0.98,
            "weight_decay": 0.01,
        },
    },
    "luong-local_p-hard-lstm-linear": {
        "score": "dot",
        "attention": {"kind": "local_p", "window": 2, "hard": True},
        "model": {"cell": "lstm"},
        "train": {"lr_schedule": "linear"},
    },
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_ctrl_c_mid_epoch_then_resume_equals_uninterrupted(tmp_path, monkeypatch, straight, name):
    """Guards against resume restarting training (or restarting the epoch): the resumed process
    must take exactly the steps left after epoch 1, batch 3, and end like a straight run."""
    cfg = _cfg(**CONFIGS[name])
    ref, ref_steps = straight(name, cfg)
    assert ref_steps == STEPS

    real_save = Checkpointer.save

    def save_then_ctrl_c(self, epoch, *a, step=0, **k):
        real_save(self, epoch, *a, step=step, **k)
        if (epoch, step) == (1, 3):
            raise KeyboardInterrupt

    monkeypatch.setattr(Checkpointer, "save", save_then_ctrl_c)
    cut = tmp_path / "cut"
    with counting_steps() as before, pytest.raises(KeyboardInterrupt):
        run(cfg, cut)
    assert _metrics(cut)["status"] == "interrupted"
    assert before["n"] == 8 + 3
    monkeypatch.setattr(Checkpointer, "save", real_save)

    with counting_steps() as after:
        resume_run(cut, quiet=True)
    assert after["n"] == STEPS - (8 + 3)
    m = _metrics(cut)
    assert m["status"] == "completed" and m["resumed_from"] == [{"epoch": 1, "step": 3}]
    assert_same_run(cut, ref)
    assert "resumed from epoch 1, step 3" in (cut / "run.log").read_text()


def _stalling_cli(root: Path, overrides: list[str], at: tuple[int, int]) -> subprocess.Popen:
    """``attnrun translate`` in a subprocess that prints STALLED and sleeps before step
    ``at = (epoch, batch)``, both 1-based, so a signal lands in the middle of an epoch."""
    script = (
        "import time, attnrun.translate.train as t\n"
        "real = t.Trainer._step\n"
        "def step(self, batches, i):\n"
        f"    if (self.state.epoch + 1, i + 1) == {at!r}:\n"
        "        print('STALLED', flush=True); time.sleep(120)\n"
        "    return real(self, batches, i)\n"
        "t.Trainer._step = step\n"
        "from attnrun.cli import main\n"
        f"main(['translate', '-q', '--root', {str(root)!r}, *{overrides!r}])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env,
    )  # fmt: skip
    deadline = time.time() + 240
    while time.time() < deadline:
        line = proc.stdout.readline()
        if "STALLED" in line or (not line and proc.poll() is not None):
            break
    assert proc.poll() is None, proc.stderr.read()
    return proc


OVERRIDES = [
    "data.n_train=240", "data.n_val=16", "data.n_test=16", "model.embed_size=16",
    "model.num_hiddens=24", "train.epochs=3", "train.batch_size=32", "train.threads=1",
    "train.checkpoint_minutes=0", "decode.max_len=20", "plot.heatmaps=1",
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "name"),
    [(signal.SIGKILL, "bahdanau-plateau"), (signal.SIGTERM, "bahdanau-plateau"),
     (signal.SIGUSR2, "bahdanau-plateau"), (signal.SIGKILL, "bahdanau-ema")],
    ids=["kill-9", "sigterm", "sigusr2", "kill-9-ema"],
)  # fmt: skip
def test_signal_mid_epoch_then_resume_equals_uninterrupted(tmp_path, straight, sig, name):
    """kill -9 (nothing can be written) and SIGTERM or SIGUSR2 (recorded as interrupted, with the
    signal's name, exit 130) in epoch 2, batch 5; ``attnrun resume`` trains the 24 - 12 steps
    left and ends like a straight run (with an EMA of the weights too: its sums come back from the
    last checkpoint, mid-epoch). SIGUSR2 is what Slurm sends before a job's time limit under
    ``hydra/launcher=attnrun_slurm``; planted bug caught: no handler for it (the process dies on
    the spot and its record still says running)."""
    ref, _ = straight(name, _cfg(**CONFIGS[name]))
    average = CONFIGS[name].get("train", {}).get("average", "none")
    proc = _stalling_cli(tmp_path, [*OVERRIDES, f"train.average={average}"], at=(2, 5))
    proc.send_signal(sig)
    proc.wait(timeout=60)
    [cut] = list(tmp_path.glob("outputs/*/*"))
    m = _metrics(cut)
    if sig == signal.SIGKILL:
        assert m["status"] == "running"  # killed: nobody could write anything else
    else:
        assert proc.returncode == 130 and m["status"] == "interrupted"
        assert m["error"] == f"interrupted ({signal.Signals(sig).name})"
        # one line that says how to go on (before, nothing was printed at all)
        assert (
            proc.stderr.read() == f"attnrun: interrupted; continue it with: attnrun resume {cut}\n"
        )
    with counting_steps() as after:
        resume_run(cut, quiet=True)
    assert after["n"] == STEPS - (8 + 4)
    assert _metrics(cut)["resumed_from"] == [{"epoch": 1, "step": 4}]
    assert_same_run(cut, ref)


def test_time_budget_counts_training_time_over_resumes(tmp_path, monkeypatch):
    """Guards against a resume restarting the budget clock: a run that used its whole budget
    before the interruption stops after one more batch when resumed."""
    cfg = _cfg(train={"epochs": 50, "max_minutes": 0.5})
    real_save = Checkpointer.save

    def save_then_stop(self, epoch, *a, step=0, **k):
        if step:  # pretend this part of the run already took the whole budget
            k["state"] = {**k["state"], "elapsed": 31.0}
        real_save(self, epoch, *a, step=step, **k)
        if (epoch, step) == (0, 2):
            raise KeyboardInterrupt

    monkeypatch.setattr(Checkpointer, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, tmp_path)
    monkeypatch.setattr(Checkpointer, "save", real_save)
    with counting_steps() as after:
        m = resume_run(tmp_path, quiet=True)
    assert after["n"] == 1 and m["stopped"] == "time_budget" and m["epochs_run"] == 1


def test_bad_resumes_are_one_line_and_write_nothing(tmp_path, monkeypatch, straight):
    """Resuming a completed run, an edited config, a truncated or tampered checkpoint, or a run
    of another version: a one-line error and the run folder stays byte for byte as it was."""
    done, _ = straight("bahdanau-plateau", _cfg())
    with pytest.raises(AttnrunError, match="already completed"):
        resume_run(done)

    real_save = Checkpointer.save

    def save_then_stop(self, epoch, *a, step=0, **k):
        real_save(self, epoch, *a, step=step, **k)
        if (epoch, step) == (1, 2):
            raise KeyboardInterrupt

    monkeypatch.setattr(Checkpointer, "save", save_then_stop)
    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        run(_cfg(), cut)
    monkeypatch.setattr(Checkpointer, "save", real_save)

    def snapshot() -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(cut.iterdir()) if p.is_file()}

    ck = cut / "checkpoint.pt"
    good_ck, good_cfg = ck.read_bytes(), (cut / "config.yaml").read_text()
    cases = {
        "truncated": lambda: ck.write_bytes(good_ck[: len(good_ck) // 2]),
        "tampered": lambda: torch.save({"format": "x", "model": {}}, ck),
        "edited config": lambda: (cut / "config.yaml").write_text(
            good_cfg.replace("epochs: 3", "epochs: 4")
        ),
    }
    for what, damage in cases.items():
        damage()
        before = snapshot()
        with pytest.raises(DataError) as e:
            resume_run(cut, quiet=True)
        assert "\n" not in str(e.value), what
        assert snapshot() == before, f"{what}: the run folder changed"
        ck.write_bytes(good_ck)
        (cut / "config.yaml").write_text(good_cfg)

    meta = json.loads((cut / "metrics.json").read_text())
    meta["versions"]["attnrun"] = "0.0.1"
    (cut / "metrics.json").write_text(json.dumps(meta))
    before = snapshot()
    with pytest.raises(AttnrunError, match="made by attnrun 0.0.1"):
        resume_run(cut, quiet=True)
    assert snapshot() == before
