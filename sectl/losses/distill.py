"""Distilling a frozen SSL teacher into a speech VAE's latents (JMAS-VAE, ``../shared/METHODS.md`` s. 2).

All terms take frame sequences ``(B, T, D)`` already at the latent rate (:func:`to_latent_rate`), the
student (the projected latents) first and the teacher by keyword:

* :class:`MarginalCosineLoss`: ``mean relu(1 - m1 - cos(s_i, f_i))``: a frame is pulled towards its
  teacher frame only while their cosine is below ``1 - m1``;
* :class:`MarginalDistanceMatrixLoss`: ``mean_ij relu(|cos(s_i, s_j) - cos(f_i, f_j)| - m2)``: the
  student's frame-to-frame similarity structure must match the teacher's up to a margin; ``joint``
  (the default) takes *all frames of the batch* as one set, so the structure across utterances is
  matched too; ``joint=False`` is the per-utterance ablation (VA-VAE's original form);
* :class:`TimeAxisCosineLoss`: ``-mean cos(z_t, Q f_t)``: Semantic-VAE's baseline, teacher projected
  down to the latent size.
"""

from __future__ import annotations

import torch
from torch import nn


def to_latent_rate(features: torch.Tensor, frames: int) -> torch.Tensor:
    """Teacher frames ``(B, Tf, D)`` linearly interpolated in time to ``frames`` (e.g. 50 Hz -> 40 Hz)."""
    return nn.functional.interpolate(features.transpose(1, 2), size=frames, mode="linear", align_corners=False).transpose(1, 2)


def _check(student: torch.Tensor, teacher: torch.Tensor) -> None:
    if student.dim() != 3 or student.shape != teacher.shape:
        raise ValueError(f"student {tuple(student.shape)} and teacher {tuple(teacher.shape)} must both be (B, T, D)")


class MarginalCosineLoss(nn.Module):
    def __init__(self, margin: float = 0.5) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, student: torch.Tensor, *, teacher: torch.Tensor) -> torch.Tensor:
        _check(student, teacher)
        return torch.relu(1 - self.margin - nn.functional.cosine_similarity(student, teacher, dim=-1)).mean()


class MarginalDistanceMatrixLoss(nn.Module):
    def __init__(self, margin: float = 0.25, joint: bool = True) -> None:
        super().__init__()
        self.margin, self.joint = margin, joint

    def forward(self, student: torch.Tensor, *, teacher: torch.Tensor) -> torch.Tensor:
        _check(student, teacher)
        if self.joint:  # one set of B*T frames: pairs across utterances count as well
            student, teacher = student.reshape(1, -1, student.shape[-1]), teacher.reshape(1, -1, teacher.shape[-1])
        s = nn.functional.normalize(student, dim=-1)
        f = nn.functional.normalize(teacher, dim=-1)
        return torch.relu((s @ s.transpose(1, 2) - f @ f.transpose(1, 2)).abs() - self.margin).mean()


class TimeAxisCosineLoss(nn.Module):
    def forward(self, student: torch.Tensor, *, teacher: torch.Tensor) -> torch.Tensor:
        _check(student, teacher)
        return -nn.functional.cosine_similarity(student, teacher, dim=-1).mean()


class SemanticRegulator(nn.Module):
    """Semantic-VAE's projection of teacher frames to the latent size, for the TAS baseline: ``blocks`` of
    (kernel-3 convolution, GroupNorm with one group, Mish) at twice the latent width, then a 1x1
    convolution to the latent width. Takes and returns frames ``(B, T, D)`` (already at the latent rate)."""

    def __init__(self, teacher_dim: int, latent_dim: int, blocks: int = 2) -> None:
        super().__init__()
        width = 2 * latent_dim
        layers: list[nn.Module] = []
        for i in range(blocks):
            layers += [nn.Conv1d(teacher_dim if i == 0 else width, width, 3, padding=1), nn.GroupNorm(1, width), nn.Mish()]
        self.layers = nn.Sequential(*layers, nn.Conv1d(width if blocks else teacher_dim, latent_dim, 1))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.layers(frames.transpose(1, 2)).transpose(1, 2)
