"""Model as Loss (Phaye, Cernak & Harper, Interspeech 2025): the enhancer's own encoder as the loss.

``L_mal = sum_l w_l * mean |E'(clean)_l - E'(enhanced)_l|`` over chosen encoder levels, where ``E'`` is

* ``frozen``: a fixed snapshot of a trained model's encoder (``init_from``);
* ``frozen-fe``: the live encoder whose first ``frozen_levels`` levels are frozen *in the trained model*
  (their parameters get no gradient and never change);
* ``dynamic``: the live encoder, updated as training goes on.

Both signals are normalised by the clean signal's scale, so they are compared in the same units.

Collapse guard (``dynamic``): an encoder mapping everything to a constant makes the loss zero. The
clean branch is always detached (no gradient can shrink the targets), presets keep a conventional
term beside MAL, and :meth:`ModelAsLoss.collapse_ratio` tracks the clean features' spread relative to
its value at construction; the trainer stops a run whose ratio falls under ``collapse_threshold``.
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn

from sectl.errors import SectlError
from sectl.losses.base import as_batch
from sectl.models.base import Enhancer

VARIANTS = ("frozen", "frozen-fe", "dynamic")


class ModelAsLoss(nn.Module):
    def __init__(
        self,
        model: Enhancer,
        variant: str = "frozen",
        levels: Sequence[int] | None = None,
        weights: Sequence[float] | None = None,
        frozen_levels: int = 2,
        snapshot: Enhancer | None = None,
    ) -> None:
        """
        Args:
            model: the enhancer being trained.
            variant: ``frozen``, ``frozen-fe`` or ``dynamic``.
            levels: indices into ``model.encode(...)``'s list (default: every level incl. bottleneck).
            weights: one weight per level (default 1.0 each).
            frozen_levels: ``frozen-fe`` only: how many encoder levels to freeze.
            snapshot: ``frozen`` only: the trained model whose encoder is copied (default: ``model``).
        """
        super().__init__()
        if variant not in VARIANTS:
            raise SectlError(f"mal.variant: unknown {variant!r}; use one of {', '.join(VARIANTS)}")
        self.variant = variant
        self.levels = list(levels) if levels is not None else None
        self.weights = list(weights) if weights is not None else None
        if variant == "frozen":
            frozen = copy.deepcopy(snapshot if snapshot is not None else model)
            frozen.eval()
            for p in frozen.parameters():
                p.requires_grad_(False)
            self.encoder_model = frozen  # registered: a fixed part of the loss
        else:
            # Not registered as a submodule: the live model belongs to the trainer, not to the loss.
            object.__setattr__(self, "encoder_model", model)
            if variant == "frozen-fe":
                levels = model.encoder_levels()
                if frozen_levels > len(levels):
                    raise SectlError(f"mal.frozen_levels {frozen_levels} exceeds the encoder's {len(levels)} levels")
                for level in levels[:frozen_levels]:
                    for p in level.parameters():
                        p.requires_grad_(False)
        self._initial_spread: float | None = None

    def _select(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        if self.levels is None:
            return features
        try:
            return [features[i] for i in self.levels]
        except IndexError:
            raise SectlError(f"mal.levels {self.levels} out of range: the encoder has {len(features)} levels") from None

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        est, ref = as_batch(estimate, reference)
        enc = self.encoder_model
        scale = enc.scale(ref.unsqueeze(1)).detach()
        with torch.no_grad():
            targets = self._select(enc.features(ref, scale))
        outputs = self._select(enc.features(est, scale))
        weights = self.weights or [1.0] * len(outputs)
        if len(weights) != len(outputs):
            raise SectlError(f"mal.weights has {len(weights)} entries for {len(outputs)} levels")
        # Spread over batch and time, per channel: a collapsed encoder's output no longer varies with
        # its input, whatever constant (bias) each channel settles on.
        self._last_spread = float(torch.stack([t.std(dim=(0, 2)).mean() for t in targets]).mean())
        if self._initial_spread is None:
            self._initial_spread = self._last_spread
        return sum(w * (o - t).abs().mean() for w, o, t in zip(weights, outputs, targets))

    def collapse_ratio(self) -> float:
        """Spread of the clean features now vs at the first call (1.0 = unchanged, 0 = collapsed)."""
        if self._initial_spread is None or self._initial_spread == 0:
            return 1.0
        return self._last_spread / self._initial_spread
