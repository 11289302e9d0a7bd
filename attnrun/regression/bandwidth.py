"""Bandwidth selection for Nadaraya-Watson regression: rules of thumb and leave-one-out CV.

Rules (1-D, ``n`` points, ``sigma`` the sample standard deviation with ``ddof=1``, ``IQR`` the
interquartile range)::

    silverman(x) = 0.9   * min(sigma, IQR/1.349) * n^(-1/5)     (Silverman 1986, eq. 3.31)
    scott(x)     = 1.059 * sigma                 * n^(-1/5)     (Scott 1992)

statsmodels' ``bw_silverman`` is the same formula. Its ``bw_scott`` uses
``min(sigma, IQR/1.349)`` instead of ``sigma``; the two agree whenever ``sigma <= IQR/1.349`` (e.g.
uniform data). When the IQR is zero (over half the points tied) Silverman's rule uses ``sigma``.

:func:`loo_bandwidth` minimises the exact leave-one-out error (Härdle 1990, §5.1)::

    CV(h) = 1/n sum_i (y_i - f_{-i}(x_i))^2
    f_{-i}(x_i) = sum_{j != i} K_ij y_j / sum_{j != i} K_ij

the criterion of statsmodels ``KernelReg(reg_type='lc', bw='cv_ls')`` (which minimises it with
Nelder-Mead from ``1.06 std(x) n^(-1/5)`` and can stop in a local minimum). Here: a log-spaced grid
over ``h``, then Brent's method in ``log h`` around the best grid point. Each evaluation is one
sorted, windowed pass (:func:`loo_error`), O(n · window) instead of statsmodels' O(n^2) Python loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from attnrun.device import cpu_threads
from attnrun.errors import ConfigError, DataError
from attnrun.registry import Registry
from attnrun.regression.kernels import Kernel, get_kernel
from attnrun.regression.nadaraya_watson import (
    _nearest_distance,
    check_bandwidth,
    loo_sums,
    prepare_1d,
    threads_for,
)

__all__ = [
    "bandwidth_rules",
    "loo_bandwidth",
    "loo_error",
    "resolve_bandwidth",
    "scott",
    "silverman",
]

#: name -> rule(x, y, kernel) -> bandwidth; ``resolve_bandwidth`` reads it.
bandwidth_rules: Registry[Callable[[Tensor, Tensor, Kernel], float]] = Registry("bandwidth rule")


def _spread(x: Tensor, robust: bool) -> float:
    x = prepare_1d(x, "x").double()
    if x.numel() < 2:
        raise DataError(f"a bandwidth rule needs at least 2 points; got {x.numel()}")
    sigma = float(x.std())
    if robust:
        iqr = float(torch.quantile(x, 0.75) - torch.quantile(x, 0.25))
        if iqr > 0:
            sigma = min(sigma, iqr / 1.349)
    if not sigma > 0:
        raise DataError("all x values are equal: a bandwidth rule has no spread to scale")
    return sigma


def silverman(x: Tensor) -> float:
    """Silverman's rule ``0.9 min(sigma, IQR/1.349) n^(-1/5)`` (= statsmodels ``bw_silverman``)."""
    return 0.9 * _spread(x, robust=True) * prepare_1d(x, "x").numel() ** -0.2


def scott(x: Tensor) -> float:
    """Scott's rule ``1.059 sigma n^(-1/5)`` (statsmodels' uses min(sigma, IQR/1.349))."""
    return 1.059 * _spread(x, robust=False) * prepare_1d(x, "x").numel() ** -0.2


def _sorted_xy(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    x = prepare_1d(x, "x").double()
    y = prepare_1d(y, "y").double()
    if x.numel() != y.numel():
        raise DataError(f"x and y differ in length: {x.numel()} vs {y.numel()}")
    if x.numel() < 3:
        raise DataError(f"leave-one-out needs at least 3 points; got {x.numel()}")
    order = torch.argsort(x)
    return x[order], y[order]


def _loo_sorted(
    xs: Tensor, ys: Tensor, kern: Kernel, h: float, gap: Tensor, dtype: torch.dtype
) -> float:
    sums = loo_sums(xs, ys, kern, h, gap, dtype=dtype)
    pred = sums[:, 0] / sums[:, 1]
    if not bool(torch.isfinite(pred).all()):
        return math.inf  # some point has no neighbour carrying weight: CV undefined
    return float(((ys - pred) ** 2).mean())


def loo_error(
    x: Tensor, y: Tensor, kernel: str | Kernel = "gaussian", bandwidth: float = 1.0
) -> float:
    """Exact leave-one-out mean squared error ``CV(h)`` (float64); ``inf`` if some point has no
    other point within a compact kernel's support."""
    xs, ys = _sorted_xy(x, y)
    kern, h = get_kernel(kernel), check_bandwidth(bandwidth)
    with cpu_threads(threads_for(xs.numel() ** 2)):
        gap = _nearest_distance(xs, xs, exclude_self=True)
        return _loo_sorted(xs, ys, kern, h, gap, torch.float64)


def _brent(f: Callable[[float], float], a: float, b: float, x: float, fx: float, tol: float):
    """Brent's minimiser (parabolic steps with golden-section fallback) on ``[a, b]`` from ``x``."""
    golden = 0.3819660112501051
    w = v = x
    fw = fv = fx
    d = e = 0.0
    for _ in range(60):
        m = 0.5 * (a + b)
        tol1 = tol  # absolute in log h, i.e. relative in h
        if abs(x - m) <= 2 * tol1 - 0.5 * (b - a):
            break
        use_golden = True
        if abs(e) > tol1:
            r = (x - w) * (fx - fv)
            q = (x - v) * (fx - fw)
            p = (x - v) * q - (x - w) * r
            q = 2 * (q - r)
            if q > 0:
                p = -p
            q = abs(q)
            if abs(p) < abs(0.5 * q * e) and a * q < p < b * q and q != 0:
                e, d = d, p / q
                u = x + d
                if u - a < 2 * tol1 or b - u < 2 * tol1:
                    d = tol1 if x < m else -tol1
                use_golden = False
        if use_golden:
            e = (b - x) if x < m else (a - x)
            d = golden * e
        u = x + (d if abs(d) >= tol1 else math.copysign(tol1, d))
        fu = f(u)
        if fu <= fx:
            if u < x:
                b = x
            else:
                a = x
            v, fv, w, fw, x, fx = w, fw, x, fx, u, fu
        else:
            if u < x:
                a = u
            else:
                b = u
            if fu <= fw or w == x:
                v, fv, w, fw = w, fw, u, fu
            elif fu <= fv or v in (x, w):
                v, fv = u, fu
    return x, fx


def loo_bandwidth(
    x: Tensor,
    y: Tensor,
    kernel: str | Kernel = "gaussian",
    *,
    grid_points: int = 10,
    span: tuple[float, float] = (1 / 64, 8.0),
    rtol: float = 1e-3,
    return_error: bool = False,
) -> float | tuple[float, float]:
    """The bandwidth minimising the exact leave-one-out error ``CV(h)`` (module docstring).

    Steps:
        1. ``h0 = 1.06 std(x) n^(-1/5)`` (statsmodels' start); grid ``h0 * span`` log-spaced with
           ``grid_points`` points (for compact kernels starting no lower than the largest gap to a
           nearest neighbour, below which ``CV`` is undefined).
        2. Brent's method in ``log h`` on the bracket around the best grid point, to relative
           tolerance ``rtol`` in ``h``; the grid search makes a local minimum less likely than a
           descent from ``h0`` alone. A minimum on the grid's edge is returned from there.

    Args:
        x, y: ``(n,)`` data, ``n >= 3``.
        kernel: a kernel name or :class:`Kernel`.
        return_error: also return the exact ``CV(h)`` at the chosen ``h``.

    Returns:
        ``h`` (a float), or ``(h, CV(h))`` with ``return_error``.
    """
    xs, ys = _sorted_xy(x, y)
    with cpu_threads(threads_for(xs.numel() ** 2)):  # tiny problems: one thread
        return _loo_search(xs, ys, get_kernel(kernel), grid_points, span, rtol, return_error)


def _loo_search(
    xs: Tensor,
    ys: Tensor,
    kern: Kernel,
    grid_points: int,
    span: tuple[float, float],
    rtol: float,
    return_error: bool,
) -> float | tuple[float, float]:
    """:func:`loo_bandwidth`'s steps on sorted float64 ``xs``, ``ys``."""
    gap = _nearest_distance(xs, xs, exclude_self=True)
    h0 = 1.06 * float(xs.std(correction=0)) * xs.numel() ** -0.2
    if not h0 > 0:
        raise DataError("all x values are equal: no bandwidth can be selected")
    lo, hi = math.log(h0 * span[0]), math.log(h0 * span[1])
    if kern.compact:
        lo = max(lo, math.log(float(gap.max()) / kern.support * (1 + 1e-6)))
        hi = max(hi, lo + math.log(4.0))
    cache: dict[float, float] = {}

    def cv(log_h: float) -> float:
        if log_h not in cache:
            cache[log_h] = _loo_sorted(xs, ys, kern, math.exp(log_h), gap, torch.float64)
        return cache[log_h]

    grid = [lo + (hi - lo) * k / (grid_points - 1) for k in range(grid_points)]
    values = [cv(g) for g in grid]
    best = min(range(grid_points), key=values.__getitem__)
    if not math.isfinite(values[best]):
        raise DataError("leave-one-out error is undefined for every bandwidth tried")
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, grid_points - 1)]
    log_h, _ = _brent(cv, a, b, grid[best], values[best], tol=rtol)
    h = math.exp(log_h)
    if not return_error:
        return h
    return h, _loo_sorted(xs, ys, kern, h, gap, torch.float64)


# ---------------------------------------------------------------------------------------------
# resolve_bandwidth: a number or a rule name from the config
# ---------------------------------------------------------------------------------------------


@bandwidth_rules.register("silverman")
def _silverman_rule(x: Tensor, y: Tensor, kernel: Kernel) -> float:
    return silverman(x)


@bandwidth_rules.register("scott")
def _scott_rule(x: Tensor, y: Tensor, kernel: Kernel) -> float:
    return scott(x)


@bandwidth_rules.register("loo")
def _loo_rule(x: Tensor, y: Tensor, kernel: Kernel) -> float:
    h = loo_bandwidth(x, y, kernel)
    assert isinstance(h, float)  # without return_error: h alone
    return float(h)


def resolve_bandwidth(
    spec: float | int | str, x: Tensor, y: Tensor, kernel: str | Kernel = "gaussian"
) -> float:
    """A bandwidth from a config value: a positive number, or a rule name
    (``'silverman'``, ``'scott'``, ``'loo'`` — :data:`bandwidth_rules`).

    Raises:
        ConfigError: an unknown rule (listing the valid ones) or a number that is not finite > 0
            (numeric strings such as ``"0.3"`` are accepted as numbers).
    """
    if isinstance(spec, str):
        name = spec
        try:
            spec = float(name)
        except ValueError:
            return float(bandwidth_rules.get(name.strip().lower())(x, y, get_kernel(kernel)))
    if isinstance(spec, bool):
        raise ConfigError(f"bandwidth must be a positive number or a rule; got {spec!r}")
    return check_bandwidth(spec)
