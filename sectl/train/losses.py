"""The weighted sum of named loss terms a preset asks for (``loss.<name>: weight``)."""

from __future__ import annotations

import torch
from torch import nn

from sectl.errors import SectlError
from sectl.losses.mal import ModelAsLoss
from sectl.losses.stft import MultiResolutionSTFTLoss
from sectl.losses.waveform import L1Loss, NegSISDRLoss
from sectl.models import Enhancer


class LossSet(nn.Module):
    """``forward(estimate, reference) -> (total, {name: value})`` over the terms with non-zero weight."""

    def __init__(self, terms: dict[str, nn.Module], weights: dict[str, float]) -> None:
        super().__init__()
        if not terms:
            raise SectlError("loss: every weight is 0; enable at least one term")
        self.terms = nn.ModuleDict(terms)
        self.weights = dict(weights)

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        values = {name: term(estimate, reference) for name, term in self.terms.items()}
        total = sum(self.weights[name] * value for name, value in values.items())
        return total, {name: float(value.detach()) for name, value in values.items()}

    def check_collapse(self, threshold: float) -> None:
        """Stop a dynamic-MAL run whose encoder is collapsing to a constant."""
        mal = self.terms["mal"] if "mal" in self.terms else None
        if isinstance(mal, ModelAsLoss) and mal.variant == "dynamic":
            ratio = mal.collapse_ratio()
            if ratio < threshold:
                raise SectlError(
                    f"MAL encoder collapse: clean-feature spread fell to {ratio:.3f} of its start "
                    f"(< mal.collapse_threshold {threshold}); raise loss.l1 or use variant frozen"
                )


def build_losses(config: dict, model: Enhancer, snapshot: Enhancer | None = None) -> LossSet:
    """Instantiate every term whose weight is non-zero; the MAL term needs the live model."""
    weights = {k: float(v) for k, v in config["loss"].items() if v}
    terms: dict[str, nn.Module] = {}
    for name in weights:
        if name == "l1":
            terms[name] = L1Loss()
        elif name == "mrstft":
            terms[name] = MultiResolutionSTFTLoss()
        elif name == "sisdr":
            terms[name] = NegSISDRLoss()
        elif name == "ssl":
            from sectl.losses.feature import SSLFeatureLoss

            s = config["ssl"]
            terms[name] = SSLFeatureLoss(s["model"], s["layer"], s["checkpoint"], model.sample_rate)
        elif name in ("ssl_mse", "ssl_pad", "ssl_sdtw"):
            terms[name] = _ssl_alignment_loss(name, config, model.sample_rate)
        elif name == "mal":
            m = config["mal"]
            terms[name] = ModelAsLoss(model, m["variant"], m["levels"], m["weights"], m["frozen_levels"], snapshot)
        else:
            raise SectlError(f"loss.{name}: unknown loss term")
    return LossSet(terms, weights)


def _ssl_alignment_loss(name: str, config: dict, sample_rate: int) -> nn.Module:
    from sectl.losses.ssl_alignment import SSLMSELoss, SSLPadMSELoss, SSLSoftDTWLoss

    s, a = config["ssl"], config["ssl_align"]
    if name == "ssl_mse":
        return SSLMSELoss(s["model"], s["layer"], s["checkpoint"], sample_rate)
    if name == "ssl_pad":
        return SSLPadMSELoss(s["model"], s["layer"], s["checkpoint"], a["pad_range"], a["pad_side"], sample_rate)
    return SSLSoftDTWLoss(s["model"], s["layer"], s["checkpoint"], a["speeds"], a["gamma"], sample_rate)
