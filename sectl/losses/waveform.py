"""Time-domain losses."""

from __future__ import annotations

import torch
from torch import nn

from sectl.losses.base import as_batch, reduce
from sectl.signal import si_sdr_db


class L1Loss(nn.Module):
    """Mean absolute sample difference; per-example values ``(B,)`` with ``reduction="none"``."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        est, ref = as_batch(estimate, reference)
        return reduce((est - ref).abs().mean(dim=-1), self.reduction)


class NegSISDRLoss(nn.Module):
    """Negative scale-invariant SDR in dB (lower is better): :func:`sectl.signal.si_sdr_db`, as the metric."""

    def __init__(self, reduction: str = "mean", eps: float = 1e-8) -> None:
        super().__init__()
        self.reduction, self.eps = reduction, eps

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        est, ref = as_batch(estimate, reference)
        return reduce(-si_sdr_db(est, ref, self.eps), self.reduction)
