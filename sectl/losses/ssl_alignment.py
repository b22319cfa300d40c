"""Position-invariant fine-tuning through a frozen SSL model (arXiv 2601.21084).

``X = F(clean)`` and ``X' = F(enhanced)`` are frame sequences of a frozen SSL model ``F``. Comparing
them frame by frame (SSL-MSE) lets the loss fall through the shared positional embedding instead of
the content; the two remedies change the reference so absolute positions no longer line up:

* :class:`SSLPadMSELoss` zero-pads the clean reference at its start by a random 2-5 % of its length,
  rounded to whole SSL frames, so clean content frame ``i`` sits at absolute position ``i + k``; it
  compares output frame ``i`` with padded-reference frame ``i + k`` (same content, other position);
* :class:`SSLSoftDTWLoss` speed-perturbs the clean reference and compares the two sequences with the
  soft-DTW divergence on L2-normalised frames, which aligns by content.

The pad fraction and the speed factor are drawn per sample, as the method describes, and the
references of different lengths go through the teacher in one batched call, zero-padded at the end
with each row's length (the teacher masks the padding; see :class:`sectl.models.teachers.ssl.FrozenTeacher`).
Padding is at
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

from sectl.data.augment import speed_resampler
from sectl.device import host_draw, host_values
from sectl.errors import ConfigError
from sectl.losses.feature import SSLTeacherLoss
from sectl.losses.softdtw import SoftDTW
from sectl.models.teachers.ssl import SSL_RATE


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
            raise ConfigError(f"ssl_align.pad_range: expected 0 <= low <= high, got {list(pad_range)}")
        self.pad_range = (float(low), float(high))

    def pad_frames(self, batch: int, length: int) -> list[int]:
        """Whole teacher frames of padding per sample: a fraction drawn in ``pad_range`` of ``length``."""
        fractions = host_draw(lambda: torch.empty(batch, dtype=torch.float64, device="cpu").uniform_(*self.pad_range))
        return [max(1, round(f * length / self.teacher.hop)) for f in fractions]

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        est, ref = self.pair(estimate, reference)
        output = self.teacher(est)
        length, hop = ref.shape[-1], self.teacher.hop
        pads = self.pad_frames(ref.shape[0], length)
        padded, lengths = pad_rows([nn.functional.pad(row, (frames * hop, 0)) for row, frames in zip(ref, pads)])
        target = self.targets(padded, lengths)
        # Output frame i against padded-reference frame i + pad: the same content at another position.
        n = min([output.shape[1]] + [self.teacher.frames(length + frames * hop) - frames for frames in pads])
        index = host_values(pads, target.device)[:, None] + torch.arange(n, device=target.device)
        target = target.gather(1, index[..., None].expand(-1, -1, target.shape[-1]))
        return (output[:, :n] - target).pow(2).sum(-1).mean()


class SSLSoftDTWLoss(SSLTeacherLoss):
    """Soft-DTW divergence between SSL features of the output and of a speed-perturbed reference."""

    def __init__(
        self, model: str, layer: int, checkpoint: str | Path | None = None,
        speeds: Sequence[float] = (0.8, 0.9, 1.0, 1.1, 1.2), gamma: float = 0.1, sample_rate: int = SSL_RATE,
    ) -> None:
        super().__init__(model, layer, checkpoint, sample_rate)
        if not speeds or min(speeds) <= 0:
            raise ConfigError(f"ssl_align.speeds: expected positive factors, got {list(speeds)}")
        self.speeds = tuple(float(s) for s in speeds)
        self.perturbations = nn.ModuleList(speed_resampler(s, SSL_RATE) for s in self.speeds)
        self.sdtw = SoftDTW(gamma=gamma, divergence=True, distance="sqeuclidean")

    def draw_speeds(self, batch: int) -> list[float]:
        return [self.speeds[i] for i in host_draw(lambda: torch.randint(len(self.speeds), (batch,), device="cpu"))]

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        est, ref = self.pair(estimate, reference)
        output = nn.functional.normalize(self.teacher(est), dim=-1)
        perturbed = [self.perturbations[self.speeds.index(speed)](row) for row, speed in zip(ref, self.draw_speeds(ref.shape[0]))]
        padded, lengths = pad_rows(perturbed)
        target = nn.functional.normalize(self.targets(padded, lengths), dim=-1)
        frames = [self.teacher.frames(n) for n in lengths]  # known on the host: nothing is read back
        return self.sdtw(output, target, y_lengths=frames).mean() / output.shape[1]


def pad_rows(rows: list[torch.Tensor]) -> tuple[torch.Tensor, list[int]]:
    """Rows of different lengths as one zero-padded batch ``(B, max length)``, and their lengths."""
    return nn.utils.rnn.pad_sequence(rows, batch_first=True), [row.shape[-1] for row in rows]
