"""Losses through a frozen SSL teacher; the deep-feature L1 is the baseline Model as Loss is compared with."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from sectl.audio import resample
from sectl.device import host_values
from sectl.losses.base import as_batch
from sectl.models.teachers.ssl import SSL_RATE
from sectl.models.teachers import build_teacher


class SSLTeacherLoss(nn.Module):
    """Base of every SSL-feature loss: owns the frozen teacher and resamples at its boundary.

    ``sample_rate`` is the enhancer's rate; SSL teachers take 16 kHz, so both signals are resampled
    (differentiably) before any SSL-frame arithmetic. ``model`` is an SSL model (``ssl.model``) or a
    pretrained enhancer whose encoder serves as the teacher (``deepfilternet3``, ``nsnet2``: offline).
    """

    def __init__(self, model: str, layer: int, checkpoint: str | Path | None = None, sample_rate: int = SSL_RATE) -> None:
        super().__init__()
        self.teacher = build_teacher(model, layer, checkpoint)
        self.sample_rate = sample_rate

    def pair(self, estimate: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Validated ``(B, T)`` estimate and reference at the teacher's rate."""
        est, ref = as_batch(estimate, reference)
        return resample(est, self.sample_rate, SSL_RATE), resample(ref, self.sample_rate, SSL_RATE)

    def targets(self, reference: torch.Tensor, lengths: list[int] | None = None) -> torch.Tensor:
        """Teacher frames of the reference (no gradient); ``lengths``: each padded row's length in samples."""
        with torch.no_grad():
            if lengths is None:
                return self.teacher(reference)
            return self.teacher(reference, host_values(lengths, reference.device))


class SSLFeatureLoss(SSLTeacherLoss):
    """Mean L1 between SSL layer features of estimate and reference (reference branch detached)."""

    def __init__(self, model: str = "wavlm_base", layer: int = 6, checkpoint: str | Path | None = None,
                 sample_rate: int = SSL_RATE) -> None:  # fmt: skip
        super().__init__(model, layer, checkpoint, sample_rate)

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        est, ref = self.pair(estimate, reference)
        return (self.teacher(est) - self.targets(ref)).abs().mean()
