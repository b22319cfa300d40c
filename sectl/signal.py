"""Signal measures shared by losses and metrics, so the number a model is trained on and the number it is
scored with come from one implementation."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sectl.errors import ConfigError

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


@dataclass(frozen=True)
class DryWet:
    """How much of the input an output keeps, against over-suppression (speech attenuated, ASR worse).

    ``atten_lim_db`` caps the suppression as DeepFilterNet's ``--atten-lim`` does: the output is
    ``(1 - g) * enhanced + g * input`` with ``g = 10^(-atten_lim_db / 20)``, so noise is attenuated by
    at most about that many dB and 0 dB returns the input. ``mix`` then blends the result with the
    input (1 = all enhanced, 0 = the input). Both are time-aligned: every enhancer's output is.
    """

    atten_lim_db: float | None = None
    mix: float = 1.0

    def __post_init__(self) -> None:
        if self.atten_lim_db is not None and self.atten_lim_db < 0:
            raise ConfigError(f"attenuation limit must be >= 0 dB, got {self.atten_lim_db}")
        if not 0.0 <= self.mix <= 1.0:
            raise ConfigError(f"mix must be between 0 and 1, got {self.mix}")

    @property
    def input_weight(self) -> float:
        kept = 0.0 if self.atten_lim_db is None else 10 ** (-self.atten_lim_db / 20)
        return 1.0 - self.mix * (1.0 - kept)

    def apply(self, enhanced: torch.Tensor, noisy: torch.Tensor) -> torch.Tensor:
        weight = self.input_weight
        return enhanced if weight == 0.0 else torch.lerp(enhanced, noisy, weight)


FULLY_WET = DryWet()
