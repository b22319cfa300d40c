"""The weighted sum of named loss terms a preset asks for (``loss.<name>: weight``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from sectl.errors import ConfigError
from sectl.losses.feature import SSLFeatureLoss
from sectl.losses.mal import ModelAsLoss
from sectl.losses.ssl_alignment import SSLMSELoss, SSLPadMSELoss, SSLSoftDTWLoss
from sectl.losses.stft import MultiResolutionSTFTLoss
from sectl.losses.waveform import L1Loss, NegSISDRLoss
from sectl.models import Enhancer


class LossSet(nn.Module):
    """``forward(estimate, reference) -> (total, {name: value})`` over the terms with non-zero weight."""

    def __init__(self, terms: dict[str, nn.Module], weights: dict[str, float]) -> None:
        super().__init__()
        if not terms:
            raise ConfigError("loss: every weight is 0; enable at least one term")
        self.terms = nn.ModuleDict(terms)
        self.weights = dict(weights)

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The weighted total and each term detached (tensors: reading them would stall a GPU)."""
        values = {name: term(estimate, reference) for name, term in self.terms.items()}
        total = sum(self.weights[name] * value for name, value in values.items())
        return total, {name: value.detach() for name, value in values.items()}

    def dynamic_mal(self) -> ModelAsLoss | None:
        """The MAL term when it uses the live encoder (the one that can collapse), else ``None``."""
        mal = self.terms["mal"] if "mal" in self.terms else None
        return mal if isinstance(mal, ModelAsLoss) and mal.variant == "dynamic" else None


@dataclass(frozen=True)
class LossEntry:
    """How the preset's ``loss.<name>`` term is built, and which preset section configures it."""

    build: Callable[[dict, Enhancer, Enhancer | None], nn.Module]
    section: str | None = None


def _teacher(config: dict) -> tuple:
    s = config["ssl"]
    return s["model"], s["layer"], s["checkpoint"]


def _mal(config: dict, model: Enhancer, snapshot: Enhancer | None) -> nn.Module:
    m = config["mal"]
    return ModelAsLoss(model, m["variant"], m["levels"], m["weights"], m["frozen_levels"], snapshot)


LOSSES: dict[str, LossEntry] = {
    "l1": LossEntry(lambda c, m, s: L1Loss()),
    "mrstft": LossEntry(lambda c, m, s: MultiResolutionSTFTLoss()),
    "sisdr": LossEntry(lambda c, m, s: NegSISDRLoss()),
    "ssl": LossEntry(lambda c, m, s: SSLFeatureLoss(*_teacher(c), sample_rate=m.sample_rate), "ssl"),
    "ssl_mse": LossEntry(lambda c, m, s: SSLMSELoss(*_teacher(c), sample_rate=m.sample_rate), "ssl"),
    "ssl_pad": LossEntry(lambda c, m, s: SSLPadMSELoss(
        *_teacher(c), c["ssl_align"]["pad_range"], sample_rate=m.sample_rate), "ssl_align"),
    "ssl_sdtw": LossEntry(lambda c, m, s: SSLSoftDTWLoss(
        *_teacher(c), c["ssl_align"]["speeds"], c["ssl_align"]["gamma"], sample_rate=m.sample_rate), "ssl_align"),
    "mal": LossEntry(_mal, "mal"),
}
"""Every enhancer loss term a preset can weight (``loss.<name>``)."""


def build_losses(config: dict, model: Enhancer, snapshot: Enhancer | None = None) -> LossSet:
    """Instantiate every term whose weight is non-zero; the MAL term needs the live model."""
    weights = {k: float(v) for k, v in config["loss"].items() if v}
    unknown = sorted(set(weights) - set(LOSSES))
    if unknown:
        raise ConfigError(f"loss.{unknown[0]}: unknown loss term; known: {', '.join(LOSSES)}")
    return LossSet({name: LOSSES[name].build(config, model, snapshot) for name in weights}, weights)
