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
from typing import TYPE_CHECKING, TypedDict

import torch
from torch import Tensor

from attnrun.errors import DataError
from attnrun.registry import Registry
from attnrun.validation import require

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "DATA_SETTINGS",
    "MIN_POINTS",
    "RegressionData",
    "SyntheticFunction",
    "functions",
    "holdout_split",
    "load_csv",
    "make_synthetic",
]

#: Fewest points a CSV may hold (leave-one-out and a held-out split need a few).
MIN_POINTS = 3


@dataclass(frozen=True)
class SyntheticFunction:
    """A generating function with the data settings it is drawn with unless a config says
    otherwise (:func:`make_synthetic`, ``data.function=NAME`` in ``attnrun regress``).

    Attributes:
        name: registry name.
        fn: the noiseless truth ``f(x)``, elementwise on a tensor.
        n_train: training points ``x ~ U(x_min, x_max)``.
        noise: standard deviation of the gaussian noise on ``y``.
        x_min, x_max: the input range.
        test_step: test points ``arange(x_min, x_max, test_step)``.
    """

    name: str
    fn: Callable[[Tensor], Tensor]
    n_train: int = 50
    noise: float = 0.5
    x_min: float = 0.0
    x_max: float = 5.0
    test_step: float = 0.1

    def __call__(self, x: Tensor) -> Tensor:
        return self.fn(x)

    def settings(self, **given: float | int | None) -> dict[str, float | int]:
        """The data settings with ``given`` values in place of the defaults where not ``None``."""
        out: dict[str, float | int] = {k: getattr(self, k) for k in DATA_SETTINGS}
        out.update({k: v for k, v in given.items() if k in DATA_SETTINGS and v is not None})
        return out


#: The settings a :class:`SyntheticFunction` carries a default for.
DATA_SETTINGS = ("n_train", "noise", "x_min", "x_max", "test_step")

#: name -> :class:`SyntheticFunction` (callable as the noiseless truth ``f(x)``).
functions: Registry[SyntheticFunction] = Registry("function")


class _Settings(TypedDict, total=False):
    """Keywords of :func:`_register`: a function's own :data:`DATA_SETTINGS` defaults."""

    n_train: int
    noise: float
    x_min: float
    x_max: float
    test_step: float


def _register(name: str, **defaults: Unpack[_Settings]):
    def deco(fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
        functions.register(name)(SyntheticFunction(name, fn, **defaults))
        return fn

    return deco


@_register("sin_pow")
def sin_pow(x: Tensor) -> Tensor:
    """d2l 10.2's truth ``f(x) = 2 sin(x) + x^0.8`` (for ``x >= 0``; ``|x|^0.8`` keeps the sign).

    Drawn as the book does: 50 points ``x ~ U(0, 5)``, noise ``N(0, 0.5^2)``, test grid
    ``arange(0, 5, 0.1)``.
    """
    return 2 * torch.sin(x) + torch.sign(x) * x.abs() ** 0.8


@_register("x_plus_sin", n_train=100, noise=1.0, x_min=0.0, x_max=10.0, test_step=0.1)
def x_plus_sin(x: Tensor) -> Tensor:
    """The textbook's second toy problem: ``f(x) = x + sin(x)``, 100 points ``x ~ U(0, 10)``,
    noise ``N(0, 1)``, test grid ``arange(0, 10, 0.1)``."""
    return x + torch.sin(x)


@_register("sin")
def sin(x: Tensor) -> Tensor:
    """``f(x) = sin(x)``."""
    return torch.sin(x)


@_register("linear")
def linear(x: Tensor) -> Tensor:
    """``f(x) = x``."""
    return x.clone()


@_register("quadratic")
def quadratic(x: Tensor) -> Tensor:
    """``f(x) = (x - 2.5)^2`` (a parabola centred on the default range)."""
    return (x - 2.5) ** 2


@_register("step")
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
    n_train: int | None = None,
    noise: float | None = None,
    x_min: float | None = None,
    x_max: float | None = None,
    test_step: float | None = None,
    generator: torch.Generator | None = None,
    seed: int | None = None,
) -> RegressionData:
    """Synthetic data: ``x_train ~ U(x_min, x_max)`` sorted, ``y = f(x) + N(0, noise^2)``;
    ``x_test = arange(x_min, x_max, test_step)`` with the noiseless ``f(x_test)``.

    A setting left ``None`` is the function's own default (:class:`SyntheticFunction`; for
    ``sin_pow`` d2l 10.2's). Pass ``generator`` or ``seed`` (default seed 0) for reproducibility.

    Raises:
        ConfigError: unknown function (listing valid ones), ``n_train < 1``, ``noise < 0``,
            ``x_max <= x_min`` or ``test_step <= 0``.
    """
    f = functions.get(function)
    d = f.settings(n_train=n_train, noise=noise, x_min=x_min, x_max=x_max, test_step=test_step)
    n, noise, x_min, x_max, test_step = (d[k] for k in DATA_SETTINGS)
    require(int(n) >= 1, "n_train", n, ">= 1")
    require(math.isfinite(noise) and noise >= 0, "noise", noise, "a finite number >= 0")
    require(
        math.isfinite(x_min) and math.isfinite(x_max) and x_max > x_min,
        "x_min, x_max",
        (x_min, x_max),
        "finite x_min < x_max",
    )
    require(math.isfinite(test_step) and test_step > 0, "test_step", test_step, "> 0")
    if generator is None:
        generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
    x_train = torch.sort(torch.rand(int(n), generator=generator) * (x_max - x_min) + x_min)[0]
    y_train = f(x_train) + noise * torch.randn(int(n), generator=generator)
    x_test = torch.arange(x_min, x_max, test_step, dtype=torch.float32)
    return RegressionData(x_train, y_train, x_test, f(x_test), name=function)


def holdout_split(
    x: Tensor, y: Tensor, test_fraction: float = 0.2, generator: torch.Generator | None = None
) -> RegressionData:
    """Random train/test split; both parts sorted by ``x``. At least one point on each side.

    ``test_fraction = 0`` fits on every point, as statsmodels' ``KernelReg(y, x, ...)`` does: the
    training set is all of ``(x, y)``, and the "test" set is the same points (in-sample; no
    random draw is made).

    Raises:
        ConfigError: ``test_fraction`` not in [0, 1).
        DataError: fewer than 2 points, or ``x``/``y`` of different lengths.
    """
    require(0 <= test_fraction < 1, "test_fraction", test_fraction, "[0, 1)")
    n = x.numel()
    if n != y.numel():
        raise DataError(f"x and y differ in length: {n} vs {y.numel()}")
    if n < 2:
        raise DataError(f"a held-out split needs at least 2 points; got {n}")

    def part(idx: Tensor) -> tuple[Tensor, Tensor]:
        order = torch.argsort(x[idx], stable=True)
        return x[idx][order], y[idx][order]

    if test_fraction == 0:
        xs, ys = part(torch.arange(n))
        return RegressionData(xs, ys, xs.clone(), ys.clone(), name="csv")
    n_test = min(max(1, round(n * test_fraction)), n - 1)
    perm = torch.randperm(n, generator=generator)
    test_idx, train_idx = perm[:n_test], perm[n_test:]
    x_train, y_train = part(train_idx)
    x_test, y_test = part(test_idx)
    return RegressionData(x_train, y_train, x_test, y_test, name="csv")


def load_csv(path: str | os.PathLike, *, min_points: int = MIN_POINTS) -> tuple[Tensor, Tensor]:
    """Read ``x,y`` pairs from a CSV with the header ``x,y``; returns float32 ``(x, y)``.

    Blank lines are skipped; surrounding spaces are allowed; a UTF-8 BOM and CRLF line ends are
    fine. Every problem raises :class:`DataError` naming ``file:line: reason``: a missing or
    unreadable file, bytes that are not UTF-8 (e.g. a Latin-1 file), an empty file, a header
    other than ``x,y``, a row that is not two numbers, NaN or inf values, fewer than
    ``min_points`` rows.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{p}: file not found") from None
    except OSError as exc:
        raise DataError(f"{p}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # numbered as below (str.splitlines), up to the first bad byte
        before = (raw[: exc.start].decode("utf-8-sig") + "?").splitlines()
        row, column = len(before), len(before[-1])
        raise DataError(
            f"{p}:{row}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {column}); "
            "save the file as UTF-8"
        ) from None
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
