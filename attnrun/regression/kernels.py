"""Smoothing kernels K(u) for Nadaraya-Watson regression, one registered function each.

Convention: training point ``x_j`` gets weight ``K((q - x_j) / h)`` for a query ``q`` and bandwidth
``h`` (Nadaraya 1964, Watson 1964). The constant ``1/h`` of a density estimate cancels in the
Nadaraya-Watson ratio and is left out. Every kernel here is symmetric, integrates to one over the
real line and is maximal at ``u = 0``.

statsmodels' ``KernelReg(var_type='c')`` uses the same scaling: its weight is
``(1/h) k((x_j - q)/h)`` with ``h`` the very same number (``bw=[h]``), so a bandwidth maps one to
one. Its kernels for continuous data are ``'gaussian'`` and ``'tricube'`` (with the same constants
as here). d2l 10.2 writes the gaussian as ``softmax(-((q - x) w)^2 / 2)``: ``h = 1 / |w|``.

Compact kernels are zero for ``|u| > 1`` (``support = 1``). The gaussian has unbounded support; the
fast paths cut it where a weight falls below ``GAUSSIAN_CUT`` (1e-12) times the row's largest,
i.e. where ``u^2 > u_0^2 + 2 ln(1e12)`` with ``u_0`` the scaled distance to the nearest key
(:meth:`Kernel.cut_radius`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from attnrun.registry import Registry

__all__ = ["GAUSSIAN_CUT", "Kernel", "get_kernel", "kernels"]

#: Relative weight below which the gaussian is cut in the windowed paths.
GAUSSIAN_CUT = 1e-12
_GAUSS_R2 = 2.0 * math.log(1.0 / GAUSSIAN_CUT)  # ≈ 55.26: u^2 - u0^2 beyond which w < cut·w_max


@dataclass(frozen=True)
class Kernel:
    """A kernel profile with what the windowed paths need to know about its support.

    Attributes:
        name: registry name.
        fn: ``K(u)``, elementwise on a tensor of any shape.
        support: ``1.0`` for compact kernels (``K(u) = 0`` for ``|u| > 1``), ``inf`` otherwise.
        log_fn: ``log K(u)`` for kernels that need a stable log form (the gaussian), else ``None``.
    """

    name: str
    fn: Callable[[Tensor], Tensor]
    support: float
    log_fn: Callable[[Tensor], Tensor] | None = None

    @property
    def compact(self) -> bool:
        return math.isfinite(self.support)

    def __call__(self, u: Tensor) -> Tensor:
        return self.fn(u)

    def cut_radius(self, u0: Tensor | float) -> Tensor | float:
        """Scaled radius beyond which weights are zero (compact) or below the 1e-12 relative cut.

        ``u0`` is the scaled distance ``|q - x_nearest| / h`` to the query's nearest key. Compact
        kernels return ``1`` whatever ``u0``; the gaussian returns ``sqrt(u0^2 + 2 ln 1e12)``
        (≈ 7.43 for a query on top of the data).
        """
        if self.compact:
            return self.support if not isinstance(u0, Tensor) else torch.full_like(u0, self.support)
        if isinstance(u0, Tensor):
            return torch.sqrt(u0 * u0 + _GAUSS_R2)
        return math.sqrt(u0 * u0 + _GAUSS_R2)

    def log_weights(self, u: Tensor, u0: Tensor | None = None) -> Tensor:
        """``log K(u)`` (``-inf`` outside a compact support) minus ``log K(u0)`` if ``u0`` is given.

        Subtracting the log-weight of the nearest key keeps every row's largest weight near one, so
        a query far from all data does not underflow to ``0/0`` (for the gaussian:
        ``-(u^2 - u0^2)/2``).
        """
        if self.log_fn is not None:
            out = self.log_fn(u)
            return out if u0 is None else out - self.log_fn(u0)
        k = self.fn(u)
        return torch.where(k > 0, torch.log(torch.where(k > 0, k, 1.0)), -math.inf)


kernels: Registry[Kernel] = Registry("kernel")


def _register(name: str, support: float, log_fn: Callable[[Tensor], Tensor] | None = None):
    def deco(fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
        kernels.register(name)(Kernel(name, fn, support, log_fn))
        return fn

    return deco


def _inside(u: Tensor) -> Tensor:
    return u.abs() <= 1


@_register("gaussian", math.inf, log_fn=lambda u: -0.5 * u * u)
def gaussian(u: Tensor) -> Tensor:
    """Gaussian: ``K(u) = exp(-u^2/2) / sqrt(2 pi)``, unbounded support."""
    return torch.exp(-0.5 * u * u) / math.sqrt(2 * math.pi)


@_register("boxcar", 1.0)
def boxcar(u: Tensor) -> Tensor:
    """Boxcar (uniform): ``K(u) = 1/2`` for ``|u| <= 1``, else 0."""
    return torch.where(_inside(u), 0.5, 0.0).to(u.dtype)


@_register("epanechnikov", 1.0)
def epanechnikov(u: Tensor) -> Tensor:
    """Epanechnikov (1969): ``K(u) = 3/4 (1 - u^2)`` for ``|u| <= 1``, else 0."""
    return torch.clamp(0.75 * (1 - u * u), min=0)


@_register("triangular", 1.0)
def triangular(u: Tensor) -> Tensor:
    """Triangular: ``K(u) = 1 - |u|`` for ``|u| <= 1``, else 0."""
    return torch.clamp(1 - u.abs(), min=0)


@_register("tricube", 1.0)
def tricube(u: Tensor) -> Tensor:
    """Tricube: ``K(u) = 70/81 (1 - |u|^3)^3`` for ``|u| <= 1``, else 0 (as statsmodels')."""
    return (70.0 / 81.0) * torch.clamp(1 - u.abs() ** 3, min=0) ** 3


@_register("biweight", 1.0)
def biweight(u: Tensor) -> Tensor:
    """Biweight (quartic): ``K(u) = 15/16 (1 - u^2)^2`` for ``|u| <= 1``, else 0."""
    return (15.0 / 16.0) * torch.clamp(1 - u * u, min=0) ** 2


@_register("cosine", 1.0)
def cosine(u: Tensor) -> Tensor:
    """Cosine: ``K(u) = pi/4 cos(pi u / 2)`` for ``|u| <= 1``, else 0."""
    return torch.where(_inside(u), (math.pi / 4) * torch.cos((math.pi / 2) * u), 0.0).to(u.dtype)


def get_kernel(kernel: str | Kernel) -> Kernel:
    """A :class:`Kernel` from its registry name (``ConfigError`` listing valid names) or itself."""
    return kernel if isinstance(kernel, Kernel) else kernels.get(kernel)
