"""Time-domain losses."""

from __future__ import annotations

import torch
from torch import nn

from sectl.losses.base import as_batch, reduce


class L1Loss(nn.Module):
    """Mean absolute sample difference; per-example values ``(B,)`` with ``reduction="none"``."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        est, ref = as_batch(estimate, reference)
        return reduce((est - ref).abs().mean(dim=-1), self.reduction)


class NegSISDRLoss(nn.Module):
    """Negative scale-invariant SDR in dB (lower is better), mean removed from both signals."""

    def __init__(self, reduction: str = "mean", eps: float = 1e-8) -> None:
        super().__init__()
        self.reduction, self.eps = reduction, eps

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        est, ref = as_batch(estimate, reference)
        est = est - est.mean(dim=-1, keepdim=True)
        ref = ref - ref.mean(dim=-1, keepdim=True)
        scale = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + self.eps)
        target = scale * ref
        ratio = target.pow(2).sum(-1) / ((est - target).pow(2).sum(-1) + self.eps)
        return reduce(-10 * torch.log10(ratio + self.eps), self.reduction)
