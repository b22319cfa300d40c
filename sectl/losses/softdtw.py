"""Soft-DTW loss and divergence with padded batches, bands, and an O(B*N*M) memory footprint; and,
for inference (no gradient), values and the hard path in the memory of the band (:func:`align_pair`).

The pairwise cost is built in matmul form (``|x|^2 + |y|^2 - 2 x.y``) so memory never grows with the
feature dimension; the dynamic programmes run in :mod:`sectl.losses.softdtw_kernels` under a custom
autograd function (no autograd through the DP loop): backward multiplies the expected alignment ``E``
into the cost's gradient, and autograd carries that through the matmul to ``x`` and ``y``.
"""

from __future__ import annotations

from typing import Literal, Sequence, Union

import torch
from torch import nn

from sectl.device import host_side, host_values
from sectl.losses import softdtw_kernels as K

Distance = Literal["sqeuclidean", "cosine"]


def pairwise_cost(x: torch.Tensor, y: torch.Tensor, distance: Distance = "sqeuclidean") -> torch.Tensor:
    """Cost matrix ``(B, N, M)`` between frames of ``x (B, N, D)`` and ``y (B, M, D)``."""
    if distance == "cosine":
        x = nn.functional.normalize(x, dim=-1)
        y = nn.functional.normalize(y, dim=-1)
        return 1.0 - torch.bmm(x, y.transpose(1, 2))
    if distance != "sqeuclidean":
        raise ValueError(f"unknown distance {distance!r}; use 'sqeuclidean' or 'cosine'")
    x2 = x.pow(2).sum(-1, keepdim=True)  # (B, N, 1)
    y2 = y.pow(2).sum(-1).unsqueeze(1)  # (B, 1, M)
    return (x2 + y2 - 2.0 * torch.bmm(x, y.transpose(1, 2))).clamp_min(0.0)


class _SoftDTWFunction(torch.autograd.Function):
    """Value ``R[n, m]`` of each sample from its cost matrix; gradient ``E`` (the expected alignment)."""

    @staticmethod
    def forward(ctx, cost, nx, ny, gamma: float, band: float, backend: str):  # type: ignore[override]
        ctx.backend = backend
        if backend == "numba":
            with host_side():  # the CPU kernel: its inputs are host data by construction
                R, weights = K.forward_numba(cost, nx, ny, gamma, band)
            ctx.save_for_backward(weights, nx, ny)
        elif backend == "cuda":
            from sectl.losses import softdtw_cuda

            R, weights = softdtw_cuda.forward_cuda(cost, nx, ny, gamma, band)
            ctx.save_for_backward(weights, nx, ny)
        else:
            R = K.forward_torch(cost, nx, ny, gamma, band)
            ctx.save_for_backward(cost, R, nx, ny)
        ctx.gamma = gamma
        ctx.device, ctx.dtype = cost.device, cost.dtype
        values = R[torch.arange(R.shape[0], device=R.device), nx.to(R.device), ny.to(R.device)]
        return values.to(device=cost.device, dtype=cost.dtype)

    @staticmethod
    def backward(ctx, grad_output):  # type: ignore[override]
        if ctx.backend == "numba":
            with host_side():
                E = K.backward_numba(*ctx.saved_tensors)
        elif ctx.backend == "cuda":
            from sectl.losses import softdtw_cuda

            E = softdtw_cuda.backward_cuda(*ctx.saved_tensors)
        else:
            E = K.backward_torch(*ctx.saved_tensors, ctx.gamma)
        E = E.to(device=ctx.device, dtype=ctx.dtype)
        return grad_output[:, None, None] * E, None, None, None, None, None


def auto_backend(device: torch.device) -> str:
    """The compiled kernel for the device: numba on the CPU, numba's CUDA kernel on a GPU; torch otherwise."""
    if device.type == "cpu":
        return "numba" if K.HAVE_NUMBA else "torch"
    if device.type == "cuda" and K.HAVE_NUMBA:
        from sectl.losses import softdtw_cuda

        if softdtw_cuda.available():
            return "cuda"
    return "torch"


Lengths = Union[Sequence[int], torch.Tensor, None]
"""Per-sample sequence lengths: Python ints (what a training step should pass: they are known on the
host, so nothing is read back from the device), a tensor, or ``None`` for the full sizes."""


def host_lengths(lengths: Lengths, full: int, batch: int, name: str) -> list[int]:
    """``lengths`` as Python ints, checked on the host (a device tensor is read back: pass a list)."""
    if lengths is None:
        return [full] * batch
    values = lengths.tolist() if isinstance(lengths, torch.Tensor) else [int(n) for n in lengths]
    if len(values) != batch or any(not 1 <= n <= full for n in values):
        raise ValueError(f"{name}: expected {batch} lengths in 1..{full}, got {values}")
    return values


def soft_dtw_from_cost(
    cost: torch.Tensor,
    nx: Lengths = None,
    ny: Lengths = None,
    gamma: float = 1.0,
    band: int | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Soft-DTW value ``(B,)`` of a cost matrix ``(B, N, M)``; lengths default to the full sizes."""
    B, N, M = cost.shape
    nx_list, ny_list = host_lengths(nx, N, B, "x lengths"), host_lengths(ny, M, B, "y lengths")
    if backend == "auto":
        backend = auto_backend(cost.device)
    if backend not in ("numba", "torch", "cuda"):
        raise ValueError(f"unknown backend {backend!r}")
    on = cost.device if backend in ("torch", "cuda") else torch.device("cpu")
    nx_t, ny_t = host_values(nx_list, on, torch.int64), host_values(ny_list, on, torch.int64)
    return _SoftDTWFunction.apply(cost, nx_t, ny_t, float(gamma), -1.0 if band is None else float(band), backend)


class SoftDTW(nn.Module):
    """Soft-DTW between two batches of feature sequences.

    Args:
        gamma: smoothing; -> 0 gives hard DTW, larger values average over more alignments.
        divergence: return ``sdtw(x,y) - (sdtw(x,x) + sdtw(y,y)) / 2`` (Blondel et al., 2021), which is
            >= 0 and 0 for ``x == y``; plain soft-DTW is neither.
        bandwidth: Sakoe-Chiba half-width in frames of the shorter sequence around the diagonal joining
            the two ends, so it stays finite for unequal lengths; ``None`` for no band.
        distance: ``"sqeuclidean"`` or ``"cosine"`` frame cost.
        normalize_cost: divide the cost by the feature dimension, which keeps gradients from
            vanishing (``exp(-C / gamma)``) for high-dimensional features.
        backend: ``"auto"`` (compiled numba kernel on CPU, numba's CUDA kernel on CUDA tensors,
            diagonal-vectorised torch otherwise), ``"numba"``, ``"cuda"`` or ``"torch"``.

    Shapes:
        ``forward(x: (B, N, D), y: (B, M, D), x_lengths=None, y_lengths=None) -> (B,)``.

    Example:
        >>> loss = SoftDTW(gamma=0.1, divergence=True)
        >>> x, y = torch.randn(2, 30, 8), torch.randn(2, 25, 8)
        >>> loss(x, y).shape
        torch.Size([2])
    """

    def __init__(
        self,
        gamma: float = 1.0,
        divergence: bool = False,
        bandwidth: int | None = None,
        distance: Distance = "sqeuclidean",
        normalize_cost: bool = False,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if gamma <= 0:
            raise ValueError("gamma must be > 0")
        if bandwidth is not None and bandwidth < 1:
            raise ValueError("bandwidth must be >= 1 (or None for no band)")
        if distance not in ("sqeuclidean", "cosine"):
            raise ValueError(f"unknown distance {distance!r}; use 'sqeuclidean' or 'cosine'")
        self.gamma, self.divergence, self.bandwidth = gamma, divergence, bandwidth
        self.distance, self.normalize_cost, self.backend = distance, normalize_cost, backend

    def _sdtw(self, a, b, na, nb) -> torch.Tensor:
        cost = pairwise_cost(a, b, self.distance)
        if self.normalize_cost:
            cost = cost / a.shape[-1]
        return soft_dtw_from_cost(cost, na, nb, self.gamma, self.bandwidth, self.backend)

    def forward(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        x_lengths: Lengths = None,
        y_lengths: Lengths = None,
    ) -> torch.Tensor:
        if x.dim() != 3 or y.dim() != 3 or x.shape[0] != y.shape[0] or x.shape[2] != y.shape[2]:
            raise ValueError(f"expected x (B, N, D) and y (B, M, D); got {tuple(x.shape)} and {tuple(y.shape)}")
        value = self._sdtw(x, y, x_lengths, y_lengths)
        if not self.divergence:
            return value
        return value - 0.5 * (self._sdtw(x, x, x_lengths, x_lengths) + self._sdtw(y, y, y_lengths, y_lengths))


def hard_alignment_path(cost: torch.Tensor, band: int | None = None) -> list[tuple[int, int]]:
    """Hard DTW path for one cost matrix ``(N, M)``: monotone, from (0, 0) to (N-1, M-1).

    Runs the exact min-plus recursion and backtracks (the ``gamma -> 0`` soft alignment is
    numerically fragile); ties prefer the diagonal step.
    """
    c = cost.detach().to(torch.float64).cpu().contiguous()
    R = K.hard_dtw(c, -1.0 if band is None else float(band))
    i, j = c.shape
    path = [(i - 1, j - 1)]
    while (i, j) != (1, 1):
        i, j = min(((i - 1, j - 1), (i - 1, j), (i, j - 1)), key=lambda p: R[p])
        path.append((i - 1, j - 1))
    return path[::-1]


def _pair_cost(x: torch.Tensor, y: torch.Tensor, normalize_cost: bool) -> K.CostBlock:
    """Blocks of one pair's squared Euclidean cost, in float64 on the host (the kernels' contract)."""
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"expected x (N, D) and y (M, D); got {tuple(x.shape)} and {tuple(y.shape)}")
    a, b = x.detach().cpu().double(), y.detach().cpu().double()
    scale = a.shape[1] if normalize_cost else 1

    def block(r0: int, r1: int, c0: int, c1: int):
        return (pairwise_cost(a[None, r0:r1], b[None, c0:c1])[0] / scale).numpy()

    return block


def soft_dtw_value(
    x: torch.Tensor, y: torch.Tensor, gamma: float, band: int | None = None, normalize_cost: bool = False, divergence: bool = False
) -> float:
    """:class:`SoftDTW`'s value for one pair ``x (N, D)``, ``y (M, D)`` without a gradient: two rows of
    ``R`` and a block of cost rows instead of its N x M matrices (squared Euclidean cost)."""
    width = -1.0 if band is None else float(band)
    value = K.banded_soft_dtw(_pair_cost(x, y, normalize_cost), len(x), len(y), gamma, width)
    if not divergence:
        return value
    selves = [K.banded_soft_dtw(_pair_cost(f, f, normalize_cost), len(f), len(f), gamma, width) for f in (x, y)]
    return value - 0.5 * sum(selves)


def align_pair(
    x: torch.Tensor, y: torch.Tensor, gamma: float, band: int | None = None, normalize_cost: bool = False
) -> tuple[float, float, list[tuple[int, int]]]:
    """Soft-DTW value, divergence and hard path of one pair ``x (N, D)``, ``y (M, D)``, for inference.

    The same numbers as :class:`SoftDTW` (``divergence=False`` and ``True``) and
    :func:`hard_alignment_path` on the squared Euclidean cost, but without a gradient nothing of
    size N x M is needed: each value runs on two rows of ``R`` and the path keeps one byte per band
    cell (:func:`softdtw_kernels.banded_alignment`), so memory follows the band.
    """
    width = -1.0 if band is None else float(band)
    value, path, _ = K.banded_alignment(_pair_cost(x, y, normalize_cost), len(x), len(y), gamma, width)
    divergence = value - 0.5 * sum(
        K.banded_soft_dtw(_pair_cost(f, f, normalize_cost), len(f), len(f), gamma, width) for f in (x, y)
    )
    return value, divergence, [(int(i), int(j)) for i, j in path]
