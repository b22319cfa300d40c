"""Deep-feature loss through a frozen SSL model: the baseline that Model as Loss is compared with."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from sectl.losses.base import as_batch
from sectl.models.ssl import SSLFeatures


class SSLFeatureLoss(nn.Module):
    """Mean L1 between SSL layer features of estimate and reference (reference branch detached)."""

    def __init__(self, model: str = "wavlm_base", layer: int = 6, checkpoint: str | Path | None = None) -> None:
        super().__init__()
        self.teacher = SSLFeatures(model, layer, checkpoint)

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        est, ref = as_batch(estimate, reference)
        with torch.no_grad():
            target = self.teacher(ref)
        return (self.teacher(est) - target).abs().mean()
