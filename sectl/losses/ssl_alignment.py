"""Position-invariant fine-tuning through a frozen SSL model (arXiv 2601.21084).

``X = F(clean)`` and ``X' = F(enhanced)`` are frame sequences of a frozen SSL model ``F``. Comparing
them frame by frame (SSL-MSE) lets the loss fall through the shared positional embedding instead of
the content; the two remedies change the reference so absolute positions no longer line up:

* :class:`SSLPadMSELoss` zero-pads the clean reference by a random 2-5 % of its length, rounded to
  whole SSL frames, and compares the content-aligned frames;
* :class:`SSLSoftDTWLoss` speed-perturbs the clean reference and compares the two sequences with the
  soft-DTW divergence on L2-normalised frames, which aligns by content.

Choices the paper leaves open (preset fields under ``ssl_align``): the padding side (default
``left``, so every clean frame moves later) and the speed factors (default 0.8..1.2). Random draws
use torch's generator, which the trainer checkpoints, so resumed runs draw the same values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from sectl.data.augment import speed_perturb
from sectl.errors import SectlError
from sectl.losses.feature import SSLTeacherLoss
from sectl.losses.softdtw import SoftDTW
from sectl.models.ssl import SSL_HOP, SSL_RATE


class SSLMSELoss(SSLTeacherLoss):
    """Frame-by-frame ``mean_i ||x_i - x'_i||^2`` between SSL features (the paper's baseline)."""

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        est, ref = self.pair(estimate, reference)
        return (self.teacher(est) - self.targets(ref)).pow(2).sum(-1).mean()


class SSLPadMSELoss(SSLTeacherLoss):
    """SSL-MSE against a zero-padded reference, compared on content-aligned frames."""

    def __init__(
        self, model: str, layer: int, checkpoint: str | Path | None = None,
        pad_range: Sequence[float] = (0.02, 0.05), side: str = "left", sample_rate: int = SSL_RATE,
    ) -> None:
        super().__init__(model, layer, checkpoint, sample_rate)
        if side not in ("left", "right"):
            raise SectlError(f"ssl_align.pad_side: expected left or right, got {side!r}")
        self.pad_range, self.side = tuple(pad_range), side

    def pad_frames(self, length: int) -> int:
        fraction = float(torch.empty(()).uniform_(*self.pad_range))
        return max(1, round(fraction * length / SSL_HOP))

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        est, ref = self.pair(estimate, reference)
        frames = self.pad_frames(ref.shape[-1])
        padding = (frames * SSL_HOP, 0) if self.side == "left" else (0, frames * SSL_HOP)
        target = self.targets(nn.functional.pad(ref, padding))
        output = self.teacher(est)
        target = target[:, frames:] if self.side == "left" else target
        n = min(target.shape[1], output.shape[1])
        return (output[:, :n] - target[:, :n]).pow(2).sum(-1).mean()


class SSLSoftDTWLoss(SSLTeacherLoss):
    """Soft-DTW divergence between SSL features of the output and of a speed-perturbed reference."""

    def __init__(
        self, model: str, layer: int, checkpoint: str | Path | None = None,
        speeds: Sequence[float] = (0.8, 0.9, 1.0, 1.1, 1.2), gamma: float = 0.1, sample_rate: int = SSL_RATE,
    ) -> None:
        super().__init__(model, layer, checkpoint, sample_rate)
        self.speeds = tuple(speeds)
        self.sdtw = SoftDTW(gamma=gamma, divergence=True, distance="sqeuclidean")

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        est, ref = self.pair(estimate, reference)
        speed = self.speeds[int(torch.randint(len(self.speeds), ()))]
        target = nn.functional.normalize(self.targets(speed_perturb(ref, speed)), dim=-1)
        output = nn.functional.normalize(self.teacher(est), dim=-1)
        return self.sdtw(output, target).mean() / output.shape[1]
