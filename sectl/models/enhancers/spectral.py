"""Frame-based analysis and synthesis shared by the spectral enhancers (NSNet2, DeepFilterNet3).

Why not ``torch.istft``: it divides by the summed squared window, which is zero at the first sample
of a square-root-Hann or Vorbis window (the NOLA check fails), and the published models synthesise by
plain overlap-add of windowed frames. Both forms here are differentiable and batched.
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import nn


def float32_signal(reference: torch.Tensor) -> contextlib.AbstractContextManager:
    """Autocast off on ``reference``'s device: the signal stages (STFT features, running normalisations,
    complex masks and filters) stay float32 under mixed precision, where bf16's 8-bit mantissa cannot
    resolve log-spectra and complex bf16 does not exist; only the networks between them run in 16 bits."""
    return torch.autocast(reference.device.type, enabled=False)


def sqrt_hann_window(length: int, periodic: bool = True) -> torch.Tensor:
    """Square-root Hann window; the periodic one's squares overlap-add to exactly 1 at hop ``length / 2``."""
    return torch.hann_window(length, periodic=periodic, dtype=torch.float64).sqrt().float()


def vorbis_window(length: int) -> torch.Tensor:
    """``sin(pi/2 sin^2(pi (n + 0.5) / length))``: power-complementary at hop ``length / 2`` (libDF's window)."""
    n = torch.arange(length, dtype=torch.float64)
    return torch.sin(0.5 * math.pi * torch.sin(math.pi * (n + 0.5) / length) ** 2).float()


def analysis(x: torch.Tensor, window: torch.Tensor, hop: int) -> torch.Tensor:
    """Complex spectra ``(B, n_fft // 2 + 1, frames)`` of frames ``x[t * hop : t * hop + len(window)]``.

    ``x`` is ``(B, T)`` and already padded as the model needs; incomplete trailing frames are dropped.
    """
    n_fft = window.shape[-1]
    return torch.stft(x, n_fft, hop, window=window, center=False, return_complex=True)


def overlap_add(spec: torch.Tensor, window: torch.Tensor, hop: int) -> torch.Tensor:
    """Inverse of :func:`analysis` without normalisation: ``(B, F, frames)`` -> ``(B, hop * (frames - 1) + n_fft)``."""
    n_fft = window.shape[-1]
    frames = torch.fft.irfft(spec.transpose(1, 2), n=n_fft) * window  # (B, frames, n_fft)
    length = hop * (frames.shape[1] - 1) + n_fft
    return nn.functional.fold(
        frames.transpose(1, 2), output_size=(1, length), kernel_size=(1, n_fft), stride=(1, hop)
    ).reshape(frames.shape[0], length)


def stack_complex(spec: torch.Tensor) -> torch.Tensor:
    """``(B, F, T)`` complex -> ``(B, 2F, T)`` real (real parts, then imaginary parts): a feature level."""
    return torch.cat([spec.real, spec.imag], dim=1)


def unstack_complex(stacked: torch.Tensor) -> torch.Tensor:
    bins = stacked.shape[1] // 2
    return torch.complex(stacked[:, :bins], stacked[:, bins:])


def magnitude(spec: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``|spec|`` with a finite gradient at 0 (``abs`` of a complex zero has a NaN gradient)."""
    return (spec.real.pow(2) + spec.imag.pow(2) + eps * eps).sqrt()
