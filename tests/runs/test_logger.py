"""logger=tensorboard writes per-epoch scalars and the run's figures into the run folder."""

from __future__ import annotations

import pytest

from attnrun.errors import ConfigError
from attnrun.experiments import experiments

pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")


def test_tensorboard_gets_epoch_scalars_final_metrics_and_heatmaps(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = {
        "logger": "tensorboard",
        "data": {"n_train": 200, "n_test": 100},
        "model": {"num_layers": 1, "num_hiddens": 16, "ffn_hiddens": 16, "num_heads": 2},
        "train": {"epochs": 3, "batch_size": 32},
    }
    metrics = experiments.get("selfattn")(cfg, tmp_path)
    acc = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0})
    acc.Reload()
    tags = acc.Tags()
    assert [e.step for e in acc.Scalars("loss")] == [1, 2, 3]
    final = acc.Scalars("final/supervised_accuracy")[0].value
    assert final == pytest.approx(metrics["supervised_accuracy"])
    assert "attention_heads" in tags["images"]


def test_unknown_logger_lists_the_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match="valid: none, tensorboard"):
        experiments.get("regress")({"logger": "wandb"}, tmp_path)
