"""Position-invariant fine-tuning through a frozen SSL model (arXiv 2601.21084).

``X = F(clean)`` and ``X' = F(enhanced)`` are frame sequences of a frozen SSL model ``F``. Comparing
them frame by frame (SSL-MSE) lets the loss fall through the shared positional embedding instead of
the content; the two remedies change the reference so absolute positions no longer line up:

* :class:`SSLPadMSELoss` zero-pads the clean reference at its start by a random 2-5 % of its length,
  rounded to whole SSL frames, so clean content frame ``i`` sits at absolute position ``i + k``; it
  compares output frame ``i`` with padded-reference frame ``i + k`` (same content, other position);
* :class:`SSLSoftDTWLoss` speed-perturbs the clean reference and compares the two sequences with the
  soft-DTW divergence on L2-normalised frames, which aligns by content.

The pad fraction and the speed factor are drawn per sample, as the method describes. Padding is at
the start only: padding at the end leaves every content frame at its own absolute index, so it
would not decorrelate positions at all. The speed factors are a preset field (default 0.8..1.2 in
steps of 0.1; ``ssl_softdtw_fine`` uses the 0.05 grid). Random draws use torch's generator, which
the trainer checkpoints, so resumed runs draw the same values.
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
from sectl.models.ssl import SSL_RATE


class SSLMSELoss(SSLTeacherLoss):
    """Frame-by-frame ``mean_i ||x_i - x'_i||^2`` between SSL features (the paper's baseline)."""

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        est, ref = self.pair(estimate, reference)
        return (self.teacher(est) - self.targets(ref)).pow(2).sum(-1).mean()


class SSLPadMSELoss(SSLTeacherLoss):
    """SSL-MSE against a reference zero-padded at its start, compared on content-aligned frames."""

    def __init__(
        self, model: str, layer: int, checkpoint: str | Path | None = None,
        pad_range: Sequence[float] = (0.02, 0.05), sample_rate: int = SSL_RATE,
    ) -> None:  # fmt: skip
        super().__init__(model, layer, checkpoint, sample_rate)
        low, high = pad_range
        if not 0 <= low <= high:
            raise SectlError(f"ssl_align.pad_range: expected 0 <= low <= high, got {list(pad_range)}")
        self.pad_range = (float(low), float(high))

    def pad_frames(self, batch: int, length: int) -> list[int]:
        """Whole teacher frames of padding per sample: a fraction drawn in ``pad_range`` of ``length``."""
        fractions = torch.empty(batch, dtype=torch.float64).uniform_(*self.pad_range)
        return [max(1, round(float(f) * length / self.teacher.hop)) for f in fractions]

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        est, ref = self.pair(estimate, reference)
        output = self.teacher(est)
        errors = []
        for b, frames in enumerate(self.pad_frames(ref.shape[0], ref.shape[-1])):
            # One sample at a time: padding the batch to a common length would add zeros the teacher attends to.
            target = self.targets(nn.functional.pad(ref[b : b + 1], (frames * self.teacher.hop, 0)))[:, frames:]
            n = min(target.shape[1], output.shape[1])
            errors.append((output[b : b + 1, :n] - target[:, :n]).pow(2).sum(-1).mean())
        return torch.stack(errors).mean()


class SSLSoftDTWLoss(SSLTeacherLoss):
    """Soft-DTW divergence between SSL features of the output and of a speed-perturbed reference."""

    def __init__(
        self, model: str, layer: int, checkpoint: str | Path | None = None,
        speeds: Sequence[float] = (0.8, 0.9, 1.0, 1.1, 1.2), gamma: float = 0.1, sample_rate: int = SSL_RATE,
    ) -> None:
        super().__init__(model, layer, checkpoint, sample_rate)
        if not speeds or min(speeds) <= 0:
            raise SectlError(f"ssl_align.speeds: expected positive factors, got {list(speeds)}")
        self.speeds = tuple(float(s) for s in speeds)
        self.sdtw = SoftDTW(gamma=gamma, divergence=True, distance="sqeuclidean")

    def draw_speeds(self, batch: int) -> list[float]:
        return [self.speeds[int(i)] for i in torch.randint(len(self.speeds), (batch,))]

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        est, ref = self.pair(estimate, reference)
        output = nn.functional.normalize(self.teacher(est), dim=-1)
        values = []
        for b, speed in enumerate(self.draw_speeds(ref.shape[0])):
            # Per sample: each perturbed reference has its own length.
            target = nn.functional.normalize(self.targets(speed_perturb(ref[b : b + 1], speed)), dim=-1)
            values.append(self.sdtw(output[b : b + 1], target)[0])
        return torch.stack(values).mean() / output.shape[1]
