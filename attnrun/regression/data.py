"""Data for ``attnrun regress``: synthetic 1-D regression problems and a user CSV loader.

The default is d2l 10.2's toy problem: ``n_train = 50`` inputs ``x ~ U(0, 5)`` (sorted),
``y = 2 sin(x) + x^0.8 + eps`` with ``eps ~ N(0, 0.5^2)``, and test inputs ``arange(0, 5, 0.1)``
with the noiseless truth. Other generating functions live in the :data:`functions` registry.
Every random draw goes through a seeded :class:`torch.Generator`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from attnrun.errors import ConfigError, DataError
from attnrun.registry import Registry

__all__ = [
    "MIN_POINTS",
    "RegressionData",
    "functions",
    "holdout_split",
    "load_csv",
    "make_synthetic",
]

#: Fewest points a CSV may hold (leave-one-out and a held-out split need a few).
MIN_POINTS = 3

#: name -> f(x) the noiseless truth, elementwise on a tensor.
functions: Registry[Callable[[Tensor], Tensor]] = Registry("function")


@functions.register("sin_pow")
def sin_pow(x: Tensor) -> Tensor:
    """d2l 10.2's truth ``f(x) = 2 sin(x) + x^0.8`` (for ``x >= 0``; ``|x|^0.8`` keeps the sign)."""
    return 2 * torch.sin(x) + torch.sign(x) * x.abs() ** 0.8


@functions.register("sin")
def sin(x: Tensor) -> Tensor:
    """``f(x) = sin(x)``."""
    return torch.sin(x)


@functions.register("linear")
def linear(x: Tensor) -> Tensor:
    """``f(x) = x``."""
    return x.clone()


@functions.register("quadratic")
def quadratic(x: Tensor) -> Tensor:
    """``f(x) = (x - 2.5)^2`` (a parabola centred on the default range)."""
    return (x - 2.5) ** 2


@functions.register("step")
def step(x: Tensor) -> Tensor:
    """``f(x) = 1`` for ``x >= 2.5`` else ``0``: a jump that kernel smoothing blurs."""
    return (x >= 2.5).to(x.dtype)


@dataclass
class RegressionData:
    """Training and test data; all tensors 1-D float32.

    ``y_test`` is the noiseless truth for synthetic data and the held-out observations for a CSV.
    """

    x_train: Tensor  # (n_train,) sorted
    y_train: Tensor  # (n_train,)
    x_test: Tensor  # (n_test,) sorted
    y_test: Tensor  # (n_test,)
    name: str = "sin_pow"


def make_synthetic(
    function: str = "sin_pow",
    *,
    n_train: int = 50,
    noise: float = 0.5,
    x_min: float = 0.0,
    x_max: float = 5.0,
    test_step: float = 0.1,
    generator: torch.Generator | None = None,
    seed: int | None = None,
) -> RegressionData:
    """Synthetic data: ``x_train ~ U(x_min, x_max)`` sorted, ``y = f(x) + N(0, noise^2)``;
    ``x_test = arange(x_min, x_max, test_step)`` with the noiseless ``f(x_test)``.

    Defaults reproduce d2l 10.2. Pass ``generator`` or ``seed`` (default seed 0) for
    reproducibility.

    Raises:
        ConfigError: unknown function (listing valid ones), ``n_train < 1``, ``noise < 0``,
            ``x_max <= x_min`` or ``test_step <= 0``.
    """
    f = functions.get(function)
    if int(n_train) < 1:
        raise ConfigError(f"n_train must be >= 1; got {n_train}")
    if not (math.isfinite(noise) and noise >= 0):
        raise ConfigError(f"noise must be a finite number >= 0; got {noise}")
    if not (math.isfinite(x_min) and math.isfinite(x_max) and x_max > x_min):
        raise ConfigError(f"need finite x_min < x_max; got x_min={x_min}, x_max={x_max}")
    if not (math.isfinite(test_step) and test_step > 0):
        raise ConfigError(f"test_step must be > 0; got {test_step}")
    if generator is None:
        generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
    x_train = torch.sort(torch.rand(int(n_train), generator=generator) * (x_max - x_min) + x_min)[0]
    y_train = f(x_train) + noise * torch.randn(int(n_train), generator=generator)
    x_test = torch.arange(x_min, x_max, test_step, dtype=torch.float32)
    return RegressionData(x_train, y_train, x_test, f(x_test), name=function)


def holdout_split(
    x: Tensor, y: Tensor, test_fraction: float = 0.2, generator: torch.Generator | None = None
) -> RegressionData:
    """Random train/test split; both parts sorted by ``x``. At least one point on each side.

    Raises:
        ConfigError: ``test_fraction`` not in (0, 1).
        DataError: fewer than 2 points, or ``x``/``y`` of different lengths.
    """
    if not (0 < test_fraction < 1):
        raise ConfigError(f"test_fraction must lie in (0, 1); got {test_fraction}")
    n = x.numel()
    if n != y.numel():
        raise DataError(f"x and y differ in length: {n} vs {y.numel()}")
    if n < 2:
        raise DataError(f"a held-out split needs at least 2 points; got {n}")
    n_test = min(max(1, round(n * test_fraction)), n - 1)
    perm = torch.randperm(n, generator=generator)
    test_idx, train_idx = perm[:n_test], perm[n_test:]

    def part(idx: Tensor) -> tuple[Tensor, Tensor]:
        order = torch.argsort(x[idx])
        return x[idx][order], y[idx][order]

    x_train, y_train = part(train_idx)
    x_test, y_test = part(test_idx)
    return RegressionData(x_train, y_train, x_test, y_test, name="csv")


def load_csv(path: str | os.PathLike, *, min_points: int = MIN_POINTS) -> tuple[Tensor, Tensor]:
    """Read ``x,y`` pairs from a CSV with the header ``x,y``; returns float32 ``(x, y)``.

    Blank lines are skipped; surrounding spaces are allowed. Every problem raises
    :class:`DataError` naming ``file:line: reason``: a missing or unreadable file, an empty file, a
    header other than ``x,y``, a row that is not two numbers, NaN or inf values, fewer than
    ``min_points`` rows.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{p}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{p}: cannot read: {exc}") from None
    lines = text.splitlines()
    numbered = [(i, line.strip()) for i, line in enumerate(lines, start=1) if line.strip()]
    if not numbered:
        raise DataError(f"{p}:1: empty file; expected a header 'x,y' and rows of two numbers")
    head_line, head = numbered[0]
    if [c.strip().lower() for c in head.split(",")] != ["x", "y"]:
        raise DataError(f"{p}:{head_line}: bad header {head!r}; expected 'x,y'")
    xs: list[float] = []
    ys: list[float] = []
    for lineno, line in numbered[1:]:
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != 2:
            raise DataError(f"{p}:{lineno}: expected two numbers 'x,y'; got {line!r}")
        try:
            xv, yv = float(cells[0]), float(cells[1])
        except ValueError:
            raise DataError(f"{p}:{lineno}: not a number in {line!r}") from None
        if not (math.isfinite(xv) and math.isfinite(yv)):
            raise DataError(f"{p}:{lineno}: NaN or inf value in {line!r}")
        xs.append(xv)
        ys.append(yv)
    if len(xs) < min_points:
        raise DataError(f"{p}:{len(lines)}: only {len(xs)} data rows; need at least {min_points}")
    return torch.tensor(xs, dtype=torch.float32), torch.tensor(ys, dtype=torch.float32)
