"""Optional experiment loggers (``logger=none|tensorboard``), fed by the run frame.

The frame logs, without any experiment code knowing: the latest value of every per-epoch series
each time a checkpoint is written (so TensorBoard follows training live), the final metrics, and
at the end the run's figures (attention heatmaps, predictions, loss curves) as images.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from attnrun.errors import ConfigError
from attnrun.registry import Registry

loggers: Registry[type] = Registry("logger")


@loggers.register("none")
class NullLogger:
    """Logs nothing."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir

    def scalars(self, step: int, values: dict[str, Any]) -> None:
        pass

    def figures(self, paths: list[Path]) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> NullLogger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@loggers.register("tensorboard")
class TensorBoardLogger(NullLogger):
    """TensorBoard event files in ``RUN_DIR/tensorboard`` (the ``attnrun[tensorboard]`` extra)."""

    def __init__(self, out_dir: Path) -> None:
        super().__init__(out_dir)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(
                "logger=tensorboard needs the tensorboard package: "
                "pip install 'attnrun[tensorboard]'"
            ) from None
        self.writer = SummaryWriter(log_dir=str(out_dir / "tensorboard"))

    def scalars(self, step: int, values: dict[str, Any]) -> None:
        for name, value in values.items():
            if (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and math.isfinite(value)
            ):
                self.writer.add_scalar(name, value, step)
        self.writer.flush()

    def figures(self, paths: list[Path]) -> None:
        import matplotlib.image as mpimg
        import numpy as np

        for path in paths:
            img = mpimg.imread(path)  # (H, W, 3|4) floats in [0, 1]
            self.writer.add_image(path.stem, np.ascontiguousarray(img[..., :3]), dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def make_logger(kind: str, out_dir: Path) -> NullLogger:
    return loggers.get(kind)(Path(out_dir))
