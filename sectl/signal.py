"""Signal measures shared by losses and metrics, so the number a model is trained on and the number it is
scored with come from one implementation."""

from __future__ import annotations

import torch

EPS = 1e-8


def si_sdr_db(estimate: torch.Tensor, reference: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Scale-invariant SDR in dB along the last axis (Le Roux et al., 2019), mean removed from both signals.

    ``estimate`` and ``reference`` are ``(..., T)``; returns ``(...)``. Differentiable. Up to ``eps`` it is
    symmetric (``10 log10(rho^2 / (1 - rho^2))`` of the signals' correlation ``rho``), but callers still
    pass the reference by position in losses and by keyword in metrics, as for every other measure.
    """
    estimate = estimate - estimate.mean(dim=-1, keepdim=True)
    reference = reference - reference.mean(dim=-1, keepdim=True)
    scale = (estimate * reference).sum(-1, keepdim=True) / (reference.pow(2).sum(-1, keepdim=True) + eps)
    target = scale * reference
    return 10 * torch.log10((target.pow(2).sum(-1) + eps) / ((estimate - target).pow(2).sum(-1) + eps))
