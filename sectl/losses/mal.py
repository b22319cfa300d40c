"""Model as Loss (Phaye, Cernak & Harper, Interspeech 2025): the enhancer's own encoder as the loss.

``L_mal = sum_l w_l * mean |E'(clean)_l - E'(enhanced)_l|`` over chosen encoder levels, where ``E'`` is

* ``frozen``: a fixed snapshot of a trained model's encoder (``init_from``);
* ``frozen-fe``: the live encoder whose first ``frozen_levels`` levels are frozen *in the trained model*
  (their parameters get no gradient and never change);
* ``dynamic``: the live encoder, updated as training goes on.

Both signals are normalised by the clean signal's scale, so they are compared in the same units.

Only *learned* encoder levels take part: a level without weights (MaskNet's and NSNet2's input
spectrum, DeepFilterNet3's input features) is a fixed transform of the signal, a spectral loss rather
than the model's own representation. By default every learned level is compared (the bottleneck
included); ``levels: [-1]`` compares the bottleneck alone.

Collapse guard (``dynamic``): an encoder mapping everything to a constant makes the loss zero. The
clean branch is always detached (no gradient can shrink the targets), presets keep a conventional
term beside MAL, and :class:`CollapseMonitor` compares the clean features' spread with its value at
the run's first step (kept in checkpoints, so a resumed run keeps its baseline); the trainer stops a
run whose spread falls under ``collapse_threshold`` times, or grows past ``growth_threshold`` times,
that baseline.
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn

from sectl.errors import ConfigError, SectlError
from sectl.losses.base import as_batch
from sectl.models.base import Enhancer, frozen_mode

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
            levels: indices into ``model.encode(...)``'s list, negative from the end (default: every
                learned level, bottleneck included); levels without weights are refused.
            weights: one weight per compared level (default 1.0 each).
            frozen_levels: ``frozen-fe`` only: how many learned encoder levels to freeze.
            snapshot: ``frozen`` only: the trained model whose encoder is copied (default: ``model``).
        """
        super().__init__()
        if variant not in VARIANTS:
            raise ConfigError(f"mal.variant: unknown {variant!r}; use one of {', '.join(VARIANTS)}")
        self.variant = variant
        self.weights = list(weights) if weights is not None else None
        learned = learned_levels(model)
        self.levels = self._check_levels(model, levels, learned)
        if variant == "frozen":
            frozen = frozen_mode(copy.deepcopy(snapshot if snapshot is not None else model))
            for p in frozen.parameters():
                p.requires_grad_(False)
            self.encoder_model = frozen  # registered: a fixed part of the loss
        else:
            # Not registered as a submodule: the live model belongs to the trainer, not to the loss.
            object.__setattr__(self, "encoder_model", model)
            if variant == "frozen-fe":
                freeze_front_end(model, frozen_levels, learned)
        self.last_spread: torch.Tensor | None = None

    def train(self, mode: bool = True) -> "ModelAsLoss":
        super().train(mode)
        if self.variant == "frozen":  # a fixed part of the loss: never BatchNorm's batch statistics
            frozen_mode(self.encoder_model)
        return self

    @staticmethod
    def _check_levels(model: Enhancer, levels: Sequence[int] | None, learned: list[int]) -> list[int]:
        if levels is None:
            return learned
        count = len(model.encoder_levels())
        chosen = []
        for level in levels:
            if not -count <= level < count:
                raise ConfigError(f"mal.levels: {level} out of range; {model.name}'s encoder has {count} levels (0..{count - 1})")
            if level % count not in learned:
                raise ConfigError(
                    f"mal.levels: level {level} of {model.name} has no weights (a fixed transform of the input); "
                    f"MAL compares learned levels: {', '.join(map(str, learned))}"
                )
            chosen.append(level % count)
        return chosen

    def _select(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        return [features[i] for i in self.levels]

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        est, ref = as_batch(estimate, reference)
        enc = self.encoder_model
        scale = enc.scale(ref.unsqueeze(1)).detach()
        with torch.no_grad():
            targets = self._select(enc.features(ref, scale))
        outputs = self._select(enc.features(est, scale))
        weights = self.weights or [1.0] * len(outputs)
        if len(weights) != len(outputs):
            raise ConfigError(f"mal.weights has {len(weights)} entries for {len(outputs)} levels")
        # Spread over batch and time, per channel: a collapsed encoder's output no longer varies with
        # its input, whatever constant (bias) each channel settles on.
        self.last_spread = torch.stack([t.std(dim=(0, 2)).mean() for t in targets]).mean().detach()
        return sum(w * (o - t).abs().mean() for w, o, t in zip(weights, outputs, targets))

def learned_levels(model: Enhancer) -> list[int]:
    """Indices of ``model``'s encoder levels that hold weights (the ones MAL may compare or freeze)."""
    return [i for i, level in enumerate(model.encoder_levels()) if any(True for _ in level.parameters())]


def freeze_front_end(model: Enhancer, count: int, learned: list[int] | None = None) -> None:
    """Freeze the first ``count`` learned encoder levels of ``model`` (MAL ``frozen-fe``); at least one
    learned level must stay trainable, or the variant would be ``frozen``."""
    learned = learned_levels(model) if learned is None else learned
    if not 1 <= count < len(learned):
        raise ConfigError(
            f"mal.frozen_levels {count}: {model.name}'s encoder has {len(learned)} levels with weights "
            f"(levels {', '.join(map(str, learned))}); frozen-fe freezes 1 to {len(learned) - 1} of them"
        )
    levels = model.encoder_levels()
    for index in learned[:count]:
        for p in levels[index].parameters():
            p.requires_grad_(False)


class CollapseMonitor(nn.Module):
    """The clean features' spread relative to the run's first step; its state is checkpointed.

    Every step's ratio is compared with ``[low, high]`` on the device; the first step outside is kept
    (``first_outside``, 1-based, 0: none, with its ratio) and :meth:`raise_if_outside` reads it once per
    log interval, so a dip between two read-backs stops the run too, without a host synchronisation per step.
    """

    def __init__(self, low: float, high: float) -> None:
        super().__init__()
        self.low, self.high = low, high
        self.register_buffer("baseline", torch.tensor(float("nan"), dtype=torch.float64))
        self.register_buffer("first_outside", torch.zeros((), dtype=torch.int64), persistent=False)
        self.register_buffer("ratio_outside", torch.ones((), dtype=torch.float64), persistent=False)

    def observe(self, spread: torch.Tensor, step: int = 0) -> torch.Tensor:
        """Record step ``step``'s ``spread`` (the first value becomes the baseline); ``spread / baseline``
        on the device, without reading it back."""
        spread = spread.detach().to(self.baseline.dtype)
        self.baseline.copy_(torch.where(torch.isnan(self.baseline), spread, self.baseline))
        ratio = torch.where(self.baseline > 0, spread / self.baseline, torch.ones_like(spread))
        newly = (self.first_outside == 0) & ((ratio < self.low) | (ratio > self.high))
        self.first_outside.copy_(torch.where(newly, step + 1, self.first_outside))
        self.ratio_outside.copy_(torch.where(newly, ratio, self.ratio_outside))
        return ratio

    def check(self, spread: float | torch.Tensor) -> float:
        """Observe ``spread`` and raise when the ratio leaves ``[low, high]``; return it otherwise."""
        ratio = float(self.observe(torch.as_tensor(spread)))
        self.raise_if_outside()
        return ratio

    def raise_if_outside(self) -> None:
        """Raise if any step observed so far left ``[low, high]``, naming the first (one host read)."""
        step, ratio = self.first_outside.item(), self.ratio_outside.item()
        at = f" at step {step}" if step > 0 else ""
        if step and ratio < self.low:
            raise SectlError(
                f"MAL encoder collapse{at}: clean-feature spread fell to {ratio:.3f} of its start "
                f"(< mal.collapse_threshold {self.low}); raise loss.l1 or use variant frozen"
            )
        if step and ratio > self.high:
            raise SectlError(
                f"MAL encoder runaway{at}: clean-feature spread grew to {ratio:.1f} times its start "
                f"(> mal.growth_threshold {self.high}); lower train.lr or use variant frozen"
            )
