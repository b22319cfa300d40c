"""Multi-resolution STFT loss: spectral convergence + log-magnitude L1 (Yamamoto et al., 2020)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from sectl.losses.base import as_batch, reduce


class STFTLoss(nn.Module):
    """One resolution; returns per-example ``sc + log_mag`` ``(B,)`` before reduction."""

    def __init__(self, fft_size: int, hop: int, win: int, eps: float = 1e-7) -> None:
        super().__init__()
        self.fft_size, self.hop, self.eps = fft_size, hop, eps
        self.register_buffer("window", torch.hann_window(win), persistent=False)

    def magnitude(self, x: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(x, self.fft_size, self.hop, self.window.shape[0], self.window, return_complex=True)
        # sqrt(re^2 + im^2 + eps), not abs(): abs has a NaN gradient at exactly 0, which masking models
        # produce on zero-padded crops.
        return (spec.real.pow(2) + spec.imag.pow(2) + self.eps**2).sqrt()

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        est, ref = self.magnitude(estimate), self.magnitude(reference)
        sc = torch.linalg.norm(ref - est, dim=(1, 2)) / torch.linalg.norm(ref, dim=(1, 2)).clamp_min(self.eps)
        log_mag = (ref.log() - est.log()).abs().mean(dim=(1, 2))
        return sc + log_mag


class MultiResolutionSTFTLoss(nn.Module):
    """Mean of :class:`STFTLoss` over resolutions (defaults: Parallel WaveGAN's three)."""

    def __init__(
        self,
        fft_sizes: Sequence[int] = (512, 1024, 2048),
        hops: Sequence[int] = (50, 120, 240),
        wins: Sequence[int] = (240, 600, 1200),
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if not len(fft_sizes) == len(hops) == len(wins):
            raise ValueError("fft_sizes, hops and wins must have the same length")
        self.resolutions = nn.ModuleList(STFTLoss(f, h, w) for f, h, w in zip(fft_sizes, hops, wins))
        self.reduction = reduction

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        est, ref = as_batch(estimate, reference)
        values = torch.stack([r(est, ref) for r in self.resolutions]).mean(0)
        return reduce(values, self.reduction)
