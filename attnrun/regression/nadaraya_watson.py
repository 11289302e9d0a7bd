"""Nadaraya-Watson kernel regression as attention pooling (Nadaraya 1964, Watson 1964; d2l 10.2).

For queries ``q_i``, keys ``x_j`` and values ``y_j`` (all scalars) with kernel ``K`` and
bandwidth ``h``::

    f(q_i) = sum_j alpha_ij y_j,   alpha_ij = K((q_i - x_j)/h) / sum_k K((q_i - x_k)/h)

``alpha`` is the attention matrix ``(n_query, n_train)``; for the gaussian it is
``softmax_j(-(q_i - x_j)^2 / (2 h^2))``. Queries whose weights are all zero (a compact kernel with
no key within ``h``) are **NaN**: the estimator is undefined there (0/0), and a NaN says so instead
of inventing a value (``0``, the global mean or the nearest neighbour would each be a silent guess).

:func:`nadaraya_watson` never builds the ``(n_query, n_train)`` matrix. Keys are sorted once and
queries are processed in sorted blocks, each against the contiguous slice of keys that can carry
weight (method ``"windowed"``, exact for compact kernels; for the gaussian, keys whose weight is
below ``1e-12`` of the row's largest are cut). For the gaussian, method ``"expansion"`` groups the
sorted keys into small blocks of half-width ``r <= rho h`` around centres ``c`` and expands the
cross term (Taylor form of the fast Gauss transform: Greengard & Strain 1991; Yang, Duraiswami &
Gumerov 2003):

    exp(-(q-x)^2/2h^2) = exp(-t^2/2) * exp(t b) * exp(-b^2/2),   t = (q-c)/h, b = (x-c)/h
    exp(t b) = sum_{n<P} t^n b^n / n!  +  R_P,   |R_P| <= z^P/P! e^z,   z = |t| |b| <= |t| rho

so each (query, key block) pair costs ``P`` multiply-adds against the block's moments
``sum_j y_j e^{-b_j^2/2} b_j^n / n!`` instead of one exponential per key. The relative error of
every single weight is ``<= z^P/P! e^{2z}``; the expansion is used only where this bound is
``<= 1e-13`` (below the 1e-12 cut): a query for which any key block in its window violates it (a
query far from all data) goes through the exact windowed path instead, so the bound holds on all
inputs. Every weight is stabilised by the nearest key's weight (``exp(+u0^2/2)`` with ``u0`` the
scaled distance to the nearest key), so far queries do not underflow to 0/0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from attnrun.errors import ConfigError, DataError
from attnrun.regression.kernels import Kernel, get_kernel

__all__ = ["attention_weights", "check_bandwidth", "nadaraya_watson", "prepare_1d"]

_METHODS = ("auto", "dense", "windowed", "expansion")
_EXP_ORDER = 18  # P: Taylor terms per key block
_EXP_RHO = 0.125  # key block half-width in units of h
_EXP_TOL = 1e-13  # bound on each weight's relative truncation error
_DENSE_LIMIT = 50_000_000  # attention_weights refuses larger matrices


def _z_max(order: int, tol: float) -> float:
    """Largest z with z^P/P! e^{2z} <= tol (bisection on the monotone bound)."""
    log_fact = math.lgamma(order + 1)
    lo, hi = 0.0, 50.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        bound = order * math.log(mid) - log_fact + 2 * mid if mid > 0 else -math.inf
        lo, hi = (mid, hi) if bound <= math.log(tol) else (lo, mid)
    return lo


_EXP_ZMAX = _z_max(_EXP_ORDER, _EXP_TOL)


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------


def prepare_1d(values: Tensor | Sequence[float], name: str) -> Tensor:
    """``values`` as a 1-D floating tensor; accepts ``(n,)`` or ``(n, 1)``.

    Raises:
        DataError: the input is empty, not 1-D, or holds NaN or inf.
    """
    t = values if isinstance(values, Tensor) else torch.as_tensor(values)
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.ndim != 1:
        raise DataError(f"{name} must have shape (n,) or (n, 1); got {tuple(t.shape)}")
    if t.numel() == 0:
        raise DataError(f"{name} is empty")
    bad = ~torch.isfinite(t)
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        raise DataError(f"{name} contains NaN or inf (first at index {i}: {t[i].item()})")
    return t


def check_bandwidth(bandwidth: float) -> float:
    """``bandwidth`` as a float; ``ConfigError`` unless it is a finite number > 0."""
    try:
        h = float(bandwidth)
    except (TypeError, ValueError):
        raise ConfigError(f"bandwidth must be a positive number; got {bandwidth!r}") from None
    if not (math.isfinite(h) and h > 0):
        raise ConfigError(f"bandwidth must be a finite number > 0; got {bandwidth!r}")
    return h


def _prepare(x_query, x_train, y_train, kernel, bandwidth):
    q = prepare_1d(x_query, "x_query")
    x = prepare_1d(x_train, "x_train")
    y = prepare_1d(y_train, "y_train")
    if x.numel() != y.numel():
        raise DataError(f"x_train and y_train differ in length: {x.numel()} vs {y.numel()}")
    dtype = torch.promote_types(torch.promote_types(q.dtype, x.dtype), y.dtype)
    return q, x, y, get_kernel(kernel), check_bandwidth(bandwidth), dtype


# ---------------------------------------------------------------------------------------------
# dense (reference, heatmaps)
# ---------------------------------------------------------------------------------------------


def attention_weights(
    x_query: Tensor, x_train: Tensor, kernel: str | Kernel = "gaussian", bandwidth: float = 1.0
) -> Tensor:
    """The dense attention matrix ``alpha`` of shape ``(n_query, n_train)``; rows sum to one.

    For heatmaps and small data (refuses more than 5e7 entries). Rows with zero total weight are
    NaN. Computed in float64 with the nearest-key stabilisation; returned in the inputs' dtype.
    """
    q = prepare_1d(x_query, "x_query")
    x = prepare_1d(x_train, "x_train")
    kern, h = get_kernel(kernel), check_bandwidth(bandwidth)
    if q.numel() * x.numel() > _DENSE_LIMIT:
        raise ConfigError(
            f"attention_weights would build a {q.numel()} x {x.numel()} matrix; "
            "use nadaraya_watson for large inputs"
        )
    dtype = torch.promote_types(q.dtype, x.dtype)
    u = (q.double()[:, None] - x.double()[None, :]) / h  # (n_query, n_train)
    w = _kernel_block(kern, u, u.abs().amin(dim=1))
    return (w / w.sum(dim=1, keepdim=True)).to(dtype)


def _kernel_block(kern: Kernel, u: Tensor, u0: Tensor) -> Tensor:
    """Kernel weights for scaled offsets ``u`` (B, m); the gaussian relative to its value at u0."""
    if kern.log_fn is not None:
        return torch.exp(kern.log_weights(u, u0[:, None]))
    return kern(u)


# ---------------------------------------------------------------------------------------------
# the fast paths
# ---------------------------------------------------------------------------------------------


def _nearest_distance(qs: Tensor, xs: Tensor, exclude_self: bool) -> Tensor:
    """Distance from each sorted query to its nearest sorted key (to the nearest *other* key when
    the queries are the keys themselves, ``exclude_self``); ``inf`` when there is none."""
    n = xs.numel()
    inf = torch.tensor(math.inf, dtype=xs.dtype)
    if exclude_self:
        gaps = xs[1:] - xs[:-1]
        left = torch.cat([inf[None], gaps])
        right = torch.cat([gaps, inf[None]])
        return torch.minimum(left, right)
    idx = torch.searchsorted(xs, qs)
    right = torch.where(idx < n, xs[idx.clamp(max=n - 1)] - qs, inf)
    left = torch.where(idx > 0, qs - xs[(idx - 1).clamp(min=0)], inf)
    return torch.minimum(left, right)


def _windows(qs: Tensor, xs: Tensor, kern: Kernel, h: float, u0: Tensor) -> tuple[Tensor, Tensor]:
    """Per-query key index ranges ``[lo, hi)`` holding every key within the cut radius."""
    radius = kern.cut_radius(u0) * h * (1 + 1e-9) + 1e-12 * (1 + qs.abs())  # margin: rounding
    lo = torch.searchsorted(xs, qs - radius, side="left")
    hi = torch.searchsorted(xs, qs + radius, side="right")
    return lo, hi


def _windowed_sums(
    qs: Tensor,
    xs: Tensor,
    vals: Tensor,
    kern: Kernel,
    h: float,
    u0: Tensor,
    *,
    exclude_self: bool = False,
    self_index: Tensor | None = None,
    block: int = 256,
    key_chunk: int = 4096,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """Exact windowed sums ``S[i] = sum_j w_ij [vals_j, 1]`` of shape ``(n_query, 2)``, float64.

    ``qs`` (n_query,) and ``xs`` (n_train,) sorted ascending, float64; ``vals`` (n_train,).
    Weights are computed in ``dtype`` block by block (``block`` queries × ``key_chunk`` keys), so
    memory is O(block · key_chunk). With ``exclude_self`` the queries are the keys themselves and
    the diagonal (self) weight is left out (leave-one-out); with ``self_index`` (n_query,) query
    ``i`` is key ``self_index[i]`` and that weight is left out.
    """
    lo, hi = _windows(qs, xs, kern, h, u0)
    y2 = torch.stack([vals, torch.ones_like(vals)], dim=1).to(dtype)  # (n_train, 2)
    out = torch.zeros(qs.numel(), 2, dtype=torch.float64)
    u0d = u0.to(dtype)
    inv_h = 1.0 / h
    for s in range(0, qs.numel(), block):
        e = min(s + block, qs.numel())
        a, b = int(lo[s:e].min()), int(hi[s:e].max())
        # Offsets relative to the block's first query keep float32 differences accurate.
        centre = qs[s]
        qb = ((qs[s:e] - centre) * inv_h).to(dtype)
        for c0 in range(a, b, key_chunk):
            c1 = min(c0 + key_chunk, b)
            xb = ((xs[c0:c1] - centre) * inv_h).to(dtype)
            u = qb[:, None] - xb[None, :]  # (B, m)
            w = _kernel_block(kern, u, u0d[s:e])
            if exclude_self:
                w.diagonal(offset=s - c0).zero_()  # entries (r, s + r - c0): the query's own key
            elif self_index is not None:
                cols = self_index[s:e] - c0
                inside = (cols >= 0) & (cols < c1 - c0)
                w[inside.nonzero()[:, 0], cols[inside]] = 0
            out[s:e] += (w @ y2[c0:c1]).double()
    return out


def _expansion_sums(
    qs: Tensor, xs: Tensor, vals: Tensor, h: float, u0: Tensor, *, block: int = 256
) -> tuple[Tensor, Tensor]:
    """Gaussian sums by the Taylor expansion over key blocks (see the module docstring).

    Returns ``(sums (n_query, 2) float64, ok (n_query,) bool)``; rows where ``ok`` is False were
    not computed (the truncation bound could not be guaranteed) and need the exact path.
    """
    P, rho = _EXP_ORDER, _EXP_RHO
    width = 2 * rho * h
    # 1. key blocks by value: consecutive sorted keys within one cell of width 2 rho h.
    cell = torch.floor((xs - xs[0]) / width).long()
    _, counts = torch.unique_consecutive(cell, return_counts=True)
    ends = torch.cumsum(counts, 0)
    starts = ends - counts
    bmin, bmax = xs[starts], xs[ends - 1]
    centres = 0.5 * (bmin + bmax)  # (K,)
    bid = torch.repeat_interleave(torch.arange(counts.numel()), counts)  # (n_train,)
    # 2. moments M[k, n, :] = sum_j e^{-b_j^2/2} b_j^n / n! [y_j, 1].
    b = (xs - centres[bid]) / h  # (n_train,), |b| <= rho
    inv_fact = torch.exp(-torch.lgamma(torch.arange(P, dtype=torch.float64) + 1))
    powers = torch.cat([torch.ones_like(b)[:, None], b[:, None].expand(-1, P - 1)], dim=1)
    powers = powers.cumprod(dim=1) * inv_fact  # (n_train, P)
    base = torch.exp(-0.5 * b * b)
    moments = torch.zeros(counts.numel(), P, 2, dtype=torch.float64)
    moments[:, :, 0].index_add_(0, bid, powers * (base * vals)[:, None])
    moments[:, :, 1].index_add_(0, bid, powers * base[:, None])
    # 3. per query: the key blocks that meet its cut window, and whether the bound holds there.
    radius = torch.sqrt(u0 * u0 + 2 * math.log(1e12)) * h * (1 + 1e-9)
    k_lo = torch.searchsorted(bmax, qs - radius, side="left")
    k_hi = torch.searchsorted(bmin, qs + radius, side="right")
    k_last = (k_hi - 1).clamp(min=0)
    t_far = (
        torch.maximum(
            (qs - centres[k_lo.clamp(max=centres.numel() - 1)]).abs(), (qs - centres[k_last]).abs()
        )
        / h
    )
    ok = (t_far * rho <= _EXP_ZMAX) & (k_hi > k_lo)
    out = torch.zeros(qs.numel(), 2, dtype=torch.float64)
    idx_ok = ok.nonzero()[:, 0]
    m_flat = moments  # (K, P, 2)
    for s in range(0, idx_ok.numel(), block):
        rows = idx_ok[s : s + block]
        a, z = int(k_lo[rows].min()), int(k_hi[rows].max())
        kk = torch.arange(a, z)
        t = (qs[rows, None] - centres[None, a:z]) / h  # (B, Kb)
        own = (kk[None, :] >= k_lo[rows, None]) & (kk[None, :] < k_hi[rows, None])
        # exp(-(t^2 - u0^2)/2) for the query's own blocks, 0 for the rest of the union.
        expo = torch.where(own, -0.5 * (t * t - u0[rows, None] ** 2), -math.inf)
        factor = torch.exp(expo)  # (B, Kb)
        tp = torch.cat([factor[:, :, None], t[:, :, None].expand(-1, -1, P - 1)], dim=2)
        tp = tp.cumprod(dim=2)  # (B, Kb, P): factor · t^n
        out[rows] = tp.reshape(rows.numel(), -1) @ m_flat[a:z].reshape(-1, 2)
    return out, ok


def _choose(qs: Tensor, xs: Tensor, kern: Kernel, h: float, u0: Tensor) -> str:
    """``"expansion"`` where cheaper than ``"windowed"`` (gaussian only), else ``"windowed"``."""
    if kern.name != "gaussian" or kern.log_fn is None:
        return "windowed"
    lo, hi = _windows(qs, xs, kern, h, u0)
    exact_cost = float((hi - lo).sum())
    n_cells = (xs[-1] - xs[0]).item() / (2 * _EXP_RHO * h) + 1
    per_query_blocks = min(n_cells, 2 * kern.cut_radius(0.0) / (2 * _EXP_RHO) + 2)
    blocks_cost = qs.numel() * min(per_query_blocks, float(xs.numel()))
    return "expansion" if _EXP_ORDER * blocks_cost < 2 * exact_cost else "windowed"


def loo_sums(
    xs: Tensor, ys: Tensor, kern: Kernel, h: float, gap: Tensor, *, dtype=torch.float64
) -> Tensor:
    """Leave-one-out sums ``[sum_{j!=i} w_ij y_j, sum_{j!=i} w_ij]`` (n, 2), float64.

    ``xs`` sorted float64 keys (also the queries), ``ys`` their values, ``gap`` (n,) the distance
    to each point's nearest *other* point (weights are stabilised by it). For the gaussian, where
    cheaper, the full sums come from the expansion and the self weight ``exp(u0^2/2) <= e^2`` is
    subtracted (at most one digit lost); points farther than ``2h`` from any other point go through
    the exact windowed path with the self term masked.
    """
    u0 = gap / h
    if _choose(xs, xs, kern, h, u0) == "windowed":
        return _windowed_sums(xs, xs, ys, kern, h, u0, exclude_self=True, block=128, dtype=dtype)
    out, ok = _expansion_sums(xs, xs, ys, h, u0, block=128)
    self_w = torch.exp(0.5 * u0 * u0)
    out[:, 0] -= self_w * ys
    out[:, 1] -= self_w
    rest = (~ok | (u0 > 2)).nonzero()[:, 0]
    if rest.numel():
        out[rest] = _windowed_sums(
            xs[rest], xs, ys, kern, h, u0[rest], self_index=rest, block=128, dtype=dtype
        )
    return out


def _sums(
    qs: Tensor, xs: Tensor, ys: Tensor, kern: Kernel, h: float, method: str, *, block: int = 256
) -> Tensor:
    """``[sum_j w_ij y_j, sum_j w_ij]`` (n_query, 2) float64 for sorted float64 queries and keys."""
    u0 = _nearest_distance(qs, xs, exclude_self=False) / h
    if method == "auto":
        method = _choose(qs, xs, kern, h, u0)
    if method == "expansion":
        if kern.log_fn is None or kern.name != "gaussian":
            raise ConfigError(f"method 'expansion' needs the gaussian kernel, not {kern.name!r}")
        out, ok = _expansion_sums(qs, xs, ys, h, u0, block=block)
        rest = (~ok).nonzero()[:, 0]
        if rest.numel():
            out[rest] = _windowed_sums(qs[rest], xs, ys, kern, h, u0[rest], block=block)
        return out
    dtype = torch.float64
    return _windowed_sums(qs, xs, ys, kern, h, u0, block=block, dtype=dtype)


def nadaraya_watson(
    x_query: Tensor,
    x_train: Tensor,
    y_train: Tensor,
    kernel: str | Kernel = "gaussian",
    bandwidth: float = 1.0,
    *,
    return_weights: bool = False,
    method: str = "auto",
    block: int = 256,
) -> Tensor | tuple[Tensor, Tensor]:
    """Nadaraya-Watson predictions ``f(q_i) = sum_j alpha_ij y_j`` (see the module docstring).

    Args:
        x_query: ``(n_query,)`` or ``(n_query, 1)`` query inputs.
        x_train: ``(n_train,)`` or ``(n_train, 1)`` keys.
        y_train: ``(n_train,)`` or ``(n_train, 1)`` values.
        kernel: a name from :data:`attnrun.regression.kernels.kernels` or a :class:`Kernel`.
        bandwidth: ``h > 0``; weights are ``K((q - x)/h)``.
        return_weights: also return the dense ``(n_query, n_train)`` attention matrix (small
            inputs only, see :func:`attention_weights`).
        method: ``"auto"`` (default: the cheaper exact path), ``"dense"`` (the plain formula,
            O(n_query · n_train) memory), ``"windowed"`` (sorted keys, exact windows; the gaussian
            cut below 1e-12 of each row's largest weight) or ``"expansion"`` (gaussian only).
        block: queries per block in the fast paths (memory ~ ``block`` × 4096 floats).

    Returns:
        ``(n_query,)`` predictions in the inputs' promoted dtype (float32 or float64), computed in
        float64; NaN where every weight is zero. With ``return_weights``: ``(predictions,
        weights)``.

    Raises:
        DataError: empty inputs, NaN/inf values, or ``x_train``/``y_train`` of different lengths.
        ConfigError: a bandwidth that is not a finite number > 0, an unknown kernel or method.
    """
    q, x, y, kern, h, dtype = _prepare(x_query, x_train, y_train, kernel, bandwidth)
    if method not in _METHODS:
        raise ConfigError(f"unknown method {method!r}; valid: {', '.join(_METHODS)}")
    if method == "dense" or return_weights:
        weights = attention_weights(q, x, kern, h).double()
        pred = (weights @ y.double()).to(dtype)
        return (pred, weights.to(dtype)) if return_weights else pred
    qd, xd, yd = q.double(), x.double(), y.double()
    q_order = torch.argsort(qd)
    x_order = torch.argsort(xd)
    sums = _sums(qd[q_order], xd[x_order], yd[x_order], kern, h, method, block=block)
    pred_sorted = sums[:, 0] / sums[:, 1]  # 0/0 -> NaN where no key carries weight
    pred = torch.empty_like(pred_sorted)
    pred[q_order] = pred_sorted
    return pred.to(dtype)
