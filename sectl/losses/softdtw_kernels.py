"""Soft-DTW dynamic programmes: value recursion R and expected-alignment recursion E.

Two interchangeable implementations of the same two recursions (Cuturi & Blondel, 2017):

* ``numba``: compiled loops, one sample per thread. The CPU path: it beats any sequence of tensor
  operations because each cell costs a few flops while each tensor operation costs microseconds.
  It accumulates in float64 whatever the input dtype (float32 drifts on long sequences), and the
  forward pass keeps each cell's three softmin weights so the backward pass needs no ``exp``
  (3x the memory of ``R``, still O(B*N*M), for about half the time).
* ``torch``: the cells of one anti-diagonal (all ``i + j == d``) are independent, so each diagonal is
  a handful of batched tensor operations. The GPU path, and the CPU fallback without numba. It too
  accumulates ``R`` and ``E`` in float64 (in float32 the gradient of a 400 x 330 problem was off by
  4.5e-3 relative); callers get their own dtype back.

Conventions shared by both: ``cost`` is ``(B, N, M)``; ``nx``/``ny`` are int64 lengths ``(B,)``; ``band``
is the Sakoe-Chiba half-width (``-1`` for none) measured in frames of the shorter sequence around the
straight line from ``(0, 0)`` to ``(n-1, m-1)``, so any band >= 1 leaves the end reachable whatever the
lengths. ``R`` is ``(B, N+1, M+1)`` with ``R[:, 0, 0] = 0`` and ``+inf`` for unreachable cells;
``E`` is ``(B, N, M)``, zero outside each sample's lengths.
"""

from __future__ import annotations

import contextlib
import math
from typing import Callable, Iterator

import numpy as np
import torch

try:
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - numba is a dependency, this is the documented fallback
    HAVE_NUMBA = False


def in_band(i: int, j: int, n: int, m: int, band: float) -> bool:
    """Whether 0-based cell (i, j) lies within ``band`` of the (0,0)-(n-1,m-1) diagonal."""
    if band < 0:
        return True
    return abs(i * (m - 1) - j * (n - 1)) <= band * (max(n, m) - 1)


# --------------------------------------------------------------------------------------------- numba
# Only the flags that keep inf semantics (the DP relies on +inf for unreachable cells).
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

if HAVE_NUMBA:
    in_band_jit = numba.njit(cache=True, inline="always")(in_band)

    @numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
    def _forward_numba(cost, nx, ny, gamma, band, R, W):  # pragma: no cover - compiled
        inf = np.inf
        inv_gamma = 1.0 / gamma
        for b in numba.prange(cost.shape[0]):
            n, m = nx[b], ny[b]
            R[b, :, :] = inf
            R[b, 0, 0] = 0.0
            W[b, :, :, :] = 0.0
            for i in range(1, n + 1):
                for j in range(1, m + 1):
                    if not in_band_jit(i - 1, j - 1, n, m, band):
                        continue
                    r0 = -R[b, i - 1, j - 1] * inv_gamma
                    r1 = -R[b, i - 1, j] * inv_gamma
                    r2 = -R[b, i, j - 1] * inv_gamma
                    rmax = max(r0, max(r1, r2))
                    if rmax == -inf:
                        continue
                    e0, e1, e2 = math.exp(r0 - rmax), math.exp(r1 - rmax), math.exp(r2 - rmax)
                    total = e0 + e1 + e2
                    R[b, i, j] = cost[b, i - 1, j - 1] - gamma * (math.log(total) + rmax)
                    # Softmin weights of the three predecessors: exactly the factors the backward
                    # recursion needs, so it runs without a single exp.
                    W[b, i, j, 0] = e0 / total
                    W[b, i, j, 1] = e1 / total
                    W[b, i, j, 2] = e2 / total

    @numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
    def _backward_numba(W, nx, ny, E):  # pragma: no cover - compiled
        for b in numba.prange(W.shape[0]):
            n, m = nx[b], ny[b]
            E[b, :, :] = 0.0
            E[b, n - 1, m - 1] = 1.0
            for i in range(n, 0, -1):
                for j in range(m, 0, -1):
                    if i == n and j == m:
                        continue
                    acc = 0.0
                    if i < n:
                        acc += E[b, i, j - 1] * W[b, i + 1, j, 1]  # (i+1, j) came from above
                    if j < m:
                        acc += E[b, i - 1, j] * W[b, i, j + 1, 2]  # (i, j+1) came from the left
                    if i < n and j < m:
                        acc += E[b, i, j] * W[b, i + 1, j + 1, 0]  # diagonal
                    E[b, i - 1, j - 1] = acc


@contextlib.contextmanager
def torch_threads_kept() -> Iterator[None]:
    """Run numba's parallel kernels on torch's thread count, and give torch its count back.

    numba's OpenMP layer shares the process's OpenMP runtime with torch, and its first parallel call
    reset torch's thread count (``train.threads=1`` became 2): every later step then reduced in
    another order, so a run and its resume (which starts before that first call) differed.
    """
    threads = torch.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def forward_numba(
    cost: torch.Tensor, nx: torch.Tensor, ny: torch.Tensor, gamma: float, band: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``R`` and the softmin weights ``W (B, N+1, M+1, 3)`` that :func:`backward_numba` consumes."""
    c = cost.detach().to(torch.float64).contiguous().numpy()
    B, N, M = c.shape
    R = np.empty((B, N + 1, M + 1))
    W = np.empty((B, N + 1, M + 1, 3))
    with torch_threads_kept():
        _forward_numba(c, nx.numpy(), ny.numpy(), float(gamma), float(band), R, W)
    return torch.from_numpy(R), torch.from_numpy(W)


def backward_numba(W: torch.Tensor, nx: torch.Tensor, ny: torch.Tensor) -> torch.Tensor:
    B, N1, M1, _ = W.shape
    E = np.empty((B, N1 - 1, M1 - 1))
    with torch_threads_kept():
        _backward_numba(W.numpy(), nx.numpy(), ny.numpy(), E)
    return torch.from_numpy(E)


if HAVE_NUMBA:

    @numba.njit(cache=True)
    def _hard_dtw_numba(cost, band, R):  # pragma: no cover - compiled
        n, m = cost.shape
        for i in range(1, n + 1):
            for j in range(1, m + 1):
                if in_band_jit(i - 1, j - 1, n, m, band):
                    R[i, j] = cost[i - 1, j - 1] + min(R[i - 1, j - 1], min(R[i - 1, j], R[i, j - 1]))


def hard_dtw(cost: torch.Tensor, band: float) -> np.ndarray:
    """Exact DTW accumulated cost ``(N+1, M+1)`` of one float64 cost matrix ``(N, M)``."""
    c = cost.numpy()
    R = np.full((c.shape[0] + 1, c.shape[1] + 1), np.inf)
    R[0, 0] = 0.0
    if HAVE_NUMBA:
        _hard_dtw_numba(c, band, R)
        return R
    for i in range(1, c.shape[0] + 1):  # pragma: no cover - fallback without numba
        for j in range(1, c.shape[1] + 1):
            if in_band(i - 1, j - 1, c.shape[0], c.shape[1], band):
                R[i, j] = c[i - 1, j - 1] + min(R[i - 1, j - 1], R[i - 1, j], R[i, j - 1])
    return R


# --------------------------------------------------------------------------------------------- torch
def _diagonal(d: int, N: int, M: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    i = torch.arange(max(0, d - M + 1), min(N - 1, d) + 1, device=device)
    return i, d - i


def _band_mask(i, j, nx, ny, band: float) -> torch.Tensor:
    """(B, k) mask of diagonal cells inside each sample's band and lengths."""
    n, m = nx[:, None], ny[:, None]
    inside = (i[None] < n) & (j[None] < m)
    if band >= 0:
        inside &= (i[None] * (m - 1) - j[None] * (n - 1)).abs() <= band * (torch.maximum(n, m) - 1)
    return inside


ACCUMULATE = torch.float64
"""dtype of ``R`` and ``E`` in the torch kernels (as in the numba ones)."""


def forward_torch(cost: torch.Tensor, nx: torch.Tensor, ny: torch.Tensor, gamma: float, band: float) -> torch.Tensor:
    B, N, M = cost.shape
    cost = cost.detach().to(ACCUMULATE)
    nx, ny = nx.to(cost.device), ny.to(cost.device)
    R = torch.full((B, N + 1, M + 1), math.inf, dtype=ACCUMULATE, device=cost.device)
    R[:, 0, 0] = 0.0
    for d in range(N + M - 1):
        i, j = _diagonal(d, N, M, cost.device)
        prev = torch.stack([R[:, i, j], R[:, i, j + 1], R[:, i + 1, j]])  # (3, B, k)
        softmin = -gamma * torch.logsumexp(-prev / gamma, dim=0)
        value = cost[:, i, j] + softmin
        R[:, i + 1, j + 1] = torch.where(_band_mask(i, j, nx, ny, band), value, math.inf)
    return R


def backward_torch(
    cost: torch.Tensor, R: torch.Tensor, nx: torch.Tensor, ny: torch.Tensor, gamma: float
) -> torch.Tensor:
    B, N, M = cost.shape
    device, dtype = cost.device, ACCUMULATE
    nx, ny = nx.to(device), ny.to(device)
    # Bordered copies: cell (i, j) lives at [i, j]; row N / column M is an unreachable border.
    Rb = torch.full((B, N + 1, M + 1), math.inf, dtype=dtype, device=device)
    Rb[:, :N, :M] = R[:, 1:, 1:]
    rows = torch.arange(N + 1, device=device)[None, :, None]
    cols = torch.arange(M + 1, device=device)[None, None, :]
    Rb = torch.where((rows < nx[:, None, None]) & (cols < ny[:, None, None]), Rb, math.inf)
    Cb = torch.zeros((B, N + 1, M + 1), dtype=dtype, device=device)
    Cb[:, :N, :M] = cost.detach().to(dtype)
    Eb = torch.zeros((B, N + 1, M + 1), dtype=dtype, device=device)
    for d in range(N + M - 2, -1, -1):
        i, j = _diagonal(d, N, M, device)
        r = Rb[:, i, j]
        acc = torch.zeros_like(r)
        for si, sj in ((i + 1, j), (i, j + 1), (i + 1, j + 1)):
            rs = Rb[:, si, sj]
            exponent = torch.where(rs.isfinite() & r.isfinite(), (rs - r - Cb[:, si, sj]) / gamma, -math.inf)
            acc = acc + Eb[:, si, sj] * exponent.exp()
        terminal = (i[None] == (nx - 1)[:, None]) & (j[None] == (ny - 1)[:, None])
        Eb[:, i, j] = torch.where(terminal & r.isfinite(), torch.ones_like(acc), acc)
    return Eb[:, :N, :M]


# ------------------------------------------------------------------------------------ band storage
# Inference (``sectl align``) needs no gradient, so no cell's weights must outlive its row: the soft
# value runs on two rows of R, and the hard path keeps one byte per band cell (which predecessor won).
# Row i's band is the contiguous columns ``lo[i]..hi[i]`` (the cells :func:`in_band` accepts), stored
# from offset 0, so storage grows with the band's cells, never with N x M. Costs arrive a block of
# rows at a time (a matmul per block, the way :func:`sectl.losses.softdtw.pairwise_cost` builds them).
DIAGONAL, UP, LEFT = 0, 1, 2
"""Codes of the hard path's steps into a cell: from (i-1, j-1), (i-1, j), (i, j-1)."""
BLOCK_CELLS = 1 << 18
"""Cost values computed at once (2 MiB in float64): a block holds as many rows as its band span allows."""


def band_columns(n: int, m: int, band: float) -> tuple[np.ndarray, np.ndarray]:
    """First and last column ``(lo, hi)`` of each of the ``n`` rows' band: exactly :func:`in_band`'s cells."""
    i = np.arange(n, dtype=np.int64)
    if band < 0 or n == 1 or m == 1:
        return np.zeros(n, np.int64), np.full(n, m - 1, np.int64)
    reach = band * (max(n, m) - 1)  # |i (m-1) - j (n-1)| <= reach
    lo = np.ceil((i * (m - 1) - reach) / (n - 1)).astype(np.int64)
    hi = np.floor((i * (m - 1) + reach) / (n - 1)).astype(np.int64)

    def inside(j):
        return np.abs(i * (m - 1) - j * (n - 1)) <= reach

    lo += ~inside(lo)  # the divisions may round one column off either way: settle on the exact test
    lo -= inside(lo - 1)
    hi -= ~inside(hi)
    hi += inside(hi + 1)
    return np.clip(lo, 0, m - 1), np.clip(hi, 0, m - 1)


def _band_rows(cost, c0, lo, hi, r0, gamma, soft, hard, back):  # pragma: no cover - compiled where numba exists
    """Rows ``r0..`` of the soft and hard DP from their costs (``cost[i - r0, j - c0]``). ``soft``/``hard``
    ``(2, W)`` carry the row before ``r0`` in ``[0]`` and leave the last row there; ``back (n, W)``
    (``(0, 0)`` for none) takes each cell's hard step, ties preferring the diagonal."""
    inf = np.inf
    keep = back.shape[0] > 0
    for r in range(cost.shape[0]):
        i = r0 + r
        soft[1, :], hard[1, :] = inf, inf
        above = i > 0
        pw = hi[i - 1] - lo[i - 1] if above else -1  # last stored offset of the previous row
        for k in range(hi[i] - lo[i] + 1):
            j = lo[i] + k
            c = cost[r, j - c0]
            if i == 0 and j == 0:
                soft[1, k], hard[1, k] = c, c
                continue
            kd, ku = j - 1 - lo[i - 1], j - lo[i - 1]  # (i-1, j-1), (i-1, j) in the previous row's storage
            sd, hd = (soft[0, kd], hard[0, kd]) if above and 0 <= kd <= pw else (inf, inf)
            su, hu = (soft[0, ku], hard[0, ku]) if above and 0 <= ku <= pw else (inf, inf)
            sl, hl = (soft[1, k - 1], hard[1, k - 1]) if k > 0 else (inf, inf)
            r0_, r1_, r2_ = -sd / gamma, -su / gamma, -sl / gamma
            rmax = max(r0_, max(r1_, r2_))
            if rmax == -inf:
                continue
            total = math.exp(r0_ - rmax) + math.exp(r1_ - rmax) + math.exp(r2_ - rmax)
            soft[1, k] = c - gamma * (math.log(total) + rmax)
            if hd <= hu and hd <= hl:
                hard[1, k], step = c + hd, DIAGONAL
            elif hu <= hl:
                hard[1, k], step = c + hu, UP
            else:
                hard[1, k], step = c + hl, LEFT
            if keep:
                back[i, k] = step
        soft[0, :], hard[0, :] = soft[1, :], hard[1, :]


def _backtrack(back, lo, m):  # pragma: no cover - compiled where numba exists
    """The hard path as ``(steps, 2)`` cells from ``(0, 0)`` to ``(n-1, m-1)``."""
    n = back.shape[0]
    path = np.empty((n + m - 1, 2), np.int64)
    i, j, t = n - 1, m - 1, 0
    while True:
        path[t, 0], path[t, 1] = i, j
        t += 1
        if i == 0 and j == 0:
            break
        step = back[i, j - lo[i]]
        if step != LEFT:
            i -= 1
        if step != UP:
            j -= 1
    return path[:t][::-1]


if HAVE_NUMBA:
    _band_rows = numba.njit(cache=True, fastmath=FASTMATH)(_band_rows)
    _backtrack = numba.njit(cache=True)(_backtrack)

CostBlock = Callable[[int, int, int, int], np.ndarray]
"""``cost(r0, r1, c0, c1)``: the float64 cost of rows ``r0:r1`` against columns ``c0:c1``."""


def _band_pass(cost: CostBlock, n: int, m: int, gamma: float, band: float, back: np.ndarray | None) -> float:
    lo, hi = band_columns(n, m, band)
    width = int((hi - lo).max()) + 1
    soft, hard = np.full((2, width), np.inf), np.full((2, width), np.inf)
    r0 = 0
    while r0 < n:
        rows = max(1, BLOCK_CELLS // (int(hi[min(n, r0 + BLOCK_CELLS // width) - 1] - lo[r0]) + 1))
        r1 = min(n, r0 + rows)
        c0, c1 = int(lo[r0]), int(hi[r1 - 1]) + 1
        block = np.ascontiguousarray(cost(r0, r1, c0, c1))
        _band_rows(block, c0, lo, hi, r0, float(gamma), soft, hard, np.zeros((0, 0), np.uint8) if back is None else back)
        r0 = r1
    return float(soft[0, m - 1 - lo[n - 1]])


def banded_soft_dtw(cost: CostBlock, n: int, m: int, gamma: float, band: float) -> float:
    """Soft-DTW value of an ``n`` x ``m`` cost given by blocks, in O(band) memory (two rows of R)."""
    return _band_pass(cost, n, m, gamma, band, None)


def banded_alignment(cost: CostBlock, n: int, m: int, gamma: float, band: float) -> tuple[float, np.ndarray, np.ndarray]:
    """Soft-DTW value, hard DTW path ``(steps, 2)`` and the path storage ``(n, W)`` (one byte per band cell)."""
    lo, hi = band_columns(n, m, band)
    back = np.zeros((n, int((hi - lo).max()) + 1), np.uint8)
    value = _band_pass(cost, n, m, gamma, band, back)
    return value, _backtrack(back, lo, m), back


def band_storage(n: int, m: int, band: float) -> int:
    """Bytes (= cells) of :func:`banded_alignment`'s path storage: ``n`` rows of the widest row's band."""
    lo, hi = band_columns(n, m, band)
    return n * (int((hi - lo).max()) + 1)
