"""Soft-DTW on CUDA: the numba kernels' recursions, one thread block per sample, one wavefront per step.

The cells of an anti-diagonal (all ``i + j == d``) depend only on the two diagonals before it, so a
block's threads compute one diagonal together and meet at a barrier before the next (as pysdtw does);
a thread takes every ``blockDim``-th cell, so any length runs. Like the CPU kernel it accumulates
``R`` and ``E`` in float64 and keeps each cell's three softmin weights ``W`` for a backward pass
without ``exp``; conventions (lengths, band, borders) are those of :mod:`sectl.losses.softdtw_kernels`.

Kernels run on torch's current stream, so they order with the surrounding tensor work without a host
synchronisation. With ``NUMBA_ENABLE_CUDASIM=1`` numba simulates CUDA on the CPU: the tests run these
exact kernels that way on CPU tensors (as numpy arrays) and compare them with the CPU kernel.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import torch

if not hasattr(np, "row_stack"):
    # numba-cuda (<= 0.30.4) registers an overload of np.row_stack at its first kernel launch, and numpy 2.5
    # removed that alias of vstack, so no kernel could launch (NVIDIA/numba-cuda#907, not to be fixed there).
    np.row_stack = np.vstack

from numba import config, cuda  # noqa: E402

from sectl.losses.softdtw_kernels import in_band

MAX_THREADS = 256
SIMULATED = bool(config.ENABLE_CUDASIM)

_in_band = cuda.jit(device=True)(in_band)


@cuda.jit
def _forward_kernel(cost, nx, ny, gamma, band, R, W):  # pragma: no cover - runs on the device
    b, t, threads = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
    n, m = nx[b], ny[b]
    rows, cols = R.shape[1], R.shape[2]
    for k in range(t, rows * cols, threads):
        i, j = k // cols, k % cols
        R[b, i, j] = math.inf
        W[b, i, j, 0] = 0.0
        W[b, i, j, 1] = 0.0
        W[b, i, j, 2] = 0.0
    cuda.syncthreads()
    if t == 0:
        R[b, 0, 0] = 0.0
    cuda.syncthreads()
    inv_gamma = 1.0 / gamma
    for d in range(n + m - 1):
        for i0 in range(max(0, d - m + 1) + t, min(n - 1, d) + 1, threads):
            j0 = d - i0
            i, j = i0 + 1, j0 + 1
            if _in_band(i0, j0, n, m, band):
                r0 = -R[b, i - 1, j - 1] * inv_gamma
                r1 = -R[b, i - 1, j] * inv_gamma
                r2 = -R[b, i, j - 1] * inv_gamma
                rmax = max(r0, max(r1, r2))
                if rmax != -math.inf:
                    e0, e1, e2 = math.exp(r0 - rmax), math.exp(r1 - rmax), math.exp(r2 - rmax)
                    total = e0 + e1 + e2
                    R[b, i, j] = cost[b, i0, j0] - gamma * (math.log(total) + rmax)
                    W[b, i, j, 0] = e0 / total
                    W[b, i, j, 1] = e1 / total
                    W[b, i, j, 2] = e2 / total
        cuda.syncthreads()


@cuda.jit
def _backward_kernel(W, nx, ny, E):  # pragma: no cover - runs on the device
    b, t, threads = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
    n, m = nx[b], ny[b]
    rows, cols = E.shape[1], E.shape[2]
    for k in range(t, rows * cols, threads):
        E[b, k // cols, k % cols] = 0.0
    cuda.syncthreads()
    if t == 0:
        E[b, n - 1, m - 1] = 1.0
    cuda.syncthreads()
    for d in range(n + m - 3, -1, -1):
        for i0 in range(max(0, d - m + 1) + t, min(n - 1, d) + 1, threads):
            i, j = i0 + 1, d - i0 + 1
            acc = 0.0
            if i < n:
                acc += E[b, i, j - 1] * W[b, i + 1, j, 1]
            if j < m:
                acc += E[b, i - 1, j] * W[b, i, j + 1, 2]
            if i < n and j < m:
                acc += E[b, i, j] * W[b, i + 1, j + 1, 0]
            E[b, i - 1, j - 1] = acc
        cuda.syncthreads()


def _array(tensor: torch.Tensor):
    """The kernel's view of a tensor: the device memory itself on CUDA, a numpy view in the simulator."""
    if tensor.device.type == "cuda":
        return cuda.as_cuda_array(tensor)
    if not SIMULATED:
        raise ValueError("the soft-DTW CUDA kernel needs CUDA tensors (or NUMBA_ENABLE_CUDASIM=1 for the simulator)")
    return tensor.numpy()


def _launch(kernel, blocks: int, threads: int, device: torch.device, *args) -> None:
    arrays = [_array(a) if isinstance(a, torch.Tensor) else a for a in args]
    if device.type == "cuda":
        stream = cuda.external_stream(torch.cuda.current_stream(device).cuda_stream)
        kernel[blocks, threads, stream](*arrays)
    else:
        kernel[blocks, threads](*arrays)


def _threads(n: int) -> int:
    return min(MAX_THREADS, 32 * max(1, -(-n // 32)))


def forward_cuda(cost: torch.Tensor, nx: torch.Tensor, ny: torch.Tensor, gamma: float, band: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``R (B, N+1, M+1)`` and the softmin weights ``W (B, N+1, M+1, 3)``, float64, on ``cost``'s device."""
    c = cost.detach().to(torch.float64).contiguous()
    B, N, M = c.shape
    R = torch.empty((B, N + 1, M + 1), dtype=torch.float64, device=c.device)
    W = torch.empty((B, N + 1, M + 1, 3), dtype=torch.float64, device=c.device)
    lengths = [x.to(c.device, torch.int64).contiguous() for x in (nx, ny)]
    _launch(_forward_kernel, B, _threads(min(N, M)), c.device, c, *lengths, float(gamma), float(band), R, W)
    return R, W


def backward_cuda(W: torch.Tensor, nx: torch.Tensor, ny: torch.Tensor) -> torch.Tensor:
    """The expected alignment ``E (B, N, M)`` from :func:`forward_cuda`'s weights."""
    B, rows, cols, _ = W.shape
    E = torch.empty((B, rows - 1, cols - 1), dtype=torch.float64, device=W.device)
    lengths = [x.to(W.device, torch.int64).contiguous() for x in (nx, ny)]
    _launch(_backward_kernel, B, _threads(min(rows, cols) - 1), W.device, W, *lengths, E)
    return E


@functools.cache
def available() -> bool:
    """Whether CUDA tensors can run the kernels here: a CUDA driver numba can use, and the kernels compile
    and run (checked once on a 2 x 2 problem; otherwise ``auto`` takes the torch backend, with a warning)."""
    try:
        if SIMULATED or not cuda.is_available():
            return False
        lengths = torch.full((1,), 2, dtype=torch.int64, device="cuda")
        _, weights = forward_cuda(torch.zeros(1, 2, 2, device="cuda"), lengths, lengths, 1.0, -1.0)
        backward_cuda(weights, lengths, lengths)
        return True
    except Exception as exc:  # noqa: BLE001 - a broken driver or numba install means: not available
        warnings.warn(f"soft-DTW: numba's CUDA kernels cannot run here ({type(exc).__name__}: {exc}); using the torch backend")
        return False

