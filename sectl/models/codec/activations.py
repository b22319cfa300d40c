"""Periodic activations for waveform generators and their anti-aliased form.

Snake (Ziyin et al., 2020; used by DAC) is ``x + sin^2(a x) / a`` with a learned frequency ``a`` per
channel; SnakeBeta (BigVGAN, Lee et al., 2023) decouples the magnitude: ``x + sin^2(a x) / b``. A
pointwise non-linearity creates harmonics above Nyquist that fold back as aliasing; BigVGAN runs it at
twice the rate between a low-pass upsampler and a low-pass downsampler (Kaiser-windowed sinc filters,
as in StyleGAN3), which :class:`AntiAliased` does for any activation.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class Snake(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.log_alpha = nn.Parameter(torch.zeros(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.log_alpha.exp()
        return x + torch.sin(alpha * x).pow(2) / (alpha + 1e-9)


class SnakeBeta(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.log_alpha = nn.Parameter(torch.zeros(1, channels, 1))
        self.log_beta = nn.Parameter(torch.zeros(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.sin(self.log_alpha.exp() * x).pow(2) / (self.log_beta.exp() + 1e-9)


def kaiser_sinc_filter(cutoff: float, half_width: float, kernel_size: int) -> torch.Tensor:
    """A low-pass FIR filter (cutoff and transition half-width as fractions of the sample rate), unit DC gain."""
    half = kernel_size // 2
    attenuation = 2.285 * (half - 1) * math.pi * 4 * half_width + 7.95  # Kaiser's formula, dB
    if attenuation > 50:
        beta = 0.1102 * (attenuation - 8.7)
    elif attenuation >= 21:
        beta = 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel_size, periodic=False, beta=beta, dtype=torch.float64)
    time = torch.arange(-half, half, dtype=torch.float64) + 0.5 if kernel_size % 2 == 0 else torch.arange(kernel_size) - half
    taps = 2 * cutoff * window * torch.sinc(2 * cutoff * time)
    return (taps / taps.sum()).float()


class AntiAliased(nn.Module):
    """``activation`` applied at twice the rate: low-pass upsample x2, activate, low-pass downsample x2.

    Lengths are kept exactly (``T -> 2T -> T``); edges are padded by replication.
    """

    def __init__(self, activation: nn.Module, kernel_size: int = 12) -> None:
        super().__init__()
        self.activation = activation
        self.kernel_size = kernel_size
        self.register_buffer("taps", kaiser_sinc_filter(0.25, 0.3, kernel_size).view(1, 1, -1), persistent=False)

    def upsample(self, x: torch.Tensor) -> torch.Tensor:
        channels, k = x.shape[1], self.kernel_size
        pad = k // 2 - 1
        x = nn.functional.pad(x, (pad, pad), mode="replicate")
        y = 2 * nn.functional.conv_transpose1d(x, self.taps.expand(channels, 1, k), stride=2, groups=channels)
        trim = 2 * pad + (k - 2) // 2
        return y[..., trim : y.shape[-1] - trim]

    def downsample(self, x: torch.Tensor) -> torch.Tensor:
        channels, k = x.shape[1], self.kernel_size
        x = nn.functional.pad(x, (k // 2 - 1, k // 2), mode="replicate")
        return nn.functional.conv1d(x, self.taps.expand(channels, 1, k), stride=2, groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(self.activation(self.upsample(x)))
