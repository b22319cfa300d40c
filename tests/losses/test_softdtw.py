"""Soft-DTW checked against a plain-loop float64 reference, gradcheck, and its limiting cases."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from sectl.losses import softdtw_kernels as K
from sectl.losses.softdtw import SoftDTW, align_pair, hard_alignment_path, pairwise_cost, soft_dtw_from_cost, soft_dtw_value
from sectl.losses.softdtw_kernels import in_band
from tests.conftest import REPO

BACKENDS = ["numba", "torch"]


def reference_soft_dtw(cost: np.ndarray, gamma: float, band: float = -1) -> float:
    """Textbook recursion, one cell at a time (Cuturi & Blondel 2017, Algorithm 1)."""
    n, m = cost.shape
    R = np.full((n + 1, m + 1), np.inf)
    R[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            if not in_band(i - 1, j - 1, n, m, band):
                continue
            prev = np.array([R[i - 1, j - 1], R[i - 1, j], R[i, j - 1]])
            if np.isinf(prev).all():
                continue
            mn = prev.min()
            R[i, j] = cost[i - 1, j - 1] + mn - gamma * math.log(np.exp(-(prev - mn) / gamma).sum())
    return R[n, m]


def reference_hard_dtw(cost: np.ndarray) -> float:
    n, m = cost.shape
    R = np.full((n + 1, m + 1), np.inf)
    R[0, 0] = 0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            R[i, j] = cost[i - 1, j - 1] + min(R[i - 1, j - 1], R[i - 1, j], R[i, j - 1])
    return R[n, m]


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    return torch.randn(3, 7, 4, generator=g, dtype=torch.float64), torch.randn(3, 5, 4, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("gamma", [0.01, 0.1, 1.0, 10.0])
def test_value_matches_reference(pair, backend, gamma):
    x, y = pair
    values = SoftDTW(gamma=gamma, backend=backend)(x, y)
    cost = pairwise_cost(x, y).numpy()
    for b in range(3):
        assert values[b].item() == pytest.approx(reference_soft_dtw(cost[b], gamma), abs=1e-10, rel=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_banded_unequal_lengths_match_reference_and_stay_finite(backend):
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(2, 12, 3, generator=g, dtype=torch.float64), torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    values = SoftDTW(gamma=0.5, bandwidth=1, backend=backend)(x, y)
    assert torch.isfinite(values).all()
    cost = pairwise_cost(x, y).numpy()
    assert values[0].item() == pytest.approx(reference_soft_dtw(cost[0], 0.5, band=1), abs=1e-10)
    # The band really restricts: the banded value exceeds the unrestricted one.
    assert values[0].item() > SoftDTW(gamma=0.5, backend=backend)(x, y)[0].item()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("band", [None, 2])
def test_gradcheck(backend, band):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    lens = torch.tensor([6, 4]), torch.tensor([4, 3])
    loss = SoftDTW(gamma=0.3, bandwidth=band, backend=backend)
    assert torch.autograd.gradcheck(lambda a, b: loss(a, b, *lens), (x, y))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("distance", ["cosine", "sqeuclidean"])
def test_divergence_gradcheck(backend, distance):
    """Squared Euclidean on unequal lengths is the SSL-softDTW loss's own setting."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 7, 3, generator=g, dtype=torch.float64, requires_grad=True)
    loss = SoftDTW(gamma=0.1 if distance == "sqeuclidean" else 0.5, divergence=True, distance=distance, backend=backend)
    assert torch.autograd.gradcheck(lambda a, b: loss(a, b), (x, y))


@pytest.mark.parametrize("backend", BACKENDS)
def test_long_float32_sequences_keep_float64_accuracy(backend):
    """Both kernels accumulate in float64: a float32 400 x 330 problem's gradient matches the float64
    one to float32 rounding (a float32 accumulator was off by 4.5e-3 relative)."""
    g = torch.Generator().manual_seed(9)
    x = torch.nn.functional.normalize(torch.randn(1, 400, 64, generator=g), dim=-1)
    y = torch.nn.functional.normalize(torch.randn(1, 330, 64, generator=g), dim=-1)
    grads = {}
    for dtype in (torch.float32, torch.float64):
        xx = x.detach().to(dtype).clone().requires_grad_()
        SoftDTW(gamma=0.1, divergence=True, backend=backend)(xx, y.to(dtype)).sum().backward()
        grads[dtype] = xx.grad.double()
    error = (grads[torch.float32] - grads[torch.float64]).norm() / grads[torch.float64].norm()
    assert grads[torch.float32].isfinite().all() and error < 1e-5, f"relative gradient error {error:.2e}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_small_gamma_gives_hard_dtw(pair, backend):
    x, y = pair
    cost = pairwise_cost(x, y)
    values = soft_dtw_from_cost(cost, gamma=1e-5, backend=backend)
    for b in range(3):
        assert values[b].item() == pytest.approx(reference_hard_dtw(cost[b].numpy()), abs=1e-3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_divergence_is_zero_on_identity_and_positive_otherwise(backend):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(4, 9, 5, generator=g, dtype=torch.float64)
    y = torch.randn(4, 13, 5, generator=g, dtype=torch.float64)
    div = SoftDTW(gamma=0.1, divergence=True, backend=backend)
    assert torch.allclose(div(x, x), torch.zeros(4, dtype=torch.float64), atol=1e-10)
    assert (div(x, y) > 0).all()  # unequal lengths too
    plain = SoftDTW(gamma=1.0, backend=backend)(x, x)
    assert (plain < 0).any()  # plain soft-DTW is not zero at x == y: the reason for the divergence


@pytest.mark.parametrize("backend", BACKENDS)
def test_lengths_equal_unpadded_runs(backend):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 10, 4, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(3, 8, 4, generator=g, dtype=torch.float64, requires_grad=True)
    nx, ny = torch.tensor([10, 6, 3]), torch.tensor([8, 8, 2])
    loss = SoftDTW(gamma=0.2, divergence=True, bandwidth=3, backend=backend)
    padded = loss(x, y, nx, ny)
    padded.sum().backward()
    for b in range(3):
        xb = x[b : b + 1, : nx[b]].detach().requires_grad_()
        yb = y[b : b + 1, : ny[b]].detach().requires_grad_()
        single = loss(xb, yb)
        single.backward()
        assert padded[b].item() == pytest.approx(single.item(), abs=1e-10)
        assert torch.allclose(x.grad[b, : nx[b]], xb.grad[0], atol=1e-10)
        assert torch.all(x.grad[b, nx[b] :] == 0)  # padding gets no gradient


def test_backends_agree_in_float32():
    g = torch.Generator().manual_seed(6)
    x, y = torch.randn(2, 40, 16, generator=g), torch.randn(2, 35, 16, generator=g)
    a = SoftDTW(gamma=0.1, backend="numba")(x, y)
    b = SoftDTW(gamma=0.1, backend="torch")(x, y)
    assert a.dtype == torch.float32
    assert torch.allclose(a, b, rtol=1e-4)


def test_matmul_cost_equals_broadcast_cost():
    g = torch.Generator().manual_seed(7)
    x, y = torch.randn(2, 6, 5, generator=g, dtype=torch.float64), torch.randn(2, 4, 5, generator=g, dtype=torch.float64)
    broadcast = ((x[:, :, None] - y[:, None]) ** 2).sum(-1)
    assert torch.allclose(pairwise_cost(x, y), broadcast, atol=1e-12)
    cosine = 1 - torch.nn.functional.cosine_similarity(x[:, :, None], y[:, None], dim=-1)
    assert torch.allclose(pairwise_cost(x, y, "cosine"), cosine, atol=1e-12)


def test_normalize_cost_divides_by_dimension(pair):
    x, y = pair
    plain = SoftDTW(gamma=0.1)(x / 2, y / 2)  # |x/2 - y/2|^2 = |x - y|^2 / 4 = cost / D for D = 4
    normalized = SoftDTW(gamma=0.1, normalize_cost=True)(x, y)
    assert torch.allclose(plain, normalized, atol=1e-10)


def test_rejects_bad_shapes_and_arguments():
    with pytest.raises(ValueError, match="expected x"):
        SoftDTW()(torch.randn(2, 5, 3), torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="gamma"):
        SoftDTW(gamma=0)
    with pytest.raises(ValueError, match="bandwidth"):
        SoftDTW(bandwidth=0)
    with pytest.raises(ValueError, match="lengths"):
        SoftDTW()(torch.randn(1, 5, 3), torch.randn(1, 5, 3), torch.tensor([6]))


def test_hard_path_is_monotone_and_recovers_a_stretch():
    x = torch.linspace(0, 1, 40)[:, None]
    y = torch.linspace(0, 1, 60)[:, None]
    path = hard_alignment_path(pairwise_cost(x[None], y[None])[0])
    assert path[0] == (0, 0) and path[-1] == (39, 59)
    steps = np.diff(np.array(path), axis=0)
    assert ((steps >= 0) & (steps <= 1)).all() and (steps.sum(1) >= 1).all()
    for i, j in path:
        assert abs(j / 59 - i / 39) < 0.05


SHAPES = [(1, 1), (1, 6), (6, 1), (7, 5), (5, 7), (12, 5), (30, 31), (20, 57)]


@pytest.mark.parametrize("n, m", SHAPES)
@pytest.mark.parametrize("band", [-1, 1, 2, 3.5, 40])
def test_band_columns_are_exactly_the_cells_in_band(n, m, band):
    lo, hi = K.band_columns(n, m, band)
    for i in range(n):
        assert [j for j in range(m) if in_band(i, j, n, m, band)] == list(range(lo[i], hi[i] + 1)), i


@pytest.mark.parametrize("n, m", SHAPES)
@pytest.mark.parametrize("band", [None, 1, 2, 3.5])
def test_band_storage_equals_the_full_matrix_restricted_to_the_band(n, m, band):
    """Inference's band-storage pass against the plain loop and the full-matrix kernels: value,
    divergence and hard path (no gradient exists on this path)."""
    g = torch.Generator().manual_seed(n * 100 + m)
    x, y = torch.randn(n, 3, generator=g, dtype=torch.float64), torch.randn(m, 3, generator=g, dtype=torch.float64)
    cost = pairwise_cost(x[None], y[None])[0] / 3
    value, divergence, path = align_pair(x, y, 0.3, band, normalize_cost=True)
    assert value == pytest.approx(reference_soft_dtw(cost.numpy(), 0.3, -1 if band is None else band), abs=1e-10, rel=1e-10)
    full = SoftDTW(gamma=0.3, divergence=True, bandwidth=band, normalize_cost=True, backend="numba")(x[None], y[None])
    assert divergence == pytest.approx(full.item(), abs=1e-10, rel=1e-10)
    assert path == hard_alignment_path(cost, band)
    assert soft_dtw_value(x, y, 0.3, band, normalize_cost=True) == value
    assert soft_dtw_value(x, y, 0.3, band, normalize_cost=True, divergence=True) == divergence


def test_band_storage_grows_with_the_band_not_the_matrix():
    """One byte per band cell: doubling the length doubles the storage, doubling the band doubles it too,
    and no band costs the whole matrix."""
    g = np.random.default_rng(0)

    def storage(n, band):
        x, y = torch.from_numpy(g.standard_normal((n, 4))), torch.from_numpy(g.standard_normal((n - n // 10, 4)))
        cost = lambda r0, r1, c0, c1: pairwise_cost(x[None, r0:r1], y[None, c0:c1])[0].numpy()  # noqa: E731
        value, path, back = K.banded_alignment(cost, n, n - n // 10, 0.1, band)
        assert np.isfinite(value) and tuple(path[-1]) == (n - 1, n - n // 10 - 1)
        assert back.nbytes == K.band_storage(n, n - n // 10, band)
        return back.nbytes

    assert storage(2000, 5) <= 2000 * (2 * 5 + 2)
    assert storage(4000, 5) / storage(2000, 5) == pytest.approx(2, rel=0.01)
    assert storage(2000, 10) / storage(2000, 5) == pytest.approx(2, rel=0.1)
    assert storage(2000, -1) == 2000 * 1800


CUDA_SIMULATOR_CHECK = """
import torch
from sectl.losses import softdtw_cuda, softdtw_kernels as K

assert softdtw_cuda.SIMULATED
torch.manual_seed(0)
cost = torch.rand(3, 14, 11, dtype=torch.float64) * 3
nx, ny = torch.tensor([14, 9, 5]), torch.tensor([11, 11, 3])
for band in (-1.0, 2.0):
    R, W = softdtw_cuda.forward_cuda(cost, nx, ny, 0.1, band)
    R_cpu, W_cpu = K.forward_numba(cost, nx, ny, 0.1, band)
    assert torch.equal(R.isinf(), R_cpu.isinf()), band
    assert (R - R_cpu).nan_to_num(posinf=0.0).abs().max() < 1e-12, band
    E, E_cpu = softdtw_cuda.backward_cuda(W, nx, ny), K.backward_numba(W_cpu, nx, ny)
    assert (E - E_cpu).abs().max() < 1e-12, band
    assert (E_cpu.sum() > 0) and E.dtype == torch.float64
print("ok")
"""


def test_the_cuda_kernel_equals_the_cpu_kernel_in_numbas_cuda_simulator():
    """The exact CUDA kernels (wavefront per block, float64 R and E) run by numba's simulator on the CPU,
    with unequal lengths and a band, against the compiled CPU kernel."""
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", CUDA_SIMULATOR_CHECK], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
