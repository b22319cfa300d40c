"""The loss contract: ``loss(estimate, reference) -> scalar``, waveforms ``(B, T)`` or ``(B, 1, T)``."""

from __future__ import annotations

import torch


def as_batch(estimate: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a waveform pair and return both as ``(B, T)``; wrong shapes raise ``ValueError``."""
    if estimate.shape != reference.shape:
        raise ValueError(f"estimate {tuple(estimate.shape)} and reference {tuple(reference.shape)} differ in shape")
    if estimate.dim() == 3 and estimate.shape[1] == 1:
        return estimate[:, 0], reference[:, 0]
    if estimate.dim() != 2:
        raise ValueError(f"expected waveforms (B, T) or (B, 1, T); got {tuple(estimate.shape)}")
    return estimate, reference


def reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    """Apply ``"mean"``, ``"sum"`` or ``"none"`` to per-example values ``(B,)``."""
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    if reduction == "none":
        return values
    raise ValueError(f"unknown reduction {reduction!r}")
