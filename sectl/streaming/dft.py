"""Real DFTs of frames as two small matmuls each (one Cooley-Tukey split), for the frame steps and their graphs.

Why not one dense DFT matrix: for a 960-point frame it is 1.85 M multiply-adds per analysis and synthesis and
7.4 MB of matrices, which a one-hop call streams from memory every hop (profiled: 0.29 ms of DeepFilterNet3's
0.67 ms hop on onnxruntime). Split as ``n_fft = outer * inner``, the same transforms take 0.12 M multiply-adds
each and 0.5 MB in all. Why not ``torch.fft``: exporters and runtimes then need complex tensors or the ONNX
``DFT`` operator, which onnxruntime runs as a dense DFT for lengths that are not powers of two (86 ms per 1000
frames of 960 points; this analysis takes about 5).

Indices (``N = n_fft = outer * inner``; ``k`` a bin, ``n`` a sample):
analysis takes ``n = inner * n1 + n2``, ``k = k1 + outer * k2``: an ``outer``-point DFT over ``n1`` for each
``n2``, then for each ``k1`` a complex ``inner x k2`` matrix that holds the twiddles (``exp(-2 pi i n2 k / N)``).
Synthesis runs the same steps backwards: for each ``k1`` a complex matrix over ``k2`` (weights and twiddles),
then an ``outer``-point real transform over ``k1``. Window and scale are folded in or applied once per frame.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def split_length(n: int) -> tuple[int, int]:
    """``(outer, inner)`` with ``outer * inner == n`` and the fewest multiply-adds (``outer`` near ``sqrt(n)``;
    a prime ``n`` gets ``(1, n)``, a dense DFT)."""
    bins = n // 2 + 1

    def cost(outer: int) -> int:
        inner, columns = n // outer, -(-bins // outer)
        return 2 * n * outer + 4 * outer * inner * columns

    return min(((outer, n // outer) for outer in range(1, n + 1) if n % outer == 0), key=lambda pair: cost(pair[0]))


def _angles(rows: torch.Tensor, columns: torch.Tensor, n: int) -> torch.Tensor:
    return 2 * math.pi * torch.outer(rows.double(), columns.double()).remainder(n) / n


class RealDFT(nn.Module):
    """``(..., N)`` frames -> the real and imaginary parts ``(..., N // 2 + 1)`` of ``rfft(frame * window) * scale``."""

    def __init__(self, window: torch.Tensor, scale: float = 1.0) -> None:
        super().__init__()
        n = window.numel()
        self.n, self.bins = n, n // 2 + 1
        self.outer, self.inner = split_length(n)
        self.columns = -(-self.bins // self.outer)  # k2 = 0 ... columns - 1 covers every bin
        outer, inner, columns = self.outer, self.inner, self.columns
        k1 = torch.arange(outer)
        first = _angles(k1, torch.arange(outer), outer)  # (k1, n1)
        self.register_buffer("window", window.detach().float().cpu().clone(), persistent=False)
        self.register_buffer("first", (torch.cat([first.cos(), -first.sin()], 0) * scale).float(), persistent=False)
        k = k1[:, None, None] + outer * torch.arange(columns)[None, None, :]  # (k1, 1, k2)
        twiddle = 2 * math.pi * (torch.arange(inner)[None, :, None] * k).remainder(n).double() / n  # (k1, n2, k2)
        re, im = twiddle.cos(), -twiddle.sin()  # (a + ib)(re + i im): [a, b] @ [[re, im], [-im, re]]
        second = torch.cat([torch.cat([re, im], 2), torch.cat([-im, re], 2)], 1)  # (k1, 2 n2, 2 k2)
        self.register_buffer("second", second.unsqueeze(1).float(), persistent=False)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outer, inner, columns = self.outer, self.inner, self.columns
        lead = frames.shape[:-1]
        x = (frames * self.window).reshape(-1, outer, inner)  # (M, n1, n2)
        a = (self.first @ x).reshape(-1, 2, outer, inner).permute(2, 0, 1, 3)  # (k1, M, re/im, n2)
        b = a.reshape(outer, 1, -1, 2 * inner) @ self.second  # (k1, 1, M, 2 k2)
        spectrum = b.reshape(outer, -1, 2, columns).permute(1, 2, 3, 0).reshape(-1, 2, columns * outer)
        spectrum = spectrum[..., : self.bins]  # bin k = k1 + outer k2
        return spectrum[:, 0].reshape(*lead, self.bins), spectrum[:, 1].reshape(*lead, self.bins)


class InverseRealDFT(nn.Module):
    """Real and imaginary parts ``(..., N // 2 + 1)`` -> ``irfft(re + i im) * window * scale`` ``(..., N)`` (the
    imaginary parts of DC and Nyquist ignored, as ``irfft`` does)."""

    def __init__(self, window: torch.Tensor, scale: float = 1.0) -> None:
        super().__init__()
        n = window.numel()
        self.n, self.bins = n, n // 2 + 1
        self.outer, self.inner = split_length(n)
        self.columns = -(-self.bins // self.outer)
        outer, inner, columns = self.outer, self.inner, self.columns
        k = torch.arange(outer)[:, None, None] + outer * torch.arange(columns)[None, :, None]  # (k1, k2, 1)
        weight = torch.where((k == 0) | (2 * k == n), 1.0, 2.0).double() / n
        weight = torch.where(k < self.bins, weight, 0.0)  # the padded bins beyond Nyquist
        twiddle = 2 * math.pi * (k * torch.arange(inner)[None, None, :]).remainder(n).double() / n  # (k1, k2, n2)
        re, im = weight * twiddle.cos(), weight * twiddle.sin()  # (a + ib) exp(+i angle), as [a, b] rows
        first = torch.cat([torch.cat([re, im], 2), torch.cat([-im, re], 2)], 1)  # (k1, 2 k2, 2 n2)
        self.register_buffer("first", first.unsqueeze(1).float(), persistent=False)
        last = _angles(torch.arange(outer), torch.arange(outer), outer)  # (m, k1)
        self.register_buffer("second", (torch.cat([last.cos(), -last.sin()], 1) * scale).float(), persistent=False)
        self.register_buffer("window", window.detach().float().cpu().clone(), persistent=False)

    def forward(self, re: torch.Tensor, im: torch.Tensor) -> torch.Tensor:
        outer, inner, columns = self.outer, self.inner, self.columns
        lead = re.shape[:-1]
        z = torch.stack([re.reshape(-1, self.bins), im.reshape(-1, self.bins)], 1)  # (M, re/im, k)
        z = nn.functional.pad(z, (0, columns * outer - self.bins))
        z = z.reshape(-1, 2, columns, outer).permute(3, 0, 1, 2).reshape(outer, 1, -1, 2 * columns)  # (k1, 1, M, .)
        v = (z @ self.first).reshape(outer, -1, 2, inner).permute(1, 2, 0, 3)  # (M, re/im, k1, n2)
        y = self.second @ v.reshape(-1, 2 * outer, inner)  # (M, m, n2): sample n2 + inner m
        return y.reshape(*lead, self.n) * self.window
