"""Waveform augmentations shared by training data pipelines and tools."""

from __future__ import annotations

import torch
from torch import nn

from sectl.audio.io import Resampler, resample


def speed_resampler(factor: float, sample_rate: int = 16000) -> nn.Module:
    """A module that plays its input ``factor`` times faster, as :func:`speed_perturb` does, holding its
    kernel: a loss that owns one per factor moves them to its device once, so no step builds or copies
    a kernel (a host-to-device copy the first time a factor is drawn would make the GPU wait)."""
    if factor <= 0:
        raise ValueError("speed factor must be > 0")
    return nn.Identity() if factor == 1.0 else Resampler(int(round(sample_rate * factor / 10)) * 10, sample_rate)


def speed_perturb(wave: torch.Tensor, factor: float, sample_rate: int = 16000) -> torch.Tensor:
    """Play ``wave`` ``factor`` times faster (pitch moves with it), as Kaldi-style speed perturbation.

    Implemented as resampling from ``sample_rate * factor`` to ``sample_rate``: the result has
    ``len / factor`` samples. Rates are rounded to 10 Hz so the polyphase filter stays small.
    """
    if factor <= 0:
        raise ValueError("speed factor must be > 0")
    if factor == 1.0:
        return wave
    orig = int(round(sample_rate * factor / 10)) * 10
    return resample(wave, orig, sample_rate)
