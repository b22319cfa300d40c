"""The enhancer interface every model implements: explicit ``encode`` and ``decode`` stages.

Splitting the stages lets Model-as-Loss call the encoder alone and lets SSL/soft-DTW training swap
losses without copying a ``forward``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Callable

import torch
from torch import nn


class Configurable:
    """A model built from one config dataclass (``config_class``): its fields are the constructor
    arguments that checkpoints store and presets validate; ``sample_rate`` is one of them."""

    config_class: type
    config: Any
    sample_rate: int

    def configure(self, kwargs: dict[str, Any]) -> Any:
        self.config = self.config_class(**kwargs)
        self.sample_rate = self.config.sample_rate
        return self.config

    @property
    def constructor_args(self) -> dict[str, Any]:
        return asdict(self.config)


class Enhancer(Configurable, nn.Module):
    """A waveform-to-waveform enhancer ``y = scale * decode(encode(x / scale))`` at ``sample_rate``.

    Subclasses set ``sample_rate`` from a constructor argument, so it is saved in checkpoints and
    callers resample at the model's boundary; no rate is assumed here.
    """

    sample_rate: int
    name: str = "enhancer"

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Per-level features of a normalised, validly padded waveform ``(B, 1, T)``; deepest last."""
        raise NotImplementedError

    def decode(self, features: list[torch.Tensor]) -> torch.Tensor:
        """Waveform ``(B, 1, T')`` from the features ``encode`` returned."""
        raise NotImplementedError

    def encoder_levels(self) -> list[nn.Module]:
        """One module per entry of ``encode``'s list, holding that level's own weights (Model as Loss
        freezes the first ones); parameter-free levels are an ``nn.Identity``."""
        raise NotImplementedError

    def valid_length(self, length: int) -> int:
        """Smallest length >= ``length`` that the encoder/decoder reproduce exactly."""
        return length

    def features(self, wave: torch.Tensor, scale: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Encoder features of a raw waveform ``(B, T)`` or ``(B, 1, T)``, normalised as in ``forward``.

        ``scale`` (``(B, 1, 1)``) overrides the waveform's own standard deviation, so two signals can be
        compared in the same units (Model as Loss normalises both by the reference).
        """
        x = wave if wave.dim() == 3 else wave.unsqueeze(1)
        if scale is None:
            scale = self.scale(x)
        length = x.shape[-1]
        x = nn.functional.pad(x / scale, (0, self.valid_length(length) - length))
        return self.encode(x)

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """The input's whole-signal level (standard deviation), unless the config's ``normalize`` is false:
        then 1, absolute levels, the only scale a stream knows before the signal ends."""
        if getattr(self.config, "normalize", True):
            return x.std(dim=(1, 2), keepdim=True, correction=0) + 1e-3
        return torch.ones(x.shape[0], 1, 1, dtype=x.dtype, device=x.device)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Enhance ``(B, T)`` or ``(B, 1, T)``; returns the same shape."""
        x = wave if wave.dim() == 3 else wave.unsqueeze(1)
        scale = self.scale(x)
        y = self.decode(self.features(x, scale))[..., : x.shape[-1]] * scale
        return y if wave.dim() == 3 else y.squeeze(1)


@torch.no_grad()
def frames_per_second(count_frames: Callable[[int], int], sample_rate: int) -> int:
    """Frames a feature extractor adds per second of input, measured on 1 s and 2 s of silence, so it
    holds for any model whatever its padding (``count_frames(samples)`` -> frames)."""
    return count_frames(2 * sample_rate) - count_frames(sample_rate)


def frozen_mode(module: nn.Module) -> nn.Module:
    """Inference behaviour for a fixed module that gradients flow *through* (MAL's frozen encoder, an
    enhancer as a teacher): eval mode (BatchNorm on its running statistics, dropout off), except recurrent
    layers without dropout between them, which stay in training mode: cuDNN refuses the backward of an
    RNN in eval mode ("cudnn RNN backward can only be called in training mode"), and such an RNN computes
    the same in both modes."""
    module.eval()
    for child in module.modules():
        if isinstance(child, nn.RNNBase) and (child.dropout == 0 or child.num_layers == 1):
            child.train()
    return module
