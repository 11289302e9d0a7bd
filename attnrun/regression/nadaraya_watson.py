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
below ``1e-12`` of the row's largest are cut). For the gaussian, method ``"expansion"`` is a grid
form of the fast Gauss transform (Greengard & Strain 1991): keys and queries fall in cells of
width ``2 rho h`` (``rho = 1/4``) on one grid; with ``s``, ``b`` the query's and key's offsets from
their cells' centres (in units of ``h``, ``|s|, |b| <= rho``) and ``D = 2 rho (c_q - c_k)``::

    g(u) = exp(-u^2/2),   u = (q - x)/h = D + s - b
    g(D + s - b) = sum_{a+c<M} g^(a+c)(D) s^a/a! (-b)^c/c!  +  R_M,   g^(m) = (-1)^m He_m g
    |R_M| <= max|g^(M)| (2 rho)^M / M!  <=  kappa (2 rho)^M / sqrt(M!)      (kappa = 1.086435)

(the Taylor series of ``g`` about ``D`` in ``v = s - b``, ``|v| <= 2 rho``, bounded by Cramér's
inequality ``|He_m(x)| e^{-x^2/4} <= kappa sqrt(m!)``). Keys give per-cell moments
``sum_j [y_j, 1] (-b_j)^c/c!``; a fixed table of ``g^(m)(D)`` over the ``2R+1`` neighbouring
cells turns them into one degree-``M`` polynomial in ``s`` per occupied query cell; each query
evaluates its cell's polynomial. Cost O(M (n_train + n_query) + (2R+1) M^2 cells), independent of
the window size. ``M`` (19) is the smallest order with ``kappa e^2 (2 rho)^M / sqrt(M!) <= 1e-13``:
each weight's error is below ``1e-13`` of the row's largest weight for every query within ``2h``
of a key (the nearest weight is ``>= e^{-2}``); queries farther out go through the exact windowed
path, so the bound holds on all inputs. Keys beyond the ``R = 16`` neighbouring cells lie
``>= 8h`` away, where weights are below the same 1e-12 cut as the windowed path's. Sums are
stabilised by the nearest key's weight (``exp(+u0^2/2)`` with ``u0`` the scaled distance to the
nearest key), so far queries do not underflow to 0/0.

Threads. Problems of at most :data:`SERIAL_PAIRS` query-key pairs (the book's 50 × 50, a
leave-one-out search on a few hundred points) run on one thread (:func:`threads_for`); larger
ones on torch's current count (in ``attnrun regress`` the run's ``train.threads``, 0 = every core).
Measured with ``benchmarks/bench_regress.py --threads`` (1 vs 2 threads interleaved in one
process, medians of 7, on the 2-core development machine, 2026-12-01):

=====================================================  =========================  ==================
case                                                   load ~1 (this job alone)   load 4-6 (shared)
=====================================================  =========================  ==================
nadaraya_watson 50 × 50, gaussian h = 1                0.83 vs 0.94 ms (equal)    1.6 vs 11.7 ms
loo_bandwidth n = 50                                   18.7 vs 17.6 ms (equal)    67 vs 515 ms
loo_bandwidth n = 2,000                                145 vs 129 ms              326 vs 8,047 ms
nadaraya_watson 1e3 × 1e5, gaussian h = 0.05           85 vs 67 ms                280 vs 1,304 ms
nadaraya_watson 1e4 × 1e5, gaussian h = 1 (expansion)  77 vs 65 ms                453 vs 1,675 ms
=====================================================  =========================  ==================

(1 thread vs 2.) On tiny problems a second thread saves nothing on idle cores and costs up to 7×
when other jobs hold them — float64 ``exp`` splits work across threads from 2,048 elements, and a
descheduled partner thread stalls each such op for a scheduler tick: one thread is never worse
there, so it is the choice whatever the machine's state. On large problems two threads are
11-25% faster on idle cores and 4-25× slower on busy ones: that depends on the machine, so it is
the user's setting (``train.threads=1`` on a shared machine), not a choice made here.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Sequence

import torch
from torch import Tensor

from attnrun.device import cpu_threads
from attnrun.errors import ConfigError, DataError
from attnrun.regression.kernels import GAUSSIAN_CUT, Kernel, get_kernel

__all__ = [
    "SERIAL_PAIRS",
    "attention_weights",
    "check_bandwidth",
    "nadaraya_watson",
    "prepare_1d",
    "threads_for",
]

_METHODS = ("auto", "dense", "windowed", "expansion")
_FGT_RHO = 0.25  # cell half-width in units of h
_FGT_U0 = 2.0  # queries farther than 2h from every key take the exact windowed path
_FGT_TOL = 1e-13  # bound on each weight's truncation error, relative to the row's largest
_CRAMER = 1.086435  # Cramer: |He_m(x)| e^{-x^2/4} <= kappa sqrt(m!)
_DENSE_LIMIT = 50_000_000  # attention_weights refuses larger matrices
_TILE = 1 << 18  # entries per windowed tile (2 MB in float64)
#: Problems with at most this many query-key pairs run on one thread (module docstring).
SERIAL_PAIRS = 1 << 16


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


def threads_for(pairs: int) -> int:
    """Threads for a problem of ``pairs`` query-key pairs: 1 up to :data:`SERIAL_PAIRS`, else
    torch's current count (the module docstring gives the measurements)."""
    return 1 if pairs <= SERIAL_PAIRS else torch.get_num_threads()


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
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """Exact windowed sums ``S[i] = sum_j w_ij [vals_j, 1]`` of shape ``(n_query, 2)``, float64.

    ``qs`` (n_query,) and ``xs`` (n_train,) sorted ascending, float64; ``vals`` (n_train,).
    Weights are computed in ``dtype`` tile by tile: consecutive queries whose windows overlap by
    at least half (up to ``max(block, _TILE / window)`` of them) against as many keys as keep a
    tile near ``_TILE`` entries (2 MB in float64: cache-sized, so the few in-place passes per tile
    stay cheap, and Python iterations stay few). With ``exclude_self`` the queries are the keys
    themselves and the diagonal (self) weight is left out (leave-one-out); with ``self_index``
    (n_query,) query ``i`` is key ``self_index[i]`` and that weight is left out.
    """
    lo, hi = _windows(qs, xs, kern, h, u0)
    n_q = qs.numel()
    # Query blocks: consecutive sorted queries whose windows start within half a window of the
    # first one's, so a block's key range is at most ~1.5 windows (little wasted work), capped
    # so that narrow windows still make few, large tiles.
    window = max(1, int((hi - lo).median()))
    lo_list = lo.tolist()
    max_rows = max(block, _TILE // window)
    starts, s = [], 0
    while s < n_q:
        starts.append(s)
        s = max(s + 1, min(s + max_rows, bisect.bisect_left(lo_list, lo_list[s] + window // 2)))
    starts.append(n_q)
    gaussian = kern.name == "gaussian" and kern.log_fn is not None
    y2 = torch.stack([vals, torch.ones_like(vals)], dim=1).to(dtype)  # (n_train, 2)
    out = torch.zeros(n_q, 2, dtype=torch.float64)
    u0sq = (u0 * u0).to(dtype)
    u0d = u0.to(dtype)
    inv_h = 1.0 / h
    for s, e in zip(starts[:-1], starts[1:]):
        key_chunk = max(256, _TILE // (e - s))
        a, b = int(lo[s:e].min()), int(hi[s:e].max())
        # Offsets relative to the block's first query keep float32 differences accurate.
        centre = qs[s]
        qb = ((qs[s:e] - centre) * inv_h).to(dtype)
        for c0 in range(a, b, key_chunk):
            c1 = min(c0 + key_chunk, b)
            xb = ((xs[c0:c1] - centre) * inv_h).to(dtype)
            u = qb[:, None] - xb[None, :]  # (B, m)
            if gaussian:  # exp(-(u^2 - u0^2)/2) in place: one allocation per tile
                w = u.mul_(u).sub_(u0sq[s:e, None]).mul_(-0.5).exp_()
            else:
                w = _kernel_block(kern, u, u0d[s:e])
            if exclude_self:
                w.diagonal(offset=s - c0).zero_()  # entries (r, s + r - c0): the query's own key
            elif self_index is not None:
                cols = self_index[s:e] - c0
                inside = (cols >= 0) & (cols < c1 - c0)
                w[inside.nonzero()[:, 0], cols[inside]] = 0
            out[s:e] += (w @ y2[c0:c1]).double()
    return out


def _fgt_order(rho: float, u0_max: float, tol: float) -> int:
    """Smallest M with kappa e^{u0_max^2/2} (2 rho)^M / sqrt(M!) <= tol (module docstring)."""
    r, m = 2 * rho, 1
    log_tol = math.log(tol) - math.log(_CRAMER) - 0.5 * u0_max**2
    while m * math.log(r) - 0.5 * math.lgamma(m + 1) > log_tol:
        m += 1
    return m


_FGT_ORDER = _fgt_order(_FGT_RHO, _FGT_U0, _FGT_TOL)
#: Key cells reached on each side: excluded keys sit >= 2 rho R scaled units away, past the cut.
_FGT_REACH = math.ceil(math.sqrt(_FGT_U0**2 + 2 * math.log(1 / GAUSSIAN_CUT)) / (2 * _FGT_RHO))


@functools.cache
def _fgt_table(rho: float, order: int, reach: int) -> Tensor:
    """``G`` of shape ``(2R+1) * M, M``: row ``(o, c)``, column ``a`` holds ``g^(a+c)(-2 rho o)``
    for key-cell offset ``o = k - c_q`` in ``[-R, R]`` (zero where ``a + c >= M``).

    ``g^(m)(D) = (-1)^m He_m(D) e^{-D^2/2}`` with the probabilists' Hermite recurrence
    ``He_{m+1} = D He_m - m He_{m-1}``. It depends on neither ``h`` nor the data: computed once.
    """
    offsets = torch.arange(-reach, reach + 1, dtype=torch.float64)
    d = -2 * rho * offsets  # (T,) scaled offset query cell - key cell
    he = [torch.ones_like(d), d.clone()]
    for m in range(1, order - 1):
        he.append(d * he[m] - m * he[m - 1])
    sign = torch.tensor([(-1.0) ** m for m in range(order)], dtype=torch.float64)
    deriv = torch.stack(he[:order], dim=1) * sign * torch.exp(-0.5 * d * d)[:, None]  # (T, M)
    a = torch.arange(order)
    a_plus_c = a[:, None] + a[None, :]  # (a, c) -> a + c
    table = torch.where(a_plus_c < order, deriv[:, a_plus_c.clamp(max=order - 1)], 0.0)  # (T, a, c)
    return table.permute(0, 2, 1).reshape(-1, order).contiguous()  # ((T, c), a)


def _scaled_powers(v: Tensor, order: int) -> Tensor:
    """``v^n / n!`` for ``n < order``: shape ``(len(v), order)`` (a loop over the few columns
    is faster than ``cumprod`` over a short last dimension)."""
    out = torch.empty(v.numel(), order, dtype=v.dtype)
    out[:, 0] = 1
    for n in range(1, order):
        torch.mul(out[:, n - 1], v, out=out[:, n]).mul_(1.0 / n)
    return out


def _expansion_sums(
    qs: Tensor, xs: Tensor, vals: Tensor, h: float, u0: Tensor, *, cell_chunk: int = 2048
) -> tuple[Tensor, Tensor]:
    """Gaussian sums by the grid expansion (module docstring), stabilised by ``exp(u0^2/2)``.

    Returns ``(sums (n_query, 2) float64, ok (n_query,) bool)``; rows where ``ok`` is False
    (queries farther than ``2h`` from every key) were not computed and need the exact path.

    Steps:
        1. Cell coordinates ``z = (x - x_0) / (2 rho h)``, cell ``floor(z)``, offset from the
           cell's centre ``b = 2 rho (z - floor(z) - 1/2)``, ``|b| <= rho``; same for queries.
        2. Key moments ``mu[k, c] = sum_{j in k} [y_j, 1] (-b_j)^c / c!`` (K, M, 2).
        3. Per occupied query cell, the ``2R+1`` neighbouring key cells' moments times the
           table ``G`` give the local coefficients ``L[c_q, a]`` (one matmul per chunk).
        4. Per query: ``sum_a L[c_q, a] s^a / a!``.
    """
    M, R = _FGT_ORDER, _FGT_REACH
    width = 2 * _FGT_RHO * h
    origin = xs[0]
    # 1-2. key cells (consecutive: xs is sorted) and their moments.
    zk = (xs - origin) / width
    kcell = torch.floor(zk)
    kc, bid = torch.unique_consecutive(kcell.long(), return_inverse=True)  # (K,), (n_train,)
    b = 2 * _FGT_RHO * (zk - kcell - 0.5)
    pk = _scaled_powers(-b, M)  # (n_train, M)
    mom = torch.zeros(kc.numel(), 2, M, dtype=torch.float64)
    mom[:, 0].index_add_(0, bid, pk * vals[:, None])
    mom[:, 1].index_add_(0, bid, pk)
    # 3. occupied query cells (consecutive: qs is sorted) and their neighbours' moments.
    ok = u0 <= _FGT_U0
    rows = ok.nonzero()[:, 0]
    out = torch.zeros(qs.numel(), 2, dtype=torch.float64)
    if rows.numel() == 0:
        return out, ok
    zq = (qs[rows] - origin) / width
    qcell = torch.floor(zq)
    qc, qinv = torch.unique_consecutive(qcell.long(), return_inverse=True)  # (C,), (n_ok,)
    table = _fgt_table(_FGT_RHO, M, R)  # ((2R+1) M, M)
    local = torch.empty(qc.numel(), 2, M, dtype=torch.float64)
    reach = torch.arange(-R, R + 1)
    for s in range(0, qc.numel(), cell_chunk):
        target = qc[s : s + cell_chunk, None] + reach  # (C, 2R+1) key cell ids
        pos = torch.searchsorted(kc, target).clamp(max=kc.numel() - 1)
        hit = (kc[pos] == target).to(torch.float64)
        near = mom[pos] * hit[:, :, None, None]  # (C, 2R+1, 2, M)
        x = near.permute(0, 2, 1, 3).reshape(-1, (2 * R + 1) * M)  # (C*2, (2R+1) M)
        local[s : s + cell_chunk] = (x @ table).reshape(-1, 2, M)
    # 4. evaluate each query's local polynomial; stabilise by the nearest key's weight.
    pq = _scaled_powers(2 * _FGT_RHO * (zq - qcell - 0.5), M)  # (n_ok, M)
    sums = torch.bmm(local[qinv], pq[:, :, None])[:, :, 0]  # (n_ok, 2)
    out[rows] = sums * torch.exp(0.5 * u0[rows] ** 2)[:, None]
    return out, ok


def _choose(qs: Tensor, xs: Tensor, kern: Kernel, h: float, u0: Tensor) -> str:
    """``"expansion"`` where cheaper than ``"windowed"`` (gaussian only), else ``"windowed"``.

    Costs in multiply-adds: the exact path pays ~8 per (query, key in window) pair (an
    exponential and the products); the expansion ``M`` per key and query plus ``(2R+1) M^2``
    per occupied query cell, and a fixed ~30 tensor operations.
    """
    if kern.name != "gaussian" or kern.log_fn is None:
        return "windowed"
    lo, hi = _windows(qs, xs, kern, h, u0)
    exact_cost = 8.0 * float((hi - lo).sum())
    M, T = _FGT_ORDER, 2 * _FGT_REACH + 1
    n_cells = min(qs.numel(), (qs[-1] - qs[0]).item() / (2 * _FGT_RHO * h) + 1)
    grid_cost = 4.0 * M * (xs.numel() + qs.numel()) + 2.0 * T * M * M * n_cells + 30_000
    return "expansion" if grid_cost < exact_cost else "windowed"


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
    out, ok = _expansion_sums(xs, xs, ys, h, u0)
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
        out, ok = _expansion_sums(qs, xs, ys, h, u0)
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
        float64; NaN where every weight is zero. With ``return_weights``:
        ``(predictions, weights)``. Runs on :func:`threads_for` threads: one for tiny problems,
        else torch's current count (the module docstring gives the measurements).

    Raises:
        DataError: empty inputs, NaN/inf values, or ``x_train``/``y_train`` of different lengths.
        ConfigError: a bandwidth that is not a finite number > 0, an unknown kernel or method.
    """
    q, x, y, kern, h, dtype = _prepare(x_query, x_train, y_train, kernel, bandwidth)
    if method not in _METHODS:
        raise ConfigError(f"unknown method {method!r}; valid: {', '.join(_METHODS)}")
    with cpu_threads(threads_for(q.numel() * x.numel())):
        if method == "dense" or return_weights:
            weights = attention_weights(q, x, kern, h).double()
            pred = (weights @ y.double()).to(dtype)
            return (pred, weights.to(dtype)) if return_weights else pred
        return _fast(q, x, y, kern, h, method, block).to(dtype)


def _fast(q: Tensor, x: Tensor, y: Tensor, kern: Kernel, h: float, method: str, block: int):
    """The fast paths: sort, sum in float64, divide, unsort; ``(n_query,)`` float64."""
    qd, xd, yd = q.double(), x.double(), y.double()
    q_order = torch.argsort(qd)
    x_order = torch.argsort(xd)
    sums = _sums(qd[q_order], xd[x_order], yd[x_order], kern, h, method, block=block)
    pred_sorted = sums[:, 0] / sums[:, 1]  # 0/0 -> NaN where no key carries weight
    pred = torch.empty_like(pred_sorted)
    pred[q_order] = pred_sorted
    return pred
